/*
 * File exporters for backends that import in bulk. Each writes one file,
 * created beside out_path under a temporary name and renamed into place by
 * close() after fsync, so a file is either complete or absent
 * (durable_on_close). docs/REGISTRY.md ("File exporters") shows each format.
 *
 *  - aws-iot:    AWS IoT bulk registration input, one JSON object per line
 *                (parameters for a provisioning template).
 *  - azure-dps:  Azure IoT DPS individual enrollments, a JSON array; a
 *                revocation becomes an enrollment with provisioningStatus
 *                "disabled".
 *  - csv:        one row per record for an ERP (RFC 4180 quoting).
 *  - manifest:   one JWS (ES256, x5c) over the batch, in the spirit of
 *                Microchip's Trust Platform manifest (uniqueId, publicKeySet
 *                with x5c, provisioningTimestamp), signed by the
 *                record-signing key through the HSM signer.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exp/export.h"
#include "formats/jws.h"
#include "imprint/log.h"
#include "imprint/util.h"

#define MANIFEST_TYP "imprint-manifest+jws" /* persisted: JWS "typ" */
#define MANIFEST_VERSION 1                   /* persisted: "manifest_version" */

enum file_kind { F_AWS, F_AZURE, F_CSV, F_MANIFEST };

struct file_exp {
	enum file_kind kind;
	struct exp_settings s;
	char *path;
	char *tmp;
	FILE *f;
	size_t count;
	json_t *entries; /* azure, manifest: collected, written on close */
};

static imp_err file_open(enum file_kind kind, const struct exp_settings *s, void **state)
{
	struct file_exp *fe;
	int fd;

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
	fe->path = strdup(s->out_path);
	if (!fe->path || asprintf(&fe->tmp, "%s.tmp.XXXXXX", s->out_path) < 0) {
		free(fe->path);
		free(fe);
		return IMP_ERR_NOMEM;
	}
	fd = mkstemp(fe->tmp);
	if (fd < 0 || fchmod(fd, 0644) != 0 || !(fe->f = fdopen(fd, "w"))) {
		IMP_ERROR("cannot create %s: %s", fe->tmp, strerror(errno));
		if (fd >= 0) {
			close(fd);
			unlink(fe->tmp);
		}
		free(fe->tmp);
		free(fe->path);
		free(fe);
		return IMP_ERR_IO;
	}
	if (kind == F_AZURE || kind == F_MANIFEST)
		fe->entries = json_array();
	if (kind == F_CSV)
		fputs("record_id,type,serial,chip_uid,sku,key_mode,device_certificate_sha256,"
		      "firmware_sha256,issued_at,station_id,fixture,reason\r\n",
		      fe->f);
	*state = fe;
	return IMP_OK;
}

static imp_err aws_open(const struct exp_settings *s, void **st) { return file_open(F_AWS, s, st); }
static imp_err azure_open(const struct exp_settings *s, void **st) { return file_open(F_AZURE, s, st); }
static imp_err csv_open(const struct exp_settings *s, void **st) { return file_open(F_CSV, s, st); }
static imp_err manifest_open(const struct exp_settings *s, void **st)
{
	return file_open(F_MANIFEST, s, st);
}

static const char *str(const json_t *o, const char *k)
{
	const char *v = json_string_value(json_object_get(o, k));

	return v ? v : "";
}

/* PEM text of a base64 DER certificate (64-column lines). malloc'ed. */
static char *pem_of(const char *b64)
{
	size_t n = strlen(b64);
	char *out = malloc(n + n / 64 + 128);
	char *p = out;

	if (!out)
		return NULL;
	p += sprintf(p, "-----BEGIN CERTIFICATE-----\n");
	for (size_t i = 0; i < n; i += 64) {
		size_t k = n - i < 64 ? n - i : 64;

		memcpy(p, b64 + i, k);
		p += k;
		*p++ = '\n';
	}
	sprintf(p, "-----END CERTIFICATE-----\n");
	return out;
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

static imp_err push_one(struct file_exp *fe, const struct exp_record *r, json_t *rec,
			struct exp_result *res)
{
	bool revocation = r->kind == JNL_OUTBOX_REVOCATION;
	const char *cert = str(rec, "device_certificate");
	json_t *e = NULL;
	char *line = NULL;

	res->status = EXP_ACCEPTED;
	switch (fe->kind) {
	case F_CSV: {
		const char *f[] = { r->id, revocation ? "revocation" : "identity", r->serial,
				    str(rec, "chip_uid"), str(rec, "sku"), str(rec, "key_mode"),
				    str(rec, "device_certificate_sha256"),
				    str(rec, "firmware_sha256"),
				    revocation ? str(rec, "revoked_at") : str(rec, "issued_at"),
				    str(rec, "station_id"), str(rec, "fixture"), str(rec, "reason") };

		for (size_t i = 0; i < IMP_ARRAY_SIZE(f); i++)
			csv_field(fe->f, f[i], i + 1 == IMP_ARRAY_SIZE(f));
		break;
	}
	case F_AWS: {
		char *pem;

		if (revocation || !cert[0]) {
			res->status = EXP_REJECTED;
			snprintf(res->reason, sizeof(res->reason), "%s",
				 revocation ? "aws-iot bulk registration cannot revoke: deactivate "
					      "the certificate in AWS IoT"
					    : "aws-iot bulk registration needs a device certificate "
					      "(psk records have none)");
			return IMP_OK;
		}
		pem = pem_of(cert);
		if (!pem)
			return IMP_ERR_NOMEM;
		e = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "ThingName", r->serial,
			      "SerialNumber", r->serial, "ChipUid", str(rec, "chip_uid"), "Sku",
			      str(rec, "sku"), "CertificatePem", pem, "RecordId", r->id);
		free(pem);
		line = e ? json_dumps(e, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
		if (!line) {
			json_decref(e);
			return IMP_ERR_NOMEM;
		}
		fputs(line, fe->f);
		fputc('\n', fe->f);
		free(line);
		json_decref(e);
		break;
	}
	case F_AZURE:
		if (revocation) {
			e = json_pack("{s:s, s:s, s:s}", "registrationId", r->serial, "deviceId",
				      r->serial, "provisioningStatus", "disabled");
		} else if (!cert[0]) {
			res->status = EXP_REJECTED;
			snprintf(res->reason, sizeof(res->reason),
				 "azure-dps x509 enrollment needs a device certificate");
			return IMP_OK;
		} else {
			e = json_pack("{s:s, s:s, s:{s:s, s:{s:{s:{s:s}}}}, s:s, s:{s:{s:s, s:s, "
				      "s:s}}}",
				      "registrationId", r->serial, "deviceId", r->serial,
				      "attestation", "type", "x509", "x509", "clientCertificates",
				      "primary", "certificate", cert, "provisioningStatus",
				      "enabled", "initialTwin", "tags", "sku", str(rec, "sku"),
				      "chipUid", str(rec, "chip_uid"), "recordId", r->id);
		}
		if (!e || json_array_append_new(fe->entries, e) != 0)
			return IMP_ERR_NOMEM;
		break;
	case F_MANIFEST: {
		json_t *jwk = json_deep_copy(json_object_get(rec, "public_key"));

		if (revocation || !jwk || !cert[0]) {
			json_decref(jwk);
			res->status = EXP_REJECTED;
			snprintf(res->reason, sizeof(res->reason),
				 "a manifest lists identities with a device certificate only");
			return IMP_OK;
		}
		json_object_set_new(jwk, "kid", json_string("0"));
		json_object_set_new(jwk, "x5c", json_pack("[s]", cert));
		e = json_pack("{s:s, s:s, s:s, s:s, s:{s:[o]}, s:s}", "uniqueId",
			      str(rec, "chip_uid"), "serialNumber", r->serial, "recordId", r->id,
			      "sku", str(rec, "sku"), "publicKeySet", "keys", jwk,
			      "provisioningTimestamp", str(rec, "issued_at"));
		if (!e || json_array_append_new(fe->entries, e) != 0)
			return IMP_ERR_NOMEM;
		break;
	}
	}
	fe->count++;
	return IMP_OK;
}

static imp_err file_push(void *state, const struct exp_record *recs, size_t n,
			 struct exp_result *res)
{
	struct file_exp *fe = state;

	for (size_t i = 0; i < n; i++) {
		json_t *rec = NULL;
		/* not verified: the records come from the station's own journal;
		 * verification is the registry's and the audit's job */
		imp_err rc = fmt_jws_peek_payload(recs[i].jws, &rec);

		if (rc != IMP_OK) {
			res[i].status = EXP_REJECTED;
			snprintf(res[i].reason, sizeof(res[i].reason), "malformed JWS");
			continue;
		}
		rc = push_one(fe, &recs[i], rec, &res[i]);
		json_decref(rec);
		if (rc != IMP_OK)
			return rc;
	}
	if (ferror(fe->f)) {
		IMP_ERROR("writing %s failed", fe->tmp);
		return IMP_ERR_IO;
	}
	return IMP_OK;
}

static imp_err write_collected(struct file_exp *fe)
{
	char *text = NULL;
	imp_err rc = IMP_OK;

	if (fe->kind == F_AZURE) {
		text = json_dumps(fe->entries, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		if (!text)
			return IMP_ERR_NOMEM;
		fputs(text, fe->f);
		fputc('\n', fe->f);
	} else if (fe->kind == F_MANIFEST) {
		char ts[32];
		json_t *m;
		char *jws = NULL;

		imp_rfc3339_now(ts);
		m = json_pack("{s:i, s:s, s:I, s:O}", "manifest_version", MANIFEST_VERSION,
			      "created", ts, "count", (json_int_t)json_array_size(fe->entries),
			      "entries", fe->entries);
		text = m ? json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
		json_decref(m);
		if (!text)
			return IMP_ERR_NOMEM;
		rc = fmt_jws_sign(fe->s.signer, MANIFEST_TYP, NULL, fe->s.x5c, fe->s.x5c_count,
				  text, strlen(text), &jws);
		if (rc == IMP_OK) {
			fputs(jws, fe->f);
			fputc('\n', fe->f);
		}
		free(jws);
	}
	free(text);
	return rc;
}

static imp_err file_close(void *state)
{
	struct file_exp *fe = state;
	imp_err rc = IMP_OK;

	if (fe->entries)
		rc = write_collected(fe);
	if (rc == IMP_OK && (fflush(fe->f) != 0 || fsync(fileno(fe->f)) != 0 || ferror(fe->f)))
		rc = IMP_ERR_IO;
	if (fclose(fe->f) != 0 && rc == IMP_OK)
		rc = IMP_ERR_IO;
	if (rc == IMP_OK && rename(fe->tmp, fe->path) != 0) {
		IMP_ERROR("cannot rename %s to %s: %s", fe->tmp, fe->path, strerror(errno));
		rc = IMP_ERR_IO;
	}
	if (rc != IMP_OK)
		unlink(fe->tmp);
	else
		IMP_INFO("wrote %zu records to %s", fe->count, fe->path);
	json_decref(fe->entries);
	free(fe->tmp);
	free(fe->path);
	free(fe);
	return rc;
}

const struct exp_driver exp_driver_aws_iot = {
	.name = "aws-iot",
	.summary = "AWS IoT bulk registration input (JSON lines)",
	.durable_on_close = true,
	.open = aws_open,
	.push = file_push,
	.close = file_close,
};

const struct exp_driver exp_driver_azure_dps = {
	.name = "azure-dps",
	.summary = "Azure IoT DPS individual enrollments (JSON array)",
	.durable_on_close = true,
	.open = azure_open,
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
	.summary = "a JWS manifest of the batch, signed by the record-signing key",
	.durable_on_close = true,
	.open = manifest_open,
	.push = file_push,
	.close = file_close,
};
