#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/x509.h>

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

imp_err fmt_csr_check_subject(X509_REQ *req, const struct fmt_name_entry *expected, size_t n)
{
	X509_NAME *want = NULL;
	const X509_NAME *got = X509_REQ_get_subject_name(req);
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
