/*
 * X.509 certificates of the organisation hierarchy and of devices, issued
 * with an external signer (struct fmt_signer), so the issuing key can stay in
 * the HSM.
 *
 * How: the certificate is built with OpenSSL, ecdsa-with-SHA256 (no
 * parameters) is set as its AlgorithmIdentifier, its TBSCertificate is
 * encoded (i2d_re_X509_tbs) and hashed, the hash is
 * signed by the signer, the signature is verified with the issuer's public
 * key over that hash, and the outer Certificate ::= SEQUENCE { tbs, algid,
 * BIT STRING signature } is assembled in DER by hand (and parsed into an
 * X509 for the callers that want one; fmt_certprof_issue_der leaves it as
 * DER).
 *
 * All keys are EC P-256, all signatures ECDSA with SHA-256.
 */
#ifndef FORMATS_X509_H
#define FORMATS_X509_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "imprint/err.h"
#include "formats/signer.h"

/*
 * Certificate profiles. Every profile carries subjectKeyIdentifier (SHA-1 of
 * the subjectPublicKey BIT STRING contents, RFC 5280 4.2.1.2 method 1) and
 * authorityKeyIdentifier (the issuer's SKI; for the root, its own).
 *
 * | profile        | basicConstraints (critical) | keyUsage (critical)              | extKeyUsage |
 * | ROOT_CA        | CA:TRUE, pathlen:1          | keyCertSign, cRLSign             | -           |
 * | SUB_CA         | CA:TRUE, pathlen:0          | keyCertSign, cRLSign             | -           |
 * | RECORD_SIGNING | CA:FALSE                    | digitalSignature                 | - (1)       |
 * | CODE_SIGNING   | CA:FALSE                    | digitalSignature                 | codeSigning |
 * | REVOCATION     | CA:FALSE                    | digitalSignature                 | - (1)       |
 * | DEVICE         | CA:FALSE                    | digitalSignature, keyAgreement   | clientAuth  |
 *
 * (1) No standard EKU fits: id-kp-documentSigning (RFC 9336) is for
 * human-readable documents, id-kp-OCSPSigning only for OCSP responses and
 * id-kp-timeStamping only for RFC 3161 tokens. An absent EKU is also what
 * tells these certificates apart from DEVICE (clientAuth) and CODE_SIGNING
 * ones; record and revocation signers are told apart by the JWS "typ" and
 * by pinning the expected key (see formats/record.h).
 */
enum fmt_cert_profile {
	FMT_CERT_ROOT_CA = 0,
	FMT_CERT_SUB_CA = 1,
	FMT_CERT_RECORD_SIGNING = 2,
	FMT_CERT_CODE_SIGNING = 3,
	FMT_CERT_REVOCATION = 4,
	FMT_CERT_DEVICE = 5,
};

/* keyUsage bits, same values as OpenSSL's X509v3_KU_* (X509_get_key_usage). */
#define FMT_KU_DIGITAL_SIGNATURE 0x0080u
#define FMT_KU_KEY_AGREEMENT 0x0008u
#define FMT_KU_KEY_CERT_SIGN 0x0004u
#define FMT_KU_CRL_SIGN 0x0002u

/*
 * One relative distinguished name attribute. attr is an OpenSSL short or long
 * name: "C", "ST", "L", "O", "OU", "CN", "serialNumber", ... Strings are
 * UTF-8. Both pointers are borrowed.
 */
struct fmt_name_entry {
	const char *attr;
	const char *value;
};

/* What to certify. All pointers borrowed. */
struct fmt_cert_request {
	enum fmt_cert_profile profile;
	const struct fmt_name_entry *subject; /* in order, most significant first */
	size_t subject_count;                 /* at least 1 */
	EVP_PKEY *subject_key;   /* public key to certify (EC P-256); for ROOT_CA
				    it must be the signer's key */
	X509 *issuer;            /* issuer certificate; NULL for ROOT_CA only */
	const uint8_t *serial;   /* big-endian serial, 1..20 bytes; NULL = random
				    positive 128-bit (RAND_bytes, top bit cleared) */
	size_t serial_len;
	unsigned validity_days;  /* 1..36500; notAfter = notBefore + days, capped
				    at the issuer's notAfter (IMP_ERR_USAGE if the
				    issuer ends before notBefore) */
	time_t not_before;       /* 0 = now - 5 minutes (clock skew margin) */
};

/*
 * Issue a certificate for req, signed by signer (whose public key must match
 * req->issuer's key, or req->subject_key for ROOT_CA). The result is
 * verified with the issuer public key before it is returned.
 * On success *out is a new X509 owned by the caller (X509_free).
 * IMP_ERR_USAGE for an invalid request, IMP_ERR_CRYPTO for OpenSSL
 * failures, IMP_ERR_VERIFY if the assembled certificate does not verify,
 * or the signer's own error.
 */
imp_err fmt_cert_issue(const struct fmt_cert_request *req,
		       const struct fmt_signer *signer, X509 **out);

/*
 * Build an X509_NAME from entries. *out is new (X509_NAME_free).
 * IMP_ERR_USAGE for an unknown attribute or empty value.
 */
imp_err fmt_name_build(const struct fmt_name_entry *entries, size_t n,
		       X509_NAME **out);

/* DER of cert: *der is malloc'ed (free), *n its length. */
imp_err fmt_cert_to_der(X509 *cert, uint8_t **der, size_t *n);
/* PEM of cert: *pem is a malloc'ed NUL-terminated string (free). */
imp_err fmt_cert_to_pem(X509 *cert, char **pem);
/* Write cert as PEM / DER, atomically, mode 0644. */
imp_err fmt_cert_write_pem(X509 *cert, const char *path);
imp_err fmt_cert_write_der(X509 *cert, const char *path);

/*
 * Parse exactly one DER certificate (no trailing bytes). *out is new.
 * IMP_ERR_PROTOCOL if malformed.
 */
imp_err fmt_cert_from_der(const uint8_t *der, size_t n, X509 **out);

/*
 * The same from standard base64 of the DER (x5c entries, records, the
 * journal). *out is new. IMP_ERR_PROTOCOL if the base64 or the DER is bad.
 */
imp_err fmt_cert_from_b64(const char *b64, X509 **out);

/*
 * Load one certificate from a PEM or DER file (detected from the content).
 * For PEM the first certificate is taken. *out is new (X509_free).
 * IMP_ERR_IO if unreadable, IMP_ERR_PROTOCOL if no certificate in it.
 */
imp_err fmt_cert_load(const char *path, X509 **out);

/*
 * Add every certificate of a PEM file (a bundle) to store as trusted.
 * IMP_ERR_IO, IMP_ERR_PROTOCOL if the file holds no certificate.
 */
imp_err fmt_store_add_pem(X509_STORE *store, const char *path);

/* SHA-256 of the DER encoding, lowercase hex (64 digits + NUL). */
imp_err fmt_cert_fingerprint(X509 *cert, char hex[65]);
/* SHA-256 of the DER encoding, binary. */
imp_err fmt_cert_sha256(X509 *cert, uint8_t digest[32]);

/*
 * Verify leaf up to a trust anchor in trust (X509_verify_cert with
 * X509_V_FLAG_X509_STRICT, time checks on, chain extensions enforced), with untrusted intermediates (may
 * be NULL). The leaf must carry every keyUsage bit in required_ku
 * (FMT_KU_*; 0 = no requirement) and must not be a CA when required_ku has
 * no CA bit. A leaf with an extension OpenSSL knows that does not
 * decode (subjectAltName, CRL distribution points, authorityInfoAccess,
 * ...), or a subjectAltName holding a
 * hardwareModuleName (RFC 4108 5) that is not exactly SEQUENCE { hwType,
 * hwSerialNum }, is refused too. IMP_ERR_VERIFY with the reason logged.
 */
imp_err fmt_cert_verify_chain(X509_STORE *trust, X509 *leaf,
			      STACK_OF(X509) *untrusted, unsigned required_ku);

/*
 * A DER certificate read in place, for verifiers that check many device
 * certificates (formats/record_verify.h): pointers into der, nothing
 * allocated, nothing verified.
 */
struct fmt_cert_view {
	const uint8_t *tbs;      /* the TBSCertificate, tag and length included: */
	size_t tbs_len;          /*   the bytes the issuer signed */
	const uint8_t *sig;      /* the issuer's ECDSA-Sig-Value (DER) */
	size_t sig_len;
	const uint8_t *serial;   /* INTEGER contents: positive, minimal, <= 20 bytes */
	size_t serial_len;
	const uint8_t *issuer;   /* the issuer Name, tag and length included */
	size_t issuer_len;
	time_t not_before, not_after;
	uint8_t point[65];       /* the subject's P-256 key, uncompressed */
	unsigned key_usage;      /* FMT_KU_* bits */
	const uint8_t *aki;      /* authorityKeyIdentifier keyIdentifier */
	size_t aki_len;
};

/*
 * Read der as a certificate of exactly the shape fmt_cert_issue writes for
 * an end entity: v3, ecdsa-with-SHA256 (both AlgorithmIdentifiers), UTCTime
 * or GeneralizedTime validity, a subject of id-at-* attributes in
 * UTF8String or PrintableString of printable ASCII (or Matter's VID/PID
 * attributes, a UTF8String of 4 uppercase hex digits), one per RDN, a P-256
 * key, extensions only basicConstraints (cA FALSE), keyUsage (both may be
 * critical), extKeyUsage, subjectKeyIdentifier, authorityKeyIdentifier
 * (keyIdentifier only) and a non-critical subjectAltName of dNSName, URI
 * and hardwareModuleName (RFC 4108 5) names, each at most once, with
 * keyUsage, SKI and AKI
 * present; strict DER throughout. IMP_ERR_PROTOCOL for anything else (which
 * may still be a valid certificate: ask fmt_cert_verify_chain).
 */
imp_err fmt_cert_view_leaf(const uint8_t *der, size_t n, struct fmt_cert_view *out);

/*
 * The subject key of a DER certificate, read in place: the uncompressed
 * point of its SubjectPublicKeyInfo when that is a named-curve P-256 key.
 * Nothing else is checked (not the signature, not the rest of the shape):
 * for a certificate this station issued or verified, to compare its key
 * with a key at hand without OpenSSL decoding the certificate.
 * IMP_ERR_PROTOCOL if the DER does not lead to such a key.
 */
imp_err fmt_cert_der_point(const uint8_t *der, size_t n, uint8_t point[65]);

/*
 * Public key from an uncompressed P-256 point (0x04 || X || Y, 65 bytes).
 * *out is new. IMP_ERR_CRYPTO if the point is not on the curve.
 */
imp_err fmt_pubkey_from_point(const uint8_t point[65], EVP_PKEY **out);
/* The uncompressed point of a P-256 key. IMP_ERR_CRYPTO if not P-256. */
imp_err fmt_pubkey_to_point(EVP_PKEY *key, uint8_t point[65]);
/* 1 if key is an EC P-256 key, 0 otherwise. */
int fmt_pubkey_is_p256(EVP_PKEY *key);
/* 1 if a and b are the same public key, 0 otherwise. */
int fmt_pubkey_equal(EVP_PKEY *a, EVP_PKEY *b);
/* 1 if key is a named-curve P-256 key whose point is exactly point (what
 * fmt_pubkey_from_point(point) would give), 0 otherwise. A key that
 * OpenSSL decoded from a SubjectPublicKeyInfo had its point checked on the
 * curve then; this only compares, with no second check. */
int fmt_pubkey_is_point(EVP_PKEY *key, const uint8_t point[65]);
/* Key identifier: SHA-1 of the subjectPublicKey BIT STRING contents. */
imp_err fmt_pubkey_ski(EVP_PKEY *key, uint8_t ski[20]);

#endif
