/*
 * File exporters for backends that import in bulk: aws-iot, csv and
 * imprint's batch manifest here; azure-dps (azure_dps.c) and the
 * Microchip-style manifest (tp_manifest.c) beside. Every output is
 * complete or absent (files_int.h: temporary name, fsync, rename), so the
 * drivers are durable_on_close. docs/EXPORT.md shows each format field by
 * field, and the commands that import it.
 *
 *  - aws-iot:    AWS IoT bulk registration input, one JSON object per line
 *                whose members are parameters of the provisioning template
 *                shipped as backend-export/aws-iot-template.json, written
 *                beside the file (STEM.template.json).
 *  - csv:        one row per record for an ERP (RFC 4180 quoting).
 *  - manifest:   one JWS (ES256, x5c) over the batch, signed by the
 *                record-signing key through the HSM signer.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exp/export.h"
#include "files_int.h"
#include "formats/jws.h"
#include "imprint/log.h"
#include "imprint/util.h"

#define MANIFEST_TYP "imprint-manifest+jws" /* persisted: JWS "typ" */
#define MANIFEST_VERSION 1                   /* persisted: "manifest_version" */
#define AWS_TEMPLATE_SUFFIX ".template.json" /* persisted: the template beside the lines */

enum file_kind { F_AWS, F_CSV, F_MANIFEST };

struct file_exp {
	enum file_kind kind;
	struct exp_settings s;
	struct exp_out out;
	struct exp_out tmpl;  /* aws-iot: the provisioning template */
	size_t count;
	json_t *entries;      /* manifest: collected, written on close */
	char *newest;         /* manifest: the latest provisioningTimestamp */
};

static void file_free(struct file_exp *fe)
{
	exp_out_abort(&fe->out);
	exp_out_abort(&fe->tmpl);
	json_decref(fe->entries);
	free(fe->newest);
	free(fe);
}

static imp_err file_open(enum file_kind kind, const struct exp_settings *s, void **state)
{
	struct file_exp *fe;
	char *tmpl = NULL;
	imp_err rc;

	*state = NULL;
	if (!s->out_path) {
		IMP_ERROR("this exporter writes a file: give --out FILE");
		return IMP_ERR_USAGE;
	}
	if (kind == F_MANIFEST && !s->signer) {
		IMP_ERROR("the manifest exporter needs the record-signing key (internal)");
		return IMP_ERR_INTERNAL;
	}
	fe = calloc(1, sizeof(*fe));
	if (!fe)
		return IMP_ERR_NOMEM;
	fe->kind = kind;
	fe->s = *s;
	if (kind == F_AWS) {
		tmpl = exp_out_sibling(s->out_path, AWS_TEMPLATE_SUFFIX);
		if (!tmpl) {
			rc = IMP_ERR_NOMEM;
			goto cleanup;
		}
		if (strcmp(tmpl, s->out_path) == 0) {
			IMP_ERROR("--out %s would be its own provisioning template: give another name "
				  "(things.jsonl writes things.template.json beside it)", s->out_path);
			rc = IMP_ERR_USAGE;
			goto cleanup;
		}
		rc = exp_out_open(&fe->tmpl, tmpl, s->replace);
		if (rc != IMP_OK)
			goto cleanup;
	}
	rc = exp_out_open(&fe->out, s->out_path, s->replace);
	if (rc != IMP_OK)
		goto cleanup;
	if (kind == F_MANIFEST) {
		fe->entries = json_array();
		if (!fe->entries) {
			rc = IMP_ERR_NOMEM;
			goto cleanup;
		}
	}
	if (kind == F_CSV)
		fputs("record_id,type,serial,chip_uid,sku,key_mode,device_certificate_sha256,"
		      "firmware_sha256,issued_at,station_id,fixture,reason\r\n",
		      fe->out.f);
	*state = fe;
	fe = NULL;
cleanup:
	if (fe)
		file_free(fe);
	free(tmpl);
	return rc;
}

static imp_err aws_open(const struct exp_settings *s, void **st) { return file_open(F_AWS, s, st); }
static imp_err csv_open(const struct exp_settings *s, void **st) { return file_open(F_CSV, s, st); }
static imp_err manifest_open(const struct exp_settings *s, void **st)
{
	return file_open(F_MANIFEST, s, st);
}

static void csv_field(FILE *f, const char *v, bool last)
{
	if (strpbrk(v, ",\"\r\n")) {
		fputc('"', f);
		for (const char *c = v; *c; c++) {
			if (*c == '"')
				fputc('"', f);
			fputc(*c, f);
		}
		fputc('"', f);
	} else {
		fputs(v, f);
	}
	fputs(last ? "\r\n" : ",", f);
}

/* AWS IoT's patterns (API reference, ThingAttribute): a thing name is
 * [a-zA-Z0-9:_-]{1,128}, an attribute value [a-zA-Z0-9_.,@/:#=\[\]-]{0,800}. */
static bool aws_thing_name_ok(const char *v)
{
	size_t n = strlen(v);

	return n >= 1 && n <= 128 &&
	       strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:_-") == n;
}

static bool aws_attr_ok(const char *v)
{
	size_t n = strlen(v);

	return n <= 800 && strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				     "0123456789_.,@/:#=[]-") == n;
}

static imp_err aws_line(struct file_exp *fe, const struct exp_record *r, json_t *rec,
			struct exp_result *res)
{
	const char *cert = exp_str(rec, "device_certificate");
	const char *attrs[][2] = { { "ChipUid", exp_str(rec, "chip_uid") },
				   { "Sku", exp_str(rec, "sku") },
				   { "RecordId", r->id } };
	json_t *e;
	char *pem, *line;

	res->status = EXP_REJECTED;
	if (r->kind == JNL_OUTBOX_REVOCATION || !cert[0]) {
		snprintf(res->reason, sizeof(res->reason), "%s",
			 r->kind == JNL_OUTBOX_REVOCATION
				 ? "aws-iot bulk registration cannot revoke: deactivate the "
				   "certificate in AWS IoT (aws iot update-certificate --new-status "
				   "REVOKED)"
				 : "aws-iot bulk registration needs a device certificate (psk "
				   "records have none)");
		return IMP_OK;
	}
	if (!aws_thing_name_ok(r->serial)) {
		snprintf(res->reason, sizeof(res->reason),
			 "serial '%.64s' is not an AWS IoT thing name ([a-zA-Z0-9:_-], 1..128)",
			 r->serial);
		return IMP_OK;
	}
	for (size_t i = 0; i < IMP_ARRAY_SIZE(attrs); i++) {
		if (!aws_attr_ok(attrs[i][1])) {
			snprintf(res->reason, sizeof(res->reason),
				 "%s '%.64s' is not an AWS IoT attribute value "
				 "([a-zA-Z0-9_.,@/:#=[]-], up to 800)", attrs[i][0], attrs[i][1]);
			return IMP_OK;
		}
	}
	pem = exp_pem_of(cert);
	if (!pem)
		return IMP_ERR_NOMEM;
	/* Exactly the parameters aws-iot-template.json declares without a default. */
	e = json_pack("{s:s, s:s, s:s, s:s, s:s}", "ThingName", r->serial, "ChipUid",
		      attrs[0][1], "Sku", attrs[1][1], "RecordId", r->id, "CertificatePem", pem);
	free(pem);
	line = e ? exp_json_text(e, false) : NULL;
	json_decref(e);
	if (!line)
		return IMP_ERR_NOMEM;
	fputs(line, fe->out.f);
	free(line);
	res->status = EXP_ACCEPTED;
	return IMP_OK;
}

static imp_err manifest_entry(struct file_exp *fe, const struct exp_record *r, json_t *rec,
			      struct exp_result *res)
{
	const char *cert = exp_str(rec, "device_certificate");
	const char *issued = exp_str(rec, "issued_at");
	json_t *jwk = json_deep_copy(json_object_get(rec, "public_key"));
	json_t *e;

	if (r->kind == JNL_OUTBOX_REVOCATION || !jwk || !cert[0]) {
		json_decref(jwk);
		res->status = EXP_REJECTED;
		snprintf(res->reason, sizeof(res->reason),
			 "a manifest lists identities with a device certificate only");
		return IMP_OK;
	}
	json_object_set_new(jwk, "kid", json_string("0"));
	json_object_set_new(jwk, "x5c", json_pack("[s]", cert));
	e = json_pack("{s:s, s:s, s:s, s:s, s:{s:[o]}, s:s}", "uniqueId",
		      exp_str(rec, "chip_uid"), "serialNumber", r->serial, "recordId", r->id,
		      "sku", exp_str(rec, "sku"), "publicKeySet", "keys", jwk,
		      "provisioningTimestamp", issued);
	if (!e || json_array_append_new(fe->entries, e) != 0)
		return IMP_ERR_NOMEM;
	if (!fe->newest || strcmp(issued, fe->newest) > 0) {
		free(fe->newest);
		fe->newest = strdup(issued);
		if (!fe->newest)
			return IMP_ERR_NOMEM;
	}
	res->status = EXP_ACCEPTED;
	return IMP_OK;
}

static imp_err push_one(struct file_exp *fe, const struct exp_record *r, json_t *rec,
			struct exp_result *res)
{
	bool revocation = r->kind == JNL_OUTBOX_REVOCATION;
	imp_err rc = IMP_OK;

	switch (fe->kind) {
	case F_CSV: {
		const char *f[] = { r->id, revocation ? "revocation" : "identity", r->serial,
				    exp_str(rec, "chip_uid"), exp_str(rec, "sku"),
				    exp_str(rec, "key_mode"),
				    exp_str(rec, "device_certificate_sha256"),
				    exp_str(rec, "firmware_sha256"),
				    revocation ? exp_str(rec, "revoked_at") : exp_str(rec, "issued_at"),
				    exp_str(rec, "station_id"), exp_str(rec, "fixture"),
				    exp_str(rec, "reason") };

		for (size_t i = 0; i < IMP_ARRAY_SIZE(f); i++)
			csv_field(fe->out.f, f[i], i + 1 == IMP_ARRAY_SIZE(f));
		res->status = EXP_ACCEPTED;
		break;
	}
	case F_AWS:
		rc = aws_line(fe, r, rec, res);
		break;
	case F_MANIFEST:
		rc = manifest_entry(fe, r, rec, res);
		break;
	}
	if (rc == IMP_OK && res->status == EXP_ACCEPTED)
		fe->count++;
	return rc;
}

static imp_err push_one_cb(void *state, const struct exp_record *r, json_t *rec,
			   struct exp_result *res)
{
	return push_one(state, r, rec, res);
}

static imp_err file_push(void *state, const struct exp_record *recs, size_t n,
			 struct exp_result *res)
{
	struct file_exp *fe = state;
	imp_err rc = exp_push_each(fe, recs, n, res, push_one_cb);

	if (rc != IMP_OK)
		return rc;
	if (ferror(fe->out.f)) {
		IMP_ERROR("writing %s failed", fe->out.tmp);
		return IMP_ERR_IO;
	}
	return IMP_OK;
}

/* The batch manifest. "created" is the newest entry's provisioning time, not
 * the clock: the same records give the same payload. */
static imp_err write_manifest(struct file_exp *fe)
{
	char *text = NULL, *jws = NULL;
	json_t *m;
	imp_err rc;

	m = json_pack("{s:i, s:s, s:I, s:O}", "manifest_version", MANIFEST_VERSION, "created",
		      fe->newest ? fe->newest : "", "count",
		      (json_int_t)json_array_size(fe->entries), "entries", fe->entries);
	text = m ? json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(m);
	if (!text)
		return IMP_ERR_NOMEM;
	rc = fmt_jws_sign(fe->s.signer, MANIFEST_TYP, NULL, fe->s.x5c, fe->s.x5c_count, text,
			  strlen(text), &jws);
	if (rc == IMP_OK) {
		fputs(jws, fe->out.f);
		fputc('\n', fe->out.f);
	}
	free(jws);
	free(text);
	return rc;
}

static imp_err file_close(void *state)
{
	struct file_exp *fe = state;
	const char *path = fe->out.path ? fe->out.path : "";
	char *shown = strdup(path);
	imp_err rc = IMP_OK;

	if (fe->kind == F_MANIFEST)
		rc = write_manifest(fe);
	if (rc == IMP_OK && fe->kind == F_AWS &&
	    fwrite(exp_aws_template, 1, exp_aws_template_len, fe->tmpl.f) != exp_aws_template_len)
		rc = IMP_ERR_IO;
	/* The template first: lines without their template are of no use. */
	if (rc == IMP_OK && fe->kind == F_AWS)
		rc = exp_out_commit(&fe->tmpl);
	if (rc == IMP_OK)
		rc = exp_out_commit(&fe->out);
	if (rc == IMP_OK)
		IMP_INFO("wrote %zu records to %s", fe->count, shown ? shown : path);
	free(shown);
	file_free(fe);
	return rc;
}

const struct exp_driver exp_driver_aws_iot = {
	.name = "aws-iot",
	.summary = "AWS IoT bulk registration input (JSON lines) and its provisioning template",
	.durable_on_close = true,
	.open = aws_open,
	.push = file_push,
	.close = file_close,
};

const struct exp_driver exp_driver_csv = {
	.name = "csv",
	.summary = "CSV for an ERP, one row per record",
	.durable_on_close = true,
	.open = csv_open,
	.push = file_push,
	.close = file_close,
};

const struct exp_driver exp_driver_manifest = {
	.name = "manifest",
	.summary = "imprint's JWS manifest of the batch, signed by the record-signing key",
	.durable_on_close = true,
	.open = manifest_open,
	.push = file_push,
	.close = file_close,
};
