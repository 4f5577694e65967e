/*
 * imprint export: deliver the outbox (signed records) to the registry over
 * HTTPS, or write it to a file for a backend that imports in bulk; list the
 * records the registry refused. Also the helpers that start a local
 * imprint-registry for the demo (st_registry_*).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exp/export.h"
#include "imprint/log.h"
#include "imprint/util.h"
#include "line.h"

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

/* The manifest driver signs with the record-signing key in the HSM. */
struct manifest_key {
	struct st_line line;
	struct hsm_key_signer ks;
	struct fmt_signer signer;
	X509 *x5c[1];
	bool open;
};

static imp_err manifest_key_open(struct station_ctx *ctx, struct manifest_key *mk,
				 struct exp_settings *s)
{
	imp_err rc = st_line_open(ctx, &mk->line, ST_LINE_HSM);

	mk->open = true;
	if (rc != IMP_OK)
		return rc;
	mk->x5c[0] = mk->line.station.org.cert[HSM_ORG_RECORD];
	hsm_signer_init(&mk->ks, mk->line.journal_session,
			mk->line.station.org.key[HSM_ORG_RECORD], X509_get0_pubkey(mk->x5c[0]),
			&mk->signer);
	s->signer = &mk->signer;
	s->x5c = mk->x5c;
	s->x5c_count = 1;
	return IMP_OK;
}

/*
 * A file export: the outbox is read, never changed; the driver's own
 * progress (the newest record it wrote) is DATA/export/DRIVER.last; FILE is
 * written atomically and replaced only with --force.
 */
static imp_err file_export(struct station_ctx *ctx, const char *jpath,
			   const struct exp_driver *d, const struct exp_settings *s, bool force,
			   bool only_new, struct exp_stats *total)
{
	char progress[4300], *since = NULL, *last = NULL;
	uint8_t *buf = NULL;
	size_t n = 0;
	void *state = NULL;
	struct stat sb;
	imp_err rc, crc;

	if (s->out_path && !force && stat(s->out_path, &sb) == 0) {
		IMP_ERROR("%s exists: give --force to replace it, or another --out", s->out_path);
		return IMP_ERR_EXISTS;
	}
	snprintf(progress, sizeof(progress), "%s/export/%s.last", ctx->data_dir, d->name);
	if (only_new) {
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

int cmd_export(int argc, char **argv, struct station_ctx *ctx)
{
	bool help = false, once = false, follow = false, rejected = false, list = false;
	bool force = false, only_new = false;
	const char *driver_name = "https", *out = NULL;
	long batch = EXP_BATCH_DEFAULT, retry_for = 60, interval_ms = 1000, timeout_ms = 30000;
	const struct st_option opts[] = {
		{ "once", 0, ST_OPT_FLAG, &once, NULL, "deliver what is pending, then stop (default)" },
		{ "follow", 'f', ST_OPT_FLAG, &follow, NULL,
		  "keep delivering new records until interrupted" },
		{ "driver", 'd', ST_OPT_STRING, &driver_name, "NAME",
		  "https (default), aws-iot, azure-dps, csv or manifest" },
		{ "out", 'o', ST_OPT_STRING, &out, "FILE", "the file a file exporter writes" },
		{ "force", 0, ST_OPT_FLAG, &force, NULL, "a file exporter may replace FILE" },
		{ "new", 0, ST_OPT_FLAG, &only_new, NULL,
		  "a file exporter writes only records newer than its last export" },
		{ "batch", 'b', ST_OPT_INT, &batch, "N", "records per request (1000)" },
		{ "retry-for", 0, ST_OPT_INT, &retry_for, "S",
		  "retry a failing batch for S seconds before giving up (60)" },
		{ "timeout", 0, ST_OPT_INT, &timeout_ms, "MS", "per request (30000)" },
		{ "interval", 0, ST_OPT_INT, &interval_ms, "MS", "--follow: poll interval (1000)" },
		{ "rejected", 0, ST_OPT_FLAG, &rejected, NULL,
		  "list the records the registry refused, with the reason" },
		{ "list-drivers", 0, ST_OPT_FLAG, &list, NULL, "list the exporters" },
		ST_OPTIONS_END,
	};
	struct fmt_config cfg = { 0 };
	struct jnl *j = NULL;
	struct jnl_opts jo = { 0 };
	struct exp_settings s = { 0 };
	struct exp_stats total = { 0 };
	struct manifest_key mk = { 0 };
	const struct exp_driver *d;
	void *state = NULL;
	char jpath[4200];
	uint64_t pending = 0;
	int first;
	imp_err rc;

	rc = st_parse_options(opts, "imprint export [--once | --follow] [--driver NAME --out FILE] "
				    "[--rejected]",
			      argc, argv, &first, &help);
	if (rc != IMP_OK || help)
		return (int)rc;
	if (list) {
		for (size_t i = 0; exp_drivers[i]; i++)
			printf("%-10s %s\n", exp_drivers[i]->name, exp_drivers[i]->summary);
		return 0;
	}
	d = exp_driver_find(driver_name);
	if (!d || (once && follow) || batch < 1 || batch > (long)EXP_BATCH_MAX || first != argc ||
	    (follow && d->durable_on_close)) {
		IMP_ERROR("export: see 'imprint export --help' (drivers: --list-drivers; --follow "
			  "is for https only; --batch 1..%u)",
			  EXP_BATCH_MAX);
		return IMP_ERR_USAGE;
	}
	rc = st_load_config(ctx, &cfg);
	if (rc != IMP_OK)
		goto cleanup;
	st_journal_path(ctx, &cfg, jpath, sizeof(jpath));
	if (rejected) {
		rc = jnl_outbox_scan(jpath, JNL_OUTBOX_REJECTED, rejected_cb, ctx);
		goto cleanup;
	}
	jo.station_id = cfg.station_id;
	jo.must_exist = true;
	rc = jnl_open(jpath, &jo, &j);
	if (rc == IMP_ERR_NOT_FOUND)
		IMP_ERROR("no journal at %s yet; provision a board first", jpath);
	if (rc != IMP_OK)
		goto cleanup;
	s.url = cfg.registry.url;
	s.ca = cfg.registry.ca;
	s.cert = cfg.registry.cert;
	s.key = cfg.registry.key;
	s.bearer = cfg.registry.bearer_env ? getenv(cfg.registry.bearer_env) : NULL;
	if (cfg.registry.bearer_env && !s.bearer) {
		IMP_ERROR("registry.bearer_env names %s, which is not set", cfg.registry.bearer_env);
		rc = IMP_ERR_CONFIG;
		goto cleanup;
	}
	s.retry_for_s = retry_for > 0 ? (double)retry_for : -1;
	s.timeout_ms = timeout_ms;
	s.out_path = out;
	if (strcmp(d->name, "manifest") == 0) {
		rc = manifest_key_open(ctx, &mk, &s);
		if (rc != IMP_OK)
			goto cleanup;
	}
	if (d->durable_on_close) {
		rc = file_export(ctx, jpath, d, &s, force, only_new, &total);
		goto report;
	}
	rc = d->open(&s, &state);
	if (rc != IMP_OK)
		goto cleanup;
	st_install_stop_handlers();
	for (;;) {
		struct exp_deliver_opts o = { (unsigned)batch, 0, stop_requested, NULL };
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
				  out);
		else
			IMP_ERROR("%llu records were rejected: see 'imprint export --rejected'",
				  (unsigned long long)total.rejected);
		rc = IMP_ERR_EXPORT;
	}
	if (rc == IMP_ERR_TIMEOUT)
		rc = IMP_ERR_EXPORT;
cleanup:
	jnl_close(j);
	if (mk.open)
		st_line_close(&mk.line);
	fmt_config_release(&cfg);
	return st_fail(rc, rc == IMP_ERR_EXPORT ? "the records stay in the outbox" : NULL);
}

/* ------------------------------------------ a local registry (demo, tests) */

imp_err st_registry_start(struct station_ctx *ctx, const char *dir, struct st_registry *r)
{
	char exe[PATH_MAX], tls[4300], db[4300], trust[4200], key[4400], line[512];
	int pipefd[2];
	FILE *f;

	memset(r, 0, sizeof(*r));
	st_find_program("imprint-registry", "backend-export/registry", exe, sizeof(exe));
	snprintf(tls, sizeof(tls), "%s/tls", dir);
	snprintf(db, sizeof(db), "%s/registry.sqlite", dir);
	snprintf(key, sizeof(key), "%s/ca.key", tls);
	st_trust_dir(ctx, trust, sizeof(trust));
	if (access(key, F_OK) != 0) {
		pid_t p = fork();
		int status = 0;

		if (p == 0) {
			int fd = open("/dev/null", O_WRONLY);

			dup2(fd, STDOUT_FILENO);
			execlp(exe, exe, "init-tls", tls, (char *)NULL);
			_exit(127);
		}
		if (p < 0 || waitpid(p, &status, 0) < 0 || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0) {
			IMP_ERROR("%s init-tls %s failed", exe, tls);
			return IMP_ERR_EXPORT;
		}
	}
	if (pipe(pipefd) != 0)
		return IMP_ERR_IO;
	r->pid = fork();
	if (r->pid < 0)
		return IMP_ERR_IO;
	if (r->pid == 0) {
		dup2(pipefd[1], STDOUT_FILENO);
		close(pipefd[0]);
		close(pipefd[1]);
		execlp(exe, exe, "serve", "--db", db, "--trust-dir", trust, "--tls-dir", tls,
		       "--port", "0", (char *)NULL);
		fprintf(stderr, "imprint: error: cannot run %s: %s\n", exe, strerror(errno));
		_exit(127);
	}
	close(pipefd[1]);
	f = fdopen(pipefd[0], "r");
	if (!f) {
		close(pipefd[0]);
		return IMP_ERR_NOMEM;
	}
	r->out = f;
	snprintf(r->db, sizeof(r->db), "%s", db);
	snprintf(r->ca, sizeof(r->ca), "%s/ca.pem", tls);
	snprintf(r->cert, sizeof(r->cert), "%s/client.pem", tls);
	snprintf(r->key, sizeof(r->key), "%s/client.key", tls);
	if (fgets(line, sizeof(line), f)) {
		json_t *o = json_loads(line, 0, NULL);
		const char *url = json_string_value(json_object_get(o, "url"));

		if (url && json_is_true(json_object_get(o, "ready"))) {
			snprintf(r->url, sizeof(r->url), "%s", url);
			json_decref(o);
			return IMP_OK;
		}
		json_decref(o);
	}
	IMP_ERROR("the local registry (%s) did not start; run it by hand to see why", exe);
	return IMP_ERR_EXPORT;
}

void st_registry_stop(struct st_registry *r)
{
	if (r->pid > 0) {
		kill(r->pid, SIGTERM);
		waitpid(r->pid, NULL, 0);
		r->pid = 0;
	}
	if (r->out)
		fclose(r->out);
	r->out = NULL;
}

json_t *st_registry_config(const struct st_registry *r)
{
	return json_pack("{s:s, s:s, s:s, s:s}", "url", r->url, "ca", r->ca, "cert", r->cert,
			 "key", r->key);
}
