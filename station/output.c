/*
 * Output: result objects for people or as JSON lines (docs/EVENTS.md), the
 * failure line, the step numbers of --json events, and the exit codes of a
 * command.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "event_line.h"
#include "imprint/log.h"
#include "run.h"

char *st_event_line(struct station_ctx *ctx, json_t *obj)
{
	char ts[32], *s, *line = NULL;
	size_t n;

	if (!obj)
		return NULL;
	/* Every event says what it is and when it was written
	 * (docs/EVENTS.md). */
	if (!json_object_get(obj, "event") && ctx->event)
		json_object_set_new(obj, "event", json_string(ctx->event));
	if (!json_object_get(obj, "ts")) {
		st_event_ts(ts);
		json_object_set_new(obj, "ts", json_string(ts));
	}
	s = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(obj);
	if (!s)
		return NULL;
	n = strlen(s);
	line = realloc(s, n + 2);
	if (!line) {
		free(s);
		return NULL;
	}
	line[n] = '\n';
	line[n + 1] = '\0';
	return line;
}

void st_emit(struct station_ctx *ctx, json_t *obj,
	     void (*human)(const json_t *obj, void *arg), void *arg)
{
	if (!obj)
		return;
	if (ctx->json) {
		char *line = st_event_line(ctx, obj);

		if (line) {
			fputs(line, stdout);
			fflush(stdout);
			free(line);
		}
		return;
	}
	if (human) {
		human(obj, arg);
		fflush(stdout);
	}
	json_decref(obj);
}

int st_step_number(enum jnl_state s)
{
	return s <= JNL_ST_DONE ? (int)s + 1 : 0;
}

bool st_error_current(enum jnl_state state, const char *error_step)
{
	enum jnl_state at;

	if (state == JNL_ST_FAILED || state == JNL_ST_QUARANTINED)
		return true;
	if (state == JNL_ST_DONE)
		return false;
	if (!error_step || jnl_state_parse(error_step, &at) != IMP_OK || at > JNL_ST_DONE)
		return true;
	return state <= at;
}

int st_fail(imp_err rc, const char *next_step)
{
	if (rc == IMP_OK)
		return 0;
	if (next_step)
		IMP_ERROR("%s (%s, exit %d); %s", imp_err_str(rc), imp_err_name(rc), (int)rc,
			  next_step);
	else
		IMP_ERROR("%s (%s, exit %d)", imp_err_str(rc), imp_err_name(rc), (int)rc);
	return (int)rc;
}

/* What each set-up flag can fail with (st_setup, run.c, setup.c). */
static const struct {
	unsigned flag;
	imp_err codes[10];
} setup_exits[] = {
	{ ST_SETUP_DATA_DIR, { IMP_ERR_CONFIG, IMP_ERR_IO, IMP_ERR_INSECURE } },
	{ ST_SETUP_CONFIG, { IMP_ERR_CONFIG } },
	{ ST_SETUP_JOURNAL, { IMP_ERR_NOT_FOUND, IMP_ERR_JOURNAL } },
	{ ST_SETUP_HSM, { IMP_ERR_HSM, IMP_ERR_PIN, IMP_ERR_PIN_LOCKED, IMP_ERR_NOT_FOUND,
			  IMP_ERR_INSECURE, IMP_ERR_JOURNAL, IMP_ERR_UNSUPPORTED } },
	{ ST_SETUP_BOARDS, { IMP_ERR_NOT_FOUND, IMP_ERR_IO, IMP_ERR_FIRMWARE,
			     IMP_ERR_UNSUPPORTED } },
};

static void exits_add(const struct st_command *c, bool seen[IMP_ERR__COUNT])
{
	for (size_t i = 0; i < sizeof(setup_exits) / sizeof(setup_exits[0]); i++)
		if (c->need & setup_exits[i].flag)
			for (size_t k = 0; k < 10 && setup_exits[i].codes[k] != IMP_OK; k++)
				seen[setup_exits[i].codes[k]] = true;
	for (const imp_err *e = c->exits; e && *e != IMP_OK; e++)
		if ((unsigned)*e < IMP_ERR__COUNT)
			seen[*e] = true;
	for (const struct st_command *const *s = c->subs; s && *s; s++)
		exits_add(*s, seen);
}

size_t st_command_exit_codes(const struct st_command *c, imp_err out[IMP_ERR__COUNT])
{
	bool seen[IMP_ERR__COUNT] = { false };
	size_t n = 0;

	seen[IMP_OK] = seen[IMP_ERR_USAGE] = true;
	exits_add(c, seen);
	for (int e = 0; e < IMP_ERR__COUNT; e++)
		if (seen[e])
			out[n++] = (imp_err)e;
	return n;
}

/* ---------------------------------------------- the fixtures' events */

/* The step fields of an event: where the board is (k of ST_STEPS) and,
 * after an error, which step failed. */
static void step_fields(json_t *o, enum jnl_state state, imp_err rc, enum jnl_state failed)
{
	enum jnl_state at = rc != IMP_OK ? failed : state;

	if (st_step_number(at) > 0) {
		json_object_set_new(o, "step", json_integer(st_step_number(at)));
		json_object_set_new(o, "steps", json_integer(ST_STEPS));
	}
	if (rc != IMP_OK) {
		json_object_set_new(o, "failed_step", json_string(jnl_state_name(failed)));
		json_object_set_new(o, "code_name", json_string(imp_err_name(rc)));
	}
}

json_t *st_board_event(const struct prov_progress *p)
{
	json_t *o = json_pack("{s:s, s:s, s:s?, s:s?, s:s, s:i, s:s, s:f}", "event", "board",
			      "fixture", p->fixture, "uid", p->uid[0] ? p->uid : NULL, "serial",
			      p->serial[0] ? p->serial : NULL, "state", jnl_state_name(p->state),
			      "code", (int)p->rc, "message", p->message, "elapsed_s", p->elapsed_s);

	if (o)
		step_fields(o, p->state, p->rc, p->failed_step);
	return o;
}

void st_result_record_id(struct jnl *j, const struct prov_result *r,
			 char id[JNL_RECORD_ID_MAX])
{
	id[0] = '\0';
	if (!r->uid[0] || r->state != JNL_ST_DONE)
		return;
	if (r->record_id[0]) {
		snprintf(id, JNL_RECORD_ID_MAX, "%s", r->record_id);
		return;
	}
	if (j && jnl_identity_record_id(j, r->uid, id) != IMP_OK)
		id[0] = '\0';
}

json_t *st_result_event(struct jnl *j, const char *fixture, const struct prov_result *r)
{
	char id[JNL_RECORD_ID_MAX];
	json_t *o;

	st_result_record_id(j, r, id);
	/* A quarantined board says so in "state" ("quarantined" is the
	 * summary's count). */
	o = json_pack("{s:s, s:s, s:s?, s:s?, s:s, s:i, s:b, s:f, s:s?}", "event", "result",
		      "fixture", fixture, "uid", r->uid[0] ? r->uid : NULL, "serial",
		      r->serial[0] ? r->serial : NULL, "state",
		      jnl_state_name(r->quarantined ? JNL_ST_QUARANTINED : r->state), "code",
		      (int)r->rc, "already_done", r->already_done, "seconds", r->seconds,
		      "record_id", id[0] ? id : NULL);
	if (o && r->not_taken)
		json_object_set_new(o, "not_taken", json_true());
	if (o)
		step_fields(o, r->state, r->rc, r->failed_step);
	return o;
}

/* ------------------------------------------- what to do after a run */

void st_results_hint(const struct fmt_fixture *fx, const struct prov_result *res, size_t n,
		     bool resume)
{
	char unreached[256] = "", step[16] = "";
	unsigned n_unreached = 0, rejected = 0, quarantined = 0, cloned = 0, in_flight = 0;
	imp_err unreached_rc = IMP_OK;

	for (size_t i = 0; i < n; i++) {
		const struct prov_result *r = &res[i];

		if (r->rc == IMP_OK || r->rc == IMP_ERR_INTERRUPTED || r->rc == IMP_ERR_QUOTA)
			continue;
		if (r->cloned_uid) {
			cloned++;
		} else if (r->quarantined || r->state == JNL_ST_QUARANTINED) {
			quarantined++;
		} else if (!r->uid[0]) {
			size_t used = strlen(unreached);

			if (n_unreached++ < 8)
				snprintf(unreached + used, sizeof(unreached) - used, "%s%s",
					 used ? ", " : "", fx[i].name);
			unreached_rc = r->rc;
		} else if (r->state == JNL_ST_FAILED) {
			rejected++;
		} else if (r->state < JNL_ST_DONE) {
			in_flight++;
			snprintf(step, sizeof(step), "%s", jnl_state_name(r->failed_step));
		}
	}
	if (n_unreached && resume)
		IMP_ERROR("%s%s: no board answered (%s): the board%s in flight there stay%s as the "
			  "journal has %s; check the probe, uart and board there, then run 'imprint "
			  "resume' again", unreached, n_unreached > 8 ? ", ..." : "",
			  imp_err_name(unreached_rc), n_unreached == 1 ? "" : "s",
			  n_unreached == 1 ? "s" : "", n_unreached == 1 ? "it" : "them");
	else if (n_unreached)
		IMP_ERROR("%s%s: no board identified (%s), so nothing was journaled for %s; check "
			  "the probe, uart and board there, then run 'imprint provision' again",
			  unreached, n_unreached > 8 ? ", ..." : "", imp_err_name(unreached_rc),
			  n_unreached == 1 ? "it" : "them");
	if (rejected)
		IMP_ERROR("%u board%s rejected: 'imprint boards --state FAILED' lists %s with the "
			  "step that failed; a rejected board goes through again only with "
			  "'imprint provision --reissue --reason TEXT'", rejected,
			  rejected == 1 ? "" : "s", rejected == 1 ? "it" : "them");
	if (quarantined)
		IMP_ERROR("%u board%s quarantined (locked and unknown to this journal): 'imprint "
			  "boards --state QUARANTINED' lists %s; %s not touched", quarantined,
			  quarantined == 1 ? "" : "s", quarantined == 1 ? "it" : "them",
			  quarantined == 1 ? "it was" : "they were");
	if (cloned)
		IMP_ERROR("%u board%s presenting the uid of a finished board (a cloned uid or a "
			  "replaced chip), not touched: 'imprint audit' lists %s (cloned-uid), "
			  "'imprint status' counts %s; the finished board's row stays its own",
			  cloned, cloned == 1 ? "" : "s", cloned == 1 ? "it" : "them",
			  cloned == 1 ? "it" : "them");
	if (in_flight)
		IMP_ERROR("%u board%s stopped in flight (%s%s): 'imprint boards' shows where; "
			  "'imprint resume' continues %s once the cause is fixed", in_flight,
			  in_flight == 1 ? "" : "s", in_flight == 1 ? "at " : "last at ", step,
			  in_flight == 1 ? "it" : "them");
}
