#include "fmt_test.h"

#include "formats/base64.h"

static void enc_url(const char *in, const char *want)
{
	char *s = fmt_b64url_encode(in, strlen(in));

	assert_non_null(s);
	assert_string_equal(s, want);
	assert_int_equal(strlen(s), fmt_b64url_len(strlen(in)));
	free(s);
}

static void dec_url_ok(const char *in, const char *want)
{
	uint8_t *out = NULL;
	size_t n = 99;

	assert_int_equal(fmt_b64url_decode(in, strlen(in), &out, &n), IMP_OK);
	assert_non_null(out);
	assert_int_equal(n, strlen(want));
	assert_memory_equal(out, want, n);
	assert_int_equal(out[n], 0);
	free(out);
}

static void dec_url_bad(const char *in)
{
	uint8_t *out = (uint8_t *)"x";
	size_t n = 99;

	assert_int_equal(fmt_b64url_decode(in, strlen(in), &out, &n), IMP_ERR_PROTOCOL);
	assert_null(out);
	assert_int_equal(n, 0);
}

/* RFC 4648 section 10 test vectors. */
static void test_rfc4648_vectors(void **state)
{
	(void)state;
	enc_url("", "");
	enc_url("f", "Zg");
	enc_url("fo", "Zm8");
	enc_url("foo", "Zm9v");
	enc_url("foob", "Zm9vYg");
	enc_url("fooba", "Zm9vYmE");
	enc_url("foobar", "Zm9vYmFy");
	dec_url_ok("", "");
	dec_url_ok("Zg", "f");
	dec_url_ok("Zm8", "fo");
	dec_url_ok("Zm9vYmFy", "foobar");
}

static void test_url_alphabet(void **state)
{
	const uint8_t bin[] = { 0xfb, 0xff, 0xbf };
	char *s;
	uint8_t *out = NULL;
	size_t n;

	(void)state;
	s = fmt_b64url_encode(bin, sizeof(bin));
	assert_string_equal(s, "-_-_");
	assert_int_equal(fmt_b64url_decode(s, strlen(s), &out, &n), IMP_OK);
	assert_int_equal(n, 3);
	assert_memory_equal(out, bin, 3);
	free(out);
	free(s);
	s = fmt_b64_encode(bin, sizeof(bin));
	assert_string_equal(s, "+/+/");
	free(s);
}

static void test_url_strict(void **state)
{
	(void)state;
	dec_url_bad("Zg==");   /* padding */
	dec_url_bad("Zg=");
	dec_url_bad("Z");      /* 1 mod 4 */
	dec_url_bad("Zm9vY");
	dec_url_bad("Zm9v\n"); /* whitespace */
	dec_url_bad(" Zm9v");
	dec_url_bad("Zm+v");   /* standard alphabet */
	dec_url_bad("Zm/v");
	dec_url_bad("Zh");     /* non-zero trailing bits: "Zg" is the one encoding */
	dec_url_bad("Zm9");    /* "Zm8" is the one encoding */
	dec_url_bad("Zm\x80v");
}

static void test_url_embedded_nul_and_len(void **state)
{
	uint8_t *out = NULL;
	size_t n;

	(void)state;
	/* Only len characters are read. */
	assert_int_equal(fmt_b64url_decode("Zm9vXXXX", 4, &out, &n), IMP_OK);
	assert_int_equal(n, 3);
	assert_memory_equal(out, "foo", 3);
	free(out);
	assert_int_equal(fmt_b64url_decode("Zm\0v", 4, &out, &n), IMP_ERR_PROTOCOL);
}

static void test_url_round_trip_all_lengths(void **state)
{
	uint8_t buf[70];

	(void)state;
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 37 + 11);
	for (size_t len = 0; len <= sizeof(buf); len++) {
		char *s = fmt_b64url_encode(buf, len);
		uint8_t *out = NULL;
		size_t n = 0;

		assert_non_null(s);
		assert_null(strchr(s, '='));
		assert_int_equal(fmt_b64url_decode(s, strlen(s), &out, &n), IMP_OK);
		assert_int_equal(n, len);
		if (len)
			assert_memory_equal(out, buf, len);
		free(out);
		free(s);
		s = fmt_b64_encode(buf, len);
		assert_int_equal(strlen(s) % 4, 0);
		assert_int_equal(fmt_b64_decode(s, strlen(s), &out, &n), IMP_OK);
		assert_int_equal(n, len);
		if (len)
			assert_memory_equal(out, buf, len);
		free(out);
		free(s);
	}
}

static void test_std_strict(void **state)
{
	uint8_t *out = NULL;
	size_t n;

	(void)state;
	assert_int_equal(fmt_b64_decode("Zm9vYg==", 8, &out, &n), IMP_OK);
	assert_int_equal(n, 4);
	free(out);
	assert_int_equal(fmt_b64_decode("Zm9vYg", 6, &out, &n), IMP_ERR_PROTOCOL);
	assert_int_equal(fmt_b64_decode("Zm9vYg=", 7, &out, &n), IMP_ERR_PROTOCOL);
	assert_int_equal(fmt_b64_decode("Zm9vYh==", 8, &out, &n), IMP_ERR_PROTOCOL);
	assert_int_equal(fmt_b64_decode("Zm=vYg==", 8, &out, &n), IMP_ERR_PROTOCOL);
	assert_int_equal(fmt_b64_decode("Zg===", 5, &out, &n), IMP_ERR_PROTOCOL);
	assert_int_equal(fmt_b64_decode("====", 4, &out, &n), IMP_ERR_PROTOCOL);
	assert_int_equal(fmt_b64_decode("Zm9-", 4, &out, &n), IMP_ERR_PROTOCOL);
}

/* Every byte value: accepted exactly when it is in the alphabet, with its value. */
static void test_every_byte(void **state)
{
	static const char std[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	static const char url[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

	(void)state;
	for (int c = 0; c < 256; c++) {
		/* c followed by "AAA": the first 6 bits are c's value */
		char in[4] = { (char)c, 'A', 'A', 'A' };
		uint8_t out[3];
		size_t n = 0;
		const char *su = c ? memchr(url, c, 64) : NULL;
		const char *ss = c ? memchr(std, c, 64) : NULL;

		if (su) {
			assert_int_equal(fmt_b64url_decode_into(in, 4, out, sizeof(out), &n), IMP_OK);
			assert_int_equal(out[0] >> 2, su - url);
		} else {
			assert_int_equal(fmt_b64url_decode_into(in, 4, out, sizeof(out), &n),
					 IMP_ERR_PROTOCOL);
		}
		if (ss) {
			assert_int_equal(fmt_b64_decode_into(in, 4, out, sizeof(out), &n), IMP_OK);
			assert_int_equal(out[0] >> 2, ss - std);
		} else {
			assert_int_equal(fmt_b64_decode_into(in, 4, out, sizeof(out), &n),
					 IMP_ERR_PROTOCOL);
		}
	}
}

/* The buffer variants: same answers as the allocating ones, and a short buffer refused. */
static void test_decode_into(void **state)
{
	uint8_t out[8];
	size_t n = 0;

	(void)state;
	assert_int_equal(fmt_b64_decoded_len(6), 4);
	assert_int_equal(fmt_b64url_decode_into("Zm9vYg", 6, out, sizeof(out), &n), IMP_OK);
	assert_int_equal(n, 4);
	assert_memory_equal(out, "foob", 4);
	assert_int_equal(fmt_b64url_decode_into("Zm9vYg", 6, out, 3, &n), IMP_ERR_USAGE);
	assert_int_equal(fmt_b64url_decode_into("Zm9vYh", 6, out, sizeof(out), &n),
			 IMP_ERR_PROTOCOL);
	assert_int_equal(fmt_b64_decode_into("Zm9vYg==", 8, out, sizeof(out), &n), IMP_OK);
	assert_int_equal(n, 4);
	assert_int_equal(fmt_b64_decode_into("Zm9vYg", 6, out, sizeof(out), &n), IMP_ERR_PROTOCOL);
	assert_int_equal(fmt_b64_decode_into("Zm=vYg==", 8, out, sizeof(out), &n),
			 IMP_ERR_PROTOCOL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc4648_vectors),
		cmocka_unit_test(test_url_alphabet),
		cmocka_unit_test(test_url_strict),
		cmocka_unit_test(test_url_embedded_nul_and_len),
		cmocka_unit_test(test_url_round_trip_all_lengths),
		cmocka_unit_test(test_std_strict),
		cmocka_unit_test(test_every_byte),
		cmocka_unit_test(test_decode_into),
	};

	imp_log_set_level(IMP_LOG_QUIET);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
