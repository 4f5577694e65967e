/*
 * The live station board (live.c): while fixtures run and stdout is a
 * terminal, one screen redrawn in place with the journal's totals, a row
 * per fixture and the last failures, fitted to the terminal's size.
 * Off a terminal nothing here is used: the log lines stay as they are.
 */
#ifndef STATION_LIVE_H
#define STATION_LIVE_H

#include <stdbool.h>
#include <stddef.h>

#include "formats/config.h"
#include "journal/journal.h"
#include "provisioner/provision.h"
#include "station.h"

/* True when the board should be drawn: stdout is a terminal (not "dumb"),
 * no --json, and the log level is at most info (-v wants its lines). */
bool st_live_wanted(const struct station_ctx *ctx);

/*
 * Start the board for fixtures fx[0..n) (copied) and its drawing thread.
 * Totals are read from journal (borrowed until st_live_stop). While it
 * runs, log lines are held back (stderr is the same terminal) and printed
 * when it stops. Returns false if the board could not start (then the
 * caller prints log lines as off a terminal).
 */
bool st_live_start(struct jnl *journal, const struct fmt_fixture *fx, size_t n,
		   bool continuous);

/* Is the board up? */
bool st_live_active(void);

/* A progress report from a fixture's worker (any thread). */
void st_live_progress(const struct prov_progress *p);

/* The final result of a fixture's board (one pass: boards already done
 * say so). */
void st_live_result(const char *fixture, const struct prov_result *r);

/*
 * Stop: the drawing thread ends, the terminal leaves the board's screen,
 * the log lines held back go to stderr, and the final board (totals read
 * once more from the journal) is printed on stdout, fitted to the terminal.
 */
void st_live_stop(void);

/*
 * The board's model and layout without a terminal, for the unit tests:
 * init takes the fixtures (false if a board is up or a model exists),
 * st_live_progress and st_live_result feed it, render writes the frame a
 * rows x cols terminal would show into out (lines ended by '\n') and
 * returns its number of lines; free forgets the model. The totals stay 0
 * (no journal).
 */
bool st_live_model_init(const struct fmt_fixture *fx, size_t n, bool continuous);
size_t st_live_render(int rows, int cols, bool final, char *out, size_t cap);
void st_live_model_free(void);

#endif
