/*
 * imprint provision: take every board on the selected fixtures from blank
 * to locked and recorded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exp/export.h"
#include "imprint/log.h"
#include "board_plan.h"
#include "run.h"

static struct {
	long fixtures, count;
	bool all, reissue, dry_run, continuous;
	const char *reason;
} o = { .fixtures = -1, .count = -1 }; /* -1: --fixtures, --count not given */

static const struct st_option provision_opts[] = {
	{ "all", 'a', ST_OPT_FLAG, &o.all, NULL, "every fixture of the configuration (default)" },
	{ "continuous", 'c', ST_OPT_FLAG, &o.continuous, NULL,
	  "each fixture waits for a board, provisions it, waits for it to leave and takes "
	  "the next, until ctrl-c (exit 29, resumable)" },
	{ "count", 'n', ST_OPT_INT, &o.count, "M",
	  "start at most M new boards in this run; a board beyond them is left as it is (not taken)" },
	{ "dry-run", 0, ST_OPT_FLAG, &o.dry_run, NULL,
	  "spend nothing (no serial, no key, no record): print each fixture's fuse plan, "
	  "read from its board" },
	{ "fixtures", 'f', ST_OPT_INT, &o.fixtures, "N", "only the first N fixtures" },
	{ "line", 0, ST_OPT_STRING, &st_ctx.line_url, "URL",
	  "line mode: serials, quota and uniqueness from this PostgreSQL (docs/LINE.md)" },
	{ "reason", 0, ST_OPT_STRING, &o.reason, "TEXT", "why the reissue (recorded)" },
	{ "reissue", 0, ST_OPT_FLAG, &o.reissue, NULL,
	  "let finished or rejected (unlocked) boards go through again with their "
	  "serial; needs the supervisor pin and --reason" },
	ST_OPTIONS_END,
};

static imp_err provision_check(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	if (o.reason && !st_plain_text(o.reason)) {
		IMP_ERROR("--reason holds a control character (a newline, tab or escape): give it "
			  "as one line of plain text, it is recorded in the journal");
		return IMP_ERR_USAGE;
	}
	if (o.reissue && !st_has_text(o.reason)) {
		IMP_ERROR("--reissue needs --reason TEXT: the reason is recorded in the journal");
		return IMP_ERR_USAGE;
	}
	if (o.continuous && o.dry_run) {
		IMP_ERROR("--continuous and --dry-run exclude each other: a dry run reads the "
			  "boards on the fixtures once; drop one of them");
		return IMP_ERR_USAGE;
	}
	if (o.count == 0) {
		IMP_ERROR("--count 0: give the most new boards to take, 1 or more, or leave it out "
			  "for every board on the fixtures");
		return IMP_ERR_USAGE;
	}
	if (o.reason && !o.reissue) {
		IMP_ERROR("--reason goes with --reissue (it is the reissue's recorded reason); add "
			  "--reissue or drop --reason");
		return IMP_ERR_USAGE;
	}
	if (o.fixtures == 0) {
		IMP_ERROR("--fixtures 0: give the number of fixtures to take up, 1 or more (the "
			  "first N of the configuration), or leave it out for every fixture");
		return IMP_ERR_USAGE;
	}
	if (o.all && o.fixtures > 0) {
		IMP_ERROR("--fixtures N and --all exclude each other: --all is every fixture of "
			  "the configuration; drop one of them");
		return IMP_ERR_USAGE;
	}
	return IMP_OK;
}

/* --fixtures N against the configuration's fixtures (0: every one). */
static imp_err fixtures_taken(const struct st_run *l, size_t *n)
{
	*n = o.fixtures > 0 ? (size_t)o.fixtures : 0;
	if (*n > l->cfg.fixture_count) {
		IMP_ERROR("--fixtures %ld: the configuration has %zu fixture%s; give 1 to %zu, or "
			  "add the fixtures to the configuration", o.fixtures, l->cfg.fixture_count,
			  l->cfg.fixture_count == 1 ? "" : "s", l->cfg.fixture_count);
		return IMP_ERR_USAGE;
	}
	return IMP_OK;
}

/* --dry-run: each fixture's board read, its fuse plan printed; nothing written. */
static int provision_dry_run(struct station_ctx *ctx, struct st_run *l)
{
	size_t n;
	imp_err first = fixtures_taken(l, &n);

	if (first != IMP_OK)
		return (int)first;
	if (n == 0)
		n = l->cfg.fixture_count;
	for (size_t i = 0; i < n; i++) {
		const struct fmt_fixture *fx = &l->cfg.fixtures[i];
		json_t *out = NULL;
		imp_err rc;

		rc = st_board_plan(l->profile, fx->probe, fx->uart, fx->baud,
				   l->profile->permanent_lock_allowed, l->station.firmware ? 1 : 0,
				   &out);
		if (rc != IMP_OK) {
			IMP_ERROR("%s: no plan: the board could not be read (%s)", fx->name,
				  imp_err_name(rc));
			if (first == IMP_OK)
				first = rc;
			continue;
		}
		json_object_set_new(out, "fixture", json_string(fx->name));
		if (!ctx->json)
			printf("fixture %s\n", fx->name);
		st_emit(ctx, out, st_board_plan_print, NULL);
	}
	if (!ctx->json)
		printf("dry run: nothing was written, no serial, key or record was made\n");
	if (first != IMP_OK)
		return st_fail(first, "check the fixtures' probes and that the boards are powered");
	return 0;
}

static int provision_run(struct station_ctx *ctx, int argc, char **argv)
{
	struct st_run *l = ctx->run;
	struct exp_background *bg = NULL;
	char by[128];
	int code;
	imp_err rc = IMP_OK;

	size_t nfx;

	(void)argc;
	(void)argv;
	rc = fixtures_taken(l, &nfx);
	if (rc != IMP_OK)
		return (int)rc;
	if (o.dry_run)
		return provision_dry_run(ctx, l);
	if (o.reissue) {
		rc = st_supervisor_check(ctx, &l->cfg);
		snprintf(by, sizeof(by), "supervisor (operator %s)",
			 l->station.operator_name ? l->station.operator_name : "unknown");
		l->station.reissue_reason = o.reason;
		l->station.reissue_by = by;
	}
	if (rc == IMP_OK && l->profile && l->profile->permanent_lock_allowed) {
		/* A lock that can never be undone: a supervisor confirms it for
		 * this run, before any board is touched. */
		IMP_WARN("profile %s burns a PERMANENT lock (%s): every board of this run is "
			 "closed for good; a supervisor confirms with the supervisor pin",
			 l->profile->name, l->profile->path ? l->profile->path : "");
		rc = st_supervisor_confirm(ctx, &l->cfg, "the permanent lock");
		if (rc != IMP_OK)
			return st_fail(rc, "the permanent lock was not confirmed; nothing was provisioned");
		l->station.permanent_lock_confirmed = true;
	}
	if (rc != IMP_OK)
		return st_fail(rc, "nothing was provisioned");
	/* With a registry configured, records are delivered while boards run. */
	if (exp_background_start(l->journal, &l->cfg, &bg) != IMP_OK)
		IMP_WARN("no delivery in the background: run 'imprint export' after this run");
	l->station.continuous = o.continuous;
	code = st_provision_run(ctx, l, nfx, o.count > 0 ? (uint64_t)o.count : 0);
	exp_background_stop(bg);
	return code;
}

const struct st_command st_cmd_provision = {
	.name = "provision",
	.fn = provision_run,
	.need = NEED_BOARDS,
	.summary = "take the boards on the fixtures from blank to locked and recorded",
	.usage = "imprint provision [--fixtures N | --all] [--count M] [--continuous] "
		 "[--reissue --reason TEXT] [--line URL] [--dry-run]",
	.opts = provision_opts,
	.check = provision_check,
	.help = "A worker per fixture takes its board through CONNECT, IDENTIFY, ALLOCATE, "
		"KEYS, CERTIFY, INJECT, FIRMWARE, CHALLENGE, LOCK and RECORD (steps 1 to 10 "
		"of 11, DONE the 11th), journaling every step before it acts "
		"(docs/PROVISIONING.md). The fuses are burnt only after every check before "
		"them passed, and the lock is verified from outside. Boards already done "
		"are reported and left alone; a locked board unknown to the journal is "
		"quarantined, not touched. After a failure the closing lines say what to "
		"do: 'imprint resume' for boards in flight, 'imprint boards --state FAILED' "
		"for rejected ones. --reissue (with a supervisor's pin) takes boards done "
		"or rejected, and not locked, through again with their serial. With --json, "
		"one event per step and per result (docs/EVENTS.md). The exit code is the "
		"first board error; 0 when every board is done. With --continuous each "
		"fixture waits for a board (its agent answers on the UART), provisions it, "
		"waits until it has left (the UART is silent) or another board answers, and "
		"takes the next, until SIGINT or SIGTERM: workers stop between steps, the "
		"exit code is 29 and a board left in flight continues with 'imprint resume'. "
		"A failed board keeps the serial it was given (counted in the quota): put "
		"back on a fixture it continues with it; a rejected one never gives it to "
		"another board. On a terminal a live board shows the totals, every fixture "
		"and the last failures.",
	.exits = (const imp_err[]){ IMP_ERR_IO, IMP_ERR_PIN, IMP_ERR_NOT_FOUND, IMP_ERR_VERIFY,
				    IMP_ERR_PROBE, IMP_ERR_TARGET_LOCKED, IMP_ERR_LINK,
				    IMP_ERR_PROTOCOL, IMP_ERR_TIMEOUT, IMP_ERR_BOARD,
				    IMP_ERR_QUOTA, IMP_ERR_QUARANTINE, IMP_ERR_DUPLICATE,
				    IMP_ERR_CHALLENGE, IMP_ERR_INTERRUPTED, IMP_OK },
	.example = "imprint provision\nimprint --json provision --fixtures 2 --count 10\n"
		   "imprint provision --continuous",
};
