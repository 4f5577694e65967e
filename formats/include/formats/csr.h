/*
 * PKCS#10 certificate signing requests, as returned by boards that generate
 * their key on chip (key mode "device").
 */
#ifndef FORMATS_CSR_H
#define FORMATS_CSR_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "imprint/err.h"
#include "formats/x509.h"

/*
 * Parse exactly one DER CSR (no trailing bytes), require an EC P-256 key and
 * verify the self-signature (X509_REQ_verify), i.e. proof that the requester
 * holds the private key. *out is new (X509_REQ_free).
 * IMP_ERR_PROTOCOL if malformed, IMP_ERR_CRYPTO if the key is not P-256,
 * IMP_ERR_VERIFY if the signature is wrong.
 */
imp_err fmt_csr_parse(const uint8_t *der, size_t n, X509_REQ **out);

/* The CSR's public key; *out is a new reference (EVP_PKEY_free). */
imp_err fmt_csr_public_key(X509_REQ *req, EVP_PKEY **out);

/*
 * The CSR's subject as an RFC 2253 string; *out malloc'ed (free).
 */
imp_err fmt_csr_subject(X509_REQ *req, char **out);

/*
 * Compare the CSR's subject to expected (same attributes, same values, same
 * order). IMP_OK if equal, IMP_ERR_VERIFY (logged with both names) if not.
 */
imp_err fmt_csr_check_subject(X509_REQ *req, const struct fmt_name_entry *expected,
			      size_t n);

/*
 * The device CSR read in place, without OpenSSL's ASN.1 decoder (the
 * dearest part of a board's key step): accepted only in exactly the shape
 * a board's key store writes, in strict DER: version 0, a subject, an
 * id-ecPublicKey prime256v1 key as an uncompressed point, no attributes,
 * ecdsa-with-SHA256, nothing after it. For such a request it checks what
 * fmt_csr_parse does: the point is on the curve and the self-signature
 * verifies over the request info as it stands. Anything else answers
 * IMP_ERR_UNSUPPORTED, and the caller takes fmt_csr_parse, which judges it
 * and says why: so this never accepts what fmt_csr_parse refuses (a unit
 * test holds it to that over systematic mutations). A request of that
 * shape whose signature does not verify is IMP_ERR_UNSUPPORTED too.
 * On IMP_OK, *key is new (EVP_PKEY_free) and the subject points into der.
 */
struct fmt_csr_view {
	uint8_t point[65];
	const uint8_t *subject;   /* the subject Name's DER (tag and length too) */
	size_t subject_len;
};
imp_err fmt_csr_view_p256(const uint8_t *der, size_t n, struct fmt_csr_view *out,
			  EVP_PKEY **key);

/* fmt_csr_check_subject() for a subject Name in DER (as fmt_csr_view_p256
 * gives it); IMP_ERR_PROTOCOL if it does not decode as one Name. */
imp_err fmt_csr_check_subject_der(const uint8_t *der, size_t n,
				  const struct fmt_name_entry *expected, size_t count);

#endif
