/*
 * imprint resume: finish every board the journal has in flight. Boards that
 * only miss their record are finished without the board; the others are
 * taken up on their fixture, from the state the journal holds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imprint/log.h"
#include "line.h"

struct resume_scan {
	const struct fmt_config *cfg;
	bool *wanted;        /* per fixture */
	unsigned orphans;    /* boards whose fixture is not configured */
	unsigned total;
};

static int scan_cb(void *arg, const struct jnl_board *b)
{
	struct resume_scan *s = arg;

	s->total++;
	if (b->state == JNL_ST_RECORD)
		return 0;
	for (size_t i = 0; i < s->cfg->fixture_count; i++) {
		if (strcmp(s->cfg->fixtures[i].name, b->fixture) == 0) {
			s->wanted[i] = true;
			return 0;
		}
	}
	s->orphans++;
	IMP_WARN("board %s (%s) was on fixture '%s', which is not configured; put it on a "
		 "fixture and run 'imprint provision' to continue it", b->uid, b->serial,
		 b->fixture);
	return 0;
}

int cmd_resume(int argc, char **argv, struct station_ctx *ctx)
{
	bool help = false;
	const struct st_option opts[] = { ST_OPTIONS_END };
	struct st_line l;
	struct resume_scan scan = { 0 };
	struct fmt_fixture *fx = NULL;
	struct prov_result *res = NULL;
	unsigned finished = 0;
	size_t n = 0;
	int first, code = 0;
	imp_err rc;

	rc = st_parse_options(opts, "imprint resume", argc, argv, &first, &help);
	if (rc != IMP_OK || help)
		return (int)rc;
	rc = st_line_open(ctx, &l, ST_LINE_HSM | ST_LINE_BOARDS);
	if (rc != IMP_OK)
		goto cleanup;
	st_install_stop_handlers();
	l.station.progress = st_progress;
	l.station.progress_arg = ctx;
	l.station.stop = &st_stop_requested;
	rc = prov_finish_records(&l.station, &finished);
	if (rc != IMP_OK)
		goto cleanup;
	if (finished)
		IMP_INFO("%u locked boards got their record", finished);

	scan.cfg = &l.cfg;
	scan.wanted = calloc(l.cfg.fixture_count + 1, sizeof(bool));
	fx = calloc(l.cfg.fixture_count + 1, sizeof(*fx));
	res = calloc(l.cfg.fixture_count + 1, sizeof(*res));
	if (!scan.wanted || !fx || !res) {
		rc = IMP_ERR_NOMEM;
		goto cleanup;
	}
	rc = jnl_list_unfinished(l.journal, scan_cb, &scan);
	if (rc != IMP_OK)
		goto cleanup;
	for (size_t i = 0; i < l.cfg.fixture_count; i++)
		if (scan.wanted[i])
			fx[n++] = l.cfg.fixtures[i];
	if (n == 0) {
		if (!ctx->json)
			printf("nothing in flight%s\n", scan.orphans ? " on configured fixtures" : "");
		code = scan.orphans ? IMP_ERR_NOT_FOUND : 0;
		goto cleanup;
	}
	prov_run_fixtures(&l.station, fx, n, res);
	code = st_report_results(ctx, fx, res, n);
	if (code == 0 && scan.orphans)
		code = IMP_ERR_NOT_FOUND;
cleanup:
	free(scan.wanted);
	free(fx);
	free(res);
	st_line_close(&l);
	if (rc != IMP_OK)
		return st_fail(rc, "run 'imprint status' to see the journal");
	return code;
}
