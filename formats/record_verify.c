/*
 * The identity-record verifier (formats/record_verify.h): the reference
 * check and the fast path.
 *
 * The fast path takes the member rules from record_int.h (the table the
 * reference reads with), base64 from base64.c, the certificate's parts from
 * fmt_cert_view_leaf (x509_view.c) and the JWS segments from
 * fmt_jws_split; what it adds is a reader of canonical JSON that builds no
 * tree, and trust decoded once. Where it is unsure it answers
 * IMP_ERR_VERIFY and the reference decides.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/obj_mac.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "formats/base64.h"
#include "formats/ecdsa_der.h"
#include "formats/jws.h"
#include "formats/record.h"
#include "formats/record_verify.h"
#include "formats/x509.h"
#include "imprint/log.h"
#include "imprint/util.h"
#include "jws_int.h"
#include "record_int.h"

#define MAX_CAS 8u
#define HDR_CACHE_MAX 8192u
#define CERT_DER_MAX 4096u /* larger device certificates: the reference decides */

static void copy(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src ? src : "");
}

/* ------------------------------------------------------------ reference */

/* Uppercase hex of the certificate's serial, as BN_bn2hex writes it. */
static int asn1_time_to_time_t(const ASN1_TIME *a, time_t *out);

static void cert_serial_hex(X509 *cert, char *out, size_t cap)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
	char *hex = bn ? BN_bn2hex(bn) : NULL;

	copy(out, cap, hex);
	OPENSSL_free(hex);
	BN_free(bn);
}

imp_err fmt_record_verify_full(const char *jws, const struct fmt_record_anchors *a,
			       const char *expect_id, struct fmt_record_facts *out,
			       enum fmt_record_stage *stage)
{
	return fmt_record_verify_full_ku(jws, a, 0, expect_id, out, stage);
}

imp_err fmt_record_verify_full_ku(const char *jws, const struct fmt_record_anchors *a,
				  unsigned device_ku, const char *expect_id,
				  struct fmt_record_facts *out, enum fmt_record_stage *stage)
{
	json_t *rec = NULL;
	const char *cert_b64;
	X509 *cert = NULL;
	imp_err rc;

	memset(out, 0, sizeof(*out));
	*stage = FMT_RECORD_STAGE_RECORD;
	if (!jws)
		return IMP_ERR_USAGE;
	if (!SHA256((const uint8_t *)jws, strlen(jws), out->jws_sha256))
		return IMP_ERR_CRYPTO;
	rc = fmt_record_verify(jws, a->signer, a->signer ? NULL : a->signers, &rec);
	if (rc != IMP_OK)
		return rc;
	out->signatures = 1;
	copy(out->record_id, sizeof(out->record_id),
	     json_string_value(json_object_get(rec, "record_id")));
	copy(out->serial, sizeof(out->serial), json_string_value(json_object_get(rec, "serial")));
	copy(out->uid, sizeof(out->uid), json_string_value(json_object_get(rec, "chip_uid")));
	if (expect_id && strcmp(expect_id, json_string_value(json_object_get(rec, "record_id")))) {
		IMP_ERROR("record: record_id %s is not the id %s it came under", out->record_id,
			  expect_id);
		*stage = FMT_RECORD_STAGE_ID;
		rc = IMP_ERR_PROTOCOL;
		goto cleanup;
	}
	cert_b64 = json_string_value(json_object_get(rec, "device_certificate"));
	if (cert_b64) {
		json_t *jwk = json_object_get(rec, "public_key");

		snprintf(out->pubkey, sizeof(out->pubkey), "%s.%s",
			 json_string_value(json_object_get(jwk, "x")),
			 json_string_value(json_object_get(jwk, "y")));
		copy(out->cert_sha256, sizeof(out->cert_sha256),
		     json_string_value(json_object_get(rec, "device_certificate_sha256")));
		*stage = FMT_RECORD_STAGE_CHAIN;
		rc = fmt_cert_from_b64(cert_b64, &cert);
		if (rc == IMP_OK)
			rc = fmt_cert_verify_chain(a->devices, cert, NULL,
						   device_ku ? device_ku
							     : FMT_RV_DEVICE_KU_DEFAULT);
		if (rc != IMP_OK)
			goto cleanup;
		out->signatures++;
		cert_serial_hex(cert, out->cert_serial, sizeof(out->cert_serial));
		{
			time_t na;

			if (asn1_time_to_time_t(X509_get0_notAfter(cert), &na))
				out->cert_not_after = (int64_t)na;
		}
	}
	*stage = FMT_RECORD_STAGE_OK;
	rc = IMP_OK;
cleanup:
	X509_free(cert);
	json_decref(rec);
	return rc;
}

/* ------------------------------------------------------------ fast path */

struct rv_ca {
	EVP_PKEY *pub;
	uint8_t *subject; /* DER of the subject Name */
	size_t subject_len;
	uint8_t ski[64];
	size_t ski_len;
	time_t not_before, not_after;
};

struct fmt_rv_trust {
	EVP_PKEY *signer;
	char *x5c0;
	char *known[16];  /* certificates allowed in x5c after x5c[0] */
	size_t nknown;
	struct rv_ca ca[MAX_CAS];
	size_t nca;
	EC_GROUP *group;
	EVP_MD *sha256;   /* fetched once: SHA256() fetches on every call */
	unsigned device_ku; /* keyUsage a device certificate must carry */
};

struct fmt_rv {
	const struct fmt_rv_trust *t;
	EVP_PKEY_CTX *signer_ctx;
	EVP_PKEY_CTX *ca_ctx[MAX_CAS];
	EC_POINT *pt;
	BN_CTX *bn;
	EVP_MD_CTX *md, *md2;
	char hdr[HDR_CACHE_MAX]; /* the last header segment that passed */
	size_t hdr_len;
};

static int asn1_time_to_time_t(const ASN1_TIME *a, time_t *out)
{
	struct tm tm;

	if (!a || ASN1_TIME_to_tm(a, &tm) != 1)
		return 0;
	*out = timegm(&tm);
	return 1;
}

/* The CA's chain in store: the intersection of every validity window in it. */
static int chain_window(X509_STORE *store, X509 *ca, time_t *nb, time_t *na)
{
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	STACK_OF(X509) *chain;
	int ok = 0;

	if (!ctx || X509_STORE_CTX_init(ctx, store, ca, NULL) != 1)
		goto cleanup;
	X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_X509_STRICT);
	if (X509_verify_cert(ctx) != 1)
		goto cleanup;
	chain = X509_STORE_CTX_get0_chain(ctx);
	for (int i = 0; i < sk_X509_num(chain); i++) {
		time_t b, a;

		if (!asn1_time_to_time_t(X509_get0_notBefore(sk_X509_value(chain, i)), &b) ||
		    !asn1_time_to_time_t(X509_get0_notAfter(sk_X509_value(chain, i)), &a))
			goto cleanup;
		if (b > *nb)
			*nb = b;
		if (a < *na)
			*na = a;
	}
	ok = 1;
cleanup:
	X509_STORE_CTX_free(ctx);
	return ok;
}

imp_err fmt_rv_trust_new(EVP_PKEY *signer, const char *signer_x5c0, X509 *const *cas,
			 size_t ncas, X509_STORE *chain, struct fmt_rv_trust **out)
{
	struct fmt_rv_trust *t = calloc(1, sizeof(*t));

	*out = NULL;
	if (!t)
		return IMP_ERR_NOMEM;
	t->group = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
	t->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (!t->group || !t->sha256 || !signer || EVP_PKEY_up_ref(signer) != 1) {
		fmt_rv_trust_free(t);
		return IMP_ERR_CRYPTO;
	}
	t->signer = signer;
	t->device_ku = FMT_RV_DEVICE_KU_DEFAULT;
	if (signer_x5c0 && !(t->x5c0 = strdup(signer_x5c0))) {
		fmt_rv_trust_free(t);
		return IMP_ERR_NOMEM;
	}
	for (size_t i = 0; i < ncas && t->nca < MAX_CAS; i++) {
		struct rv_ca *c = &t->ca[t->nca];
		const ASN1_OCTET_STRING *ski;
		uint8_t *p = NULL;
		int n;

		/* A CA whose constraints reach into its leaves (names, policies) is
		 * left to the reference path, which applies them. */
		if (!cas[i] || X509_check_ca(cas[i]) != 1 ||
		    !(X509_get_extension_flags(cas[i]) & EXFLAG_KUSAGE) ||
		    !(X509_get_key_usage(cas[i]) & KU_KEY_CERT_SIGN) ||
		    X509_get_ext_by_NID(cas[i], NID_name_constraints, -1) >= 0 ||
		    X509_get_ext_by_NID(cas[i], NID_policy_constraints, -1) >= 0 ||
		    X509_get_ext_by_NID(cas[i], NID_inhibit_any_policy, -1) >= 0 ||
		    X509_get_ext_by_NID(cas[i], NID_certificate_policies, -1) >= 0)
			continue;
		ski = X509_get0_subject_key_id(cas[i]);
		if (!ski || ski->length <= 0 || (size_t)ski->length > sizeof(c->ski))
			continue;
		if (!asn1_time_to_time_t(X509_get0_notBefore(cas[i]), &c->not_before) ||
		    !asn1_time_to_time_t(X509_get0_notAfter(cas[i]), &c->not_after))
			continue;
		if (chain && !chain_window(chain, cas[i], &c->not_before, &c->not_after))
			continue;
		n = i2d_X509_NAME(X509_get_subject_name(cas[i]), &p);
		if (n <= 0)
			continue;
		c->subject = p;
		c->subject_len = (size_t)n;
		memcpy(c->ski, ski->data, (size_t)ski->length);
		c->ski_len = (size_t)ski->length;
		c->pub = X509_get_pubkey(cas[i]);
		if (!c->pub) {
			OPENSSL_free(c->subject);
			c->subject = NULL;
			continue;
		}
		t->nca++;
	}
	*out = t;
	return IMP_OK;
}

void fmt_rv_trust_set_device_ku(struct fmt_rv_trust *t, unsigned ku)
{
	t->device_ku = ku ? ku : FMT_RV_DEVICE_KU_DEFAULT;
}

void fmt_rv_trust_free(struct fmt_rv_trust *t)
{
	if (!t)
		return;
	EVP_PKEY_free(t->signer);
	free(t->x5c0);
	for (size_t i = 0; i < t->nknown; i++)
		free(t->known[i]);
	for (size_t i = 0; i < t->nca; i++) {
		EVP_PKEY_free(t->ca[i].pub);
		OPENSSL_free(t->ca[i].subject);
	}
	EC_GROUP_free(t->group);
	EVP_MD_free(t->sha256);
	free(t);
}

imp_err fmt_rv_trust_allow_x5c(struct fmt_rv_trust *t, const char *b64)
{
	if (t->nknown == IMP_ARRAY_SIZE(t->known))
		return IMP_ERR_USAGE;
	t->known[t->nknown] = strdup(b64);
	if (!t->known[t->nknown])
		return IMP_ERR_NOMEM;
	t->nknown++;
	return IMP_OK;
}

/* x5c as the registry's mode wants it: [signer, known certificates...]. */
static int x5c_ok(const struct fmt_rv_trust *t, const json_t *x5c)
{
	size_t n = json_array_size(x5c);

	if (!json_is_array(x5c) || n < 1 || n > 8 || !json_is_string(json_array_get(x5c, 0)) ||
	    strcmp(json_string_value(json_array_get(x5c, 0)), t->x5c0) != 0)
		return 0;
	for (size_t i = 1; i < n; i++) {
		const char *c = json_string_value(json_array_get(x5c, i));
		size_t k;

		for (k = 0; c && k < t->nknown; k++)
			if (strcmp(c, t->known[k]) == 0)
				break;
		if (!c || k == t->nknown)
			return 0;
	}
	return 1;
}

static EVP_PKEY_CTX *verify_ctx(EVP_PKEY *k)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);

	if (c && EVP_PKEY_verify_init(c) != 1) {
		EVP_PKEY_CTX_free(c);
		c = NULL;
	}
	return c;
}

imp_err fmt_rv_new(const struct fmt_rv_trust *t, struct fmt_rv **out)
{
	struct fmt_rv *v = calloc(1, sizeof(*v));

	*out = NULL;
	if (!v)
		return IMP_ERR_NOMEM;
	v->t = t;
	v->signer_ctx = verify_ctx(t->signer);
	v->pt = EC_POINT_new(t->group);
	v->bn = BN_CTX_new();
	v->md = EVP_MD_CTX_new();
	v->md2 = EVP_MD_CTX_new();
	for (size_t i = 0; i < t->nca; i++)
		if (!(v->ca_ctx[i] = verify_ctx(t->ca[i].pub)))
			v->signer_ctx = (EVP_PKEY_CTX_free(v->signer_ctx), NULL);
	if (!v->signer_ctx || !v->pt || !v->bn || !v->md || !v->md2) {
		fmt_rv_free(v);
		return IMP_ERR_CRYPTO;
	}
	*out = v;
	return IMP_OK;
}

void fmt_rv_free(struct fmt_rv *v)
{
	if (!v)
		return;
	EVP_PKEY_CTX_free(v->signer_ctx);
	for (size_t i = 0; i < MAX_CAS; i++)
		EVP_PKEY_CTX_free(v->ca_ctx[i]);
	EC_POINT_free(v->pt);
	BN_CTX_free(v->bn);
	EVP_MD_CTX_free(v->md);
	EVP_MD_CTX_free(v->md2);
	free(v);
}

int fmt_rv_sha256(struct fmt_rv *v, const void *data, size_t n, uint8_t md[32])
{
	unsigned int len = 0;

	return EVP_DigestInit_ex2(v->md, v->t->sha256, NULL) == 1 &&
	       EVP_DigestUpdate(v->md, data, n) == 1 && EVP_DigestFinal_ex(v->md, md, &len) == 1 &&
	       len == 32;
}

/* ---------------------------------------------------- device certificate */

/*
 * The device certificate der: in our profile (fmt_cert_view_leaf), issued
 * by one of the CAs (issuer name = its subject, AKI = its SKI) with a
 * verifying signature, valid now and within the CA's window, keyUsage
 * required_ku. point: its public point. serial_hex: as BN_bn2hex.
 */
static int device_cert_ok(struct fmt_rv *v, const uint8_t *der, size_t n, unsigned required_ku,
			  uint8_t point[65], char serial_hex[48])
{
	const struct fmt_rv_trust *t = v->t;
	struct fmt_cert_view cv;
	const struct rv_ca *ca = NULL;
	time_t now = time(NULL);
	size_t ci;
	uint8_t md[32];

	if (fmt_cert_view_leaf(der, n, &cv) != IMP_OK)
		return 0;
	for (ci = 0; ci < t->nca; ci++)
		if (cv.issuer_len == t->ca[ci].subject_len &&
		    memcmp(cv.issuer, t->ca[ci].subject, cv.issuer_len) == 0) {
			ca = &t->ca[ci];
			break;
		}
	if (!ca || now < ca->not_before || now > ca->not_after || now < cv.not_before ||
	    now > cv.not_after || cv.not_after > ca->not_after)
		return 0; /* (outliving its CA: the reference path decides and reports it) */
	if ((cv.key_usage & required_ku) != required_ku || cv.aki_len != ca->ski_len ||
	    memcmp(cv.aki, ca->ski, ca->ski_len) != 0)
		return 0;
	/* the signature: ECDSA-Sig-Value DER, checked strictly by OpenSSL */
	if (!fmt_rv_sha256(v, cv.tbs, cv.tbs_len, md) ||
	    EVP_PKEY_verify(v->ca_ctx[ci], cv.sig, cv.sig_len, md, sizeof(md)) != 1)
		return 0;
	memcpy(point, cv.point, 65);
	{
		size_t k = 0, o = 0;

		while (k + 1 < cv.serial_len && cv.serial[k] == 0)
			k++;
		for (; k < cv.serial_len && o + 3 <= 48; k++, o += 2)
			snprintf(serial_hex + o, 3, "%02X", cv.serial[k]);
		serial_hex[o] = '\0';
	}
	return 1;
}

/*
 * The payload, read without building a tree. Only a subset of JSON is taken:
 * exactly what json_dumps(JSON_COMPACT | JSON_SORT_KEYS) writes for an
 * object of objects, printable-ASCII strings without escapes, non-negative
 * integers of at most 18 digits and booleans, with the members of every
 * object in strictly increasing byte order. For such bytes, parsing and
 * dumping again (the reference's canonical check) gives the same bytes, so
 * accepting them here is accepting them there. Anything else (escapes,
 * non-ASCII, reals, arrays, null, whitespace...) is left to the reference.
 */
enum cj_type { CJ_STR, CJ_INT, CJ_BOOL, CJ_OBJ };

struct cj_val {
	enum cj_type t;
	const char *s;  /* CJ_STR: the characters, n of them */
	size_t n;
	long long i;    /* CJ_INT, CJ_BOOL */
	int first, count; /* CJ_OBJ: members[first .. first + count) */
};

struct cj_mem {
	const char *k;
	size_t kn;
	struct cj_val v;
};

#define CJ_MAX 64

struct cj {
	const char *p, *end;
	struct cj_mem m[CJ_MAX];
	int nm;
	int depth;
};

static int cj_str(struct cj *c, const char **s, size_t *n)
{
	const char *q;

	if (c->p >= c->end || *c->p != '"')
		return 0;
	for (q = ++c->p; q < c->end && *q != '"'; q++)
		if ((unsigned char)*q < 0x20 || (unsigned char)*q > 0x7e || *q == '\\')
			return 0;
	if (q >= c->end)
		return 0;
	*s = c->p;
	*n = (size_t)(q - c->p);
	c->p = q + 1;
	return 1;
}

static int cj_lit(struct cj *c, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(c->end - c->p) < n || memcmp(c->p, lit, n) != 0)
		return 0;
	c->p += n;
	return 1;
}

static int cj_object(struct cj *c, struct cj_val *out);

static int cj_value(struct cj *c, struct cj_val *v)
{
	memset(v, 0, sizeof(*v));
	if (c->p >= c->end)
		return 0;
	switch (*c->p) {
	case '"':
		v->t = CJ_STR;
		return cj_str(c, &v->s, &v->n);
	case '{':
		return cj_object(c, v);
	case 't':
		v->t = CJ_BOOL;
		v->i = 1;
		return cj_lit(c, "true");
	case 'f':
		v->t = CJ_BOOL;
		return cj_lit(c, "false");
	default:
		break;
	}
	if (*c->p < '0' || *c->p > '9')
		return 0;
	v->t = CJ_INT;
	if (*c->p == '0') {
		c->p++;
	} else {
		int digits = 0;

		while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
			if (++digits > 18)
				return 0;
			v->i = v->i * 10 + (*c->p++ - '0');
		}
	}
	/* a real ("1.0", "1e3") or "01": not ours */
	return c->p < c->end && (*c->p == ',' || *c->p == '}');
}

static int cj_key_before(const char *a, size_t an, const char *b, size_t bn)
{
	int r = memcmp(a, b, an < bn ? an : bn);

	return r < 0 || (r == 0 && an < bn);
}

static int cj_object(struct cj *c, struct cj_val *out)
{
	struct cj_mem local[32];
	int n = 0;

	if (c->p >= c->end || *c->p != '{' || ++c->depth > 4)
		return 0;
	c->p++;
	if (c->p < c->end && *c->p == '}') {
		c->p++;
	} else {
		for (;;) {
			if (n == (int)IMP_ARRAY_SIZE(local) || !cj_str(c, &local[n].k, &local[n].kn) ||
			    (n && !cj_key_before(local[n - 1].k, local[n - 1].kn, local[n].k,
						 local[n].kn)) ||
			    !cj_lit(c, ":") || !cj_value(c, &local[n].v))
				return 0;
			n++;
			if (c->p < c->end && *c->p == ',') {
				c->p++;
				continue;
			}
			if (c->p < c->end && *c->p == '}') {
				c->p++;
				break;
			}
			return 0;
		}
	}
	if (c->nm + n > CJ_MAX)
		return 0;
	memcpy(&c->m[c->nm], local, (size_t)n * sizeof(local[0]));
	memset(out, 0, sizeof(*out));
	out->t = CJ_OBJ;
	out->first = c->nm;
	out->count = n;
	c->nm += n;
	c->depth--;
	return 1;
}

static const struct cj_val *cj_get(const struct cj *c, const struct cj_val *obj, const char *k)
{
	size_t kn = strlen(k);

	if (!obj || obj->t != CJ_OBJ)
		return NULL;
	for (int i = obj->first; i < obj->first + obj->count; i++)
		if (c->m[i].kn == kn && memcmp(c->m[i].k, k, kn) == 0)
			return &c->m[i].v;
	return NULL;
}

static int cj_is(const struct cj_val *v, const char *s)
{
	return v && v->t == CJ_STR && v->n == strlen(s) && memcmp(v->s, s, v->n) == 0;
}

static int kind_ok(const struct cj_val *v, const struct fmt_member *m)
{
	switch (m->kind) {
	case FMT_MK_STR:
		return v->t == CJ_STR && v->n > 0;
	case FMT_MK_HEX:
		return v->t == CJ_STR && fmt_is_lower_hex(v->s, v->n, 0);
	case FMT_MK_HEX64:
		return v->t == CJ_STR && fmt_is_lower_hex(v->s, v->n, 64);
	case FMT_MK_INT:
		return v->t == CJ_INT;
	case FMT_MK_BOOL:
		return v->t == CJ_BOOL;
	case FMT_MK_OBJ:
		return v->t == CJ_OBJ;
	}
	return 0;
}

/* As record.c check_members, over the same table: known members of the right kind, required ones there, and so on inside. */
static int members_ok(const struct cj *c, const struct cj_val *obj,
		      const struct fmt_member_table *t)
{
	if (!obj || obj->t != CJ_OBJ)
		return 0;
	for (int i = obj->first; i < obj->first + obj->count; i++) {
		const struct fmt_member *m = fmt_member_find(t, c->m[i].k, c->m[i].kn);

		if (!m || !kind_ok(&c->m[i].v, m))
			return 0;
		if (m->sub && !members_ok(c, &c->m[i].v, m->sub))
			return 0;
	}
	for (size_t i = 0; i < t->n; i++)
		if (t->m[i].required && !cj_get(c, obj, t->m[i].name))
			return 0;
	return 1;
}

static int coord(const struct cj *c, const struct cj_val *jwk, const char *name, uint8_t out[32])
{
	const struct cj_val *s = cj_get(c, jwk, name);
	uint8_t buf[40];
	size_t n = 0;

	return s && s->t == CJ_STR && s->n <= 44 &&
	       fmt_b64url_decode_into(s->s, s->n, buf, sizeof(buf), &n) == IMP_OK && n == 32 &&
	       memcpy(out, buf, 32);
}

/* As fmt_jwk_to_pkey: exactly kty EC, crv P-256, x, y of 32 bytes, on the curve. */
static int jwk_point(struct fmt_rv *v, const struct cj *c, const struct cj_val *jwk,
		     uint8_t point[65])
{
	if (!jwk || jwk->t != CJ_OBJ)
		return 0;
	for (int m = jwk->first; m < jwk->first + jwk->count; m++) {
		const struct cj_mem *e = &c->m[m];

		if (!(e->kn == 3 && (!memcmp(e->k, "kty", 3) || !memcmp(e->k, "crv", 3))) &&
		    !(e->kn == 1 && (e->k[0] == 'x' || e->k[0] == 'y')))
			return 0;
	}
	if (!cj_is(cj_get(c, jwk, "kty"), "EC") || !cj_is(cj_get(c, jwk, "crv"), "P-256"))
		return 0;
	point[0] = 0x04;
	if (!coord(c, jwk, "x", point + 1) || !coord(c, jwk, "y", point + 33))
		return 0;
	return EC_POINT_oct2point(v->t->group, v->pt, point, 65, v->bn) == 1;
}

static void copy_span(char *dst, size_t cap, const struct cj_val *v)
{
	snprintf(dst, cap, "%.*s", v && v->t == CJ_STR ? (int)v->n : 0, v ? v->s : "");
}

/* Key mode, key and certificate agree (record.c check_identity_keys). */
static int keys_ok(struct fmt_rv *v, const struct cj *c, const struct cj_val *o,
		   struct fmt_record_facts *out)
{
	const struct cj_val *mode = cj_get(c, o, "key_mode");
	const struct cj_val *jwk = cj_get(c, o, "public_key");
	const struct cj_val *b64 = cj_get(c, o, "device_certificate");
	const struct cj_val *fpv = cj_get(c, o, "device_certificate_sha256");
	uint8_t der[CERT_DER_MAX], md[32], jp[65], cp[65];
	size_t der_len = 0;
	char fp[65];

	if (cj_is(mode, "psk"))
		return !jwk && !b64 && !fpv && cj_get(c, o, "kcv");
	if (!cj_is(mode, "device") && !cj_is(mode, "hsm"))
		return 0;
	if (!jwk || !b64 || b64->t != CJ_STR || !fpv || fpv->t != CJ_STR || cj_get(c, o, "kcv"))
		return 0;
	if (fmt_b64_decode_into(b64->s, b64->n, der, sizeof(der), &der_len) != IMP_OK || !der_len)
		return 0;
	if (!fmt_rv_sha256(v, der, der_len, md))
		return 0;
	imp_hex_encode(md, sizeof(md), fp);
	if (fpv->n != 64 || memcmp(fp, fpv->s, 64) != 0 || !jwk_point(v, c, jwk, jp))
		return 0;
	if (!device_cert_ok(v, der, der_len, v->t->device_ku, cp,
			    out->cert_serial) ||
	    memcmp(jp, cp, sizeof(jp)) != 0)
		return 0;
	{
		const struct cj_val *x = cj_get(c, jwk, "x"), *y = cj_get(c, jwk, "y");

		snprintf(out->pubkey, sizeof(out->pubkey), "%.*s.%.*s", (int)x->n, x->s,
			 (int)y->n, y->s);
	}
	memcpy(out->cert_sha256, fp, sizeof(fp));
	out->signatures = 2;
	return 1;
}

/* ------------------------------------------------------------------ JWS */

/*
 * The header segment h (length n) passes jws.c's header rules and, in the
 * registry's mode, names our signer in x5c.
 */
static int header_ok(struct fmt_rv *v, const char *h, size_t n)
{
	uint8_t *raw = NULL;
	size_t raw_len = 0;
	json_t *hdr = NULL;
	int ok = 0;

	if (n == v->hdr_len && memcmp(h, v->hdr, n) == 0)
		return 1;
	if (fmt_b64url_decode(h, n, &raw, &raw_len) != IMP_OK)
		return 0;
	hdr = json_loadb((const char *)raw, raw_len, JSON_REJECT_DUPLICATES, NULL);
	free(raw);
	if (fmt_jws_header_check(hdr, FMT_RECORD_TYP, true) != IMP_OK)
		goto cleanup;
	if (v->t->x5c0 && !x5c_ok(v->t, json_object_get(hdr, "x5c")))
		goto cleanup;
	ok = 1;
	if (n < sizeof(v->hdr)) {
		memcpy(v->hdr, h, n);
		v->hdr_len = n;
	}
cleanup:
	json_decref(hdr);
	return ok;
}

imp_err fmt_rv_identity(struct fmt_rv *v, const char *jws, const char *expect_id,
			struct fmt_record_facts *out)
{
	struct fmt_jws_parts jp;
	uint8_t sig[64], md[32], der[FMT_ECDSA_DER_MAX];
	uint8_t *payload = NULL;
	size_t sig_len = 0, payload_len = 0, der_len = 0;
	struct cj *c = NULL;
	struct cj_val o;
	const struct cj_val *id;
	imp_err rc = IMP_ERR_VERIFY;

	memset(out, 0, sizeof(*out));
	if (fmt_jws_split(jws, &jp) != IMP_OK)
		return rc;
	if (!header_ok(v, jp.header, jp.header_len))
		return rc;
	if (fmt_b64url_decode_into(jp.sig, jp.sig_len, sig, sizeof(sig), &sig_len) != IMP_OK ||
	    sig_len != 64 ||
	    fmt_b64url_decode(jp.payload, jp.payload_len, &payload, &payload_len) != IMP_OK)
		goto cleanup;
	/* the signing input's hash, and (from the same state) the whole JWS's */
	if (EVP_DigestInit_ex2(v->md, v->t->sha256, NULL) != 1 ||
	    EVP_DigestUpdate(v->md, jws, jp.input_len) != 1 ||
	    EVP_MD_CTX_copy_ex(v->md2, v->md) != 1 || EVP_DigestFinal_ex(v->md, md, NULL) != 1 ||
	    EVP_DigestUpdate(v->md2, jws + jp.input_len, jp.len - jp.input_len) != 1 ||
	    EVP_DigestFinal_ex(v->md2, out->jws_sha256, NULL) != 1 ||
	    fmt_ecdsa_raw_to_der(sig, der, sizeof(der), &der_len) != IMP_OK ||
	    EVP_PKEY_verify(v->signer_ctx, der, der_len, md, sizeof(md)) != 1)
		goto cleanup;
	c = malloc(sizeof(*c));
	if (!c)
		goto cleanup;
	c->p = (const char *)payload;
	c->end = c->p + payload_len;
	c->nm = 0;
	c->depth = 0;
	if (!cj_object(c, &o) || c->p != c->end)
		goto cleanup;
	if (!members_ok(c, &o, &fmt_identity_members) ||
	    cj_get(c, &o, "record_version")->i != FMT_RECORD_VERSION ||
	    !cj_is(cj_get(c, &o, "type"), "identity") || !keys_ok(v, c, &o, out))
		goto cleanup;
	id = cj_get(c, &o, "record_id");
	if (expect_id && (strlen(expect_id) != id->n || memcmp(expect_id, id->s, id->n) != 0))
		goto cleanup;
	if (!out->signatures)
		out->signatures = 1; /* psk: the JWS only */
	copy_span(out->record_id, sizeof(out->record_id), id);
	copy_span(out->serial, sizeof(out->serial), cj_get(c, &o, "serial"));
	copy_span(out->uid, sizeof(out->uid), cj_get(c, &o, "chip_uid"));
	rc = IMP_OK;
cleanup:
	if (rc != IMP_OK)
		memset(out, 0, sizeof(*out));
	free(c);
	free(payload);
	return rc;
}
