/*
 * Signed identity and revocation records (docs/RECORD.md).
 *
 * A record is a JSON object whose canonical bytes are
 * json_dumps(JSON_COMPACT | JSON_SORT_KEYS); those bytes are the payload of
 * a JWS (formats/jws.h) signed by the organisation's record-signing key
 * ("typ": FMT_RECORD_TYP) or revocation key ("typ": FMT_REVOCATION_TYP).
 */
#ifndef FORMATS_RECORD_H
#define FORMATS_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "imprint/err.h"
#include "formats/signer.h"

struct fmt_jws_header; /* formats/jws.h */

#define FMT_RECORD_VERSION 1 /* persisted: "record_version" */
#define FMT_RECORD_TYP "imprint-record+jws"         /* persisted: JWS "typ" */
#define FMT_REVOCATION_TYP "imprint-revocation+jws" /* persisted: JWS "typ" */

enum fmt_key_mode {
	FMT_KEY_MODE_DEVICE = 0, /* "device": key generated on the board */
	FMT_KEY_MODE_HSM = 1,    /* "hsm": generated in the HSM, injected wrapped */
	FMT_KEY_MODE_PSK = 2,    /* "psk": AES PSK diversified from an HSM master */
};

/* "device" / "hsm" / "psk"; never NULL. */
const char *fmt_key_mode_name(enum fmt_key_mode m);
/* Parse a key mode name; IMP_ERR_USAGE if unknown. */
imp_err fmt_key_mode_parse(const char *s, enum fmt_key_mode *m);

/* Everything an identity record says. All pointers borrowed. */
struct fmt_record {
	const char *record_id;      /* NULL = hex(sha256(serial "|" hex(chip_uid))) */
	const char *serial;         /* required */
	const uint8_t *chip_uid;    /* required, 1..64 bytes; written as hex */
	size_t chip_uid_len;
	const char *sku;            /* required */
	enum fmt_key_mode key_mode;
	EVP_PKEY *public_key;       /* device/hsm: required (written as JWK); psk: NULL */
	const uint8_t *kcv;         /* psk: key check value, 1..16 bytes; else NULL */
	size_t kcv_len;
	X509 *device_certificate;   /* device/hsm: this or its DER below, which must
				       certify public_key */
	const uint8_t *device_certificate_der; /* the same as DER (instead of the */
	size_t device_certificate_der_len;     /*   X509: nothing parsed again) */
	const uint8_t *firmware_sha256; /* 32 bytes, or NULL if no image programmed */
	/* Matter factory data (docs/MATTER.md): NULL = omitted. The record
	 * carries the IDs, the discriminator and a digest of the SPAKE2+
	 * verifier; never the passcode, never the verifier itself. */
	const struct fmt_record_matter {
		uint16_t vendor_id;
		uint16_t product_id;
		uint16_t discriminator;
		const uint8_t *verifier_sha256; /* 32 bytes */
	} *matter;
	struct {
		bool debug_locked;
		bool boot_locked;
		const char *lifecycle;   /* chip lifecycle state name, required */
		const char *verified_at; /* RFC 3339; NULL = issued_at */
	} lock_state;
	const char *station_id;     /* required */
	const char *fixture;        /* required */
	const char *operator_name;  /* NULL = omitted */
	const char *issued_at;      /* RFC 3339; NULL = now */
	struct {
		uint64_t seq;            /* journal sequence number of the event */
		const char *prev_hash;   /* hex SHA-256 of the previous event */
		const char *event_hash;  /* hex SHA-256 of this event */
	} journal;                  /* journal hashes required */
};

/*
 * Build the identity record object. *out is a new reference (json_decref).
 * IMP_ERR_USAGE if a required field is missing or inconsistent (e.g. a
 * certificate that does not certify public_key).
 */
imp_err fmt_record_build(const struct fmt_record *r, json_t **out);

/* A revocation record. All pointers borrowed. */
struct fmt_revocation {
	const char *serial;     /* required: the device serial revoked */
	const char *record_id;  /* the identity record's id; NULL = omitted */
	const char *reason;     /* required: "key-compromise", "decommissioned", ... */
	const char *revoked_at; /* RFC 3339; NULL = now */
	const char *station_id; /* NULL = omitted */
	const char *operator_name; /* NULL = omitted */
};

/* Build the revocation record ("type": "revocation"). *out new reference. */
imp_err fmt_revocation_build(const struct fmt_revocation *r, json_t **out);

/*
 * Canonical bytes of a record: json_dumps(JSON_COMPACT | JSON_SORT_KEYS).
 * *out malloc'ed NUL-terminated (free), *n its length.
 */
imp_err fmt_record_canonical(const json_t *obj, char **out, size_t *n);

/*
 * Sign a record (identity or revocation, chosen from its "type") as JWS with
 * s; x5c is the signer's chain, leaf first (x5c_count may be 0).
 * *jws malloc'ed (free).
 */
imp_err fmt_record_sign(const json_t *obj, const struct fmt_signer *s,
			X509 *const *x5c, size_t x5c_count, char **jws);

/*
 * The same in two halves, for many records of one signer (a run): the JWS
 * header of records of `type` ("identity" or "revocation") signed by the
 * key signer_pub with chain x5c, made once (fmt_jws_header_free), and then
 * each record signed under it, with the same output as fmt_record_sign.
 * IMP_ERR_USAGE if the record's type is not the header's or s->pub is not
 * signer_pub.
 */
imp_err fmt_record_header_new(EVP_PKEY *signer_pub, const char *type,
			      X509 *const *x5c, size_t x5c_count,
			      struct fmt_jws_header **out);
imp_err fmt_record_sign_with(const json_t *obj, const struct fmt_jws_header *h,
			     const struct fmt_signer *s, char **jws);

/*
 * Verify a signed identity record (typ FMT_RECORD_TYP) and return the parsed
 * object (*out new reference). Exactly one of pub (pin the record-signing
 * key: recommended) and trust (validate the JWS x5c chain; the leaf must
 * have digitalSignature, no extKeyUsage and not be a CA) is non-NULL.
 * Beyond the signature it checks: the payload is in canonical form,
 * record_version is 1, every required member has its type, and the public
 * key and the device certificate agree with each other and with
 * device_certificate_sha256. IMP_ERR_VERIFY / IMP_ERR_PROTOCOL.
 */
imp_err fmt_record_verify(const char *jws, EVP_PKEY *pub, X509_STORE *trust,
			  json_t **out);

/* Same for a revocation record (typ FMT_REVOCATION_TYP). */
imp_err fmt_revocation_verify(const char *jws, EVP_PKEY *pub, X509_STORE *trust,
			      json_t **out);

#endif
