/*
 * Certificate profiles as data (docs/CERTIFICATES.md): one JSON file per
 * profile, "format": "imprint-certprofile/1", in certprofiles/. A profile
 * says what one kind of certificate holds: its role, its issuer's profile,
 * the subject (attributes by name or dotted OID, with value templates),
 * serial-number length, validity, basicConstraints, keyUsage,
 * extKeyUsage, the key identifiers, subjectAltName (dNSName, URI,
 * otherName including RFC 4108 hardwareModuleName), CRL distribution
 * points and authorityInfoAccess.
 *
 * A profile set is what one station needs: the device profile named by
 * the configuration (certificate.profile), the device CA profile it names
 * as issuer, the root profile that one names, and the record-signing,
 * code-signing and revocation profiles the root names (or the shipped
 * default-* ones). The set is checked as a whole when it is loaded: a
 * certificate that would certainly end after its issuer (a fixed
 * 99991231235959Z under a CA with a lifetime in days, or more days than
 * the issuer's) is refused there; at issuance notAfter is capped at the
 * issuer's, so no certificate ever outlives its issuer.
 *
 * Errors name the profile, its file and the JSON path of the field:
 *   certificate profile 'matter-dac' (/usr/share/.../matter-dac.json):
 *   basic_constraints.path_len: not allowed when ca is false
 */
#ifndef FORMATS_CERTPROFILE_H
#define FORMATS_CERTPROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "formats/signer.h"
#include "formats/x509.h"
#include "imprint/err.h"

#define FMT_CERTPROF_FORMAT "imprint-certprofile/1" /* persisted: "format" */
#define FMT_CERTPROF_DEFAULT "default"              /* the device profile by default */
#define FMT_CERTPROF_TRUST_FILE "certprofile.json"  /* persisted: DATA/trust/<file> */

/* The role of a certificate; the first five are hsm_org_role's (hsm/org.h). */
enum fmt_certprof_role {
	FMT_CP_ROOT = 0,
	FMT_CP_DEVICE_CA = 1,
	FMT_CP_RECORD_SIGNING = 2,
	FMT_CP_CODE_SIGNING = 3,
	FMT_CP_REVOCATION = 4,
	FMT_CP_DEVICE = 5,
	FMT_CP_ROLE_COUNT
};

/* "root", "device-ca", ... (persisted: a profile's "role"). */
const char *fmt_certprof_role_name(enum fmt_certprof_role role);

struct fmt_certprof; /* one loaded profile (opaque) */

/*
 * The values of the templates {serial}, {uid}, {sku}, {vid}, {pid}, {org}
 * and {country}. NULL expands to "". All borrowed.
 */
struct fmt_certprof_vars {
	const char *serial;
	const char *uid;     /* hex of the chip's unique ID */
	const char *sku;
	const char *vid;     /* 4 uppercase hex digits (matter.vendor_id) */
	const char *pid;     /* 4 uppercase hex digits (matter.product_id) */
	const char *org;     /* organisation.name */
	const char *country; /* organisation.country ("" = none) */
};

/* What the set takes from the station configuration. All borrowed. */
struct fmt_certprof_settings {
	const char *config_dir;       /* also searched: CONFIG_DIR/certprofiles */
	unsigned device_days;         /* certificate.validity_days */
	unsigned root_days;           /* organisation.root_validity_days */
	unsigned ca_days;             /* organisation.ca_validity_days */
	bool subject_configured;      /* certificate.subject is in the file */
	bool has_vid, has_pid;        /* matter.vendor_id / product_id are set */
};

struct fmt_certprof_set {
	const struct fmt_certprof *role[FMT_CP_ROLE_COUNT]; /* owned by the set */
};

/*
 * Where a profile called name is: $IMPRINT_CERTPROFILE_PATH (':'
 * separated), CONFIG_DIR/certprofiles, the shipped ones (imprint/paths.h,
 * imp_data_dir "certprofiles": DATADIR/imprint/certprofiles beside the
 * installed binary, certprofiles/ of the source tree for a program in its
 * build tree). A name holding '/' or ending in
 * ".json" is a path. IMP_ERR_NOT_FOUND (logged with the places looked in),
 * IMP_ERR_CONFIG for a name with other characters than [A-Za-z0-9._-].
 */
imp_err fmt_certprof_find(const char *name, const char *config_dir, char *out, size_t cap);

/*
 * Load the set for the device profile device_name with the settings s.
 * On failure err (cap bytes) holds the message (profile, file, JSON path,
 * what is expected) and IMP_ERR_CONFIG, IMP_ERR_NOT_FOUND or
 * IMP_ERR_NOMEM is returned. *out new (fmt_certprof_set_free).
 */
imp_err fmt_certprof_set_load(const char *device_name, const struct fmt_certprof_settings *s,
			      struct fmt_certprof_set **out, char *err, size_t cap);
void fmt_certprof_set_free(struct fmt_certprof_set *set);

/*
 * Load one profile file (not checked against an issuer). For tests and
 * tools; *out new (fmt_certprof_free).
 */
imp_err fmt_certprof_load_file(const char *path, const struct fmt_certprof_settings *s,
			       struct fmt_certprof **out, char *err, size_t cap);
void fmt_certprof_free(struct fmt_certprof *p);

const char *fmt_certprof_name(const struct fmt_certprof *p);
enum fmt_certprof_role fmt_certprof_role(const struct fmt_certprof *p);
/* Its keyUsage bits (FMT_KU_*). */
unsigned fmt_certprof_key_usage(const struct fmt_certprof *p);
/* true if the profile has its own subject (else: certificate.subject). */
bool fmt_certprof_has_subject(const struct fmt_certprof *p);

/* The template of the profile's first subject attribute attr ("CN"), or NULL. */
const char *fmt_certprof_attr_template(const struct fmt_certprof *p, const char *attr);

/*
 * The profile's subject for vars: each template expanded, an "optional"
 * attribute that expands to "" left out. *out malloc'ed, free with
 * fmt_name_entries_free (formats/config.h). IMP_ERR_USAGE if the profile
 * has no subject of its own, or a required attribute expands to "".
 */
imp_err fmt_certprof_subject(const struct fmt_certprof *p, const struct fmt_certprof_vars *v,
			     struct fmt_name_entry **out, size_t *n);

/* What to certify with a profile. All pointers borrowed. */
struct fmt_certprof_request {
	const struct fmt_certprof *profile;
	const struct fmt_name_entry *subject; /* expanded (fmt_certprof_subject or the
						 configuration's), at least one */
	size_t subject_count;
	const struct fmt_certprof_vars *vars; /* for subjectAltName */
	EVP_PKEY *subject_key;  /* EC P-256; for a root, the signer's key */
	X509 *issuer;           /* NULL for a root only */
	const uint8_t *serial;  /* NULL = random, of the profile's length */
	size_t serial_len;
	time_t not_before;      /* 0 = now - 5 minutes */
};

/*
 * Issue the certificate the profile describes, signed by signer (the
 * issuer's key), verified with the issuer's key before it is returned.
 * notAfter is capped at the issuer's. *out new (X509_free).
 * IMP_ERR_USAGE for a request the profile does not fit (a root with an
 * issuer, a template value an extension cannot carry), IMP_ERR_CRYPTO,
 * IMP_ERR_VERIFY, or the signer's error.
 */
imp_err fmt_certprof_issue(const struct fmt_certprof_request *req,
			   const struct fmt_signer *signer, X509 **out);

/*
 * The same certificate as DER only: *der (malloc'ed, free) of *der_len
 * bytes. The signer's signature is verified with the issuer's key over the
 * digest it signed, as for fmt_certprof_issue; what is saved is OpenSSL
 * parsing the DER back (its subject key decoder most of all), for a caller
 * that needs only the bytes (the provisioner: the journal, the board and
 * the record take DER).
 */
imp_err fmt_certprof_issue_der(const struct fmt_certprof_request *req,
			       const struct fmt_signer *signer, uint8_t **der, size_t *der_len);

/*
 * The trust folder's note of the device profile (FMT_CERTPROF_TRUST_FILE,
 * written by `hsm init`): {"profile": NAME, "key_usage": [...]}, so that
 * the audit and the registry know which keyUsage a device certificate of
 * this hierarchy carries. fmt_certprof_trust_ku: *ku from the file, or
 * FMT_KU_DIGITAL_SIGNATURE | FMT_KU_KEY_AGREEMENT (the default profile)
 * without one; IMP_ERR_PROTOCOL for a file that is not such a note.
 */
imp_err fmt_certprof_trust_write(const char *trust_dir, const struct fmt_certprof *device);
imp_err fmt_certprof_trust_ku(const char *trust_dir, unsigned *ku);
/* The profile name in the note; "" without one. */
imp_err fmt_certprof_trust_name(const char *trust_dir, char *name, size_t cap);

#endif
