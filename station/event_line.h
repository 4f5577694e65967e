/*
 * The fixtures' --json events written in place (docs/EVENTS.md): the board,
 * fixture and result events have a fixed shape, so their lines are written
 * straight into a caller's buffer instead of through a jansson tree and
 * json_dumps, which cost about 30,000 instructions an event. The text is
 * byte for byte what st_event_line() prints for the same object (compact,
 * keys sorted, reals as jansson prints them); tests/unit/station/
 * test_event_line.c compares the two over random events.
 *
 * Each writer returns the line's length (it ends in "\n", NUL-terminated),
 * or 0 when it cannot promise that equality: out of room, a string that is
 * not plain ASCII (jansson checks UTF-8 and refuses the whole event if it is
 * not), a number jansson refuses (NaN, infinity). The caller then builds the
 * event with jansson as before.
 */
#ifndef ST_EVENT_LINE_H
#define ST_EVENT_LINE_H

#include <stdbool.h>
#include <stddef.h>

#include "provisioner/provision.h"

/* Room for any event whose strings are of the usual sizes. */
#define ST_EVENT_LINE_MAX 1024u

/* A line being written: members must come in ascending key order. */
struct st_evline {
	char *buf;
	size_t cap, len;
	const char *last_key;
	bool bad; /* out of room, keys out of order, or a value to leave to jansson */
};

void st_ev_begin(struct st_evline *e, char *buf, size_t cap);
/* A string member; val NULL writes null. */
void st_ev_str(struct st_evline *e, const char *key, const char *val);
void st_ev_int(struct st_evline *e, const char *key, long long val);
void st_ev_real(struct st_evline *e, const char *key, double val);
void st_ev_bool(struct st_evline *e, const char *key, bool val);
/* Closes the object, appends "\n": the length, or 0 if anything was bad. */
size_t st_ev_end(struct st_evline *e);

/* The "ts" of an event written now: RFC 3339 UTC with milliseconds. */
void st_event_ts(char out[32]);

/* The "board" event of p (its activity PROV_ACT_BOARD), as st_board_event. */
size_t st_board_event_text(const struct prov_progress *p, const char *ts, char *buf, size_t cap);
/* The continuous mode's "fixture" event of p (what the fixture waits for). */
size_t st_fixture_event_text(const struct prov_progress *p, const char *ts, char *buf,
			     size_t cap);
/* The "result" event of a fixture, as st_result_event; record_id "" or NULL
 * for none. */
size_t st_result_event_text(const char *fixture, const struct prov_result *r,
			    const char *record_id, const char *ts, char *buf, size_t cap);

/* Write one whole line to stdout, from any thread, lines never interleaved
 * (imp_write_line: without a lock to a regular file). */
void st_out_line(const char *line, size_t n);

#endif
