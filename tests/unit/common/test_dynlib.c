/*
 * imp_dynlib: a library loaded at first use. A missing library and a
 * missing function are refused with the package to install, every time;
 * a present one gives its functions, once, to threads that ask at once.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "imprint/dynlib.h"

static void test_missing_library(void **state)
{
	static const char *const names[] = { "nothing" };
	static void *fns[1];
	struct imp_dynlib lib = IMP_DYNLIB("libimprint-absent.so.9", "imprint-absent9", names, fns);

	(void)state;
	assert_int_equal(imp_dynlib_load(&lib), IMP_ERR_NOT_FOUND);
	assert_non_null(strstr(lib.why, "libimprint-absent.so.9"));
	assert_non_null(strstr(lib.why, "apt-get install imprint-absent9"));
	/* the same answer again, without a second dlopen */
	assert_int_equal(imp_dynlib_load(&lib), IMP_ERR_NOT_FOUND);
	assert_null(fns[0]);
}

static void test_missing_function(void **state)
{
	static const char *const names[] = { "strlen", "imprint_no_such_function" };
	static void *fns[2];
	struct imp_dynlib lib = IMP_DYNLIB("libc.so.6", "libc6", names, fns);

	(void)state;
	assert_int_equal(imp_dynlib_load(&lib), IMP_ERR_NOT_FOUND);
	assert_non_null(strstr(lib.why, "imprint_no_such_function"));
	assert_non_null(strstr(lib.why, "libc6"));
}

static const char *const libc_names[] = { "strlen", "memchr" };
static void *libc_fns[2];
static struct imp_dynlib libc_lib = IMP_DYNLIB("libc.so.6", "libc6", libc_names, libc_fns);

static void *load_one(void *arg)
{
	(void)arg;
	return imp_dynlib_load(&libc_lib) == IMP_OK ? imp_dynlib_fn(&libc_lib, 0) : NULL;
}

static void test_present_library_threads(void **state)
{
	pthread_t t[8];
	void *got[8];
	size_t (*len)(const char *);

	(void)state;
	for (int i = 0; i < 8; i++)
		assert_int_equal(pthread_create(&t[i], NULL, load_one, NULL), 0);
	for (int i = 0; i < 8; i++)
		assert_int_equal(pthread_join(t[i], &got[i]), 0);
	for (int i = 0; i < 8; i++) {
		assert_non_null(got[i]);
		assert_ptr_equal(got[i], got[0]);
	}
	len = (size_t(*)(const char *))imp_dynlib_fn(&libc_lib, 0);
	assert_int_equal(len("imprint"), 7);
	assert_non_null(imp_dynlib_fn(&libc_lib, 1));
	assert_string_equal(libc_lib.why, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_missing_library),
		cmocka_unit_test(test_missing_function),
		cmocka_unit_test(test_present_library_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
