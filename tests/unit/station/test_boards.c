/*
 * Which recorded error `imprint boards` shows as a board's own
 * (st_error_current, station/output.c): the one that rejected it, the one
 * at the step it is still at, never one from a step a resume took it past.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "station.h"

static void test_moved_on_error_is_history(void **state)
{
	(void)state;
	/* Failed at FIRMWARE (a probe failure), resumed, now at LOCK. */
	assert_false(st_error_current(JNL_ST_LOCK, "FIRMWARE"));
	assert_false(st_error_current(JNL_ST_RECORD, "KEYS"));
	assert_false(st_error_current(JNL_ST_DONE, "FIRMWARE"));
	assert_false(st_error_current(JNL_ST_DONE, NULL));
}

static void test_error_at_its_step_is_current(void **state)
{
	(void)state;
	assert_true(st_error_current(JNL_ST_FIRMWARE, "FIRMWARE"));
	/* Standing before the step that failed: not past it. */
	assert_true(st_error_current(JNL_ST_INJECT, "FIRMWARE"));
	assert_true(st_error_current(JNL_ST_FAILED, "CHALLENGE"));
	assert_true(st_error_current(JNL_ST_FAILED, NULL));
	assert_true(st_error_current(JNL_ST_QUARANTINED, NULL));
	/* Nothing says where it was recorded: shown rather than hidden. */
	assert_true(st_error_current(JNL_ST_LOCK, NULL));
	assert_true(st_error_current(JNL_ST_LOCK, "NOSUCH"));
	assert_true(st_error_current(JNL_ST_LOCK, "FAILED"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_moved_on_error_is_history),
		cmocka_unit_test(test_error_at_its_step_is_current),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
