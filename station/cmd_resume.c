/*
 * imprint resume: finish every board the journal has in flight. Boards that
 * only miss their record are finished without the board; the others are
 * taken up on their fixture, from the state the journal holds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imprint/log.h"
#include "run.h"

struct resume_scan {
	const struct fmt_config *cfg;
	bool *wanted;        /* per fixture */
	unsigned orphans;    /* boards whose fixture is not configured */
	unsigned total;
};

/* The index of the configured fixture named name, or -1. */
static long fixture_index(const struct fmt_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->fixture_count; i++)
		if (strcmp(cfg->fixtures[i].name, name) == 0)
			return (long)i;
	return -1;
}

static int scan_cb(void *arg, const struct jnl_board *b)
{
	struct resume_scan *s = arg;
	long i;

	s->total++;
	if (b->state == JNL_ST_RECORD)
		return 0;
	i = fixture_index(s->cfg, b->fixture);
	if (i >= 0) {
		s->wanted[i] = true;
		return 0;
	}
	s->orphans++;
	IMP_WARN("board %s (%s) was on fixture '%s', which is not configured; put it on a "
		 "fixture and run 'imprint provision' to continue it", b->uid, b->serial,
		 b->fixture);
	return 0;
}

/* After the run: the boards still in flight that no fixture held. */
struct left_scan {
	const struct fmt_config *cfg;
	const struct fmt_fixture *fx; /* the fixtures the run took up, res[i] on fx[i] */
	const struct prov_result *res;
	size_t n;
	unsigned left;
};

static int left_cb(void *arg, const struct jnl_board *b)
{
	struct left_scan *s = arg;

	if (b->state == JNL_ST_RECORD)
		return 0;
	for (size_t i = 0; i < s->n; i++) {
		if (strcmp(s->res[i].uid, b->uid) == 0)
			return 0; /* taken up: its result says how it went */
		if (!s->res[i].uid[0] && s->res[i].rc != IMP_OK &&
		    strcmp(s->fx[i].name, b->fixture) == 0) {
			s->left++;
			return 0; /* no board answered there: said with the results */
		}
	}
	if (fixture_index(s->cfg, b->fixture) < 0)
		return 0; /* said before the run */
	s->left++;
	IMP_ERROR("board %s (%s, in flight at %s) was not on fixture %s: it is not finished; "
		  "put it back on %s and run 'imprint resume'", b->uid, b->serial,
		  jnl_state_name(b->state), b->fixture, b->fixture);
	return 0;
}

static int resume_run(struct station_ctx *ctx, int argc, char **argv)
{
	struct st_run *l = ctx->run;
	struct resume_scan scan = { 0 };
	struct fmt_fixture *fx = NULL;
	struct prov_result *res = NULL;
	unsigned finished = 0;
	size_t n = 0;
	int code = 0;
	imp_err rc;

	(void)argc;
	(void)argv;
	st_install_stop_handlers();
	l->station.progress = st_progress;
	l->station.progress_arg = ctx;
	l->station.stop = &st_stop_requested;
	l->station.only_known = true; /* a new board on a fixture is left alone */
	rc = prov_finish_records(&l->station, &finished);
	if (rc != IMP_OK)
		goto cleanup;
	if (finished)
		IMP_INFO("%u locked boards got their record", finished);

	scan.cfg = &l->cfg;
	scan.wanted = calloc(l->cfg.fixture_count + 1, sizeof(bool));
	fx = calloc(l->cfg.fixture_count + 1, sizeof(*fx));
	res = calloc(l->cfg.fixture_count + 1, sizeof(*res));
	if (!scan.wanted || !fx || !res) {
		rc = IMP_ERR_NOMEM;
		goto cleanup;
	}
	rc = jnl_list_unfinished(l->journal, scan_cb, &scan);
	if (rc != IMP_OK)
		goto cleanup;
	for (size_t i = 0; i < l->cfg.fixture_count; i++)
		if (scan.wanted[i])
			fx[n++] = l->cfg.fixtures[i];
	if (n == 0) {
		/* --json: the run's summary all the same (docs/EVENTS.md: one at
		 * the end), done counting the records finished without a board. */
		if (ctx->json)
			st_emit_summary(ctx, &(struct st_tally){ .done = finished });
		else
			printf("nothing in flight%s\n", scan.orphans ? " on configured fixtures" : "");
		code = scan.orphans ? IMP_ERR_NOT_FOUND : 0;
		goto cleanup;
	}
	st_run_fixtures(ctx, l, fx, n, res);
	st_run_checkpoint(l); /* the end of every run is signed */
	code = st_report_results(ctx, fx, res, n);
	if (code != 0 && code != IMP_ERR_INTERRUPTED)
		st_results_hint(fx, res, n, true);
	if (code != IMP_ERR_INTERRUPTED) {
		struct left_scan ls = { &l->cfg, fx, res, n, 0 };

		rc = jnl_list_unfinished(l->journal, left_cb, &ls);
		if (rc == IMP_OK && ls.left && code == 0)
			code = IMP_ERR_NOT_FOUND;
	}
	if (code == 0 && scan.orphans)
		code = IMP_ERR_NOT_FOUND;
cleanup:
	free(scan.wanted);
	free(fx);
	free(res);
	if (rc != IMP_OK)
		return st_fail(rc, "run 'imprint status' to see the journal");
	return code;
}

static const struct st_option resume_opts[] = {
	{ "line", 0, ST_OPT_STRING, &st_ctx.line_url, "URL",
	  "line mode: the line database (docs/LINE.md)" },
	ST_OPTIONS_END,
};

const struct st_command st_cmd_resume = {
	.name = "resume",
	.fn = resume_run,
	.need = NEED_BOARDS,
	.summary = "finish every board the journal has in flight",
	.usage = "imprint resume [--line URL]",
	.opts = resume_opts,
	.help = "Finishes every board the journal holds in flight after a crash, a power "
		"cut or a stop (exit 29): locked boards that only miss their record get it "
		"without the board; the others are taken up on their fixture from the state "
		"the journal holds. Rejected (FAILED) and quarantined boards are not in "
		"flight: 'imprint boards' lists them. Prints \"nothing in flight\" and exits "
		"0 when there is nothing to do. Only boards in flight are taken up: a board "
		"new to the journal found on one of their fixtures is left as it is (not "
		"taken). Exits 9 if a board in flight was on a fixture that is not "
		"configured, or was not on its fixture.",
	.exits = (const imp_err[]){ IMP_ERR_IO, IMP_ERR_NOT_FOUND, IMP_ERR_VERIFY,
				    IMP_ERR_PROBE, IMP_ERR_TARGET_LOCKED, IMP_ERR_LINK,
				    IMP_ERR_PROTOCOL, IMP_ERR_TIMEOUT, IMP_ERR_BOARD,
				    IMP_ERR_CHALLENGE, IMP_ERR_INTERRUPTED, IMP_OK },
	.example = "imprint resume",
};
