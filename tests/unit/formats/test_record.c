#include <stdio.h>

#include <openssl/sha.h>

#include "fmt_test.h"

#include "formats/base64.h"
#include "formats/jws.h"
#include "formats/record.h"
#include "imprint/util.h"

static struct hierarchy H;

static const uint8_t uid[12] = { 0x00, 0x11, 0x22, 0x33, 0x44, 0x55,
				 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb };
static const uint8_t fw[32] = { 1, 2, 3 };
#define HASH_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HASH_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

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

static struct fmt_record device_record(void)
{
	struct fmt_record r = {
		.serial = "ACM000042N",
		.chip_uid = uid,
		.chip_uid_len = sizeof(uid),
		.sku = "ACME-S1",
		.key_mode = FMT_KEY_MODE_DEVICE,
		.public_key = H.dev_key,
		.device_certificate = H.dev,
		.firmware_sha256 = fw,
		.lock_state = { true, true, "secured", NULL },
		.station_id = "line1-st01",
		.fixture = "F1",
		.operator_name = "alice",
		.issued_at = "2026-11-26T09:50:00Z",
		.journal = { 17, HASH_A, HASH_B },
	};
	return r;
}

static char *sign_record(json_t *o, EVP_PKEY *key, X509 *const *x5c, size_t n)
{
	struct fmt_signer s;
	char *jws = NULL;

	fmt_signer_from_pkey(&s, key);
	assert_int_equal(fmt_record_sign(o, &s, x5c, n, &jws), IMP_OK);
	return jws;
}

static void test_build_fields(void **state)
{
	struct fmt_record r = device_record();
	json_t *o = NULL;
	char fp[65];
	char id[65];
	uint8_t digest[32];
	const char *pre = "ACM000042N|00112233445566778899aabb";

	(void)state;
	assert_int_equal(fmt_record_build(&r, &o), IMP_OK);
	assert_string_equal(json_string_value(json_object_get(o, "type")), "identity");
	assert_int_equal(json_integer_value(json_object_get(o, "record_version")), 1);
	SHA256((const uint8_t *)pre, strlen(pre), digest);
	imp_hex_encode(digest, 32, id);
	assert_string_equal(json_string_value(json_object_get(o, "record_id")), id);
	assert_string_equal(json_string_value(json_object_get(o, "chip_uid")),
			    "00112233445566778899aabb");
	assert_string_equal(json_string_value(json_object_get(o, "key_mode")), "device");
	assert_true(json_is_object(json_object_get(o, "public_key")));
	assert_null(json_object_get(o, "kcv"));
	fmt_cert_fingerprint(H.dev, fp);
	assert_string_equal(json_string_value(json_object_get(o, "device_certificate_sha256")), fp);
	assert_true(json_is_true(json_object_get(json_object_get(o, "lock_state"),
						 "debug_locked")));
	assert_string_equal(json_string_value(json_object_get(json_object_get(o, "lock_state"),
							      "verified_at")),
			    "2026-11-26T09:50:00Z");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "journal"), "seq")),
			 17);
	json_decref(o);
}

static void test_sign_verify_key_and_trust(void **state)
{
	struct fmt_record r = device_record();
	json_t *o = NULL;
	json_t *back = NULL;
	X509 *chain[] = { H.rec };
	char *jws;
	char *canon;
	size_t n;
	struct fmt_jws j;

	(void)state;
	assert_int_equal(fmt_record_build(&r, &o), IMP_OK);
	jws = sign_record(o, H.rec_key, chain, 1);
	assert_int_equal(fmt_record_verify(jws, H.rec_key, NULL, &back), IMP_OK);
	assert_true(json_equal(o, back));
	json_decref(back);
	assert_int_equal(fmt_record_verify(jws, NULL, H.trust, &back), IMP_OK);
	json_decref(back);
	/* Exactly one of key and trust store. */
	assert_int_equal(fmt_record_verify(jws, H.rec_key, H.trust, &back), IMP_ERR_USAGE);
	assert_int_equal(fmt_record_verify(jws, NULL, NULL, &back), IMP_ERR_USAGE);
	/* Wrong pinned key. */
	assert_int_equal(fmt_record_verify(jws, H.rev_key, NULL, &back), IMP_ERR_VERIFY);
	/* The payload is the canonical form; the typ and kid are set. */
	assert_int_equal(fmt_jws_verify_key(jws, H.rec_key, FMT_RECORD_TYP, &j), IMP_OK);
	assert_int_equal(fmt_record_canonical(o, &canon, &n), IMP_OK);
	assert_int_equal(n, j.payload_len);
	assert_memory_equal(canon, j.payload, n);
	{
		char tp[44];

		fmt_jwk_thumbprint(H.rec_key, tp);
		assert_string_equal(json_string_value(json_object_get(j.header, "kid")), tp);
	}
	fmt_jws_release(&j);
	free(canon);
	free(jws);
	json_decref(o);
}

/* A header made once signs many records: the same bytes as fmt_record_sign
 * up to the (randomised) signature, every one verifies, and it refuses
 * another record type or another key. */
static void test_prepared_header(void **state)
{
	struct fmt_record r = device_record();
	struct fmt_jws_header *h = NULL;
	struct fmt_signer s, other;
	json_t *o = NULL, *back = NULL;
	X509 *chain[] = { H.rec, H.root };
	char *a = NULL, *b = NULL;
	struct fmt_jws_parts pa, pb;

	(void)state;
	fmt_signer_from_pkey(&s, H.rec_key);
	fmt_signer_from_pkey(&other, H.rev_key);
	assert_int_equal(fmt_record_build(&r, &o), IMP_OK);
	assert_int_equal(fmt_record_header_new(H.rec_key, "identity", chain, 2, &h), IMP_OK);
	assert_string_equal(fmt_jws_header_typ(h), FMT_RECORD_TYP);
	assert_int_equal(fmt_record_sign(o, &s, chain, 2, &a), IMP_OK);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(fmt_record_sign_with(o, h, &s, &b), IMP_OK);
		assert_int_equal(fmt_jws_split(a, &pa), IMP_OK);
		assert_int_equal(fmt_jws_split(b, &pb), IMP_OK);
		assert_int_equal(pa.input_len, pb.input_len);
		assert_memory_equal(a, b, pa.input_len);
		assert_int_equal(fmt_record_verify(b, H.rec_key, NULL, &back), IMP_OK);
		assert_true(json_equal(o, back));
		json_decref(back);
		assert_int_equal(fmt_record_verify(b, NULL, H.trust, &back), IMP_OK);
		json_decref(back);
		free(b);
		b = NULL;
	}
	/* must fail: a signer other than the header's kid */
	assert_int_equal(fmt_record_sign_with(o, h, &other, &b), IMP_ERR_USAGE);
	assert_null(b);
	/* must fail: a revocation under an identity header */
	json_object_set_new(o, "type", json_string("revocation"));
	assert_int_equal(fmt_record_sign_with(o, h, &s, &b), IMP_ERR_USAGE);
	assert_null(b);
	fmt_jws_header_free(h);
	assert_int_equal(fmt_record_header_new(H.rec_key, "other", chain, 2, &h), IMP_ERR_USAGE);
	assert_null(h);
	fmt_jws_header_free(NULL);
	free(a);
	json_decref(o);
}

static void test_wrong_signers_refused(void **state)
{
	struct fmt_record r = device_record();
	json_t *o = NULL;
	json_t *back = NULL;
	X509 *dev_chain[] = { H.dev, H.ca };
	X509 *code_chain[] = { H.code };
	char *jws;

	(void)state;
	assert_int_equal(fmt_record_build(&r, &o), IMP_OK);
	/* A device key with a valid chain is no record signer (clientAuth EKU). */
	jws = sign_record(o, H.dev_key, dev_chain, 2);
	assert_int_equal(fmt_record_verify(jws, NULL, H.trust, &back), IMP_ERR_VERIFY);
	free(jws);
	jws = sign_record(o, H.code_key, code_chain, 1);
	assert_int_equal(fmt_record_verify(jws, NULL, H.trust, &back), IMP_ERR_VERIFY);
	free(jws);
	assert_null(back);
	json_decref(o);
}

static void test_non_canonical_and_tampered(void **state)
{
	struct fmt_record r = device_record();
	json_t *o = NULL;
	json_t *back = NULL;
	struct fmt_signer s;
	char *pretty;
	char *jws = NULL;

	(void)state;
	fmt_signer_from_pkey(&s, H.rec_key);
	assert_int_equal(fmt_record_build(&r, &o), IMP_OK);
	/* Properly signed, but not the canonical bytes. */
	pretty = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
	assert_int_equal(fmt_jws_sign(&s, FMT_RECORD_TYP, NULL, NULL, 0, pretty, strlen(pretty),
				      &jws), IMP_OK);
	assert_int_equal(fmt_record_verify(jws, H.rec_key, NULL, &back), IMP_ERR_PROTOCOL);
	free(jws);
	free(pretty);
	/* Signed, canonical, but the certificate hash does not match. */
	json_object_set_new(o, "device_certificate_sha256", json_string(HASH_A));
	jws = sign_record(o, H.rec_key, NULL, 0);
	assert_int_equal(fmt_record_verify(jws, H.rec_key, NULL, &back), IMP_ERR_VERIFY);
	free(jws);
	/* An unknown member. */
	json_decref(o);
	assert_int_equal(fmt_record_build(&r, &o), IMP_OK);
	json_object_set_new(o, "extra", json_true());
	jws = sign_record(o, H.rec_key, NULL, 0);
	assert_int_equal(fmt_record_verify(jws, H.rec_key, NULL, &back), IMP_ERR_PROTOCOL);
	free(jws);
	/* Wrong version. */
	json_object_del(o, "extra");
	json_object_set_new(o, "record_version", json_integer(2));
	jws = sign_record(o, H.rec_key, NULL, 0);
	assert_int_equal(fmt_record_verify(jws, H.rec_key, NULL, &back), IMP_ERR_PROTOCOL);
	free(jws);
	/* A public key that is not the certificate's. */
	json_object_set_new(o, "record_version", json_integer(1));
	json_object_set_new(o, "public_key", fmt_jwk_from_pkey(H.rec_key));
	jws = sign_record(o, H.rec_key, NULL, 0);
	assert_int_equal(fmt_record_verify(jws, H.rec_key, NULL, &back), IMP_ERR_VERIFY);
	free(jws);
	assert_null(back);
	json_decref(o);
}

static void test_psk_record(void **state)
{
	struct fmt_record r = device_record();
	const uint8_t kcv[3] = { 0xab, 0xcd, 0xef };
	json_t *o = NULL;
	json_t *back = NULL;
	char *jws;

	(void)state;
	r.key_mode = FMT_KEY_MODE_PSK;
	assert_int_equal(fmt_record_build(&r, &o), IMP_ERR_USAGE); /* has a key */
	r.public_key = NULL;
	r.device_certificate = NULL;
	assert_int_equal(fmt_record_build(&r, &o), IMP_ERR_USAGE); /* no kcv */
	r.kcv = kcv;
	r.kcv_len = sizeof(kcv);
	r.record_id = "3f6d1c2a-7e0b-4c55-9a43-0e1f2a3b4c5d";
	assert_int_equal(fmt_record_build(&r, &o), IMP_OK);
	assert_string_equal(json_string_value(json_object_get(o, "kcv")), "abcdef");
	assert_null(json_object_get(o, "public_key"));
	assert_null(json_object_get(o, "device_certificate"));
	jws = sign_record(o, H.rec_key, NULL, 0);
	assert_int_equal(fmt_record_verify(jws, H.rec_key, NULL, &back), IMP_OK);
	assert_string_equal(json_string_value(json_object_get(back, "record_id")), r.record_id);
	json_decref(back);
	free(jws);
	json_decref(o);
}

static void test_build_refuses_inconsistent(void **state)
{
	struct fmt_record r = device_record();
	json_t *o = NULL;

	(void)state;
	r.public_key = H.rec_key; /* not the certificate's key */
	assert_int_equal(fmt_record_build(&r, &o), IMP_ERR_USAGE);
	r = device_record();
	r.serial = NULL;
	assert_int_equal(fmt_record_build(&r, &o), IMP_ERR_USAGE);
	r = device_record();
	r.journal.prev_hash = "abc";
	assert_int_equal(fmt_record_build(&r, &o), IMP_ERR_USAGE);
	assert_null(o);
}

/* The certificate as DER (what the provisioner holds) writes the same
 * record as the X509 object; DER of another key, or both forms, is refused. */
static void test_build_from_der(void **state)
{
	struct fmt_record r = device_record();
	json_t *a = NULL, *b = NULL;
	uint8_t *der = NULL, *other = NULL;
	size_t n = 0, on = 0;
	char *ta, *tb;

	(void)state;
	assert_int_equal(fmt_cert_to_der(H.dev, &der, &n), IMP_OK);
	assert_int_equal(fmt_cert_to_der(H.rec, &other, &on), IMP_OK);
	r.record_id = "r1";
	assert_int_equal(fmt_record_build(&r, &a), IMP_OK);
	r.device_certificate = NULL;
	r.device_certificate_der = der;
	r.device_certificate_der_len = n;
	assert_int_equal(fmt_record_build(&r, &b), IMP_OK);
	ta = json_dumps(a, JSON_COMPACT | JSON_SORT_KEYS);
	tb = json_dumps(b, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(ta, tb);
	free(ta);
	free(tb);
	json_decref(a);
	json_decref(b);
	b = NULL;
	r.device_certificate_der = other; /* certifies the record-signing key */
	r.device_certificate_der_len = on;
	assert_int_equal(fmt_record_build(&r, &b), IMP_ERR_USAGE);
	r.device_certificate_der = der;
	r.device_certificate_der_len = n - 1; /* cut */
	assert_int_equal(fmt_record_build(&r, &b), IMP_ERR_USAGE);
	r.device_certificate_der_len = n;
	r.device_certificate = H.dev; /* both */
	assert_int_equal(fmt_record_build(&r, &b), IMP_ERR_USAGE);
	assert_null(b);
	free(der);
	free(other);
}

static void test_revocation(void **state)
{
	struct fmt_revocation rv = {
		.serial = "ACM000042N", .record_id = "abc", .reason = "key-compromise",
		.revoked_at = "2027-01-01T00:00:00Z",
	};
	struct fmt_record r = device_record();
	json_t *o = NULL;
	json_t *id = NULL;
	json_t *back = NULL;
	X509 *chain[] = { H.rev };
	char *jws;
	char *idjws;

	(void)state;
	assert_int_equal(fmt_revocation_build(&rv, &o), IMP_OK);
	assert_string_equal(json_string_value(json_object_get(o, "type")), "revocation");
	jws = sign_record(o, H.rev_key, chain, 1);
	assert_int_equal(fmt_revocation_verify(jws, H.rev_key, NULL, &back), IMP_OK);
	assert_string_equal(json_string_value(json_object_get(back, "reason")), "key-compromise");
	json_decref(back);
	assert_int_equal(fmt_revocation_verify(jws, NULL, H.trust, &back), IMP_OK);
	json_decref(back);
	/* Not an identity record, and an identity record is no revocation. */
	assert_int_equal(fmt_record_verify(jws, H.rev_key, NULL, &back), IMP_ERR_PROTOCOL);
	assert_int_equal(fmt_record_build(&r, &id), IMP_OK);
	idjws = sign_record(id, H.rec_key, NULL, 0);
	assert_int_equal(fmt_revocation_verify(idjws, H.rec_key, NULL, &back), IMP_ERR_PROTOCOL);
	assert_null(back);
	rv.reason = NULL;
	json_decref(o);
	assert_int_equal(fmt_revocation_build(&rv, &o), IMP_ERR_USAGE);
	free(idjws);
	free(jws);
	json_decref(id);
}

static void test_key_mode_names(void **state)
{
	enum fmt_key_mode m;

	(void)state;
	assert_int_equal(fmt_key_mode_parse("hsm", &m), IMP_OK);
	assert_int_equal(m, FMT_KEY_MODE_HSM);
	assert_string_equal(fmt_key_mode_name(FMT_KEY_MODE_PSK), "psk");
	assert_int_equal(fmt_key_mode_parse("HSM", &m), IMP_ERR_USAGE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_build_fields),
		cmocka_unit_test(test_sign_verify_key_and_trust),
		cmocka_unit_test(test_prepared_header),
		cmocka_unit_test(test_wrong_signers_refused),
		cmocka_unit_test(test_non_canonical_and_tampered),
		cmocka_unit_test(test_psk_record),
		cmocka_unit_test(test_build_refuses_inconsistent),
		cmocka_unit_test(test_build_from_der),
		cmocka_unit_test(test_revocation),
		cmocka_unit_test(test_key_mode_names),
	};

	imp_log_set_level(IMP_LOG_QUIET);
	return cmocka_run_group_tests(tests, setup, teardown);
}
