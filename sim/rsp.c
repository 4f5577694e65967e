/*
 * GDB Remote Serial Protocol server of the virtual board: what a debug
 * probe's GDB server (OpenOCD, pyOCD, J-Link, Black Magic Probe) offers,
 * over loopback TCP, one client at a time.
 *
 * Supported: acks and QStartNoAckMode, qSupported (PacketSize=4000, hex as
 * real stubs answer), '?', g/G, p/P, m, M, X (binary, 0x7d escapes), qRcmd
 * ("reset", "reset halt", "reset init", "halt", and the access-port
 * commands "dap apreg", "vboard_approtect_status", "vboard_nrf52_eraseall"
 * of the shipped OpenOCD configuration), c/s (the virtual core has
 * no code to run: they stop at once with S05), ^C, k, D, a few thread and
 * attach queries; anything else gets the empty reply. Memory and register
 * access while debug-locked answers E51 (VB1_RSP_ERR_LOCKED).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "board_int.h"
#include "imprint/log.h"
#include "imprint/util.h"
#include "sim/nrf52_map.h"
#include "sim/vb1_map.h"

#define RSP_PACKET_SIZE 0x4000u  /* what qSupported announces */
#define RSP_MAX_READ ((RSP_PACKET_SIZE - 8u) / 2u) /* largest 'm' answered at once: its hex fills a packet */

struct rsp_conn {
	struct sim_board *b;
	int fd;
	bool noack;
	bool closing;
	bool tty;                  /* a pseudo-terminal, not a socket */
	/* Black Magic Probe personality: nothing reaches the target until
	 * "monitor swd_scan" found it and "vAttach;1" attached to it. */
	bool bmp, scanned, attached;
	/* packet parser */
	int state;                 /* 0 idle, 1 data, 2 cs1, 3 cs2 */
	uint8_t *pkt;
	size_t pkt_len;
	bool pkt_overflow;
	uint8_t sum;
	int cs_hi;
	/* last reply, for '-' */
	char *last;
	size_t last_len;
	/* vFlashWrite data not yet programmed (sim/rsp_flash.c) */
	struct sim_rsp_flash flash;
};

static int send_raw(struct rsp_conn *c, const void *p, size_t n)
{
	const uint8_t *q = p;

	sim_capture(c->b->cap_rsp_fd, p, n);
	while (n > 0) {
		ssize_t w = c->tty ? write(c->fd, q, n) : send(c->fd, q, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			c->closing = true;
			return -1;
		}
		q += w;
		n -= (size_t)w;
	}
	return 0;
}

static void reply_n(struct rsp_conn *c, const char *data, size_t n)
{
	uint8_t sum = 0;
	char tail[4];

	if (c->last_len < n + 4) {
		char *nl = realloc(c->last, n + 4);

		if (!nl) {
			c->closing = true;
			return;
		}
		c->last = nl;
	}
	c->last[0] = '$';
	memcpy(c->last + 1, data, n);
	for (size_t i = 0; i < n; i++)
		sum = (uint8_t)(sum + (uint8_t)data[i]);
	snprintf(tail, sizeof(tail), "#%02x", sum);
	memcpy(c->last + 1 + n, tail, 3);
	c->last_len = n + 4;
	send_raw(c, c->last, c->last_len);
}

static void reply(struct rsp_conn *c, const char *s)
{
	reply_n(c, s, strlen(s));
}

static void reply_err(struct rsp_conn *c, imp_err rc)
{
	char e[8];

	snprintf(e, sizeof(e), "E%02X", rc == IMP_ERR_TARGET_LOCKED ? VB1_RSP_ERR_LOCKED : 0x01);
	reply(c, e);
}

static void reply_console(struct rsp_conn *c, const char *text)
{
	size_t n = strlen(text);
	char *o = malloc(2 * n + 2);

	if (!o)
		return;
	o[0] = 'O';
	imp_hex_encode((const uint8_t *)text, n, o + 1);
	reply(c, o);
	free(o);
}

/* "addr,len" in hex; *end points after len. */
static bool parse_addr_len(const char *s, uint32_t *addr, size_t *len, const char **end)
{
	char *e;
	unsigned long long a, l;

	errno = 0;
	a = strtoull(s, &e, 16);
	if (e == s || *e != ',' || a > 0xFFFFFFFFull)
		return false;
	s = e + 1;
	l = strtoull(s, &e, 16);
	if (e == s || errno || l > 0x100000ull)
		return false;
	*addr = (uint32_t)a;
	*len = (size_t)l;
	*end = e;
	return true;
}

static void do_read_mem(struct rsp_conn *c, const char *args)
{
	uint32_t addr;
	size_t len;
	const char *end;
	uint8_t *buf;
	char *hex;
	imp_err rc;

	if (!parse_addr_len(args, &addr, &len, &end) || *end) {
		reply(c, "E02");
		return;
	}
	if (len > RSP_MAX_READ)
		len = RSP_MAX_READ;
	buf = malloc(len + 1);
	hex = malloc(2 * len + 1);
	if (!buf || !hex) {
		reply(c, "E03");
		goto cleanup;
	}
	rc = sim_chip_read(c->b->chip, addr, buf, len);
	if (rc != IMP_OK) {
		reply_err(c, rc);
		goto cleanup;
	}
	imp_hex_encode(buf, len, hex);
	reply(c, hex);
cleanup:
	free(buf);
	free(hex);
}

/*
 * qCRC:addr,length: the CRC-32 GDB defines (imp_crc32_msb) of target
 * memory, computed here from the chip's memory as a debug server computes
 * it on the target: the station verifies flash without reading it back.
 * A range the debug port cannot read fails as an 'm' of it would.
 */
static void do_crc(struct rsp_conn *c, const char *args)
{
	uint8_t buf[4096];
	uint32_t addr, crc = 0xFFFFFFFFu;
	size_t len;
	const char *end;
	char r[16];

	if (!parse_addr_len(args, &addr, &len, &end) || *end || (uint64_t)addr + len > 0x100000000ull) {
		reply(c, "E02");
		return;
	}
	for (size_t off = 0; off < len;) {
		size_t k = len - off < sizeof(buf) ? len - off : sizeof(buf);
		imp_err rc = sim_chip_read(c->b->chip, addr + (uint32_t)off, buf, k);

		if (rc != IMP_OK) {
			reply_err(c, rc);
			return;
		}
		crc = imp_crc32_msb(crc, buf, k);
		off += k;
	}
	snprintf(r, sizeof(r), "C%08x", crc);
	reply(c, r);
}

static void do_write_mem(struct rsp_conn *c, const char *args, size_t args_len, bool binary)
{
	uint32_t addr;
	size_t len, dl;
	const char *end, *data;
	uint8_t *buf = NULL;
	imp_err rc;

	if (!parse_addr_len(args, &addr, &len, &end) || *end != ':') {
		reply(c, "E02");
		return;
	}
	data = end + 1;
	dl = args_len - (size_t)(data - args);
	buf = malloc(len + 1);
	if (!buf) {
		reply(c, "E03");
		return;
	}
	if (binary) {
		size_t o = 0;

		for (size_t i = 0; i < dl; i++) {
			uint8_t ch = (uint8_t)data[i];

			if (ch == 0x7d && i + 1 < dl)
				ch = (uint8_t)data[++i] ^ 0x20;
			if (o == len) {
				o = len + 1;
				break;
			}
			buf[o++] = ch;
		}
		if (o != len) {
			reply(c, "E02");
			goto cleanup;
		}
	} else {
		char *h = strndup(data, dl);

		if (!h || dl != 2 * len || imp_hex_decode(h, buf, len) != IMP_OK) {
			free(h);
			reply(c, "E02");
			goto cleanup;
		}
		free(h);
	}
	if (len == 0) { /* GDB probes 'X' support with a zero-length write */
		reply(c, "OK");
		goto cleanup;
	}
	rc = sim_chip_write(c->b->chip, addr, buf, len);
	if (rc != IMP_OK)
		reply_err(c, rc);
	else
		reply(c, "OK");
cleanup:
	free(buf);
}

static void reg_hex(uint32_t v, char out[9])
{
	uint8_t le[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };

	imp_hex_encode(le, 4, out);
}

static bool hex_reg(const char *h, uint32_t *v)
{
	char tmp[9];
	uint8_t le[4];

	memcpy(tmp, h, 8);
	tmp[8] = '\0';
	if (imp_hex_decode(tmp, le, 4) != IMP_OK)
		return false;
	*v = (uint32_t)le[0] | (uint32_t)le[1] << 8 | (uint32_t)le[2] << 16 | (uint32_t)le[3] << 24;
	return true;
}

static void do_regs(struct rsp_conn *c)
{
	uint32_t regs[SIM_CHIP_NREGS];
	char out[SIM_CHIP_NREGS * 8 + 1];
	imp_err rc = sim_chip_read_regs(c->b->chip, regs);

	if (rc != IMP_OK) {
		reply_err(c, rc);
		return;
	}
	for (int i = 0; i < SIM_CHIP_NREGS; i++)
		reg_hex(regs[i], out + 8 * i);
	reply(c, out);
}

static void do_write_regs(struct rsp_conn *c, const char *h)
{
	uint32_t regs[SIM_CHIP_NREGS];
	imp_err rc;

	if (strlen(h) != SIM_CHIP_NREGS * 8) {
		reply(c, "E02");
		return;
	}
	for (int i = 0; i < SIM_CHIP_NREGS; i++) {
		if (!hex_reg(h + 8 * i, &regs[i])) {
			reply(c, "E02");
			return;
		}
	}
	rc = sim_chip_write_regs(c->b->chip, regs);
	if (rc != IMP_OK)
		reply_err(c, rc);
	else
		reply(c, "OK");
}

static void do_reg_one(struct rsp_conn *c, const char *args, bool write)
{
	uint32_t regs[SIM_CHIP_NREGS], v;
	char *e;
	unsigned long n = strtoul(args, &e, 16);
	char out[9];
	imp_err rc;

	if (e == args || n >= SIM_CHIP_NREGS || (write && *e != '=') || (!write && *e)) {
		reply(c, "E02");
		return;
	}
	rc = sim_chip_read_regs(c->b->chip, regs);
	if (rc != IMP_OK) {
		reply_err(c, rc);
		return;
	}
	if (!write) {
		reg_hex(regs[n], out);
		reply(c, out);
		return;
	}
	if (strlen(e + 1) != 8 || !hex_reg(e + 1, &v)) {
		reply(c, "E02");
		return;
	}
	regs[n] = v;
	rc = sim_chip_write_regs(c->b->chip, regs);
	if (rc != IMP_OK)
		reply_err(c, rc);
	else
		reply(c, "OK");
}

static bool parse_num(const char *s, uint32_t *v)
{
	char *e;
	unsigned long long n;

	errno = 0;
	n = strtoull(s, &e, 0);
	if (e == s || *e || errno || n > 0xFFFFFFFFull)
		return false;
	*v = (uint32_t)n;
	return true;
}

/*
 * The access-port commands of board/openocd/vboard-nrf52840.cfg, so that a
 * station says the same to this server as to OpenOCD: "[NAME.]dap apreg AP
 * REG [VALUE]" (the value read is printed as 0x%08x), and for an
 * nRF52840 "vboard_approtect_status" (1 open, 0 protected) and
 * "vboard_nrf52_eraseall". Answers true when the command was one of them
 * (the reply is sent).
 */
static bool vendor_ap_monitor(struct rsp_conn *c, const char *cmd)
{
	struct sim_chip *chip = c->b->chip;
	const char *p = strstr(cmd, "dap apreg ");
	char out[96], a[24] = "", r[24] = "", v[24] = "";
	uint32_t ap, reg, val;
	int n;

	if (strcmp(sim_chip_family(chip), "nordic-nrf52840") == 0) {
		if (strcmp(cmd, "vboard_approtect_status") == 0) {
			sim_chip_ap_read(chip, NRF_CTRLAP_APSEL, NRF_CTRLAP_APPROTECTSTATUS, &val);
			snprintf(out, sizeof(out), "%u\n", val & 1u);
			reply_console(c, out);
			reply(c, "OK");
			return true;
		}
		if (strcmp(cmd, "vboard_nrf52_eraseall") == 0) {
			sim_chip_ap_write(chip, NRF_CTRLAP_APSEL, NRF_CTRLAP_ERASEALL, 0);
			sim_chip_ap_write(chip, NRF_CTRLAP_APSEL, NRF_CTRLAP_ERASEALL, 1);
			for (int i = 0; i < 2000; i++) {
				sim_chip_ap_read(chip, NRF_CTRLAP_APSEL, NRF_CTRLAP_ERASEALLSTATUS, &val);
				if (val == 0)
					break;
				imp_sleep_us(1000);
			}
			sim_chip_ap_write(chip, NRF_CTRLAP_APSEL, NRF_CTRLAP_ERASEALL, 0);
			sim_chip_ap_read(chip, NRF_CTRLAP_APSEL, NRF_CTRLAP_APPROTECTSTATUS, &val);
			snprintf(out, sizeof(out), "vboard: ERASEALL done, APPROTECTSTATUS %u\n", val & 1u);
			reply_console(c, out);
			reply(c, "OK");
			return true;
		}
	}
	if (!p || (p != cmd && p[-1] != '.'))
		return false;
	n = sscanf(p + 10, "%23s %23s %23s", a, r, v);
	if (n < 2 || !parse_num(a, &ap) || !parse_num(r, &reg) || ap > 255 || reg > 0xFC || reg % 4 ||
	    (n == 3 && !parse_num(v, &val))) {
		reply_console(c, "usage: dap apreg AP REG [VALUE]\n");
		reply(c, "E02");
		return true;
	}
	if (ap == 0) {
		/* The MEM-AP's registers belong to the debug port (sim/dap.h), not here. */
		reply_console(c, "dap apreg: AP 0 is the MEM-AP; use memory packets\n");
		reply(c, "E01");
		return true;
	}
	if (n == 3) {
		sim_chip_ap_write(chip, ap, reg, val);
	} else {
		sim_chip_ap_read(chip, ap, reg, &val);
		snprintf(out, sizeof(out), "0x%08x\n", val);
		reply_console(c, out);
	}
	reply(c, "OK");
	return true;
}

static void do_monitor(struct rsp_conn *c, const char *hex)
{
	size_t n = strlen(hex) / 2;
	char *cmd = malloc(n + 1);
	imp_err rc = IMP_OK;

	if (!cmd || strlen(hex) % 2 || imp_hex_decode(hex, (uint8_t *)cmd, n) != IMP_OK) {
		free(cmd);
		reply(c, "E02");
		return;
	}
	cmd[n] = '\0';
	while (n && (cmd[n - 1] == ' ' || cmd[n - 1] == '\n'))
		cmd[--n] = '\0';
	if (strcmp(cmd, "reset") == 0 || strcmp(cmd, "reset run") == 0) {
		sim_chip_reset(c->b->chip);
		reply_console(c, "resetting target\n");
	} else if (strcmp(cmd, "reset halt") == 0 || strcmp(cmd, "reset init") == 0) {
		sim_chip_reset(c->b->chip);
		rc = sim_chip_halt(c->b->chip);
		reply_console(c, rc == IMP_OK ? "target halted after reset\n"
					      : "target reset, debug access refused (locked)\n");
	} else if (strcmp(cmd, "halt") == 0) {
		rc = sim_chip_halt(c->b->chip);
		if (rc == IMP_OK)
			reply_console(c, "target halted\n");
	} else if (vendor_ap_monitor(c, cmd)) {
		free(cmd);
		return;
	} else {
		reply_console(c, "unknown monitor command\n");
		free(cmd);
		reply(c, "E01");
		return;
	}
	free(cmd);
	if (rc != IMP_OK)
		reply_err(c, rc);
	else
		reply(c, "OK");
}

/* The chip's memory map when this server offers its flash driver, else NULL. */
static const char *flash_map(const struct rsp_conn *c)
{
	if (!c->b->chip || c->b->cfg->no_flash_driver)
		return NULL;
	return sim_rsp_flash_memory_map(c->b->chip);
}

static void supported(struct rsp_conn *c, const char *tail)
{
	char s[128];

	snprintf(s, sizeof(s), "PacketSize=%x;QStartNoAckMode+%s%s", RSP_PACKET_SIZE,
		 flash_map(c) ? ";qXfer:memory-map:read+" : "", tail);
	reply(c, s);
}

/* qXfer:memory-map:read::OFFSET,LENGTH: 'm' and a piece, or 'l' and the rest. */
static void do_memory_map(struct rsp_conn *c, const char *args)
{
	const char *map = flash_map(c);
	char *e, *o;
	unsigned long long off, len;
	size_t total;

	if (!map) {
		reply(c, "");
		return;
	}
	total = strlen(map);
	errno = 0;
	off = strtoull(args, &e, 16);
	if (e == args || *e != ',' || errno) {
		reply(c, "E02");
		return;
	}
	args = e + 1;
	len = strtoull(args, &e, 16);
	if (e == args || *e || errno || len == 0) {
		reply(c, "E02");
		return;
	}
	if (off >= total) {
		reply(c, "l");
		return;
	}
	if (len > RSP_PACKET_SIZE - 8u)
		len = RSP_PACKET_SIZE - 8u;
	if (len > total - off)
		len = total - off;
	o = malloc((size_t)len + 1);
	if (!o) {
		reply(c, "E03");
		return;
	}
	/* The XML holds none of the characters the binary reply escapes. */
	o[0] = off + len < total ? 'm' : 'l';
	memcpy(o + 1, map + off, (size_t)len);
	reply_n(c, o, (size_t)len + 1);
	free(o);
}

static void flash_result(struct rsp_conn *c, imp_err rc)
{
	switch (rc) {
	case IMP_OK:
		reply(c, "OK");
		break;
	case IMP_ERR_NOT_FOUND:
		reply(c, "E.memtype");
		break;
	case IMP_ERR_USAGE:
		reply(c, "E02");
		break;
	case IMP_ERR_NOMEM:
		reply(c, "E03");
		break;
	default:
		reply_err(c, rc); /* E51 locked, else E01 */
		break;
	}
}

/* vFlashErase:ADDR,LENGTH, vFlashWrite:ADDR:BINARY, vFlashDone. */
static void do_flash(struct rsp_conn *c, const char *p, size_t n)
{
	uint32_t addr;
	size_t len;
	const char *end;

	if (!flash_map(c)) {
		reply(c, "");
		return;
	}
	if (strncmp(p, "vFlashErase:", 12) == 0) {
		if (!parse_addr_len(p + 12, &addr, &len, &end) || *end || len > 0xFFFFFFFFu) {
			reply(c, "E02");
			return;
		}
		flash_result(c, sim_rsp_flash_erase(c->b->chip, addr, (uint32_t)len));
	} else if (strncmp(p, "vFlashWrite:", 12) == 0) {
		char *e;
		unsigned long long a;
		uint8_t *buf;
		size_t o = 0;

		errno = 0;
		a = strtoull(p + 12, &e, 16);
		if (e == p + 12 || *e != ':' || errno || a > 0xFFFFFFFFull) {
			reply(c, "E02");
			return;
		}
		e++;
		n -= (size_t)(e - p);
		buf = malloc(n + 1);
		if (!buf) {
			reply(c, "E03");
			return;
		}
		for (size_t i = 0; i < n; i++) {
			uint8_t ch = (uint8_t)e[i];

			if (ch == 0x7d && i + 1 < n)
				ch = (uint8_t)e[++i] ^ 0x20;
			buf[o++] = ch;
		}
		flash_result(c, o ? sim_rsp_flash_write(&c->flash, c->b->chip, (uint32_t)a, buf, o)
				  : IMP_OK);
		free(buf);
	} else if (strcmp(p, "vFlashDone") == 0) {
		flash_result(c, sim_rsp_flash_done(&c->flash, c->b->chip));
	} else {
		reply(c, "");
	}
}

/* What BMP's swd_scan lists for the chip. */
static const char *bmp_driver_name(const struct sim_chip *chip)
{
	const char *f = sim_chip_family(chip);

	if (strcmp(f, "nordic-nrf52840") == 0)
		return "Nordic nRF52 M4";
	if (strcmp(f, "st-stm32u5") == 0)
		return "STM32U5 M33";
	return "imprint-vb1";
}

/*
 * Black Magic Probe's GDB port (its gdb_main, as a GDB client meets it):
 * "monitor version" names it, "monitor swd_scan" lists the target,
 * "vAttach;1" attaches; before that '?' answers W00 and target access
 * EFF. 'D' detaches and lets the core run. true: the packet was handled.
 */
static bool bmp_packet(struct rsp_conn *c, const char *p)
{
	static const char target_ops[] = "mMXgGpPcs";

	if (strncmp(p, "qSupported", 10) == 0) {
		/* A new session on the port: nothing scanned or attached. */
		c->scanned = c->attached = false;
		c->noack = false;
		c->flash.len = 0;
		supported(c, "");
		return true;
	}
	if (strncmp(p, "qRcmd,", 6) == 0) {
		size_t n = strlen(p + 6) / 2;
		char cmd[64] = "";

		if (n < sizeof(cmd) && imp_hex_decode(p + 6, (uint8_t *)cmd, n) == IMP_OK)
			cmd[n] = '\0';
		if (strcmp(cmd, "version") == 0) {
			reply_console(c, "Black Magic Probe (imprint-vboard's model of its GDB port)\n");
			reply(c, "OK");
			return true;
		}
		if (strcmp(cmd, "swd_scan") == 0 && !c->b->chip) {
			/* no board on the fixture: nothing answers the scan */
			reply_console(c, "Target voltage: 3.3V\nSW-DP scan failed!\n");
			c->scanned = false;
			reply(c, "E01");
			return true;
		}
		if (strcmp(cmd, "swd_scan") == 0) {
			char out[160];

			snprintf(out, sizeof(out), "Target voltage: 3.3V\nAvailable Targets:\n"
				 "No. Att Driver\n 1      %s\n", bmp_driver_name(c->b->chip));
			reply_console(c, out);
			c->scanned = true;
			reply(c, "OK");
			return true;
		}
		return false;
	}
	if (strcmp(p, "vAttach;1") == 0) {
		if (!c->scanned) {
			reply(c, "E01");
			return true;
		}
		c->attached = c->b->chip && sim_chip_halt(c->b->chip) == IMP_OK;
		reply(c, c->attached ? "T05" : "E01");
		return true;
	}
	if (p[0] == '?' && !c->attached) {
		reply(c, "W00");
		return true;
	}
	if (p[0] == 'D') {
		if (c->attached && c->b->chip)
			sim_chip_resume(c->b->chip);
		c->attached = false;
		reply(c, "OK");
		return true;
	}
	if (((p[0] && strchr(target_ops, p[0])) || strncmp(p, "vFlash", 6) == 0 ||
	     strncmp(p, "qXfer:memory-map", 16) == 0) && !c->attached) {
		reply(c, "EFF");
		return true;
	}
	return false;
}

static void handle_packet(struct rsp_conn *c, char *p, size_t n)
{
	IMP_TRACE("board %d: rsp <- %.*s", c->b->index, (int)(n > 64 ? 64 : n), p);
	if (c->bmp && bmp_packet(c, p))
		return;
	if (!c->b->chip && (strchr("gGpPmMXcs", p[0]) || strncmp(p, "qRcmd,", 6) == 0 ||
			    strncmp(p, "qCRC:", 5) == 0 || strncmp(p, "vFlash", 6) == 0)) {
		/* No board on the fixture: the probe reaches no target. */
		reply(c, "E01");
		return;
	}
	switch (p[0]) {
	case '?':
		reply(c, "S05");
		return;
	case 'g':
		do_regs(c);
		return;
	case 'G':
		do_write_regs(c, p + 1);
		return;
	case 'p':
		do_reg_one(c, p + 1, false);
		return;
	case 'P':
		do_reg_one(c, p + 1, true);
		return;
	case 'm':
		do_read_mem(c, p + 1);
		return;
	case 'M':
		do_write_mem(c, p + 1, n - 1, false);
		return;
	case 'X':
		do_write_mem(c, p + 1, n - 1, true);
		return;
	case 'c':
	case 's':
		if (sim_chip_resume(c->b->chip) == IMP_OK)
			sim_chip_halt(c->b->chip);
		reply(c, "S05");
		return;
	case 'k':
		c->closing = true;
		return;
	case 'D':
		reply(c, "OK");
		c->closing = true;
		return;
	case 'H':
	case 'T':
		reply(c, "OK");
		return;
	default:
		break;
	}
	if (strncmp(p, "qSupported", 10) == 0) {
		c->flash.len = 0;
		supported(c, ";imprint-vboard+");
	} else if (strncmp(p, "qXfer:memory-map:read::", 23) == 0) {
		do_memory_map(c, p + 23);
	} else if (strncmp(p, "vFlash", 6) == 0) {
		do_flash(c, p, n);
	} else if (strcmp(p, "QStartNoAckMode") == 0) {
		reply(c, "OK");
		c->noack = true;
	} else if (strncmp(p, "qRcmd,", 6) == 0) {
		do_monitor(c, p + 6);
	} else if (strncmp(p, "qCRC:", 5) == 0) {
		do_crc(c, p + 5);
	} else if (strcmp(p, "qAttached") == 0) {
		reply(c, "1");
	} else if (strcmp(p, "qC") == 0) {
		reply(c, "QC1");
	} else if (strcmp(p, "qfThreadInfo") == 0) {
		reply(c, "m1");
	} else if (strcmp(p, "qsThreadInfo") == 0) {
		reply(c, "l");
	} else {
		reply(c, "");
	}
}

static void feed(struct rsp_conn *c, const uint8_t *in, size_t n)
{
	for (size_t i = 0; i < n && !c->closing; i++) {
		uint8_t ch = in[i];

		switch (c->state) {
		case 0:
			if (ch == '$') {
				c->state = 1;
				c->pkt_len = 0;
				c->pkt_overflow = false;
				c->sum = 0;
			} else if (ch == '-' && c->last_len) {
				send_raw(c, c->last, c->last_len);
			} else if (ch == 0x03 && c->b->chip) {
				if (!sim_chip_halted(c->b->chip) && sim_chip_halt(c->b->chip) == IMP_OK)
					reply(c, "S02");
			}
			break; /* '+' and noise are ignored */
		case 1:
			if (ch == '#') {
				c->state = 2;
				break;
			}
			c->sum = (uint8_t)(c->sum + ch);
			if (c->pkt_len < RSP_PACKET_SIZE + 16)
				c->pkt[c->pkt_len++] = ch;
			else
				c->pkt_overflow = true;
			break;
		case 2:
			c->cs_hi = ch;
			c->state = 3;
			break;
		case 3: {
			char cs[3] = { (char)c->cs_hi, (char)ch, 0 };
			uint8_t want;
			const struct sim_faults *f = c->b->faults;

			c->state = 0;
			if (imp_hex_decode(cs, &want, 1) != IMP_OK || want != c->sum || c->pkt_overflow) {
				IMP_DEBUG("board %d: rsp bad checksum", c->b->index);
				if (!c->noack)
					send_raw(c, "-", 1);
				break;
			}
			if (f->rsp_stall > 0 && sim_rand01(&c->b->rsp_rng) < f->rsp_stall) {
				IMP_DEBUG("board %d: rsp packet swallowed (fault)", c->b->index);
				break;
			}
			if (!c->noack) {
				if (f->rsp_nak > 0 && sim_rand01(&c->b->rsp_rng) < f->rsp_nak) {
					send_raw(c, "-", 1);
					break;
				}
				send_raw(c, "+", 1);
			}
			if (c->pkt_len == 0) {
				reply(c, "");
				break;
			}
			c->pkt[c->pkt_len] = '\0';
			handle_packet(c, (char *)c->pkt, c->pkt_len);
			break;
		}
		}
	}
}

static void serve(struct sim_board *b, int fd)
{
	struct rsp_conn c = { .b = b, .fd = fd };
	uint8_t in[8192];

	c.pkt = malloc(RSP_PACKET_SIZE + 17);
	if (!c.pkt)
		return;
	while (!c.closing) {
		ssize_t got;

		if (!imp_wait_readable(fd, b->stop_fd))
			break;
		got = recv(fd, in, sizeof(in), 0);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		sim_capture(b->cap_rsp_fd, in, (size_t)got);
		pthread_rwlock_rdlock(&b->slot_lock);
		feed(&c, in, (size_t)got);
		pthread_rwlock_unlock(&b->slot_lock);
	}
	free(c.pkt);
	free(c.last);
	sim_rsp_flash_free(&c.flash);
}

/* The BMP port on the board's pty: one stream for the board's life. */
void *sim_rsp_bmp_main(void *arg)
{
	struct sim_board *b = arg;
	struct rsp_conn c = { .b = b, .fd = b->bmp_master, .tty = true, .bmp = true };
	uint8_t in[8192];

	c.pkt = malloc(RSP_PACKET_SIZE + 17);
	if (!c.pkt)
		return NULL;
	for (;;) {
		ssize_t got;

		if (!imp_wait_readable(c.fd, b->stop_fd))
			break;
		got = read(c.fd, in, sizeof(in));
		if (got < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (got <= 0)
			break;
		sim_capture(b->cap_rsp_fd, in, (size_t)got);
		c.closing = false; /* 'k' or a write error end nothing on a tty */
		pthread_rwlock_rdlock(&b->slot_lock);
		feed(&c, in, (size_t)got);
		pthread_rwlock_unlock(&b->slot_lock);
	}
	free(c.pkt);
	free(c.last);
	sim_rsp_flash_free(&c.flash);
	return NULL;
}

void *sim_rsp_main(void *arg)
{
	sim_serve_clients(arg, ((struct sim_board *)arg)->listen_fd, "rsp", serve);
	return NULL;
}
