/*
 * The rsp probe driver against a small scripted RSP server in a thread:
 * timing faults real servers cannot be made to produce on demand (a
 * monitor command or vFlashDone that never answers), counted so that a
 * resend shows, and the replies that must never read as "locked" or as a
 * UID (OpenOCD's E0E, zeros and OK).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "board/probe.h"
#include "board/profile.h"
#include "board/rsp.h"
#include "imprint/log.h"
#include "imprint/util.h"

#ifndef IMPRINT_SOURCE_DIR
#define IMPRINT_SOURCE_DIR "."
#endif

enum mode {
	M_OPENOCD,        /* "monitor version" says OpenOCD */
	M_VBOARD,         /* qSupported names imprint-vboard */
};

struct fake {
	int lfd, fd, port;
	pthread_t th;
	enum mode mode;
	bool with_flash_map;
	bool uid_zeros;             /* 'm' of the UID answers zeros and OK */
	bool reads_fail;            /* 'm' answers E0E */
	uint32_t approtectstatus;   /* "nrf52.dap apreg 1 0xc" */
	unsigned never_answer_ms;   /* swallow these commands: */
	const char *never_answer;   /* payload prefix, or NULL */
	/* counters, read after the thread ended */
	int n_rcmd_erase, n_flash_done, n_flash_erase, n_after_stall, n_packets;
	bool stalled;
	uint8_t flash[8192];        /* flash at 0, blocksize 4096 */
	uint32_t erased_from, erased_len;
	uint8_t mem[64];            /* RAM at 0x20000000 */
};

static void fsend(struct fake *f, const char *payload, size_t n)
{
	uint8_t buf[9000];
	size_t len = board_rsp_frame((const uint8_t *)payload, n, buf, sizeof(buf));

	(void)!send(f->fd, buf, len, MSG_NOSIGNAL);
}

static void fsends(struct fake *f, const char *s)
{
	fsend(f, s, strlen(s));
}

static void console(struct fake *f, const char *text)
{
	char hex[600] = "O";

	imp_hex_encode((const uint8_t *)text, strlen(text), hex + 1);
	fsends(f, hex);
}

static void handle_rcmd(struct fake *f, const char *cmd)
{
	if (strcmp(cmd, "version") == 0) {
		if (f->mode == M_OPENOCD)
			console(f, "Open On-Chip Debugger 0.12.0\n");
		fsends(f, "OK");
	} else if (strcmp(cmd, "dap names") == 0) {
		console(f, "nrf52.dap\n");
		fsends(f, "OK");
	} else if (strcmp(cmd, "sleep 3000") == 0) {
		/* OpenOCD: an empty O packet every 500 ms while it runs. */
		for (int i = 0; i < 6; i++) {
			usleep(500000);
			fsends(f, "O");
		}
		fsends(f, "OK");
	} else if (strstr(cmd, "catch {nrf52.dap apreg 1 0xc}")) {
		char v[64];

		/* OpenOCD mixes its log in; the driver's marker line follows. */
		console(f, "Polling target nrf52.cpu failed, trying to reexamine\n");
		snprintf(v, sizeof(v), "imprint-ap:0x%08x\n", f->approtectstatus);
		console(f, v);
		fsends(f, "OK");
	} else if (strcmp(cmd, "dap apreg 1 0xc") == 0 && f->mode == M_VBOARD) {
		char v[32];

		snprintf(v, sizeof(v), "0x%08x\n", f->approtectstatus);
		console(f, v);
		fsends(f, "OK");
	} else if (strcmp(cmd, "nrf52_recover") == 0) {
		f->n_rcmd_erase++;
		/* the never_answer path handles the stall */
		fsends(f, "OK");
	} else {
		console(f, "invalid command name\n");
		fsends(f, "OK");
	}
}

static void handle(struct fake *f, char *p, size_t n)
{
	char cmd[256];

	p[n] = '\0';
	f->n_packets++;
	if (f->stalled) {
		f->n_after_stall++;
		return;
	}
	if (f->never_answer && strncmp(p, f->never_answer, strlen(f->never_answer)) == 0) {
		if (strncmp(p, "qRcmd,", 6) == 0)
			f->n_rcmd_erase++;
		if (strcmp(p, "vFlashDone") == 0)
			f->n_flash_done++;
		f->stalled = true;
		return;
	}
	if (strncmp(p, "qSupported", 10) == 0) {
		fsends(f, f->mode == M_VBOARD ? "PacketSize=1000;imprint-vboard+" :
			   f->with_flash_map ? "PacketSize=1000;qXfer:memory-map:read+" :
			   "PacketSize=1000");
	} else if (strcmp(p, "?") == 0) {
		fsends(f, "S05");
	} else if (strncmp(p, "qRcmd,", 6) == 0) {
		size_t k = (n - 6) / 2;

		if (k >= sizeof(cmd) || imp_hex_decode(p + 6, (uint8_t *)cmd, k) != IMP_OK) {
			fsends(f, "E01");
			return;
		}
		cmd[k] = '\0';
		handle_rcmd(f, cmd);
	} else if (strncmp(p, "qXfer:memory-map:read::", 23) == 0) {
		static const char map[] =
			"<memory-map><memory type=\"flash\" start=\"0x0\" length=\"0x2000\">"
			"<property name=\"blocksize\">0x1000</property></memory>"
			"<memory type=\"ram\" start=\"0x20000000\" length=\"0x40\"/></memory-map>";
		unsigned long off = strtoul(p + 23, NULL, 16);
		char r[400];

		if (off >= sizeof(map) - 1) {
			fsends(f, "l");
			return;
		}
		snprintf(r, sizeof(r), "l%s", map + off);
		fsends(f, r);
	} else if (p[0] == 'm') {
		unsigned long addr = strtoul(p + 1, NULL, 16);
		unsigned long len = strtoul(strchr(p, ',') + 1, NULL, 16);
		char r[600];

		if (f->reads_fail || len > 256) {
			fsends(f, f->mode == M_VBOARD ? "E51" : "E0E");
			return;
		}
		for (unsigned long i = 0; i < len; i++) {
			uint8_t b = 0;

			if (addr >= 0x20000000 && addr + i < 0x20000000 + sizeof(f->mem))
				b = f->mem[addr - 0x20000000 + i];
			else if (addr + i < sizeof(f->flash))
				b = f->flash[addr + i];
			else if (!f->uid_zeros)
				b = (uint8_t)(0xA0 + i);
			snprintf(r + 2 * i, 3, "%02x", b);
		}
		fsends(f, r);
	} else if (p[0] == 'X' || p[0] == 'M') {
		fsends(f, "OK");
	} else if (strncmp(p, "vFlashErase:", 12) == 0) {
		char *c = NULL;

		f->n_flash_erase++;
		f->erased_from = (uint32_t)strtoul(p + 12, &c, 16);
		f->erased_len = (uint32_t)strtoul(c + 1, NULL, 16);
		if (f->erased_from % 4096 || f->erased_len % 4096 ||
		    f->erased_from + f->erased_len > sizeof(f->flash)) {
			fsends(f, "E01");
			return;
		}
		memset(f->flash + f->erased_from, 0xFF, f->erased_len);
		fsends(f, "OK");
	} else if (strncmp(p, "vFlashWrite:", 12) == 0) {
		char *c = NULL;
		uint32_t a = (uint32_t)strtoul(p + 12, &c, 16);
		size_t len = n - (size_t)(c + 1 - p);

		/* The payload arrives unescaped here (board_rsp_parse decoded it). */
		if (a + len > sizeof(f->flash)) {
			fsends(f, "E.memtype");
			return;
		}
		memcpy(f->flash + a, c + 1, len);
		fsends(f, "OK");
	} else if (strcmp(p, "vFlashDone") == 0) {
		f->n_flash_done++;
		fsends(f, "OK");
	} else if (strncmp(p, "qCRC:", 5) == 0) {
		char *c = NULL;
		uint32_t a = (uint32_t)strtoul(p + 5, &c, 16);
		uint32_t len = (uint32_t)strtoul(c + 1, NULL, 16);
		char r[16];

		if (a + len > sizeof(f->flash)) {
			fsends(f, "E01");
			return;
		}
		snprintf(r, sizeof(r), "C%08x", board_rsp_crc32(0xFFFFFFFFu, f->flash + a, len));
		fsends(f, r);
	} else {
		fsends(f, "");
	}
}

static void *serve(void *arg)
{
	struct fake *f = arg;
	static uint8_t rx[20000], pkt[BOARD_RSP_MAX_PAYLOAD + 1];
	size_t len = 0;

	f->fd = accept(f->lfd, NULL, NULL);
	if (f->fd < 0)
		return NULL;
	for (;;) {
		ssize_t got = read(f->fd, rx + len, sizeof(rx) - len);

		if (got <= 0)
			break;
		len += (size_t)got;
		for (;;) {
			size_t plen = 0, used = 0;
			enum board_rsp_result res =
				board_rsp_parse(rx, len, pkt, BOARD_RSP_MAX_PAYLOAD, &plen, &used, NULL);

			memmove(rx, rx + used, len - used);
			len -= used;
			if (res == BOARD_RSP_NEED_MORE)
				break;
			if (res == BOARD_RSP_PACKET) {
				(void)!send(f->fd, "+", 1, MSG_NOSIGNAL);
				handle(f, (char *)pkt, plen);
			}
		}
	}
	close(f->fd);
	return NULL;
}

static struct fake *fake_start(enum mode mode)
{
	struct fake *f = calloc(1, sizeof(*f));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t l = sizeof(a);

	f->mode = mode;
	f->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(f->lfd, 1), 0);
	getsockname(f->lfd, (struct sockaddr *)&a, &l);
	f->port = ntohs(a.sin_port);
	f->approtectstatus = 1;
	for (size_t i = 0; i < sizeof(f->flash); i++)
		f->flash[i] = (uint8_t)i;
	pthread_create(&f->th, NULL, serve, f);
	return f;
}

/* Wait for the server thread (the probe closed its end). */
static void fake_join(struct fake *f)
{
	pthread_join(f->th, NULL);
	close(f->lfd);
}

static struct board_probe *open_probe(struct fake *f, const char *keys)
{
	struct board_probe *p = NULL;
	char uri[256];

	snprintf(uri, sizeof(uri), "rsp://127.0.0.1:%d?noack=0%s", f->port, keys);
	assert_int_equal(board_probe_open(uri, &p), IMP_OK);
	return p;
}

static void test_long_monitor_keeps_step(void **state)
{
	struct fake *f = fake_start(M_OPENOCD);
	struct board_probe *p = open_probe(f, "&data_abort=1&timeout_ms=1000");
	uint64_t t0 = imp_now_ns();
	uint8_t b[8];
	char out[64];

	(void)state;
	memcpy(f->mem, "\x11\x22\x33\x44\x55\x66\x77\x88", 8);
	/* 3 s, longer than the 1 s packet timeout: the monitor has its own. */
	assert_int_equal(board_probe_monitor(p, "sleep 3000", out, sizeof(out)), IMP_OK);
	assert_true(imp_now_ns() - t0 >= 2900000000ull);
	/* In step: the next two reads get their own answers. */
	assert_int_equal(board_probe_read(p, 0x20000000, b, 4), IMP_OK);
	assert_memory_equal(b, "\x11\x22\x33\x44", 4);
	assert_int_equal(board_probe_read(p, 0x20000004, b, 4), IMP_OK);
	assert_memory_equal(b, "\x55\x66\x77\x88", 4);
	board_probe_close(p);
	fake_join(f);
	free(f);
}

static void test_mass_erase_never_sent_twice(void **state)
{
	struct fake *f = fake_start(M_OPENOCD);
	struct board_probe *p = open_probe(f, "&data_abort=1&timeout_ms=300&retries=5&"
					      "monitor_timeout_ms=800");
	uint8_t b[4];
	char out[64];

	(void)state;
	f->never_answer = "qRcmd,";
	imp_log_set_level(IMP_LOG_QUIET);
	{
		uint64_t t0 = imp_now_ns(), dt;

		assert_int_equal(board_probe_monitor(p, "nrf52_recover", out, sizeof(out)),
				 IMP_ERR_TIMEOUT);
		dt = imp_now_ns() - t0;
		assert_true(dt >= 800000000ull && dt < 1100000000ull);
	}
	/* Out of step now: nothing more goes out, a read fails at once. */
	assert_int_equal(board_probe_read(p, 0x20000000, b, 4), IMP_ERR_PROBE);
	imp_log_set_level(IMP_LOG_INFO);
	board_probe_close(p);
	fake_join(f);
	assert_int_equal(f->n_rcmd_erase, 1);
	assert_int_equal(f->n_after_stall, 0);
	free(f);
}

static void test_vflash_program_and_crc(void **state)
{
	struct fake *f = fake_start(M_OPENOCD);
	struct board_probe *p;
	uint8_t img[5000];
	uint32_t crc = 0;

	(void)state;
	f->with_flash_map = true;
	p = open_probe(f, "&data_abort=1");
	for (size_t i = 0; i < sizeof(img); i++)
		img[i] = (uint8_t)(i * 7 + 3);
	memcpy(img, "#$}*", 4); /* escaped bytes */
	assert_int_equal(board_probe_flash_program(p, 100, img, sizeof(img)), IMP_OK);
	assert_int_equal(board_probe_crc32(p, 100, sizeof(img), &crc), IMP_OK);
	assert_int_equal(crc, board_rsp_crc32(0xFFFFFFFFu, img, sizeof(img)));
	/* Outside every flash region: not the server's flash driver. */
	assert_int_equal(board_probe_flash_program(p, 0x20000000, img, 16), IMP_ERR_UNSUPPORTED);
	board_probe_close(p);
	fake_join(f);
	/* Whole blocks erased around 100..5099, the bytes where they belong. */
	assert_int_equal(f->erased_from, 0);
	assert_int_equal(f->erased_len, 8192);
	assert_memory_equal(f->flash + 100, img, sizeof(img));
	assert_int_equal(f->n_flash_done, 1);
	free(f);
}

static void test_vflash_done_timeout_not_retried(void **state)
{
	struct fake *f = fake_start(M_OPENOCD);
	struct board_probe *p;
	uint8_t img[64] = { 1, 2, 3 };
	uint8_t b[4];

	(void)state;
	f->with_flash_map = true;
	f->never_answer = "vFlashDone";
	p = open_probe(f, "&data_abort=1&retries=5&flash_timeout_ms=700");
	imp_log_set_level(IMP_LOG_QUIET);
	{
		/* The wait is blocking receives in slices, then a poll: the
		 * timeout keeps its length. */
		uint64_t t0 = imp_now_ns(), dt;

		assert_int_equal(board_probe_flash_program(p, 0, img, sizeof(img)),
				 IMP_ERR_TIMEOUT);
		dt = imp_now_ns() - t0;
		assert_true(dt >= 700000000ull && dt < 1000000000ull);
	}
	assert_int_equal(board_probe_read(p, 0x20000000, b, 4), IMP_ERR_PROBE);
	imp_log_set_level(IMP_LOG_INFO);
	board_probe_close(p);
	fake_join(f);
	assert_int_equal(f->n_flash_erase, 1);
	assert_int_equal(f->n_flash_done, 1);
	assert_int_equal(f->n_after_stall, 0);
	free(f);
}

static void test_error_codes_are_not_locks(void **state)
{
	struct fake *f = fake_start(M_OPENOCD);
	struct board_probe *p = open_probe(f, "&data_abort=1");
	uint8_t b[4];

	(void)state;
	f->reads_fail = true;
	imp_log_set_level(IMP_LOG_QUIET);
	/* E0E from OpenOCD: an access error, never "locked". */
	assert_int_equal(board_probe_read(p, 0x10000060, b, 4), IMP_ERR_PROBE);
	imp_log_set_level(IMP_LOG_INFO);
	board_probe_close(p);
	fake_join(f);
	free(f);

	/* E51 is "locked" only from imprint-vboard. */
	f = fake_start(M_VBOARD);
	p = open_probe(f, "");
	f->reads_fail = true;
	board_probe_expect_locked(p, true);
	assert_int_equal(board_probe_read(p, 0x10000060, b, 4), IMP_ERR_TARGET_LOCKED);
	board_probe_close(p);
	fake_join(f);
	free(f);

	f = fake_start(M_OPENOCD);
	p = open_probe(f, "&server=openocd&data_abort=1");
	f->reads_fail = true;
	f->mode = M_VBOARD; /* the server now answers E51, but it is OpenOCD */
	imp_log_set_level(IMP_LOG_QUIET);
	assert_int_equal(board_probe_read(p, 0x10000060, b, 4), IMP_ERR_PROBE);
	imp_log_set_level(IMP_LOG_INFO);
	board_probe_close(p);
	fake_join(f);
	free(f);
}

static void test_openocd_without_data_abort_refused(void **state)
{
	struct fake *f = fake_start(M_OPENOCD);
	struct board_probe *p = NULL;
	char uri[128];

	(void)state;
	snprintf(uri, sizeof(uri), "rsp://127.0.0.1:%d", f->port);
	imp_log_set_level(IMP_LOG_QUIET);
	assert_int_equal(board_probe_open(uri, &p), IMP_ERR_CONFIG);
	imp_log_set_level(IMP_LOG_INFO);
	assert_null(p);
	fake_join(f);
	free(f);
	/* pyOCD unless its hazards are declared off. */
	f = fake_start(M_OPENOCD);
	snprintf(uri, sizeof(uri), "rsp://127.0.0.1:%d?server=pyocd&cache=off", f->port);
	imp_log_set_level(IMP_LOG_QUIET);
	assert_int_equal(board_probe_open(uri, &p), IMP_ERR_CONFIG);
	imp_log_set_level(IMP_LOG_INFO);
	fake_join(f);
	free(f);
}

static void test_zeros_and_ok_are_no_uid(void **state)
{
	struct board_profile *prof = NULL;
	struct fake *f;
	struct board_probe *p;
	uint8_t uid[64];
	size_t n = 0;

	(void)state;
	assert_int_equal(board_profile_load(IMPRINT_SOURCE_DIR
					    "/board/profiles/nordic-nrf52840.json", NULL, &prof),
			 IMP_OK);
	/* Zeros and OK, the chip's CTRL-AP says locked: locked, never a UID. */
	f = fake_start(M_OPENOCD);
	p = open_probe(f, "&data_abort=1");
	f->uid_zeros = true;
	f->approtectstatus = 0;
	imp_log_set_level(IMP_LOG_QUIET);
	board_probe_expect_locked(p, true);
	assert_int_equal(board_profile_read_uid(prof, p, uid, sizeof(uid), &n),
			 IMP_ERR_TARGET_LOCKED);
	assert_int_equal(n, 0);
	/* ... and lock verification says locked, from APPROTECTSTATUS. */
	assert_int_equal(board_profile_verify_lock(prof, p, NULL), IMP_OK);
	/* Zeros and OK, CTRL-AP says open: neither a UID nor "locked". */
	f->approtectstatus = 1;
	assert_int_equal(board_profile_read_uid(prof, p, uid, sizeof(uid), &n), IMP_ERR_PROBE);
	assert_int_equal(board_profile_verify_lock(prof, p, NULL), IMP_ERR_VERIFY);
	/* A refused read (E0E) with the CTRL-AP open: NOT locked. */
	f->reads_fail = true;
	assert_int_equal(board_profile_verify_lock(prof, p, NULL), IMP_ERR_VERIFY);
	imp_log_set_level(IMP_LOG_INFO);
	board_probe_close(p);
	fake_join(f);
	free(f);
	board_profile_free(prof);
}

/* imprint-vboard: E51 is a lock, and its CTRL-AP answers "dap apreg". */
static void test_vboard_lock_status(void **state)
{
	struct board_profile *prof = NULL;
	struct fake *f = fake_start(M_VBOARD);
	struct board_probe *p = open_probe(f, "");
	int locked = -1;

	(void)state;
	assert_int_equal(board_profile_load("nordic-nrf52840", NULL, &prof), IMP_OK);
	f->approtectstatus = 0;
	assert_int_equal(board_profile_lock_status(prof, p, &locked), IMP_OK);
	assert_int_equal(locked, 1);
	f->reads_fail = true;
	board_probe_expect_locked(p, true);
	assert_int_equal(board_profile_verify_lock(prof, p, NULL), IMP_OK);
	/* E51 with the CTRL-AP saying open: the chip's word wins, NOT locked. */
	f->approtectstatus = 1;
	imp_log_set_level(IMP_LOG_QUIET);
	assert_int_equal(board_profile_verify_lock(prof, p, NULL), IMP_ERR_VERIFY);
	imp_log_set_level(IMP_LOG_INFO);
	board_probe_close(p);
	fake_join(f);
	free(f);
	board_profile_free(prof);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_long_monitor_keeps_step),
		cmocka_unit_test(test_mass_erase_never_sent_twice),
		cmocka_unit_test(test_vflash_program_and_crc),
		cmocka_unit_test(test_vflash_done_timeout_not_retried),
		cmocka_unit_test(test_error_codes_are_not_locks),
		cmocka_unit_test(test_openocd_without_data_abort_refused),
		cmocka_unit_test(test_zeros_and_ok_are_no_uid),
		cmocka_unit_test(test_vboard_lock_status),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
