/*
 * The fast identity-record verifier (exp/recverify.h) against the reference
 * (fmt_record_verify + fmt_cert_verify_chain with the device CA as anchor):
 * whatever the fast path accepts, the reference accepts; and every forgery
 * below, re-signed with the genuine record-signing key where the forgery is
 * in the content, is refused by both.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <openssl/x509v3.h>

#include "exp/recverify.h"
#include "formats/base64.h"
#include "formats/jws.h"
#include "formats/record.h"
#include "formats/x509.h"
#include "imprint/log.h"

enum { ROOT, DEVCA, REC, OTHERCA, NKEYS };

static struct {
	EVP_PKEY *key[NKEYS];
	X509 *cert[NKEYS];
	struct fmt_signer signer[NKEYS];
	X509_STORE *dev_store;
	struct exp_rv_trust *trust;
	struct exp_rv *rv;
} org;

/* issuer: index of the issuing certificate, or -1 - k for a root of key k. */
static X509 *issue(int profile, const char *cn, EVP_PKEY *key, int issuer, time_t not_before,
		   unsigned days)
{
	struct fmt_name_entry subj[] = { { "O", "Unit Org" }, { "CN", cn } };
	struct fmt_cert_request req = { 0 };
	X509 *c = NULL;

	req.profile = (enum fmt_cert_profile)profile;
	req.subject = subj;
	req.subject_count = 2;
	req.subject_key = key;
	req.issuer = issuer < 0 ? NULL : org.cert[issuer];
	req.validity_days = days;
	req.not_before = not_before;
	assert_int_equal(fmt_cert_issue(&req, &org.signer[issuer < 0 ? -1 - issuer : issuer], &c),
			 IMP_OK);
	return c;
}

static int setup(void **st)
{
	(void)st;
	imp_log_set_level(IMP_LOG_QUIET);
	for (int k = 0; k < NKEYS; k++) {
		assert_int_equal(fmt_p256_generate(&org.key[k]), IMP_OK);
		fmt_signer_from_pkey(&org.signer[k], org.key[k]);
	}
	org.cert[ROOT] = issue(FMT_CERT_ROOT_CA, "Root", org.key[ROOT], -1 - ROOT, 0, 3650);
	org.cert[DEVCA] = issue(FMT_CERT_SUB_CA, "Device CA", org.key[DEVCA], ROOT, 0, 3650);
	org.cert[REC] = issue(FMT_CERT_RECORD_SIGNING, "Records", org.key[REC], ROOT, 0, 3650);
	/* another CA with the very same subject name, not trusted */
	org.cert[OTHERCA] =
		issue(FMT_CERT_ROOT_CA, "Device CA", org.key[OTHERCA], -1 - OTHERCA, 0, 3650);
	org.dev_store = X509_STORE_new();
	assert_non_null(org.dev_store);
	assert_int_equal(X509_STORE_add_cert(org.dev_store, org.cert[DEVCA]), 1);
	X509_STORE_set_flags(org.dev_store, X509_V_FLAG_PARTIAL_CHAIN);
	assert_int_equal(exp_rv_trust_new(org.key[REC], NULL, &org.cert[DEVCA], 1, NULL, &org.trust),
			 IMP_OK);
	assert_int_equal(exp_rv_new(org.trust, &org.rv), IMP_OK);
	return 0;
}

static int teardown(void **st)
{
	(void)st;
	exp_rv_free(org.rv);
	exp_rv_trust_free(org.trust);
	X509_STORE_free(org.dev_store);
	for (int k = 0; k < NKEYS; k++) {
		X509_free(org.cert[k]);
		EVP_PKEY_free(org.key[k]);
	}
	return 0;
}

/* The reference verdict, as the audit's reference path gives it. */
static bool ref_ok(const char *jws)
{
	json_t *o = NULL;
	const char *b64;
	uint8_t *der = NULL;
	size_t n = 0;
	X509 *c = NULL;
	bool ok = false;

	if (fmt_record_verify(jws, org.key[REC], NULL, &o) != IMP_OK)
		return false;
	b64 = json_string_value(json_object_get(o, "device_certificate"));
	if (!b64)
		ok = true;
	else if (fmt_b64_decode(b64, strlen(b64), &der, &n) == IMP_OK &&
		 fmt_cert_from_der(der, n, &c) == IMP_OK &&
		 fmt_cert_verify_chain(org.dev_store, c, NULL,
				       FMT_KU_DIGITAL_SIGNATURE | FMT_KU_KEY_AGREEMENT) == IMP_OK)
		ok = true;
	X509_free(c);
	free(der);
	json_decref(o);
	return ok;
}

static bool fast_ok(const char *jws)
{
	struct exp_rv_out out;
	bool ok = exp_rv_identity(org.rv, jws, &out) == IMP_OK;

	/* the property: fast acceptance implies reference acceptance */
	if (ok && !ref_ok(jws))
		fail_msg("the fast path accepted what the reference refuses: %.80s", jws);
	return ok;
}

/* A record object for a device key certified by cert. */
static json_t *record(EVP_PKEY *key, X509 *cert, const char *serial)
{
	uint8_t uid[8] = { 1, 2, 3, 4, 5, 6, 7, (uint8_t)serial[strlen(serial) - 1] };
	struct fmt_record r = { 0 };
	json_t *o = NULL;

	r.serial = serial;
	r.chip_uid = uid;
	r.chip_uid_len = sizeof(uid);
	r.sku = "SKU-1";
	r.key_mode = FMT_KEY_MODE_DEVICE;
	r.public_key = key;
	r.device_certificate = cert;
	r.lock_state.debug_locked = true;
	r.lock_state.boot_locked = true;
	r.lock_state.lifecycle = "secured";
	r.station_id = "st";
	r.fixture = "F1";
	r.issued_at = "2026-11-26T09:50:00Z";
	r.journal.seq = 7;
	r.journal.prev_hash = "0000000000000000000000000000000000000000000000000000000000000000";
	r.journal.event_hash = "1111111111111111111111111111111111111111111111111111111111111111";
	assert_int_equal(fmt_record_build(&r, &o), IMP_OK);
	return o;
}

static char *sign_obj(const json_t *o)
{
	char *jws = NULL;

	assert_int_equal(fmt_record_sign(o, &org.signer[REC], &org.cert[REC], 1, &jws), IMP_OK);
	return jws;
}

/* Sign arbitrary payload bytes as a record (content forgeries). */
static char *sign_bytes(const char *payload)
{
	char *jws = NULL;

	assert_int_equal(fmt_jws_sign(&org.signer[REC], FMT_RECORD_TYP, NULL, &org.cert[REC], 1,
				      payload, strlen(payload), &jws),
			 IMP_OK);
	return jws;
}

static char *valid_jws(const char *serial)
{
	EVP_PKEY *k = NULL;
	X509 *c;
	json_t *o;
	char *jws;

	assert_int_equal(fmt_p256_generate(&k), IMP_OK);
	c = issue(FMT_CERT_DEVICE, serial, k, DEVCA, 0, 365);
	o = record(k, c, serial);
	jws = sign_obj(o);
	json_decref(o);
	X509_free(c);
	EVP_PKEY_free(k);
	return jws;
}

static void test_valid(void **st)
{
	char *jws = valid_jws("SN0001");
	struct exp_rv_out out;

	(void)st;
	assert_true(ref_ok(jws));
	assert_int_equal(exp_rv_identity(org.rv, jws, &out), IMP_OK);
	assert_string_equal(out.serial, "SN0001");
	assert_int_equal(strlen(out.cert_sha256), 64);
	assert_true(strlen(out.cert_serial) > 0);
	assert_non_null(strchr(out.pubkey, '.'));
	/* again: the header is now cached */
	assert_true(fast_ok(jws));
	free(jws);
}

/* Every single-character change of a valid JWS is refused. */
static void test_mutations(void **st)
{
	static const char alpha[] = "AQgw_-.z";
	char *jws = valid_jws("SN0002");
	size_t n = strlen(jws);

	(void)st;
	for (size_t i = 0; i < n; i += 3) {
		for (size_t a = 0; a < sizeof(alpha) - 1; a++) {
			char saved = jws[i];

			if (alpha[a] == saved)
				continue;
			jws[i] = alpha[a];
			assert_false(fast_ok(jws));
			jws[i] = saved;
		}
	}
	/* cut anywhere */
	for (size_t cut = 0; cut < n; cut += 97) {
		char *t = strndup(jws, cut);

		assert_false(fast_ok(t));
		free(t);
	}
	free(jws);
}

/* Content forgeries, validly signed with the record-signing key. */
static void test_content_forgeries(void **st)
{
	char *jws = valid_jws("SN0003");
	char *dot = strchr(jws, '.'), *dot2 = strchr(dot + 1, '.');
	uint8_t *p = NULL;
	size_t n = 0;
	char *canon, *f;
	static const struct {
		const char *from, *to;
	} edits[] = {
		{ "{\"chip_uid\"", "{ \"chip_uid\"" },           /* whitespace */
		{ "\"record_version\":1", "\"record_version\":2" },
		{ "\"record_version\":1", "\"record_version\":1.0" },
		{ "\"record_version\":1", "\"record_version\":01" },
		{ "\"sku\":\"SKU-1\"", "\"sku\":\"SKU\\u002d1\"" }, /* escape: not canonical */
		{ "\"sku\":\"SKU-1\"", "\"sku\":\"\"" },         /* empty */
		{ "\"sku\":\"SKU-1\"", "\"sku\":1" },            /* type */
		{ "\"sku\":\"SKU-1\"", "\"sku\":\"SKU-1\",\"sku\":\"SKU-1\"" }, /* duplicate */
		{ "\"sku\":\"SKU-1\"", "\"sku\":\"SKU-1\",\"zzz\":\"1\"" },      /* unknown, in order */
		{ "\"station_id\"", "\"station_idx\"" },
		{ "\"type\":\"identity\"", "\"type\":\"revocation\"" },
		{ "\"key_mode\":\"device\"", "\"key_mode\":\"psk\"" },
		{ "\"key_mode\":\"device\"", "\"key_mode\":\"hsm\"" }, /* still valid */
		{ "\"debug_locked\":true", "\"debug_locked\":1" },
		{ "\"seq\":7", "\"seq\":-7" },
		{ "\"seq\":7", "\"seq\":99999999999999999999" },
		{ "\"kty\":\"EC\"", "\"kty\":\"RSA\"" },
		{ "\"crv\":\"P-256\"", "\"crv\":\"P-384\"" },
		{ "\"device_certificate_sha256\":\"", "\"device_certificate_sha256\":\"0" },
	};

	(void)st;
	assert_int_equal(fmt_b64url_decode(dot + 1, (size_t)(dot2 - dot - 1), &p, &n), IMP_OK);
	canon = (char *)p;
	/* the canonical payload itself, re-signed without kid: accepted by both */
	f = sign_bytes(canon);
	assert_true(ref_ok(f));
	assert_true(fast_ok(f));
	free(f);
	for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
		char *at = strstr(canon, edits[i].from), *mod;
		size_t fl = strlen(edits[i].from), tl = strlen(edits[i].to);
		bool fast, ref;

		assert_non_null(at);
		mod = malloc(strlen(canon) + tl + 1);
		assert_non_null(mod);
		memcpy(mod, canon, (size_t)(at - canon));
		memcpy(mod + (at - canon), edits[i].to, tl);
		strcpy(mod + (at - canon) + tl, at + fl);
		f = sign_bytes(mod);
		fast = fast_ok(f);
		ref = ref_ok(f);
		if (strstr(edits[i].to, "\"hsm\""))
			assert_true(fast && ref);
		else if (ref)
			fail_msg("edit %zu accepted by the reference", i);
		else
			assert_false(fast);
		free(f);
		free(mod);
	}
	free(p);
	free(jws);
}

/* Certificates that must not pass, each in an otherwise valid record. */
static void test_certificate_forgeries(void **st)
{
	EVP_PKEY *k = NULL, *k2 = NULL;
	struct {
		const char *what;
		X509 *cert;
	} c[6];
	time_t now = time(NULL);

	(void)st;
	assert_int_equal(fmt_p256_generate(&k), IMP_OK);
	assert_int_equal(fmt_p256_generate(&k2), IMP_OK);
	c[0].what = "expired";
	c[0].cert = issue(FMT_CERT_DEVICE, "SN1", k, DEVCA, now - 10 * 86400, 1);
	c[1].what = "not yet valid";
	c[1].cert = issue(FMT_CERT_DEVICE, "SN1", k, DEVCA, now + 10 * 86400, 10);
	c[2].what = "no keyAgreement";
	c[2].cert = issue(FMT_CERT_RECORD_SIGNING, "SN1", k, DEVCA, 0, 10);
	c[3].what = "a CA";
	c[3].cert = issue(FMT_CERT_SUB_CA, "SN1", k, DEVCA, 0, 10);
	c[4].what = "issued by an untrusted CA of the same name";
	c[4].cert = issue(FMT_CERT_DEVICE, "SN1", k, OTHERCA, 0, 10);
	c[5].what = "issued by the root, not the device CA";
	c[5].cert = issue(FMT_CERT_DEVICE, "SN1", k, ROOT, 0, 10);
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		json_t *o;
		char *jws;

		assert_non_null(c[i].cert);
		o = record(k, c[i].cert, "SN1");
		jws = sign_obj(o);
		if (ref_ok(jws))
			fail_msg("%s: accepted by the reference", c[i].what);
		if (fast_ok(jws))
			fail_msg("%s: accepted by the fast path", c[i].what);
		free(jws);
		json_decref(o);
	}
	/* a valid certificate, but of another key than the record's JWK */
	{
		X509 *good = issue(FMT_CERT_DEVICE, "SN1", k, DEVCA, 0, 10);
		json_t *o = record(k, good, "SN1");
		json_t *jwk = fmt_jwk_from_pkey(k2);
		char *jws;

		json_object_set_new(o, "public_key", jwk);
		jws = sign_obj(o);
		assert_false(fast_ok(jws));
		assert_false(ref_ok(jws));
		free(jws);
		json_decref(o);
		X509_free(good);
	}
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
		X509_free(c[i].cert);
	EVP_PKEY_free(k);
	EVP_PKEY_free(k2);
}

/* Signed by another key (e.g. the revocation key): refused. */
static void test_other_signer(void **st)
{
	EVP_PKEY *k = NULL;
	X509 *c;
	json_t *o;
	char *jws = NULL;

	(void)st;
	assert_int_equal(fmt_p256_generate(&k), IMP_OK);
	c = issue(FMT_CERT_DEVICE, "SN9", k, DEVCA, 0, 10);
	o = record(k, c, "SN9");
	assert_int_equal(fmt_record_sign(o, &org.signer[DEVCA], &org.cert[DEVCA], 1, &jws), IMP_OK);
	assert_false(fast_ok(jws));
	assert_false(ref_ok(jws));
	free(jws);
	json_decref(o);
	X509_free(c);
	EVP_PKEY_free(k);
}

/* The registry's mode: x5c must start with the signer, then known certificates only. */
static void test_x5c_mode(void **st)
{
	struct exp_rv_trust *t = NULL;
	struct exp_rv *rv = NULL;
	struct exp_rv_out out;
	uint8_t *der = NULL;
	size_t n = 0;
	char *rec64, *root64, *jws1 = NULL, *jws2 = NULL, *jws3 = NULL;
	EVP_PKEY *k = NULL;
	X509 *c, *chain2[2], *chain3[2];
	json_t *o;

	(void)st;
	assert_int_equal(fmt_cert_to_der(org.cert[REC], &der, &n), IMP_OK);
	rec64 = fmt_b64_encode(der, n);
	free(der);
	assert_int_equal(fmt_cert_to_der(org.cert[ROOT], &der, &n), IMP_OK);
	root64 = fmt_b64_encode(der, n);
	free(der);
	assert_int_equal(exp_rv_trust_new(org.key[REC], rec64, &org.cert[DEVCA], 1, NULL, &t), IMP_OK);
	assert_int_equal(exp_rv_new(t, &rv), IMP_OK);
	assert_int_equal(fmt_p256_generate(&k), IMP_OK);
	c = issue(FMT_CERT_DEVICE, "SN7", k, DEVCA, 0, 10);
	o = record(k, c, "SN7");
	chain2[0] = chain3[0] = org.cert[REC];
	chain2[1] = org.cert[ROOT];
	chain3[1] = org.cert[OTHERCA];
	assert_int_equal(fmt_record_sign(o, &org.signer[REC], org.cert + REC, 1, &jws1), IMP_OK);
	assert_int_equal(fmt_record_sign(o, &org.signer[REC], chain2, 2, &jws2), IMP_OK);
	assert_int_equal(fmt_record_sign(o, &org.signer[REC], chain3, 2, &jws3), IMP_OK);
	assert_int_equal(exp_rv_identity(rv, jws1, &out), IMP_OK);
	assert_int_not_equal(exp_rv_identity(rv, jws2, &out), IMP_OK); /* root not allowed yet */
	assert_int_equal(exp_rv_trust_allow_x5c(t, root64), IMP_OK);
	assert_int_equal(exp_rv_identity(rv, jws2, &out), IMP_OK);
	assert_int_not_equal(exp_rv_identity(rv, jws3, &out), IMP_OK);
	/* signed by the record key but naming another signer first: refused */
	{
		char *jws4 = NULL;
		X509 *wrong[1] = { org.cert[DEVCA] };

		assert_int_equal(fmt_record_sign(o, &org.signer[REC], wrong, 1, &jws4), IMP_OK);
		assert_int_not_equal(exp_rv_identity(rv, jws4, &out), IMP_OK);
		free(jws4);
	}
	free(jws1);
	free(jws2);
	free(jws3);
	json_decref(o);
	X509_free(c);
	EVP_PKEY_free(k);
	exp_rv_free(rv);
	exp_rv_trust_free(t);
	free(rec64);
	free(root64);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_mutations),
		cmocka_unit_test(test_content_forgeries),
		cmocka_unit_test(test_certificate_forgeries),
		cmocka_unit_test(test_other_signer),
		cmocka_unit_test(test_x5c_mode),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
