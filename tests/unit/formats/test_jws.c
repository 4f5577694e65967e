#include <stdio.h>

#include <openssl/sha.h>

#include "fmt_test.h"

#include "formats/base64.h"
#include "formats/jws.h"

static struct hierarchy H;

static int setup(void **state)
{
	(void)state;
	hierarchy_init(&H);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	hierarchy_release(&H);
	return 0;
}

static const char payload[] = "{\"hello\":\"world\",\"n\":42}";

/* Sign the test payload into *jws, which the caller owns and frees. The
 * pointer lives in the caller's frame: a helper that returned a pointer it
 * had received through the address of its own local is what gcc 12's
 * -Wdangling-pointer (at -O2, once inlined) cannot tell from returning the
 * address of that local. */
static void sign_with(char **jws, EVP_PKEY *key, const char *typ, X509 *const *x5c, size_t n)
{
	struct fmt_signer s;

	*jws = NULL;
	fmt_signer_from_pkey(&s, key);
	assert_int_equal(fmt_jws_sign(&s, typ, "k1", x5c, n, payload, strlen(payload), jws),
			 IMP_OK);
	assert_non_null(*jws);
}

/* Build "b64url(header).b64url(body).sig" from pieces. */
static char *compose(const char *header, const char *body, const char *sig64)
{
	char *h = fmt_b64url_encode(header, strlen(header));
	char *b = fmt_b64url_encode(body, strlen(body));
	char *out = NULL;

	assert_true(asprintf(&out, "%s.%s.%s", h, b, sig64) > 0);
	free(h);
	free(b);
	return out;
}

static const char *sig_part(const char *jws)
{
	return strrchr(jws, '.') + 1;
}

static void test_round_trip(void **state)
{
	char *jws;
	struct fmt_jws j;
	uint8_t *hdr = NULL;
	size_t n;

	(void)state;
	sign_with(&jws, H.rec_key, "test+jws", NULL, 0);
	assert_int_equal(fmt_jws_verify_key(jws, H.rec_key, "test+jws", &j), IMP_OK);
	assert_int_equal(j.payload_len, strlen(payload));
	assert_memory_equal(j.payload, payload, j.payload_len);
	assert_string_equal(json_string_value(json_object_get(j.header, "alg")), "ES256");
	assert_string_equal(json_string_value(json_object_get(j.header, "kid")), "k1");
	assert_null(j.leaf);
	fmt_jws_release(&j);
	/* The protected header is compact, sorted JSON. */
	assert_int_equal(fmt_b64url_decode(jws, (size_t)(strchr(jws, '.') - jws), &hdr, &n),
			 IMP_OK);
	assert_string_equal((char *)hdr, "{\"alg\":\"ES256\",\"kid\":\"k1\",\"typ\":\"test+jws\"}");
	free(hdr);
	/* The signature is the 64-byte r||s, not DER. */
	assert_int_equal(strlen(sig_part(jws)), 86);
	/* typ not checked when NULL; checked when given. */
	assert_int_equal(fmt_jws_verify_key(jws, H.rec_key, NULL, &j), IMP_OK);
	fmt_jws_release(&j);
	assert_int_equal(fmt_jws_verify_key(jws, H.rec_key, "other", &j), IMP_ERR_PROTOCOL);
	assert_null(j.header);
	free(jws);
}

static void test_payload_byte_altered(void **state)
{
	char *jws;
	const char *d1, *d2;
	uint8_t *body = NULL;
	size_t n;
	struct fmt_jws j;

	(void)state;
	sign_with(&jws, H.rec_key, NULL, NULL, 0);
	d1 = strchr(jws, '.');
	d2 = strrchr(jws, '.');
	assert_int_equal(fmt_b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), &body, &n), IMP_OK);
	for (size_t i = 0; i < n; i++) {
		char *b64;
		char *forged = NULL;

		body[i] ^= 0x01;
		b64 = fmt_b64url_encode(body, n);
		assert_true(asprintf(&forged, "%.*s.%s.%s", (int)(d1 - jws), jws, b64, d2 + 1) > 0);
		assert_int_equal(fmt_jws_verify_key(forged, H.rec_key, NULL, &j), IMP_ERR_VERIFY);
		assert_null(j.payload);
		free(forged);
		free(b64);
		body[i] ^= 0x01;
	}
	free(body);
	/* A signature bit flipped. */
	jws[strlen(jws) - 5] = jws[strlen(jws) - 5] == 'A' ? 'B' : 'A';
	assert_int_equal(fmt_jws_verify_key(jws, H.rec_key, NULL, &j), IMP_ERR_VERIFY);
	free(jws);
}

static void test_alg_none_and_others_refused(void **state)
{
	char *jws;
	static const char *headers[] = {
		"{\"alg\":\"none\"}",
		"{\"alg\":\"HS256\"}",
		"{\"alg\":\"ES384\"}",
		"{\"alg\":\"es256\"}",
		"{\"typ\":\"JWT\"}",
		"{\"alg\":[\"ES256\"]}",
		"{\"alg\":\"ES256\",\"crit\":[\"b64\"],\"b64\":false}",
		"{\"alg\":\"ES256\",\"alg\":\"ES256\"}",
		"{\"alg\":\"ES256\",\"jku\":\"https://evil\"}",
		"[\"ES256\"]",
		"not json",
	};
	struct fmt_jws j;

	(void)state;
	sign_with(&jws, H.rec_key, NULL, NULL, 0);
	for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
		/* Same payload, a real signature of the original: still refused. */
		char *forged = compose(headers[i], payload, sig_part(jws));

		assert_int_equal(fmt_jws_verify_key(forged, H.rec_key, NULL, &j),
				 IMP_ERR_PROTOCOL);
		free(forged);
	}
	/* alg none with an empty signature. */
	{
		char *forged = compose("{\"alg\":\"none\"}", payload, "");

		assert_int_equal(fmt_jws_verify_key(forged, H.rec_key, NULL, &j),
				 IMP_ERR_PROTOCOL);
		free(forged);
	}
	free(jws);
}

static void test_wrong_key(void **state)
{
	char *jws;
	struct fmt_jws j;

	(void)state;
	sign_with(&jws, H.rec_key, NULL, NULL, 0);
	assert_int_equal(fmt_jws_verify_key(jws, H.rev_key, NULL, &j), IMP_ERR_VERIFY);
	free(jws);
}

static void test_truncated_and_malformed(void **state)
{
	char *jws;
	size_t len;
	struct fmt_jws j;
	char *s;

	(void)state;
	sign_with(&jws, H.rec_key, NULL, NULL, 0);
	len = strlen(jws);
	/* Every proper prefix fails. */
	for (size_t i = 0; i < len; i++) {
		char *t = strndup(jws, i);

		assert_int_not_equal(fmt_jws_verify_key(t, H.rec_key, NULL, &j), IMP_OK);
		free(t);
	}
	assert_true(asprintf(&s, "%s.", jws) > 0);
	assert_int_equal(fmt_jws_verify_key(s, H.rec_key, NULL, &j), IMP_ERR_PROTOCOL);
	free(s);
	assert_true(asprintf(&s, "%s=", jws) > 0);
	assert_int_equal(fmt_jws_verify_key(s, H.rec_key, NULL, &j), IMP_ERR_PROTOCOL);
	free(s);
	assert_true(asprintf(&s, " %s", jws) > 0);
	assert_int_equal(fmt_jws_verify_key(s, H.rec_key, NULL, &j), IMP_ERR_PROTOCOL);
	free(s);
	assert_true(asprintf(&s, "%s\n", jws) > 0);
	assert_int_equal(fmt_jws_verify_key(s, H.rec_key, NULL, &j), IMP_ERR_PROTOCOL);
	free(s);
	/* A DER signature instead of r||s. */
	assert_int_equal(fmt_jws_verify_key("eyJhbGciOiJFUzI1NiJ9.e30.MEQCIA", H.rec_key, NULL, &j),
			 IMP_ERR_PROTOCOL);
	assert_int_equal(fmt_jws_verify_key("", H.rec_key, NULL, &j), IMP_ERR_PROTOCOL);
	assert_int_equal(fmt_jws_verify_key("..", H.rec_key, NULL, &j), IMP_ERR_PROTOCOL);
	free(jws);
}

static void test_x5c(void **state)
{
	X509 *chain[] = { H.rec, H.root };
	X509 *dev_chain[] = { H.dev, H.ca };
	char *jws, *jws2, *dev, *lying;
	struct fmt_jws j;
	X509_STORE *other = X509_STORE_new();
	EVP_PKEY *k = new_key();
	X509 *other_root = issue(FMT_CERT_ROOT_CA, "Other", k, NULL, k);

	(void)state;
	sign_with(&jws, H.rec_key, "t", chain, 1);
	sign_with(&jws2, H.rec_key, "t", chain, 2);
	sign_with(&dev, H.dev_key, "t", dev_chain, 2);
	sign_with(&lying, H.rev_key, "t", chain, 1); /* claims rec's certificate */
	assert_int_equal(fmt_jws_verify_x5c(jws, H.trust, FMT_KU_DIGITAL_SIGNATURE, "t", &j),
			 IMP_OK);
	assert_non_null(j.leaf);
	assert_int_equal(X509_cmp(j.leaf, H.rec), 0);
	fmt_jws_release(&j);
	assert_int_equal(fmt_jws_verify_x5c(jws2, H.trust, FMT_KU_DIGITAL_SIGNATURE, "t", &j),
			 IMP_OK);
	fmt_jws_release(&j);
	/* The device chain through the sub CA. */
	assert_int_equal(fmt_jws_verify_x5c(dev, H.trust, FMT_KU_DIGITAL_SIGNATURE, "t", &j),
			 IMP_OK);
	fmt_jws_release(&j);
	/* Required key usage missing. */
	assert_int_equal(fmt_jws_verify_x5c(jws, H.trust, FMT_KU_KEY_AGREEMENT, "t", &j),
			 IMP_ERR_VERIFY);
	/* Untrusted root. */
	X509_STORE_add_cert(other, other_root);
	assert_int_equal(fmt_jws_verify_x5c(jws, other, FMT_KU_DIGITAL_SIGNATURE, "t", &j),
			 IMP_ERR_VERIFY);
	/* Valid chain, but the signature was made by another key. */
	assert_int_equal(fmt_jws_verify_x5c(lying, H.trust, FMT_KU_DIGITAL_SIGNATURE, "t", &j),
			 IMP_ERR_VERIFY);
	/* No x5c at all. */
	{
		char *plain;

		sign_with(&plain, H.rec_key, "t", NULL, 0);

		assert_int_equal(fmt_jws_verify_x5c(plain, H.trust, 0, "t", &j), IMP_ERR_PROTOCOL);
		free(plain);
	}
	assert_null(j.leaf);
	X509_free(other_root);
	EVP_PKEY_free(k);
	X509_STORE_free(other);
	free(jws);
	free(jws2);
	free(dev);
	free(lying);
}

static void test_jwk(void **state)
{
	json_t *jwk = fmt_jwk_from_pkey(H.dev_key);
	json_t *bad;
	EVP_PKEY *k = NULL;
	char tp[44];
	char *canon;
	uint8_t digest[32];
	char *want;

	(void)state;
	assert_non_null(jwk);
	assert_int_equal(json_object_size(jwk), 4);
	assert_string_equal(json_string_value(json_object_get(jwk, "kty")), "EC");
	assert_string_equal(json_string_value(json_object_get(jwk, "crv")), "P-256");
	assert_int_equal(strlen(json_string_value(json_object_get(jwk, "x"))), 43);
	assert_int_equal(fmt_jwk_to_pkey(jwk, &k), IMP_OK);
	assert_true(fmt_pubkey_equal(k, H.dev_key));
	EVP_PKEY_free(k);

	/* RFC 7638: SHA-256 of the sorted, whitespace-free required members. */
	assert_int_equal(fmt_jwk_thumbprint(H.dev_key, tp), IMP_OK);
	assert_int_equal(strlen(tp), 43);
	canon = json_dumps(jwk, JSON_COMPACT | JSON_SORT_KEYS);
	SHA256((uint8_t *)canon, strlen(canon), digest);
	want = fmt_b64url_encode(digest, 32);
	assert_string_equal(tp, want);
	free(want);
	free(canon);

	bad = json_deep_copy(jwk);
	json_object_set_new(bad, "d", json_string("AAAA"));
	assert_int_equal(fmt_jwk_to_pkey(bad, &k), IMP_ERR_PROTOCOL);
	json_decref(bad);
	bad = json_deep_copy(jwk);
	json_object_set_new(bad, "crv", json_string("P-384"));
	assert_int_equal(fmt_jwk_to_pkey(bad, &k), IMP_ERR_PROTOCOL);
	json_decref(bad);
	bad = json_deep_copy(jwk);
	json_object_set_new(bad, "x", json_string("AAAA"));
	assert_int_equal(fmt_jwk_to_pkey(bad, &k), IMP_ERR_PROTOCOL);
	json_decref(bad);
	bad = json_deep_copy(jwk);
	/* x of the key, y all zero: not on the curve */
	json_object_set_new(bad, "y", json_string("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
	assert_int_equal(fmt_jwk_to_pkey(bad, &k), IMP_ERR_CRYPTO);
	json_decref(bad);
	assert_null(k);
	json_decref(jwk);
}

/* The one splitter: spans, and every malformed shape refused. */
static void test_split(void **state)
{
	static const char *const bad[] = { "", "abc", "a.b", "a.b.c.d", ".b.c", "a.b.", "..",
					   "a..", "...", "a.b.c." };
	struct fmt_jws_parts p;
	char *big;

	(void)state;
	assert_int_equal(fmt_jws_split("hh.ppp.s", &p), IMP_OK);
	assert_int_equal(p.header_len, 2);
	assert_memory_equal(p.header, "hh", 2);
	assert_int_equal(p.payload_len, 3);
	assert_memory_equal(p.payload, "ppp", 3);
	assert_int_equal(p.sig_len, 1);
	assert_memory_equal(p.sig, "s", 1);
	assert_int_equal(p.input_len, 6);
	assert_int_equal(p.len, 8);
	/* an empty payload is a JWS (detached content is not ours, but the form is) */
	assert_int_equal(fmt_jws_split("h..s", &p), IMP_OK);
	assert_int_equal(p.payload_len, 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(fmt_jws_split(bad[i], &p), IMP_ERR_PROTOCOL);
		assert_null(p.header);
	}
	assert_int_equal(fmt_jws_split(NULL, &p), IMP_ERR_USAGE);
	big = malloc(FMT_JWS_MAX_LEN + 2);
	assert_non_null(big);
	memset(big, 'A', FMT_JWS_MAX_LEN + 1);
	big[1] = '.';
	big[3] = '.';
	big[FMT_JWS_MAX_LEN + 1] = '\0';
	assert_int_equal(fmt_jws_split(big, &p), IMP_ERR_PROTOCOL);
	big[FMT_JWS_MAX_LEN] = '\0';
	assert_int_equal(fmt_jws_split(big, &p), IMP_OK);
	free(big);
}

/* Peeking: header and payload objects without verification; non-objects refused. */
static void test_peek(void **state)
{
	char *jws;
	json_t *o = NULL;
	char *h, *bad;

	(void)state;
	sign_with(&jws, H.rec_key, "t+jws", NULL, 0);
	assert_int_equal(fmt_jws_peek_header(jws, &o), IMP_OK);
	assert_string_equal(json_string_value(json_object_get(o, "typ")), "t+jws");
	json_decref(o);
	assert_int_equal(fmt_jws_peek_payload(jws, &o), IMP_OK);
	assert_int_equal(json_integer_value(json_object_get(o, "n")), 42);
	json_decref(o);
	/* a payload that is JSON but not an object; one with a duplicate key */
	h = strndup(jws, (size_t)(strchr(jws, '.') - jws));
	{
		char *p1 = fmt_b64url_encode("[1]", 3);
		char *p2 = fmt_b64url_encode("{\"a\":1,\"a\":2}", 13);

		assert_int_not_equal(asprintf(&bad, "%s.%s.c2ln", h, p1), -1);
		assert_int_equal(fmt_jws_peek_payload(bad, &o), IMP_ERR_PROTOCOL);
		assert_null(o);
		free(bad);
		assert_int_not_equal(asprintf(&bad, "%s.%s.c2ln", h, p2), -1);
		assert_int_equal(fmt_jws_peek_payload(bad, &o), IMP_ERR_PROTOCOL);
		free(bad);
		free(p1);
		free(p2);
	}
	assert_int_equal(fmt_jws_peek_header("a.b", &o), IMP_ERR_PROTOCOL);
	assert_int_equal(fmt_jws_peek_header("!!.b.c", &o), IMP_ERR_PROTOCOL);
	free(h);
	free(jws);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_payload_byte_altered),
		cmocka_unit_test(test_alg_none_and_others_refused),
		cmocka_unit_test(test_wrong_key),
		cmocka_unit_test(test_truncated_and_malformed),
		cmocka_unit_test(test_x5c),
		cmocka_unit_test(test_jwk),
		cmocka_unit_test(test_split),
		cmocka_unit_test(test_peek),
	};

	imp_log_set_level(IMP_LOG_QUIET);
	return cmocka_run_group_tests(tests, setup, teardown);
}
