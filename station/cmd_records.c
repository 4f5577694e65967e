/*
 * imprint records [--since T] [--serial S] [--jws]: the signed records in
 * the journal's outbox (identity and revocation), oldest first.
 */
#include <stdio.h>
#include <string.h>

#include "imprint/log.h"
#include "report.h"
#include "run.h"

static const char *since_opt, *serial_opt;
static bool jws_only;

static const struct st_option records_opts[] = {
	{ "since", 0, ST_OPT_STRING, &since_opt, "T",
	  "only records created at or after T (RFC 3339 UTC, e.g. 2026-12-01T06:00:00Z)" },
	{ "serial", 0, ST_OPT_STRING, &serial_opt, "SERIAL", "only the records of one device" },
	{ "jws", 0, ST_OPT_FLAG, &jws_only, NULL,
	  "print each record as its compact JWS alone, one a line (for other tools; not with --json)" },
	ST_OPTIONS_END,
};

static imp_err records_check(int argc, char **argv)
{
	char t[32];

	(void)argc;
	(void)argv;
	if (since_opt && !st_time_norm(since_opt, t)) {
		IMP_ERROR("records: --since takes an RFC 3339 time with its zone, such as "
			  "2026-12-01T06:00:00Z or 2026-12-01T07:00:00+01:00 (got '%s')",
			  since_opt);
		return IMP_ERR_USAGE;
	}
	if (serial_opt && !*serial_opt) {
		IMP_ERROR("records: --serial takes a device serial");
		return IMP_ERR_USAGE;
	}
	/* --json promises one JSON object per line on stdout; --jws prints
	 * bare JWS lines. Each record object of --json has its JWS in "jws". */
	if (jws_only && st_ctx.json) {
		IMP_ERROR("records: --jws and --json exclude each other: --jws prints the bare "
			  "JWS, one a line; with --json each record's JWS is its \"jws\" member");
		return IMP_ERR_USAGE;
	}
	return IMP_OK;
}

struct records_list {
	struct station_ctx *ctx;
	unsigned n;
};

static void print_record(const json_t *o, void *arg)
{
	struct records_list *l = arg;
	const char *delivered = json_string_value(json_object_get(o, "delivered_at"));
	const char *rejected = json_string_value(json_object_get(o, "rejected_reason"));

	if (l->n == 0)
		printf("%-20s %-12s %-10s %-10s %s\n", "CREATED (UTC)", "SERIAL", "KIND",
		       "DELIVERED", "RECORD ID");
	printf("%.19sZ %-12s %-10s %-10s %s%s%s\n",
	       json_string_value(json_object_get(o, "created")),
	       json_string_value(json_object_get(o, "serial")),
	       json_string_value(json_object_get(o, "kind")),
	       rejected ? "REJECTED" : delivered ? "yes" : "pending",
	       json_string_value(json_object_get(o, "record_id")), rejected ? "  " : "",
	       rejected ? rejected : "");
}

static int record_cb(void *arg, const struct jnl_outbox_row *r)
{
	struct records_list *l = arg;

	if (jws_only) {
		printf("%s\n", r->jws);
		l->n++;
		return 0;
	}
	st_emit(l->ctx,
		json_pack("{s:s, s:s, s:s?, s:s?, s:s?, s:s?, s:s?, s:i, s:s?, s:s?, s:s?}", "event",
			  "record", "record_id", r->record_id, "serial", r->serial, "uid", r->uid,
			  "kind", r->kind, "created", r->created, "delivered_at", r->delivered_at,
			  "attempts", (int)r->attempts, "last_error", r->last_error,
			  "rejected_reason", r->rejected_reason, "jws", r->jws),
		print_record, l);
	l->n++;
	return 0;
}

static int records_run(struct station_ctx *ctx, int argc, char **argv)
{
	struct records_list l = { ctx, 0 };
	char since[32];
	imp_err rc;

	(void)argc;
	(void)argv;
	if (since_opt && !st_time_norm(since_opt, since))
		return st_fail(IMP_ERR_USAGE, NULL);
	rc = jnl_list_records(ctx->run->journal, since_opt ? since : NULL, serial_opt, record_cb,
			      &l);
	if (rc != IMP_OK) {
		IMP_ERROR("%s", jnl_last_error());
		return st_fail(rc, NULL);
	}
	fflush(stdout);
	if (l.n == 0 && serial_opt) {
		IMP_ERROR("no record of serial %s%s%s in this station's journal; 'imprint boards' "
			  "lists the boards and their serials", serial_opt,
			  since_opt ? " since " : "", since_opt ? since_opt : "");
		return IMP_ERR_NOT_FOUND;
	}
	if (l.n == 0)
		IMP_INFO("no record%s%s in the journal", since_opt ? " since " : "",
			 since_opt ? since_opt : "");
	return 0;
}

const struct st_command st_cmd_records = {
	.name = "records",
	.fn = records_run,
	.need = NEED_JOURNAL,
	.summary = "list the signed identity and revocation records in the journal",
	.usage = "imprint records [--since T] [--serial SERIAL] [--jws]",
	.opts = records_opts,
	.max_args = 0,
	.check = records_check,
	.exits = (const imp_err[]){ IMP_ERR_NOT_FOUND, IMP_OK },
	.help = "Lists the records this station signed, oldest first, from the journal's outbox: "
		"when each was created, the device serial, identity or revocation, whether the "
		"registry has it, and its record id. Reads the journal only. With --json, one "
		"object per record (\"event\": \"record\") whose \"jws\" member is the signed "
		"record itself (docs/RECORD.md); --jws prints only the compact JWS, one a line, "
		"for tools that take records as they are. Exits 9 if --serial matches nothing.",
	.example = "imprint records --since 2026-12-01T06:00:00Z\n"
		   "imprint records --serial DEMO000001 --jws > DEMO000001.jws",
};
