/*
 * imprint export: deliver the outbox (signed records) to the registry over
 * HTTPS, or write it to a file for a backend that imports in bulk; list the
 * records the registry refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "exp/export.h"
#include "formats/ecdsa_der.h"
#include "formats/signer.h"
#include "formats/x509.h"
#include "hsm/org.h"
#include "imprint/log.h"
#include "imprint/util.h"
#include "run.h"

static bool stop_requested(void *arg)
{
	(void)arg;
	return st_stop_requested != 0;
}

static int rejected_cb(void *arg, const struct jnl_outbox_row *r)
{
	struct station_ctx *ctx = arg;

	if (ctx->json)
		st_emit(ctx, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "event", "rejected",
				       "record_id", r->record_id, "serial", r->serial, "kind",
				       r->kind, "created", r->created, "reason",
				       r->rejected_reason),
			NULL, NULL);
	else
		printf("%-10s %-10s %s  %s\n", r->serial, r->kind, r->record_id, r->rejected_reason);
	return 0;
}

static void print_stats(const json_t *o, void *arg)
{
	(void)arg;
	printf("export (%s): %lld accepted, %lld already there, %lld rejected, %lld still "
	       "pending, %.2f s\n",
	       json_string_value(json_object_get(o, "driver")),
	       json_integer_value(json_object_get(o, "accepted")),
	       json_integer_value(json_object_get(o, "duplicates")),
	       json_integer_value(json_object_get(o, "rejected")),
	       json_integer_value(json_object_get(o, "pending")),
	       json_real_value(json_object_get(o, "seconds")));
}

/* The manifest drivers sign with the record-signing key in the HSM, through
 * a store of the signatures already made: ECDSA draws a fresh nonce for
 * every signature, so without it the same export twice would differ in its
 * signature values. A signature is kept per digest in DATA/export/signatures
 * and reused only after it verifies under the signer's public key (a damaged
 * or foreign file is signed afresh and replaced). */
struct manifest_key {
	struct hsm_key_signer ks;
	struct fmt_signer hsm;    /* the HSM's own signer */
	struct fmt_signer signer; /* hsm behind the signature store */
	char store[PATH_MAX];
	X509 *x5c[1];
};

static bool stored_sig_valid(EVP_PKEY *pub, const uint8_t digest[32], const uint8_t raw[64])
{
	uint8_t der[FMT_ECDSA_DER_MAX];
	size_t der_len = 0;
	EVP_PKEY_CTX *pc;
	bool ok;

	if (fmt_ecdsa_raw_to_der(raw, der, sizeof(der), &der_len) != IMP_OK)
		return false;
	pc = EVP_PKEY_CTX_new(pub, NULL);
	ok = pc && EVP_PKEY_verify_init(pc) == 1 &&
	     EVP_PKEY_verify(pc, der, der_len, digest, 32) == 1;
	EVP_PKEY_CTX_free(pc);
	return ok;
}

static imp_err stored_sign_digest(void *arg, const uint8_t digest[32], uint8_t raw_sig[64])
{
	struct manifest_key *mk = arg;
	char path[PATH_MAX + 80], hex[65];
	uint8_t *old = NULL;
	size_t n = 0;
	imp_err rc;

	imp_hex_encode(digest, 32, hex);
	if (snprintf(path, sizeof(path), "%s/%s.sig", mk->store, hex) >= (int)sizeof(path))
		return IMP_ERR_USAGE;
	if (imp_read_file(path, &old, &n) == IMP_OK && n == 64 &&
	    stored_sig_valid(mk->hsm.pub, digest, old)) {
		memcpy(raw_sig, old, 64);
		free(old);
		return IMP_OK;
	}
	free(old);
	rc = mk->hsm.sign_digest(mk->hsm.arg, digest, raw_sig);
	if (rc != IMP_OK)
		return rc;
	rc = imp_mkdir_p(mk->store, 0700);
	if (rc == IMP_OK)
		rc = imp_write_file_atomic(path, raw_sig, 64, 0600);
	if (rc != IMP_OK)
		IMP_ERROR("cannot keep the signature in %s: the export stops before it writes "
			  "an output a second export could not repeat; check the data "
			  "directory's space and permissions", mk->store);
	return rc;
}

static imp_err manifest_key_open(struct station_ctx *ctx, struct manifest_key *mk,
				 struct exp_settings *s)
{
	struct st_run *r = ctx->run;
	imp_err rc = st_setup(ctx, NEED_HSM);

	if (rc != IMP_OK)
		return rc;
	mk->x5c[0] = r->station.org.cert[HSM_ORG_RECORD];
	hsm_signer_init(&mk->ks, r->journal_session, r->station.org.key[HSM_ORG_RECORD],
			X509_get0_pubkey(mk->x5c[0]), &mk->hsm);
	if (snprintf(mk->store, sizeof(mk->store), "%s/export/signatures", ctx->data_dir) >=
	    (int)sizeof(mk->store))
		return IMP_ERR_USAGE;
	mk->signer = (struct fmt_signer){ .sign_digest = stored_sign_digest, .arg = mk,
					  .pub = mk->hsm.pub };
	s->signer = &mk->signer;
	s->x5c = mk->x5c;
	s->x5c_count = 1;
	s->device_ca = r->station.org.cert[HSM_ORG_DEVICE_CA];
	return IMP_OK;
}

/* The device CA certificate from DATA/trust (no HSM needed). *out is new. */
static imp_err device_ca_load(struct station_ctx *ctx, X509 **out)
{
	char path[4400];
	imp_err rc;

	st_trust_dir(ctx, path, sizeof(path));
	strncat(path, "/", sizeof(path) - strlen(path) - 1);
	strncat(path, hsm_org_file(HSM_ORG_DEVICE_CA), sizeof(path) - strlen(path) - 1);
	rc = fmt_cert_load(path, out);
	if (rc == IMP_ERR_IO)
		IMP_ERROR("no device CA certificate at %s: run 'imprint hsm export-trust' on the "
			  "station that holds the hierarchy", path);
	return rc;
}

/* The configured subject CN of device certificates (a template), or NULL:
 * the device certificate profile's, or else certificate.subject's. */
static const char *config_subject_cn(const struct fmt_config *cfg)
{
	const struct fmt_certprof *dev =
		cfg->certificate.profiles ? cfg->certificate.profiles->role[FMT_CP_DEVICE] : NULL;

	if (dev && fmt_certprof_has_subject(dev))
		return fmt_certprof_attr_template(dev, "CN");
	for (size_t i = 0; i < cfg->certificate.subject_count; i++) {
		const char *a = cfg->certificate.subject[i].attr;

		if (strcmp(a, "CN") == 0 || strcmp(a, "commonName") == 0)
			return cfg->certificate.subject[i].value;
	}
	return NULL;
}

static struct {
	bool once, follow, rejected, list, force, only_new;
	const char *driver_name, *out; /* driver_name NULL: no --driver, https */
	long batch, retry_for, interval_ms, timeout_ms;
} eo = { .batch = EXP_BATCH_DEFAULT, .retry_for = 60,
	 .interval_ms = 1000, .timeout_ms = 30000 };

static const struct st_option export_opts[] = {
	{ "once", 0, ST_OPT_FLAG, &eo.once, NULL, "deliver what is pending, then stop (default)" },
	{ "follow", 'f', ST_OPT_FLAG, &eo.follow, NULL,
	  "keep delivering new records until interrupted" },
	{ "driver", 'd', ST_OPT_STRING, &eo.driver_name, "NAME",
	  "https (default), aws-iot, azure-dps, csv, manifest or microchip-manifest" },
	{ "out", 'o', ST_OPT_STRING, &eo.out, "FILE",
	  "the file a file exporter writes (azure-dps: a directory)" },
	{ "force", 0, ST_OPT_FLAG, &eo.force, NULL,
	  "a file exporter may replace what it wrote before" },
	{ "new", 0, ST_OPT_FLAG, &eo.only_new, NULL,
	  "a file exporter writes only records newer than its last export" },
	{ "batch", 'b', ST_OPT_INT, &eo.batch, "N", "records per request (1000)" },
	{ "retry-for", 0, ST_OPT_INT, &eo.retry_for, "S",
	  "retry a failing batch for S seconds before giving up (60)" },
	{ "timeout", 0, ST_OPT_INT, &eo.timeout_ms, "MS", "per request (30000)" },
	{ "interval", 0, ST_OPT_INT, &eo.interval_ms, "MS", "--follow: poll interval (1000)" },
	{ "rejected", 0, ST_OPT_FLAG, &eo.rejected, NULL,
	  "list the records the registry refused, with the reason" },
	{ "list-drivers", 0, ST_OPT_FLAG, &eo.list, NULL, "list the exporters" },
	ST_OPTIONS_END,
};

/* The driver --driver names, https without one. */
static const char *export_driver_name(void)
{
	return eo.driver_name ? eo.driver_name : "https";
}

/* Which options go together (docs/EXPORT.md): --rejected alone, a file
 * driver with its --out, the https driver without one. Refused here, before
 * anything is sent or written. */
static imp_err export_check(int argc, char **argv)
{
	const struct exp_driver *d = exp_driver_find(export_driver_name());

	(void)argc;
	(void)argv;
	if (eo.list)
		return IMP_OK;
	if (eo.rejected) {
		if (eo.driver_name || eo.out || eo.force || eo.only_new || eo.follow) {
			IMP_ERROR("export: --rejected only lists the records the registry refused: "
				  "it takes no --driver, --out, --force, --new or --follow; run the "
				  "export as a command of its own");
			return IMP_ERR_USAGE;
		}
		return IMP_OK;
	}
	if (!d) {
		IMP_ERROR("export: no driver '%s'; 'imprint export --list-drivers' lists them",
			  eo.driver_name);
		return IMP_ERR_USAGE;
	}
	if (d->durable_on_close && !eo.out) {
		IMP_ERROR("export: the %s driver writes a file: give it with --out FILE "
			  "(azure-dps: a directory)", d->name);
		return IMP_ERR_USAGE;
	}
	if (!d->durable_on_close && (eo.out || eo.force || eo.only_new)) {
		IMP_ERROR("export: %s goes with a file driver (--driver NAME --out FILE; "
			  "'imprint export --list-drivers' lists them); the %s driver delivers to "
			  "the registry and writes no file",
			  eo.out ? "--out" : eo.force ? "--force" : "--new", d->name);
		return IMP_ERR_USAGE;
	}
	if (eo.once && eo.follow) {
		IMP_ERROR("export: --once and --follow exclude each other");
		return IMP_ERR_USAGE;
	}
	if (eo.follow && d->durable_on_close) {
		IMP_ERROR("export: --follow is for the https driver only");
		return IMP_ERR_USAGE;
	}
	if (eo.batch < 1 || eo.batch > (long)EXP_BATCH_MAX) {
		IMP_ERROR("export: --batch takes 1..%u", EXP_BATCH_MAX);
		return IMP_ERR_USAGE;
	}
	return IMP_OK;
}

/*
 * A file export: the outbox is read, never changed; the driver's own
 * progress (the newest record it wrote) is DATA/export/DRIVER.last; its
 * outputs are written atomically and replaced only with --force (the
 * driver refuses existing ones before it writes anything).
 */
static imp_err file_export(struct station_ctx *ctx, const char *jpath,
			   const struct exp_driver *d, const struct exp_settings *s,
			   struct exp_stats *total)
{
	char progress[4300], *since = NULL, *last = NULL;
	uint8_t *buf = NULL;
	size_t n = 0;
	void *state = NULL;
	imp_err rc, crc;

	snprintf(progress, sizeof(progress), "%s/export/%s.last", ctx->data_dir, d->name);
	if (eo.only_new) {
		rc = imp_read_file(progress, &buf, &n);
		if (rc == IMP_OK) {
			since = strndup((const char *)buf, strcspn((const char *)buf, "\n"));
			free(buf);
			if (!since)
				return IMP_ERR_NOMEM;
		} else if (rc != IMP_ERR_NOT_FOUND) {
			return rc;
		}
	}
	rc = d->open(s, &state);
	if (rc != IMP_OK) {
		free(since);
		return rc;
	}
	rc = exp_export_file(jpath, d, state, since, total, &last);
	crc = d->close(state); /* the file is complete and in place, or absent */
	if (rc == IMP_OK)
		rc = crc;
	if (rc == IMP_OK && last) {
		char dir[4300], line[64];
		int len = snprintf(line, sizeof(line), "%s\n", last);

		snprintf(dir, sizeof(dir), "%s/export", ctx->data_dir);
		rc = imp_mkdir_p(dir, 0700);
		if (rc == IMP_OK)
			rc = imp_write_file_atomic(progress, line, (size_t)len, 0600);
	}
	free(last);
	free(since);
	return rc;
}

static int export_run(struct station_ctx *ctx, int argc, char **argv)
{
	const struct fmt_config *cfgp = &ctx->run->cfg;
	const bool follow = eo.follow;
	const long interval_ms = eo.interval_ms;
	struct jnl *j = NULL;
	struct jnl_opts jo = { 0 };
	struct exp_settings s = { 0 };
	struct exp_stats total = { 0 };
	struct manifest_key mk = { 0 };
	struct st_registry local = { 0 };
	X509 *device_ca = NULL;
	const struct exp_driver *d = exp_driver_find(export_driver_name());
	void *state = NULL;
	char jpath[4200];
	uint64_t pending = 0;
	imp_err rc;

	(void)argc;
	(void)argv;
	if (eo.list) {
		for (size_t i = 0; exp_drivers[i]; i++) {
			if (ctx->json)
				st_emit(ctx,
					json_pack("{s:s, s:s, s:s}", "event", "export_driver",
						  "driver", exp_drivers[i]->name, "description",
						  exp_drivers[i]->summary),
					NULL, NULL);
			else
				printf("%-19s %s\n", exp_drivers[i]->name,
				       exp_drivers[i]->summary);
		}
		return 0;
	}
	st_journal_path(ctx, cfgp, jpath, sizeof(jpath));
	if (eo.rejected) {
		rc = jnl_outbox_scan(jpath, JNL_OUTBOX_REJECTED, rejected_cb, ctx);
		goto cleanup;
	}
	jo.station_id = cfgp->station_id;
	jo.must_exist = true;
	rc = jnl_open(jpath, &jo, &j);
	if (rc == IMP_ERR_NOT_FOUND)
		IMP_ERROR("no journal at %s yet: nothing was provisioned with it (a new station "
			  "starts with 'imprint hsm init', then 'imprint provision'; 'imprint "
			  "demo' runs one on virtual boards)", jpath);
	else if (rc != IMP_OK)
		IMP_ERROR("%s", jnl_last_error());
	if (rc != IMP_OK)
		goto cleanup;
	rc = exp_settings_from_config(cfgp, &s);
	if (rc != IMP_OK)
		goto cleanup;
	/* No registry configured: the local reference registry (docs/CONFIG.md),
	 * for this export, with its store in DATA/registry. */
	if (!s.url && strcmp(d->name, "https") == 0) {
		char dir[4300];

		snprintf(dir, sizeof(dir), "%s/registry", ctx->data_dir);
		rc = st_registry_start(ctx, dir, &local);
		if (rc != IMP_OK)
			goto cleanup;
		s.url = local.url;
		s.ca = local.ca;
		s.cert = local.cert;
		s.key = local.key;
		IMP_INFO("no registry.url configured: delivering to the local reference registry "
			 "(database %s)", local.db);
	}
	s.retry_for_s = eo.retry_for > 0 ? (double)eo.retry_for : -1;
	s.timeout_ms = eo.timeout_ms;
	s.out_path = eo.out;
	s.replace = eo.force;
	s.subject_cn = config_subject_cn(cfgp);
	s.organisation = cfgp->organisation.name;
	if (strcmp(d->name, "manifest") == 0 || strcmp(d->name, "microchip-manifest") == 0) {
		rc = manifest_key_open(ctx, &mk, &s);
		if (rc != IMP_OK)
			goto cleanup;
	} else if (strcmp(d->name, "azure-dps") == 0) {
		rc = device_ca_load(ctx, &device_ca);
		if (rc != IMP_OK)
			goto cleanup;
		s.device_ca = device_ca;
	}
	if (d->durable_on_close) {
		rc = file_export(ctx, jpath, d, &s, &total);
		goto report;
	}
	rc = d->open(&s, &state);
	if (rc != IMP_OK)
		goto cleanup;
	st_install_stop_handlers();
	for (;;) {
		struct exp_deliver_opts o = { (unsigned)eo.batch, 0, stop_requested, NULL };
		struct exp_stats st = { 0 };
		char **ids = NULL;
		size_t nids = 0;

		rc = exp_deliver(j, d, state, &o, &st, &ids, &nids);
		total.accepted += st.accepted;
		total.duplicates += st.duplicates;
		total.rejected += st.rejected;
		total.seconds += st.seconds;
		if (d->durable_on_close) {
			imp_err crc = d->close(state);

			state = NULL;
			if (rc == IMP_OK)
				rc = crc;
			if (rc == IMP_OK)
				rc = exp_deliver_commit(j, ids, nids);
			exp_ids_free(ids, nids);
			break;
		}
		if (!follow || st_stop_requested)
			break;
		if (rc != IMP_OK)
			IMP_WARN("delivery failed (%s); trying again", imp_err_name(rc));
		if (st.pushed == 0 || rc != IMP_OK)
			imp_sleep_us((uint64_t)interval_ms * 1000);
		if (st_stop_requested)
			break;
	}
	if (state)
		d->close(state);
report:
	jnl_outbox_count_pending(j, &pending);
	st_emit(ctx,
		json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:f}", "event", "export", "driver",
			  d->name, "accepted", (json_int_t)total.accepted, "duplicates",
			  (json_int_t)total.duplicates, "rejected", (json_int_t)total.rejected,
			  "pending", (json_int_t)pending, "seconds", total.seconds),
		print_stats, NULL);
	if (rc == IMP_OK && total.rejected > 0) {
		if (d->durable_on_close)
			IMP_ERROR("%llu records cannot be written in the %s format (named above); "
				  "they are not in %s", (unsigned long long)total.rejected, d->name,
				  eo.out);
		else
			IMP_ERROR("%llu records were rejected: see 'imprint export --rejected'",
				  (unsigned long long)total.rejected);
		rc = IMP_ERR_EXPORT;
	}
	if (rc == IMP_ERR_TIMEOUT)
		rc = IMP_ERR_EXPORT;
cleanup:
	st_registry_stop(&local);
	X509_free(device_ca);
	jnl_close(j);
	return st_fail(rc, rc == IMP_ERR_EXPORT ? "the records stay in the outbox" : NULL);
}


const struct st_command st_cmd_export = {
	.name = "export",
	.fn = export_run,
	.need = NEED_CONFIG,
	.summary = "deliver signed records to the registry, or write them for a bulk import",
	.usage = "imprint export [--once | --follow] [--batch N] [--retry-for S] [--timeout MS] "
		 "[--interval MS]\n"
		 "       imprint export --driver NAME --out FILE [--force] [--new]\n"
		 "       imprint export --rejected | --list-drivers",
	.opts = export_opts,
	.check = export_check,
	.help = "The https driver delivers the outbox to the registry over mutual TLS, with "
		"retries, exactly once (docs/REGISTRY.md); with no registry.url configured, "
		"to the local reference registry (imprint-registry, started for the export, "
		"its database in DATA/registry). The file drivers write every record for a "
		"backend that imports in bulk, without changing the outbox: a file export can "
		"be repeated, replaces its file only with --force, and with --new writes only "
		"the records after its own last export. aws-iot writes the JSON lines and "
		"their provisioning template beside them (FILE without .jsonl, then "
		".template.json); azure-dps writes a directory: bulk-NNN.json bodies of at most "
		"10 enrollments and enrollment-group.json for the device CA; microchip-manifest "
		"writes one signed entry per device. docs/EXPORT.md has each format and the "
		"cloud-side commands that import it. A file driver needs --out FILE, and --out, --force "
		"and --new go only with a file driver; --rejected only lists, with none of "
		"--driver, --out, --force, --new or --follow: other combinations are refused "
		"(exit 2) before anything is sent or written. Exits 27 if records were refused or the "
		"registry stayed unreachable or did not answer in time (--timeout, retried "
		"for --retry-for), 17 if its "
		"answers were not the protocol's (not JSON, no results); the records not "
		"delivered stay in the outbox: 'imprint export --rejected' lists refused records "
		"with the reason.",
	.exits = (const imp_err[]){ IMP_ERR_IO, IMP_ERR_HSM, IMP_ERR_PIN, IMP_ERR_NOT_FOUND,
				    IMP_ERR_EXISTS, IMP_ERR_PROTOCOL, IMP_ERR_TIMEOUT,
				    IMP_ERR_JOURNAL, IMP_ERR_EXPORT, IMP_OK },
	.example = "imprint export --once\nimprint export --driver aws-iot --out things.jsonl",
};
