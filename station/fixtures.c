/*
 * Running the fixtures: the stop handlers, the progress shown while boards
 * run, and the summary of the results; shared by provision, resume and demo.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "event_line.h"
#include "imprint/log.h"
#include "live.h"
#include "run.h"

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
	/* The operator's terminal or SSH session closed: the same clean stop
	 * (the boards in flight stop where they stand, resumable), not death
	 * in the middle of a step. */
	sigaction(SIGHUP, &sa, NULL);
}

void st_run_fixtures(struct station_ctx *ctx, struct st_run *l, const struct fmt_fixture *fx,
		     size_t n, struct prov_result *res)
{
	if (st_live_wanted(ctx))
		st_live_start(l->journal, fx, n, l->station.continuous);
	prov_run_fixtures(&l->station, fx, n, res);
	if (st_live_active()) {
		for (size_t i = 0; i < n; i++)
			st_live_result(fx[i].name, &res[i]);
		st_live_stop();
	}
}

/*
 * Every fixture the run takes can be driven: a probe through a GDB server
 * and a UART. Checked once, before any fixture starts (a station on the
 * defaults has F1 on sim:, a placeholder), after the set-up's own checks.
 */
static imp_err fixtures_drivable(const struct fmt_fixture *fixtures, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct fmt_fixture *fx = &fixtures[i];

		if (fx->probe_kind == FMT_PROBE_SIM) {
			IMP_ERROR("fixture %s: its probe is sim:, the placeholder of a station "
				  "without a configuration: provisioning drives each board through "
				  "a GDB server (rsp://HOST:PORT, openocd://CONFIG or "
				  "rsp+serial:///dev/TTY) and its UART; configure the fixtures "
				  "(docs/CONFIG.md), or run the station on virtual boards with "
				  "'imprint demo'", fx->name);
			return IMP_ERR_CONFIG;
		}
		if (!fx->uart) {
			IMP_ERROR("fixture %s: no uart: give the board's serial device "
				  "(fixtures[].uart, docs/CONFIG.md)", fx->name);
			return IMP_ERR_CONFIG;
		}
	}
	return IMP_OK;
}

int st_provision_run(struct station_ctx *ctx, struct st_run *l, size_t nfix, uint64_t count)
{
	struct prov_result *res;
	int code;

	if (nfix == 0 || nfix > l->cfg.fixture_count)
		nfix = l->cfg.fixture_count;
	code = (int)fixtures_drivable(l->cfg.fixtures, nfix);
	if (code != IMP_OK)
		return st_fail((imp_err)code, NULL);
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
	/* The OpenOCDs of the fixtures this run uses, kept until st_run_close. */
	prov_fixtures_start(&l->cfg, nfix);
	st_run_fixtures(ctx, l, l->cfg.fixtures, nfix, res);
	st_run_checkpoint(l); /* the end of every run is signed */
	if (l->station.continuous)
		code = st_report_continuous(ctx, l->cfg.fixtures, res, nfix);
	else
		code = st_report_results(ctx, l->cfg.fixtures, res, nfix);
	if (code == IMP_ERR_QUOTA)
		IMP_ERROR("production quota reached: no new serial was issued; raise 'quota' in "
			  "the configuration if more boards are authorised");
	else if (code == IMP_ERR_INTERRUPTED && l->station.continuous)
		IMP_INFO("stopped; a board left in flight continues with 'imprint resume' or "
			 "when it is back on a fixture");
	else if (code == IMP_ERR_INTERRUPTED)
		IMP_ERROR("stopped; run 'imprint resume' to finish the boards in flight");
	else if (code != 0)
		st_results_hint(l->cfg.fixtures, res, nfix, false);
	free(res);
	return code;
}

/* ---------------------------------------------------------- progress */

static pthread_mutex_t progress_lock = PTHREAD_MUTEX_INITIALIZER;

/* Continuous mode off the live board: what a fixture waits for. */
static const char *waiting_for(const struct prov_progress *p)
{
	return p->activity == PROV_ACT_WAIT_BOARD ? "board" : "removal";
}

void st_progress(void *arg, const struct prov_progress *p)
{
	struct station_ctx *ctx = arg;

	if (st_live_active()) {
		st_live_progress(p);
		return;
	}
	if (p->activity == PROV_ACT_FLASH)
		return; /* only the live board shows the programming progress */
	if (ctx->json) {
		/* The line is built in place, then written whole without a
		 * lock to a regular file (st_out_line). */
		char buf[ST_EVENT_LINE_MAX], ts[32], *line;
		size_t n;

		st_event_ts(ts);
		n = p->activity != PROV_ACT_BOARD ? st_fixture_event_text(p, ts, buf, sizeof(buf))
						  : st_board_event_text(p, ts, buf, sizeof(buf));
		if (n) {
			st_out_line(buf, n);
			return;
		}
		/* Longer strings or text that is not ASCII: through jansson. */
		line = st_event_line(
			ctx, p->activity != PROV_ACT_BOARD
				     ? json_pack("{s:s, s:s, s:s, s:s, s:i}", "event", "fixture",
						 "fixture", p->fixture, "waiting", waiting_for(p),
						 "message", p->message, "taken", (int)p->boards)
				     : st_board_event(p));
		if (!line)
			return;
		st_out_line(line, strlen(line));
		free(line);
		return;
	}
	pthread_mutex_lock(&progress_lock);
	if (p->activity != PROV_ACT_BOARD) {
		if (imp_log_get_level() >= IMP_LOG_INFO)
			fprintf(stderr, "[%-6s] %s\n", p->fixture, p->message);
	} else if (p->rc != IMP_OK || imp_log_get_level() >= IMP_LOG_INFO) {
		fprintf(stderr, "[%-6s] %-9s %-10s %s%s%s (%.2fs)\n", p->fixture,
			jnl_state_name(p->state), p->serial[0] ? p->serial : "-",
			p->uid[0] ? p->uid : "", p->message[0] ? "  " : "", p->message, p->elapsed_s);
	}
	pthread_mutex_unlock(&progress_lock);
}

/* ------------------------------------------------------------ summary */

/* A fixture's "result" event: written in place, or through jansson when
 * its text needs it. */
static void report_result(struct station_ctx *ctx, const char *fixture,
			  const struct prov_result *r)
{
	char buf[ST_EVENT_LINE_MAX], ts[32], id[JNL_RECORD_ID_MAX];
	struct jnl *j = ctx->run->journal;
	size_t n;

	st_result_record_id(j, r, id);
	st_event_ts(ts);
	n = st_result_event_text(fixture, r, id, ts, buf, sizeof(buf));
	if (n) {
		fflush(stdout);
		st_out_line(buf, n);
	} else {
		st_emit(ctx, st_result_event(j, fixture, r), NULL, NULL);
	}
}

void st_emit_summary(struct station_ctx *ctx, const struct st_tally *t)
{
	st_emit(ctx, json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:i}", "event", "summary", "done",
			       t->done, "already", t->already, "failed", t->failed, "stopped",
			       t->stopped, "quarantined", t->quarantined, "not_taken",
			       t->not_taken),
		NULL, NULL);
}

int st_report_results(struct station_ctx *ctx, const struct fmt_fixture *fx,
		      const struct prov_result *res, size_t n)
{
	struct st_tally t = { 0 };
	imp_err first = IMP_OK;

	for (size_t i = 0; i < n; i++) {
		const struct prov_result *r = &res[i];

		if (r->already_done)
			t.already++;
		else if (r->rc == IMP_OK && r->state == JNL_ST_DONE)
			t.done++;
		else if (r->quarantined)
			t.quarantined++;
		else if (r->not_taken)
			t.not_taken++;
		else if (r->rc == IMP_ERR_INTERRUPTED)
			t.stopped++; /* stopped by a signal where it stood: resumable */
		else if (r->rc != IMP_OK)
			t.failed++;
		if (r->rc != IMP_OK && first == IMP_OK)
			first = r->rc;
		if (ctx->json)
			report_result(ctx, fx[i].name, r);
	}
	if (ctx->json)
		st_emit_summary(ctx, &t);
	else
		printf("boards: %u done, %u already done, %u failed, %u quarantined\n", t.done,
		       t.already, t.failed, t.quarantined);
	if (!ctx->json && t.not_taken)
		printf("boards: %u not taken (%s): left as they are, nothing journaled\n",
		       t.not_taken,
		       ctx->run->station.only_known
			       ? "new to the journal; a resume takes only boards in flight"
			       : "the run's --count was reached");
	if (!ctx->json && t.stopped)
		printf("boards: %u stopped where they stood by the signal: 'imprint resume' goes on "
		       "with them\n", t.stopped);
	return (int)first;
}

/* ------------------------------------------------- continuous summary */

int st_report_continuous(struct station_ctx *ctx, const struct fmt_fixture *fx,
			 const struct prov_result *res, size_t n)
{
	struct prov_tally all = { 0 };
	imp_err first = IMP_OK;

	for (size_t i = 0; i < n; i++) {
		const struct prov_tally *t = &res[i].tally;

		all.boards += t->boards;
		all.done += t->done;
		all.already_done += t->already_done;
		all.failed += t->failed;
		all.rejected += t->rejected;
		all.quarantined += t->quarantined;
		all.serials_held += t->serials_held;
		if (res[i].rc != IMP_ERR_INTERRUPTED && first == IMP_OK)
			first = res[i].rc;
		if (ctx->json)
			st_emit(ctx, json_pack("{s:s, s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i}",
					       "event", "fixture_summary", "fixture", fx[i].name,
					       "taken", t->boards, "done", t->done,
					       "already", t->already_done, "failed", t->failed,
					       "rejected", t->rejected, "quarantined", t->quarantined,
					       "code", (int)res[i].rc),
				NULL, NULL);
	}
	if (ctx->json)
		st_emit(ctx, json_pack("{s:s, s:b, s:i, s:i, s:i, s:i, s:i, s:i, s:i}", "event",
				       "summary", "continuous", 1, "taken", all.boards, "done",
				       all.done, "already", all.already_done, "failed",
				       all.failed, "rejected", all.rejected, "quarantined",
				       all.quarantined, "serials_held", all.serials_held),
			NULL, NULL);
	else
		printf("boards: %u done, %u already done, %u failed, %u quarantined\n"
		       "continuous: %u boards taken on %zu fixtures, %u of them rejected\n",
		       all.done, all.already_done, all.failed, all.quarantined, all.boards, n,
		       all.rejected);
	if (all.serials_held)
		IMP_WARN("%u failed boards hold a serial (counted in the quota): a rejected one "
			 "keeps it for good, one in flight continues with it when it is back on a "
			 "fixture; 'imprint status' lists them", all.serials_held);
	return first != IMP_OK ? (int)first : (int)IMP_ERR_INTERRUPTED;
}
