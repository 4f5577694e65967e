/*
 * fmt_ecdsa_raw_to_der / fmt_ecdsa_der_to_raw: round trips against OpenSSL's
 * own ECDSA_SIG encoding, edge values, and malformed DER that must be
 * rejected.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/rand.h>

#include "formats/ecdsa_der.h"

/* OpenSSL's DER of the signature r||s. */
static size_t openssl_der(const uint8_t raw[64], uint8_t *out)
{
	ECDSA_SIG *sig = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(raw, 32, NULL), *s = BN_bin2bn(raw + 32, 32, NULL);
	unsigned char *p = out;
	int n;

	assert_non_null(sig);
	assert_int_equal(ECDSA_SIG_set0(sig, r, s), 1);
	n = i2d_ECDSA_SIG(sig, &p);
	assert_true(n > 0);
	ECDSA_SIG_free(sig);
	return (size_t)n;
}

static void roundtrip(const uint8_t raw[64])
{
	uint8_t der[FMT_ECDSA_DER_MAX], ref[FMT_ECDSA_DER_MAX + 8], back[64];
	size_t n, ref_n;

	assert_int_equal(fmt_ecdsa_raw_to_der(raw, der, sizeof(der), &n), IMP_OK);
	ref_n = openssl_der(raw, ref);
	assert_int_equal(n, ref_n);
	assert_memory_equal(der, ref, n);
	assert_int_equal(fmt_ecdsa_der_to_raw(der, n, back), IMP_OK);
	assert_memory_equal(back, raw, 64);
}

static void test_roundtrip_random(void **state)
{
	uint8_t raw[64];

	(void)state;
	for (int i = 0; i < 2000; i++) {
		assert_int_equal(RAND_bytes(raw, sizeof(raw)), 1);
		if (i % 4 == 1)
			raw[0] |= 0x80;        /* needs a 0x00 pad byte */
		if (i % 4 == 2)
			memset(raw + 32, 0, 3); /* short s */
		if (i % 4 == 3) {
			memset(raw, 0, 31);     /* one-byte r */
			raw[31] |= 1;
		}
		roundtrip(raw);
	}
}

static void test_edge_values(void **state)
{
	uint8_t raw[64], der[FMT_ECDSA_DER_MAX];
	size_t n;

	(void)state;
	memset(raw, 0xff, sizeof(raw));
	roundtrip(raw);
	assert_int_equal(fmt_ecdsa_raw_to_der(raw, der, sizeof(der), &n), IMP_OK);
	assert_int_equal(n, FMT_ECDSA_DER_MAX);
	assert_int_equal(der[2], 0x02);
	assert_int_equal(der[3], 33);
	assert_int_equal(der[4], 0x00);

	memset(raw, 0, sizeof(raw));
	raw[31] = 1;
	raw[63] = 0x7f;
	roundtrip(raw);
	assert_int_equal(fmt_ecdsa_raw_to_der(raw, der, sizeof(der), &n), IMP_OK);
	assert_int_equal(n, 8);

	/* zero r or s is not a signature */
	memset(raw, 0, 32);
	assert_int_equal(fmt_ecdsa_raw_to_der(raw, der, sizeof(der), &n), IMP_ERR_CRYPTO);
	/* too small an output buffer */
	memset(raw, 0x11, sizeof(raw));
	assert_int_not_equal(fmt_ecdsa_raw_to_der(raw, der, FMT_ECDSA_DER_MAX - 1, &n), IMP_OK);
}

static void expect_bad(const uint8_t *der, size_t n)
{
	uint8_t raw[64];

	assert_int_equal(fmt_ecdsa_der_to_raw(der, n, raw), IMP_ERR_PROTOCOL);
}

static void test_malformed(void **state)
{
	uint8_t good[FMT_ECDSA_DER_MAX], bad[FMT_ECDSA_DER_MAX + 4], raw[64];
	size_t n;

	(void)state;
	memset(raw, 0x42, sizeof(raw));
	assert_int_equal(fmt_ecdsa_raw_to_der(raw, good, sizeof(good), &n), IMP_OK);
	assert_int_equal(n, 70);
	assert_int_equal(fmt_ecdsa_der_to_raw(good, n, raw), IMP_OK);

	expect_bad(good, 0);
	expect_bad(good, n - 1);                  /* truncated */
	memcpy(bad, good, n);
	bad[n] = 0;
	expect_bad(bad, n + 1);                   /* trailing byte */
	memcpy(bad, good, n);
	bad[0] = 0x31;
	expect_bad(bad, n);                       /* not a SEQUENCE */
	memcpy(bad, good, n);
	bad[1] = 0x81;
	expect_bad(bad, n);                       /* long-form length */
	memcpy(bad, good, n);
	bad[2] = 0x03;
	expect_bad(bad, n);                       /* r not an INTEGER */
	memcpy(bad, good, n);
	bad[4] = 0x80 | bad[4];
	expect_bad(bad, n);                       /* negative r */
	{
		/* non-minimal: r = 00 01 */
		static const uint8_t nm[] = { 0x30, 0x07, 0x02, 0x02, 0x00, 0x01,
					      0x02, 0x01, 0x01 };
		static const uint8_t zero[] = { 0x30, 0x06, 0x02, 0x01, 0x00,
						0x02, 0x01, 0x01 };
		static const uint8_t minimal[] = { 0x30, 0x06, 0x02, 0x01, 0x01,
						   0x02, 0x01, 0x01 };
		uint8_t big[2 + 2 + 34 + 3];

		expect_bad(nm, sizeof(nm));
		expect_bad(zero, sizeof(zero));     /* r = 0 */
		assert_int_equal(fmt_ecdsa_der_to_raw(minimal, sizeof(minimal), raw), IMP_OK);
		assert_int_equal(raw[31], 1);
		assert_int_equal(raw[63], 1);
		/* r of 34 bytes (does not fit 32) */
		big[0] = 0x30;
		big[1] = sizeof(big) - 2;
		big[2] = 0x02;
		big[3] = 34;
		big[4] = 0x00;
		memset(big + 5, 0x01, 33);
		big[38] = 0x02;
		big[39] = 0x01;
		big[40] = 0x01;
		expect_bad(big, sizeof(big));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_random),
		cmocka_unit_test(test_edge_values),
		cmocka_unit_test(test_malformed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
