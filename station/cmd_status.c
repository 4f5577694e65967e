/*
 * imprint status: boards per state, quota left, recent failures.
 */
#include <stdio.h>
#include <string.h>

#include "imprint/log.h"
#include "report.h"
#include "run.h"

static void print_status(const json_t *o, void *arg)
{
	const json_t *states = json_object_get(o, "boards");
	const char *key;
	json_t *v;
	size_t i;

	(void)arg;
	printf("station %s, journal %s\n", json_string_value(json_object_get(o, "station_id")),
	       json_string_value(json_object_get(o, "journal")));
	if (json_is_true(json_object_get(o, "line_mode")))
		printf("line mode: serials from leases of the line ('imprint line status' shows the "
		       "line's quota); issued here %lld, left in this station's leases %lld\n",
		       json_integer_value(json_object_get(o, "issued")),
		       json_integer_value(json_object_get(o, "quota_left")));
	else
		printf("quota %lld, issued %lld, left %lld\n",
		       json_integer_value(json_object_get(o, "quota")),
		       json_integer_value(json_object_get(o, "issued")),
		       json_integer_value(json_object_get(o, "quota_left")));
	printf("\nboards per state:\n");
	json_object_foreach((json_t *)states, key, v)
		printf("  %-12s %lld\n", key, json_integer_value(v));
	v = json_object_get(o, "quarantines");
	if (json_integer_value(json_object_get(v, "events")))
		printf("\nquarantined: %lld (%lld presenting the uid of a finished board: see "
		       "'imprint audit')\n", json_integer_value(json_object_get(v, "events")),
		       json_integer_value(json_object_get(v, "done_uid")));
	printf("\nrecent failures:\n");
	json_array_foreach(json_object_get(o, "failures"), i, v)
		printf("  %s %-10s %-10s %s (exit %lld)\n", json_string_value(json_object_get(v, "uid")),
		       json_string_value(json_object_get(v, "serial")),
		       json_string_value(json_object_get(v, "state")),
		       json_string_value(json_object_get(v, "error")),
		       json_integer_value(json_object_get(v, "code")));
	if (json_array_size(json_object_get(o, "failures")) == 0)
		printf("  none\n");
	v = json_object_get(o, "shift");
	if (json_is_real(json_object_get(v, "first_pass_yield")))
		printf("\nfirst-pass yield: %.1f%% (%lld of %lld finished)\n",
		       100.0 * json_real_value(json_object_get(v, "first_pass_yield")),
		       json_integer_value(json_object_get(v, "first_pass")),
		       json_integer_value(json_object_get(v, "finished")));
	if (json_object_size(json_object_get(v, "failures_by_step"))) {
		printf("failures by step:");
		json_object_foreach(json_object_get(v, "failures_by_step"), key, states)
			printf(" %s %lld", key, json_integer_value(states));
		printf("\n");
	}
	printf("\nrecords waiting for delivery: %lld\n",
	       json_integer_value(json_object_get(o, "outbox_pending")));
	v = json_object_get(o, "chain");
	if (v)
		printf("journal chain: %s (%lld events, %lld signed checkpoints, %lld events after "
		       "the last; %lld boards rows and %lld outbox rows compared with their "
		       "events)%s%s\n",
		       json_is_true(json_object_get(v, "ok"))	  ? "verified"
		       : json_is_true(json_object_get(v, "incomplete")) ? "NOT VERIFIED"
									  : "BROKEN",
		       json_integer_value(json_object_get(v, "events")),
		       json_integer_value(json_object_get(v, "checkpoints")),
		       json_integer_value(json_object_get(v, "unsigned_tail")),
		       json_integer_value(json_object_get(v, "boards_compared")),
		       json_integer_value(json_object_get(v, "outbox_compared")),
		       json_is_true(json_object_get(v, "ok")) ? "" : ": ",
		       json_string_value(json_object_get(v, "reason")));
	if (v)
		printf("  not compared, as no event holds them: the boards' data, attempts, last "
		       "error and reissue count; the outbox's attempts, last error, creation "
		       "time and line delivery marks (line_delivered_at, line_conflict); the "
		       "checkpoints' times; the line leases table\n");
}

static long failures_limit = 10;
static bool verify;
static const char *since, *until;

static const struct st_option status_opts[] = {
	{ "failures", 0, ST_OPT_INT, &failures_limit, "N", "show the N most recent failures (10)" },
	{ "verify", 0, ST_OPT_FLAG, &verify, NULL,
	  "also verify the journal's hash chain, signed checkpoints, anchor, and its boards "
	  "and outbox tables against the events" },
	{ "since", 0, ST_OPT_STRING, &since, "T",
	  "the shift's figures from T on (RFC 3339 UTC, e.g. 2026-12-01T06:00:00Z)" },
	{ "until", 0, ST_OPT_STRING, &until, "T", "the shift's figures before T" },
	ST_OPTIONS_END,
};

static imp_err status_check(int argc, char **argv)
{
	char t[32], u[32];

	(void)argc;
	(void)argv;
	if ((since && !st_time_norm(since, t)) || (until && !st_time_norm(until, u))) {
		IMP_ERROR("status: --since and --until take an RFC 3339 time with its zone, "
			  "such as 2026-12-01T06:00:00Z or 2026-12-01T07:00:00+01:00");
		return IMP_ERR_USAGE;
	}
	/* Normalised times compare as text. */
	if (since && until && strcmp(t, u) >= 0) {
		IMP_ERROR("status: --since %s is not before --until %s: the shift would hold "
			  "nothing; give them in order", since, until);
		return IMP_ERR_USAGE;
	}
	return IMP_OK;
}

static int status_run(struct station_ctx *ctx, int argc, char **argv)
{
	struct st_status_opts so = { .failures_limit = (unsigned)failures_limit, .verify = verify,
				     .since = since, .until = until };
	json_t *o = NULL;
	imp_err rc;

	(void)argc;
	(void)argv;
	rc = st_status_build(ctx, &so, &o);
	if (o)
		st_emit(ctx, o, print_status, NULL);
	return st_fail(rc, NULL);
}

const struct st_command st_cmd_status = {
	.name = "status",
	.fn = status_run,
	.need = NEED_JOURNAL,
	.summary = "boards per state, quota left, recent failures",
	.usage = "imprint status [--failures N] [--verify] [--since T] [--until T]",
	.opts = status_opts,
	.check = status_check,
	.help = "Boards per state, the quota and serials left, the most recent failures, "
		"the shift's figures (first-pass yield, failures by step; --since and "
		"--until bound them) and the records waiting for the registry. Reads the "
		"journal only. --verify also checks the hash chain and the signed "
		"checkpoints against DATA/trust and exits 28 (audit) if they do not hold. "
		"With --json, one object (\"event\": \"status\"), the same as the dashboard's "
		"/status.json. 'imprint boards' lists the boards one by one.",
	.exits = (const imp_err[]){ IMP_ERR_AUDIT, IMP_OK },
	.example = "imprint status --verify\nimprint --json status --since "
		"2026-12-01T06:00:00Z",
};
