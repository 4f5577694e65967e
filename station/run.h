/*
 * The run context: what a command holds open once its set-up flags are
 * applied (station.h, enum st_need): configuration, journal, HSM with the
 * organisation's keys, the line, target profile and verified firmware.
 */
#ifndef STATION_RUN_H
#define STATION_RUN_H

#include <signal.h>

#include "board/profile.h"
#include "hsm/anchor.h"
#include "line/line.h"
#include "provisioner/matter.h"
#include "provisioner/provision.h"
#include "station.h"

struct st_run {
	unsigned opened;                     /* enum st_need bits applied so far */
	struct fmt_config cfg;
	struct hsm *hsm;
	struct hsm_session *journal_session; /* org loading and checkpoints */
	struct jnl *journal;
	struct board_profile *profile;
	uint8_t *firmware;
	size_t firmware_len;
	struct line *line;                   /* line mode (--line / "line"), or NULL */
	struct prov_station station;         /* points into the fields above */
	struct hsm_anchor anchor_put;        /* what st_anchor_update last stored */
};

/* Open what `need` asks for beyond r->opened (st_setup calls this). Close
 * with st_run_close, also after a failure. */
imp_err st_run_open(struct station_ctx *ctx, struct st_run *r, unsigned need);
void st_run_close(struct st_run *r);

/* Store the journal's newest checkpoint and counter in the HSM's anchor
 * (after a checkpoint; a failure only warns); not again when this run
 * context already stored that very checkpoint. */
void st_anchor_update(struct st_run *l);

/* Sign the journal's head (if the run holds the HSM) and update the HSM's
 * anchor: at the end of every run and when the run context closes. A
 * failure only warns. */
void st_run_checkpoint(struct st_run *l);

/* A journal opened for writing after this call moves its serial counter on
 * to `counter`: the next serial comes after it (`journal checkpoint
 * --serials-after N`; jnl_opts.serials_after). */
void st_journal_serials_after(uint64_t counter);

/* The line database: --line URL, else the config's line.url, else NULL. */
const char *st_line_url(const struct station_ctx *ctx, const struct fmt_config *cfg);

/* line_opts for this station from ctx and cfg (conninfo may be NULL). */
void st_line_opts(const struct station_ctx *ctx, const struct fmt_config *cfg,
		  struct line_opts *o);

/* The journal's path: config "journal", else DATA/journal.sqlite. */
void st_journal_path(const struct station_ctx *ctx, const struct fmt_config *cfg, char *out,
		     size_t cap);

/* ---- running the fixtures (fixtures.c) ----------------------------------- */

/* Progress callback for prov_station (arg: the station_ctx). */
void st_progress(void *arg, const struct prov_progress *p);

/* The --json events of the fixtures (output.c, docs/EVENTS.md): a board's
 * progress, and its result with the identity record's id from journal j
 * (NULL: none looked up). New objects, for st_emit. */
json_t *st_board_event(const struct prov_progress *p);
json_t *st_result_event(struct jnl *j, const char *fixture, const struct prov_result *r);
/* The id of r's identity record, for its result event: the one the run
 * made (r->record_id), else the newest in journal j (NULL: none looked
 * up); "" for a board not DONE or without one. */
void st_result_record_id(struct jnl *j, const struct prov_result *r,
			 char id[JNL_RECORD_ID_MAX]);

/* After a run that did not finish every board: what to do next, by what
 * happened to each (no board reached, rejected, quarantined, in flight),
 * each hint naming a command that does it (output.c). */
void st_results_hint(const struct fmt_fixture *fx, const struct prov_result *res, size_t n,
		     bool resume);

/* A run's boards by outcome: stopped ones were interrupted by a signal and
 * are resumable, failed ones stopped on an error (resumable or rejected). */
struct st_tally {
	unsigned done, already, failed, stopped, quarantined;
	unsigned not_taken; /* left as they were: the run's --count was reached */
};

/* The run's --json summary event (docs/EVENTS.md): board counts. */
void st_emit_summary(struct station_ctx *ctx, const struct st_tally *t);

/* Print one line per result (or JSON objects) and a summary; returns the
 * first error as exit code, 0 if every board is done. */
int st_report_results(struct station_ctx *ctx, const struct fmt_fixture *fx,
		      const struct prov_result *res, size_t n);

/* prov_run_fixtures, with the live station board when stdout is a
 * terminal (live.h). */
void st_run_fixtures(struct station_ctx *ctx, struct st_run *l, const struct fmt_fixture *fx,
		     size_t n, struct prov_result *res);

/* Continuous mode: one summary over every fixture's tally; returns the
 * exit code (IMP_ERR_INTERRUPTED after a clean stop). */
int st_report_continuous(struct station_ctx *ctx, const struct fmt_fixture *fx,
			 const struct prov_result *res, size_t n);

/* Run the first nfix fixtures (0: all), at most count new boards (0: no
 * limit), print the results; returns the exit code. */
int st_provision_run(struct station_ctx *ctx, struct st_run *r, size_t nfix, uint64_t count);

/* Set by SIGINT/SIGTERM during a run: workers stop between steps. */
extern volatile sig_atomic_t st_stop_requested;
void st_install_stop_handlers(void);

#endif
