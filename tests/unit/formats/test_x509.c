#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "fmt_test.h"

#include "formats/csr.h"

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

static int ext_critical(X509 *x, int nid)
{
	int i = X509_get_ext_by_NID(x, nid, -1);

	assert_true(i >= 0);
	return X509_EXTENSION_get_critical(X509_get_ext(x, i));
}

static void assert_key_ids(X509 *x, X509 *issuer)
{
	const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(x);
	const ASN1_OCTET_STRING *aki = X509_get0_authority_key_id(x);
	const ASN1_OCTET_STRING *iski = X509_get0_subject_key_id(issuer);
	uint8_t want[20];

	assert_non_null(ski);
	assert_non_null(aki);
	assert_non_null(iski);
	assert_int_equal(fmt_pubkey_ski(X509_get0_pubkey(x), want), IMP_OK);
	assert_int_equal(ASN1_STRING_length(ski), 20);
	assert_memory_equal(ASN1_STRING_get0_data(ski), want, 20);
	assert_int_equal(ASN1_OCTET_STRING_cmp(aki, iski), 0);
	assert_false(ext_critical(x, NID_subject_key_identifier));
	assert_false(ext_critical(x, NID_authority_key_identifier));
}

static void test_chain_verifies(void **state)
{
	STACK_OF(X509) *untrusted = sk_X509_new_null();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();

	(void)state;
	assert_true(sk_X509_push(untrusted, H.ca) > 0);
	assert_int_equal(X509_STORE_CTX_init(ctx, H.trust, H.dev, untrusted), 1);
	assert_int_equal(X509_verify_cert(ctx), 1);
	assert_int_equal(sk_X509_num(X509_STORE_CTX_get0_chain(ctx)), 3);
	X509_STORE_CTX_free(ctx);

	assert_int_equal(fmt_cert_verify_chain(H.trust, H.dev, untrusted,
					       FMT_KU_DIGITAL_SIGNATURE | FMT_KU_KEY_AGREEMENT),
			 IMP_OK);
	/* The device key may not sign certificates. */
	assert_int_equal(fmt_cert_verify_chain(H.trust, H.dev, untrusted, FMT_KU_KEY_CERT_SIGN),
			 IMP_ERR_VERIFY);
	/* Without the intermediate there is no path. */
	assert_int_equal(fmt_cert_verify_chain(H.trust, H.dev, NULL, 0), IMP_ERR_VERIFY);
	/* The CA is a CA: refused as a signing leaf. */
	assert_int_equal(fmt_cert_verify_chain(H.trust, H.ca, NULL, FMT_KU_DIGITAL_SIGNATURE),
			 IMP_ERR_VERIFY);
	assert_int_equal(fmt_cert_verify_chain(H.trust, H.rec, NULL, FMT_KU_DIGITAL_SIGNATURE),
			 IMP_OK);
	sk_X509_free(untrusted);
}

static void test_other_root_refused(void **state)
{
	EVP_PKEY *k = new_key();
	X509 *other = issue(FMT_CERT_ROOT_CA, "Evil Root", k, NULL, k);
	X509_STORE *store = X509_STORE_new();

	(void)state;
	X509_STORE_add_cert(store, other);
	assert_int_equal(fmt_cert_verify_chain(store, H.rec, NULL, 0), IMP_ERR_VERIFY);
	X509_STORE_free(store);
	X509_free(other);
	EVP_PKEY_free(k);
}

static void test_profiles(void **state)
{
	uint32_t ku;

	(void)state;
	/* Root */
	assert_int_equal(X509_get_pathlen(H.root), 1);
	assert_true(X509_get_extension_flags(H.root) & EXFLAG_CA);
	assert_true(X509_get_extension_flags(H.root) & EXFLAG_SS);
	assert_true(ext_critical(H.root, NID_basic_constraints));
	assert_true(ext_critical(H.root, NID_key_usage));
	assert_int_equal(X509_get_key_usage(H.root), FMT_KU_KEY_CERT_SIGN | FMT_KU_CRL_SIGN);
	assert_false(X509_get_extension_flags(H.root) & EXFLAG_XKUSAGE);
	assert_key_ids(H.root, H.root);
	assert_int_equal(X509_NAME_cmp(X509_get_subject_name(H.root),
				       X509_get_issuer_name(H.root)), 0);
	/* Sub CA */
	assert_int_equal(X509_get_pathlen(H.ca), 0);
	assert_true(X509_get_extension_flags(H.ca) & EXFLAG_CA);
	assert_int_equal(X509_get_key_usage(H.ca), FMT_KU_KEY_CERT_SIGN | FMT_KU_CRL_SIGN);
	assert_key_ids(H.ca, H.root);
	/* Record signing, revocation: no EKU */
	X509 *plain[] = { H.rec, H.rev };
	for (size_t i = 0; i < 2; i++) {
		assert_false(X509_get_extension_flags(plain[i]) & EXFLAG_CA);
		assert_true(X509_get_extension_flags(plain[i]) & EXFLAG_BCONS);
		assert_true(ext_critical(plain[i], NID_basic_constraints));
		assert_int_equal(X509_get_key_usage(plain[i]), FMT_KU_DIGITAL_SIGNATURE);
		assert_false(X509_get_extension_flags(plain[i]) & EXFLAG_XKUSAGE);
		assert_key_ids(plain[i], H.root);
	}
	/* Code signing */
	assert_int_equal(X509_get_key_usage(H.code), FMT_KU_DIGITAL_SIGNATURE);
	assert_int_equal(X509_get_extended_key_usage(H.code), XKU_CODE_SIGN);
	assert_false(X509_get_extension_flags(H.code) & EXFLAG_CA);
	/* Device */
	ku = X509_get_key_usage(H.dev);
	assert_int_equal(ku, FMT_KU_DIGITAL_SIGNATURE | FMT_KU_KEY_AGREEMENT);
	assert_true(ext_critical(H.dev, NID_key_usage));
	assert_int_equal(X509_get_extended_key_usage(H.dev), XKU_SSL_CLIENT);
	assert_false(X509_get_extension_flags(H.dev) & EXFLAG_CA);
	assert_key_ids(H.dev, H.ca);
	assert_int_equal(X509_get_version(H.dev), X509_VERSION_3);
	assert_int_equal(X509_get_signature_nid(H.dev), NID_ecdsa_with_SHA256);
	assert_int_equal(X509_verify(H.dev, X509_get0_pubkey(H.ca)), 1);
	assert_int_equal(X509_verify(H.dev, X509_get0_pubkey(H.root)), 0);
}

static void test_serial_and_validity(void **state)
{
	const ASN1_INTEGER *sn = X509_get0_serialNumber(H.dev);
	BIGNUM *bn = ASN1_INTEGER_to_BN(sn, NULL);
	time_t now = time(NULL);
	time_t nb = now - 290;
	time_t early = now - 320;

	(void)state;
	assert_false(BN_is_negative(bn));
	assert_false(BN_is_zero(bn));
	assert_true(BN_num_bits(bn) <= 127);
	BN_free(bn);
	assert_int_not_equal(ASN1_INTEGER_cmp(sn, X509_get0_serialNumber(H.ca)), 0);
	/* notBefore is now - 5 minutes. */
	assert_true(X509_cmp_time(X509_get0_notBefore(H.dev), &nb) < 0);
	assert_true(X509_cmp_time(X509_get0_notBefore(H.dev), &early) > 0);
	{
		int days = 0, secs = 0;

		assert_int_equal(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(H.dev),
						X509_get0_notAfter(H.dev)), 1);
		/* 365 days, or the device CA's end when it was issued a second earlier. */
		if (ASN1_TIME_compare(X509_get0_notAfter(H.dev), X509_get0_notAfter(H.ca)) != 0) {
			assert_int_equal(days, 365);
			assert_int_equal(secs, 0);
		}
	}
}

/* A certificate never outlives its issuer; an expired issuer issues nothing. */
static void test_validity_capped_at_issuer(void **state)
{
	struct fmt_name_entry subj[] = { { "CN", "ACM000002X" } };
	struct fmt_cert_request req = {
		.profile = FMT_CERT_DEVICE, .subject = subj, .subject_count = 1,
		.subject_key = H.dev_key, .issuer = H.ca, .validity_days = 36500,
	};
	struct fmt_signer s;
	X509 *x = NULL, *old_ca = NULL;
	struct fmt_cert_request ca_req = req;
	struct fmt_name_entry ca_subj[] = { { "CN", "Old CA" } };

	(void)state;
	fmt_signer_from_pkey(&s, H.ca_key);
	assert_int_equal(fmt_cert_issue(&req, &s, &x), IMP_OK);
	assert_int_equal(ASN1_TIME_compare(X509_get0_notAfter(x), X509_get0_notAfter(H.ca)), 0);
	X509_free(x);
	x = NULL;
	/* Shorter than the issuer: untouched. */
	req.validity_days = 30;
	assert_int_equal(fmt_cert_issue(&req, &s, &x), IMP_OK);
	assert_true(ASN1_TIME_compare(X509_get0_notAfter(x), X509_get0_notAfter(H.ca)) < 0);
	X509_free(x);
	x = NULL;
	/* An issuing CA valid for one day from 2020: nothing is issued after it. */
	ca_req.profile = FMT_CERT_SUB_CA;
	ca_req.subject = ca_subj;
	ca_req.subject_key = H.ca_key;
	ca_req.issuer = H.root;
	ca_req.validity_days = 1;
	ca_req.not_before = 1577836800;
	fmt_signer_from_pkey(&s, H.root_key);
	assert_int_equal(fmt_cert_issue(&ca_req, &s, &old_ca), IMP_OK);
	req.issuer = old_ca;
	fmt_signer_from_pkey(&s, H.ca_key);
	assert_int_equal(fmt_cert_issue(&req, &s, &x), IMP_ERR_USAGE);
	assert_null(x);
	X509_free(old_ca);
}

static void test_given_serial_and_names(void **state)
{
	const uint8_t serial[] = { 0x01, 0x02, 0x03 };
	struct fmt_name_entry subj[] = { { "O", "Acme Corp" }, { "OU", "Sensors" },
					 { "CN", "ACM000001T" }, { "serialNumber", "00112233" } };
	struct fmt_cert_request req = {
		.profile = FMT_CERT_DEVICE, .subject = subj, .subject_count = 4,
		.subject_key = H.dev_key, .issuer = H.ca, .serial = serial,
		.serial_len = sizeof(serial), .validity_days = 10,
		.not_before = 1700000000,
	};
	struct fmt_signer s;
	X509 *x = NULL;
	char *line;
	time_t t = 1700000000;

	(void)state;
	fmt_signer_from_pkey(&s, H.ca_key);
	assert_int_equal(fmt_cert_issue(&req, &s, &x), IMP_OK);
	assert_int_equal(ASN1_INTEGER_get(X509_get0_serialNumber(x)), 0x010203);
	{
		ASN1_TIME *want = ASN1_TIME_set(NULL, t);

		assert_int_equal(ASN1_TIME_compare(X509_get0_notBefore(x), want), 0);
		ASN1_TIME_free(want);
	}
	line = X509_NAME_oneline(X509_get_subject_name(x), NULL, 0);
	assert_string_equal(line, "/O=Acme Corp/OU=Sensors/CN=ACM000001T/serialNumber=00112233");
	OPENSSL_free(line);
	X509_free(x);
}

static void test_bad_requests(void **state)
{
	struct fmt_name_entry subj[] = { { "CN", "x" } };
	struct fmt_name_entry bad_attr[] = { { "XX", "x" } };
	struct fmt_cert_request req = {
		.profile = FMT_CERT_DEVICE, .subject = subj, .subject_count = 1,
		.subject_key = H.dev_key, .issuer = H.ca, .validity_days = 10,
	};
	struct fmt_signer s;
	X509 *x = NULL;

	(void)state;
	/* The signer's key is not the issuer's. */
	fmt_signer_from_pkey(&s, H.root_key);
	assert_int_equal(fmt_cert_issue(&req, &s, &x), IMP_ERR_USAGE);
	assert_null(x);
	fmt_signer_from_pkey(&s, H.ca_key);
	req.validity_days = 0;
	assert_int_equal(fmt_cert_issue(&req, &s, &x), IMP_ERR_USAGE);
	req.validity_days = 10;
	req.issuer = NULL;
	assert_int_equal(fmt_cert_issue(&req, &s, &x), IMP_ERR_USAGE);
	req.issuer = H.ca;
	req.subject = bad_attr;
	assert_int_equal(fmt_cert_issue(&req, &s, &x), IMP_ERR_USAGE);
	req.subject = subj;
	req.subject_count = 0;
	assert_int_equal(fmt_cert_issue(&req, &s, &x), IMP_ERR_USAGE);
	assert_null(x);
}

/* A signer that claims the CA key but signs with another: caught before return. */
static void test_lying_signer_caught(void **state)
{
	struct fmt_name_entry subj[] = { { "CN", "x" } };
	struct fmt_cert_request req = {
		.profile = FMT_CERT_DEVICE, .subject = subj, .subject_count = 1,
		.subject_key = H.dev_key, .issuer = H.ca, .validity_days = 10,
	};
	struct fmt_signer s;
	X509 *x = NULL;

	(void)state;
	fmt_signer_from_pkey(&s, H.rec_key);
	s.pub = H.ca_key;
	assert_int_equal(fmt_cert_issue(&req, &s, &x), IMP_ERR_VERIFY);
	assert_null(x);
}

static imp_err failing_sign(void *arg, const uint8_t digest[32], uint8_t raw[64])
{
	(void)arg;
	(void)digest;
	(void)raw;
	return IMP_ERR_HSM;
}

static void test_signer_error_passed_on(void **state)
{
	struct fmt_name_entry subj[] = { { "CN", "x" } };
	struct fmt_cert_request req = {
		.profile = FMT_CERT_DEVICE, .subject = subj, .subject_count = 1,
		.subject_key = H.dev_key, .issuer = H.ca, .validity_days = 10,
	};
	struct fmt_signer s = { failing_sign, NULL, H.ca_key };
	X509 *x = NULL;

	(void)state;
	assert_int_equal(fmt_cert_issue(&req, &s, &x), IMP_ERR_HSM);
	assert_null(x);
}

static void test_files_and_fingerprint(void **state)
{
	char dir[] = "/tmp/fmt-x509-XXXXXX";
	char pem[64], der[64];
	char fp1[65], fp2[65], fp3[65];
	X509 *a = NULL;
	X509 *b = NULL;
	uint8_t *buf = NULL;
	size_t n = 0;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(pem, sizeof(pem), "%s/c.pem", dir);
	snprintf(der, sizeof(der), "%s/c.der", dir);
	assert_int_equal(fmt_cert_write_pem(H.dev, pem), IMP_OK);
	assert_int_equal(fmt_cert_write_der(H.dev, der), IMP_OK);
	assert_int_equal(fmt_cert_load(pem, &a), IMP_OK);
	assert_int_equal(fmt_cert_load(der, &b), IMP_OK);
	assert_int_equal(fmt_cert_fingerprint(H.dev, fp1), IMP_OK);
	assert_int_equal(fmt_cert_fingerprint(a, fp2), IMP_OK);
	assert_int_equal(fmt_cert_fingerprint(b, fp3), IMP_OK);
	assert_string_equal(fp1, fp2);
	assert_string_equal(fp1, fp3);
	assert_int_equal(strlen(fp1), 64);
	{
		X509_STORE *st = X509_STORE_new();

		assert_int_equal(fmt_store_add_pem(st, "/nonexistent/x.pem"), IMP_ERR_IO);
		assert_int_equal(fmt_store_add_pem(st, pem), IMP_OK);
		X509_STORE_free(st);
	}
	/* Trailing garbage after the DER is refused. */
	assert_int_equal(fmt_cert_to_der(H.dev, &buf, &n), IMP_OK);
	{
		uint8_t *longer = malloc(n + 1);
		X509 *c = NULL;

		memcpy(longer, buf, n);
		longer[n] = 0;
		assert_int_equal(fmt_cert_from_der(longer, n + 1, &c), IMP_ERR_PROTOCOL);
		assert_int_equal(fmt_cert_from_der(longer, n - 1, &c), IMP_ERR_PROTOCOL);
		assert_int_equal(fmt_cert_from_der(longer, n, &c), IMP_OK);
		X509_free(c);
		free(longer);
	}
	free(buf);
	X509_free(a);
	X509_free(b);
	unlink(pem);
	unlink(der);
	rmdir(dir);
}

static void test_point_round_trip(void **state)
{
	uint8_t point[65];
	uint8_t again[65];
	EVP_PKEY *k = NULL;

	(void)state;
	assert_int_equal(fmt_pubkey_to_point(H.dev_key, point), IMP_OK);
	assert_int_equal(point[0], 0x04);
	assert_int_equal(fmt_pubkey_from_point(point, &k), IMP_OK);
	assert_true(fmt_pubkey_equal(k, H.dev_key));
	assert_true(fmt_pubkey_is_p256(k));
	assert_int_equal(fmt_pubkey_to_point(k, again), IMP_OK);
	assert_memory_equal(point, again, 65);
	EVP_PKEY_free(k);
	k = NULL;
	point[64] ^= 1; /* off the curve */
	assert_int_equal(fmt_pubkey_from_point(point, &k), IMP_ERR_CRYPTO);
	assert_null(k);
	point[64] ^= 1;
	/* X outside the field (p < 2^256 - 1) */
	memset(point + 1, 0xff, 32);
	assert_int_equal(fmt_pubkey_from_point(point, &k), IMP_ERR_CRYPTO);
	assert_null(k);
	point[0] = 0x02;
	assert_int_equal(fmt_pubkey_from_point(point, &k), IMP_ERR_CRYPTO);
	/* keys made from one point after another stay apart */
	{
		EVP_PKEY *k2 = NULL;

		assert_int_equal(fmt_pubkey_to_point(H.dev_key, point), IMP_OK);
		assert_int_equal(fmt_pubkey_from_point(point, &k), IMP_OK);
		assert_int_equal(fmt_pubkey_to_point(H.ca_key, again), IMP_OK);
		assert_int_equal(fmt_pubkey_from_point(again, &k2), IMP_OK);
		assert_true(fmt_pubkey_equal(k, H.dev_key));
		assert_true(fmt_pubkey_equal(k2, H.ca_key));
		assert_false(fmt_pubkey_equal(k, k2));
		EVP_PKEY_free(k);
		EVP_PKEY_free(k2);
	}
}

/* ---- CSR ---- */

static uint8_t *make_csr(EVP_PKEY *pub, EVP_PKEY *signing, const char *cn, size_t *n)
{
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = NULL;
	struct fmt_name_entry subj[] = { { "O", "Acme Corp" }, { "CN", cn } };
	unsigned char *der = NULL;
	int len;

	assert_int_equal(fmt_name_build(subj, 2, &name), IMP_OK);
	assert_int_equal(X509_REQ_set_subject_name(req, name), 1);
	assert_int_equal(X509_REQ_set_pubkey(req, pub), 1);
	assert_true(X509_REQ_sign(req, signing, EVP_sha256()) > 0);
	len = i2d_X509_REQ(req, &der);
	assert_true(len > 0);
	*n = (size_t)len;
	X509_NAME_free(name);
	X509_REQ_free(req);
	return der;
}

/* SHA-1 of the key's SubjectPublicKeyInfo BIT STRING, by OpenSSL's own encoder. */
static void reference_ski(EVP_PKEY *key, uint8_t out[20])
{
	X509_PUBKEY *xpk = NULL;
	const unsigned char *pk;
	int pklen;

	assert_int_equal(X509_PUBKEY_set(&xpk, key), 1);
	assert_int_equal(X509_PUBKEY_get0_param(NULL, &pk, &pklen, NULL, xpk), 1);
	assert_non_null(SHA1(pk, (size_t)pklen, out));
	X509_PUBKEY_free(xpk);
}

/* A certificate's SubjectPublicKeyInfo and key identifiers, built from the
 * key's point, are exactly what OpenSSL's encoder makes of the key; its
 * AlgorithmIdentifiers are those X509_sign() writes for a P-256 key. */
static void test_spki_as_encoder(void **state)
{
	(void)state;
	for (int i = 0; i < 4; i++) {
		EVP_PKEY *k = new_key();
		X509 *x = issue(FMT_CERT_DEVICE, "SPKI", k, H.ca, H.ca_key);
		unsigned char *want = NULL, *got = NULL;
		int want_len, got_len;
		uint8_t ski[20], fast[20];

		want_len = i2d_PUBKEY(k, &want);
		got_len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &got);
		assert_int_equal(want_len, 91);
		assert_int_equal(got_len, want_len);
		assert_memory_equal(got, want, (size_t)want_len);
		assert_true(EVP_PKEY_eq(X509_get0_pubkey(x), k) == 1);
		reference_ski(k, ski);
		assert_int_equal(fmt_pubkey_ski(k, fast), IMP_OK);
		assert_memory_equal(fast, ski, 20);
		assert_memory_equal(ASN1_STRING_get0_data(X509_get0_subject_key_id(x)), ski, 20);
		/* Both AlgorithmIdentifiers: ecdsa-with-SHA256, no parameters. */
		for (int outer = 0; outer < 2; outer++) {
			static const uint8_t ecdsa_sha256[] = { 0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86,
								0x48, 0xce, 0x3d, 0x04, 0x03, 0x02 };
			const X509_ALGOR *alg = X509_get0_tbs_sigalg(x);
			unsigned char *der = NULL;

			if (outer)
				X509_get0_signature(NULL, &alg, x);
			assert_int_equal(i2d_X509_ALGOR(alg, &der), (int)sizeof(ecdsa_sha256));
			assert_memory_equal(der, ecdsa_sha256, sizeof(ecdsa_sha256));
			OPENSSL_free(der);
		}
		OPENSSL_free(want);
		OPENSSL_free(got);
		X509_free(x);
		EVP_PKEY_free(k);
	}
}

static void test_csr_ok(void **state)
{
	struct fmt_name_entry want[] = { { "O", "Acme Corp" }, { "CN", "ACM000042N" } };
	struct fmt_name_entry other[] = { { "O", "Acme Corp" }, { "CN", "ACM000043" } };
	struct fmt_name_entry reordered[] = { { "CN", "ACM000042N" }, { "O", "Acme Corp" } };
	size_t n;
	uint8_t *der = make_csr(H.dev_key, H.dev_key, "ACM000042N", &n);
	X509_REQ *req = NULL;
	EVP_PKEY *pub = NULL;
	char *s = NULL;

	(void)state;
	assert_int_equal(fmt_csr_parse(der, n, &req), IMP_OK);
	assert_int_equal(fmt_csr_public_key(req, &pub), IMP_OK);
	assert_true(fmt_pubkey_equal(pub, H.dev_key));
	assert_int_equal(fmt_csr_subject(req, &s), IMP_OK);
	assert_string_equal(s, "CN=ACM000042N,O=Acme Corp");
	assert_int_equal(fmt_csr_check_subject(req, want, 2), IMP_OK);
	assert_int_equal(fmt_csr_check_subject(req, other, 2), IMP_ERR_VERIFY);
	assert_int_equal(fmt_csr_check_subject(req, reordered, 2), IMP_ERR_VERIFY);
	assert_int_equal(fmt_csr_check_subject(req, want, 1), IMP_ERR_VERIFY);
	free(s);
	EVP_PKEY_free(pub);
	X509_REQ_free(req);
	OPENSSL_free(der);
}

static void test_csr_forged(void **state)
{
	size_t n;
	uint8_t *der;
	X509_REQ *req = NULL;
	uint8_t *p;

	(void)state;
	/* Public key of the device, signature by someone else. */
	der = make_csr(H.dev_key, H.rec_key, "ACM000042N", &n);
	assert_int_equal(fmt_csr_parse(der, n, &req), IMP_ERR_VERIFY);
	assert_null(req);
	OPENSSL_free(der);
	/* Genuine CSR, subject altered afterwards. */
	der = make_csr(H.dev_key, H.dev_key, "ACM000042N", &n);
	p = memmem(der, n, "ACM000042N", 10);
	assert_non_null(p);
	p[9] = 'X';
	assert_int_equal(fmt_csr_parse(der, n, &req), IMP_ERR_VERIFY);
	p[9] = 'N';
	/* Truncated and trailing bytes. */
	assert_int_equal(fmt_csr_parse(der, n - 1, &req), IMP_ERR_PROTOCOL);
	assert_int_equal(fmt_csr_parse(der, 0, &req), IMP_ERR_PROTOCOL);
	assert_int_equal(fmt_csr_parse(der, n, &req), IMP_OK);
	X509_REQ_free(req);
	OPENSSL_free(der);
}

static void test_csr_not_p256(void **state)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	size_t n;
	uint8_t *der;
	X509_REQ *req = NULL;

	(void)state;
	der = make_csr(k, k, "x", &n);
	assert_int_equal(fmt_csr_parse(der, n, &req), IMP_ERR_CRYPTO);
	OPENSSL_free(der);
	EVP_PKEY_free(k);
}

/* The in-place CSR reader against fmt_csr_parse: it takes the board's own
 * shape, and whatever it accepts, over every single-byte mutation (four
 * values at each offset), every truncation and a trailing byte, the
 * reference accepts too, with the same point and subject. */
static int view_agrees(const uint8_t *der, size_t n, int *fast_ok)
{
	struct fmt_csr_view v;
	EVP_PKEY *k = NULL, *ref_pub = NULL;
	X509_REQ *req = NULL;
	imp_err rc = fmt_csr_view_p256(der, n, &v, &k);
	unsigned char *sub = NULL;
	uint8_t point[65];
	int ok = 1, len;

	*fast_ok = rc == IMP_OK;
	if (rc != IMP_OK) {
		ok = rc == IMP_ERR_UNSUPPORTED && !k;
		goto cleanup;
	}
	ok = fmt_csr_parse(der, n, &req) == IMP_OK && fmt_csr_public_key(req, &ref_pub) == IMP_OK &&
	     fmt_pubkey_to_point(ref_pub, point) == IMP_OK &&
	     memcmp(point, v.point, sizeof(point)) == 0 && fmt_pubkey_equal(k, ref_pub);
	len = ok ? i2d_X509_NAME(X509_REQ_get_subject_name(req), &sub) : -1;
	ok = ok && len == (int)v.subject_len && memcmp(sub, v.subject, v.subject_len) == 0;
cleanup:
	OPENSSL_free(sub);
	EVP_PKEY_free(k);
	EVP_PKEY_free(ref_pub);
	X509_REQ_free(req);
	return ok;
}

static void test_csr_view_matches_reference(void **state)
{
	static const uint8_t values[] = { 0x00, 0x01, 0x80, 0xff };
	struct fmt_name_entry want[] = { { "O", "Acme Corp" }, { "CN", "ACM000042N" } };
	struct fmt_csr_view v;
	EVP_PKEY *k = NULL;
	size_t n;
	uint8_t *der = make_csr(H.dev_key, H.dev_key, "ACM000042N", &n);
	uint8_t *m = malloc(n + 1), point[65];
	int fast, accepted = 0, trials = 0;

	(void)state;
	assert_non_null(m);
	assert_int_equal(fmt_csr_view_p256(der, n, &v, &k), IMP_OK);
	assert_int_equal(fmt_pubkey_to_point(H.dev_key, point), IMP_OK);
	assert_memory_equal(v.point, point, 65);
	assert_int_equal(fmt_csr_check_subject_der(v.subject, v.subject_len, want, 2), IMP_OK);
	assert_int_equal(fmt_csr_check_subject_der(v.subject, v.subject_len, want, 1),
			 IMP_ERR_VERIFY);
	assert_int_equal(fmt_csr_check_subject_der(v.subject, v.subject_len - 1, want, 2),
			 IMP_ERR_PROTOCOL);
	EVP_PKEY_free(k);
	assert_true(view_agrees(der, n, &fast) && fast);
	for (size_t i = 0; i < n; i++) {
		for (size_t k2 = 0; k2 < sizeof(values); k2++) {
			memcpy(m, der, n);
			if (m[i] == values[k2])
				continue;
			m[i] = values[k2];
			assert_true(view_agrees(m, n, &fast));
			accepted += fast;
			trials++;
		}
	}
	for (size_t len = 0; len < n; len++) {
		assert_true(view_agrees(der, len, &fast));
		assert_false(fast);
	}
	memcpy(m, der, n);
	m[n] = 0;
	assert_true(view_agrees(m, n + 1, &fast));
	assert_false(fast);
	/* A forged signature and a foreign key are the reference's to refuse. */
	OPENSSL_free(der);
	der = make_csr(H.dev_key, H.rec_key, "ACM000042N", &n);
	assert_true(view_agrees(der, n, &fast));
	assert_false(fast);
	printf("csr view: %d of %d mutations accepted (each by the reference too)\n", accepted,
	       trials);
	free(m);
	OPENSSL_free(der);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chain_verifies),
		cmocka_unit_test(test_other_root_refused),
		cmocka_unit_test(test_profiles),
		cmocka_unit_test(test_serial_and_validity),
		cmocka_unit_test(test_validity_capped_at_issuer),
		cmocka_unit_test(test_given_serial_and_names),
		cmocka_unit_test(test_bad_requests),
		cmocka_unit_test(test_lying_signer_caught),
		cmocka_unit_test(test_signer_error_passed_on),
		cmocka_unit_test(test_files_and_fingerprint),
		cmocka_unit_test(test_point_round_trip),
		cmocka_unit_test(test_spki_as_encoder),
		cmocka_unit_test(test_csr_ok),
		cmocka_unit_test(test_csr_forged),
		cmocka_unit_test(test_csr_not_p256),
		cmocka_unit_test(test_csr_view_matches_reference),
	};

	imp_log_set_level(IMP_LOG_QUIET);
	return cmocka_run_group_tests(tests, setup, teardown);
}
