/*
 * imprint boards [--state S]: every board the journal holds, one line (or
 * one JSON object) each, oldest first.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "imprint/log.h"
#include "run.h"

static const char *state_opt;

static const struct st_option boards_opts[] = {
	{ "state", 's', ST_OPT_STRING, &state_opt, "STATE",
	  "only the boards in STATE: CONNECT ... RECORD (in flight), DONE, FAILED or "
	  "QUARANTINED (any case)" },
	ST_OPTIONS_END,
};

/* The --state value, upper-cased and parsed. */
static imp_err parse_state(enum jnl_state *out)
{
	char name[32];
	size_t i;

	for (i = 0; state_opt[i] && i + 1 < sizeof(name); i++)
		name[i] = (char)toupper((unsigned char)state_opt[i]);
	name[i] = '\0';
	if (state_opt[i] || jnl_state_parse(name, out) != IMP_OK) {
		IMP_ERROR("boards: --state takes one of CONNECT, IDENTIFY, ALLOCATE, KEYS, CERTIFY, "
			  "INJECT, FIRMWARE, CHALLENGE, LOCK, RECORD, DONE, FAILED, QUARANTINED "
			  "(got '%s')", state_opt);
		return IMP_ERR_USAGE;
	}
	return IMP_OK;
}

static imp_err boards_check(int argc, char **argv)
{
	enum jnl_state s;

	(void)argc;
	(void)argv;
	return state_opt ? parse_state(&s) : IMP_OK;
}

struct boards_list {
	struct station_ctx *ctx;
	unsigned n;
};

/* Where the board stopped: the step of its last error for a rejected
 * board, the step it is at for one in flight, nothing once it is done. */
static const char *board_step(const struct jnl_board *b, const char *error_step)
{
	if (b->state == JNL_ST_FAILED)
		return error_step ? error_step : NULL;
	if (b->state < JNL_ST_DONE)
		return jnl_state_name(b->state);
	return NULL;
}

static void print_board(const json_t *o, void *arg)
{
	struct boards_list *l = arg;
	const char *serial = json_string_value(json_object_get(o, "serial"));
	const char *fixture = json_string_value(json_object_get(o, "fixture"));
	const char *step = json_string_value(json_object_get(o, "step_name"));
	const char *err = json_string_value(json_object_get(o, "error"));
	const char *updated = json_string_value(json_object_get(o, "updated"));
	const char *state = json_string_value(json_object_get(o, "state"));

	if (l->n == 0)
		printf("%-12s %-32s %-11s %-8s %-10s %-20s %s\n", "SERIAL", "UID", "STATE",
		       "FIXTURE", "STEP", "UPDATED (UTC)", "LAST ERROR");
	/* 2026-12-01T06:00:00.123Z shown to the second. */
	printf("%-12s %-32s %-11s %-8s %-10s %.19s%-1s %s\n", serial ? serial : "-",
	       json_string_value(json_object_get(o, "uid")), state, fixture ? fixture : "-",
	       step ? step : "-", updated ? updated : "-", updated ? "Z" : "",
	       err ? err : "");
}

static int board_cb(void *arg, const struct jnl_board *b, const char *error_step)
{
	struct boards_list *l = arg;
	const char *step = board_step(b, error_step);
	enum jnl_state at;
	json_t *o;

	o = json_pack("{s:s, s:s?, s:s, s:s, s:s?, s:s?, s:s?, s:i, s:i, s:s, s:s}",
		      "event", "board_entry", "serial", b->serial[0] ? b->serial : NULL, "uid",
		      b->uid, "state", jnl_state_name(b->state), "fixture",
		      b->fixture[0] ? b->fixture : NULL, "step_name", step, "key_mode",
		      b->key_mode[0] ? b->key_mode : NULL, "attempts", (int)b->attempts,
		      "reissues", (int)b->reissues, "created", b->created, "updated", b->updated);
	if (!o)
		return 1;
	if (step && jnl_state_parse(step, &at) == IMP_OK) {
		json_object_set_new(o, "step", json_integer(st_step_number(at)));
		json_object_set_new(o, "steps", json_integer(ST_STEPS));
	}
	/* An error at a step the board has since left is history, not its state. */
	if (b->last_error != IMP_OK && st_error_current(b->state, error_step)) {
		json_object_set_new(o, "code", json_integer((json_int_t)b->last_error));
		json_object_set_new(o, "error", json_string(b->last_error_msg));
		json_object_set_new(o, "error_step",
				    error_step ? json_string(error_step) : json_null());
	}
	st_emit(l->ctx, o, print_board, l);
	l->n++;
	return 0;
}

static int boards_run(struct station_ctx *ctx, int argc, char **argv)
{
	struct boards_list l = { ctx, 0 };
	enum jnl_state s;
	imp_err rc = IMP_OK;

	(void)argc;
	(void)argv;
	if (state_opt)
		rc = parse_state(&s);
	if (rc == IMP_OK)
		rc = jnl_list_boards(ctx->run->journal, state_opt ? &s : NULL, board_cb, &l);
	if (rc != IMP_OK) {
		IMP_ERROR("%s", jnl_last_error());
		return st_fail(rc, NULL);
	}
	if (l.n == 0 && !ctx->json)
		IMP_INFO(state_opt ? "no board in state %s" : "no board in the journal yet%s",
			 state_opt ? jnl_state_name(s) : "");
	return 0;
}

const struct st_command st_cmd_boards = {
	.name = "boards",
	.fn = boards_run,
	.need = NEED_JOURNAL,
	.summary = "list the boards in the journal: serial, uid, state, fixture, step, time",
	.usage = "imprint boards [--state STATE]",
	.opts = boards_opts,
	.max_args = 0,
	.check = boards_check,
	.help = "Lists every board this station's journal holds, oldest first: its serial (once "
		"allocated), chip uid, state, the fixture it was last on, the step it stands at "
		"(in flight) or was rejected at (FAILED), when it last changed, and its last error "
		"while that is current (one recorded at a step the board has since left stays "
		"in the journal's events only). "
		"Reads the journal only; nothing is changed. With --json, one object per board "
		"(\"event\": \"board_entry\"; docs/EVENTS.md). A board in flight is finished by "
		"'imprint resume'; a FAILED one goes through again only with 'imprint provision "
		"--reissue'.",
	.example = "imprint boards --state FAILED\n"
		   "imprint --json boards | python3 -c 'import json,sys; "
		   "print(sum(json.loads(l)[\"state\"] == \"DONE\" for l in sys.stdin))'",
};
