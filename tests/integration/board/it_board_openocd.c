/*
 * The openocd:// and rsp:// drivers against real OpenOCD (Debian's 0.12)
 * driving imprint-vboard's nRF52840 model over remote_bitbang, one failure
 * mode per test:
 *   - a monitor command of 3 s (OpenOCD's empty O keep-alives) keeps the
 *     driver in step;
 *   - E0E (a read of unmapped memory) is an access error, not a lock;
 *   - vFlash programming and qCRC verification through OpenOCD's flash
 *     driver; a vFlashDone that times out is not sent again;
 *   - a mass erase (CTRL-AP ERASEALL) whose answer times out runs once;
 *   - zeros and OK from a locked target (an OpenOCD without data-abort
 *     reporting) are never taken for a UID or for "unlocked";
 *   - a refused connection (OpenOCD started on a locked part) still yields
 *     a positive "locked" through the CTRL-AP.
 *
 * usage: it_board_openocd VBOARD OPENOCD CFG
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "board/probe.h"
#include "board/profile.h"
#include "board/rsp.h"
#include "imprint/log.h"
#include "imprint/util.h"
#include "it_util.h"

static const char *vboard_exe, *openocd_exe, *cfg;
static struct it_child vb;
static char vb_err[256];          /* the vboard's stderr, a file */
static char bitbang[2][16];       /* remote_bitbang ports */
static char deviceid[2][24];
static struct board_profile *prof;

/* The chips keep their modelled times (--latency 1): a CTRL-AP ERASEALL
 * takes its 169 ms, so a 1 ms monitor timeout below is a timeout however
 * fast OpenOCD and this machine are. */
static int start_vboard(void **state)
{
	char *argv[] = { (char *)vboard_exe, (char *)"--boards", (char *)"2", (char *)"--chip",
			 (char *)"nordic-nrf52840", (char *)"--revision", (char *)"legacy,legacy",
			 (char *)"--bitbang", (char *)"0", (char *)"--latency", (char *)"1", NULL };
	char line[1024];
	int errfd, saved;

	(void)state;
	snprintf(vb_err, sizeof(vb_err), "/tmp/it_board_openocd.%d.err", (int)getpid());
	errfd = open(vb_err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	saved = dup(2);
	dup2(errfd, 2); /* the child inherits it as its stderr */
	if (it_spawn(&vb, argv, 0) != 0)
		return -1;
	dup2(saved, 2);
	close(saved);
	close(errfd);
	while (it_read_line(&vb, line, sizeof(line), 10000) == 0) {
		char bb[64], id[24];
		int k = strstr(line, "\"board\":0") ? 0 : strstr(line, "\"board\":1") ? 1 : -1;

		if (strstr(line, "\"ready\":true"))
			return board_profile_load("nordic-nrf52840", NULL, &prof) == IMP_OK ? 0 : -1;
		if (k >= 0 && it_json_str(line, "bitbang", bb, sizeof(bb)) == 0 &&
		    it_json_str(line, "deviceid", id, sizeof(id)) == 0) {
			snprintf(bitbang[k], sizeof(bitbang[k]), "%s", strchr(bb, ':') + 1);
			snprintf(deviceid[k], sizeof(deviceid[k]), "%s", id);
		}
	}
	return -1;
}

static int stop_vboard(void **state)
{
	(void)state;
	it_kill(&vb);
	board_profile_free(prof);
	unlink(vb_err);
	return 0;
}

static struct board_probe *open_oocd(int board, const char *keys)
{
	struct board_probe *p = NULL;
	char uri[1024];

	snprintf(uri, sizeof(uri), "openocd://%s?set.VBOARD_PORT=%s&exe=%s%s", cfg, bitbang[board],
		 openocd_exe, keys);
	assert_int_equal(board_probe_open(uri, &p), IMP_OK);
	return p;
}

static void uid_hex(struct board_probe *p, char *hex, imp_err want)
{
	uint8_t uid[16];
	size_t n = 0;

	assert_int_equal(board_profile_read_uid(prof, p, uid, sizeof(uid), &n), want);
	if (want == IMP_OK)
		imp_hex_encode(uid, n, hex);
}

static void test_long_monitor_and_e0e(void **state)
{
	struct board_probe *p = open_oocd(0, "&timeout_ms=1000");
	uint64_t t0;
	char hex[40], out[256];
	uint8_t b[4];

	(void)state;
	uid_hex(p, hex, IMP_OK);
	assert_string_equal(hex, deviceid[0]);
	t0 = imp_now_ns();
	assert_int_equal(board_probe_monitor(p, "sleep 3000", out, sizeof(out)), IMP_OK);
	assert_true(imp_now_ns() - t0 >= 2900000000ull);
	/* In step: the next reads get their own answers. */
	uid_hex(p, hex, IMP_OK);
	assert_string_equal(hex, deviceid[0]);
	/* E0E: a bus error is an access error, never "locked". */
	imp_log_set_level(IMP_LOG_QUIET);
	assert_int_equal(board_probe_read(p, 0x30000000, b, 4), IMP_ERR_PROBE);
	imp_log_set_level(IMP_LOG_INFO);
	uid_hex(p, hex, IMP_OK);
	assert_string_equal(hex, deviceid[0]);
	board_probe_close(p);
}

static void test_vflash_and_crc(void **state)
{
	struct board_probe *p = open_oocd(0, "");
	static uint8_t img[6000];
	uint32_t crc = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(img); i++)
		img[i] = (uint8_t)(i * 13 + 1);
	/* Through OpenOCD's nrf5 driver (vFlash), not the NVMC registers. */
	assert_int_equal(board_probe_flash_program(p, 0x10000, img, sizeof(img)), IMP_OK);
	assert_int_equal(board_probe_crc32(p, 0x10000, sizeof(img), &crc), IMP_OK);
	assert_int_equal(crc, board_rsp_crc32(0xFFFFFFFFu, img, sizeof(img)));
	assert_int_equal(board_profile_verify_flash(prof, p, 0x10000, img, sizeof(img)), IMP_OK);
	img[100] ^= 1;
	imp_log_set_level(IMP_LOG_QUIET);
	assert_int_equal(board_profile_verify_flash(prof, p, 0x10000, img, sizeof(img)),
			 IMP_ERR_VERIFY);
	imp_log_set_level(IMP_LOG_INFO);
	board_probe_close(p);
}

static void test_vflash_done_timeout(void **state)
{
	struct board_probe *p = open_oocd(0, "&flash_timeout_ms=200");
	static uint8_t img[32768];
	uint8_t b[4];
	uint64_t t0 = imp_now_ns();

	(void)state;
	memset(img, 0x5A, sizeof(img));
	imp_log_set_level(IMP_LOG_QUIET);
	/* OpenOCD writes 8192 words through the JTAG-DP at vFlashDone:
	 * seconds, far beyond 200 ms. */
	assert_int_equal(board_probe_flash_program(p, 0x20000, img, sizeof(img)), IMP_ERR_TIMEOUT);
	assert_true(imp_now_ns() - t0 < 2000000000ull);
	/* Out of step: nothing else goes to the server. */
	assert_int_equal(board_probe_read(p, 0x10000060, b, 4), IMP_ERR_PROBE);
	imp_log_set_level(IMP_LOG_INFO);
	board_probe_close(p);
}

static int count_in_file(const char *path, const char *needle)
{
	char buf[65536];
	int fd = open(path, O_RDONLY), n = 0;
	ssize_t got = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;

	if (fd >= 0)
		close(fd);
	if (got <= 0)
		return 0;
	buf[got] = '\0';
	for (char *c = buf; (c = strstr(c, needle)) != NULL; c++)
		n++;
	return n;
}

static void test_mass_erase_once(void **state)
{
	struct board_probe *p = open_oocd(0, "&monitor_timeout_ms=1&retries=5");
	int before = count_in_file(vb_err, "CTRL-AP ERASEALL");
	uint8_t b[4];
	char out[256];

	(void)state;
	imp_log_set_level(IMP_LOG_QUIET);
	assert_int_equal(board_probe_monitor(p, "vboard_nrf52_eraseall", out, sizeof(out)),
			 IMP_ERR_TIMEOUT);
	assert_int_equal(board_probe_read(p, 0x10000060, b, 4), IMP_ERR_PROBE);
	imp_log_set_level(IMP_LOG_INFO);
	usleep(1500000); /* let OpenOCD finish it */
	board_probe_close(p);
	assert_int_equal(count_in_file(vb_err, "CTRL-AP ERASEALL") - before, 1);
}

/* Lock board 1 (UICR APPROTECT Enabled) and reset it through OpenOCD. */
static void lock_board1(struct board_probe *p)
{
	assert_int_equal(board_profile_burn_fuses(prof, p, 1), IMP_OK);
	imp_log_set_level(IMP_LOG_QUIET);
	(void)board_probe_reset(p);
	imp_log_set_level(IMP_LOG_INFO);
}

static void test_zeros_and_ok_and_refused(void **state)
{
	struct it_child oocd;
	struct board_probe *p = NULL;
	int port = it_free_port();
	char gdb[160], setp[48], uri[128], hex[40];
	uint8_t b[16];
	char *argv[] = { (char *)openocd_exe, (char *)"-c", setp, (char *)"-f", (char *)cfg,
			 (char *)"-c", gdb, NULL };

	(void)state;
	/* An OpenOCD someone else runs, with its data-abort default back on. */
	snprintf(setp, sizeof(setp), "set VBOARD_PORT %s", bitbang[1]);
	snprintf(gdb, sizeof(gdb), "gdb_report_data_abort disable; gdb_port %d; tcl_port "
		 "disabled; telnet_port disabled", port);
	assert_int_equal(it_spawn(&oocd, argv, 1), 0);
	snprintf(uri, sizeof(uri), "rsp://127.0.0.1:%d", port);
	imp_log_set_level(IMP_LOG_QUIET);
	for (int i = 0; i < 100 && board_probe_open(uri, &p) == IMP_ERR_PROBE; i++)
		usleep(50000);
	/* Asked, the server says OpenOCD; without data_abort=1: refused. */
	assert_null(p);
	imp_log_set_level(IMP_LOG_INFO);
	/* The operator claims data-abort reporting (wrongly, here). */
	snprintf(uri, sizeof(uri), "rsp://127.0.0.1:%d?data_abort=1", port);
	/* OpenOCD takes one GDB connection at a time: the last one must be gone. */
	imp_log_set_level(IMP_LOG_QUIET);
	for (int i = 0; i < 40 && board_probe_open(uri, &p) == IMP_ERR_PROBE; i++)
		usleep(50000);
	imp_log_set_level(IMP_LOG_INFO);
	assert_non_null(p);
	uid_hex(p, hex, IMP_OK);
	assert_string_equal(hex, deviceid[1]);
	lock_board1(p);
	/* Locked: this OpenOCD answers zeros and OK for the UID ... */
	assert_int_equal(board_probe_read(p, 0x10000060, b, 8), IMP_OK);
	assert_memory_equal(b, "\0\0\0\0\0\0\0\0", 8);
	/* ... which is never a UID: the CTRL-AP confirms the lock. */
	imp_log_set_level(IMP_LOG_QUIET);
	board_probe_expect_locked(p, true);
	uid_hex(p, hex, IMP_ERR_TARGET_LOCKED);
	/* Nor "unlocked": lock verification reports the lock positively. */
	assert_int_equal(board_profile_verify_lock(prof, p, NULL), IMP_OK);
	imp_log_set_level(IMP_LOG_INFO);
	board_probe_close(p);
	it_kill(&oocd);

	/* OpenOCD started on the locked part refuses GDB; the probe still
	 * reaches the CTRL-AP and says locked, positively. */
	p = open_oocd(1, "");
	imp_log_set_level(IMP_LOG_QUIET);
	board_probe_expect_locked(p, true);
	assert_int_equal(board_probe_read(p, 0x00000000, b, 16), IMP_ERR_PROBE);
	assert_int_equal(board_probe_read(p, 0x10001208, b, 4), IMP_ERR_PROBE);
	uid_hex(p, hex, IMP_ERR_TARGET_LOCKED);
	assert_int_equal(board_profile_verify_lock(prof, p, NULL), IMP_OK);
	imp_log_set_level(IMP_LOG_INFO);
	/* Recovery: ERASEALL through the CTRL-AP opens it; the UID reads again. */
	assert_int_equal(board_profile_recover(prof, p), IMP_OK);
	uid_hex(p, hex, IMP_OK);
	assert_string_equal(hex, deviceid[1]);
	board_probe_close(p);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_long_monitor_and_e0e),
		cmocka_unit_test(test_vflash_and_crc),
		cmocka_unit_test(test_vflash_done_timeout),
		cmocka_unit_test(test_mass_erase_once),
		cmocka_unit_test(test_zeros_and_ok_and_refused),
	};

	if (argc != 4) {
		fprintf(stderr, "usage: %s VBOARD OPENOCD CFG\n", argv[0]);
		return 2;
	}
	vboard_exe = argv[1];
	openocd_exe = argv[2];
	cfg = argv[3];
	return cmocka_run_group_tests(tests, start_vboard, stop_vboard);
}
