/*
 * Target profiles: strict parsing (errors name the field), the search path,
 * and the interpreter run through the sim probe on an in-process chip.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <unistd.h>

#include "wire/agent_proto.h"
#include "board/probe.h"
#include "board/profile.h"
#include "imprint/log.h"
#include "imprint/util.h"
#include "../../../board/probe_priv.h"
#ifdef HAVE_SIM_CHIP
#include "sim/chip.h"
#endif

/* Run parse with stderr captured; return the rc and the captured text. */
static imp_err parse_capture(const char *json, char *log, size_t cap)
{
	struct board_profile *p = NULL;
	char tmpl[] = "/tmp/imprint-test-log-XXXXXX";
	int fd = mkstemp(tmpl), saved = dup(2);
	imp_err rc;
	ssize_t n;

	assert_true(fd >= 0);
	fflush(stderr);
	dup2(fd, 2);
	rc = board_profile_parse(json, strlen(json), "test.json", &p);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	lseek(fd, 0, SEEK_SET);
	n = read(fd, log, cap - 1);
	log[n > 0 ? n : 0] = '\0';
	close(fd);
	unlink(tmpl);
	board_profile_free(p);
	return rc;
}

#define BASE_HEAD "{\"format\":\"imprint-profile/1\",\"name\":\"t\",\"description\":\"d\"," \
	"\"hardware_tested\":false,\"uid\":{\"addr\":\"0x1000\",\"len\":8},"
#define MEM "\"memory\":[{\"name\":\"flash\",\"kind\":\"flash\",\"base\":0,\"size\":\"0x1000\",\"page\":1024}]"

static void expect_error(const char *json, const char *needle)
{
	char log[2048];

	assert_int_equal(parse_capture(json, log, sizeof(log)), IMP_ERR_CONFIG);
	if (!strstr(log, needle))
		fail_msg("expected \"%s\" in the error, got: %s", needle, log);
}

static void test_minimal_ok(void **state)
{
	char log[1024];

	(void)state;
	assert_int_equal(parse_capture(BASE_HEAD MEM "}", log, sizeof(log)), IMP_OK);
}

static void test_errors_name_the_field(void **state)
{
	(void)state;
	expect_error("{", "line 1");
	expect_error("[]", "one JSON object");
	expect_error(BASE_HEAD MEM ",\"colour\":1}", "colour: unknown key");
	expect_error("{\"format\":\"imprint-profile/2\"}", "format: \"imprint-profile/2\"");
	expect_error(BASE_HEAD "\"note\":\"x\"}", "memory: missing (expected a non-empty array of regions)");
	expect_error("{\"format\":\"imprint-profile/1\",\"name\":\"t\",\"description\":\"d\","
		     "\"hardware_tested\":false,\"uid\":{\"addr\":\"0x1000\",\"len\":0}," MEM "}",
		     "uid.len: expected a number from 1 to 64");
	expect_error("{\"format\":\"imprint-profile/1\",\"name\":\"t\",\"description\":\"d\","
		     "\"hardware_tested\":false,\"uid\":{\"addr\":\"0x1g\",\"len\":4}," MEM "}",
		     "uid.addr: expected a number");
	expect_error(BASE_HEAD "\"memory\":[{\"name\":\"f\",\"kind\":\"flash\",\"base\":0,"
		     "\"size\":4096,\"page\":1000}]}", "memory[0].page");
	expect_error(BASE_HEAD "\"memory\":[{\"name\":\"f\",\"kind\":\"dram\",\"base\":0,"
		     "\"size\":4096}]}", "memory[0].kind: unknown kind");
	expect_error(BASE_HEAD MEM ",\"sequences\":{\"x\":[{\"op\":\"write32\",\"addr\":1,"
		     "\"value\":2},{\"op\":\"write32\",\"addr\":\"$Bad\",\"value\":1}]}}",
		     "sequences.x[1].addr: bad variable name");
	expect_error(BASE_HEAD MEM ",\"sequences\":{\"x\":[{\"op\":\"poke\"}]}}",
		     "sequences.x[0].op: unknown op");
	expect_error(BASE_HEAD MEM ",\"sequences\":{\"x\":[{\"op\":\"poll32\",\"addr\":1,"
		     "\"value\":0}]}}", "sequences.x[0].mask: missing");
	expect_error(BASE_HEAD MEM ",\"sequences\":{\"x\":[{\"op\":\"reset\",\"addr\":1}]}}",
		     "sequences.x[0].addr: unknown key");
	expect_error(BASE_HEAD MEM ",\"sequences\":{\"x\":[]}}", "sequences.x: expected a non-empty");
	expect_error(BASE_HEAD MEM ",\"fuses\":{\"supported\":[\"debug_lock\"]}}",
		     "no fuse_burn sequence");
	expect_error(BASE_HEAD MEM ",\"fuses\":{\"supported\":[\"qfuse\"]}}", "fuses.supported[0]: expected \"debug_lock\" or \"boot_lock\"");
	expect_error(BASE_HEAD MEM ",\"agent\":{\"protocol\":2}}", "agent.protocol");
	expect_error(BASE_HEAD MEM ",\"agent\":{\"slots\":{\"device\":9}}}", "agent.slots");
	expect_error(BASE_HEAD MEM ",\"uid\":{}}", "duplicate");
	expect_error(BASE_HEAD MEM ",\"sequences\":{\"x\":[{\"op\":\"write32\",\"addr\":-1,"
		     "\"value\":1}]}}", "sequences.x[0].addr: expected a number from 0 to 0xffffffff");
	expect_error(BASE_HEAD MEM ",\"sequences\":{\"x\":[{\"op\":\"write32\",\"addr\":"
		     "\"0x100000000\",\"value\":1}]}}", "sequences.x[0].addr");
}

static void test_shipped_profiles_load(void **state)
{
	struct board_profile *p = NULL;

	(void)state;
	unsetenv("IMPRINT_PROFILE_PATH");
	assert_int_equal(board_profile_load("imprint-vb1", NULL, &p), IMP_OK);
	assert_string_equal(p->name, "imprint-vb1");
	assert_int_equal(p->uid_addr, 0x1FFF7000u);
	assert_int_equal(p->uid_len, 16);
	assert_int_equal(p->fuse_mask, 3);
	assert_true(p->fuses_readable);
	assert_int_equal(p->agent_baud, 921600);
	assert_int_equal(board_profile_region(p, "flash")->page, 2048);
	assert_non_null(board_profile_seq(p, "fuse_burn"));
	board_profile_free(p);
	assert_int_equal(board_profile_load("nordic-nrf52840", NULL, &p), IMP_OK);
	assert_int_equal(p->uid_addr, 0x10000060u);
	assert_int_equal(p->uid_len, 8);
	assert_false(p->hardware_tested);
	assert_non_null(strstr(p->note, "NOT TRIED ON HARDWARE"));
	/* Both APPROTECT revisions need these; a reset at connect would lock. */
	assert_false(p->connect_reset);
	assert_true(p->fuses_readable);
	for (size_t i = 0; i < 5; i++) {
		static const char *const seqs[] = { "revision_check", "lock_status", "debug_open",
						    "recover", "fuse_burn" };

		if (!board_profile_seq(p, seqs[i]))
			fail_msg("nordic-nrf52840 has no %s sequence", seqs[i]);
	}
	assert_int_equal(board_profile_region(p, "otp")->base, 0x10001080u);
	assert_int_equal(board_profile_seq(p, "lock_status")->steps[0].ap, 1);
	board_profile_free(p);
}

static void test_new_step_keys(void **state)
{
	char log[1024];

	(void)state;
	assert_int_equal(parse_capture(BASE_HEAD MEM ",\"connect\":{\"reset\":false},"
				       "\"sequences\":{\"x\":[{\"op\":\"select32\",\"addr\":1,\"var\":"
				       "\"v\",\"cases\":[[1,2],[\"0x3\",4]],\"default\":5},{\"op\":"
				       "\"write32\",\"ap\":1,\"addr\":\"0x004\",\"value\":1,\"if\":"
				       "\"$v\"}]}}", log, sizeof(log)), IMP_OK);
	expect_error(BASE_HEAD MEM ",\"sequences\":{\"x\":[{\"op\":\"select32\",\"addr\":1,"
		     "\"var\":\"v\",\"cases\":[[1,2],[1,3]]}]}}", "listed twice");
	expect_error(BASE_HEAD MEM ",\"sequences\":{\"x\":[{\"op\":\"select32\",\"addr\":1,"
		     "\"var\":\"v\",\"cases\":[]}]}}", "cases");
	expect_error(BASE_HEAD MEM ",\"sequences\":{\"x\":[{\"op\":\"select32\",\"addr\":1,"
		     "\"var\":\"v\",\"cases\":[[1]]}]}}", "pair");
	expect_error(BASE_HEAD MEM ",\"sequences\":{\"x\":[{\"op\":\"read32\",\"ap\":1,"
		     "\"addr\":\"0x1002\",\"var\":\"v\"}]}}", "register offset");
	expect_error(BASE_HEAD MEM ",\"sequences\":{\"x\":[{\"op\":\"read32\",\"ap\":300,"
		     "\"addr\":4,\"var\":\"v\"}]}}", "sequences.x[0].ap: expected a number from 0 to 255");
	expect_error(BASE_HEAD MEM ",\"sequences\":{\"x\":[{\"op\":\"reset\",\"if\":\"v\"}]}}",
		     "if");
	expect_error(BASE_HEAD MEM ",\"connect\":{\"reset\":1}}", "connect.reset");
}

static void test_search_path(void **state)
{
	char dir[] = "/tmp/imprint-prof-XXXXXX", path[512], found[4096];
	struct board_profile *p = NULL;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/mychip.json", dir);
	f = fopen(path, "w");
	fputs(BASE_HEAD MEM "}", f);
	fclose(f);
	imp_log_set_level(IMP_LOG_QUIET);
	assert_int_equal(board_profile_load("mychip", NULL, &p), IMP_ERR_NOT_FOUND);
	setenv("IMPRINT_PROFILE_PATH", "/nonexistent:", 1);
	assert_int_equal(board_profile_find("mychip", NULL, found, sizeof(found)), IMP_ERR_NOT_FOUND);
	snprintf(found, sizeof(found), "/nonexistent:%s", dir);
	setenv("IMPRINT_PROFILE_PATH", found, 1);
	assert_int_equal(board_profile_load("mychip", NULL, &p), IMP_OK);
	assert_string_equal(p->path, path);
	board_profile_free(p);
	/* A path is loaded as is; a name with odd characters is refused. */
	assert_int_equal(board_profile_load(path, NULL, &p), IMP_OK);
	board_profile_free(p);
	assert_int_equal(board_profile_load("../x y", NULL, &p), IMP_ERR_NOT_FOUND);
	assert_int_equal(board_profile_find("a b", NULL, found, sizeof(found)), IMP_ERR_USAGE);
	unsetenv("IMPRINT_PROFILE_PATH");
	/* The data directory is searched too. */
	{
		char dd[600], pd[700];

		snprintf(dd, sizeof(dd), "%s/data", dir);
		snprintf(pd, sizeof(pd), "%s/profiles", dd);
		assert_int_equal(imp_mkdir_p(pd, 0700), IMP_OK);
		snprintf(pd, sizeof(pd), "%s/profiles/other.json", dd);
		assert_int_equal(rename(path, pd), 0);
		assert_int_equal(board_profile_load("other", dd, &p), IMP_OK);
		board_profile_free(p);
		unlink(pd);
		snprintf(pd, sizeof(pd), "%s/profiles", dd);
		rmdir(pd);
		rmdir(dd);
	}
	rmdir(dir);
	imp_log_set_level(IMP_LOG_INFO);
}

static void test_vars(void **state)
{
	struct board_profile_vars v = { 0 };
	uint32_t x = 0;

	(void)state;
	assert_int_equal(board_profile_var_set(&v, "mask", 3), IMP_OK);
	assert_int_equal(board_profile_var_set(&v, "mask", 5), IMP_OK);
	assert_int_equal(v.n, 1);
	assert_int_equal(board_profile_var_get(&v, "mask", &x), 0);
	assert_int_equal(x, 5);
	assert_int_equal(board_profile_var_get(&v, "nope", &x), -1);
	for (int i = 0; i < 20; i++) {
		char n[8];

		snprintf(n, sizeof(n), "v%d", i);
		board_profile_var_set(&v, n, (uint32_t)i);
	}
	assert_int_equal(v.n, BOARD_PROFILE_MAX_VARS);
}

#ifdef HAVE_SIM_CHIP
static void test_sim_probe_uid_flash_fuses_lock(void **state)
{
	const uint8_t uid[16] = { 0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF,
				  0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10 };
	struct sim_chip_opts o = { .uid = uid, .latency_scale = 0 };
	struct sim_chip *chip = sim_chip_new(&o);
	struct board_probe *probe = NULL;
	struct board_profile *p = NULL;
	uint8_t got[64], img[5000], back[16];
	size_t n = 0;
	uint32_t fuses = 99;

	(void)state;
	assert_non_null(chip);
	assert_int_equal(board_probe_attach_sim(chip, &probe), IMP_OK);
	assert_string_equal(board_probe_driver_name(probe), "sim");
	assert_int_equal(board_profile_load("imprint-vb1", NULL, &p), IMP_OK);
	assert_int_equal(board_profile_read_uid(p, probe, got, sizeof(got), &n), IMP_OK);
	assert_int_equal(n, 16);
	assert_memory_equal(got, uid, 16);
	/* Program 5000 bytes (3 pages), verify by digest, then corrupt-check. */
	for (size_t i = 0; i < sizeof(img); i++)
		img[i] = (uint8_t)(i * 13 + 1);
	assert_int_equal(board_profile_program_flash(p, probe, 0x08000800, img, sizeof(img)), IMP_OK);
	assert_int_equal(board_profile_verify_flash(p, probe, 0x08000800, img, sizeof(img)), IMP_OK);
	img[4000] ^= 1;
	imp_log_set_level(IMP_LOG_QUIET);
	assert_int_equal(board_profile_verify_flash(p, probe, 0x08000800, img, sizeof(img)),
			 IMP_ERR_VERIFY);
	/* Outside the flash region. */
	assert_int_equal(board_profile_program_flash(p, probe, 0x0803FFFC, img, 8), IMP_ERR_USAGE);
	/* Programming again without erasing would be a PGERR: the sequence erases. */
	img[4000] ^= 1;
	assert_int_equal(board_profile_program_flash(p, probe, 0x08000800, img, 16), IMP_OK);
	/* Fuses. */
	assert_int_equal(board_profile_read_fuses(p, probe, &fuses), IMP_OK);
	assert_int_equal(fuses, 0);
	assert_int_equal(board_profile_burn_fuses(p, probe, 0x4), IMP_ERR_UNSUPPORTED);
	assert_int_equal(board_profile_burn_fuses(p, probe, 0), IMP_ERR_USAGE);
	/* Not locked yet: verification must say so. */
	assert_int_equal(board_profile_verify_lock(p, probe, NULL), IMP_ERR_VERIFY);
	assert_int_equal(board_profile_burn_fuses(p, probe, WIRE_FUSE_DEBUG_LOCK), IMP_OK);
	assert_int_equal(board_profile_read_fuses(p, probe, &fuses), IMP_OK);
	assert_int_equal(fuses, WIRE_FUSE_DEBUG_LOCK);
	/* Still readable until reset; locked after. */
	assert_int_equal(board_probe_read(probe, 0x20000000, back, 16), IMP_OK);
	assert_int_equal(board_profile_verify_lock(p, probe, NULL), IMP_OK);
	assert_int_equal(board_probe_read(probe, 0x20000000, back, 16), IMP_ERR_TARGET_LOCKED);
	assert_int_equal(board_probe_write(probe, 0x20000000, back, 16), IMP_ERR_TARGET_LOCKED);
	assert_int_equal(board_profile_read_uid(p, probe, got, sizeof(got), &n),
			 IMP_ERR_TARGET_LOCKED);
	/* Monitor is optional and absent on sim: the wrapper says so. */
	assert_int_equal(board_probe_monitor(probe, "reset", NULL, 0), IMP_ERR_UNSUPPORTED);
	imp_log_set_level(IMP_LOG_INFO);
	board_profile_free(p);
	board_probe_close(probe);
	sim_chip_free(chip);
}

struct progress_seen {
	size_t calls, last, total;
	bool backwards;
};

static void count_progress(void *arg, size_t done, size_t total)
{
	struct progress_seen *s = arg;

	s->calls++;
	s->backwards |= done < s->last;
	s->last = done;
	s->total = total;
}

/* An image of whole program units goes as it is, a shorter tail is padded
 * with erased bytes; progress comes at most once a percent and at the end. */
static void test_sim_flash_padding_and_progress(void **state)
{
	const uint8_t uid[16] = { 1 };
	struct sim_chip_opts o = { .uid = uid, .latency_scale = 0 };
	struct sim_chip *chip = sim_chip_new(&o);
	struct board_probe *probe = NULL;
	struct board_profile *p = NULL;
	struct progress_seen seen = { 0 };
	static uint8_t img[60000];
	uint8_t back[8];

	(void)state;
	assert_non_null(chip);
	assert_int_equal(board_probe_attach_sim(chip, &probe), IMP_OK);
	assert_int_equal(board_profile_load("imprint-vb1", NULL, &p), IMP_OK);
	for (size_t i = 0; i < sizeof(img); i++)
		img[i] = (uint8_t)(i * 7 + 3);
	/* 4998 bytes: the last program unit padded with 0xFF. */
	assert_int_equal(board_profile_program_flash_progress(p, probe, 0x08000800, img, 4998,
							      count_progress, &seen),
			 IMP_OK);
	assert_int_equal(seen.last, 5000);
	assert_int_equal(seen.total, 5000);
	assert_int_equal(board_probe_read(probe, 0x08000800 + 4992, back, 8), IMP_OK);
	assert_memory_equal(back, img + 4992, 6);
	assert_int_equal(back[6], 0xFF);
	assert_int_equal(back[7], 0xFF);
	assert_int_equal(board_profile_verify_flash(p, probe, 0x08000800, img, 4998), IMP_OK);
	/* A larger one in chunks: every report moves forward, the last is
	 * the whole, and there are no more than one a percent. */
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(board_profile_program_flash_progress(p, probe, 0x08000800, img,
							      sizeof(img), count_progress, &seen),
			 IMP_OK);
	assert_false(seen.backwards);
	assert_int_equal(seen.last, sizeof(img));
	assert_true(seen.calls >= 2 && seen.calls <= 101);
	assert_int_equal(board_profile_verify_flash(p, probe, 0x08000800, img, sizeof(img)),
			 IMP_OK);
	board_profile_free(p);
	board_probe_close(probe);
	sim_chip_free(chip);
}

static void test_sim_uri(void **state)
{
	struct board_probe *probe = NULL;
	struct board_profile *p = NULL;
	uint8_t got[16];
	size_t n;

	(void)state;
	assert_int_equal(board_probe_open("sim:?uid=00112233445566778899aabbccddeeff&latency=0",
					  &probe), IMP_OK);
	assert_int_equal(board_profile_load("imprint-vb1", NULL, &p), IMP_OK);
	assert_int_equal(board_profile_read_uid(p, probe, got, sizeof(got), &n), IMP_OK);
	assert_int_equal(got[0], 0x00);
	assert_int_equal(got[15], 0xff);
	/* Unmapped memory is a probe error. */
	imp_log_set_level(IMP_LOG_QUIET);
	assert_int_equal(board_probe_read(probe, 0x50000000, got, 4), IMP_ERR_PROBE);
	board_probe_close(probe);
	board_profile_free(p);
	/* The nRF52840 model in-process: FICR INFO.PART, the hardened revision's
	 * protection of a new part */
	assert_int_equal(board_probe_open("sim:?chip=nordic-nrf52840&seed=3&latency=0", &probe), IMP_OK);
	assert_int_equal(board_probe_read(probe, 0x10000100, got, 4), IMP_OK);
	assert_int_equal(got[0] | got[1] << 8 | got[2] << 16, 0x52840);
	board_probe_close(probe);
	assert_int_equal(board_probe_open("sim:?chip=nordic-nrf52840&rev=hardened&latency=0", &probe), IMP_OK);
	assert_int_equal(board_probe_read(probe, 0x10000100, got, 4), IMP_ERR_TARGET_LOCKED);
	board_probe_close(probe);
	assert_int_equal(board_probe_open("sim:?chip=stm32u5", &probe), IMP_ERR_USAGE);
	assert_int_equal(board_probe_open("sim:?rev=hardened", &probe), IMP_ERR_USAGE);
	assert_int_equal(board_probe_open("sim:?chip=nordic-nrf52840&rev=new", &probe), IMP_ERR_USAGE);
	assert_int_equal(board_probe_open("sim:?uid=zz", &probe), IMP_ERR_USAGE);
	assert_int_equal(board_probe_open("sim:?colour=red", &probe), IMP_ERR_USAGE);
	assert_int_equal(board_probe_open("jtag://x", &probe), IMP_ERR_USAGE);
	assert_int_equal(board_probe_open("rsp://nohostport", &probe), IMP_ERR_USAGE);
	assert_int_equal(board_probe_open("rsp://127.0.0.1:1", &probe), IMP_ERR_PROBE);
	assert_null(probe);
	imp_log_set_level(IMP_LOG_INFO);
}
#endif

/* A register file that counts reads: a check32 right after a poll32 of the
 * same register checks the word the poll ended on, without a second read;
 * any other check32 reads. */
static unsigned count_reads;
static uint32_t count_reg = 0x14; /* BSY clear, error bits 0x14 set */

static imp_err count_read(void *priv, uint32_t addr, uint8_t *buf, size_t n)
{
	(void)priv;
	(void)addr;
	count_reads++;
	for (size_t i = 0; i < n; i++)
		buf[i] = (uint8_t)(count_reg >> (8 * (i % 4)));
	return IMP_OK;
}

static imp_err count_write(void *priv, uint32_t addr, const uint8_t *buf, size_t n)
{
	(void)priv;
	(void)addr;
	(void)buf;
	(void)n;
	return IMP_OK;
}

static void test_poll_then_check_reads_once(void **state)
{
	static const struct board_probe_driver drv = {
		.name = "count", .read_mem = count_read, .write_mem = count_write,
	};
	struct board_probe probe = { .drv = &drv };
	struct board_profile *p = NULL;
	static const char json[] = BASE_HEAD MEM ",\"sequences\":{"
		"\"same\":[{\"op\":\"poll32\",\"addr\":16,\"mask\":1,\"value\":0,\"timeout_ms\":10},"
		"{\"op\":\"check32\",\"addr\":16,\"mask\":\"0x14\",\"value\":0}],"
		"\"other\":[{\"op\":\"poll32\",\"addr\":16,\"mask\":1,\"value\":0,\"timeout_ms\":10},"
		"{\"op\":\"check32\",\"addr\":20,\"mask\":\"0x14\",\"value\":0}],"
		"\"apart\":[{\"op\":\"poll32\",\"addr\":16,\"mask\":1,\"value\":0,\"timeout_ms\":10},"
		"{\"op\":\"write32\",\"addr\":24,\"value\":0},"
		"{\"op\":\"check32\",\"addr\":16,\"mask\":\"0x14\",\"value\":0}]}}";

	(void)state;
	assert_int_equal(board_profile_parse(json, sizeof(json) - 1, "t", &p), IMP_OK);
	imp_log_set_level(IMP_LOG_QUIET);
	/* The error bits are set: every variant must fail its check. */
	count_reads = 0;
	assert_int_equal(board_profile_run(p, "same", &probe, NULL), IMP_ERR_BOARD);
	assert_int_equal(count_reads, 1);
	count_reads = 0;
	assert_int_equal(board_profile_run(p, "other", &probe, NULL), IMP_ERR_BOARD);
	assert_int_equal(count_reads, 2);
	count_reads = 0;
	assert_int_equal(board_profile_run(p, "apart", &probe, NULL), IMP_ERR_BOARD);
	assert_int_equal(count_reads, 2);
	count_reg = 0;
	count_reads = 0;
	assert_int_equal(board_profile_run(p, "same", &probe, NULL), IMP_OK);
	assert_int_equal(count_reads, 1);
	imp_log_set_level(IMP_LOG_INFO);
	board_profile_free(p);
}

static void test_driver_tables(void **state)
{
	(void)state;
	/* NULL-terminated and sorted by name. */
	for (size_t i = 0; board_probe_drivers[i] && board_probe_drivers[i + 1]; i++)
		assert_true(strcmp(board_probe_drivers[i]->name, board_probe_drivers[i + 1]->name) < 0);
	assert_non_null(board_probe_driver_find("rsp"));
	assert_non_null(board_probe_driver_find("openocd"));
	assert_non_null(board_probe_openocd.ap_read);
	assert_null(board_probe_sim.flash_program);
	assert_non_null(board_probe_driver_find("sim"));
	assert_null(board_probe_driver_find("jlink"));
	assert_non_null(board_probe_rsp.monitor);
	assert_null(board_probe_sim.monitor);
}

#ifdef HAVE_SIM_CHIP
static void test_stm32u5_plan_lock_and_model(void **state)
{
	struct sim_chip_opts o = { .seed = 42, .latency_scale = 0, .family = "st-stm32u5" };
	struct sim_chip *chip = sim_chip_new(&o);
	struct board_probe *probe = NULL;
	struct board_profile *p = NULL;
	struct board_profile_vars vars = { 0 };
	struct board_plan plan = { 0 };
	uint8_t got[64], qw[16], before[32], after[32];
	size_t n = 0, irreversible = 0;
	uint32_t v = 0;
	int locked = -1;

	(void)state;
	assert_non_null(chip);
	assert_int_equal(board_probe_attach_sim(chip, &probe), IMP_OK);
	assert_int_equal(board_profile_load("st-stm32u5", NULL, &p), IMP_OK);
	assert_true(p->lock_uid_readable);
	assert_false(p->permanent_lock_allowed);
	assert_int_equal(board_profile_connect(p, probe), IMP_OK);
	assert_int_equal(board_profile_read_uid(p, probe, got, sizeof(got), &n), IMP_OK);
	assert_int_equal(n, 12);
	assert_memory_equal(got, sim_chip_uid(chip), 12);
	/* A plan against the chip sends no write: the registers are as before. */
	assert_int_equal(board_probe_read(probe, 0x40022020, before, sizeof(before)), IMP_OK);
	board_profile_var_set(&vars, "mask", WIRE_FUSE_DEBUG_LOCK);
	board_profile_var_set(&vars, "permanent", 0);
	assert_int_equal(board_profile_plan(p, "fuse_burn", probe, &vars, &plan), IMP_OK);
	for (size_t i = 0; i < plan.n; i++) {
		if (plan.e[i].st->irreversible && plan.e[i].runs == 1)
			irreversible++;
		if (plan.e[i].st->op == BOARD_OP_MODIFY32) {
			assert_true(plan.e[i].value_known);
			assert_int_equal(plan.e[i].value, 0x1FEFF8BBu); /* factory OPTR, RDP 0xBB */
		}
	}
	assert_int_equal(irreversible, 2);
	board_plan_release(&plan);
	assert_int_equal(board_probe_read(probe, 0x40022020, after, sizeof(after)), IMP_OK);
	assert_memory_equal(before, after, sizeof(before));
	assert_int_equal(sim_chip_fuses(chip), 0);
	/* The model: PG without the keys is refused; a half quad-word is PGAERR. */
	memset(qw, 0x11, sizeof(qw));
	assert_int_equal(board_probe_write_u32(probe, 0x40022028, 0x1), IMP_OK);
	assert_int_equal(board_probe_read_u32(probe, 0x40022028, &v), IMP_OK);
	assert_int_equal(v, 0xC0000000u); /* still locked: the write was ignored */
	assert_int_equal(board_probe_write_u32(probe, 0x40022008, 0x45670123), IMP_OK);
	assert_int_equal(board_probe_write_u32(probe, 0x40022008, 0xCDEF89AB), IMP_OK);
	assert_int_equal(board_probe_write_u32(probe, 0x40022028, 0x1), IMP_OK);
	assert_int_equal(board_probe_write(probe, 0x08000000, qw, 8), IMP_OK);
	assert_int_equal(board_probe_write(probe, 0x08000010, qw, 16), IMP_OK);
	assert_int_equal(board_probe_read_u32(probe, 0x40022020, &v), IMP_OK);
	assert_int_equal(v & 0x20u, 0x20u); /* PGAERR */
	assert_int_equal(board_probe_read(probe, 0x08000000, got, 32), IMP_OK);
	for (size_t i = 0; i < 32; i++)
		assert_int_equal(got[i], 0xFF);
	assert_int_equal(board_probe_write_u32(probe, 0x40022020, 0x20FB), IMP_OK);
	assert_int_equal(board_probe_write(probe, 0x08000000, qw, 16), IMP_OK);
	assert_int_equal(board_probe_write(probe, 0x08000000, qw, 16), IMP_OK);
	assert_int_equal(board_probe_read_u32(probe, 0x40022020, &v), IMP_OK);
	assert_int_equal(v & 0x8u, 0x8u); /* PROGERR: not erased */
	assert_int_equal(board_probe_write_u32(probe, 0x40022020, 0x20FB), IMP_OK);
	assert_int_equal(board_probe_write_u32(probe, 0x40022028, 0x80000000u), IMP_OK);
	/* Not locked yet: the chip says so. */
	imp_log_set_level(IMP_LOG_QUIET);
	assert_int_equal(board_profile_verify_lock(p, probe, NULL), IMP_ERR_VERIFY);
	/* A permanent lock the profile does not allow is refused, nothing written. */
	assert_int_equal(board_profile_burn_fuses_ex(p, probe, WIRE_FUSE_DEBUG_LOCK, true),
			 IMP_ERR_CONFIG);
	assert_int_equal(sim_chip_fuses(chip), 0);
	/* RDP level 1: burned, loaded by OBL_LAUNCH, verified positively. */
	assert_int_equal(board_profile_burn_fuses(p, probe, WIRE_FUSE_DEBUG_LOCK), IMP_OK);
	assert_int_equal(sim_chip_fuses_effective(chip), WIRE_FUSE_DEBUG_LOCK);
	assert_int_equal(sim_chip_lifecycle(chip), 3);
	assert_int_equal(board_profile_verify_lock(p, probe, NULL), IMP_OK);
	assert_int_equal(board_profile_lock_status(p, probe, &locked), IMP_OK);
	assert_int_equal(locked, 1);
	assert_int_equal(board_probe_read(probe, 0x08000000, got, 4), IMP_ERR_PROBE);
	assert_int_equal(board_probe_read(probe, 0x20000000, got, 4), IMP_ERR_PROBE);
	assert_int_equal(board_profile_read_uid(p, probe, got, sizeof(got), &n), IMP_OK);
	/* A system reset keeps it (no option load); the plan now has nothing to do. */
	assert_int_equal(board_probe_reset(probe), IMP_OK);
	assert_int_equal(board_profile_read_fuses(p, probe, &v), IMP_OK);
	assert_int_equal(v, WIRE_FUSE_DEBUG_LOCK);
	imp_log_set_level(IMP_LOG_INFO);
	board_profile_free(p);
	board_probe_close(probe);
	sim_chip_free(chip);
}
#endif

static void test_fatal_rules(void **state)
{
	(void)state;
	/* Each rule refuses; the message names it. */
	expect_error(BASE_HEAD MEM ",\"fuses\":{\"supported\":[\"debug_lock\"]},"
		     "\"lock_verify\":{\"uid_read\":\"target_locked\"},\"sequences\":{"
		     "\"debug_open\":[{\"op\":\"write32\",\"addr\":4,\"value\":1,\"irreversible\":\"x\"}],"
		     "\"fuse_burn\":[{\"op\":\"write32\",\"addr\":4,\"value\":1}]}}",
		     "refused by rule lock-before-firmware: sequences.debug_open[0]");
	expect_error(BASE_HEAD MEM ",\"fuses\":{\"supported\":[\"debug_lock\"]},"
		     "\"lock_verify\":{\"uid_read\":\"target_locked\"},\"permanent_lock\":{\"allowed\":true},"
		     "\"sequences\":{\"fuse_burn\":[{\"op\":\"write32\",\"addr\":4,\"value\":1,"
		     "\"irreversible\":\"x\",\"permanent\":true}]}}",
		     "refused by rule permanent-without-opt-in: sequences.fuse_burn[0]: a permanent write (x) not under");
	expect_error(BASE_HEAD MEM ",\"fuses\":{\"supported\":[\"debug_lock\"]},"
		     "\"lock_verify\":{\"uid_read\":\"target_locked\"},\"sequences\":{\"fuse_burn\":["
		     "{\"op\":\"write32\",\"addr\":4,\"value\":1,\"irreversible\":\"x\",\"fuse\":\"a\",\"requires\":[\"b\"]},"
		     "{\"op\":\"write32\",\"if\":\"$c\",\"addr\":8,\"value\":1,\"irreversible\":\"y\",\"fuse\":\"b\"}]}}",
		     "refused by rule missing-companion");
	expect_error(BASE_HEAD MEM ",\"fuses\":{\"supported\":[\"debug_lock\"]},\"sequences\":{"
		     "\"fuse_burn\":[{\"op\":\"write32\",\"addr\":4,\"value\":1}]}}",
		     "refused by rule lock-unverified");
	expect_error(BASE_HEAD MEM ",\"sequences\":{\"fuse_burn\":[{\"op\":\"write32\",\"addr\":4,"
		     "\"value\":1,\"permanent\":true}]}}", "only on an irreversible write");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_minimal_ok),
		cmocka_unit_test(test_errors_name_the_field),
		cmocka_unit_test(test_shipped_profiles_load),
		cmocka_unit_test(test_new_step_keys),
		cmocka_unit_test(test_search_path),
		cmocka_unit_test(test_vars),
		cmocka_unit_test(test_driver_tables),
		cmocka_unit_test(test_fatal_rules),
		cmocka_unit_test(test_poll_then_check_reads_once),
#ifdef HAVE_SIM_CHIP
		cmocka_unit_test(test_stm32u5_plan_lock_and_model),
		cmocka_unit_test(test_sim_probe_uid_flash_fuses_lock),
		cmocka_unit_test(test_sim_uri),
		cmocka_unit_test(test_sim_flash_padding_and_progress),
#endif
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
