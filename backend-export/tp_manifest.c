/*
 * microchip-manifest: a manifest in the shape Microchip's Trust Platform
 * tools read (their "Secure Element Manifest"): a JSON array with one signed
 * entry per device, each a JWS in the flattened JSON serialization (RFC 7515
 * 7.2.2):
 *
 *   {"payload": B64URL(secure element), "protected": B64URL(header),
 *    "header": {"uniqueId": chip UID}, "signature": B64URL(r || s)}
 *
 * The protected header is {"typ":"JWT","alg":"ES256","kid": B64URL(the
 * signer certificate's subjectKeyIdentifier),"x5t#S256": B64URL(SHA-256 of
 * the signer certificate's DER)}; the signer is the record-signing key in the
 * HSM, so a reader verifies every entry against the record-signing
 * certificate (DATA/trust/record-signing.pem) it finds by that thumbprint.
 * The payload (docs/EXPORT.md) carries the chip's unique id, the device's
 * public key as a JWK and its certificate chain (device, device CA) as x5c.
 * Each entry stands alone: a manifest can be cut, merged or searched by
 * uniqueId without breaking a signature.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "exp/export.h"
#include "files_int.h"
#include "formats/base64.h"
#include "formats/jws.h"
#include "formats/x509.h"
#include "imprint/log.h"
#include "imprint/util.h"

#define TP_VERSION 1 /* persisted: the secure element's "version" */

struct tp_exp {
	struct exp_settings s;
	struct exp_out out;
	json_t *entries;
	char *protected_b64; /* the same protected header for every entry */
	char *ca_b64;        /* the device CA certificate, x5c[1] of every entry */
	size_t count;
};

static void tp_free(struct tp_exp *tp)
{
	exp_out_abort(&tp->out);
	json_decref(tp->entries);
	free(tp->protected_b64);
	free(tp->ca_b64);
	free(tp);
}

static imp_err protected_header(X509 *signer_cert, char **out)
{
	const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(signer_cert);
	uint8_t fp[32];
	char *kid = NULL, *x5t = NULL, *text = NULL;
	json_t *h = NULL;
	imp_err rc;

	*out = NULL;
	if (!ski) {
		IMP_ERROR("the record-signing certificate has no subjectKeyIdentifier: it cannot "
			  "name the manifest signer; run 'imprint hsm init --force'");
		return IMP_ERR_CRYPTO;
	}
	rc = fmt_cert_sha256(signer_cert, fp);
	if (rc != IMP_OK)
		return rc;
	kid = fmt_b64url_encode(ASN1_STRING_get0_data(ski), (size_t)ASN1_STRING_length(ski));
	x5t = fmt_b64url_encode(fp, sizeof(fp));
	if (kid && x5t)
		h = json_pack("{s:s, s:s, s:s, s:s}", "typ", "JWT", "alg", "ES256", "kid", kid,
			      "x5t#S256", x5t);
	if (h)
		text = json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (text)
		*out = fmt_b64url_encode(text, strlen(text));
	free(text);
	json_decref(h);
	free(x5t);
	free(kid);
	return *out ? IMP_OK : IMP_ERR_NOMEM;
}

static imp_err tp_open(const struct exp_settings *s, void **state)
{
	struct tp_exp *tp;
	uint8_t *der = NULL;
	size_t n = 0;
	imp_err rc;

	*state = NULL;
	if (!s->out_path) {
		IMP_ERROR("this exporter writes a file: give --out FILE");
		return IMP_ERR_USAGE;
	}
	if (!s->signer || s->x5c_count < 1 || !s->device_ca) {
		IMP_ERROR("the microchip-manifest exporter needs the record-signing key and the "
			  "device CA (internal)");
		return IMP_ERR_INTERNAL;
	}
	tp = calloc(1, sizeof(*tp));
	if (!tp)
		return IMP_ERR_NOMEM;
	tp->s = *s;
	tp->entries = json_array();
	rc = tp->entries ? protected_header(s->x5c[0], &tp->protected_b64) : IMP_ERR_NOMEM;
	if (rc == IMP_OK)
		rc = fmt_cert_to_der(s->device_ca, &der, &n);
	if (rc == IMP_OK) {
		tp->ca_b64 = fmt_b64_encode(der, n);
		rc = tp->ca_b64 ? IMP_OK : IMP_ERR_NOMEM;
	}
	free(der);
	if (rc == IMP_OK)
		rc = exp_out_open(&tp->out, s->out_path, s->replace);
	if (rc != IMP_OK) {
		tp_free(tp);
		return rc;
	}
	*state = tp;
	return IMP_OK;
}

/* Microchip writes provisioningTimestamp with milliseconds
 * ("2019-01-24T16:35:23.473Z"); imprint's RFC 3339 times have whole seconds. */
static void tp_timestamp(const char *rfc3339, char out[32])
{
	size_t n = strlen(rfc3339);

	if (n == 20 && rfc3339[19] == 'Z')
		snprintf(out, 32, "%.19s.000Z", rfc3339);
	else
		snprintf(out, 32, "%s", rfc3339);
}

static imp_err tp_entry(struct tp_exp *tp, const struct exp_record *r, json_t *rec,
			struct exp_result *res)
{
	const char *cert = exp_str(rec, "device_certificate");
	const json_t *pk = json_object_get(rec, "public_key");
	const char *org = tp->s.organisation ? tp->s.organisation : "";
	char ts[32], *payload = NULL, *payload_b64 = NULL, *input = NULL, *sig_b64 = NULL;
	uint8_t sig[64];
	json_t *se = NULL, *e = NULL;
	imp_err rc = IMP_ERR_NOMEM;

	if (r->kind == JNL_OUTBOX_REVOCATION || !cert[0] || !json_is_object(pk)) {
		res->status = EXP_REJECTED;
		snprintf(res->reason, sizeof(res->reason), "%s",
			 r->kind == JNL_OUTBOX_REVOCATION
				 ? "a Microchip-style manifest lists identities, not revocations"
				 : "a Microchip-style manifest entry needs a public key and a device "
				   "certificate (psk records have none)");
		return IMP_OK;
	}
	tp_timestamp(exp_str(rec, "issued_at"), ts);
	se = json_pack("{s:i, s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s}, s:{s:s, s:s}, s:s, s:s, "
		       "s:{s:[{s:s, s:s, s:s, s:s, s:s, s:[s, s]}]}}",
		       "version", TP_VERSION, "model", exp_str(rec, "sku"), "partNumber",
		       exp_str(rec, "sku"), "manufacturer", "organizationName", org,
		       "organizationalUnitName", "", "provisioner", "organizationName", org,
		       "organizationalUnitName", exp_str(rec, "station_id"), "distributor",
		       "organizationName", org, "organizationalUnitName", "",
		       "provisioningTimestamp", ts, "uniqueId", exp_str(rec, "chip_uid"),
		       "publicKeySet", "keys", "kid", "0", "kty", exp_str(pk, "kty"), "crv",
		       exp_str(pk, "crv"), "x", exp_str(pk, "x"), "y", exp_str(pk, "y"), "x5c",
		       cert, tp->ca_b64);
	if (!se)
		goto cleanup;
	payload = json_dumps(se, JSON_COMPACT | JSON_PRESERVE_ORDER);
	payload_b64 = payload ? fmt_b64url_encode(payload, strlen(payload)) : NULL;
	if (!payload_b64 || asprintf(&input, "%s.%s", tp->protected_b64, payload_b64) < 0) {
		input = NULL;
		goto cleanup;
	}
	rc = fmt_signer_sign(tp->s.signer, input, strlen(input), sig);
	if (rc != IMP_OK)
		goto cleanup;
	rc = IMP_ERR_NOMEM;
	sig_b64 = fmt_b64url_encode(sig, sizeof(sig));
	if (sig_b64)
		e = json_pack("{s:s, s:s, s:{s:s}, s:s}", "payload", payload_b64, "protected",
			      tp->protected_b64, "header", "uniqueId", exp_str(rec, "chip_uid"),
			      "signature", sig_b64);
	if (!e || json_array_append_new(tp->entries, e) != 0)
		goto cleanup;
	tp->count++;
	res->status = EXP_ACCEPTED;
	rc = IMP_OK;
cleanup:
	free(sig_b64);
	free(input);
	free(payload_b64);
	free(payload);
	json_decref(se);
	return rc;
}

static imp_err tp_one(void *state, const struct exp_record *r, json_t *rec,
		      struct exp_result *res)
{
	return tp_entry(state, r, rec, res);
}

static imp_err tp_push(void *state, const struct exp_record *recs, size_t n,
		       struct exp_result *res)
{
	return exp_push_each(state, recs, n, res, tp_one);
}

static imp_err tp_close(void *state)
{
	struct tp_exp *tp = state;
	char *shown = strdup(tp->out.path);
	char *text = exp_json_text(tp->entries, true);
	imp_err rc = text ? IMP_OK : IMP_ERR_NOMEM;

	if (rc == IMP_OK && fputs(text, tp->out.f) < 0)
		rc = IMP_ERR_IO;
	if (rc == IMP_OK)
		rc = exp_out_commit(&tp->out);
	if (rc == IMP_OK)
		IMP_INFO("wrote %zu signed entries to %s", tp->count, shown ? shown : "");
	free(text);
	free(shown);
	tp_free(tp);
	return rc;
}

const struct exp_driver exp_driver_microchip_manifest = {
	.name = "microchip-manifest",
	.summary = "a Microchip-style manifest: one signed entry per device",
	.durable_on_close = true,
	.open = tp_open,
	.push = tp_push,
	.close = tp_close,
};
