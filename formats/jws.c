#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/sha.h>

#include "formats/base64.h"
#include "formats/jws.h"
#include "jws_int.h"
#include "formats/x509.h"
#include "imprint/log.h"

#define X5C_MAX 8u

static json_t *x5c_array(X509 *const *x5c, size_t count)
{
	json_t *arr = json_array();

	if (!arr)
		return NULL;
	for (size_t i = 0; i < count; i++) {
		uint8_t *der = NULL;
		size_t n = 0;
		char *b64;

		if (fmt_cert_to_der(x5c[i], &der, &n) != IMP_OK) {
			json_decref(arr);
			return NULL;
		}
		b64 = fmt_b64_encode(der, n);
		free(der);
		if (!b64 || json_array_append_new(arr, json_string(b64)) != 0) {
			free(b64);
			json_decref(arr);
			return NULL;
		}
		free(b64);
	}
	return arr;
}

struct fmt_jws_header {
	char *text;        /* base64url of the header JSON, then '.' */
	size_t len;        /* of text */
	char *typ;         /* NULL: none */
	EVP_PKEY *pub;     /* the key the kid names (a reference), or NULL */
	EVP_MD_CTX *md;    /* SHA-256 over text */
};

void fmt_jws_header_free(struct fmt_jws_header *h)
{
	if (!h)
		return;
	free(h->text);
	free(h->typ);
	EVP_PKEY_free(h->pub);
	EVP_MD_CTX_free(h->md);
	free(h);
}

imp_err fmt_jws_header_new(const char *typ, const char *kid, EVP_PKEY *pub, X509 *const *x5c,
			   size_t x5c_count, struct fmt_jws_header **out)
{
	struct fmt_jws_header *h = NULL;
	json_t *hdr = NULL;
	char *hdr_s = NULL;
	char *b64 = NULL;
	size_t n;
	imp_err rc = IMP_ERR_NOMEM;

	*out = NULL;
	hdr = json_pack("{ss}", "alg", "ES256");
	if (!hdr)
		goto cleanup;
	if (typ && json_object_set_new(hdr, "typ", json_string(typ)) != 0)
		goto cleanup;
	if (kid && json_object_set_new(hdr, "kid", json_string(kid)) != 0)
		goto cleanup;
	if (x5c_count) {
		json_t *arr = x5c_array(x5c, x5c_count);

		if (!arr || json_object_set_new(hdr, "x5c", arr) != 0)
			goto cleanup;
	}
	hdr_s = json_dumps(hdr, JSON_COMPACT | JSON_SORT_KEYS);
	if (!hdr_s)
		goto cleanup;
	b64 = fmt_b64url_encode(hdr_s, strlen(hdr_s));
	h = calloc(1, sizeof(*h));
	if (!b64 || !h)
		goto cleanup;
	n = strlen(b64);
	h->text = malloc(n + 2);
	if (!h->text || (typ && !(h->typ = strdup(typ))))
		goto cleanup;
	memcpy(h->text, b64, n);
	h->text[n] = '.';
	h->text[n + 1] = '\0';
	h->len = n + 1;
	if (pub) {
		if (EVP_PKEY_up_ref(pub) != 1)
			goto cleanup;
		h->pub = pub;
	}
	rc = IMP_ERR_CRYPTO;
	h->md = EVP_MD_CTX_new();
	if (!h->md || EVP_DigestInit_ex(h->md, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(h->md, h->text, h->len) != 1)
		goto cleanup;
	*out = h;
	h = NULL;
	rc = IMP_OK;
cleanup:
	ERR_clear_error();
	fmt_jws_header_free(h);
	json_decref(hdr);
	free(hdr_s);
	free(b64);
	return rc;
}

const char *fmt_jws_header_typ(const struct fmt_jws_header *h)
{
	return h ? h->typ : NULL;
}

EVP_PKEY *fmt_jws_header_pub(const struct fmt_jws_header *h)
{
	return h ? h->pub : NULL;
}

imp_err fmt_jws_sign_with(const struct fmt_jws_header *h, const struct fmt_signer *s,
			  const void *payload, size_t payload_len, char **out)
{
	EVP_MD_CTX *md = NULL;
	char *p64 = NULL;
	char *s64 = NULL;
	char *jws;
	uint8_t digest[32];
	uint8_t raw[64];
	unsigned dlen = 0;
	size_t pn, sn;
	imp_err rc = IMP_ERR_NOMEM;

	*out = NULL;
	if (!h || !s || !s->sign_digest)
		return IMP_ERR_USAGE;
	p64 = fmt_b64url_encode(payload, payload_len);
	if (!p64)
		goto cleanup;
	pn = strlen(p64);
	/* The signing input is HEADER.PAYLOAD: the hash goes on from the
	 * header's. */
	rc = IMP_ERR_CRYPTO;
	md = EVP_MD_CTX_new();
	if (!md || EVP_MD_CTX_copy_ex(md, h->md) != 1 || EVP_DigestUpdate(md, p64, pn) != 1 ||
	    EVP_DigestFinal_ex(md, digest, &dlen) != 1 || dlen != sizeof(digest))
		goto cleanup;
	rc = s->sign_digest(s->arg, digest, raw);
	if (rc != IMP_OK)
		goto cleanup;
	rc = IMP_ERR_NOMEM;
	s64 = fmt_b64url_encode(raw, sizeof(raw));
	if (!s64)
		goto cleanup;
	sn = strlen(s64);
	jws = malloc(h->len + pn + 1 + sn + 1);
	if (!jws)
		goto cleanup;
	memcpy(jws, h->text, h->len);
	memcpy(jws + h->len, p64, pn);
	jws[h->len + pn] = '.';
	memcpy(jws + h->len + pn + 1, s64, sn + 1);
	*out = jws;
	rc = IMP_OK;
cleanup:
	ERR_clear_error();
	EVP_MD_CTX_free(md);
	free(p64);
	free(s64);
	return rc;
}

imp_err fmt_jws_sign(const struct fmt_signer *s, const char *typ, const char *kid,
		     X509 *const *x5c, size_t x5c_count,
		     const void *payload, size_t payload_len, char **out)
{
	struct fmt_jws_header *h = NULL;
	imp_err rc;

	*out = NULL;
	if (!s || !s->sign_digest)
		return IMP_ERR_USAGE;
	rc = fmt_jws_header_new(typ, kid, NULL, x5c, x5c_count, &h);
	if (rc == IMP_OK)
		rc = fmt_jws_sign_with(h, s, payload, payload_len, out);
	fmt_jws_header_free(h);
	return rc;
}

void fmt_jws_release(struct fmt_jws *j)
{
	if (!j)
		return;
	json_decref(j->header);
	free(j->payload);
	X509_free(j->leaf);
	memset(j, 0, sizeof(*j));
}

/* The parts of a compact JWS, decoded; the header checked. */
struct parsed {
	size_t input_len;     /* length of "header.payload" */
	json_t *header;
	uint8_t *payload;
	size_t payload_len;
	uint8_t sig[64];
};

/* Log unless quiet (the fast path asks quietly; the reference then explains). */
#define HDR_ERROR(...)                           \
	do {                                     \
		if (!quiet)                      \
			IMP_ERROR(__VA_ARGS__);  \
	} while (0)

imp_err fmt_jws_header_check(const json_t *hdr, const char *typ, bool quiet)
{
	static const char *const known[] = { "alg", "cty", "kid", "typ", "x5c" };
	const char *key;
	json_t *v;
	const char *alg;

	if (!json_is_object(hdr)) {
		HDR_ERROR("jws: the header is not a JSON object");
		return IMP_ERR_PROTOCOL;
	}
	json_object_foreach((json_t *)hdr, key, v) {
		size_t i;

		for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			if (strcmp(key, known[i]) == 0)
				break;
		if (i == sizeof(known) / sizeof(known[0])) {
			/* This includes "crit" and "b64": nothing we must understand. */
			HDR_ERROR("jws: header member \"%s\" is not supported", key);
			return IMP_ERR_PROTOCOL;
		}
		if (strcmp(key, "x5c") != 0 && !json_is_string(v)) {
			HDR_ERROR("jws: header member \"%s\" must be a string", key);
			return IMP_ERR_PROTOCOL;
		}
	}
	alg = json_string_value(json_object_get(hdr, "alg"));
	if (!alg || strcmp(alg, "ES256") != 0) {
		HDR_ERROR("jws: algorithm \"%s\" refused (only ES256 is accepted)",
			  alg ? alg : "(missing)");
		return IMP_ERR_PROTOCOL;
	}
	if (typ) {
		const char *t = json_string_value(json_object_get(hdr, "typ"));

		if (!t || strcmp(t, typ) != 0) {
			HDR_ERROR("jws: type \"%s\" is not the expected \"%s\"",
				  t ? t : "(missing)", typ);
			return IMP_ERR_PROTOCOL;
		}
	}
	return IMP_OK;
}

static void parsed_release(struct parsed *p)
{
	json_decref(p->header);
	free(p->payload);
	memset(p, 0, sizeof(*p));
}

imp_err fmt_jws_split(const char *compact, struct fmt_jws_parts *out)
{
	const char *d1;
	const char *d2;
	size_t len;

	memset(out, 0, sizeof(*out));
	if (!compact)
		return IMP_ERR_USAGE;
	len = strnlen(compact, FMT_JWS_MAX_LEN + 1);
	if (len > FMT_JWS_MAX_LEN)
		return IMP_ERR_PROTOCOL;
	d1 = memchr(compact, '.', len);
	d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - compact)) : NULL;
	if (!d1 || !d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - compact)))
		return IMP_ERR_PROTOCOL;
	if (d1 == compact || d2 + 1 == compact + len)
		return IMP_ERR_PROTOCOL;
	out->header = compact;
	out->header_len = (size_t)(d1 - compact);
	out->payload = d1 + 1;
	out->payload_len = (size_t)(d2 - d1 - 1);
	out->sig = d2 + 1;
	out->sig_len = len - (size_t)(d2 + 1 - compact);
	out->input_len = (size_t)(d2 - compact);
	out->len = len;
	return IMP_OK;
}

/* One segment, base64url-decoded, as a JSON object without duplicate keys. */
static imp_err segment_object(const char *seg, size_t n, const char *what, json_t **out)
{
	uint8_t *raw = NULL;
	size_t raw_len = 0;
	json_error_t jerr;
	imp_err rc;

	*out = NULL;
	rc = fmt_b64url_decode(seg, n, &raw, &raw_len);
	if (rc != IMP_OK) {
		IMP_ERROR("jws: the %s is not valid unpadded base64url", what);
		return rc;
	}
	*out = json_loadb((const char *)raw, raw_len, JSON_REJECT_DUPLICATES, &jerr);
	free(raw);
	if (!json_is_object(*out)) {
		IMP_ERROR("jws: the %s is not a JSON object%s%s", what, *out ? "" : ": ",
			  *out ? "" : jerr.text);
		json_decref(*out);
		*out = NULL;
		return IMP_ERR_PROTOCOL;
	}
	return IMP_OK;
}

imp_err fmt_jws_peek_header(const char *compact, json_t **out)
{
	struct fmt_jws_parts p;
	imp_err rc = fmt_jws_split(compact, &p);

	*out = NULL;
	if (rc != IMP_OK) {
		IMP_ERROR("jws: expected the compact form HEADER.PAYLOAD.SIGNATURE");
		return rc;
	}
	return segment_object(p.header, p.header_len, "header", out);
}

imp_err fmt_jws_peek_payload(const char *compact, json_t **out)
{
	struct fmt_jws_parts p;
	imp_err rc = fmt_jws_split(compact, &p);

	*out = NULL;
	if (rc != IMP_OK) {
		IMP_ERROR("jws: expected the compact form HEADER.PAYLOAD.SIGNATURE");
		return rc;
	}
	return segment_object(p.payload, p.payload_len, "payload", out);
}

static imp_err parse_compact(const char *compact, const char *typ, struct parsed *p)
{
	struct fmt_jws_parts parts;
	uint8_t *hdr_raw = NULL;
	size_t hdr_len = 0;
	uint8_t *sig = NULL;
	size_t sig_len = 0;
	json_error_t jerr;
	imp_err rc;

	memset(p, 0, sizeof(*p));
	rc = fmt_jws_split(compact, &parts);
	if (rc != IMP_OK) {
		IMP_ERROR("jws: expected the compact form HEADER.PAYLOAD.SIGNATURE (header and "
			  "signature not empty, at most %u bytes)", FMT_JWS_MAX_LEN);
		return rc;
	}
	rc = IMP_ERR_PROTOCOL;
	if (fmt_b64url_decode(parts.header, parts.header_len, &hdr_raw, &hdr_len) != IMP_OK ||
	    fmt_b64url_decode(parts.payload, parts.payload_len, &p->payload, &p->payload_len) !=
		    IMP_OK ||
	    fmt_b64url_decode(parts.sig, parts.sig_len, &sig, &sig_len) != IMP_OK) {
		IMP_ERROR("jws: a part is not valid unpadded base64url");
		goto cleanup;
	}
	if (sig_len != 64) {
		IMP_ERROR("jws: the ES256 signature must be 64 bytes, not %zu", sig_len);
		goto cleanup;
	}
	memcpy(p->sig, sig, 64);
	p->header = json_loadb((const char *)hdr_raw, hdr_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!p->header) {
		IMP_ERROR("jws: the header is not JSON: %s", jerr.text);
		goto cleanup;
	}
	rc = fmt_jws_header_check(p->header, typ, false);
	if (rc != IMP_OK)
		goto cleanup;
	p->input_len = parts.input_len;
	rc = IMP_OK;
cleanup:
	free(hdr_raw);
	free(sig);
	if (rc != IMP_OK)
		parsed_release(p);
	return rc;
}

static void hand_over(struct parsed *p, struct fmt_jws *out)
{
	out->header = p->header;
	out->payload = p->payload;
	out->payload_len = p->payload_len;
	p->header = NULL;
	p->payload = NULL;
}

imp_err fmt_jws_verify_key(const char *compact, EVP_PKEY *pub, const char *typ,
			   struct fmt_jws *out)
{
	struct parsed p;
	imp_err rc;

	memset(out, 0, sizeof(*out));
	if (!pub)
		return IMP_ERR_USAGE;
	rc = parse_compact(compact, typ, &p);
	if (rc != IMP_OK)
		return rc;
	rc = fmt_verify_raw(pub, compact, p.input_len, p.sig);
	if (rc != IMP_OK) {
		IMP_ERROR("jws: the signature does not verify");
		rc = IMP_ERR_VERIFY;
		goto cleanup;
	}
	hand_over(&p, out);
cleanup:
	parsed_release(&p);
	return rc;
}

imp_err fmt_jws_verify_x5c(const char *compact, X509_STORE *trust, unsigned required_ku,
			   const char *typ, struct fmt_jws *out)
{
	struct parsed p;
	json_t *arr;
	STACK_OF(X509) *chain = NULL;
	X509 *leaf = NULL;
	size_t n;
	imp_err rc;

	memset(out, 0, sizeof(*out));
	if (!trust)
		return IMP_ERR_USAGE;
	rc = parse_compact(compact, typ, &p);
	if (rc != IMP_OK)
		return rc;
	rc = IMP_ERR_PROTOCOL;
	arr = json_object_get(p.header, "x5c");
	n = json_array_size(arr);
	if (!json_is_array(arr) || n == 0 || n > X5C_MAX) {
		IMP_ERROR("jws: expected \"x5c\": an array of 1..%u certificates", X5C_MAX);
		goto cleanup;
	}
	chain = sk_X509_new_null();
	if (!chain) {
		rc = IMP_ERR_NOMEM;
		goto cleanup;
	}
	for (size_t i = 0; i < n; i++) {
		const char *b64 = json_string_value(json_array_get(arr, i));
		X509 *x = NULL;

		if (!b64 || fmt_cert_from_b64(b64, &x) != IMP_OK) {
			IMP_ERROR("jws: x5c[%zu] is not a base64 DER certificate", i);
			goto cleanup;
		}
		if (i == 0) {
			leaf = x;
		} else if (!sk_X509_push(chain, x)) {
			X509_free(x);
			rc = IMP_ERR_NOMEM;
			goto cleanup;
		}
	}
	rc = fmt_cert_verify_chain(trust, leaf, chain, required_ku);
	if (rc != IMP_OK) {
		IMP_ERROR("jws: the signer's certificate chain is not trusted");
		goto cleanup;
	}
	if (!fmt_pubkey_is_p256(X509_get0_pubkey(leaf))) {
		IMP_ERROR("jws: the signer's key is not EC P-256");
		rc = IMP_ERR_VERIFY;
		goto cleanup;
	}
	rc = fmt_verify_raw(X509_get0_pubkey(leaf), compact, p.input_len, p.sig);
	if (rc != IMP_OK) {
		IMP_ERROR("jws: the signature does not verify");
		rc = IMP_ERR_VERIFY;
		goto cleanup;
	}
	hand_over(&p, out);
	out->leaf = leaf;
	leaf = NULL;
cleanup:
	ERR_clear_error();
	X509_free(leaf);
	sk_X509_pop_free(chain, X509_free);
	parsed_release(&p);
	return rc;
}

json_t *fmt_jwk_from_pkey(EVP_PKEY *key)
{
	uint8_t point[65];

	if (fmt_pubkey_to_point(key, point) != IMP_OK)
		return NULL;
	return fmt_jwk_from_point(point);
}

json_t *fmt_jwk_from_point(const uint8_t point[65])
{
	char *x;
	char *y;
	json_t *jwk = NULL;

	if (point[0] != 0x04)
		return NULL;
	x = fmt_b64url_encode(point + 1, 32);
	y = fmt_b64url_encode(point + 33, 32);
	if (x && y)
		jwk = json_pack("{ss ss ss ss}", "kty", "EC", "crv", "P-256", "x", x, "y", y);
	free(x);
	free(y);
	return jwk;
}

static imp_err coord(const json_t *jwk, const char *name, uint8_t out[32])
{
	const char *s = json_string_value(json_object_get(jwk, name));
	uint8_t *buf = NULL;
	size_t n = 0;

	if (!s || fmt_b64url_decode(s, strlen(s), &buf, &n) != IMP_OK || n != 32) {
		free(buf);
		IMP_ERROR("jwk: \"%s\" must be base64url of 32 bytes", name);
		return IMP_ERR_PROTOCOL;
	}
	memcpy(out, buf, 32);
	free(buf);
	return IMP_OK;
}

imp_err fmt_jwk_to_pkey(const json_t *jwk, EVP_PKEY **out)
{
	const char *key;
	json_t *v;
	uint8_t point[65];
	imp_err rc;

	*out = NULL;
	if (!json_is_object(jwk)) {
		IMP_ERROR("jwk: expected an object");
		return IMP_ERR_PROTOCOL;
	}
	json_object_foreach((json_t *)jwk, key, v) {
		if (strcmp(key, "kty") && strcmp(key, "crv") && strcmp(key, "x") &&
		    strcmp(key, "y")) {
			IMP_ERROR("jwk: member \"%s\" refused (expected kty, crv, x, y)", key);
			return IMP_ERR_PROTOCOL;
		}
	}
	v = json_object_get(jwk, "kty");
	if (!json_is_string(v) || strcmp(json_string_value(v), "EC") != 0) {
		IMP_ERROR("jwk: expected \"kty\": \"EC\"");
		return IMP_ERR_PROTOCOL;
	}
	v = json_object_get(jwk, "crv");
	if (!json_is_string(v) || strcmp(json_string_value(v), "P-256") != 0) {
		IMP_ERROR("jwk: expected \"crv\": \"P-256\"");
		return IMP_ERR_PROTOCOL;
	}
	point[0] = 0x04;
	rc = coord(jwk, "x", point + 1);
	if (rc != IMP_OK)
		return rc;
	rc = coord(jwk, "y", point + 33);
	if (rc != IMP_OK)
		return rc;
	rc = fmt_pubkey_from_point(point, out);
	if (rc != IMP_OK)
		IMP_ERROR("jwk: the point is not on P-256");
	return rc;
}

imp_err fmt_jwk_thumbprint(EVP_PKEY *key, char out[44])
{
	uint8_t point[65];
	uint8_t digest[32];
	char *x = NULL;
	char *y = NULL;
	char *t = NULL;
	char buf[160];
	int len;
	imp_err rc;

	rc = fmt_pubkey_to_point(key, point);
	if (rc != IMP_OK)
		return rc;
	rc = IMP_ERR_NOMEM;
	x = fmt_b64url_encode(point + 1, 32);
	y = fmt_b64url_encode(point + 33, 32);
	if (!x || !y)
		goto cleanup;
	/* RFC 7638 3.2: required members only, sorted, no whitespace. */
	len = snprintf(buf, sizeof(buf), "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}",
		       x, y);
	if (len <= 0 || (size_t)len >= sizeof(buf)) {
		rc = IMP_ERR_INTERNAL;
		goto cleanup;
	}
	if (!SHA256((const uint8_t *)buf, (size_t)len, digest)) {
		rc = IMP_ERR_CRYPTO;
		goto cleanup;
	}
	t = fmt_b64url_encode(digest, sizeof(digest));
	if (!t)
		goto cleanup;
	memcpy(out, t, 44);
	rc = IMP_OK;
cleanup:
	free(x);
	free(y);
	free(t);
	return rc;
}
