/*
 * What `imprint status --json`, `imprint report` and the dashboard show:
 * one builder for the status object, so the three can never disagree, and
 * the HTML page made from it.
 */
#ifndef STATION_REPORT_H
#define STATION_REPORT_H

#include <stdbool.h>

#include <jansson.h>

#include "station.h"

struct jnl;

struct st_status_opts {
	unsigned failures_limit; /* recent failures listed */
	bool verify;             /* add "chain": the hash chain and signed checkpoints */
	const char *since;       /* RFC 3339 UTC lower bound (inclusive) of the shift, or NULL */
	const char *until;       /* upper bound (exclusive), or NULL */
};

/*
 * The status object from the journal's queries (jnl_info, jnl_counts,
 * jnl_list_failures, jnl_outbox_count_pending, jnl_iterate_events and, with
 * verify, jnl_verify_chain). IMP_OK or IMP_ERR_AUDIT (the chain is broken:
 * *out is still set, with "chain"."ok" false); any other error leaves *out
 * NULL.
 */
imp_err st_status_build(struct station_ctx *ctx, const struct st_status_opts *o, json_t **out);

/*
 * The shift's figures from the journal's events between since and until
 * (either NULL: unbounded), as the "shift" member of the status object:
 * done and rejected boards, first-pass yield, failures by step, boards done
 * per hour, cycle times per fixture (shift.c).
 */
imp_err st_shift_stats(struct jnl *j, const char *since, const char *until, json_t **out);

/* An RFC 3339 UTC time ("2026-12-01T06:00:00Z", fraction optional) in the
 * journal's layout ("2026-12-01T06:00:00.000Z"); false if it is not one. */
bool st_time_norm(const char *in, char out[32]);

/*
 * The self-contained HTML page of a status object (report_html.c): inline
 * SVG plots, no script unless live (the dashboard polls its own JSON),
 * a Content-Security-Policy that forbids any other load. Returns a malloc'ed
 * string, NULL when out of memory.
 */
char *st_report_html(const json_t *status, bool live);
/* The inside of the page's #report element alone (the live page's update). */
char *st_report_fragment(const json_t *status);

#endif
