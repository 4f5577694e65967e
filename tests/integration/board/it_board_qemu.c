/*
 * The rsp probe driver against a real GDB stub: QEMU's (mps2-an385, halted
 * at reset). Writes and reads back RAM at 0x20000000 for sizes from 1 byte
 * to 64 KiB, and a read of unmapped memory must be a clean IMP_ERR_PROBE.
 *
 * usage: it_board_qemu PATH-TO-qemu-system-arm
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "board/probe.h"
#include "imprint/log.h"
#include "imprint/util.h"
#include "it_util.h"

static const char *qemu_exe;
static struct it_child qemu;
static struct board_probe *probe;

static int start_qemu(void **state)
{
	(void)state;
	for (int attempt = 0; attempt < 5; attempt++) {
		int port = it_free_port();
		char gdb[64], uri[64];
		char *argv[] = { (char *)qemu_exe, (char *)"-M", (char *)"mps2-an385", (char *)"-S",
				 (char *)"-gdb", gdb, (char *)"-display", (char *)"none",
				 (char *)"-monitor", (char *)"none", (char *)"-serial",
				 (char *)"none", NULL };

		snprintf(gdb, sizeof(gdb), "tcp:127.0.0.1:%d", port);
		snprintf(uri, sizeof(uri), "rsp://127.0.0.1:%d?reset=system_reset", port);
		/* QEMU says "Lockup" on stderr when the empty core runs after detach. */
		if (it_spawn(&qemu, argv, 1) != 0)
			return -1;
		imp_log_set_level(IMP_LOG_QUIET);
		for (int i = 0; i < 100; i++) {
			if (board_probe_open(uri, &probe) == IMP_OK) {
				imp_log_set_level(IMP_LOG_INFO);
				return 0;
			}
			if (waitpid(qemu.pid, NULL, WNOHANG) == qemu.pid) {
				qemu.pid = 0;
				break; /* port taken meanwhile: try another */
			}
			usleep(50000);
		}
		imp_log_set_level(IMP_LOG_INFO);
		it_kill(&qemu);
	}
	fprintf(stderr, "could not start %s with a GDB stub\n", qemu_exe);
	return -1;
}

static int stop_qemu(void **state)
{
	(void)state;
	board_probe_close(probe);
	probe = NULL;
	it_kill(&qemu);
	return 0;
}

static void test_ram_sizes(void **state)
{
	static const size_t sizes[] = { 1, 2, 3, 4, 7, 8, 255, 256, 1000, 2047, 4095, 4096, 4097,
					8191, 30000, 65535, 65536 };
	static uint8_t a[65536], b[65536];

	(void)state;
	srand(9);
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		size_t n = sizes[s];
		/* Odd start addresses too, to cross word boundaries. */
		uint32_t addr = 0x20000000u + (uint32_t)(s % 3 == 1 ? 1 : 0);

		if (addr + n > 0x20000000u + 65536u)
			addr = 0x20000000u;
		for (size_t i = 0; i < n; i++)
			a[i] = (uint8_t)rand();
		/* RSP-special bytes must survive escaping. */
		if (n >= 4)
			memcpy(a, "#$}*", 4);
		assert_int_equal(board_probe_write(probe, addr, a, n), IMP_OK);
		memset(b, 0xEE, n);
		assert_int_equal(board_probe_read(probe, addr, b, n), IMP_OK);
		if (memcmp(a, b, n) != 0)
			fail_msg("read-back mismatch for %zu bytes at 0x%08x", n, addr);
	}
}

static void test_u32_and_unmapped(void **state)
{
	uint8_t buf[16];
	uint32_t v = 0;

	(void)state;
	assert_int_equal(board_probe_write_u32(probe, 0x20000100, 0xA5C3E1F0u), IMP_OK);
	assert_int_equal(board_probe_read_u32(probe, 0x20000100, &v), IMP_OK);
	assert_int_equal(v, 0xA5C3E1F0u);
	imp_log_set_level(IMP_LOG_QUIET);
	/* QEMU answers E14 for memory nothing is mapped at. */
	assert_int_equal(board_probe_read(probe, 0x50000000, buf, 16), IMP_ERR_PROBE);
	assert_int_equal(board_probe_read(probe, 0xA0000000, buf, 4), IMP_ERR_PROBE);
	imp_log_set_level(IMP_LOG_INFO);
	/* The connection is still good afterwards. */
	assert_int_equal(board_probe_read_u32(probe, 0x20000100, &v), IMP_OK);
	assert_int_equal(v, 0xA5C3E1F0u);
}

static void test_monitor_and_reset(void **state)
{
	char out[256];
	uint32_t v = 0;

	(void)state;
	assert_int_equal(board_probe_monitor(probe, "info version", out, sizeof(out)), IMP_OK);
	assert_true(strlen(out) > 0);
	assert_int_equal(board_probe_halt(probe), IMP_OK);
	assert_int_equal(board_probe_reset(probe), IMP_OK);
	assert_int_equal(board_probe_read_u32(probe, 0x20000000, &v), IMP_OK);
}

static void test_refused_connection(void **state)
{
	struct board_probe *p = NULL;
	int port = it_free_port();
	char uri[64];

	(void)state;
	snprintf(uri, sizeof(uri), "rsp://127.0.0.1:%d", port);
	imp_log_set_level(IMP_LOG_QUIET);
	assert_int_equal(board_probe_open(uri, &p), IMP_ERR_PROBE);
	imp_log_set_level(IMP_LOG_INFO);
	assert_null(p);
}

static void test_lost_connection(void **state)
{
	uint8_t buf[4];

	(void)state;
	it_kill(&qemu);
	imp_log_set_level(IMP_LOG_QUIET);
	assert_int_equal(board_probe_read(probe, 0x20000000, buf, 4), IMP_ERR_PROBE);
	imp_log_set_level(IMP_LOG_INFO);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ram_sizes),
		cmocka_unit_test(test_u32_and_unmapped),
		cmocka_unit_test(test_monitor_and_reset),
		cmocka_unit_test(test_refused_connection),
		cmocka_unit_test(test_lost_connection),
	};

	if (argc != 2) {
		fprintf(stderr, "usage: %s PATH-TO-qemu-system-arm\n", argv[0]);
		return 2;
	}
	qemu_exe = argv[1];
	return cmocka_run_group_tests(tests, start_qemu, stop_qemu);
}
