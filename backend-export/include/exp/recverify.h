/*
 * Fast verification of identity records, for the audit and imprint-registry.
 *
 * fmt_record_verify() followed by fmt_cert_verify_chain() on the device
 * certificate is the reference; with OpenSSL 3 most of its cost is decoding
 * (d2i of the device certificate and its public key, an EVP_PKEY from the
 * JWK, per-call provider fetches), not the two ECDSA verifications. This
 * path keeps the issuing keys decoded (one EVP_PKEY_CTX per thread, set up
 * once), reads the device certificate with a strict DER walker instead of
 * d2i, compares the JWK with the certified point byte for byte, and hashes
 * with a pre-fetched SHA-256.
 *
 * It is a filter, never a judge of failure: exp_rv_identity() returns IMP_OK
 * only for a record the reference path accepts (same JWS and header rules,
 * canonical payload, member types, key/certificate agreement, certificate
 * signed by a configured CA, issuer name equal to the CA's subject,
 * authorityKeyIdentifier equal to the CA's subjectKeyIdentifier, validity of
 * certificate and CA, keyUsage digitalSignature + keyAgreement, not a CA, no
 * extension it does not know). Anything else, an unusual but maybe valid
 * certificate included, returns IMP_ERR_VERIFY and the caller runs the
 * reference path, which decides and says why.
 */
#ifndef EXP_RECVERIFY_H
#define EXP_RECVERIFY_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "imprint/err.h"

/* Trust, shared read-only by every thread. */
struct exp_rv_trust;

/*
 * New trust: signer is the record-signing key (borrowed, up-ref'ed). If
 * signer_x5c0 is not NULL (the base64 DER of the signer's certificate, as in
 * a JWS "x5c"), records must carry x5c = [signer_x5c0, ...] where every
 * later element is one allowed by exp_rv_trust_allow_x5c (the registry's
 * mode: the caller verified the signer's certificate once against its store,
 * which holds the allowed ones, so they cannot change that verdict); if NULL the
 * key is pinned and "x5c" is not looked at (the audit's mode). cas are the
 * device CAs; a CA that is not a CA with keyCertSign and a
 * subjectKeyIdentifier is left out. chain: if not NULL, each CA must verify
 * against it (else it is left out) and its validity window becomes the
 * intersection of the windows of its whole chain (the registry, whose
 * reference path builds the chain up to the root); if NULL the CAs are
 * anchors (the audit, X509_V_FLAG_PARTIAL_CHAIN). *out new
 * (exp_rv_trust_free).
 */
imp_err exp_rv_trust_new(EVP_PKEY *signer, const char *signer_x5c0, X509 *const *cas,
			 size_t ncas, X509_STORE *chain, struct exp_rv_trust **out);
void exp_rv_trust_free(struct exp_rv_trust *t);

/* Allow the certificate b64 (base64 DER, as in x5c) after x5c[0] (at most 16). */
imp_err exp_rv_trust_allow_x5c(struct exp_rv_trust *t, const char *b64);

/* Per-thread verifier (pre-initialised contexts). *out new (exp_rv_free). */
struct exp_rv;
imp_err exp_rv_new(const struct exp_rv_trust *t, struct exp_rv **out);
void exp_rv_free(struct exp_rv *v);

/* SHA-256 of data with this thread's pre-fetched digest; 1 on success. */
int exp_rv_sha256(struct exp_rv *v, const void *data, size_t n, uint8_t md[32]);

/* What a verified identity record says (NUL-terminated, "" if absent). */
struct exp_rv_out {
	char record_id[80];
	char serial[80];
	char uid[140];
	char pubkey[100];      /* JWK "x.y", "" for psk */
	char cert_serial[48];  /* uppercase hex like BN_bn2hex, "" for psk */
	char cert_sha256[65];
	uint8_t jws_sha256[32]; /* SHA-256 of the whole compact JWS */
};

/*
 * Verify one identity record (see above). IMP_OK: verified, out filled.
 * IMP_ERR_VERIFY: not decided here, use the reference path.
 */
imp_err exp_rv_identity(struct exp_rv *v, const char *jws, struct exp_rv_out *out);

#endif
