/*
 * imprint provision: take every board on the selected fixtures from blank
 * to locked and recorded.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exp/export.h"
#include "imprint/log.h"
#include "line.h"

volatile sig_atomic_t st_stop_requested;

static void on_stop(int sig)
{
	(void)sig;
	st_stop_requested = 1;
}

void st_install_stop_handlers(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

int st_provision_run(struct station_ctx *ctx, struct st_line *l, size_t nfix, uint64_t count)
{
	struct prov_result *res;
	int code;

	if (nfix == 0 || nfix > l->cfg.fixture_count)
		nfix = l->cfg.fixture_count;
	res = calloc(nfix, sizeof(*res));
	if (!res)
		return st_fail(IMP_ERR_NOMEM, NULL);
	l->station.progress = st_progress;
	l->station.progress_arg = ctx;
	l->station.stop = &st_stop_requested;
	l->station.max_new_boards = count;
	if (l->line)
		line_set_demand(l->line, count);
	st_install_stop_handlers();
	prov_run_fixtures(&l->station, l->cfg.fixtures, nfix, res);
	/* The end of every run is signed (docs/JOURNAL.md "Checkpoints"). */
	if (jnl_checkpoint(l->journal) != IMP_OK)
		IMP_WARN("the run's closing checkpoint failed (%s): take it with `imprint journal "
			 "checkpoint`", jnl_last_error());
	st_anchor_update(l);
	code = st_report_results(ctx, l->cfg.fixtures, res, nfix);
	free(res);
	if (code == IMP_ERR_QUOTA)
		IMP_ERROR("production quota reached: no new serial was issued; raise 'quota' in "
			  "the configuration if more boards are authorised");
	else if (code == IMP_ERR_INTERRUPTED)
		IMP_ERROR("stopped; run 'imprint resume' to finish the boards in flight");
	else if (code != 0)
		IMP_ERROR("some boards did not finish (%s); 'imprint status' lists them and "
			  "'imprint resume' continues them", imp_err_name((imp_err)code));
	return code;
}

int cmd_provision(int argc, char **argv, struct station_ctx *ctx)
{
	long fixtures = 0, count = 0;
	bool all = false, help = false, reissue = false;
	const char *reason = NULL;
	const struct st_option opts[] = {
		{ "all", 'a', ST_OPT_FLAG, &all, NULL, "every fixture of the configuration (default)" },
		{ "count", 'n', ST_OPT_INT, &count, "M", "start at most M new boards in this run" },
		{ "fixtures", 'f', ST_OPT_INT, &fixtures, "N", "only the first N fixtures" },
		{ "line", 0, ST_OPT_STRING, &ctx->line_url, "URL",
		  "line mode: serials, quota and uniqueness from this PostgreSQL (docs/LINE.md)" },
		{ "reason", 0, ST_OPT_STRING, &reason, "TEXT", "why the reissue (recorded)" },
		{ "reissue", 0, ST_OPT_FLAG, &reissue, NULL,
		  "let finished or rejected (unlocked) boards go through again with their "
		  "serial; needs the supervisor pin and --reason" },
		ST_OPTIONS_END,
	};
	struct st_line l;
	struct exp_background *bg = NULL;
	char by[128];
	int first, code;
	imp_err rc;

	rc = st_parse_options(opts,
			      "imprint provision [--fixtures N | --all] [--count M] "
			      "[--reissue --reason TEXT] [--line URL]",
			      argc, argv, &first, &help);
	if (rc != IMP_OK || help)
		return (int)rc;
	if (reissue && (!reason || !*reason)) {
		IMP_ERROR("--reissue needs --reason TEXT: the reason is recorded in the journal");
		return IMP_ERR_USAGE;
	}
	if (all)
		fixtures = 0;
	rc = st_line_open(ctx, &l, ST_LINE_HSM | ST_LINE_BOARDS);
	if (rc == IMP_OK && reissue) {
		rc = st_supervisor_check(ctx, &l.cfg);
		snprintf(by, sizeof(by), "supervisor (operator %s)",
			 l.station.operator_name ? l.station.operator_name : "unknown");
		l.station.reissue_reason = reason;
		l.station.reissue_by = by;
	}
	if (rc != IMP_OK) {
		st_line_close(&l);
		return st_fail(rc, "nothing was provisioned");
	}
	/* With a registry configured, records are delivered while boards run. */
	if (exp_background_start(l.journal, &l.cfg, &bg) != IMP_OK)
		IMP_WARN("no delivery in the background: run 'imprint export' after this run");
	code = st_provision_run(ctx, &l, (size_t)fixtures, (uint64_t)count);
	exp_background_stop(bg);
	st_line_close(&l);
	return code;
}
