#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "formats/base64.h"
#include "formats/ecdsa_der.h"
#include "formats/x509.h"
#include "imprint/log.h"
#include "x509_int.h"
#include "imprint/util.h"

/* Log the OpenSSL error queue after a failed call, then clear it. */
static void log_ossl(const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256];

	if (e) {
		ERR_error_string_n(e, buf, sizeof(buf));
		IMP_ERROR("%s: %s", what, buf);
	} else {
		IMP_ERROR("%s failed", what);
	}
	ERR_clear_error();
}

int fmt_pubkey_is_p256(EVP_PKEY *key)
{
	char group[64];
	size_t len = 0;

	if (!key || !EVP_PKEY_is_a(key, "EC"))
		return 0;
	if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group,
					   sizeof(group), &len) != 1)
		return 0;
	return strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0;
}

int fmt_pubkey_equal(EVP_PKEY *a, EVP_PKEY *b)
{
	if (!a || !b)
		return 0;
	return EVP_PKEY_eq(a, b) == 1;
}

/*
 * The P-256 domain parameters as a key without a public point, made once:
 * every key from a point is a copy of it with the point set. Building a key
 * from OSSL_PARAMs makes a new EC_GROUP each time (its Montgomery
 * constants, 0.14 M instructions of the 0.21 M a key cost); a copy shares
 * the group's precomputation and costs 0.05 M.
 */
static EVP_PKEY *p256_params;
static pthread_once_t p256_params_once = PTHREAD_ONCE_INIT;

static void p256_params_make(void)
{
	OSSL_PARAM params[2];
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);

	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
						     (char *)"prime256v1", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (!ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &p256_params, EVP_PKEY_KEY_PARAMETERS, params) != 1) {
		EVP_PKEY_free(p256_params);
		p256_params = NULL; /* every key from a point then fails: IMP_ERR_CRYPTO */
	}
	EVP_PKEY_CTX_free(ctx);
	ERR_clear_error();
}

imp_err fmt_pubkey_from_point(const uint8_t point[65], EVP_PKEY **out)
{
	EVP_PKEY *key = NULL;
	imp_err rc = IMP_ERR_CRYPTO;

	*out = NULL;
	if (point[0] != 0x04)
		return IMP_ERR_CRYPTO;
	if (pthread_once(&p256_params_once, p256_params_make) != 0 || !p256_params)
		return IMP_ERR_CRYPTO;
	key = EVP_PKEY_dup(p256_params);
	if (!key)
		goto cleanup;
	/* The point is decoded with EC_POINT_oct2point, which refuses
	 * coordinates outside the field and a point off the curve; for P-256
	 * (cofactor 1, and 0x04 || X || Y cannot be the point at infinity)
	 * that is all EVP_PKEY_public_check adds, at the price of a scalar
	 * multiplication (0.65 M instructions) per key. */
	if (EVP_PKEY_set1_encoded_public_key(key, point, 65) != 1)
		goto cleanup;
	*out = key;
	key = NULL;
	rc = IMP_OK;
cleanup:
	ERR_clear_error();
	EVP_PKEY_free(key);
	return rc;
}

imp_err fmt_pubkey_to_point(EVP_PKEY *key, uint8_t point[65])
{
	size_t len = 0;

	if (!fmt_pubkey_is_p256(key))
		return IMP_ERR_CRYPTO;
	if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
					    65, &len) != 1 || len != 65 || point[0] != 0x04) {
		ERR_clear_error();
		return IMP_ERR_CRYPTO;
	}
	return IMP_OK;
}

/*
 * The uncompressed point of a named-curve P-256 key, whose
 * SubjectPublicKeyInfo is then { id-ecPublicKey, prime256v1 } and that
 * point: built from it directly, it skips OpenSSL 3.0's encoder and decoder
 * round trip behind X509_PUBKEY_set(), the dearest part of issuing a
 * certificate. 0 for any other key (which takes the general path).
 */
static int p256_named_point(EVP_PKEY *key, uint8_t point[65])
{
	char enc[32];
	size_t len = 0;

	if (fmt_pubkey_to_point(key, point) != IMP_OK)
		return 0;
	if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_EC_ENCODING, enc, sizeof(enc),
					   &len) != 1) {
		ERR_clear_error();
		return 0;
	}
	return strcmp(enc, OSSL_PKEY_EC_ENCODING_GROUP) == 0;
}

int fmt_pubkey_is_point(EVP_PKEY *key, const uint8_t point[65])
{
	uint8_t have[65];

	return p256_named_point(key, have) && memcmp(have, point, sizeof(have)) == 0;
}

imp_err fmt_pubkey_ski(EVP_PKEY *key, uint8_t ski[20])
{
	X509_PUBKEY *xpk = NULL;
	const unsigned char *pk;
	uint8_t point[65];
	int pklen;
	imp_err rc = IMP_ERR_CRYPTO;

	/* The BIT STRING of the key's SubjectPublicKeyInfo is its point. */
	if (p256_named_point(key, point))
		return SHA1(point, sizeof(point), ski) ? IMP_OK : IMP_ERR_CRYPTO;
	if (X509_PUBKEY_set(&xpk, key) != 1)
		goto cleanup;
	if (X509_PUBKEY_get0_param(NULL, &pk, &pklen, NULL, xpk) != 1)
		goto cleanup;
	if (!SHA1(pk, (size_t)pklen, ski))
		goto cleanup;
	rc = IMP_OK;
cleanup:
	X509_PUBKEY_free(xpk);
	return rc;
}

imp_err fmt_name_fill(X509_NAME *name, const struct fmt_name_entry *entries, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int nid;

		if (!entries[i].attr || !entries[i].value || !entries[i].value[0]) {
			IMP_ERROR("name attribute %zu: empty", i);
			return IMP_ERR_USAGE;
		}
		nid = OBJ_txt2nid(entries[i].attr);
		if (nid == NID_undef) {
			/* a dotted OID OpenSSL has no name for (Matter's VID/PID) */
			ASN1_OBJECT *obj = OBJ_txt2obj(entries[i].attr, 1);
			int ok = obj && X509_NAME_add_entry_by_OBJ(
						name, obj, MBSTRING_UTF8,
						(const unsigned char *)entries[i].value, -1, -1, 0) == 1;

			ASN1_OBJECT_free(obj);
			if (ok)
				continue;
			ERR_clear_error();
			IMP_ERROR("name attribute \"%s\": unknown", entries[i].attr);
			return IMP_ERR_USAGE;
		}
		if (X509_NAME_add_entry_by_NID(name, nid, MBSTRING_UTF8,
					       (const unsigned char *)entries[i].value, -1, -1,
					       0) != 1) {
			log_ossl(entries[i].attr);
			return IMP_ERR_USAGE;
		}
	}
	return IMP_OK;
}

imp_err fmt_name_build(const struct fmt_name_entry *entries, size_t n, X509_NAME **out)
{
	X509_NAME *name;
	imp_err rc;

	*out = NULL;
	name = X509_NAME_new();
	if (!name)
		return IMP_ERR_NOMEM;
	rc = fmt_name_fill(name, entries, n);
	if (rc != IMP_OK) {
		X509_NAME_free(name);
		return rc;
	}
	*out = name;
	return IMP_OK;
}

static const char *profile_bc(enum fmt_cert_profile p)
{
	switch (p) {
	case FMT_CERT_ROOT_CA:
		return "critical,CA:TRUE,pathlen:1";
	case FMT_CERT_SUB_CA:
		return "critical,CA:TRUE,pathlen:0";
	default:
		return "critical,CA:FALSE";
	}
}

static const char *profile_ku(enum fmt_cert_profile p)
{
	switch (p) {
	case FMT_CERT_ROOT_CA:
	case FMT_CERT_SUB_CA:
		return "critical,keyCertSign,cRLSign";
	case FMT_CERT_DEVICE:
		return "critical,digitalSignature,keyAgreement";
	default:
		return "critical,digitalSignature";
	}
}

static const char *profile_eku(enum fmt_cert_profile p)
{
	switch (p) {
	case FMT_CERT_CODE_SIGNING:
		return "codeSigning";
	case FMT_CERT_DEVICE:
		return "clientAuth";
	default:
		return NULL; /* see formats/x509.h: no fitting standard EKU */
	}
}

static imp_err add_conf_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	int ok;

	if (!ext) {
		log_ossl(value);
		return IMP_ERR_CRYPTO;
	}
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok == 1 ? IMP_OK : IMP_ERR_CRYPTO;
}

imp_err fmt_x509_key_id_exts(EVP_PKEY *subject_key, const uint8_t *point, X509 *issuer,
			     bool want_ski, bool want_aki, X509_EXTENSION **ski_ext,
			     X509_EXTENSION **aki_ext)
{
	uint8_t ski[20];
	uint8_t aki[20];
	const uint8_t *aki_p = aki;
	int aki_len = 20;
	ASN1_OCTET_STRING *os = NULL;
	AUTHORITY_KEYID *akid = NULL;
	imp_err rc;

	*ski_ext = NULL;
	*aki_ext = NULL;
	if (point)
		rc = SHA1(point, 65, ski) ? IMP_OK : IMP_ERR_CRYPTO; /* as fmt_pubkey_ski */
	else
		rc = fmt_pubkey_ski(subject_key, ski);
	if (rc != IMP_OK)
		return rc;
	if (issuer) {
		const ASN1_OCTET_STRING *iski = X509_get0_subject_key_id(issuer);

		if (iski) {
			aki_p = ASN1_STRING_get0_data(iski);
			aki_len = ASN1_STRING_length(iski);
		} else {
			rc = fmt_pubkey_ski(X509_get0_pubkey(issuer), aki);
			if (rc != IMP_OK)
				return rc;
		}
	} else {
		memcpy(aki, ski, sizeof(aki));
	}
	rc = IMP_ERR_CRYPTO;
	if (want_ski) {
		os = ASN1_OCTET_STRING_new();
		if (!os || ASN1_OCTET_STRING_set(os, ski, sizeof(ski)) != 1)
			goto cleanup;
		*ski_ext = X509V3_EXT_i2d(NID_subject_key_identifier, 0, os);
		if (!*ski_ext)
			goto cleanup;
	}
	if (want_aki) {
		akid = AUTHORITY_KEYID_new();
		if (!akid)
			goto cleanup;
		akid->keyid = ASN1_OCTET_STRING_new();
		if (!akid->keyid || ASN1_OCTET_STRING_set(akid->keyid, aki_p, aki_len) != 1)
			goto cleanup;
		*aki_ext = X509V3_EXT_i2d(NID_authority_key_identifier, 0, akid);
		if (!*aki_ext)
			goto cleanup;
	}
	rc = IMP_OK;
cleanup:
	if (rc != IMP_OK) {
		X509_EXTENSION_free(*ski_ext);
		X509_EXTENSION_free(*aki_ext);
		*ski_ext = NULL;
		*aki_ext = NULL;
	}
	ASN1_OCTET_STRING_free(os);
	AUTHORITY_KEYID_free(akid);
	return rc;
}

imp_err fmt_x509_add_key_ids(X509 *x, EVP_PKEY *subject_key, X509 *issuer, bool want_ski,
			      bool want_aki)
{
	X509_EXTENSION *ski = NULL, *aki = NULL;
	imp_err rc = fmt_x509_key_id_exts(subject_key, NULL, issuer, want_ski, want_aki, &ski,
					  &aki);

	/* X509_add_ext copies: as X509_add1_ext_i2d with X509V3_ADD_DEFAULT,
	 * minus its search for one already there (none is). */
	if (rc == IMP_OK && ski && X509_add_ext(x, ski, -1) != 1)
		rc = IMP_ERR_CRYPTO;
	if (rc == IMP_OK && aki && X509_add_ext(x, aki, -1) != 1)
		rc = IMP_ERR_CRYPTO;
	X509_EXTENSION_free(ski);
	X509_EXTENSION_free(aki);
	return rc;
}

imp_err fmt_x509_set_pubkey(X509 *x, EVP_PKEY *key)
{
	uint8_t point[65];
	unsigned char *enc;

	if (!p256_named_point(key, point))
		return X509_set_pubkey(x, key) == 1 ? IMP_OK : IMP_ERR_CRYPTO;
	enc = OPENSSL_memdup(point, sizeof(point));
	if (!enc)
		return IMP_ERR_NOMEM;
	if (X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x), OBJ_nid2obj(NID_X9_62_id_ecPublicKey),
				   V_ASN1_OBJECT, OBJ_nid2obj(NID_X9_62_prime256v1), enc,
				   (int)sizeof(point)) != 1) {
		OPENSSL_free(enc);
		return IMP_ERR_CRYPTO;
	}
	return IMP_OK;
}

imp_err fmt_x509_serial_new(const uint8_t *serial, size_t len, size_t random_len,
			    ASN1_INTEGER **out)
{
	uint8_t rnd[20];
	BIGNUM *bn = NULL;
	ASN1_INTEGER *ai = NULL;
	imp_err rc = IMP_ERR_CRYPTO;

	*out = NULL;
	if (serial) {
		if (len < 1 || len > 20) {
			IMP_ERROR("certificate serial: expected 1..20 bytes, got %zu", len);
			return IMP_ERR_USAGE;
		}
		bn = BN_bin2bn(serial, (int)len, NULL);
	} else {
		if (random_len < 2 || random_len > sizeof(rnd)) {
			IMP_ERROR("certificate serial: expected 2..20 random bytes, got %zu",
				  random_len);
			return IMP_ERR_USAGE;
		}
		do {
			if (RAND_bytes(rnd, (int)random_len) != 1) {
				log_ossl("RAND_bytes");
				return IMP_ERR_CRYPTO;
			}
			rnd[0] &= 0x7f; /* positive, and at most random_len bytes in DER */
		} while (rnd[0] == 0 && rnd[1] == 0);
		bn = BN_bin2bn(rnd, (int)random_len, NULL);
	}
	if (!bn)
		goto cleanup;
	if (BN_is_zero(bn)) {
		IMP_ERROR("certificate serial: must be positive");
		rc = IMP_ERR_USAGE;
		goto cleanup;
	}
	ai = BN_to_ASN1_INTEGER(bn, NULL);
	if (!ai)
		goto cleanup;
	*out = ai;
	rc = IMP_OK;
cleanup:
	BN_free(bn);
	return rc;
}

imp_err fmt_x509_set_serial(X509 *x, const uint8_t *serial, size_t len, size_t random_len)
{
	ASN1_INTEGER *ai = NULL;
	imp_err rc = fmt_x509_serial_new(serial, len, random_len, &ai);

	if (rc == IMP_OK && X509_set_serialNumber(x, ai) != 1)
		rc = IMP_ERR_CRYPTO;
	ASN1_INTEGER_free(ai);
	return rc;
}

/* DER length octets of len into p (at least 5 bytes); returns their count. */
static size_t der_put_len(uint8_t *p, size_t len)
{
	size_t n = 0;
	size_t t = len;

	if (len < 0x80) {
		p[0] = (uint8_t)len;
		return 1;
	}
	while (t) {
		n++;
		t >>= 8;
	}
	p[0] = (uint8_t)(0x80 | n);
	for (size_t i = 0; i < n; i++)
		p[1 + i] = (uint8_t)(len >> (8 * (n - 1 - i)));
	return 1 + n;
}

/*
 * Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm,
 *                            signatureValue BIT STRING }
 */
static imp_err assemble(const uint8_t *tbs, size_t tbs_len, const uint8_t *alg,
			size_t alg_len, const uint8_t *sig, size_t sig_len,
			uint8_t **out, size_t *out_len)
{
	uint8_t hdr[6];
	uint8_t bit_hdr[6];
	size_t bit_hdr_len;
	size_t hdr_len;
	size_t body;
	uint8_t *buf;
	uint8_t *p;

	bit_hdr[0] = 0x03;
	bit_hdr_len = 1 + der_put_len(bit_hdr + 1, sig_len + 1);
	bit_hdr[bit_hdr_len++] = 0x00; /* no unused bits */
	body = tbs_len + alg_len + bit_hdr_len + sig_len;
	hdr[0] = 0x30;
	hdr_len = 1 + der_put_len(hdr + 1, body);
	buf = malloc(hdr_len + body);
	if (!buf)
		return IMP_ERR_NOMEM;
	p = buf;
	memcpy(p, hdr, hdr_len);
	p += hdr_len;
	memcpy(p, tbs, tbs_len);
	p += tbs_len;
	memcpy(p, alg, alg_len);
	p += alg_len;
	memcpy(p, bit_hdr, bit_hdr_len);
	p += bit_hdr_len;
	memcpy(p, sig, sig_len);
	*out = buf;
	*out_len = hdr_len + body;
	return IMP_OK;
}

static imp_err check_request(const struct fmt_cert_request *req,
			     const struct fmt_signer *signer, EVP_PKEY **issuer_pub)
{
	if (!req || !signer || !signer->sign_digest || !signer->pub)
		return IMP_ERR_USAGE;
	if ((unsigned)req->profile > FMT_CERT_DEVICE) {
		IMP_ERROR("certificate profile %d: unknown", (int)req->profile);
		return IMP_ERR_USAGE;
	}
	if (!req->subject || req->subject_count == 0) {
		IMP_ERROR("certificate subject: empty");
		return IMP_ERR_USAGE;
	}
	if (req->validity_days < 1 || req->validity_days > 36500) {
		IMP_ERROR("certificate validity: expected 1..36500 days, got %u",
			  req->validity_days);
		return IMP_ERR_USAGE;
	}
	if (!fmt_pubkey_is_p256(req->subject_key) || !fmt_pubkey_is_p256(signer->pub)) {
		IMP_ERROR("certificate keys: expected EC P-256");
		return IMP_ERR_USAGE;
	}
	if (req->profile == FMT_CERT_ROOT_CA) {
		if (req->issuer) {
			IMP_ERROR("root certificate: must be self-signed, no issuer");
			return IMP_ERR_USAGE;
		}
		*issuer_pub = req->subject_key;
	} else {
		if (!req->issuer) {
			IMP_ERROR("certificate: an issuer certificate is required");
			return IMP_ERR_USAGE;
		}
		*issuer_pub = X509_get0_pubkey(req->issuer);
	}
	if (!fmt_pubkey_equal(*issuer_pub, signer->pub)) {
		IMP_ERROR("certificate: the signer's key is not the issuer's key");
		return IMP_ERR_USAGE;
	}
	return IMP_OK;
}

/*
 * The signature over digest, checked with the issuer's key as the HSM made
 * it: the digest of the TBS part the certificate carries, so this is the
 * check X509_verify() would make, without encoding the TBS part and
 * hashing it a second time.
 */
static imp_err verify_digest(EVP_PKEY *issuer_pub, const uint8_t digest[32], const uint8_t *sig,
			     size_t sig_len)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, issuer_pub, NULL);
	imp_err rc = IMP_ERR_CRYPTO;
	int v;

	if (!ctx)
		goto cleanup;
	if (EVP_PKEY_verify_init(ctx) != 1)
		goto cleanup;
	v = EVP_PKEY_verify(ctx, sig, sig_len, digest, 32);
	rc = v == 1 ? IMP_OK : IMP_ERR_VERIFY;
	if (rc == IMP_ERR_VERIFY)
		IMP_ERROR("certificate: the signature made by the signer does not verify "
			  "with the issuer key");
cleanup:
	ERR_clear_error();
	EVP_PKEY_CTX_free(ctx);
	return rc;
}

/* ecdsa-with-SHA256 without parameters (RFC 5758 3.2), as DER. */
static const uint8_t ecdsa_sha256_alg[] = { 0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48,
					    0xce, 0x3d, 0x04, 0x03, 0x02 };

imp_err fmt_x509_sign_tbs(const uint8_t *tbs, size_t tbs_len, EVP_PKEY *issuer_pub,
			  const struct fmt_signer *signer, uint8_t **der, size_t *der_len)
{
	uint8_t digest[32];
	uint8_t raw[FMT_ECDSA_RAW_LEN];
	uint8_t sig[FMT_ECDSA_DER_MAX];
	size_t sig_len = 0;
	imp_err rc;

	*der = NULL;
	*der_len = 0;
	if (!SHA256(tbs, tbs_len, digest))
		return IMP_ERR_CRYPTO;
	rc = signer->sign_digest(signer->arg, digest, raw);
	if (rc != IMP_OK) {
		IMP_ERROR("certificate: the signer failed (%s)", imp_err_name(rc));
		return rc;
	}
	rc = fmt_ecdsa_raw_to_der(raw, sig, sizeof(sig), &sig_len);
	if (rc == IMP_OK)
		rc = verify_digest(issuer_pub, digest, sig, sig_len);
	if (rc == IMP_OK)
		rc = assemble(tbs, tbs_len, ecdsa_sha256_alg, sizeof(ecdsa_sha256_alg), sig,
			      sig_len, der, der_len);
	return rc;
}

imp_err fmt_x509_finish_der(X509 *x, EVP_PKEY *issuer_pub, const struct fmt_signer *signer,
			    uint8_t **der, size_t *der_len)
{
	const X509_ALGOR *alg = NULL;
	uint8_t *tbs = NULL;
	int tbs_len;
	imp_err rc = IMP_ERR_CRYPTO;

	*der = NULL;
	*der_len = 0;
	/* The TBS part's AlgorithmIdentifier, and the outer one, read
	 * ecdsa-with-SHA256 without parameters (RFC 5758 3.2). X509_sign()
	 * would set it only by signing with a key of this process. */
	alg = X509_get0_tbs_sigalg(x);
	if (X509_ALGOR_set0((X509_ALGOR *)alg, OBJ_nid2obj(NID_ecdsa_with_SHA256), V_ASN1_UNDEF,
			    NULL) != 1)
		goto cleanup;
	tbs_len = i2d_re_X509_tbs(x, &tbs);
	if (tbs_len <= 0)
		goto cleanup;
	rc = fmt_x509_sign_tbs(tbs, (size_t)tbs_len, issuer_pub, signer, der, der_len);
cleanup:
	OPENSSL_free(tbs);
	return rc;
}

/* A growing DER buffer; ok false once anything failed. */
struct dbuf {
	uint8_t *p;
	size_t n, cap;
	bool ok;
};

static void db_put(struct dbuf *b, const void *src, size_t n)
{
	if (!b->ok)
		return;
	if (b->cap - b->n < n) {
		size_t cap = b->cap ? b->cap : 1024;
		uint8_t *np;

		while (cap - b->n < n)
			cap *= 2;
		np = realloc(b->p, cap);
		if (!np) {
			b->ok = false;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->n, src, n);
	b->n += n;
}

/* One object's DER, as its i2d function returned it (len <= 0: failure)
 * into *enc, which is freed. */
static void db_i2d(struct dbuf *b, int len, uint8_t **enc)
{
	if (len <= 0)
		b->ok = false;
	else
		db_put(b, *enc, (size_t)len);
	OPENSSL_free(*enc);
	*enc = NULL;
}

/* Tag and length in front of the last `body` bytes of b. */
static void db_wrap(struct dbuf *b, uint8_t tag, size_t body)
{
	uint8_t hdr[6];
	size_t hl;

	if (!b->ok)
		return;
	hdr[0] = tag;
	hl = 1 + der_put_len(hdr + 1, body);
	db_put(b, hdr, hl); /* grows the buffer first; then moved in place */
	if (!b->ok)
		return;
	memmove(b->p + b->n - hl - body + hl, b->p + b->n - hl - body, body);
	memcpy(b->p + b->n - hl - body, hdr, hl);
}

imp_err fmt_x509_tbs_der(const struct fmt_x509_tbs *t, uint8_t **tbs, size_t *tbs_len)
{
	/* [0] EXPLICIT version v3 (2) */
	static const uint8_t version3[] = { 0xa0, 0x03, 0x02, 0x01, 0x02 };
	/* SubjectPublicKeyInfo { id-ecPublicKey, prime256v1 } BIT STRING, up to
	 * the point (RFC 5480) */
	static const uint8_t spki_p256[] = { 0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86,
					     0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
					     0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03,
					     0x42, 0x00 };
	struct dbuf b = { .ok = true };
	uint8_t *enc = NULL;
	size_t mark;

	*tbs = NULL;
	*tbs_len = 0;
	if (t->point[0] != 0x04)
		return IMP_ERR_USAGE;
	db_put(&b, version3, sizeof(version3));
	db_i2d(&b, i2d_ASN1_INTEGER(t->serial, &enc), &enc);
	db_put(&b, ecdsa_sha256_alg, sizeof(ecdsa_sha256_alg));
	db_i2d(&b, i2d_X509_NAME(t->issuer, &enc), &enc);
	mark = b.n;
	db_i2d(&b, i2d_ASN1_TIME(t->not_before, &enc), &enc);
	db_i2d(&b, i2d_ASN1_TIME(t->not_after, &enc), &enc);
	db_wrap(&b, 0x30, b.n - mark);
	db_i2d(&b, i2d_X509_NAME(t->subject, &enc), &enc);
	db_put(&b, spki_p256, sizeof(spki_p256));
	db_put(&b, t->point, 65);
	if (t->n_ext) {
		mark = b.n;
		for (size_t i = 0; i < t->n_ext; i++)
			db_i2d(&b, i2d_X509_EXTENSION(t->ext[i], &enc), &enc);
		db_wrap(&b, 0x30, b.n - mark);
		db_wrap(&b, 0xa3, b.n - mark);
	}
	db_wrap(&b, 0x30, b.n);
	if (!b.ok) {
		ERR_clear_error();
		free(b.p);
		return IMP_ERR_CRYPTO;
	}
	*tbs = b.p;
	*tbs_len = b.n;
	return IMP_OK;
}

int fmt_pubkey_p256_point(EVP_PKEY *key, uint8_t point[65])
{
	return p256_named_point(key, point);
}

imp_err fmt_x509_finish(X509 *x, EVP_PKEY *issuer_pub, const struct fmt_signer *signer,
			X509 **out)
{
	uint8_t *der = NULL;
	size_t der_len = 0;
	imp_err rc;

	*out = NULL;
	rc = fmt_x509_finish_der(x, issuer_pub, signer, &der, &der_len);
	if (rc != IMP_OK)
		return rc;
	rc = fmt_cert_from_der(der, der_len, out);
	free(der);
	return rc == IMP_OK || rc == IMP_ERR_NOMEM ? rc : IMP_ERR_INTERNAL;
}

imp_err fmt_x509_cap_at_issuer(X509 *x, X509 *issuer)
{
	const ASN1_TIME *ina;

	if (!issuer)
		return IMP_OK;
	/* A certificate never outlives its issuer: capped at the issuer's notAfter. */
	ina = X509_get0_notAfter(issuer);
	if (ASN1_TIME_compare(X509_get0_notBefore(x), ina) >= 0) {
		IMP_ERROR("certificate: the issuer's validity ends before this one would "
			  "begin: renew the issuing ca");
		return IMP_ERR_USAGE;
	}
	if (ASN1_TIME_compare(X509_get0_notAfter(x), ina) > 0 && X509_set1_notAfter(x, ina) != 1)
		return IMP_ERR_CRYPTO;
	return IMP_OK;
}

imp_err fmt_cert_issue(const struct fmt_cert_request *req,
		       const struct fmt_signer *signer, X509 **out)
{
	EVP_PKEY *issuer_pub = NULL;
	X509 *x = NULL;
	X509_NAME *subject = NULL;
	X509V3_CTX ctx;
	const char *eku;
	time_t nb;
	imp_err rc;

	*out = NULL;
	rc = check_request(req, signer, &issuer_pub);
	if (rc != IMP_OK)
		return rc;
	rc = fmt_name_build(req->subject, req->subject_count, &subject);
	if (rc != IMP_OK)
		return rc;
	rc = IMP_ERR_CRYPTO;
	x = X509_new();
	if (!x)
		goto cleanup;
	if (X509_set_version(x, X509_VERSION_3) != 1)
		goto cleanup;
	rc = fmt_x509_set_serial(x, req->serial, req->serial_len, 16);
	if (rc != IMP_OK)
		goto cleanup;
	rc = IMP_ERR_CRYPTO;
	if (X509_set_subject_name(x, subject) != 1)
		goto cleanup;
	if (X509_set_issuer_name(x, req->issuer ? X509_get_subject_name(req->issuer)
						: subject) != 1)
		goto cleanup;
	nb = req->not_before ? req->not_before : time(NULL) - 300;
	if (!X509_time_adj_ex(X509_getm_notBefore(x), 0, 0, &nb))
		goto cleanup;
	if (!X509_time_adj_ex(X509_getm_notAfter(x), (int)req->validity_days, 0, &nb))
		goto cleanup;
	rc = fmt_x509_cap_at_issuer(x, req->issuer);
	if (rc != IMP_OK)
		goto cleanup;
	rc = fmt_x509_set_pubkey(x, req->subject_key);
	if (rc != IMP_OK)
		goto cleanup;

	X509V3_set_ctx(&ctx, req->issuer ? req->issuer : x, x, NULL, NULL, 0);
	rc = add_conf_ext(x, &ctx, NID_basic_constraints, profile_bc(req->profile));
	if (rc != IMP_OK)
		goto cleanup;
	rc = add_conf_ext(x, &ctx, NID_key_usage, profile_ku(req->profile));
	if (rc != IMP_OK)
		goto cleanup;
	eku = profile_eku(req->profile);
	if (eku) {
		rc = add_conf_ext(x, &ctx, NID_ext_key_usage, eku);
		if (rc != IMP_OK)
			goto cleanup;
	}
	rc = fmt_x509_add_key_ids(x, req->subject_key, req->issuer, true, true);
	if (rc != IMP_OK)
		goto cleanup;
	rc = fmt_x509_finish(x, issuer_pub, signer, out);
cleanup:
	X509_free(x);
	X509_NAME_free(subject);
	return rc;
}

imp_err fmt_cert_from_der(const uint8_t *der, size_t n, X509 **out)
{
	const unsigned char *p = der;
	X509 *x;

	*out = NULL;
	if (n == 0 || n > 1u << 20)
		return IMP_ERR_PROTOCOL;
	x = d2i_X509(NULL, &p, (long)n);
	if (!x || p != der + n) {
		ERR_clear_error();
		X509_free(x);
		return IMP_ERR_PROTOCOL;
	}
	*out = x;
	return IMP_OK;
}

imp_err fmt_cert_to_der(X509 *cert, uint8_t **der, size_t *n)
{
	unsigned char *buf = NULL;
	int len;

	*der = NULL;
	*n = 0;
	len = i2d_X509(cert, &buf);
	if (len <= 0)
		return IMP_ERR_CRYPTO;
	*der = malloc((size_t)len);
	if (!*der) {
		OPENSSL_free(buf);
		return IMP_ERR_NOMEM;
	}
	memcpy(*der, buf, (size_t)len);
	*n = (size_t)len;
	OPENSSL_free(buf);
	return IMP_OK;
}

imp_err fmt_cert_to_pem(X509 *cert, char **pem)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data;
	long len;
	imp_err rc = IMP_ERR_CRYPTO;

	*pem = NULL;
	if (!bio)
		return IMP_ERR_NOMEM;
	if (PEM_write_bio_X509(bio, cert) != 1)
		goto cleanup;
	len = BIO_get_mem_data(bio, &data);
	if (len <= 0)
		goto cleanup;
	*pem = malloc((size_t)len + 1);
	if (!*pem) {
		rc = IMP_ERR_NOMEM;
		goto cleanup;
	}
	memcpy(*pem, data, (size_t)len);
	(*pem)[len] = '\0';
	rc = IMP_OK;
cleanup:
	BIO_free(bio);
	return rc;
}

imp_err fmt_cert_write_pem(X509 *cert, const char *path)
{
	char *pem = NULL;
	imp_err rc;

	rc = fmt_cert_to_pem(cert, &pem);
	if (rc != IMP_OK)
		return rc;
	rc = imp_write_file_atomic(path, pem, strlen(pem), 0644);
	free(pem);
	return rc;
}

imp_err fmt_cert_write_der(X509 *cert, const char *path)
{
	uint8_t *der = NULL;
	size_t n = 0;
	imp_err rc;

	rc = fmt_cert_to_der(cert, &der, &n);
	if (rc != IMP_OK)
		return rc;
	rc = imp_write_file_atomic(path, der, n, 0644);
	free(der);
	return rc;
}

imp_err fmt_cert_load(const char *path, X509 **out)
{
	uint8_t *data = NULL;
	size_t n = 0;
	BIO *bio = NULL;
	imp_err rc;

	*out = NULL;
	rc = imp_read_file(path, &data, &n);
	if (rc != IMP_OK) {
		IMP_ERROR("%s: cannot read the certificate", path);
		return rc;
	}
	if (n >= 10 && memmem(data, n, "-----BEGIN", 10)) {
		bio = BIO_new_mem_buf(data, (int)n);
		if (!bio) {
			rc = IMP_ERR_NOMEM;
			goto cleanup;
		}
		*out = PEM_read_bio_X509(bio, NULL, NULL, NULL);
		rc = *out ? IMP_OK : IMP_ERR_PROTOCOL;
		ERR_clear_error();
	} else {
		rc = fmt_cert_from_der(data, n, out);
	}
	if (rc != IMP_OK)
		IMP_ERROR("%s: no certificate in it (expected PEM or DER)", path);
cleanup:
	BIO_free(bio);
	free(data);
	return rc;
}

imp_err fmt_store_add_pem(X509_STORE *store, const char *path)
{
	BIO *bio = BIO_new_file(path, "r");
	X509 *x;
	int count = 0;

	if (!bio) {
		ERR_clear_error();
		IMP_ERROR("%s: cannot open the certificate bundle", path);
		return IMP_ERR_IO;
	}
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (X509_STORE_add_cert(store, x) != 1) {
			X509_free(x);
			BIO_free(bio);
			log_ossl("X509_STORE_add_cert");
			return IMP_ERR_CRYPTO;
		}
		X509_free(x);
		count++;
	}
	ERR_clear_error();
	BIO_free(bio);
	if (count == 0) {
		IMP_ERROR("%s: no certificate in it", path);
		return IMP_ERR_PROTOCOL;
	}
	return IMP_OK;
}

imp_err fmt_cert_sha256(X509 *cert, uint8_t digest[32])
{
	unsigned int len = 0;

	if (X509_digest(cert, EVP_sha256(), digest, &len) != 1 || len != 32)
		return IMP_ERR_CRYPTO;
	return IMP_OK;
}

imp_err fmt_cert_fingerprint(X509 *cert, char hex[65])
{
	uint8_t digest[32];
	imp_err rc;

	rc = fmt_cert_sha256(cert, digest);
	if (rc != IMP_OK)
		return rc;
	imp_hex_encode(digest, sizeof(digest), hex);
	return IMP_OK;
}

/*
 * Every extension OpenSSL can read decodes, and every otherName of cert's
 * subjectAltName that OpenSSL does not read itself is read strictly: a
 * hardwareModuleName (RFC 4108 5, the IEEE 802.1AR IDevID's) must be
 * exactly SEQUENCE { hwType OBJECT IDENTIFIER, hwSerialNum OCTET STRING }
 * in DER. 1 if so (or none), 0 if not.
 */
static int extensions_ok(X509 *cert)
{
	GENERAL_NAMES *gens;
	int crit = 0, ok = 1;

	/* Every extension OpenSSL has a reader for must decode: X509_verify_cert
	 * decodes only those it uses (not authorityInfoAccess, for one). */
	for (int i = 0; i < X509_get_ext_count(cert); i++) {
		X509_EXTENSION *e = X509_get_ext(cert, i);
		const X509V3_EXT_METHOD *m = X509V3_EXT_get(e);
		void *v;

		if (!m)
			continue;
		v = X509V3_EXT_d2i(e);
		if (!v) {
			ERR_clear_error();
			return 0;
		}
		if (m->it)
			ASN1_item_free(v, ASN1_ITEM_ptr(m->it));
		else if (m->ext_free)
			m->ext_free(v);
	}
	gens = X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, NULL);
	if (!gens)
		return crit == -1; /* absent: fine; undecodable: not */
	for (int i = 0; i < sk_GENERAL_NAME_num(gens) && ok; i++) {
		GENERAL_NAME *gn = sk_GENERAL_NAME_value(gens, i);
		ASN1_OBJECT *oid = NULL;
		ASN1_TYPE *val = NULL;
		char txt[32];
		const unsigned char *p, *end;
		long len;
		int tag, cls;

		if (gn->type != GEN_OTHERNAME || !GENERAL_NAME_get0_otherName(gn, &oid, &val) ||
		    OBJ_obj2txt(txt, sizeof(txt), oid, 1) <= 0 ||
		    strcmp(txt, "1.3.6.1.5.5.7.8.4") != 0)
			continue;
		ok = 0;
		if (ASN1_TYPE_get(val) != V_ASN1_SEQUENCE)
			break;
		p = ASN1_STRING_get0_data(val->value.sequence);
		end = p + ASN1_STRING_length(val->value.sequence);
		if (!(ASN1_get_object(&p, &len, &tag, &cls, end - p) & 0x20) || tag != V_ASN1_SEQUENCE ||
		    p + len != end)
			break;
		{
			const unsigned char *q = p;
			ASN1_OBJECT *hw = d2i_ASN1_OBJECT(NULL, &q, end - q);
			ASN1_OCTET_STRING *sn = hw ? d2i_ASN1_OCTET_STRING(NULL, &q, end - q) : NULL;

			ok = hw && sn && q == end && ASN1_STRING_length(sn) > 0;
			ASN1_OBJECT_free(hw);
			ASN1_OCTET_STRING_free(sn);
		}
	}
	GENERAL_NAMES_free(gens);
	ERR_clear_error();
	return ok;
}

imp_err fmt_cert_verify_chain(X509_STORE *trust, X509 *leaf, STACK_OF(X509) *untrusted,
			      unsigned required_ku)
{
	X509_STORE_CTX *ctx = NULL;
	uint32_t flags;
	imp_err rc = IMP_ERR_VERIFY;

	if (!trust || !leaf)
		return IMP_ERR_USAGE;
	ctx = X509_STORE_CTX_new();
	if (!ctx)
		return IMP_ERR_NOMEM;
	if (X509_STORE_CTX_init(ctx, trust, leaf, untrusted) != 1) {
		rc = IMP_ERR_CRYPTO;
		goto cleanup;
	}
	/* RFC 5280 profile checks on top of the signatures (key identifiers,
	 * named curves, CA extensions): our own hierarchy always passes them. */
	X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_X509_STRICT);
	if (X509_verify_cert(ctx) != 1) {
		IMP_ERROR("certificate chain: %s",
			  X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
		goto cleanup;
	}
	if (!extensions_ok(leaf)) {
		IMP_ERROR("certificate chain: the certificate holds an extension that does not "
			  "decode, or a hardwareModuleName that is not SEQUENCE { hwType, "
			  "hwSerialNum } (RFC 4108 5)");
		goto cleanup;
	}
	flags = X509_get_extension_flags(leaf);
	if (required_ku) {
		if (!(flags & EXFLAG_KUSAGE) ||
		    (X509_get_key_usage(leaf) & required_ku) != required_ku) {
			IMP_ERROR("certificate chain: the signer's certificate lacks the "
				  "required key usage");
			goto cleanup;
		}
		if (!(required_ku & (FMT_KU_KEY_CERT_SIGN | FMT_KU_CRL_SIGN)) &&
		    (flags & EXFLAG_CA)) {
			IMP_ERROR("certificate chain: the signer's certificate is a CA");
			goto cleanup;
		}
	}
	rc = IMP_OK;
cleanup:
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	return rc;
}

imp_err fmt_cert_from_b64(const char *b64, X509 **out)
{
	uint8_t *der = NULL;
	size_t n = 0;
	imp_err rc;

	*out = NULL;
	rc = fmt_b64_decode(b64, strlen(b64), &der, &n);
	if (rc == IMP_OK)
		rc = fmt_cert_from_der(der, n, out);
	free(der);
	return rc == IMP_ERR_NOMEM ? rc : (rc == IMP_OK ? IMP_OK : IMP_ERR_PROTOCOL);
}
