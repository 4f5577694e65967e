/*
 * Board drivers against a running imprint-vboard: UID through SWD (rsp)
 * and UART (agent) agree; flash programming and read-back digest through
 * the profile, by the server's flash driver (vFlash) and, with
 * --no-flash-driver, by the profile's register sequences: over programmed
 * pages, the whole bank, refused while write-protected or debug-locked; the debug-lock fuse burned by the profile's register
 * sequence, then every probe access fails with "target locked" and the
 * agent reports LOCKED; RSP in ack mode under injected NAKs and stalls;
 * the real agent under UART corruption.
 *
 * usage: it_board_vboard PATH-TO-imprint-vboard
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "board/agent.h"
#include "board/probe.h"
#include "board/profile.h"
#include "board/rsp.h"
#include "imprint/log.h"
#include "imprint/util.h"
#include "it_util.h"

static const char *vboard_exe;

struct fix {
	char cap[64];             /* --capture DIR, or "" */
	bool no_flash_driver;     /* --no-flash-driver */
	struct it_vboard vb;
	struct board_probe *probe;
	struct board_link *link;
	struct board_profile *prof;
};

static int setup_with(void **state, const char *const *args, const char *uri_suffix)
{
	struct fix *f = calloc(1, sizeof(*f));
	char uri[256];

	if (!f || it_vboard_start(&f->vb, vboard_exe, args) != 0)
		return -1;
	snprintf(uri, sizeof(uri), "%s%s", f->vb.rsp, uri_suffix ? uri_suffix : "");
	if (board_probe_open(uri, &f->probe) != IMP_OK ||
	    board_link_open("serial", f->vb.uart, 921600, &f->link) != IMP_OK ||
	    board_profile_load("imprint-vb1", NULL, &f->prof) != IMP_OK) {
		board_probe_close(f->probe);
		board_link_close(f->link);
		it_kill(&f->vb.proc);
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int setup(void **state)
{
	static const char *const args[] = { "--latency", "0", NULL };

	return setup_with(state, args, NULL);
}

/* With the RSP bytes captured (DIR/board-0.rsp.bin): which packets went. */
static int setup_capture_with(void **state, bool flash_driver)
{
	char dir[64] = "/tmp/it_board_vboard.XXXXXX";
	const char *args[] = { "--latency", "0", "--capture", dir, NULL, NULL };
	struct fix *f;

	if (!mkdtemp(dir))
		return -1;
	if (!flash_driver)
		args[4] = "--no-flash-driver";
	if (setup_with(state, args, NULL) != 0)
		return -1;
	f = *state;
	snprintf(f->cap, sizeof(f->cap), "%s", dir);
	return 0;
}

static int setup_capture(void **state)
{
	return setup_capture_with(state, true);
}

static int setup_capture_no_flash_driver(void **state)
{
	return setup_capture_with(state, false);
}

static int setup_no_flash_driver(void **state)
{
	static const char *const args[] = { "--latency", "0", "--no-flash-driver", NULL };

	if (setup_with(state, args, NULL) != 0)
		return -1;
	((struct fix *)*state)->no_flash_driver = true;
	return 0;
}

static int setup_realistic(void **state)
{
	static const char *const args[] = { "--latency", "1", NULL };

	return setup_with(state, args, NULL);
}

static int setup_rsp_faults(void **state)
{
	static const char *const args[] = { "--latency", "0", "--rsp-nak", "0.2", "--rsp-stall",
					    "0.03", NULL };

	return setup_with(state, args, "?noack=0&timeout_ms=200&retries=8");
}

static int setup_uart_faults(void **state)
{
	static const char *const args[] = { "--latency", "0", "--uart-corrupt", "0.002", NULL };

	return setup_with(state, args, NULL);
}

static int teardown(void **state)
{
	struct fix *f = *state;

	board_link_close(f->link);
	board_probe_close(f->probe);
	board_profile_free(f->prof);
	it_kill(&f->vb.proc);
	if (f->cap[0]) {
		char path[128];

		snprintf(path, sizeof(path), "%s/board-0.rsp.bin", f->cap);
		unlink(path);
		snprintf(path, sizeof(path), "%s/board-0.uart.bin", f->cap);
		unlink(path);
		rmdir(f->cap);
	}
	free(f);
	return 0;
}

/* Whether the captured RSP bytes so far hold s. */
static bool captured(const struct fix *f, const char *s)
{
	char path[128];
	FILE *fp;
	static char buf[4 << 20];
	size_t n;

	snprintf(path, sizeof(path), "%s/board-0.rsp.bin", f->cap);
	fp = fopen(path, "rb");
	assert_non_null(fp);
	n = fread(buf, 1, sizeof(buf), fp);
	fclose(fp);
	return memmem(buf, n, s, strlen(s)) != NULL;
}

static void fill_image(uint8_t *img, size_t n, unsigned salt)
{
	for (size_t i = 0; i < n; i++)
		img[i] = (uint8_t)(((i + salt) * 2654435761u) >> 13);
}

static void assert_flash_blank(struct fix *f, uint32_t addr, size_t n)
{
	static uint8_t got[8192];

	assert_true(n <= sizeof(got));
	assert_int_equal(board_probe_read(f->probe, addr, got, n), IMP_OK);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(got[i], 0xFF);
}

static void test_uid_swd_and_uart_agree(void **state)
{
	struct fix *f = *state;
	struct board_agent_info info;
	uint8_t uid[64];
	char hex[129];
	size_t n = 0;

	assert_int_equal(board_profile_read_uid(f->prof, f->probe, uid, sizeof(uid), &n), IMP_OK);
	assert_int_equal(n, 16);
	imp_hex_encode(uid, n, hex);
	assert_string_equal(hex, f->vb.uid);
	assert_int_equal(board_agent_identify(f->link, &info), IMP_OK);
	assert_memory_equal(info.uid, uid, 16);
	assert_int_equal(info.proto_version, WIRE_AGENT_PROTO_VERSION);
	assert_int_equal(info.lifecycle, WIRE_LC_OPEN);
	assert_int_equal(info.fuses, 0);
}

static void test_flash_program_and_verify(void **state)
{
	struct fix *f = *state;
	static uint8_t img[70000];

	for (size_t i = 0; i < sizeof(img); i++)
		img[i] = (uint8_t)((i * 2654435761u) >> 13);
	assert_int_equal(board_profile_program_flash(f->prof, f->probe, 0x08000000, img, sizeof(img)),
			 IMP_OK);
	assert_int_equal(board_profile_verify_flash(f->prof, f->probe, 0x08000000, img, sizeof(img)),
			 IMP_OK);
	/* The server computes the CRC (qCRC), so nothing is read back. */
	{
		uint32_t crc = 0;

		assert_int_equal(board_probe_crc32(f->probe, 0x08000000, sizeof(img), &crc), IMP_OK);
		assert_int_equal(crc, board_rsp_crc32(0xFFFFFFFFu, img, sizeof(img)));
		assert_int_equal(board_probe_crc32(f->probe, 0x08000001, sizeof(img) - 1, &crc), IMP_OK);
		assert_int_equal(crc, board_rsp_crc32(0xFFFFFFFFu, img + 1, sizeof(img) - 1));
	}
	img[12345] ^= 0x80;
	imp_log_set_level(IMP_LOG_QUIET);
	assert_int_equal(board_profile_verify_flash(f->prof, f->probe, 0x08000000, img, sizeof(img)),
			 IMP_ERR_VERIFY);
	imp_log_set_level(IMP_LOG_INFO);
}

/*
 * The vboard's GDB server offers its flash driver (memory map, vFlash):
 * the profile programs through it, over fresh and over programmed pages
 * (which it must erase), and the whole bank (one mass erase).
 */
static void test_flash_through_server_driver(void **state)
{
	struct fix *f = *state;
	static uint8_t img[70000], whole[256 * 1024];

	fill_image(img, sizeof(img), 0);
	assert_int_equal(board_profile_program_flash(f->prof, f->probe, 0x08000000, img, sizeof(img)),
			 IMP_OK);
	assert_int_equal(board_profile_verify_flash(f->prof, f->probe, 0x08000000, img, sizeof(img)),
			 IMP_OK);
	/* Over the programmed pages: the server erases them first. */
	fill_image(img, sizeof(img), 77);
	assert_int_equal(board_profile_program_flash(f->prof, f->probe, 0x08000000, img, sizeof(img)),
			 IMP_OK);
	assert_int_equal(board_profile_verify_flash(f->prof, f->probe, 0x08000000, img, sizeof(img)),
			 IMP_OK);
	assert_flash_blank(f, 0x08000000 + 0x11800, 2048); /* past the last erased block */
	fill_image(whole, sizeof(whole), 5);
	assert_int_equal(board_profile_program_flash(f->prof, f->probe, 0x08000000, whole,
						     sizeof(whole)), IMP_OK);
	assert_int_equal(board_profile_verify_flash(f->prof, f->probe, 0x08000000, whole,
						    sizeof(whole)), IMP_OK);
	assert_true(captured(f, "qXfer:memory-map:read+"));
	assert_true(captured(f, "$vFlashErase:8000000,11800#"));
	assert_true(captured(f, "$vFlashErase:8000000,40000#"));
	assert_true(captured(f, "$vFlashDone#"));
	/* No word of the image went through the controller's registers. */
	assert_false(captured(f, "$X8000000,"));
	assert_false(captured(f, "$X40022008,"));
}

/* --no-flash-driver: no memory map, so the profile's register sequences. */
static void test_flash_register_path(void **state)
{
	struct fix *f = *state;
	static uint8_t img[70000];

	fill_image(img, sizeof(img), 3);
	assert_int_equal(board_profile_program_flash(f->prof, f->probe, 0x08000000, img, sizeof(img)),
			 IMP_OK);
	assert_int_equal(board_profile_verify_flash(f->prof, f->probe, 0x08000000, img, sizeof(img)),
			 IMP_OK);
	assert_true(captured(f, "$X8000000,"));
	assert_true(captured(f, "$X40022008,"));
	assert_false(captured(f, "memory-map"));
	assert_false(captured(f, "vFlash"));
}

/*
 * The boot-lock fuse write-protects the flash: programming fails through
 * the server's driver as through the registers (SR.WRPERR), and the
 * flash stays blank.
 */
static void test_flash_write_protected(void **state)
{
	struct fix *f = *state;
	static uint8_t img[8192];

	fill_image(img, sizeof(img), 9);
	assert_int_equal(board_profile_burn_fuses(f->prof, f->probe, WIRE_FUSE_BOOT_LOCK), IMP_OK);
	assert_int_equal(board_probe_reset(f->probe), IMP_OK);
	imp_log_set_level(IMP_LOG_QUIET);
	assert_int_not_equal(board_profile_program_flash(f->prof, f->probe, 0x08000000, img,
							 sizeof(img)), IMP_OK);
	imp_log_set_level(IMP_LOG_INFO);
	assert_flash_blank(f, 0x08000000, sizeof(img));
}

static void test_burn_debug_lock_then_locked(void **state)
{
	struct fix *f = *state;
	const uint32_t addrs[] = { 0x1FFF7000, 0x20000000, 0x08000000, 0x40022004, 0x4002300C };
	struct board_agent_info info;
	uint8_t buf[64];
	uint32_t fuses = 0;
	size_t n;

	/* Not locked yet: verification must fail. */
	imp_log_set_level(IMP_LOG_QUIET);
	assert_int_equal(board_profile_verify_lock(f->prof, f->probe, f->link), IMP_ERR_VERIFY);
	imp_log_set_level(IMP_LOG_INFO);
	assert_int_equal(board_profile_burn_fuses(f->prof, f->probe, WIRE_FUSE_DEBUG_LOCK), IMP_OK);
	assert_int_equal(board_profile_read_fuses(f->prof, f->probe, &fuses), IMP_OK);
	assert_int_equal(fuses, WIRE_FUSE_DEBUG_LOCK);
	/* Reset (through the profile's verification) makes it effective. */
	assert_int_equal(board_profile_verify_lock(f->prof, f->probe, f->link), IMP_OK);
	imp_log_set_level(IMP_LOG_QUIET);
	for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
		assert_int_equal(board_probe_read(f->probe, addrs[i], buf, 4), IMP_ERR_TARGET_LOCKED);
		assert_int_equal(board_probe_write(f->probe, addrs[i], buf, 4), IMP_ERR_TARGET_LOCKED);
	}
	assert_int_equal(board_probe_read(f->probe, 0x20000000, buf, 64), IMP_ERR_TARGET_LOCKED);
	{
		uint32_t crc = 0;

		assert_int_equal(board_probe_crc32(f->probe, 0x08000000, 1024, &crc),
				 IMP_ERR_TARGET_LOCKED);
	}
	assert_int_equal(board_profile_read_uid(f->prof, f->probe, buf, sizeof(buf), &n),
			 IMP_ERR_TARGET_LOCKED);
	assert_int_equal(board_profile_burn_fuses(f->prof, f->probe, WIRE_FUSE_BOOT_LOCK),
			 IMP_ERR_TARGET_LOCKED);
	/* The server's flash driver refuses as the registers do: E51. */
	assert_int_equal(board_probe_flash_program(f->probe, 0x08000000, buf, 64),
			 f->no_flash_driver ? IMP_ERR_UNSUPPORTED : IMP_ERR_TARGET_LOCKED);
	assert_int_equal(board_profile_program_flash(f->prof, f->probe, 0x08000000, buf, 64),
			 IMP_ERR_TARGET_LOCKED);
	imp_log_set_level(IMP_LOG_INFO);
	assert_int_equal(board_agent_identify(f->link, &info), IMP_OK);
	assert_int_equal(info.lifecycle, WIRE_LC_LOCKED);
	assert_true(info.fuses & WIRE_FUSE_DEBUG_LOCK);
}

static void test_rsp_ack_mode_under_naks_and_stalls(void **state)
{
	struct fix *f = *state;
	static uint8_t a[20000], b[20000];

	srand(5);
	for (int round = 0; round < 20; round++) {
		size_t n = 1 + (size_t)rand() % sizeof(a);

		for (size_t i = 0; i < n; i++)
			a[i] = (uint8_t)rand();
		assert_int_equal(board_probe_write(f->probe, 0x20000000, a, n), IMP_OK);
		memset(b, 0, n);
		assert_int_equal(board_probe_read(f->probe, 0x20000000, b, n), IMP_OK);
		assert_memory_equal(a, b, n);
	}
}

static void test_agent_under_uart_corruption(void **state)
{
	struct fix *f = *state;
	static struct wire_frame rsp;
	unsigned ok = 0, failed = 0;
	uint8_t d[64];

	imp_log_set_level(IMP_LOG_QUIET);
	for (int i = 0; i < 200; i++) {
		size_t n = 1 + (size_t)(i % 64);
		imp_err rc;

		for (size_t k = 0; k < n; k++)
			d[k] = (uint8_t)(i * 7 + k);
		rc = board_link_transact(f->link, WIRE_CMD_ECHO, d, n, &rsp, 100);
		if (rc == IMP_OK) {
			assert_int_equal(rsp.len, n + 1);
			assert_int_equal(rsp.payload[0], WIRE_ST_OK);
			assert_memory_equal(rsp.payload + 1, d, n);
			ok++;
		} else {
			assert_true(rc == IMP_ERR_TIMEOUT || rc == IMP_ERR_PROTOCOL);
			failed++;
		}
	}
	imp_log_set_level(IMP_LOG_INFO);
	fprintf(stderr, "vboard --uart-corrupt 0.002: %u ok, %u failed cleanly, %llu retransmits\n",
		ok, failed, (unsigned long long)board_link_get_stats(f->link)->retransmits);
	assert_true(ok >= 190);
}

static void test_realistic_latency_identify_and_keygen(void **state)
{
	struct fix *f = *state;
	struct board_agent_info info;
	uint8_t pub[65];
	double t0 = imp_now_s();

	assert_int_equal(board_agent_identify(f->link, &info), IMP_OK);
	assert_int_equal(board_agent_generate_key(f->link, 0, true, pub), IMP_OK);
	assert_int_equal(pub[0], 0x04);
	fprintf(stderr, "realistic latency: identify + generate_key %.0f ms\n",
		(imp_now_s() - t0) * 1000);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_uid_swd_and_uart_agree, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flash_program_and_verify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flash_program_and_verify, setup_no_flash_driver,
						teardown),
		cmocka_unit_test_setup_teardown(test_flash_through_server_driver, setup_capture,
						teardown),
		cmocka_unit_test_setup_teardown(test_flash_register_path,
						setup_capture_no_flash_driver, teardown),
		cmocka_unit_test_setup_teardown(test_flash_write_protected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flash_write_protected, setup_no_flash_driver,
						teardown),
		cmocka_unit_test_setup_teardown(test_burn_debug_lock_then_locked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_burn_debug_lock_then_locked,
						setup_no_flash_driver, teardown),
		cmocka_unit_test_setup_teardown(test_rsp_ack_mode_under_naks_and_stalls,
						setup_rsp_faults, teardown),
		cmocka_unit_test_setup_teardown(test_agent_under_uart_corruption, setup_uart_faults,
						teardown),
		cmocka_unit_test_setup_teardown(test_realistic_latency_identify_and_keygen,
						setup_realistic, teardown),
	};

	if (argc != 2) {
		fprintf(stderr, "usage: %s PATH-TO-imprint-vboard\n", argv[0]);
		return 2;
	}
	vboard_exe = argv[1];
	unsetenv("IMPRINT_PROFILE_PATH");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
