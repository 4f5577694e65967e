/*
 * The live board's layout (station/live.c, st_live_render): whatever the
 * terminal's size and the number of fixtures, no line reaches the last
 * column, the frame fits the height, every fixture is in a row or counted
 * in the summary line, and the failures keep a region of their own; rows
 * are sorted by name, a step reads k/11, firmware programming shows a bar.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "live.h"

#define OUT_CAP (1u << 20)

static struct fmt_fixture *fixtures(size_t n)
{
	struct fmt_fixture *fx = calloc(n, sizeof(*fx));

	assert_non_null(fx);
	/* given in reverse order: the board sorts them */
	for (size_t i = 0; i < n; i++)
		assert_true(asprintf(&fx[i].name, "F%zu", n - i) > 0);
	return fx;
}

static void fixtures_free(struct fmt_fixture *fx, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(fx[i].name);
	free(fx);
}

static void report(const char *name, enum jnl_state st, imp_err rc, enum prov_activity act,
		   size_t done, size_t total)
{
	struct prov_progress p = { .fixture = name, .uid = "00112233445566778899aabbccddeeff",
				   .serial = st >= JNL_ST_ALLOCATE ? "TST000042" : "",
				   .state = st, .rc = rc, .message = "", .elapsed_s = 1.5,
				   .activity = act, .fw_done = done, .fw_total = total };

	st_live_progress(&p);
}

/* Check a frame: width, height, fixtures accounted, failures shown. */
static void check_frame(const char *out, size_t lines, int rows, int cols, size_t n,
			bool want_failures)
{
	bool *seen = calloc(n + 1, sizeof(bool));
	size_t count = 0, more = 0, got = 0;
	bool in_failures = false, failures = false;
	const char *p = out;

	assert_non_null(seen);
	assert_true(lines <= (size_t)rows);
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		char line[2048];

		assert_true(len < (size_t)cols); /* never the last column */
		snprintf(line, sizeof(line), "%.*s", (int)len, p);
		got++;
		if (strncmp(line, "-- failures:", 12) == 0) {
			in_failures = true;
		} else if (in_failures || (len > 9 && line[2] == ':' && line[5] == ':' &&
					   line[8] == ' ')) {
			failures = true;
		} else if (got >= 2 && line[0] == '+') {
			more += strtoul(line + 1, NULL, 10);
		} else if (got > 2) {
			for (const char *q = line; (q = strchr(q, 'F')) != NULL; q++) {
				char *end;
				unsigned long k;

				if (q > line && q[-1] != ' ')
					continue;
				k = strtoul(q + 1, &end, 10);
				if (end != q + 1 && (*end == ' ' || *end == '\0') && k >= 1 && k <= n &&
				    !seen[k]) {
					seen[k] = true;
					count++;
				}
			}
		}
		p = nl ? nl + 1 : p + len;
	}
	if (got != lines || (rows >= 3 && count + more != n))
		printf("%dx%d frame:\n%s", cols, rows, out);
	assert_int_equal(got, lines);
	if (rows >= 3)
		assert_int_equal(count + more, n);
	if (want_failures)
		assert_true(failures);
	free(seen);
}

static void sizes(size_t n, bool fail)
{
	static const int dims[][2] = { { 24, 80 }, { 50, 200 }, { 12, 60 }, { 5, 30 },
				       { 3, 20 }, { 100, 40 }, { 24, 11 } };
	struct fmt_fixture *fx = fixtures(n);
	char *out = malloc(OUT_CAP);
	char name[32];

	assert_non_null(out);
	assert_true(st_live_model_init(fx, n, true));
	for (size_t i = 1; i <= n; i++) {
		snprintf(name, sizeof(name), "F%zu", i);
		if (i % 3 == 0) {
			report(name, JNL_ST_CONNECT, IMP_OK, PROV_ACT_BOARD, 0, 0);
			report(name, JNL_ST_FIRMWARE, IMP_OK, PROV_ACT_BOARD, 0, 0);
			report(name, JNL_ST_FIRMWARE, IMP_OK, PROV_ACT_FLASH, 4096, 8192);
		} else if (fail && i % 5 == 0) {
			report(name, JNL_ST_CHALLENGE, IMP_OK, PROV_ACT_BOARD, 0, 0);
			report(name, JNL_ST_FAILED, IMP_ERR_CHALLENGE, PROV_ACT_BOARD, 0, 0);
		} else if (i % 2 == 0) {
			report(name, JNL_ST_DONE, IMP_OK, PROV_ACT_BOARD, 0, 0);
		}
	}
	for (size_t d = 0; d < sizeof(dims) / sizeof(dims[0]); d++) {
		size_t lines = st_live_render(dims[d][0], dims[d][1], false, out, OUT_CAP);

		check_frame(out, lines, dims[d][0], dims[d][1], n, fail);
	}
	st_live_model_free();
	fixtures_free(fx, n);
	free(out);
}

static void test_few_fixtures(void **state)
{
	(void)state;
	sizes(5, true); /* F5 fails its challenge */
}

static void test_24_fixtures(void **state)
{
	(void)state;
	sizes(24, true);
}

static void test_200_fixtures(void **state)
{
	(void)state;
	sizes(200, true);
}

static void test_no_failures(void **state)
{
	(void)state;
	sizes(24, false);
}

static void test_rows(void **state)
{
	struct fmt_fixture *fx = fixtures(12);
	char *out = malloc(OUT_CAP);
	const char *f2, *f10, *row;

	(void)state;
	assert_non_null(out);
	assert_true(st_live_model_init(fx, 12, false));
	report("F2", JNL_ST_CONNECT, IMP_OK, PROV_ACT_BOARD, 0, 0);
	report("F2", JNL_ST_FIRMWARE, IMP_OK, PROV_ACT_BOARD, 0, 0);
	report("F2", JNL_ST_FIRMWARE, IMP_OK, PROV_ACT_FLASH, 1024, 2048);
	report("F10", JNL_ST_CHALLENGE, IMP_OK, PROV_ACT_BOARD, 0, 0);
	report("F10", JNL_ST_FAILED, IMP_ERR_CHALLENGE, PROV_ACT_BOARD, 0, 0);
	st_live_render(40, 120, false, out, OUT_CAP);
	f2 = strstr(out, "\nF2 ");
	f10 = strstr(out, "\nF10 ");
	assert_non_null(f2);
	assert_non_null(f10);
	assert_true(f2 < f10); /* natural order: F2 before F10 */
	row = f2 + 1;
	assert_non_null(strstr(row, " 7/11 FIRMWARE "));
	assert_true(strstr(row, "[#####-----]  50%") < strchr(row, '\n'));
	row = f10 + 1;
	/* a rejected board keeps the step it failed at */
	assert_true(strstr(row, " 8/11 FAILED ") < strchr(row, '\n'));
	assert_non_null(strstr(row, "FAILED at CHALLENGE"));
	assert_non_null(strstr(out, "-- failures: 1 in this run --\n"));
	assert_non_null(strstr(out, " F10 at CHALLENGE, TST000042: "));
	/* a second board on the fixture starts from its own step */
	report("F10", JNL_ST_CONNECT, IMP_OK, PROV_ACT_BOARD, 0, 0);
	st_live_render(40, 120, false, out, OUT_CAP);
	row = strstr(out, "\nF10 ") + 1;
	assert_true(strstr(row, " 1/11 CONNECT ") < strchr(row, '\n'));
	assert_non_null(strstr(out, "-- failures: 1 in this run --\n")); /* still shown */
	st_live_model_free();
	fixtures_free(fx, 12);
	free(out);
}

/* a failed assertion leaves the model: the next test starts clean */
static int teardown(void **state)
{
	(void)state;
	st_live_model_free();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_few_fixtures, teardown),
		cmocka_unit_test_teardown(test_24_fixtures, teardown),
		cmocka_unit_test_teardown(test_200_fixtures, teardown),
		cmocka_unit_test_teardown(test_no_failures, teardown),
		cmocka_unit_test_teardown(test_rows, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
