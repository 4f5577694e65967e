/*
 * The identity-record verifier (docs/RECORD.md "Verifying a record"), used
 * by the audit and the registry: "the record verifies, then its device
 * certificate chains", in two implementations that give the same answer.
 *
 * The reference, fmt_record_verify_full(): fmt_record_verify() (JWS,
 * canonical payload, members, key/certificate agreement), then the
 * record's id, then fmt_cert_verify_chain() of the device certificate. It
 * decides every record and says at which stage one failed.
 *
 * The fast path, fmt_rv_identity(): with OpenSSL 3 most of the reference's
 * cost is decoding (d2i of the device certificate and its key, an EVP_PKEY
 * from the JWK, per-call provider fetches), not the two ECDSA
 * verifications. This path keeps the issuing keys decoded (one
 * EVP_PKEY_CTX per thread, set up once), reads the payload in one pass that
 * takes only bytes already in canonical form, checks the members against
 * the same members table as the reference, reads the device certificate in
 * place (fmt_cert_view_leaf), compares the JWK with the certified point
 * byte for byte, and hashes with a pre-fetched SHA-256.
 *
 * The fast path is a filter, never a judge of failure: it returns IMP_OK
 * only for a record the reference accepts, with the same facts; anything
 * else (an unusual but maybe valid certificate included) is IMP_ERR_VERIFY,
 * "not decided here", and the caller runs the reference, which decides and
 * says why. tests/unit/formats/test_record_verify.c holds both to that over
 * a corpus of valid records and systematic mutations.
 */
#ifndef FORMATS_RECORD_VERIFY_H
#define FORMATS_RECORD_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "formats/x509.h"
#include "imprint/err.h"

/* What a verified identity record says (NUL-terminated; "" if absent). */
struct fmt_record_facts {
	char record_id[80];
	char serial[80];
	char uid[140];          /* chip_uid, hex */
	char pubkey[100];       /* the JWK's "x.y"; "" for psk */
	char cert_serial[48];   /* the device certificate's serial in uppercase hex
				   (as BN_bn2hex); "" for psk */
	char cert_sha256[65];   /* its SHA-256, lowercase hex; "" for psk */
	uint8_t jws_sha256[32]; /* SHA-256 of the whole compact JWS */
	unsigned signatures;    /* ECDSA signatures verified (JWS, device certificate) */
	int64_t cert_not_after; /* the device certificate's notAfter, Unix time, by the
				   reference path only (the fast path leaves a certificate
				   that outlives its CA to it); 0 otherwise */
};

/* What the reference checks a record against. */
struct fmt_record_anchors {
	EVP_PKEY *signer;     /* pin the record-signing key (the audit), or NULL */
	X509_STORE *signers;  /* else validate the JWS x5c chain against this (the
				 registry); exactly one of the two is set */
	X509_STORE *devices;  /* the device certificate must chain to this, with
				 the keyUsage bits FMT_RV_DEVICE_KU_DEFAULT (or
				 those given to fmt_record_verify_full_ku) */
};

/* What the default device profile's certificates carry. */
#define FMT_RV_DEVICE_KU_DEFAULT (FMT_KU_DIGITAL_SIGNATURE | FMT_KU_KEY_AGREEMENT)

/* Where the reference refused a record. */
enum fmt_record_stage {
	FMT_RECORD_STAGE_OK = 0,
	FMT_RECORD_STAGE_RECORD, /* fmt_record_verify refused it: signature, content */
	FMT_RECORD_STAGE_ID,     /* its record_id is not expect_id */
	FMT_RECORD_STAGE_CHAIN,  /* its device certificate does not chain */
};

/*
 * The reference. expect_id: the id the record was stored or sent under, or
 * NULL. *out is filled as far as the record got (record_id, serial and uid
 * once the record verified); *stage says where it stopped. IMP_OK, or the
 * error of the stage that failed (IMP_ERR_VERIFY, IMP_ERR_PROTOCOL, ...).
 */
imp_err fmt_record_verify_full(const char *jws, const struct fmt_record_anchors *a,
			       const char *expect_id, struct fmt_record_facts *out,
			       enum fmt_record_stage *stage);
/*
 * The same with the keyUsage bits (FMT_KU_*; 0 = the default) that the
 * device certificate must carry: what the hierarchy's device profile gives
 * them (fmt_certprof_trust_ku, formats/certprofile.h).
 */
imp_err fmt_record_verify_full_ku(const char *jws, const struct fmt_record_anchors *a,
				  unsigned device_ku, const char *expect_id,
				  struct fmt_record_facts *out, enum fmt_record_stage *stage);

/* Trust of the fast path, shared read-only by every thread. */
struct fmt_rv_trust;

/*
 * New trust: signer is the record-signing key (borrowed, up-ref'ed). If
 * signer_x5c0 is not NULL (the base64 DER of the signer's certificate, as in
 * a JWS "x5c"), records must carry x5c = [signer_x5c0, ...] where every
 * later element is one allowed by fmt_rv_trust_allow_x5c (the registry's
 * mode: the caller verified the signer's certificate once against its store,
 * which holds the allowed ones, so they cannot change that verdict); if NULL
 * the key is pinned and "x5c" is not looked at (the audit's mode). cas are
 * the device CAs; a CA that is not a CA with keyCertSign and a
 * subjectKeyIdentifier, or that constrains its leaves (names, policies), is
 * left out. chain: if not NULL, each CA must verify against it (else it is
 * left out) and its validity window becomes the intersection of the windows
 * of its whole chain (the registry, whose reference builds the chain up to
 * the root); if NULL the CAs are anchors (the audit,
 * X509_V_FLAG_PARTIAL_CHAIN). *out new (fmt_rv_trust_free).
 */
imp_err fmt_rv_trust_new(EVP_PKEY *signer, const char *signer_x5c0, X509 *const *cas,
			 size_t ncas, X509_STORE *chain, struct fmt_rv_trust **out);
void fmt_rv_trust_free(struct fmt_rv_trust *t);
/* The keyUsage the device certificates must carry (0: the default). */
void fmt_rv_trust_set_device_ku(struct fmt_rv_trust *t, unsigned ku);

/* Allow the certificate b64 (base64 DER, as in x5c) after x5c[0] (at most 16). */
imp_err fmt_rv_trust_allow_x5c(struct fmt_rv_trust *t, const char *b64);

/* Per-thread verifier (pre-initialised contexts). *out new (fmt_rv_free). */
struct fmt_rv;
imp_err fmt_rv_new(const struct fmt_rv_trust *t, struct fmt_rv **out);
void fmt_rv_free(struct fmt_rv *v);

/* SHA-256 of data with this thread's pre-fetched digest; 1 on success. */
int fmt_rv_sha256(struct fmt_rv *v, const void *data, size_t n, uint8_t md[32]);

/*
 * The fast path. IMP_OK: the reference accepts jws (with expect_id, if not
 * NULL) and *out holds exactly the facts it would give. IMP_ERR_VERIFY:
 * not decided here, ask fmt_record_verify_full (*out zeroed).
 */
imp_err fmt_rv_identity(struct fmt_rv *v, const char *jws, const char *expect_id,
			struct fmt_record_facts *out);

#endif
