/*
 * imp_text_safe: a peer's text with its control characters (C0, DEL, the
 * C1 range of UTF-8, stray continuation bytes) shown as '?', printable
 * UTF-8 kept, never a character cut in two, always NUL-terminated within
 * cap, and nothing read past the input's NUL.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "imprint/util.h"

static void expect(const char *in, size_t cap, const char *want)
{
	char out[64];

	memset(out, 'X', sizeof(out));
	assert_ptr_equal(imp_text_safe(in, out, cap), out);
	assert_string_equal(out, want);
	assert_true(strlen(out) < cap);
}

static void test_controls(void **state)
{
	(void)state;
	expect("plain reason", 64, "plain reason");
	expect("\x1b[2J\x1b]0;pwn\x07" "EVIL\nFAKE\r", 64, "?[2J?]0;pwn?EVIL?FAKE?");
	expect("a\x7f" "b\t", 64, "a?b?");
	expect("csi \xc2\x9b" "31m", 64, "csi ?31m");      /* U+009B, C1 CSI */
	expect("lone \x9b" "x", 64, "lone ?x");             /* not UTF-8: no lead byte */
	expect(NULL, 64, "");
}

static void test_utf8_kept_and_bounded(void **state)
{
	(void)state;
	expect("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x92", 64, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x92");
	expect("ab\xe2\x82\xac", 5, "ab");                  /* the euro sign needs 3 more bytes */
	expect("ab\xe2\x82\xac", 6, "ab\xe2\x82\xac");
	expect("abcdef", 4, "abc");
	expect("\xe2", 64, "\xe2");                          /* cut input: stops at its NUL */
	{
		char one[1] = { 'X' };

		imp_text_safe("x", one, 1);
		assert_int_equal(one[0], '\0');
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_controls),
		cmocka_unit_test(test_utf8_kept_and_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
