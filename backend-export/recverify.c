/*
 * Fast identity-record verification (exp/recverify.h).
 *
 * The member tables and rules below mirror formats/record.c and
 * formats/jws.c (fmt_record_verify, fmt_jws_verify_key, fmt_jwk_to_pkey):
 * anything this file accepts, they accept; where this file is unsure it
 * answers IMP_ERR_VERIFY and the reference path decides. The integration
 * tests (tests/integration/export) and tests/unit/export run the forgeries
 * through both.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/ec.h>
#include <openssl/obj_mac.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "exp/recverify.h"
#include "formats/base64.h"
#include "formats/ecdsa_der.h"
#include "formats/record.h"
#include "formats/x509.h"
#include "imprint/util.h"

#define JWS_MAX_LEN (4u << 20) /* as formats/jws.c */
#define MAX_CAS 8u
#define HDR_CACHE_MAX 8192u

struct rv_ca {
	EVP_PKEY *pub;
	uint8_t *subject; /* DER of the subject Name */
	size_t subject_len;
	uint8_t ski[64];
	size_t ski_len;   /* 0: the CA has none (then AKI is not compared: reference path) */
	time_t not_before, not_after;
};

struct exp_rv_trust {
	EVP_PKEY *signer;
	char *x5c0;
	char *known[16];  /* certificates allowed in x5c after x5c[0] */
	size_t nknown;
	struct rv_ca ca[MAX_CAS];
	size_t nca;
	EC_GROUP *group;
	EVP_MD *sha256;   /* fetched once: SHA256() fetches on every call */
};

struct exp_rv {
	const struct exp_rv_trust *t;
	EVP_PKEY_CTX *signer_ctx;
	EVP_PKEY_CTX *ca_ctx[MAX_CAS];
	EC_POINT *pt;
	BN_CTX *bn;
	EVP_MD_CTX *md, *md2;
	char hdr[HDR_CACHE_MAX]; /* the last header segment that passed */
	size_t hdr_len;
};

/* ----------------------------------------------------------- base64 */

/*
 * The same decodings as formats/base64.c (fmt_b64url_decode: unpadded
 * base64url; fmt_b64_decode: padded standard base64; both refuse any other
 * character, a length that cannot be, and non-zero unused trailing bits),
 * table-driven: this path decodes about 3 KB per record.
 */
static signed char b64_val[2][256];
static pthread_once_t b64_once = PTHREAD_ONCE_INIT;

static void b64_tables(void)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

	memset(b64_val, -1, sizeof(b64_val));
	for (int i = 0; i < 62; i++)
		b64_val[0][(unsigned char)a[i]] = b64_val[1][(unsigned char)a[i]] = (signed char)i;
	b64_val[0]['+'] = 62;
	b64_val[0]['/'] = 63;
	b64_val[1]['-'] = 62;
	b64_val[1]['_'] = 63;
}

/* Decode len characters (no padding) into out (room for len / 4 * 3 + 2). */
static int b64_decode_into(int url, const char *in, size_t len, uint8_t *out, size_t *n)
{
	const signed char *t = b64_val[url];
	size_t rem = len % 4, full = len - rem, i;
	uint8_t *o = out;
	uint32_t acc;

	if (rem == 1)
		return 0;
	for (i = 0; i < full; i += 4) {
		int a = t[(unsigned char)in[i]], b = t[(unsigned char)in[i + 1]];
		int c = t[(unsigned char)in[i + 2]], d = t[(unsigned char)in[i + 3]];

		if ((a | b | c | d) < 0)
			return 0;
		acc = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
		*o++ = (uint8_t)(acc >> 16);
		*o++ = (uint8_t)(acc >> 8);
		*o++ = (uint8_t)acc;
	}
	if (rem) {
		int a = t[(unsigned char)in[i]], b = t[(unsigned char)in[i + 1]];
		int c = rem == 3 ? t[(unsigned char)in[i + 2]] : 0;

		if ((a | b | c) < 0)
			return 0;
		acc = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6;
		if (rem == 2) {
			if (acc & 0xffff)
				return 0;
			*o++ = (uint8_t)(acc >> 16);
		} else {
			if (acc & 0xff)
				return 0;
			*o++ = (uint8_t)(acc >> 16);
			*o++ = (uint8_t)(acc >> 8);
		}
	}
	*n = (size_t)(o - out);
	return 1;
}

/* As fmt_b64url_decode / fmt_b64_decode; *out malloc'ed, NUL after the end. */
static int b64_decode(int url, const char *in, size_t len, uint8_t **out, size_t *n)
{
	size_t pad = 0;

	*out = NULL;
	if (!url) {
		if (len % 4 != 0)
			return 0;
		if (len >= 1 && in[len - 1] == '=')
			pad++;
		if (len >= 2 && in[len - 2] == '=')
			pad++;
		len -= pad;
	}
	*out = malloc(len / 4 * 3 + 3);
	if (!*out)
		return 0;
	if (!b64_decode_into(url, in, len, *out, n)) {
		free(*out);
		*out = NULL;
		return 0;
	}
	(*out)[*n] = 0;
	return 1;
}

/* ------------------------------------------------------------ trust */

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

imp_err exp_rv_trust_new(EVP_PKEY *signer, const char *signer_x5c0, X509 *const *cas,
			 size_t ncas, X509_STORE *chain, struct exp_rv_trust **out)
{
	struct exp_rv_trust *t = calloc(1, sizeof(*t));

	*out = NULL;
	if (!t)
		return IMP_ERR_NOMEM;
	pthread_once(&b64_once, b64_tables);
	t->group = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
	t->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (!t->group || !t->sha256 || !signer || EVP_PKEY_up_ref(signer) != 1) {
		exp_rv_trust_free(t);
		return IMP_ERR_CRYPTO;
	}
	t->signer = signer;
	if (signer_x5c0 && !(t->x5c0 = strdup(signer_x5c0))) {
		exp_rv_trust_free(t);
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

void exp_rv_trust_free(struct exp_rv_trust *t)
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

imp_err exp_rv_trust_allow_x5c(struct exp_rv_trust *t, const char *b64)
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
static int x5c_ok(const struct exp_rv_trust *t, const json_t *x5c)
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

imp_err exp_rv_new(const struct exp_rv_trust *t, struct exp_rv **out)
{
	struct exp_rv *v = calloc(1, sizeof(*v));

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
		exp_rv_free(v);
		return IMP_ERR_CRYPTO;
	}
	*out = v;
	return IMP_OK;
}

void exp_rv_free(struct exp_rv *v)
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

int exp_rv_sha256(struct exp_rv *v, const void *data, size_t n, uint8_t md[32])
{
	unsigned int len = 0;

	return EVP_DigestInit_ex2(v->md, v->t->sha256, NULL) == 1 &&
	       EVP_DigestUpdate(v->md, data, n) == 1 && EVP_DigestFinal_ex(v->md, md, &len) == 1 &&
	       len == 32;
}

/* ----------------------------------------------------------- DER walk */

struct der {
	const uint8_t *p;
	size_t n;
};

/* Next TLV of tag from in: strict DER lengths (definite, minimal, < 64 KiB). */
static int der_take(struct der *in, uint8_t tag, struct der *val, struct der *whole)
{
	size_t len, hl;

	if (in->n < 2 || in->p[0] != tag)
		return 0;
	if (in->p[1] < 0x80) {
		len = in->p[1];
		hl = 2;
	} else if (in->p[1] == 0x81) {
		if (in->n < 3 || in->p[2] < 0x80)
			return 0;
		len = in->p[2];
		hl = 3;
	} else if (in->p[1] == 0x82) {
		if (in->n < 4 || in->p[2] == 0)
			return 0;
		len = ((size_t)in->p[2] << 8) | in->p[3];
		if (len < 0x100)
			return 0;
		hl = 4;
	} else {
		return 0;
	}
	if (in->n - hl < len)
		return 0;
	if (val)
		*val = (struct der){ in->p + hl, len };
	if (whole)
		*whole = (struct der){ in->p, hl + len };
	in->p += hl + len;
	in->n -= hl + len;
	return 1;
}

static int der_eq(struct der d, const uint8_t *b, size_t n)
{
	return d.n == n && memcmp(d.p, b, n) == 0;
}

/* UTCTime YYMMDDHHMMSSZ / GeneralizedTime YYYYMMDDHHMMSSZ (RFC 5280 4.1.2.5). */
static int der_time(struct der *in, time_t *out)
{
	struct der v;
	struct tm tm = { 0 };
	int f[7] = { 0 }, nf, year;
	const uint8_t *p;

	if (der_take(in, 0x17, &v, NULL) && v.n == 13) {
		nf = 6;
	} else if (der_take(in, 0x18, &v, NULL) && v.n == 15) {
		nf = 7;
	} else {
		return 0;
	}
	if (v.p[v.n - 1] != 'Z')
		return 0;
	p = v.p;
	for (int i = 0; i < nf; i++, p += 2) {
		if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9')
			return 0;
		f[i] = (p[0] - '0') * 10 + (p[1] - '0');
	}
	if (nf == 6) {
		year = f[0] < 50 ? 2000 + f[0] : 1900 + f[0];
	} else {
		year = f[0] * 100 + f[1];
		memmove(f + 1, f + 2, 5 * sizeof(int));
	}
	if (f[1] < 1 || f[1] > 12 || f[2] < 1 || f[2] > 31 || f[3] > 23 || f[4] > 59 || f[5] > 59)
		return 0;
	tm.tm_year = year - 1900;
	tm.tm_mon = f[1] - 1;
	tm.tm_mday = f[2];
	tm.tm_hour = f[3];
	tm.tm_min = f[4];
	tm.tm_sec = f[5];
	*out = timegm(&tm);
	return 1;
}

static const uint8_t ALG_ES256[] = { 0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48,
				     0xce, 0x3d, 0x04, 0x03, 0x02 };
static const uint8_t SPKI_P256[] = { 0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48,
				     0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
				     0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04 };

enum { X_BC = 1, X_KU = 2, X_EKU = 4, X_SKI = 8, X_AKI = 16, X_SAN = 32 };

/* One extension; 0 if unknown, duplicated or not in the expected form. */
static int extension(struct der ext, unsigned *seen, unsigned *ku, struct der *aki)
{
	static const struct {
		uint8_t last;
		unsigned bit;
	} known[] = { { 0x13, X_BC }, { 0x0f, X_KU }, { 0x25, X_EKU },
		      { 0x0e, X_SKI }, { 0x23, X_AKI }, { 0x11, X_SAN } };
	struct der oid, crit, val;
	unsigned bit = 0;

	if (!der_take(&ext, 0x06, &oid, NULL) || oid.n != 3 || oid.p[0] != 0x55 ||
	    oid.p[1] != 0x1d)
		return 0;
	for (size_t i = 0; i < IMP_ARRAY_SIZE(known); i++)
		if (oid.p[2] == known[i].last)
			bit = known[i].bit;
	if (!bit || (*seen & bit))
		return 0;
	*seen |= bit;
	/* critical (DER: only ever TRUE) on basicConstraints and keyUsage only */
	if (ext.n && ext.p[0] == 0x01 &&
	    (!der_take(&ext, 0x01, &crit, NULL) || crit.n != 1 || crit.p[0] != 0xff ||
	     (bit != X_BC && bit != X_KU)))
		return 0;
	if (!der_take(&ext, 0x04, &val, NULL) || ext.n)
		return 0;
	if (bit == X_BC)
		return val.n == 2 && val.p[0] == 0x30 && val.p[1] == 0x00; /* cA FALSE */
	if (bit == X_KU) {
		struct der bits;

		if (!der_take(&val, 0x03, &bits, NULL) || val.n || bits.n < 2 || bits.n > 3 ||
		    bits.p[0] > 7)
			return 0;
		*ku = bits.p[1] | (bits.n == 3 ? (unsigned)bits.p[2] << 8 : 0u);
		return 1;
	}
	if (bit == X_AKI) {
		struct der seq, kid;

		if (!der_take(&val, 0x30, &seq, NULL) || val.n ||
		    !der_take(&seq, 0x80, &kid, NULL) || seq.n)
			return 0;
		*aki = kid;
	}
	return 1;
}

/*
 * The device certificate der: strictly in our profile, issued by one of the
 * CAs with a verifying signature, valid now, keyUsage required_ku, not a CA.
 * point: its 65-byte public point. serial_hex: like BN_bn2hex.
 */
static int device_cert_ok(struct exp_rv *v, const uint8_t *der, size_t n, unsigned required_ku,
			  uint8_t point[65], char serial_hex[48])
{
	const struct exp_rv_trust *t = v->t;
	struct der in = { der, n }, cert, tbs, tbs_whole, alg, sig, x, ver, serial, name, validity,
		   spki, exts_wrap, exts, ext, sigval;
	time_t nb, na, now = time(NULL);
	unsigned seen = 0, ku = 0;
	struct der aki = { NULL, 0 };
	const struct rv_ca *ca = NULL;
	size_t ci = 0;
	uint8_t md[32];
	static const uint8_t v3[] = { 0x02, 0x01, 0x02 };

	if (!der_take(&in, 0x30, &cert, NULL) || in.n)
		return 0;
	if (!der_take(&cert, 0x30, &tbs, &tbs_whole) || !der_take(&cert, 0x30, NULL, &alg) ||
	    !der_eq(alg, ALG_ES256, sizeof(ALG_ES256)) || !der_take(&cert, 0x03, &sig, NULL) ||
	    cert.n || sig.n < 2 || sig.p[0] != 0)
		return 0;
	if (!der_take(&tbs, 0xa0, &ver, NULL) || !der_eq(ver, v3, sizeof(v3)))
		return 0;
	/* serial: positive (not 0), minimal, 1..20 bytes */
	if (!der_take(&tbs, 0x02, &serial, NULL) || serial.n < 1 || serial.n > 21 ||
	    (serial.n == 1 && serial.p[0] == 0) ||
	    (serial.p[0] & 0x80) || (serial.n > 1 && serial.p[0] == 0 && !(serial.p[1] & 0x80)) ||
	    (serial.n == 21 && serial.p[0] != 0))
		return 0;
	if (!der_take(&tbs, 0x30, NULL, &x) || !der_eq(x, ALG_ES256, sizeof(ALG_ES256)))
		return 0;
	if (!der_take(&tbs, 0x30, NULL, &name))
		return 0;
	for (ci = 0; ci < t->nca; ci++)
		if (der_eq(name, t->ca[ci].subject, t->ca[ci].subject_len)) {
			ca = &t->ca[ci];
			break;
		}
	if (!ca || now < ca->not_before || now > ca->not_after)
		return 0;
	if (!der_take(&tbs, 0x30, &validity, NULL) || !der_time(&validity, &nb) ||
	    !der_time(&validity, &na) || validity.n || now < nb || now > na ||
	    na > ca->not_after) /* outlives its CA: the reference path reports it */
		return 0;
	if (!der_take(&tbs, 0x30, &x, NULL) || x.n == 0) /* subject: not empty */
		return 0;
	if (!der_take(&tbs, 0x30, NULL, &spki) || spki.n != sizeof(SPKI_P256) + 64 ||
	    memcmp(spki.p, SPKI_P256, sizeof(SPKI_P256)) != 0)
		return 0;
	memcpy(point, spki.p + sizeof(SPKI_P256) - 1, 65);
	if (!der_take(&tbs, 0xa3, &exts_wrap, NULL) || tbs.n ||
	    !der_take(&exts_wrap, 0x30, &exts, NULL) || exts_wrap.n || exts.n == 0)
		return 0;
	while (exts.n) {
		if (!der_take(&exts, 0x30, &ext, NULL) || !extension(ext, &seen, &ku, &aki))
			return 0;
	}
	if (!(seen & X_KU) || (ku & required_ku) != required_ku || !(seen & X_AKI) ||
	    !(seen & X_SKI) ||
	    !der_eq(aki, ca->ski, ca->ski_len))
		return 0;
	/* the signature: ECDSA-Sig-Value DER, checked strictly by OpenSSL */
	sigval = (struct der){ sig.p + 1, sig.n - 1 };
	if (!exp_rv_sha256(v, tbs_whole.p, tbs_whole.n, md) ||
	    EVP_PKEY_verify(v->ca_ctx[ci], sigval.p, sigval.n, md, sizeof(md)) != 1)
		return 0;
	{
		size_t k = 0, o = 0;

		while (k + 1 < serial.n && serial.p[k] == 0)
			k++;
		for (; k < serial.n && o + 3 <= 48; k++, o += 2)
			snprintf(serial_hex + o, 3, "%02X", serial.p[k]);
		serial_hex[o] = '\0';
	}
	return 1;
}

/* ---------------------------------------------------- record content */

enum kind { K_STR, K_HEX, K_HEX64, K_INT, K_BOOL, K_OBJ };

struct field {
	const char *name;
	size_t len;
	enum kind kind;
	int required;
};

#define F(name, kind, req) { name, sizeof(name) - 1, kind, req }

/* As formats/record.c. */
static const struct field identity_fields[] = {
	F("chip_uid", K_HEX, 1),        F("device_certificate", K_STR, 0),
	F("device_certificate_sha256", K_HEX64, 0), F("firmware_sha256", K_HEX64, 0),
	F("fixture", K_STR, 1),         F("issued_at", K_STR, 1),
	F("journal", K_OBJ, 1),         F("kcv", K_HEX, 0),
	F("key_mode", K_STR, 1),        F("lock_state", K_OBJ, 1),
	F("operator", K_STR, 0),        F("public_key", K_OBJ, 0),
	F("record_id", K_STR, 1),       F("record_version", K_INT, 1),
	F("serial", K_STR, 1),          F("sku", K_STR, 1),
	F("station_id", K_STR, 1),      F("type", K_STR, 1),
};
static const struct field lock_fields[] = {
	F("boot_locked", K_BOOL, 1),
	F("debug_locked", K_BOOL, 1),
	F("lifecycle", K_STR, 1),
	F("verified_at", K_STR, 1),
};
static const struct field journal_fields[] = {
	F("event_hash", K_HEX64, 1),
	F("prev_hash", K_HEX64, 1),
	F("seq", K_INT, 1),
};

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

static int is_hex(const struct cj_val *v, size_t want_len)
{
	for (size_t i = 0; i < v->n; i++)
		if (!((v->s[i] >= '0' && v->s[i] <= '9') || (v->s[i] >= 'a' && v->s[i] <= 'f')))
			return 0;
	return want_len ? v->n == want_len : v->n > 0 && v->n % 2 == 0;
}

static int kind_ok(const struct cj_val *v, enum kind k)
{
	switch (k) {
	case K_STR:
		return v->t == CJ_STR && v->n > 0;
	case K_HEX:
		return v->t == CJ_STR && is_hex(v, 0);
	case K_HEX64:
		return v->t == CJ_STR && is_hex(v, 64);
	case K_INT:
		return v->t == CJ_INT;
	case K_BOOL:
		return v->t == CJ_BOOL;
	case K_OBJ:
		return v->t == CJ_OBJ;
	}
	return 0;
}

/* As formats/record.c check_fields: known members of the right kind, required ones there. */
static int fields_ok(const struct cj *c, const struct cj_val *obj, const struct field *f,
		     size_t count)
{
	if (!obj || obj->t != CJ_OBJ)
		return 0;
	for (int m = obj->first; m < obj->first + obj->count; m++) {
		size_t i;

		for (i = 0; i < count; i++)
			if (c->m[m].kn == f[i].len && memcmp(c->m[m].k, f[i].name, f[i].len) == 0)
				break;
		if (i == count || !kind_ok(&c->m[m].v, f[i].kind))
			return 0;
	}
	for (size_t i = 0; i < count; i++)
		if (f[i].required && !cj_get(c, obj, f[i].name))
			return 0;
	return 1;
}

static int coord(const struct cj *c, const struct cj_val *jwk, const char *name, uint8_t out[32])
{
	const struct cj_val *s = cj_get(c, jwk, name);
	uint8_t buf[40];
	size_t n = 0;

	return s && s->t == CJ_STR && s->n <= 44 && b64_decode_into(1, s->s, s->n, buf, &n) &&
	       n == 32 && memcpy(out, buf, 32);
}

/* As fmt_jwk_to_pkey: exactly kty EC, crv P-256, x, y of 32 bytes, on the curve. */
static int jwk_point(struct exp_rv *v, const struct cj *c, const struct cj_val *jwk,
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

/* Key mode, key and certificate agree (formats/record.c check_identity_keys). */
static int keys_ok(struct exp_rv *v, const struct cj *c, const struct cj_val *o,
		   struct exp_rv_out *out)
{
	const struct cj_val *mode = cj_get(c, o, "key_mode");
	const struct cj_val *jwk = cj_get(c, o, "public_key");
	const struct cj_val *b64 = cj_get(c, o, "device_certificate");
	const struct cj_val *fpv = cj_get(c, o, "device_certificate_sha256");
	uint8_t *der = NULL, md[32], jp[65], cp[65];
	size_t der_len = 0;
	char fp[65];
	int ok = 0;

	if (cj_is(mode, "psk"))
		return !jwk && !b64 && !fpv && cj_get(c, o, "kcv");
	if (!cj_is(mode, "device") && !cj_is(mode, "hsm"))
		return 0;
	if (!jwk || !b64 || b64->t != CJ_STR || !fpv || fpv->t != CJ_STR || cj_get(c, o, "kcv"))
		return 0;
	if (!b64_decode(0, b64->s, b64->n, &der, &der_len) || !der_len)
		goto cleanup;
	if (!exp_rv_sha256(v, der, der_len, md))
		goto cleanup;
	imp_hex_encode(md, sizeof(md), fp);
	if (fpv->n != 64 || memcmp(fp, fpv->s, 64) != 0 || !jwk_point(v, c, jwk, jp))
		goto cleanup;
	if (!device_cert_ok(v, der, der_len, FMT_KU_DIGITAL_SIGNATURE | FMT_KU_KEY_AGREEMENT, cp,
			    out->cert_serial) ||
	    memcmp(jp, cp, sizeof(jp)) != 0)
		goto cleanup;
	{
		const struct cj_val *x = cj_get(c, jwk, "x"), *y = cj_get(c, jwk, "y");

		snprintf(out->pubkey, sizeof(out->pubkey), "%.*s.%.*s", (int)x->n, x->s,
			 (int)y->n, y->s);
	}
	memcpy(out->cert_sha256, fp, sizeof(fp));
	ok = 1;
cleanup:
	free(der);
	return ok;
}

/* ------------------------------------------------------------- JWS */

/* The header segment h (length n) passes formats/jws.c header_check. */
static int header_ok(struct exp_rv *v, const char *h, size_t n)
{
	static const char *const known[] = { "alg", "cty", "kid", "typ", "x5c" };
	uint8_t *raw = NULL;
	size_t raw_len = 0;
	json_t *hdr = NULL, *val, *x5c;
	const char *key;
	int ok = 0;

	if (n == v->hdr_len && memcmp(h, v->hdr, n) == 0)
		return 1;
	if (!b64_decode(1, h, n, &raw, &raw_len))
		return 0;
	hdr = json_loadb((const char *)raw, raw_len, JSON_REJECT_DUPLICATES, NULL);
	free(raw);
	if (!json_is_object(hdr))
		goto cleanup;
	json_object_foreach(hdr, key, val) {
		size_t i;

		for (i = 0; i < IMP_ARRAY_SIZE(known); i++)
			if (strcmp(key, known[i]) == 0)
				break;
		if (i == IMP_ARRAY_SIZE(known) || (strcmp(key, "x5c") != 0 && !json_is_string(val)))
			goto cleanup;
	}
	if (!json_is_string(json_object_get(hdr, "alg")) ||
	    strcmp(json_string_value(json_object_get(hdr, "alg")), "ES256") != 0 ||
	    !json_is_string(json_object_get(hdr, "typ")) ||
	    strcmp(json_string_value(json_object_get(hdr, "typ")), FMT_RECORD_TYP) != 0)
		goto cleanup;
	x5c = json_object_get(hdr, "x5c");
	if (v->t->x5c0 && !x5c_ok(v->t, x5c))
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

imp_err exp_rv_identity(struct exp_rv *v, const char *jws, struct exp_rv_out *out)
{
	size_t len = jws ? strnlen(jws, JWS_MAX_LEN + 1) : JWS_MAX_LEN + 1;
	const char *d1, *d2;
	uint8_t *sig = NULL, *payload = NULL, md[32], der[FMT_ECDSA_DER_MAX];
	size_t sig_len = 0, payload_len = 0, der_len = 0;
	struct cj *c = NULL;
	struct cj_val o;
	imp_err rc = IMP_ERR_VERIFY;

	memset(out, 0, sizeof(*out));
	if (len > JWS_MAX_LEN)
		return rc;
	d1 = memchr(jws, '.', len);
	d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - jws)) : NULL;
	if (!d1 || !d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - jws)) || d1 == jws ||
	    d2 + 1 == jws + len)
		return rc;
	if (!header_ok(v, jws, (size_t)(d1 - jws)))
		return rc;
	if (!b64_decode(1, d2 + 1, len - (size_t)(d2 + 1 - jws), &sig, &sig_len) || sig_len != 64 ||
	    !b64_decode(1, d1 + 1, (size_t)(d2 - d1 - 1), &payload, &payload_len))
		goto cleanup;
	/* the signing input's hash, and (from the same state) the whole JWS's */
	if (EVP_DigestInit_ex2(v->md, v->t->sha256, NULL) != 1 ||
	    EVP_DigestUpdate(v->md, jws, (size_t)(d2 - jws)) != 1 ||
	    EVP_MD_CTX_copy_ex(v->md2, v->md) != 1 || EVP_DigestFinal_ex(v->md, md, NULL) != 1 ||
	    EVP_DigestUpdate(v->md2, d2, len - (size_t)(d2 - jws)) != 1 ||
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
	if (!fields_ok(c, &o, identity_fields, IMP_ARRAY_SIZE(identity_fields)) ||
	    cj_get(c, &o, "record_version")->i != FMT_RECORD_VERSION ||
	    !cj_is(cj_get(c, &o, "type"), "identity") ||
	    !fields_ok(c, cj_get(c, &o, "lock_state"), lock_fields, IMP_ARRAY_SIZE(lock_fields)) ||
	    !fields_ok(c, cj_get(c, &o, "journal"), journal_fields,
		       IMP_ARRAY_SIZE(journal_fields)) ||
	    !keys_ok(v, c, &o, out))
		goto cleanup;
	copy_span(out->record_id, sizeof(out->record_id), cj_get(c, &o, "record_id"));
	copy_span(out->serial, sizeof(out->serial), cj_get(c, &o, "serial"));
	copy_span(out->uid, sizeof(out->uid), cj_get(c, &o, "chip_uid"));
	rc = IMP_OK;
cleanup:
	if (rc != IMP_OK)
		memset(out, 0, sizeof(*out));
	free(c);
	free(sig);
	free(payload);
	return rc;
}
