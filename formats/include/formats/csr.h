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

#endif
