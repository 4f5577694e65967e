/*
 * imprint audit: verify offline everything a line produced (docs/AUDIT.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit/audit.h"
#include "imprint/log.h"
#include "run.h"

static void on_finding(void *arg, const struct aud_finding *f)
{
	struct station_ctx *ctx = arg;

	if (ctx->json)
		st_emit(ctx,
			json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "event", "finding", "check",
				  f->check, "record_id", f->record_id, "serial", f->serial, "uid",
				  f->uid, "message", f->message),
			NULL, NULL);
	else
		printf("FINDING %-22s %-12s %s%s%s\n", f->check, f->serial[0] ? f->serial : "-",
		       f->message, f->record_id[0] ? "  record " : "", f->record_id);
}

static void on_rejected_locked(void *arg, const struct jnl_rejected_locked *r)
{
	struct station_ctx *ctx = arg;

	if (ctx->json)
		st_emit(ctx,
			json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "event", "rejected_locked", "serial",
				  r->serial, "uid", r->uid, "at", r->from, "cause", r->cause, "ts",
				  r->ts),
			NULL, NULL);
	else
		printf("REJECTED AT %-6s %-12s board %s, %s (%s): its fuses may be burnt and it "
		       "carries no identity record; keep it off the shipment\n", r->from,
		       r->serial[0] ? r->serial : "-", r->uid, r->ts, r->cause);
}

static void print_summary(const json_t *o, void *arg)
{
	(void)arg;
	printf("audit: %lld records (%lld identities, %lld revocations), %lld signatures "
	       "verified, %lld bad\n",
	       json_integer_value(json_object_get(o, "records")),
	       json_integer_value(json_object_get(o, "identities")),
	       json_integer_value(json_object_get(o, "revocations")),
	       json_integer_value(json_object_get(o, "signatures")),
	       json_integer_value(json_object_get(o, "bad_records")));
	if (json_is_true(json_object_get(o, "chain_checked")))
		printf("journal: %lld events, %lld checkpoints, %lld boards compared with their "
		       "events, %lld boards done, %lld of quota %lld issued\n",
		       json_integer_value(json_object_get(o, "journal_events")),
		       json_integer_value(json_object_get(o, "checkpoints")),
		       json_integer_value(json_object_get(o, "boards_compared")),
		       json_integer_value(json_object_get(o, "boards_done")),
		       json_integer_value(json_object_get(o, "issued")),
		       json_integer_value(json_object_get(o, "quota")));
	if (json_integer_value(json_object_get(o, "rejected_locked")))
		printf("journal: %lld boards rejected at or after their lock step (listed above, "
		       "not findings)\n", json_integer_value(json_object_get(o, "rejected_locked")));
	if (json_is_true(json_object_get(o, "chain_checked")) &&
	    json_is_true(json_object_get(o, "anchor_damaged")))
		printf("journal: NOT CHECKED against an anchor: %s is not one (the finding "
		       "above says why)\n", json_string_value(json_object_get(o, "anchor")));
	else if (json_is_true(json_object_get(o, "chain_checked")) &&
		 json_is_true(json_object_get(o, "anchor_checked")))
		printf("journal: compared with its anchor %s\n",
		       json_string_value(json_object_get(o, "anchor")));
	else if (json_is_true(json_object_get(o, "chain_checked")))
		printf("journal: NOT CHECKED against an anchor (none at %s): an older copy of "
		       "the journal would pass as current; audit the station's own journal, or "
		       "give the station's journal.sqlite-anchor with --anchor FILE "
		       "(--require-anchor makes its absence a finding)\n",
		       json_string_value(json_object_get(o, "anchor")));
	printf("%s: %lld findings (%.2f s)\n",
	       json_integer_value(json_object_get(o, "findings")) ? "FAILED" : "OK",
	       json_integer_value(json_object_get(o, "findings")),
	       json_real_value(json_object_get(o, "seconds")));
}

/* --line: a line finding, printed like the offline audit's. */
static void on_line_finding(void *arg, const struct line_finding *f)
{
	struct aud_finding e = { 0 };

	e.check = f->check;
	e.record_id = f->record_id;
	e.serial = f->serial;
	e.uid = "";
	e.message = f->message;
	on_finding(arg, &e);
}

/* The line's database half (docs/LINE.md): a source of records for the
 * offline audit, which verifies them like any other; the line's own checks
 * report their findings as they go. */
struct line_source {
	struct station_ctx *ctx;
	struct line_opts lo;
	uint64_t findings;
};

static imp_err line_source(void *arg, imp_err (*add)(void *, const char *, const char *),
			   void *add_ctx)
{
	struct line_source *ls = arg;

	return line_audit(&ls->lo, add, add_ctx, on_line_finding, ls->ctx, &ls->findings, NULL);
}

static struct {
	const char *journal, *records, *trust, *registry, *line, *anchor;
	long threads;
	bool require_anchor;
} ao;

static const struct st_option audit_opts[] = {
	{ "journal", 'j', ST_OPT_STRING, &ao.journal, "FILE",
	  "the journal (default: the station's, unless --records is given)" },
	{ "records", 'r', ST_OPT_STRING, &ao.records, "FILE",
	  "exported records, JSON lines ({\"id\":..,\"jws\":..} or a JWS per line)" },
	{ "trust", 't', ST_OPT_STRING, &ao.trust, "DIR", "the trust folder (DATA/trust)" },
	{ "anchor", 0, ST_OPT_STRING, &ao.anchor, "FILE",
	  "the journal's anchor file (default: JOURNAL-anchor beside it)" },
	{ "require-anchor", 0, ST_OPT_FLAG, &ao.require_anchor, NULL,
	  "no anchor to compare the journal with is a finding (journal-anchor)" },
	{ "registry-db", 0, ST_OPT_STRING, &ao.registry, "FILE",
	  "an imprint-registry database: every locked board must be in it" },
	{ "line", 0, ST_OPT_STRING, &ao.line, "URL",
	  "the whole line: every record in this line database (docs/LINE.md)" },
	{ "threads", 0, ST_OPT_INT, &ao.threads, "N", "verifying threads (all cores)" },
	ST_OPTIONS_END,
};

static imp_err audit_check(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	if (ao.threads > 64) {
		IMP_ERROR("audit: --threads takes 0 (all cores) to 64");
		return IMP_ERR_USAGE;
	}
	if ((ao.anchor || ao.require_anchor) && !ao.journal && (ao.records || ao.line)) {
		IMP_ERROR("audit: --anchor and --require-anchor check a journal: give --journal "
			  "FILE beside --records or --line");
		return IMP_ERR_USAGE;
	}
	if (ao.line && ao.records) {
		IMP_ERROR("audit: --line and --records both name the records: give one");
		return IMP_ERR_USAGE;
	}
	return IMP_OK;
}

static int audit_run(struct station_ctx *ctx, int argc, char **argv)
{
	const struct fmt_config *cfg = &ctx->run->cfg;
	const char *journal = ao.journal, *records = ao.records, *trust = ao.trust;
	const char *line = ao.line;
	struct line_source ls = { .ctx = ctx };
	struct aud_opts o = { 0 };
	struct aud_summary s;
	char jpath[4200], tdir[4200];
	imp_err rc = IMP_OK;

	(void)argc;
	(void)argv;
	if (line) {
		st_line_opts(ctx, cfg, &ls.lo);
		ls.lo.conninfo = line;
		ls.lo.quota = 0;
		o.source = line_source;
		o.source_arg = &ls;
	}
	if (!journal && !records && !line) {
		st_journal_path(ctx, cfg, jpath, sizeof(jpath));
		journal = jpath;
	}
	if (!trust) {
		st_trust_dir(ctx, tdir, sizeof(tdir));
		trust = tdir;
	}
	o.journal = journal;
	o.records = records;
	o.trust_dir = trust;
	o.registry_db = ao.registry;
	o.anchor = ao.anchor;
	o.require_anchor = ao.require_anchor;
	o.threads = (unsigned)ao.threads;
	o.finding = on_finding;
	o.rejected_locked = on_rejected_locked;
	o.arg = ctx;
	rc = aud_run(&o, &s);
	if (line && (rc == IMP_OK || rc == IMP_ERR_AUDIT)) {
		s.findings += ls.findings;
		if (ls.findings)
			rc = IMP_ERR_AUDIT;
	}
	if (rc == IMP_OK || rc == IMP_ERR_AUDIT)
		st_emit(ctx,
			json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:b, s:b, s:b, s:s?, s:I, s:I, s:I, "
				  "s:I, s:I, s:I, s:I, s:I, s:f, s:f}",
				  "event", "summary", "records", (json_int_t)s.records, "identities",
				  (json_int_t)s.identities, "revocations", (json_int_t)s.revocations,
				  "signatures", (json_int_t)s.signatures, "bad_records",
				  (json_int_t)s.bad_records, "chain_checked", s.chain_checked,
				  "anchor_checked", s.anchor_checked, "anchor_damaged",
				  s.anchor_damaged, "anchor",
				  s.chain_checked ? s.anchor_path : NULL,
				  "journal_events", (json_int_t)s.journal_events, "checkpoints",
				  (json_int_t)s.checkpoints, "boards_compared",
				  (json_int_t)s.boards_compared, "boards_done", (json_int_t)s.boards_done,
				  "rejected_locked", (json_int_t)s.rejected_locked,
				  "quota", (json_int_t)s.quota, "issued", (json_int_t)s.issued,
				  "findings", (json_int_t)s.findings, "seconds", s.seconds,
				  "verify_seconds", s.verify_seconds),
			print_summary, NULL);
	if (rc == IMP_ERR_AUDIT)
		return (int)rc;
	return st_fail(rc, NULL);
}

const struct st_command st_cmd_audit = {
	.name = "audit",
	.fn = audit_run,
	.need = NEED_CONFIG,
	.summary = "verify offline: records, certificate chains, uniqueness, completeness, journal",
	.usage = "imprint audit [--journal FILE] [--records FILE] [--trust DIR] "
		 "[--anchor FILE] [--require-anchor] [--registry-db FILE] [--line URL] "
		 "[--threads N]",
	.opts = audit_opts,
	.check = audit_check,
	.help = "Verifies offline, from files alone, everything the station produced: every "
		"record's signature and certificate chain against the trust (DATA/trust, or "
		"--trust DIR), that serials, UIDs and keys are unique, that every locked "
		"board has its record, the journal's hash chain and signed checkpoints, and "
		"the quota (docs/AUDIT.md). The journal is compared with its anchor file "
		"(JOURNAL-anchor, or --anchor FILE); --require-anchor makes a journal without "
		"one a finding. --registry-db also compares the registry's "
		"database, --line URL the line's central copy. Each problem is printed as a "
		"FINDING (with --json, an object per finding and a summary); exits 28 when "
		"there is one.",
	.exits = (const imp_err[]){ IMP_ERR_USAGE, IMP_ERR_CONFIG, IMP_ERR_IO, IMP_ERR_NOT_FOUND,
				    IMP_ERR_PROTOCOL, IMP_ERR_TIMEOUT, IMP_ERR_JOURNAL,
				    IMP_ERR_AUDIT, IMP_OK },
	.example = "imprint audit\nimprint audit --journal /backup/journal.sqlite --trust "
		"/backup/trust --registry-db registry.sqlite",
};
