/*
 * The parts of certificate issuance (x509.c) that the fixed roles
 * (fmt_cert_issue) and the certificate profiles (certprofile.c) share.
 * Private to formats/.
 */
#ifndef FORMATS_X509_INT_H
#define FORMATS_X509_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "formats/signer.h"
#include "imprint/err.h"

/*
 * serial (big-endian, 1..20 bytes) if not NULL; else random_len (2..20)
 * random bytes with the top bit cleared and not both first bytes zero:
 * positive, at most random_len octets in DER (RFC 5280 4.1.2.2).
 */
imp_err fmt_x509_set_serial(X509 *x, const uint8_t *serial, size_t len, size_t random_len);

/* The subject key; a named-curve P-256 key without OpenSSL's encoder. */
imp_err fmt_x509_set_pubkey(X509 *x, EVP_PKEY *key);

/*
 * subjectKeyIdentifier (SHA-1 of the key's BIT STRING, RFC 5280 4.2.1.2
 * method 1) and authorityKeyIdentifier (keyIdentifier only: the issuer's
 * SKI, or the subject's own when issuer is NULL), each only if wanted,
 * in that order.
 */
imp_err fmt_x509_add_key_ids(X509 *x, EVP_PKEY *subject_key, X509 *issuer, bool want_ski,
			     bool want_aki);

/*
 * Cap x's notAfter at issuer's (no-op for NULL); IMP_ERR_USAGE if the
 * issuer ends before x begins.
 */
imp_err fmt_x509_cap_at_issuer(X509 *x, X509 *issuer);

/* Add the entries to name (as fmt_name_build does to a new one): issuing
 * fills the certificate's own subject, which X509_set_subject_name would
 * copy through an encode and a decode. */
imp_err fmt_name_fill(X509_NAME *name, const struct fmt_name_entry *entries, size_t n);

/*
 * Set ecdsa-with-SHA256, sign x's TBSCertificate with signer, verify the
 * signature with issuer_pub over the digest that was signed, and assemble
 * the DER: *der (malloc'ed, free) of *der_len bytes. IMP_ERR_VERIFY if the
 * signer's signature does not verify with issuer_pub.
 */
imp_err fmt_x509_finish_der(X509 *x, EVP_PKEY *issuer_pub, const struct fmt_signer *signer,
			    uint8_t **der, size_t *der_len);

/* fmt_x509_finish_der, then the DER parsed into *out (new). */
imp_err fmt_x509_finish(X509 *x, EVP_PKEY *issuer_pub, const struct fmt_signer *signer,
			X509 **out);

#endif
