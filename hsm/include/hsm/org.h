/*
 * The organisation's root of trust, kept in the HSM (GSMA CLP.13 6.5: one
 * key per role, all under one root).
 *
 * | role           | token label              | key          | certificate            |
 * | root CA        | imprint-root-ca          | EC P-256     | self-signed, pathlen 1 |
 * | device CA      | imprint-device-ca        | EC P-256     | by root, pathlen 0     |
 * | record signing | imprint-record-signing   | EC P-256     | by root, end entity    |
 * | code signing   | imprint-code-signing     | EC P-256     | by root, codeSigning   |
 * | revocation     | imprint-revocation       | EC P-256     | by root, end entity    |
 * | PSK master     | imprint-psk-master       | AES-256      | -                      |
 *
 * The PSK master exists only where key mode psk is used: `hsm init` creates
 * it when psk is configured or asked for (HSM_ORG_INIT_PSK_MASTER), and can
 * add it to an existing hierarchy; nothing else requires it.
 *
 * Every key is a token object, CKA_SENSITIVE and never extractable. The
 * labels and the certificate file names are PERSISTED: never change them.
 * Certificates are stored on the token (CKO_CERTIFICATE, same label) and
 * written to DATA/trust/<file>.pem; DATA/trust/bundle.pem holds all five.
 */
#ifndef HSM_ORG_H
#define HSM_ORG_H

#include <stdbool.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "formats/certprofile.h"
#include "formats/signer.h"
#include "hsm/hsm.h"

enum hsm_org_role {
	HSM_ORG_ROOT = 0,
	HSM_ORG_DEVICE_CA = 1,
	HSM_ORG_RECORD = 2,
	HSM_ORG_CODE = 3,
	HSM_ORG_REVOCATION = 4,
	HSM_ORG_ROLE_COUNT
};

#define HSM_ORG_PSK_LABEL "imprint-psk-master" /* persisted */
#define HSM_ORG_BUNDLE_FILE "bundle.pem"       /* persisted */

/* Token label of a role's key and certificate ("imprint-root-ca"). */
const char *hsm_org_label(enum hsm_org_role role);
/* File name of a role's certificate under DATA/trust ("root-ca.pem"). */
const char *hsm_org_file(enum hsm_org_role role);

/* Names and lifetimes for `hsm init`, from the configuration. */
struct hsm_org_names {
	const char *organisation;   /* O= of every certificate */
	const char *country;        /* C=, "" or NULL: omitted */
	unsigned root_validity_days;
	unsigned ca_validity_days;  /* every certificate under the root */
	/* The certificate profiles of the hierarchy (formats/certprofile.h;
	 * role r of the set makes role r here), with the template values for
	 * their subjects (vid, pid, org, country). NULL: the fixed roles of
	 * formats/x509.h with the names and lifetimes above. */
	const struct fmt_certprof_set *profiles;
	const struct fmt_certprof_vars *vars;
};

enum hsm_org_init_flag {
	HSM_ORG_INIT_FORCE = 1u << 0,      /* destroy an existing hierarchy first */
	HSM_ORG_INIT_PSK_MASTER = 1u << 1, /* also the AES-256 PSK master */
	HSM_ORG_INIT_KEEP = 1u << 2,       /* the caller would refuse FORCE (and
					    * says why): an existing hierarchy's
					    * refusal does not suggest it */
};

/*
 * Create the hierarchy on the token of s and write its certificates to
 * trust_dir (created, mode 0755), and with profiles the note of the device
 * profile (FMT_CERTPROF_TRUST_FILE) that the audit and the registry read. If any object with one of the labels
 * above exists, nothing is changed and IMP_ERR_EXISTS is returned, unless
 * HSM_ORG_INIT_FORCE is set: then every such object is destroyed first.
 * The refusal's message suggests --force unless HSM_ORG_INIT_KEEP is set.
 * One exception: with HSM_ORG_INIT_PSK_MASTER, a complete hierarchy that
 * lacks only the PSK master gets it added (and nothing else changes).
 * A failed init destroys what it created, so a retry needs no --force.
 */
imp_err hsm_org_init(struct hsm_session *s, const struct hsm_org_names *names,
		     unsigned flags, const char *trust_dir);

/* Handles and certificates of a loaded hierarchy. */
struct hsm_org {
	hsm_obj key[HSM_ORG_ROLE_COUNT];   /* private keys */
	X509 *cert[HSM_ORG_ROLE_COUNT];    /* owned */
	hsm_obj psk_master;                /* HSM_OBJ_NONE if the token has none */
	/* hsm_org_session_keys: the session holding the copies (NULL: none),
	 * and the token objects that key[] and psk_master then replace
	 * (HSM_OBJ_NONE where no copy was made). */
	struct hsm_session *copies;
	hsm_obj token_key[HSM_ORG_ROLE_COUNT];
	hsm_obj token_psk_master;
};

/*
 * Find every key and certificate of the hierarchy on the token of s, and
 * the PSK master if there is one. IMP_ERR_NOT_FOUND (with the missing
 * label logged, and "run imprint hsm init") if a role is missing. Release
 * with hsm_org_release.
 */
imp_err hsm_org_load(struct hsm_session *s, struct hsm_org *org);

/*
 * For a run that signs per board: the keys used at every board (device CA,
 * record signing, the PSK master) are replaced in org by session copies in
 * s (hsm_key_session_copy: still sensitive and never extractable), each
 * where the token makes one; where it does not, the token object stays.
 * s must stay open until hsm_org_release, which destroys the copies.
 * Fails only on a token error other than a refused copy.
 */
imp_err hsm_org_session_keys(struct hsm_session *s, struct hsm_org *org);

/* Certificates freed, session copies destroyed (their session still open). */
void hsm_org_release(struct hsm_org *org);

/*
 * Can this token, with this loaded hierarchy, provision in `mode`? The
 * token's capabilities (hsm_mode_check: IMP_ERR_UNSUPPORTED, exit 24) and,
 * for psk, the PSK master (IMP_ERR_NOT_FOUND, "run imprint hsm init
 * --psk-master"). Every command that provisions calls this before it
 * touches a board or allocates a serial.
 */
imp_err hsm_org_ready(struct hsm *h, const struct hsm_org *org, enum hsm_mode mode);

/* A signer bound to one private key in one session. */
struct hsm_key_signer {
	struct hsm_session *session;
	hsm_obj key;
};

/*
 * Fill *out so that it signs with ks's key (ks must outlive out); pub is
 * the matching public key (borrowed, e.g. X509_get0_pubkey of its cert).
 */
void hsm_signer_init(struct hsm_key_signer *ks, struct hsm_session *s, hsm_obj key,
		     EVP_PKEY *pub, struct fmt_signer *out);

/*
 * Check and describe the hierarchy: for every private and secret key on the
 * token, whether it is sensitive and never extractable; for every role, its
 * certificate's subject, SHA-256 fingerprint and expiry. *report is a new
 * JSON object ({"token":{...},"keys":[...],"certificates":[...],"ok":bool}).
 * The report also has "key_modes": {"device": {"ok": bool, "missing": str},
 * "hsm": ..., "psk": ...} (psk also needs the PSK master).
 * Returns IMP_ERR_INSECURE if a private or secret key could leave the HSM,
 * IMP_ERR_NOT_FOUND if a role is missing, IMP_OK otherwise; *report is set
 * in all three cases.
 */
imp_err hsm_org_status(struct hsm *h, struct hsm_session *s, json_t **report);

/* The PEM bundle (all role certificates, root first) as a malloc'ed string. */
imp_err hsm_org_bundle_pem(const struct hsm_org *org, char **pem);

#endif
