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
/* The same serial as a new ASN1_INTEGER (*out: ASN1_INTEGER_free). */
imp_err fmt_x509_serial_new(const uint8_t *serial, size_t len, size_t random_len,
			    ASN1_INTEGER **out);

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
/* The same two extensions as new objects (NULL where not wanted); point,
 * if not NULL, is subject_key's as fmt_pubkey_p256_point gave it. */
imp_err fmt_x509_key_id_exts(EVP_PKEY *subject_key, const uint8_t *point, X509 *issuer,
			     bool want_ski, bool want_aki, X509_EXTENSION **ski,
			     X509_EXTENSION **aki);

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

/* The signing and assembling half of fmt_x509_finish_der, over a TBSCertificate
 * already encoded (whose signature AlgorithmIdentifier is ecdsa-with-SHA256). */
imp_err fmt_x509_sign_tbs(const uint8_t *tbs, size_t tbs_len, EVP_PKEY *issuer_pub,
			  const struct fmt_signer *signer, uint8_t **der, size_t *der_len);

/*
 * The TBSCertificate of a v3 certificate with a named-curve P-256 subject
 * key, encoded directly (DER): the bytes i2d_re_X509_tbs gives for an X509
 * made of the same parts with the extensions added in this order, without
 * building that X509 (issuing a device certificate through X509 objects
 * costs 0.4 M instructions more). All borrowed.
 */
struct fmt_x509_tbs {
	const ASN1_INTEGER *serial;
	const X509_NAME *issuer;
	const ASN1_TIME *not_before, *not_after;
	const X509_NAME *subject;
	const uint8_t *point;              /* 65 bytes, 04 || X || Y */
	X509_EXTENSION *const *ext;
	size_t n_ext;
};
imp_err fmt_x509_tbs_der(const struct fmt_x509_tbs *t, uint8_t **tbs, size_t *tbs_len);

/* 1 and the point if key is a named-curve P-256 key (its SPKI is then the
 * fixed one fmt_x509_tbs_der writes), else 0. */
int fmt_pubkey_p256_point(EVP_PKEY *key, uint8_t point[65]);

/* fmt_x509_finish_der, then the DER parsed into *out (new). */
imp_err fmt_x509_finish(X509 *x, EVP_PKEY *issuer_pub, const struct fmt_signer *signer,
			X509 **out);

#endif
