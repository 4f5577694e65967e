#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "der_int.h"
#include "formats/csr.h"
#include "imprint/log.h"

imp_err fmt_csr_parse(const uint8_t *der, size_t n, X509_REQ **out)
{
	const unsigned char *p = der;
	X509_REQ *req = NULL;
	EVP_PKEY *pub;
	imp_err rc = IMP_ERR_PROTOCOL;

	*out = NULL;
	if (n == 0 || n > 1u << 16) {
		IMP_ERROR("csr: expected a DER PKCS#10 request");
		return IMP_ERR_PROTOCOL;
	}
	req = d2i_X509_REQ(NULL, &p, (long)n);
	if (!req || p != der + n) {
		IMP_ERROR("csr: malformed (expected one DER PKCS#10 request)");
		goto cleanup;
	}
	pub = X509_REQ_get0_pubkey(req);
	if (!fmt_pubkey_is_p256(pub)) {
		IMP_ERROR("csr: the key is not EC P-256");
		rc = IMP_ERR_CRYPTO;
		goto cleanup;
	}
	if (X509_REQ_verify(req, pub) != 1) {
		IMP_ERROR("csr: the self-signature does not verify");
		rc = IMP_ERR_VERIFY;
		goto cleanup;
	}
	*out = req;
	req = NULL;
	rc = IMP_OK;
cleanup:
	ERR_clear_error();
	X509_REQ_free(req);
	return rc;
}

imp_err fmt_csr_public_key(X509_REQ *req, EVP_PKEY **out)
{
	*out = X509_REQ_get_pubkey(req);
	return *out ? IMP_OK : IMP_ERR_CRYPTO;
}

static imp_err name_string(const X509_NAME *name, char **out)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data;
	long len;
	imp_err rc = IMP_ERR_CRYPTO;

	*out = NULL;
	if (!bio)
		return IMP_ERR_NOMEM;
	if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) < 0)
		goto cleanup;
	len = BIO_get_mem_data(bio, &data);
	*out = malloc((size_t)(len > 0 ? len : 0) + 1);
	if (!*out) {
		rc = IMP_ERR_NOMEM;
		goto cleanup;
	}
	if (len > 0)
		memcpy(*out, data, (size_t)len);
	(*out)[len > 0 ? len : 0] = '\0';
	rc = IMP_OK;
cleanup:
	BIO_free(bio);
	return rc;
}

imp_err fmt_csr_subject(X509_REQ *req, char **out)
{
	return name_string(X509_REQ_get_subject_name(req), out);
}

static imp_err check_name(const X509_NAME *got, const struct fmt_name_entry *expected,
			  size_t n)
{
	X509_NAME *want = NULL;
	char *got_s = NULL;
	char *want_s = NULL;
	imp_err rc;

	rc = fmt_name_build(expected, n, &want);
	if (rc != IMP_OK)
		return rc;
	/* X509_NAME_cmp compares the canonical encodings (case and space folded
	 * per RFC 5280); we want the exact strings too. */
	if (X509_NAME_cmp(got, want) == 0) {
		name_string(got, &got_s);
		name_string(want, &want_s);
		if (got_s && want_s && strcmp(got_s, want_s) == 0) {
			rc = IMP_OK;
			goto cleanup;
		}
	}
	if (!got_s)
		name_string(got, &got_s);
	if (!want_s)
		name_string(want, &want_s);
	IMP_ERROR("csr: subject \"%s\" is not the expected \"%s\"", got_s ? got_s : "?",
		  want_s ? want_s : "?");
	rc = IMP_ERR_VERIFY;
cleanup:
	free(got_s);
	free(want_s);
	X509_NAME_free(want);
	return rc;
}

imp_err fmt_csr_check_subject(X509_REQ *req, const struct fmt_name_entry *expected, size_t n)
{
	return check_name(X509_REQ_get_subject_name(req), expected, n);
}

/* 1 if der is exactly the DER of the name the entries build: then it is
 * that name, strings and string types included, and nothing else needs
 * comparing (check_name judges every other case). */
static int same_der_name(const uint8_t *der, size_t n, const struct fmt_name_entry *expected,
			 size_t count)
{
	X509_NAME *want = NULL;
	unsigned char *enc = NULL;
	int len, same;

	if (fmt_name_build(expected, count, &want) != IMP_OK) {
		ERR_clear_error();
		return 0;
	}
	len = i2d_X509_NAME(want, &enc);
	same = len > 0 && (size_t)len == n && memcmp(enc, der, n) == 0;
	OPENSSL_free(enc);
	X509_NAME_free(want);
	ERR_clear_error();
	return same;
}

imp_err fmt_csr_check_subject_der(const uint8_t *der, size_t n,
				  const struct fmt_name_entry *expected, size_t count)
{
	const unsigned char *p = der;
	X509_NAME *got;
	imp_err rc;

	if (n && same_der_name(der, n, expected, count))
		return IMP_OK;
	got = n ? d2i_X509_NAME(NULL, &p, (long)n) : NULL;
	if (!got || p != der + n) {
		ERR_clear_error();
		X509_NAME_free(got);
		IMP_ERROR("csr: the subject is not one DER name");
		return IMP_ERR_PROTOCOL;
	}
	rc = check_name(got, expected, count);
	X509_NAME_free(got);
	return rc;
}

/* ------------------------------------------------- the in-place reader */

imp_err fmt_csr_view_p256(const uint8_t *der, size_t n, struct fmt_csr_view *out,
			  EVP_PKEY **key)
{
	/* DER of the fixed parts, as X.690 and RFC 5480 / 5758 encode them. */
	static const uint8_t version0[] = { 0x00 };
	static const uint8_t ec_alg[] = { 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
					  0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01,
					  0x07 };
	static const uint8_t ecdsa_sha256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04,
						0x03, 0x02 };
	struct fmt_der in = { der, n }, req, info, info_whole, v, name, spki, alg, bits, attrs;
	struct fmt_der salg, sig;
	uint8_t digest[32];
	EVP_PKEY *k = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	imp_err rc = IMP_ERR_UNSUPPORTED;

	*key = NULL;
	memset(out, 0, sizeof(*out));
	if (!fmt_der_take(&in, 0x30, &req, NULL) || in.n != 0)
		return IMP_ERR_UNSUPPORTED;
	if (!fmt_der_take(&req, 0x30, &info, &info_whole) ||
	    !fmt_der_take(&info, 0x02, &v, NULL) || !fmt_der_eq(v, version0, sizeof(version0)) ||
	    !fmt_der_take(&info, 0x30, NULL, &name) ||
	    !fmt_der_take(&info, 0x30, &spki, NULL) ||
	    !fmt_der_take(&spki, 0x30, &alg, NULL) || !fmt_der_eq(alg, ec_alg, sizeof(ec_alg)) ||
	    !fmt_der_take(&spki, 0x03, &bits, NULL) || spki.n != 0 ||
	    bits.n != 66 || bits.p[0] != 0x00 || bits.p[1] != 0x04 ||
	    !fmt_der_take(&info, 0xa0, &attrs, NULL) || attrs.n != 0 || info.n != 0)
		return IMP_ERR_UNSUPPORTED;
	if (!fmt_der_take(&req, 0x30, &salg, NULL) || !fmt_der_eq(salg, ecdsa_sha256, sizeof(ecdsa_sha256)) ||
	    !fmt_der_take(&req, 0x03, &sig, NULL) || req.n != 0 || sig.n < 2 || sig.p[0] != 0x00)
		return IMP_ERR_UNSUPPORTED;
	memcpy(out->point, bits.p + 1, sizeof(out->point));
	/* The subject must decode as a Name, as it does for OpenSSL. */
	{
		const unsigned char *p = name.p;
		X509_NAME *nm = d2i_X509_NAME(NULL, &p, (long)name.n);

		if (!nm || p != name.p + name.n) {
			ERR_clear_error();
			X509_NAME_free(nm);
			return IMP_ERR_UNSUPPORTED;
		}
		X509_NAME_free(nm);
	}
	/* Off the curve: the reference path refuses it, with its reason. */
	if (fmt_pubkey_from_point(out->point, &k) != IMP_OK)
		return IMP_ERR_UNSUPPORTED;
	if (!SHA256(info_whole.p, info_whole.n, digest)) {
		rc = IMP_ERR_CRYPTO;
		goto cleanup;
	}
	ctx = EVP_PKEY_CTX_new(k, NULL);
	if (!ctx) {
		rc = IMP_ERR_NOMEM;
		goto cleanup;
	}
	if (EVP_PKEY_verify_init(ctx) != 1 ||
	    EVP_PKEY_verify(ctx, sig.p + 1, sig.n - 1, digest, sizeof(digest)) != 1) {
		/* A signature that does not even parse is the reference's to judge. */
		rc = IMP_ERR_UNSUPPORTED;
		goto cleanup;
	}
	out->subject = name.p;
	out->subject_len = name.n;
	*key = k;
	k = NULL;
	rc = IMP_OK;
cleanup:
	ERR_clear_error();
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(k);
	return rc;
}
