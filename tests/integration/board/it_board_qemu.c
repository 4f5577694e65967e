/*
 * The rsp probe driver against a real GDB stub: QEMU's, halted at reset, on
 * the machine named on the command line (mps2-an385, lm3s6965evb,
 * netduinoplus2). Writes and reads back RAM at 0x20000000 for sizes from 1
 * byte to 64 KiB; a read of memory unmapped on that machine (each has its
 * own address: 0x50000000 is USB on the STM32F405) must be a clean
 * IMP_ERR_PROBE; after the probe closes, QEMU must still be running and
 * the core still halted where it was (QEMU resumes on 'D').
 *
 * usage: it_board_qemu PATH-TO-qemu-system-arm [MACHINE]
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
static const char *machine = "mps2-an385";
static char qemu_uri[64];

/* Per machine: an address nothing is mapped at (QEMU answers E14). */
static const struct {
	const char *name;
	uint32_t unmapped[2];
} machines[] = {
	{ "lm3s6965evb", { 0x20010000u, 0xA0000000u } },   /* 64 KiB SRAM ends there */
	{ "mps2-an385", { 0x50000000u, 0xA0000000u } },
	{ "netduinoplus2", { 0x60000000u, 0xA0000000u } }, /* 0x50000000: USB OTG FS */
};
static uint32_t unmapped[2];
static struct it_child qemu;
static struct board_probe *probe;

static int start_qemu(void **state)
{
	(void)state;
	for (int attempt = 0; attempt < 5; attempt++) {
		int port = it_free_port();
		char gdb[64], uri[64];
		char *argv[] = { (char *)qemu_exe, (char *)"-M", (char *)machine, (char *)"-S",
				 (char *)"-gdb", gdb, (char *)"-display", (char *)"none",
				 (char *)"-monitor", (char *)"none", (char *)"-serial",
				 (char *)"none", NULL };

		snprintf(gdb, sizeof(gdb), "tcp:127.0.0.1:%d", port);
		snprintf(uri, sizeof(uri), "rsp://127.0.0.1:%d?reset=system_reset", port);
		snprintf(qemu_uri, sizeof(qemu_uri), "%s", uri);
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
	assert_int_equal(board_probe_read(probe, unmapped[0], buf, 16), IMP_ERR_PROBE);
	assert_int_equal(board_probe_read(probe, unmapped[1], buf, 4), IMP_ERR_PROBE);
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

/* Closing the probe leaves QEMU running and its core halted: 'D' would
 * resume it (and an empty core locks up at once, so QEMU would abort). */
static void test_detach_leaves_halted(void **state)
{
	uint32_t v = 0;

	(void)state;
	assert_int_equal(board_probe_write_u32(probe, 0x20000200, 0x5EED1234u), IMP_OK);
	board_probe_close(probe);
	probe = NULL;
	usleep(300000);
	assert_int_equal(waitpid(qemu.pid, NULL, WNOHANG), 0);
	assert_int_equal(board_probe_open(qemu_uri, &probe), IMP_OK);
	assert_int_equal(board_probe_read_u32(probe, 0x20000200, &v), IMP_OK);
	assert_int_equal(v, 0x5EED1234u);
	/* Still halted: a halt request finds nothing to stop. */
	assert_int_equal(board_probe_halt(probe), IMP_OK);
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
		cmocka_unit_test(test_detach_leaves_halted),
		cmocka_unit_test(test_refused_connection),
		cmocka_unit_test(test_lost_connection),
	};

	size_t m;

	if (argc != 2 && argc != 3) {
		fprintf(stderr, "usage: %s PATH-TO-qemu-system-arm [MACHINE]\n", argv[0]);
		return 2;
	}
	qemu_exe = argv[1];
	if (argc == 3)
		machine = argv[2];
	for (m = 0; m < sizeof(machines) / sizeof(machines[0]); m++)
		if (strcmp(machines[m].name, machine) == 0)
			break;
	if (m == sizeof(machines) / sizeof(machines[0])) {
		fprintf(stderr, "%s: no unmapped addresses known for machine %s\n", argv[0],
			machine);
		return 2;
	}
	memcpy(unmapped, machines[m].unmapped, sizeof(unmapped));
	return cmocka_run_group_tests(tests, start_qemu, stop_qemu);
}
