/*
 * Real OpenOCD against imprint-vboard's nordic-nrf52840 model, through the
 * remote_bitbang debug port and board/openocd/vboard-nrf52840.cfg:
 *
 *   legacy board: OpenOCD examines the target; FICR DEVICEID equals the
 *   vboard's reported ID and INFO.VARIANT says AAD0; `program ... verify`
 *   (the nrf5 driver) writes flash, which the vboard's own RSP server reads
 *   back; OpenOCD's GDB server (over a pipe) reports the flash regions in
 *   its memory map; after UICR APPROTECT is written and the board reset,
 *   the same GDB session's reads of flash and UICR fail (E..) instead of
 *   returning zeros, the CTRL-AP's APPROTECTSTATUS says protected, and a
 *   new GDB connection is refused; ERASEALL through the CTRL-AP recovers.
 *
 *   hardened board: protected from the start (erased UICR), ERASEALL opens
 *   it until the next reset; with UICR APPROTECT = HwDisabled and firmware
 *   that writes APPROTECT.DISABLE it stays open over "reset run", a reset
 *   that halts before the firmware runs leaves it protected, and after
 *   ERASEALL plus a reset it is protected again.
 *
 *   --tamper-readback board: `program ... verify` fails (the check can fail).
 *
 * Every child (vboard, openocd) gets PR_SET_PDEATHSIG and is killed by PID.
 * Usage: it_vboard_openocd IMPRINT-VBOARD OPENOCD CFG. Exit 0 on success.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

static const char *openocd_exe, *cfg_path;
static const char *pre_cfg; /* one more -c before the configuration, or NULL */
static pid_t vb_pid = -1, ocd_pid = -1;
static char tmpdir[64];

static void cleanup(void)
{
	if (ocd_pid > 0) {
		kill(ocd_pid, SIGKILL);
		waitpid(ocd_pid, NULL, 0);
		ocd_pid = -1;
	}
	if (vb_pid > 0) {
		kill(vb_pid, SIGKILL);
		waitpid(vb_pid, NULL, 0);
		vb_pid = -1;
	}
	if (tmpdir[0]) {
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", tmpdir);
		tmpdir[0] = 0;
	}
}

static void fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "FAIL: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	cleanup();
	exit(1);
}

#define CHECK(c, ...) do { if (!(c)) fail(__VA_ARGS__); } while (0)

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

struct board {
	int bitbang;
	int rsp;
	char deviceid[17];
	char revision[16];
};

static void start_vboard(const char *exe, struct board *b, int n, const char *revisions,
			 const char *fault)
{
	char nb[8], stats[96];

	int p[2];
	FILE *f;
	char line[2048];

	CHECK(pipe(p) == 0, "pipe");
	vb_pid = fork();
	CHECK(vb_pid >= 0, "fork");
	if (vb_pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		snprintf(nb, sizeof(nb), "%d", n);
		snprintf(stats, sizeof(stats), "%s/stats", tmpdir);
		execl(exe, exe, "--chip", "nordic-nrf52840", "--boards", nb, "--revision",
		      revisions, "--bitbang", "0", "--seed", "4242", "--latency", "0.1",
		      "--stats", stats, "--quiet", fault ? fault : "--quiet", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	f = fdopen(p[0], "r");
	CHECK(f, "fdopen");
	for (int i = 0; i <= n; i++) {
		json_t *o;

		CHECK(fgets(line, sizeof(line), f), "the vboard printed no endpoint line %d", i);
		o = json_loads(line, 0, NULL);
		CHECK(o, "endpoint line is not JSON: %s", line);
		if (i < n) {
			const char *bb = json_string_value(json_object_get(o, "bitbang"));
			const char *rsp = json_string_value(json_object_get(o, "rsp"));
			const char *id = json_string_value(json_object_get(o, "deviceid"));
			const char *rev = json_string_value(json_object_get(o, "revision"));
			const char *chip = json_string_value(json_object_get(o, "chip"));
			const char *uid = json_string_value(json_object_get(o, "uid"));

			CHECK(bb && rsp && id && rev && chip && uid, "endpoint fields: %s", line);
			CHECK(strcmp(chip, "nordic-nrf52840") == 0, "chip %s", chip);
			CHECK(sscanf(bb, "127.0.0.1:%d", &b[i].bitbang) == 1, "bitbang %s", bb);
			CHECK(sscanf(rsp, "rsp://127.0.0.1:%d", &b[i].rsp) == 1, "rsp %s", rsp);
			CHECK(strlen(id) == 16 && strncmp(uid, id, 16) == 0 &&
			      strcmp(uid + 16, "0000000000000000") == 0,
			      "the agent's uid %s is not DEVICEID %s padded with zeros", uid, id);
			snprintf(b[i].deviceid, sizeof(b[i].deviceid), "%s", id);
			snprintf(b[i].revision, sizeof(b[i].revision), "%s", rev);
		}
		json_decref(o);
	}
	/* The pipe stays open (the vboard writes nothing more). */
}

/* Run one OpenOCD session: init, the commands, shutdown. Output in out. */
static int openocd_batch(int port, const char *const *cmds, char *out, size_t cap)
{
	const char *argv[64];
	char portcmd[64];
	int k = 0, p[2], st = 0;
	size_t len = 0;
	double t0 = now_s();

	snprintf(portcmd, sizeof(portcmd), "set VBOARD_PORT %d", port);
	argv[k++] = openocd_exe;
	argv[k++] = "-c";
	argv[k++] = portcmd;
	if (pre_cfg) {
		argv[k++] = "-c";
		argv[k++] = pre_cfg;
	}
	argv[k++] = "-f";
	argv[k++] = cfg_path;
	argv[k++] = "-c";
	argv[k++] = "gdb_port disabled";
	argv[k++] = "-c";
	argv[k++] = "tcl_port disabled";
	argv[k++] = "-c";
	argv[k++] = "telnet_port disabled";
	argv[k++] = "-c";
	argv[k++] = "init";
	for (int i = 0; cmds[i] && k < 60; i++) {
		argv[k++] = "-c";
		argv[k++] = cmds[i];
	}
	argv[k++] = "-c";
	argv[k++] = "shutdown";
	argv[k] = NULL;
	CHECK(pipe(p) == 0, "pipe");
	ocd_pid = fork();
	CHECK(ocd_pid >= 0, "fork");
	if (ocd_pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(p[1], 1);
		dup2(p[1], 2);
		close(p[0]);
		close(p[1]);
		execv(openocd_exe, (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	for (;;) {
		struct pollfd pf = { p[0], POLLIN, 0 };
		ssize_t got;

		CHECK(now_s() - t0 < 60, "openocd did not finish in 60 s: %.*s", (int)len, out);
		if (poll(&pf, 1, 1000) <= 0)
			continue;
		got = read(p[0], out + len, cap - 1 - len);
		if (got <= 0)
			break;
		len += (size_t)got;
		CHECK(len < cap - 1, "openocd output too long");
	}
	out[len] = '\0';
	close(p[0]);
	CHECK(waitpid(ocd_pid, &st, 0) == ocd_pid, "waitpid openocd");
	ocd_pid = -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void expect_ok(int port, const char *const *cmds, char *out, size_t cap, const char *what)
{
	int rc = openocd_batch(port, cmds, out, cap);

	CHECK(rc == 0, "%s: openocd exited %d:\n%s", what, rc, out);
}

static bool has(const char *hay, const char *needle)
{
	return strstr(hay, needle) != NULL;
}

/* The word printed after "ADDR: " by mdw, or fail. */
static uint32_t mdw_word(const char *out, const char *addr, int index)
{
	char key[32];
	const char *p;
	unsigned long v = 0;

	snprintf(key, sizeof(key), "%s: ", addr);
	p = strstr(out, key);
	CHECK(p, "no mdw output for %s in:\n%s", addr, out);
	p += strlen(key);
	for (int i = 0; i <= index; i++) {
		char *e;

		v = strtoul(p, &e, 16);
		CHECK(e != p, "bad mdw output for %s", addr);
		p = e;
	}
	return (uint32_t)v;
}

/* "echo status=N" from vboard_approtect_status */
static int status_in(const char *out)
{
	const char *p = strstr(out, "status=");

	CHECK(p, "no APPROTECTSTATUS in:\n%s", out);
	return atoi(p + 7);
}

/* ---- a GDB client on OpenOCD's pipe ---- */

struct gdb {
	int to, from;
	char buf[65536];
	size_t len;
};

static void gdb_start(struct gdb *g, int port, const char *log)
{
	int in[2], outp[2];
	char portcmd[64];

	snprintf(portcmd, sizeof(portcmd), "set VBOARD_PORT %d", port);
	CHECK(pipe(in) == 0 && pipe(outp) == 0, "pipe");
	ocd_pid = fork();
	CHECK(ocd_pid >= 0, "fork");
	if (ocd_pid == 0) {
		int lf = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(in[0], 0);
		dup2(outp[1], 1);
		if (lf >= 0)
			dup2(lf, 2);
		close(in[1]);
		close(outp[0]);
		execl(openocd_exe, openocd_exe, "-c", portcmd, "-f", cfg_path, "-c", "gdb_port pipe",
		      "-c", "tcl_port disabled", "-c", "telnet_port disabled", (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(outp[1]);
	g->to = in[1];
	g->from = outp[0];
	g->len = 0;
}

/* OpenOCD with its GDB server on a free loopback port; connect to it. */
static void gdb_start_tcp(struct gdb *g, int port, const char *log)
{
	struct sockaddr_in sa = { 0 };
	socklen_t sl = sizeof(sa);
	char portcmd[64], gdbcmd[64];
	int fd = socket(AF_INET, SOCK_STREAM, 0), gport;
	double t0;

	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	      getsockname(fd, (struct sockaddr *)&sa, &sl) == 0, "pick a port");
	gport = ntohs(sa.sin_port);
	close(fd);
	snprintf(portcmd, sizeof(portcmd), "set VBOARD_PORT %d", port);
	snprintf(gdbcmd, sizeof(gdbcmd), "gdb_port %d", gport);
	ocd_pid = fork();
	CHECK(ocd_pid >= 0, "fork");
	if (ocd_pid == 0) {
		int lf = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (lf >= 0) {
			dup2(lf, 1);
			dup2(lf, 2);
		}
		execl(openocd_exe, openocd_exe, "-c", portcmd, "-f", cfg_path, "-c", gdbcmd,
		      "-c", "tcl_port disabled", "-c", "telnet_port disabled", (char *)NULL);
		_exit(127);
	}
	t0 = now_s();
	for (;;) {
		fd = socket(AF_INET, SOCK_STREAM, 0);
		CHECK(fd >= 0, "socket");
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		close(fd);
		CHECK(now_s() - t0 < 20, "OpenOCD's GDB server did not listen on %d", gport);
		usleep(20000);
	}
	g->to = fd;
	g->from = fd;
	g->len = 0;
}

static void gdb_stop(struct gdb *g)
{
	int st;

	close(g->to);
	if (g->from != g->to)
		close(g->from);
	for (int i = 0; i < 100 && waitpid(ocd_pid, &st, WNOHANG) == 0; i++)
		usleep(20000);
	if (waitpid(ocd_pid, &st, WNOHANG) == 0) {
		kill(ocd_pid, SIGKILL);
		waitpid(ocd_pid, &st, 0);
	}
	ocd_pid = -1;
}

/* Read one packet's payload into out; false when the pipe closed. */
static bool gdb_read_packet(struct gdb *g, char *out, size_t cap, double timeout)
{
	double t0 = now_s();

	for (;;) {
		char *d = memchr(g->buf, '$', g->len), *h = d ? memchr(d, '#', g->len - (size_t)(d - g->buf)) : NULL;

		if (d && h && (size_t)(h - g->buf) + 3 <= g->len) {
			size_t n = (size_t)(h - d - 1), used = (size_t)(h - g->buf) + 3;

			CHECK(n < cap, "packet too long");
			memcpy(out, d + 1, n);
			out[n] = '\0';
			memmove(g->buf, g->buf + used, g->len - used);
			g->len -= used;
			if (write(g->to, "+", 1) != 1)
				return false;
			return true;
		}
		struct pollfd pf = { g->from, POLLIN, 0 };
		ssize_t got;

		CHECK(now_s() - t0 < timeout, "no answer from OpenOCD's GDB server in %.0f s", timeout);
		if (poll(&pf, 1, 200) <= 0)
			continue;
		CHECK(g->len < sizeof(g->buf), "gdb buffer full");
		got = read(g->from, g->buf + g->len, sizeof(g->buf) - g->len);
		if (got <= 0)
			return false;
		g->len += (size_t)got;
	}
}

static void gdb_send_n(struct gdb *g, const char *payload, size_t len)
{
	static char pkt[16384];
	unsigned sum = 0;
	size_t n = 0;

	CHECK(len + 4 < sizeof(pkt), "packet too long");
	pkt[n++] = '$';
	for (size_t i = 0; i < len; i++) {
		sum += (unsigned char)payload[i];
		pkt[n++] = payload[i];
	}
	n += (size_t)snprintf(pkt + n, sizeof(pkt) - n, "#%02x", sum & 0xFF);
	CHECK(write(g->to, pkt, n) == (ssize_t)n, "write to openocd");
}

static void gdb_send(struct gdb *g, const char *payload)
{
	gdb_send_n(g, payload, strlen(payload));
}

/* vFlashWrite:addr:data with the binary escapes of the RSP. */
static void gdb_vflash_write(struct gdb *g, uint32_t addr, const uint8_t *data, size_t n,
			     char *reply, size_t cap)
{
	static char buf[16384];
	size_t k = (size_t)snprintf(buf, sizeof(buf), "vFlashWrite:%x:", addr);

	for (size_t i = 0; i < n; i++) {
		uint8_t ch = data[i];

		if (ch == '#' || ch == '$' || ch == '}' || ch == '*') {
			buf[k++] = '}';
			ch ^= 0x20;
		}
		buf[k++] = (char)ch;
	}
	gdb_send_n(g, buf, k);
	CHECK(gdb_read_packet(g, reply, cap, 30), "vFlashWrite: connection closed");
}

/* Send a packet, return the first non-'O' reply (console output in con). */
static bool gdb_cmd(struct gdb *g, const char *payload, char *reply, size_t cap, char *con,
		    size_t con_cap)
{
	if (con && con_cap)
		con[0] = '\0';
	gdb_send(g, payload);
	for (;;) {
		if (!gdb_read_packet(g, reply, cap, 30))
			return false;
		if (reply[0] == 'O' && reply[1] && strcmp(reply, "OK") != 0) {
			size_t have = con ? strlen(con) : 0;

			for (const char *h = reply + 1; con && h[0] && h[1] && have + 1 < con_cap; h += 2) {
				unsigned v;

				if (sscanf(h, "%2x", &v) != 1)
					break;
				con[have++] = (char)v;
				con[have] = '\0';
			}
			continue;
		}
		return true;
	}
}

static void gdb_monitor(struct gdb *g, const char *cmd, char *con, size_t cap)
{
	char pkt[1024], reply[4096];
	int n = snprintf(pkt, sizeof(pkt), "qRcmd,");

	for (const char *p = cmd; *p; p++)
		n += snprintf(pkt + n, sizeof(pkt) - (size_t)n, "%02x", (unsigned char)*p);
	CHECK(gdb_cmd(g, pkt, reply, sizeof(reply), con, cap), "monitor %s: connection closed", cmd);
	/* The last reply is OK or the command's output, hex-encoded (GDB's qRcmd). */
	CHECK(strcmp(reply, "OK") == 0 || (reply[0] != 'E' && strspn(reply, "0123456789abcdef") == strlen(reply)),
	      "monitor %s answered %s (console: %s)", cmd, reply, con);
	if (strcmp(reply, "OK") != 0) {
		size_t have = strlen(con);

		for (const char *h = reply; h[0] && h[1] && have + 1 < cap; h += 2) {
			unsigned v;

			if (sscanf(h, "%2x", &v) != 1)
				break;
			con[have++] = (char)v;
			con[have] = '\0';
		}
	}
}

/* ---- the vboard's own RSP server, to check flash from the model's side ---- */

static void vboard_rsp_read(int port, const char *cmd, char *reply, size_t cap)
{
	struct sockaddr_in sa = { 0 };
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	char pkt[128];
	unsigned sum = 0;
	size_t len = 0;
	int n;

	CHECK(fd >= 0, "socket");
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "connect rsp");
	for (const char *p = cmd; *p; p++)
		sum += (unsigned char)*p;
	n = snprintf(pkt, sizeof(pkt), "$%s#%02x", cmd, sum & 0xFF);
	CHECK(write(fd, pkt, (size_t)n) == n, "write rsp");
	for (;;) {
		char *h;
		ssize_t got = read(fd, reply + len, cap - 1 - len);

		CHECK(got > 0, "rsp closed");
		len += (size_t)got;
		reply[len] = '\0';
		h = strchr(reply, '#');
		if (h && strchr(reply, '$') && strlen(h) >= 3)
			break;
	}
	close(fd);
	{
		char *d = strchr(reply, '$'), *h = strchr(reply, '#');

		memmove(reply, d + 1, (size_t)(h - d - 1));
		reply[h - d - 1] = '\0';
	}
}

/* ---- the scenarios ---- */

static double t_start;

static void say(const char *fmt, ...)
{
	va_list ap;

	printf("[%5.2f s] ok: ", now_s() - t_start);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
}

static char out[1 << 18];

static void write_image(const char *path, uint8_t *img, size_t n)
{
	FILE *f = fopen(path, "wb");

	for (size_t i = 0; i < n; i++)
		img[i] = (uint8_t)(i * 131u + (i >> 8) * 7u + 0x5Au);
	/* A vector table: initial SP in RAM, reset vector in flash (Thumb). */
	img[0] = 0x00; img[1] = 0x00; img[2] = 0x04; img[3] = 0x20;
	img[4] = 0x01; img[5] = 0x02; img[6] = 0x00; img[7] = 0x00;
	CHECK(f && fwrite(img, 1, n, f) == n && fclose(f) == 0, "write %s", path);
}

static void legacy(const struct board *b, const char *image, const char *image_small,
		   const uint8_t *img)
{
	char con[4096], reply[8192], hex[64], log[128];
	struct gdb g;
	uint32_t d0, d1;
	const char *examine[] = { "mdw 0x10000060 2", "mdw 0x10000104", "echo status=[vboard_approtect_status]", NULL };
	const char *recover[] = { "vboard_nrf52_eraseall", "mdw 0x0 2", "mdw 0x10001208",
				  "echo status=[vboard_approtect_status]", NULL };
	char prog[256], verify[256];
	const char *program[] = { "reset halt", prog, "reset run", NULL };
	const char *verify_cmds[] = { "halt", verify, NULL };

	/* Examine, FICR */
	expect_ok(b->bitbang, examine, out, sizeof(out), "examine");
	CHECK(has(out, "Cortex-M4 r0p1 processor detected"), "OpenOCD did not examine the core:\n%s", out);
	d0 = mdw_word(out, "0x10000060", 0);
	d1 = mdw_word(out, "0x10000060", 1);
	snprintf(hex, sizeof(hex), "%02x%02x%02x%02x%02x%02x%02x%02x", d0 & 0xFF, (d0 >> 8) & 0xFF,
		 (d0 >> 16) & 0xFF, d0 >> 24, d1 & 0xFF, (d1 >> 8) & 0xFF, (d1 >> 16) & 0xFF, d1 >> 24);
	CHECK(strcmp(hex, b->deviceid) == 0, "FICR DEVICEID %s, the vboard reports %s", hex, b->deviceid);
	CHECK(mdw_word(out, "0x10000104", 0) == 0x41414430u, "INFO.VARIANT is not AAD0");
	CHECK(status_in(out) == 1, "a new legacy board is protected");
	say("legacy board examined, DEVICEID %s matches\n", hex);

	/* Program and verify with the nrf5 driver, check from the model's side. */
	snprintf(prog, sizeof(prog), "program %s 0 verify", image);
	expect_ok(b->bitbang, program, out, sizeof(out), "program");
	CHECK(has(out, "** Verified OK **"), "program did not verify:\n%s", out);
	snprintf(verify, sizeof(verify), "verify_image %s 0", image);
	expect_ok(b->bitbang, verify_cmds, out, sizeof(out), "verify_image");
	CHECK(has(out, "verified") && !has(out, "checksum mismatch"), "verify_image failed:\n%s", out);
	vboard_rsp_read(b->rsp, "m0,10", reply, sizeof(reply));
	for (int i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", img[i]);
	CHECK(strcmp(reply, hex) == 0, "flash holds %s, the image %s", reply, hex);
	CHECK(!has(out, "falling back"), "the nrf5 driver did not use its loader on the core");
	/* A wrong CRC from the core would be covered up by a binary compare. */
	CHECK(!has(out, "checksum mismatch"), "the CRC computed on the core was wrong:\n%s", out);
	say("program ... verify through the nrf5 driver's loader run on the core; the model holds the image\n");

	/* Without a work area: the driver's register-level path, host-side verify. */
	snprintf(prog, sizeof(prog), "program %s 0x40000 verify", image_small);
	pre_cfg = "set VBOARD_WORKAREASIZE 0";
	expect_ok(b->bitbang, program, out, sizeof(out), "program without a work area");
	pre_cfg = NULL;
	CHECK(has(out, "falling back to slow memory writes") && has(out, "** Verified OK **"),
	      "program without a work area did not verify through the NVMC path:\n%s", out);
	vboard_rsp_read(b->rsp, "m40000,10", reply, sizeof(reply));
	CHECK(strcmp(reply, hex) == 0, "flash at 0x40000 holds %s, the image %s", reply, hex);
	say("program ... verify without a work area (word by word through the NVMC)\n");

	/* GDB: memory map, a read, then the lock inside the same session. */
	snprintf(log, sizeof(log), "%s/ocd-gdb.log", tmpdir);
	gdb_start(&g, b->bitbang, log);
	CHECK(gdb_cmd(&g, "qSupported:multiprocess+", reply, sizeof(reply), NULL, 0), "qSupported");
	CHECK(has(reply, "qXfer:memory-map:read+"), "no memory map offered: %s", reply);
	CHECK(gdb_cmd(&g, "qXfer:memory-map:read::0,fff", reply, sizeof(reply), NULL, 0), "memory map");
	CHECK(has(reply, "type=\"flash\" start=\"0x00000000\" length=\"0x100000\"") &&
	      has(reply, "type=\"flash\" start=\"0x10001000\""), "memory map without the flash regions: %s", reply);
	CHECK(gdb_cmd(&g, "m0,4", reply, sizeof(reply), NULL, 0), "m0,4");
	CHECK(strncmp(reply, hex, 8) == 0, "gdb read %s, flash holds %.8s", reply, hex);
	/* vFlash into one page at 0x80000: erase, write, done, read back */
	gdb_monitor(&g, "halt", con, sizeof(con));
	CHECK(gdb_cmd(&g, "vFlashErase:80000,1000", reply, sizeof(reply), NULL, 0), "vFlashErase");
	CHECK(strcmp(reply, "OK") == 0, "vFlashErase answered %s", reply);
	gdb_vflash_write(&g, 0x80000, img + 0x100, 1024, reply, sizeof(reply));
	CHECK(strcmp(reply, "OK") == 0, "vFlashWrite answered %s", reply);
	CHECK(gdb_cmd(&g, "vFlashDone", reply, sizeof(reply), NULL, 0), "vFlashDone");
	CHECK(strcmp(reply, "OK") == 0, "vFlashDone answered %s", reply);
	vboard_rsp_read(b->rsp, "m80000,10", reply, sizeof(reply));
	for (int i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", img[0x100 + i]);
	CHECK(strcmp(reply, hex) == 0, "after vFlash the model holds %s at 0x80000, not %s", reply, hex);
	CHECK(gdb_cmd(&g, "m80000,4", reply, sizeof(reply), NULL, 0), "m80000,4");
	CHECK(strncmp(reply, hex, 8) == 0, "gdb read %s at 0x80000, flash holds %.8s", reply, hex);
	say("GDB: memory map with both flash banks; vFlashErase/Write/Done program the model\n");
	gdb_monitor(&g, "flash fillw 0x10001208 0xFFFFFF00 1", con, sizeof(con));
	gdb_monitor(&g, "reset run", con, sizeof(con));
	CHECK(gdb_cmd(&g, "m0,4", reply, sizeof(reply), NULL, 0), "m0,4 after the lock");
	CHECK(reply[0] == 'E', "a read of flash on the locked board answered '%s', not an error", reply);
	CHECK(gdb_cmd(&g, "m10001208,4", reply, sizeof(reply), NULL, 0), "m10001208,4");
	CHECK(reply[0] == 'E', "a read of UICR on the locked board answered '%s', not an error", reply);
	snprintf(hex, sizeof(hex), "%.8s", reply);
	gdb_monitor(&g, "echo status=[vboard_approtect_status]", con, sizeof(con));
	CHECK(status_in(con) == 0, "APPROTECTSTATUS does not say protected: %s", con);
	gdb_stop(&g);
	say("after the lock GDB reads of flash and UICR fail (%s), APPROTECTSTATUS 0\n", hex);

	/* A new connection to a protected part is refused (closed unanswered). */
	gdb_start_tcp(&g, b->bitbang, log);
	gdb_send(&g, "qSupported");
	CHECK(!gdb_read_packet(&g, reply, sizeof(reply), 30), "OpenOCD accepted a GDB connection to a protected part: %s", reply);
	gdb_stop(&g);
	say("a new GDB connection to the protected part is refused\n");

	/* Recovery through the CTRL-AP. */
	expect_ok(b->bitbang, recover, out, sizeof(out), "recover");
	CHECK(status_in(out) == 1, "ERASEALL did not open the port:\n%s", out);
	CHECK(mdw_word(out, "0x00000000", 0) == 0xFFFFFFFFu && mdw_word(out, "0x10001208", 0) == 0xFFFFFFFFu,
	      "ERASEALL left flash or UICR:\n%s", out);
	say("ERASEALL through the CTRL-AP erased flash and UICR and opened the port\n");
}

static void hardened(const struct board *b, const char *image)
{
	char prog[256], verify[256];
	const char *status[] = { "echo status=[vboard_approtect_status]", "mdw 0x10000104", NULL };
	const char *status_only[] = { "echo status=[vboard_approtect_status]", NULL };
	const char *open_it[] = { "vboard_nrf52_eraseall", "halt", "flash fillw 0x10001208 0xFFFFFF5A 1",
				  prog, verify, "reset run", "echo status=[vboard_approtect_status]", NULL };
	const char *reset_halt[] = { "reset halt", NULL };
	const char *ctrl_reset[] = { "nrf52.dap apreg 1 0 1", "nrf52.dap apreg 1 0 0",
				     "echo status=[vboard_approtect_status]", NULL };
	const char *lock[] = { "halt", "flash fillw 0x10001208 0xFFFFFF00 1", "reset run",
			       "echo status=[vboard_approtect_status]", NULL };
	const char *erase_reset[] = { "vboard_nrf52_eraseall", "nrf52.dap apreg 1 0 1",
				      "nrf52.dap apreg 1 0 0", "echo status=[vboard_approtect_status]", NULL };
	int rc;

	rc = openocd_batch(b->bitbang, status_only, out, sizeof(out));
	CHECK(rc == 0, "openocd on a protected part exited %d:\n%s", rc, out);
	CHECK(has(out, "Could not find MEM-AP"), "OpenOCD examined a protected part:\n%s", out);
	CHECK(status_in(out) == 0, "a new hardened part is not protected");
	say("a new hardened part is protected (OpenOCD finds no MEM-AP)\n");

	/* No "program": its reset would protect the part again before the
	 * firmware is there, as on the real part. Write, then verify. */
	snprintf(prog, sizeof(prog), "flash write_image erase %s 0", image);
	snprintf(verify, sizeof(verify), "verify_image %s 0", image);
	expect_ok(b->bitbang, open_it, out, sizeof(out), "open hardened");
	CHECK(has(out, "verified 12288 bytes"), "the image on the hardened part did not verify:\n%s", out);
	CHECK(status_in(out) == 1, "UICR HwDisabled + firmware SwDisable did not keep it open:\n%s", out);
	expect_ok(b->bitbang, status, out, sizeof(out), "variant");
	CHECK(mdw_word(out, "0x10000104", 0) == 0x41414630u, "INFO.VARIANT is not AAF0");
	say("hardened part open over reset with UICR HwDisabled and firmware SwDisable\n");

	rc = openocd_batch(b->bitbang, reset_halt, out, sizeof(out));
	rc = openocd_batch(b->bitbang, status_only, out, sizeof(out));
	CHECK(status_in(out) == 0, "a reset that halts before the firmware left the hardened part open");
	expect_ok(b->bitbang, ctrl_reset, out, sizeof(out), "ctrl-ap reset");
	CHECK(status_in(out) == 1, "a CTRL-AP reset with running firmware did not open it:\n%s", out);
	say("reset halt (no firmware run) leaves it protected; a running boot opens it\n");

	expect_ok(b->bitbang, lock, out, sizeof(out), "lock hardened");
	rc = openocd_batch(b->bitbang, status_only, out, sizeof(out));
	CHECK(status_in(out) == 0 && has(out, "Could not find MEM-AP"), "UICR APPROTECT Enabled did not protect:\n%s", out);
	say("UICR APPROTECT = Enabled protects the hardened part despite the firmware\n");

	expect_ok(b->bitbang, erase_reset, out, sizeof(out), "erase + reset");
	CHECK(status_in(out) == 0, "after ERASEALL (UICR erased) a reset left the hardened part open:\n%s", out);
	say("after ERASEALL the erased UICR protects the hardened part again at reset\n");
}

/* Flash that reads back wrong: OpenOCD's verification (on-chip CRC) fails. */
static void tampered(const char *exe, const char *image)
{
	struct board t;
	char prog[256];
	const char *program[] = { "reset halt", prog, NULL };
	int rc;

	start_vboard(exe, &t, 1, "legacy", "--tamper-readback");
	snprintf(prog, sizeof(prog), "program %s 0 verify", image);
	rc = openocd_batch(t.bitbang, program, out, sizeof(out));
	CHECK(rc != 0 && has(out, "Verify Failed") && !has(out, "Verified OK"),
	      "program ... verify passed on flash that reads back wrong (exit %d):\n%s", rc, out);
	say("flash that reads back wrong fails OpenOCD's verification\n");
}

int main(int argc, char **argv)
{
	struct board b[2];
	static uint8_t img[12 * 1024];
	char image[128], image_small[128];
	static uint8_t small[4096];

	if (argc != 4) {
		fprintf(stderr, "usage: %s IMPRINT-VBOARD OPENOCD CFG\n", argv[0]);
		return 2;
	}
	openocd_exe = argv[2];
	cfg_path = argv[3];
	signal(SIGPIPE, SIG_IGN);
	t_start = now_s();
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/imprint-it-ocd.XXXXXX");
	CHECK(mkdtemp(tmpdir), "mkdtemp");
	snprintf(image, sizeof(image), "%s/image.bin", tmpdir);
	write_image(image, img, sizeof(img));
	snprintf(image_small, sizeof(image_small), "%s/small.bin", tmpdir);
	write_image(image_small, small, sizeof(small));
	start_vboard(argv[1], b, 2, "legacy,hardened", NULL);
	CHECK(strcmp(b[0].revision, "legacy") == 0 && strcmp(b[1].revision, "hardened") == 0,
	      "revisions %s, %s", b[0].revision, b[1].revision);
	legacy(&b[0], image, image_small, img);
	hardened(&b[1], image);
	/* A clean stop (the sanitizer build checks the vboard's exit here). */
	{
		int st = 0;

		kill(vb_pid, SIGTERM);
		CHECK(waitpid(vb_pid, &st, 0) == vb_pid, "waitpid vboard");
		vb_pid = -1;
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the vboard did not stop cleanly (status 0x%x)", st);
	}
	/* Every ERASEALL asked for ran once: legacy 1 (recovery), hardened 2. */
	{
		char path[96], buf[512];
		FILE *f;
		size_t n;

		snprintf(path, sizeof(path), "%s/stats", tmpdir);
		f = fopen(path, "r");
		CHECK(f, "no --stats file");
		n = fread(buf, 1, sizeof(buf) - 1, f);
		buf[n] = '\0';
		fclose(f);
		CHECK(has(buf, "{\"board\":0,") && has(buf, "\"mass_erases\":1}\n{\"board\":1,") &&
		      has(buf, "\"mass_erases\":2}"), "mass erases per board: %s", buf);
		say("each ERASEALL ran once (vboard --stats)\n");
	}
	tampered(argv[1], image);
	cleanup();
	printf("PASS\n");
	return 0;
}
