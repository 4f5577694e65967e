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

#include "imprint/log.h"
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
}

int st_provision_run(struct station_ctx *ctx, struct st_run *l, size_t nfix, uint64_t count)
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
	st_run_checkpoint(l); /* the end of every run is signed */
	code = st_report_results(ctx, l->cfg.fixtures, res, nfix);
	if (code == IMP_ERR_QUOTA)
		IMP_ERROR("production quota reached: no new serial was issued; raise 'quota' in "
			  "the configuration if more boards are authorised");
	else if (code == IMP_ERR_INTERRUPTED)
		IMP_ERROR("stopped; run 'imprint resume' to finish the boards in flight");
	else if (code != 0)
		st_results_hint(l->cfg.fixtures, res, nfix);
	free(res);
	return code;
}

/* ---------------------------------------------------------- progress */

static pthread_mutex_t progress_lock = PTHREAD_MUTEX_INITIALIZER;

/* On a terminal: one live line per fixture, redrawn in place. */
#define LIVE_MAX 64
static struct {
	char fixture[32];
	char line[160];
} live[LIVE_MAX];
static int live_n, live_drawn;

static void live_update(const struct prov_progress *p)
{
	int i;

	for (i = 0; i < live_n; i++)
		if (strcmp(live[i].fixture, p->fixture) == 0)
			break;
	if (i == live_n) {
		if (live_n == LIVE_MAX)
			return;
		snprintf(live[live_n++].fixture, sizeof(live[0].fixture), "%s", p->fixture);
	}
	snprintf(live[i].line, sizeof(live[i].line), "%-6s %-9s %-12s %-32s %6.2fs %s",
		 p->fixture, jnl_state_name(p->state), p->serial[0] ? p->serial : "-", p->uid,
		 p->elapsed_s, p->rc == IMP_OK ? p->message : imp_err_str(p->rc));
	if (live_drawn)
		fprintf(stderr, "\033[%dA", live_drawn);
	for (int k = 0; k < live_n; k++)
		fprintf(stderr, "\r\033[2K%s\n", live[k].line);
	live_drawn = live_n;
	fflush(stderr);
}

void st_progress(void *arg, const struct prov_progress *p)
{
	struct station_ctx *ctx = arg;

	pthread_mutex_lock(&progress_lock);
	if (ctx->json) {
		st_emit(ctx, st_board_event(p), NULL, NULL);
	} else if (isatty(STDERR_FILENO) && imp_log_get_level() <= IMP_LOG_INFO) {
		live_update(p);
	} else if (p->rc != IMP_OK || imp_log_get_level() >= IMP_LOG_INFO) {
		fprintf(stderr, "[%-6s] %-9s %-10s %s%s%s (%.2fs)\n", p->fixture,
			jnl_state_name(p->state), p->serial[0] ? p->serial : "-",
			p->uid[0] ? p->uid : "", p->message[0] ? "  " : "", p->message, p->elapsed_s);
	}
	pthread_mutex_unlock(&progress_lock);
}

/* ------------------------------------------------------------ summary */

int st_report_results(struct station_ctx *ctx, const struct fmt_fixture *fx,
		      const struct prov_result *res, size_t n)
{
	unsigned done = 0, already = 0, failed = 0, quarantined = 0;
	imp_err first = IMP_OK;

	for (size_t i = 0; i < n; i++) {
		const struct prov_result *r = &res[i];

		if (r->already_done)
			already++;
		else if (r->rc == IMP_OK && r->state == JNL_ST_DONE)
			done++;
		else if (r->quarantined)
			quarantined++;
		else if (r->rc != IMP_OK)
			failed++;
		if (r->rc != IMP_OK && first == IMP_OK)
			first = r->rc;
		if (ctx->json)
			st_emit(ctx, st_result_event(ctx->run->journal, fx[i].name, r), NULL, NULL);
	}
	if (ctx->json)
		st_emit(ctx, json_pack("{s:s, s:i, s:i, s:i, s:i}", "event", "summary", "done",
				       done, "already", already, "failed", failed,
				       "quarantined", quarantined),
			NULL, NULL);
	else
		printf("boards: %u done, %u already done, %u failed, %u quarantined\n", done,
		       already, failed, quarantined);
	return (int)first;
}
