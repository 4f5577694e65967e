#include "fmt_test.h"

#include "formats/serial.h"

static void test_format_none(void **state)
{
	char out[FMT_SERIAL_MAX];

	(void)state;
	assert_int_equal(fmt_serial_format("ACM", 6, FMT_CHECK_NONE, 42, out, sizeof(out)), IMP_OK);
	assert_string_equal(out, "ACM000042");
	assert_int_equal(fmt_serial_format("", 1, FMT_CHECK_NONE, 9, out, sizeof(out)), IMP_OK);
	assert_string_equal(out, "9");
	assert_int_equal(fmt_serial_format("ACM", 6, FMT_CHECK_NONE, 999999, out, sizeof(out)),
			 IMP_OK);
	assert_int_equal(fmt_serial_format("ACM", 6, FMT_CHECK_NONE, 1000000, out, sizeof(out)),
			 IMP_ERR_QUOTA);
	assert_int_equal(fmt_serial_format("ACM", 12, FMT_CHECK_NONE, 999999999999ull, out,
					   sizeof(out)), IMP_OK);
	assert_string_equal(out, "ACM999999999999");
	assert_int_equal(fmt_serial_format("acm", 6, FMT_CHECK_NONE, 1, out, sizeof(out)),
			 IMP_ERR_USAGE);
	assert_int_equal(fmt_serial_format("A-B", 6, FMT_CHECK_NONE, 1, out, sizeof(out)),
			 IMP_ERR_USAGE);
	assert_int_equal(fmt_serial_format("ACM", 0, FMT_CHECK_NONE, 0, out, sizeof(out)),
			 IMP_ERR_USAGE);
	assert_int_equal(fmt_serial_format("ACM", 13, FMT_CHECK_NONE, 0, out, sizeof(out)),
			 IMP_ERR_USAGE);
	assert_int_equal(fmt_serial_format("ACM", 6, FMT_CHECK_NONE, 1, out, 9), IMP_ERR_USAGE);
	assert_int_equal(fmt_serial_format("ABCDEFGHIJKLMNOPQ", 6, FMT_CHECK_NONE, 1, out,
					   sizeof(out)), IMP_ERR_USAGE);
	assert_int_equal(fmt_serial_check("ACM000042", FMT_CHECK_NONE), IMP_OK);
	assert_int_equal(fmt_serial_check("acm000042", FMT_CHECK_NONE), IMP_ERR_VERIFY);
}

/* Vectors computed independently (Luhn mod N, N = 36; ISO 7064 MOD 97-10). */
static void test_vectors(void **state)
{
	static const struct {
		const char *prefix;
		uint64_t n;
		unsigned width;
		const char *luhn;
		const char *mod97;
	} v[] = {
		{ "ACM", 42, 6, "ACM000042N", "ACM00004212" },
		{ "ACM", 1, 6, "ACM000001T", "ACM00000138" },
		{ "IMP", 0, 6, "IMP000000Y", "IMP00000072" },
		{ "X", 1, 1, "X11", "X175" },
	};
	char out[FMT_SERIAL_MAX];

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		assert_int_equal(fmt_serial_format(v[i].prefix, v[i].width, FMT_CHECK_LUHN36,
						   v[i].n, out, sizeof(out)), IMP_OK);
		assert_string_equal(out, v[i].luhn);
		assert_int_equal(fmt_serial_check(out, FMT_CHECK_LUHN36), IMP_OK);
		assert_int_equal(fmt_serial_format(v[i].prefix, v[i].width, FMT_CHECK_MOD97,
						   v[i].n, out, sizeof(out)), IMP_OK);
		assert_string_equal(out, v[i].mod97);
		assert_int_equal(fmt_serial_check(out, FMT_CHECK_MOD97), IMP_OK);
	}
}

static const char alphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/* Single-character substitutions are detected (Luhn mod 36: all; MOD 97-10:
 * digit for digit and letter for letter), and so are adjacent transpositions
 * of digits (MOD 97-10; Luhn mod N misses some pairs, its known blind spot). */
static void check_detects(enum fmt_check_digit scheme, int all_transpositions)
{
	char good[FMT_SERIAL_MAX];
	char bad[FMT_SERIAL_MAX];

	for (uint64_t n = 0; n < 300; n += 7) {
		size_t len;

		assert_int_equal(fmt_serial_format("ACM", 6, scheme, n * 3331, good, sizeof(good)),
				 IMP_OK);
		len = strlen(good);
		assert_int_equal(fmt_serial_check(good, scheme), IMP_OK);
		for (size_t i = 0; i < len; i++) {
			for (const char *c = alphabet; *c; c++) {
				if (*c == good[i])
					continue;
				/* MOD 97-10 over the IBAN letter expansion guarantees
				 * nothing when a digit becomes a letter or back. */
				if (scheme == FMT_CHECK_MOD97 && ((*c > '9') != (good[i] > '9')))
					continue;
				strcpy(bad, good);
				bad[i] = *c;
				assert_int_equal(fmt_serial_check(bad, scheme), IMP_ERR_VERIFY);
			}
		}
		for (size_t i = 0; i + 1 < len; i++) {
			if (good[i] == good[i + 1])
				continue;
			if (scheme == FMT_CHECK_MOD97 && ((good[i] > '9') != (good[i + 1] > '9')))
				continue;
			strcpy(bad, good);
			bad[i] = good[i + 1];
			bad[i + 1] = good[i];
			if (all_transpositions)
				assert_int_equal(fmt_serial_check(bad, scheme), IMP_ERR_VERIFY);
		}
	}
}

static void test_luhn36_detects(void **state)
{
	(void)state;
	check_detects(FMT_CHECK_LUHN36, 0);
}

static void test_mod97_detects(void **state)
{
	(void)state;
	check_detects(FMT_CHECK_MOD97, 1);
}

static void test_check_malformed(void **state)
{
	enum fmt_check_digit c;

	(void)state;
	assert_int_equal(fmt_serial_check("", FMT_CHECK_LUHN36), IMP_ERR_VERIFY);
	assert_int_equal(fmt_serial_check("N", FMT_CHECK_LUHN36), IMP_ERR_VERIFY);
	assert_int_equal(fmt_serial_check("ACM000042N ", FMT_CHECK_LUHN36), IMP_ERR_VERIFY);
	assert_int_equal(fmt_serial_check("ACM0000421A", FMT_CHECK_MOD97), IMP_ERR_VERIFY);
	assert_int_equal(fmt_serial_check(NULL, FMT_CHECK_MOD97), IMP_ERR_VERIFY);
	assert_int_equal(fmt_check_digit_parse("mod97", &c), IMP_OK);
	assert_int_equal(c, FMT_CHECK_MOD97);
	assert_int_equal(fmt_check_digit_parse("luhn", &c), IMP_ERR_USAGE);
	assert_string_equal(fmt_check_digit_name(FMT_CHECK_LUHN36), "luhn36");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_none),
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_luhn36_detects),
		cmocka_unit_test(test_mod97_detects),
		cmocka_unit_test(test_check_malformed),
	};

	imp_log_set_level(IMP_LOG_QUIET);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
