#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "formats/base64.h"
#include "formats/jws.h"
#include "formats/record.h"
#include "formats/x509.h"
#include "imprint/log.h"
#include "imprint/util.h"
#include "record_int.h"

#define RECORD_UID_MAX 64u
#define RECORD_KCV_MAX 16u

const char *fmt_key_mode_name(enum fmt_key_mode m)
{
	switch (m) {
	case FMT_KEY_MODE_DEVICE:
		return "device";
	case FMT_KEY_MODE_HSM:
		return "hsm";
	case FMT_KEY_MODE_PSK:
		return "psk";
	}
	return "unknown";
}

imp_err fmt_key_mode_parse(const char *s, enum fmt_key_mode *m)
{
	if (!s)
		return IMP_ERR_USAGE;
	if (strcmp(s, "device") == 0)
		*m = FMT_KEY_MODE_DEVICE;
	else if (strcmp(s, "hsm") == 0)
		*m = FMT_KEY_MODE_HSM;
	else if (strcmp(s, "psk") == 0)
		*m = FMT_KEY_MODE_PSK;
	else
		return IMP_ERR_USAGE;
	return IMP_OK;
}

/* Set obj[key] to a new value; 0 on success. A NULL value is an error. */
static int set(json_t *obj, const char *key, json_t *v)
{
	return v ? json_object_set_new(obj, key, v) : -1;
}

static json_t *hex_string(const uint8_t *bin, size_t n)
{
	char *hex = malloc(2 * n + 1);
	json_t *s;

	if (!hex)
		return NULL;
	imp_hex_encode(bin, n, hex);
	s = json_string(hex);
	free(hex);
	return s;
}

static bool is_hex(const char *s, size_t want_len)
{
	return s && fmt_is_lower_hex(s, strlen(s), want_len);
}

static imp_err check_members(const json_t *obj, const struct fmt_member_table *t);

/*
 * What the writer built, read back against the members table: a record this
 * code writes is one its readers take (a bug otherwise).
 */
static imp_err self_check(const json_t *o, const struct fmt_member_table *t)
{
	if (check_members(o, t) != IMP_OK) {
		IMP_ERROR("record: the record built does not match its members table");
		return IMP_ERR_INTERNAL;
	}
	return IMP_OK;
}

static int nonempty(const char *s)
{
	return s && s[0];
}

/* Checks the input; for device and hsm modes point receives the public
 * key's point (read once: it is also the record's JWK). */
static imp_err record_check_input(const struct fmt_record *r, uint8_t point[65])
{
	if (!nonempty(r->serial) || !r->chip_uid || r->chip_uid_len == 0 ||
	    r->chip_uid_len > RECORD_UID_MAX || !nonempty(r->sku) ||
	    !nonempty(r->lock_state.lifecycle) || !nonempty(r->station_id) ||
	    !nonempty(r->fixture)) {
		IMP_ERROR("record: serial, chip_uid, sku, lifecycle, station and fixture "
			  "are required");
		return IMP_ERR_USAGE;
	}
	if (!is_hex(r->journal.prev_hash, 64) || !is_hex(r->journal.event_hash, 64) ||
	    r->journal.seq > INT64_MAX) {
		IMP_ERROR("record: the journal reference needs two lowercase hex SHA-256");
		return IMP_ERR_USAGE;
	}
	if ((unsigned)r->key_mode > FMT_KEY_MODE_PSK)
		return IMP_ERR_USAGE;
	if (r->key_mode == FMT_KEY_MODE_PSK) {
		if (r->public_key || r->device_certificate || r->device_certificate_der ||
		    !r->kcv || r->kcv_len == 0 ||
		    r->kcv_len > RECORD_KCV_MAX) {
			IMP_ERROR("record: key mode psk takes a kcv and no public key or "
				  "certificate");
			return IMP_ERR_USAGE;
		}
		return IMP_OK;
	}
	if (!r->public_key || !r->device_certificate == !r->device_certificate_der || r->kcv) {
		IMP_ERROR("record: key mode %s takes a public key and a certificate, no kcv",
			  fmt_key_mode_name(r->key_mode));
		return IMP_ERR_USAGE;
	}
	if (fmt_pubkey_to_point(r->public_key, point) != IMP_OK) {
		IMP_ERROR("record: the public key is not an EC P-256 key");
		return IMP_ERR_USAGE;
	}
	if (r->device_certificate_der) {
		uint8_t certified[65];

		if (fmt_cert_der_point(r->device_certificate_der, r->device_certificate_der_len,
				       certified) != IMP_OK ||
		    memcmp(point, certified, sizeof(certified)) != 0) {
			IMP_ERROR("record: the device certificate does not certify the public key");
			return IMP_ERR_USAGE;
		}
	} else if (!fmt_pubkey_equal(r->public_key, X509_get0_pubkey(r->device_certificate))) {
		IMP_ERROR("record: the device certificate does not certify the public key");
		return IMP_ERR_USAGE;
	}
	return IMP_OK;
}

static imp_err default_record_id(const struct fmt_record *r, char out[65])
{
	char uid[2 * RECORD_UID_MAX + 1];
	uint8_t digest[32];
	size_t ls = strlen(r->serial);
	size_t lu;
	char *buf;

	imp_hex_encode(r->chip_uid, r->chip_uid_len, uid);
	lu = strlen(uid);
	buf = malloc(ls + 1 + lu);
	if (!buf)
		return IMP_ERR_NOMEM;
	memcpy(buf, r->serial, ls);
	buf[ls] = '|';
	memcpy(buf + ls + 1, uid, lu);
	if (!SHA256((const uint8_t *)buf, ls + 1 + lu, digest)) {
		free(buf);
		return IMP_ERR_CRYPTO;
	}
	free(buf);
	imp_hex_encode(digest, sizeof(digest), out);
	return IMP_OK;
}

/* The record's device certificate as base64 of its DER, and the DER's
 * SHA-256. */
static imp_err cert_members(const struct fmt_record *r, json_t **b64_out, uint8_t digest[32])
{
	uint8_t *der = NULL;
	size_t n = r->device_certificate_der_len;
	char *b64;
	imp_err rc = IMP_OK;

	*b64_out = NULL;
	if (!r->device_certificate_der) {
		rc = fmt_cert_to_der(r->device_certificate, &der, &n);
		if (rc != IMP_OK)
			return rc;
	}
	b64 = fmt_b64_encode(der ? der : r->device_certificate_der, n);
	if (!b64 || !SHA256(der ? der : r->device_certificate_der, n, digest))
		rc = b64 ? IMP_ERR_CRYPTO : IMP_ERR_NOMEM;
	free(der);
	if (rc == IMP_OK) {
		*b64_out = json_string(b64);
		if (!*b64_out)
			rc = IMP_ERR_NOMEM;
	}
	free(b64);
	return rc;
}

imp_err fmt_record_build(const struct fmt_record *r, json_t **out)
{
	json_t *o = NULL;
	json_t *lock = NULL;
	json_t *jr = NULL;
	char id[65];
	char now[32];
	uint8_t point[65];
	const char *issued;
	imp_err rc;

	*out = NULL;
	rc = record_check_input(r, point);
	if (rc != IMP_OK)
		return rc;
	if (!r->record_id) {
		rc = default_record_id(r, id);
		if (rc != IMP_OK)
			return rc;
	}
	imp_rfc3339_now(now);
	issued = r->issued_at ? r->issued_at : now;
	rc = IMP_ERR_NOMEM;
	o = json_object();
	if (!o)
		goto cleanup;
	if (set(o, "type", json_string("identity")) ||
	    set(o, "record_version", json_integer(FMT_RECORD_VERSION)) ||
	    set(o, "record_id", json_string(r->record_id ? r->record_id : id)) ||
	    set(o, "serial", json_string(r->serial)) ||
	    set(o, "chip_uid", hex_string(r->chip_uid, r->chip_uid_len)) ||
	    set(o, "sku", json_string(r->sku)) ||
	    set(o, "key_mode", json_string(fmt_key_mode_name(r->key_mode))))
		goto cleanup;
	if (r->key_mode == FMT_KEY_MODE_PSK) {
		if (set(o, "kcv", hex_string(r->kcv, r->kcv_len)))
			goto cleanup;
	} else {
		uint8_t digest[32];
		json_t *b64 = NULL;

		if (cert_members(r, &b64, digest) != IMP_OK)
			goto cleanup;
		if (set(o, "device_certificate", b64) ||
		    set(o, "public_key", fmt_jwk_from_point(point)) ||
		    set(o, "device_certificate_sha256", hex_string(digest, 32)))
			goto cleanup;
	}
	if (r->firmware_sha256 &&
	    set(o, "firmware_sha256", hex_string(r->firmware_sha256, 32)))
		goto cleanup;
	if (r->matter &&
	    set(o, "matter", json_pack("{sI sI sI so}", "vendor_id", (json_int_t)r->matter->vendor_id,
				       "product_id", (json_int_t)r->matter->product_id,
				       "discriminator", (json_int_t)r->matter->discriminator,
				       "verifier_sha256",
				       hex_string(r->matter->verifier_sha256, 32))))
		goto cleanup;
	lock = json_pack("{sb sb ss ss}", "debug_locked", (int)r->lock_state.debug_locked,
			 "boot_locked", (int)r->lock_state.boot_locked, "lifecycle",
			 r->lock_state.lifecycle, "verified_at",
			 r->lock_state.verified_at ? r->lock_state.verified_at : issued);
	if (set(o, "lock_state", lock))
		goto cleanup;
	lock = NULL;
	if (set(o, "station_id", json_string(r->station_id)) ||
	    set(o, "fixture", json_string(r->fixture)) ||
	    set(o, "issued_at", json_string(issued)))
		goto cleanup;
	if (r->operator_name && set(o, "operator", json_string(r->operator_name)))
		goto cleanup;
	jr = json_pack("{sI ss ss}", "seq", (json_int_t)r->journal.seq, "prev_hash",
		       r->journal.prev_hash, "event_hash", r->journal.event_hash);
	if (set(o, "journal", jr))
		goto cleanup;
	rc = self_check(o, &fmt_identity_members);
	if (rc != IMP_OK)
		goto cleanup;
	*out = o;
	o = NULL;
	rc = IMP_OK;
cleanup:
	json_decref(o);
	return rc;
}

imp_err fmt_revocation_build(const struct fmt_revocation *r, json_t **out)
{
	json_t *o;
	char now[32];

	*out = NULL;
	if (!nonempty(r->serial) || !nonempty(r->reason)) {
		IMP_ERROR("revocation: serial and reason are required");
		return IMP_ERR_USAGE;
	}
	imp_rfc3339_now(now);
	o = json_pack("{ss sI ss ss ss}", "type", "revocation", "record_version",
		      (json_int_t)FMT_RECORD_VERSION, "serial", r->serial, "reason", r->reason,
		      "revoked_at", r->revoked_at ? r->revoked_at : now);
	if (!o)
		return IMP_ERR_NOMEM;
	if ((r->record_id && set(o, "record_id", json_string(r->record_id))) ||
	    (r->station_id && set(o, "station_id", json_string(r->station_id))) ||
	    (r->operator_name && set(o, "operator", json_string(r->operator_name)))) {
		json_decref(o);
		return IMP_ERR_NOMEM;
	}
	if (self_check(o, &fmt_revocation_members) != IMP_OK) {
		json_decref(o);
		return IMP_ERR_INTERNAL;
	}
	*out = o;
	return IMP_OK;
}

imp_err fmt_record_canonical(const json_t *obj, char **out, size_t *n)
{
	*out = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
	if (!*out) {
		*n = 0;
		return IMP_ERR_NOMEM;
	}
	*n = strlen(*out);
	return IMP_OK;
}

static const char *record_typ(const char *type)
{
	if (type && strcmp(type, "identity") == 0)
		return FMT_RECORD_TYP;
	if (type && strcmp(type, "revocation") == 0)
		return FMT_REVOCATION_TYP;
	return NULL;
}

imp_err fmt_record_header_new(EVP_PKEY *signer_pub, const char *type, X509 *const *x5c,
			      size_t x5c_count, struct fmt_jws_header **out)
{
	const char *typ = record_typ(type);
	char kid[44];
	imp_err rc;

	*out = NULL;
	if (!typ || !signer_pub)
		return IMP_ERR_USAGE;
	rc = fmt_jwk_thumbprint(signer_pub, kid);
	if (rc != IMP_OK)
		return rc;
	return fmt_jws_header_new(typ, kid, signer_pub, x5c, x5c_count, out);
}

imp_err fmt_record_sign_with(const json_t *obj, const struct fmt_jws_header *h,
			     const struct fmt_signer *s, char **jws)
{
	const char *typ = record_typ(json_string_value(json_object_get(obj, "type")));
	EVP_PKEY *pub = fmt_jws_header_pub(h);
	char *payload = NULL;
	size_t n = 0;
	imp_err rc;

	*jws = NULL;
	if (!typ || !s || !fmt_jws_header_typ(h) || strcmp(typ, fmt_jws_header_typ(h)) != 0)
		return IMP_ERR_USAGE;
	/* The header's kid names the signer's key: no other key signs under it. */
	if (!pub || (pub != s->pub && !fmt_pubkey_equal(pub, s->pub))) {
		IMP_ERROR("record: the signer's key is not the one the record header names");
		return IMP_ERR_USAGE;
	}
	rc = fmt_record_canonical(obj, &payload, &n);
	if (rc != IMP_OK)
		return rc;
	rc = fmt_jws_sign_with(h, s, payload, n, jws);
	free(payload);
	return rc;
}

imp_err fmt_record_sign(const json_t *obj, const struct fmt_signer *s, X509 *const *x5c,
			size_t x5c_count, char **jws)
{
	struct fmt_jws_header *h = NULL;
	imp_err rc;

	*jws = NULL;
	if (!s)
		return IMP_ERR_USAGE;
	rc = fmt_record_header_new(s->pub, json_string_value(json_object_get(obj, "type")), x5c,
				   x5c_count, &h);
	if (rc == IMP_OK)
		rc = fmt_record_sign_with(obj, h, s, jws);
	fmt_jws_header_free(h);
	return rc;
}

/* ---- verification ---- */

static bool kind_ok(const json_t *v, const struct fmt_member *m)
{
	switch (m->kind) {
	case FMT_MK_STR:
		return json_is_string(v) && json_string_length(v) > 0;
	case FMT_MK_HEX:
		return json_is_string(v) &&
		       fmt_is_lower_hex(json_string_value(v), json_string_length(v), 0);
	case FMT_MK_HEX64:
		return json_is_string(v) &&
		       fmt_is_lower_hex(json_string_value(v), json_string_length(v), 64);
	case FMT_MK_INT:
		return json_is_integer(v) && json_integer_value(v) >= 0;
	case FMT_MK_BOOL:
		return json_is_boolean(v);
	case FMT_MK_OBJ:
		return json_is_object(v);
	}
	return false;
}

/*
 * Every member of obj is in t with the right kind, the required ones are
 * there, and the same holds inside every member object t describes.
 */
static imp_err check_members(const json_t *obj, const struct fmt_member_table *t)
{
	const char *key;
	json_t *v;

	if (!json_is_object(obj)) {
		IMP_ERROR("record: %s: expected an object", t->where);
		return IMP_ERR_PROTOCOL;
	}
	json_object_foreach((json_t *)obj, key, v) {
		const struct fmt_member *m = fmt_member_find(t, key, strlen(key));

		if (!m) {
			IMP_ERROR("record: %s.%s: unknown member", t->where, key);
			return IMP_ERR_PROTOCOL;
		}
		if (!kind_ok(v, m)) {
			IMP_ERROR("record: %s.%s: wrong type", t->where, key);
			return IMP_ERR_PROTOCOL;
		}
	}
	for (size_t i = 0; i < t->n; i++) {
		const struct fmt_member *m = &t->m[i];
		json_t *mv = json_object_get(obj, m->name);
		imp_err rc;

		if (m->required && !mv) {
			IMP_ERROR("record: %s.%s: missing", t->where, m->name);
			return IMP_ERR_PROTOCOL;
		}
		if (mv && m->sub) {
			rc = check_members(mv, m->sub);
			if (rc != IMP_OK)
				return rc;
		}
	}
	return IMP_OK;
}

static imp_err check_identity_keys(const json_t *o)
{
	enum fmt_key_mode mode;
	const char *b64;
	json_t *jwk;
	X509 *cert = NULL;
	EVP_PKEY *pub = NULL;
	char fp[65];
	imp_err rc = IMP_ERR_PROTOCOL;

	if (fmt_key_mode_parse(json_string_value(json_object_get(o, "key_mode")), &mode) !=
	    IMP_OK) {
		IMP_ERROR("record: key_mode: expected \"device\", \"hsm\" or \"psk\"");
		return IMP_ERR_PROTOCOL;
	}
	jwk = json_object_get(o, "public_key");
	b64 = json_string_value(json_object_get(o, "device_certificate"));
	if (mode == FMT_KEY_MODE_PSK) {
		if (jwk || b64 || json_object_get(o, "device_certificate_sha256") ||
		    !json_object_get(o, "kcv")) {
			IMP_ERROR("record: key mode psk: expected a kcv and no key or "
				  "certificate");
			return IMP_ERR_PROTOCOL;
		}
		return IMP_OK;
	}
	if (!jwk || !b64 || !json_object_get(o, "device_certificate_sha256") ||
	    json_object_get(o, "kcv")) {
		IMP_ERROR("record: key mode %s: expected public_key, device_certificate and "
			  "its sha256, no kcv", fmt_key_mode_name(mode));
		return IMP_ERR_PROTOCOL;
	}
	if (fmt_cert_from_b64(b64, &cert) != IMP_OK) {
		IMP_ERROR("record: device_certificate: expected base64 DER");
		goto cleanup;
	}
	if (fmt_cert_fingerprint(cert, fp) != IMP_OK ||
	    strcmp(fp, json_string_value(json_object_get(o, "device_certificate_sha256")))) {
		IMP_ERROR("record: device_certificate_sha256 does not match the certificate");
		rc = IMP_ERR_VERIFY;
		goto cleanup;
	}
	rc = fmt_jwk_to_pkey(jwk, &pub);
	if (rc != IMP_OK)
		goto cleanup;
	if (!fmt_pubkey_equal(pub, X509_get0_pubkey(cert))) {
		IMP_ERROR("record: public_key is not the device certificate's key");
		rc = IMP_ERR_VERIFY;
		goto cleanup;
	}
	rc = IMP_OK;
cleanup:
	X509_free(cert);
	EVP_PKEY_free(pub);
	return rc;
}

/* Verify the JWS, parse the payload, insist on the canonical form. */
static imp_err open_signed(const char *jws, EVP_PKEY *pub, X509_STORE *trust, const char *typ,
			   json_t **out)
{
	struct fmt_jws j;
	json_t *o = NULL;
	json_error_t jerr;
	char *canon = NULL;
	size_t n = 0;
	imp_err rc;

	*out = NULL;
	if ((pub == NULL) == (trust == NULL))
		return IMP_ERR_USAGE;
	if (pub)
		rc = fmt_jws_verify_key(jws, pub, typ, &j);
	else
		rc = fmt_jws_verify_x5c(jws, trust, FMT_KU_DIGITAL_SIGNATURE, typ, &j);
	if (rc != IMP_OK)
		return rc;
	if (trust && (X509_get_extension_flags(j.leaf) & EXFLAG_XKUSAGE)) {
		/* Device (clientAuth) and code-signing certificates carry an EKU;
		 * record and revocation signers do not (formats/x509.h). */
		IMP_ERROR("record: the signer's certificate is not a record signer's");
		rc = IMP_ERR_VERIFY;
		goto cleanup;
	}
	rc = IMP_ERR_PROTOCOL;
	o = json_loadb((const char *)j.payload, j.payload_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!o || !json_is_object(o)) {
		IMP_ERROR("record: the payload is not a JSON object");
		goto cleanup;
	}
	if (fmt_record_canonical(o, &canon, &n) != IMP_OK || n != j.payload_len ||
	    memcmp(canon, j.payload, n) != 0) {
		IMP_ERROR("record: the payload is not in canonical form");
		goto cleanup;
	}
	if (json_integer_value(json_object_get(o, "record_version")) != FMT_RECORD_VERSION) {
		IMP_ERROR("record: record_version: expected %d", FMT_RECORD_VERSION);
		goto cleanup;
	}
	*out = o;
	o = NULL;
	rc = IMP_OK;
cleanup:
	free(canon);
	json_decref(o);
	fmt_jws_release(&j);
	return rc;
}

imp_err fmt_record_verify(const char *jws, EVP_PKEY *pub, X509_STORE *trust, json_t **out)
{
	json_t *o = NULL;
	const char *type;
	imp_err rc;

	*out = NULL;
	rc = open_signed(jws, pub, trust, FMT_RECORD_TYP, &o);
	if (rc != IMP_OK)
		return rc;
	rc = check_members(o, &fmt_identity_members);
	if (rc != IMP_OK)
		goto cleanup;
	type = json_string_value(json_object_get(o, "type"));
	if (strcmp(type, "identity") != 0) {
		IMP_ERROR("record: type: expected \"identity\"");
		rc = IMP_ERR_PROTOCOL;
		goto cleanup;
	}
	rc = check_identity_keys(o);
	if (rc != IMP_OK)
		goto cleanup;
	*out = o;
	o = NULL;
cleanup:
	json_decref(o);
	return rc;
}

imp_err fmt_revocation_verify(const char *jws, EVP_PKEY *pub, X509_STORE *trust,
			      json_t **out)
{
	json_t *o = NULL;
	imp_err rc;

	*out = NULL;
	rc = open_signed(jws, pub, trust, FMT_REVOCATION_TYP, &o);
	if (rc != IMP_OK)
		return rc;
	rc = check_members(o, &fmt_revocation_members);
	if (rc != IMP_OK)
		goto cleanup;
	if (strcmp(json_string_value(json_object_get(o, "type")), "revocation") != 0) {
		IMP_ERROR("revocation: type: expected \"revocation\"");
		rc = IMP_ERR_PROTOCOL;
		goto cleanup;
	}
	*out = o;
	o = NULL;
cleanup:
	json_decref(o);
	return rc;
}
