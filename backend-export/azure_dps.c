/*
 * azure-dps: what Azure IoT Hub Device Provisioning Service imports, in a
 * directory (--out DIR, swapped in whole):
 *
 *  - bulk-NNN.json (001, 002, ...): bodies of the DPS bulk enrollment
 *    operation (POST /enrollments, "Individual Enrollment - Run Bulk
 *    Operation"), {"mode":"create","enrollments":[...]} with at most
 *    AZ_BULK_MAX X.509 individual enrollments each, the limit DPS sets;
 *  - enrollment-group.json: an X.509 CA-based enrollment group (PUT
 *    /enrollmentGroups/{id}) whose signing certificate is the device CA,
 *    for devices that enroll by their chain instead.
 *
 * DPS takes the registration ID of an X.509 enrollment from the device
 * certificate's subject CN, and imprint's registration ID is the serial: the
 * driver refuses to open (before anything is written) when the configured
 * subject CN is not "{serial}", and refuses any certificate whose CN is not
 * its serial. A revocation disables its device's enrollment (DPS's way of
 * blocking one device of a group too); it needs the identity record in the
 * same export, for the attestation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "exp/export.h"
#include "files_int.h"
#include "formats/base64.h"
#include "formats/jws.h"
#include "formats/x509.h"
#include "imprint/log.h"
#include "imprint/util.h"

#define AZ_BULK_MAX 10                          /* DPS: enrollments per bulk operation */
#define AZ_SERIAL_CN "{serial}"                 /* the only subject CN that works */
#define AZ_GROUP_FILE "enrollment-group.json"   /* persisted: file names */
#define AZ_BULK_FILE "bulk-%03zu.json"
#define AZ_GROUP_PREFIX "imprint-device-ca-"    /* persisted: enrollmentGroupId */

struct azure_exp {
	struct exp_settings s;
	struct exp_outdir dir;
	json_t *enrollments; /* in outbox order */
	json_t *by_serial;   /* serial -> its enrollment (borrowed from enrollments) */
	size_t count;
};

static void azure_free(struct azure_exp *az)
{
	exp_outdir_abort(&az->dir);
	json_decref(az->enrollments);
	json_decref(az->by_serial);
	free(az);
}

static imp_err azure_open(const struct exp_settings *s, void **state)
{
	struct azure_exp *az;
	imp_err rc;

	*state = NULL;
	if (!s->out_path) {
		IMP_ERROR("azure-dps writes a directory of bulk bodies and the enrollment group: "
			  "give --out DIR");
		return IMP_ERR_USAGE;
	}
	if (!s->subject_cn || strcmp(s->subject_cn, AZ_SERIAL_CN) != 0) {
		IMP_ERROR("azure-dps: DPS takes an X.509 device's registration ID from its "
			  "certificate's CN, and imprint enrolls each device under its serial, but "
			  "certificate.subject has %s%s%s: set its CN to \"" AZ_SERIAL_CN "\" "
			  "(nothing was written)",
			  s->subject_cn ? "CN \"" : "no CN", s->subject_cn ? s->subject_cn : "",
			  s->subject_cn ? "\"" : "");
		return IMP_ERR_CONFIG;
	}
	if (!s->device_ca) {
		IMP_ERROR("azure-dps needs the device CA certificate (internal)");
		return IMP_ERR_INTERNAL;
	}
	az = calloc(1, sizeof(*az));
	if (!az)
		return IMP_ERR_NOMEM;
	az->s = *s;
	az->enrollments = json_array();
	az->by_serial = json_object();
	if (!az->enrollments || !az->by_serial) {
		azure_free(az);
		return IMP_ERR_NOMEM;
	}
	rc = exp_outdir_open(&az->dir, s->out_path, s->replace);
	if (rc != IMP_OK) {
		azure_free(az);
		return rc;
	}
	*state = az;
	return IMP_OK;
}

/* DPS: a registration ID is up to 128 of [A-Za-z0-9-._:], ending in an
 * alphanumeric or '-'. */
static bool registration_id_ok(const char *v)
{
	size_t n = strlen(v);

	return n >= 1 && n <= 128 &&
	       strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._:") ==
		       n &&
	       v[n - 1] != '.' && v[n - 1] != '_' && v[n - 1] != ':';
}

/* The subject CN of a base64 DER certificate into cn (cap bytes); "" if none. */
static imp_err cert_cn(const char *b64, char *cn, size_t cap)
{
	X509 *x = NULL;
	X509_NAME *name;
	imp_err rc = fmt_cert_from_b64(b64, &x);
	int i;

	cn[0] = '\0';
	if (rc != IMP_OK)
		return rc;
	name = X509_get_subject_name(x);
	i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
	if (i >= 0) {
		unsigned char *u = NULL;
		int n = ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));

		if (n >= 0)
			snprintf(cn, cap, "%.*s", n, (const char *)u);
		OPENSSL_free(u);
	}
	X509_free(x);
	return IMP_OK;
}

static imp_err azure_identity(struct azure_exp *az, const struct exp_record *r, json_t *rec,
			      struct exp_result *res)
{
	const char *cert = exp_str(rec, "device_certificate");
	json_t *e, *old;
	char cn[256];

	res->status = EXP_REJECTED;
	if (!cert[0]) {
		snprintf(res->reason, sizeof(res->reason),
			 "azure-dps x509 enrollment needs a device certificate (psk records have "
			 "none)");
		return IMP_OK;
	}
	if (cert_cn(cert, cn, sizeof(cn)) != IMP_OK) {
		snprintf(res->reason, sizeof(res->reason), "its device certificate does not parse");
		return IMP_OK;
	}
	if (strcmp(cn, r->serial) != 0) {
		snprintf(res->reason, sizeof(res->reason),
			 "DPS would register it as '%.64s' (its certificate's CN), not as its serial "
			 "'%.64s'", cn, r->serial);
		return IMP_OK;
	}
	if (!registration_id_ok(r->serial)) {
		snprintf(res->reason, sizeof(res->reason),
			 "serial '%.64s' is not a DPS registration ID ([A-Za-z0-9-._:], up to 128, "
			 "ending in a letter, digit or '-')", r->serial);
		return IMP_OK;
	}
	e = json_pack("{s:s, s:s, s:{s:s, s:{s:{s:{s:s}}}}, s:s, s:{s:b}, s:{s:{s:s, s:s, s:s}}}",
		      "registrationId", r->serial, "deviceId", r->serial, "attestation", "type",
		      "x509", "x509", "clientCertificates", "primary", "certificate", cert,
		      "provisioningStatus", "enabled", "capabilities", "iotEdge", 0,
		      "initialTwin", "tags", "sku", exp_str(rec, "sku"), "chipUid",
		      exp_str(rec, "chip_uid"), "recordId", r->id);
	if (!e)
		return IMP_ERR_NOMEM;
	old = json_object_get(az->by_serial, r->serial);
	if (old) {
		/* A reissued identity: the newer record replaces the older in place. */
		json_object_update(old, e);
		json_decref(e);
	} else {
		if (json_array_append_new(az->enrollments, e) != 0 ||
		    json_object_set(az->by_serial, r->serial, e) != 0)
			return IMP_ERR_NOMEM;
		az->count++;
	}
	res->status = EXP_ACCEPTED;
	return IMP_OK;
}

static imp_err azure_revocation(struct azure_exp *az, const struct exp_record *r,
				struct exp_result *res)
{
	json_t *e = json_object_get(az->by_serial, r->serial);

	if (!e) {
		res->status = EXP_REJECTED;
		snprintf(res->reason, sizeof(res->reason),
			 "its identity record is not in this export (--new?): disable the "
			 "enrollment with 'az iot dps enrollment update --enrollment-id %.64s "
			 "--provisioning-status disabled'", r->serial);
		return IMP_OK;
	}
	json_object_set_new(e, "provisioningStatus", json_string("disabled"));
	res->status = EXP_ACCEPTED;
	return IMP_OK;
}

static imp_err azure_one(void *state, const struct exp_record *r, json_t *rec,
			 struct exp_result *res)
{
	if (r->kind == JNL_OUTBOX_REVOCATION)
		return azure_revocation(state, r, res);
	return azure_identity(state, r, rec, res);
}

static imp_err azure_push(void *state, const struct exp_record *recs, size_t n,
			  struct exp_result *res)
{
	return exp_push_each(state, recs, n, res, azure_one);
}

/* The enrollment group of the device CA: its id names the CA's fingerprint,
 * so another CA never lands in the same group. */
static imp_err write_group(struct azure_exp *az)
{
	uint8_t *der = NULL;
	size_t n = 0;
	char fp[65], id[64], *b64 = NULL, *text = NULL;
	json_t *g = NULL;
	imp_err rc;

	rc = fmt_cert_fingerprint(az->s.device_ca, fp);
	if (rc == IMP_OK)
		rc = fmt_cert_to_der(az->s.device_ca, &der, &n);
	if (rc != IMP_OK)
		return rc;
	b64 = fmt_b64_encode(der, n);
	snprintf(id, sizeof(id), AZ_GROUP_PREFIX "%.16s", fp);
	g = b64 ? json_pack("{s:s, s:{s:s, s:{s:{s:{s:s}}}}, s:s, s:{s:b, s:b}, s:s, s:{s:b}}",
			    "enrollmentGroupId", id, "attestation", "type", "x509", "x509",
			    "signingCertificates", "primary", "certificate", b64,
			    "provisioningStatus", "enabled", "reprovisionPolicy",
			    "updateHubAssignment", 1, "migrateDeviceData", 1, "allocationPolicy",
			    "hashed", "capabilities", "iotEdge", 0)
		: NULL;
	text = g ? exp_json_text(g, true) : NULL;
	rc = text ? exp_outdir_write(&az->dir, AZ_GROUP_FILE, text) : IMP_ERR_NOMEM;
	free(text);
	json_decref(g);
	free(b64);
	free(der);
	return rc;
}

static imp_err write_bodies(struct azure_exp *az)
{
	size_t total = json_array_size(az->enrollments);

	for (size_t first = 0, k = 1; first < total; first += AZ_BULK_MAX, k++) {
		json_t *list = json_array(), *body;
		char name[32], *text;
		imp_err rc;

		for (size_t i = first; list && i < total && i < first + AZ_BULK_MAX; i++)
			json_array_append(list, json_array_get(az->enrollments, i));
		body = list ? json_pack("{s:s, s:o}", "mode", "create", "enrollments", list) : NULL;
		text = body ? exp_json_text(body, true) : NULL;
		json_decref(body);
		if (!text)
			return IMP_ERR_NOMEM;
		snprintf(name, sizeof(name), AZ_BULK_FILE, k);
		rc = exp_outdir_write(&az->dir, name, text);
		free(text);
		if (rc != IMP_OK)
			return rc;
	}
	return IMP_OK;
}

static imp_err azure_close(void *state)
{
	struct azure_exp *az = state;
	size_t bodies = (json_array_size(az->enrollments) + AZ_BULK_MAX - 1) / AZ_BULK_MAX;
	char *shown = strdup(az->dir.path);
	imp_err rc = write_bodies(az);

	if (rc == IMP_OK)
		rc = write_group(az);
	if (rc == IMP_OK)
		rc = exp_outdir_commit(&az->dir);
	if (rc == IMP_OK)
		IMP_INFO("wrote %zu enrollments in %zu bulk bodies and the enrollment group to %s",
			 az->count, bodies, shown ? shown : "");
	free(shown);
	azure_free(az);
	return rc;
}

const struct exp_driver exp_driver_azure_dps = {
	.name = "azure-dps",
	.summary = "Azure IoT DPS bulk enrollment bodies (10 each) and the enrollment group",
	.durable_on_close = true,
	.open = azure_open,
	.push = azure_push,
	.close = azure_close,
};
