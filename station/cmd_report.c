/*
 * imprint report: the shift's report as one self-contained HTML file, made
 * from the same status object as `imprint status --json` (report.h).
 */
#include <stdlib.h>
#include <string.h>

#include "imprint/log.h"
#include "imprint/util.h"
#include "report.h"
#include "run.h"

static struct {
	const char *html, *since, *until;
	long failures;
} ropt = { .failures = 10 };

static const struct st_option report_opts[] = {
	{ "html", 0, ST_OPT_STRING, &ropt.html, "FILE", "write the report to FILE (required)" },
	{ "since", 0, ST_OPT_STRING, &ropt.since, "T",
	  "the shift from T on (RFC 3339 UTC, e.g. 2026-12-01T06:00:00Z)" },
	{ "until", 0, ST_OPT_STRING, &ropt.until, "T", "the shift before T" },
	{ "failures", 0, ST_OPT_INT, &ropt.failures, "N", "list the N most recent failures (10)" },
	{ "line", 0, ST_OPT_STRING, &st_ctx.line_url, "URL",
	  "add the whole line from its database (as 'imprint line status --json')" },
	ST_OPTIONS_END,
};

static imp_err report_check(int argc, char **argv)
{
	char t[32];

	(void)argc;
	(void)argv;
	if (!ropt.html || !ropt.html[0]) {
		IMP_ERROR("report: --html FILE is required (where to write the page)");
		return IMP_ERR_USAGE;
	}
	if ((ropt.since && !st_time_norm(ropt.since, t)) ||
	    (ropt.until && !st_time_norm(ropt.until, t))) {
		IMP_ERROR("report: --since and --until take an RFC 3339 time with its zone, "
			  "such as 2026-12-01T06:00:00Z or 2026-12-01T07:00:00+01:00");
		return IMP_ERR_USAGE;
	}
	if (ropt.failures < 0 || ropt.failures > 10000) {
		IMP_ERROR("report: --failures takes 0 to 10000");
		return IMP_ERR_USAGE;
	}
	return IMP_OK;
}

static void print_written(const json_t *o, void *arg)
{
	(void)arg;
	printf("report written to %s\n", json_string_value(json_object_get(o, "html")));
}

static int report_run(struct station_ctx *ctx, int argc, char **argv)
{
	struct st_status_opts so = { .failures_limit = (unsigned)ropt.failures, .verify = true,
				     .since = ropt.since, .until = ropt.until };
	json_t *st = NULL;
	char *html = NULL;
	imp_err rc;

	(void)argc;
	(void)argv;
	rc = st_status_build(ctx, &so, &st);
	if (!st)
		goto cleanup;
	if (ctx->line_url) {
		struct line_opts lo;
		json_t *ln = NULL;
		imp_err lrc;

		st_line_opts(ctx, &ctx->run->cfg, &lo);
		lo.quota = 0; /* a report never changes the quota */
		lrc = line_status(&lo, &ln);
		if (lrc != IMP_OK) {
			IMP_ERROR("report: the line database could not be read; check --line or "
				  "the configuration's line.url, or leave it out for this station only");
			rc = lrc;
			goto cleanup;
		}
		json_object_set_new(st, "line", ln);
	}
	html = st_report_html(st, false);
	if (!html) {
		rc = IMP_ERR_NOMEM;
		goto cleanup;
	}
	imp_err wrc = imp_write_file_atomic(ropt.html, html, strlen(html), 0644);

	if (wrc != IMP_OK) {
		IMP_ERROR("report: cannot write %s; check the directory exists and is writable",
			  ropt.html);
		rc = wrc;
		goto cleanup;
	}
	st_emit(ctx, json_pack("{s:s, s:b}", "html", ropt.html, "audit_ok", rc == IMP_OK),
		print_written, NULL);
cleanup:
	free(html);
	json_decref(st);
	return st_fail(rc, NULL);
}

const struct st_command st_cmd_report = {
	.name = "report",
	.fn = report_run,
	.need = NEED_JOURNAL,
	.summary = "the shift's report as one self-contained HTML page with plots",
	.usage = "imprint report --html FILE [--since T] [--until T] [--failures N] [--line URL]",
	.opts = report_opts,
	.check = report_check,
	.help = "Reads the journal only, with the same queries as 'imprint status --json': "
		"boards done per hour, first-pass yield, failures by step (Pareto), cycle time "
		"per fixture, quota, export backlog and the journal's audit with its last signed "
		"checkpoint; with --line URL the whole line per "
		"station, from the queries of 'imprint line status --json'. The page loads nothing from anywhere (inline SVG, a "
		"Content-Security-Policy of default-src 'none'). Exits 28 (audit), with the page "
		"written, when the journal's chain does not verify.",
	.exits = (const imp_err[]){ IMP_ERR_IO, IMP_ERR_TIMEOUT, IMP_ERR_AUDIT, IMP_OK },
	.example = "imprint report --html shift.html --since 2026-12-01T06:00:00Z",
};
