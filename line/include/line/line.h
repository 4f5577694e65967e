/*
 * Line mode: several stations share one PostgreSQL database for serials,
 * quota and uniqueness (docs/LINE.md). libpq is used here and nowhere else.
 *
 * The station's SQLite journal stays the truth for its boards in flight.
 * The line database holds: the line's serial counter and quota (one row),
 * leases (blocks of counters, each with as many quota units, granted to a
 * station in one transaction), a registry of stations (id, certificate,
 * journal chain head, counters), UID claims, and a central copy of every
 * signed record with UNIQUE UID / serial / public key.
 *
 * Outage: every call that needs the database first checks a back-off; while
 * the database is unreachable, allocation goes on from the journal's open
 * leases, UID claims are skipped (a clash is then found when the record is
 * fed, flagged for a person and reported by `imprint audit --line`), and
 * the feed catches up when the database is back.
 *
 * Threads: one struct line may be shared by every fixture worker; its
 * calls are serialised by a mutex (one libpq connection).
 *
 * Errors: a libpq failure is logged (function, server message) and turns the
 * handle "offline" (IMP_ERR_TIMEOUT to the caller of a call that needed the
 * database); a schema newer than this code: IMP_ERR_CONFIG.
 */
#ifndef PROVISIONER_LINE_H
#define PROVISIONER_LINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "imprint/err.h"
#include "journal/journal.h"

/* Schema version this code creates (schema_migrations). PERSISTED. */
#define LINE_SCHEMA_VERSION 1
#define LINE_BLOCK_DEFAULT 50u
#define LINE_CONNECT_TIMEOUT_DEFAULT 2

struct line;

struct line_opts {
	/* libpq connection string or URI ("postgresql://user@127.0.0.1:5432/db").
	 * A password belongs in PGPASSWORD or ~/.pgpass, not here. Required. */
	const char *conninfo;
	/* This station (the journal's station id). Required for a station. */
	const char *station_id;
	/* PEM of the station's record-signing certificate, stored in the
	 * registry of stations; may be NULL. */
	const char *certificate_pem;
	/* Counters per lease; 0: LINE_BLOCK_DEFAULT. */
	uint32_t block;
	/* The line's quota to store (creates the line row if absent); 0 keeps
	 * the stored one. A line without a quota row leases nothing. */
	uint64_t quota;
	/* libpq connect_timeout in seconds; 0: the default (2). */
	int connect_timeout_s;
};

/*
 * A station's handle on the line: connects (creating or migrating the
 * schema, registering the station, storing the quota) and reconciles its
 * leases with the journal (a lease granted but not yet journaled is added;
 * one closed in the journal but not released in the line is released).
 * The journal is switched to line mode (leased serials). If the database is
 * unreachable the handle is still returned, offline, and retries later;
 * only configuration errors fail. Free with line_close().
 */
imp_err line_open(const struct line_opts *o, struct jnl *j,
		       struct line **out);

/* Stop the feed thread if running, and free; NULL accepted. Leases stay
 * open (the journal keeps them for the next run: see line_release). */
void line_close(struct line *l);

/*
 * The run provisions: it may start `boards` new boards (0: no count given,
 * lease full blocks). Only from this call on does the feed keep a lease
 * ahead; a command that opens the line and makes no board (line sync,
 * release, a dry run) never takes one. Leases are sized min(block, demand -
 * leased counters left), so a station never sits on counters it will not
 * use.
 */
void line_set_demand(struct line *l, uint64_t boards);

/*
 * jnl_allocate in line mode: claim the UID in the line database
 * (IMP_ERR_DUPLICATE if another station holds it; skipped when offline),
 * then allocate from the journal's leases, taking a new lease when they are
 * spent. IMP_ERR_QUOTA if no counter is left and none can be leased (quota
 * used up, or the line unreachable). Same outputs as jnl_allocate.
 */
imp_err line_allocate(struct line *l, const char *uid, const char *fixture,
			   char *serial_out, size_t cap, bool *existing);

/*
 * Feed the line database: every outbox record not yet there (exactly once,
 * by record_id; marked in the journal after the commit), the journal's head
 * and counters, lease progress; and lease ahead when the open leases run
 * low. *sent (may be NULL) counts records committed. IMP_ERR_TIMEOUT if the
 * line is unreachable (nothing lost: the next call goes on).
 */
imp_err line_sync(struct line *l, unsigned *sent);

/* Run line_sync every interval_ms in a thread, until close/stop. */
imp_err line_start_feed(struct line *l, unsigned interval_ms);
void line_stop_feed(struct line *l);

/*
 * End of a run: close the journal's open leases and give their unused
 * counters' quota units back to the line (the counters themselves are never
 * issued). Journal first, then the line: a crash in between only leaves
 * units "leased, unused", never a counter issued twice.
 */
imp_err line_release(struct line *l);

/*
 * `imprint line status`: the line as one JSON object (quota, leased,
 * issued, leased-unused, records, conflicts, and per station: throughput,
 * yield, failures by step, journal head). *out is a new reference.
 * o->station_id is not needed.
 */
imp_err line_status(const struct line_opts *o, json_t **out);

/* One finding of the line audit. Strings valid during the call only. */
struct line_finding {
	const char *check;     /* "line_conflict", "counter_outside_lease", ... */
	const char *record_id; /* "" if none */
	const char *serial;    /* "" if none */
	const char *message;
};
typedef void (*line_finding_fn)(void *arg, const struct line_finding *f);

/* One record of the line for the audit: id and compact JWS, valid during the
 * call only. A non-IMP_OK return stops the audit with that error. */
typedef imp_err (*line_record_fn)(void *arg, const char *record_id, const char *jws);

/*
 * The line audit's database half (`imprint audit --line`): hand every record
 * of the line to record (the offline audit then verifies them; NULL: skip
 * them), from one read-only snapshot, and check what only the line knows:
 * records flagged for a conflict, a UID with two serials, a serial on two
 * UIDs, counters outside their station's leases or issued after a lease was
 * released, quota accounting (issued <= leased <= quota), stations whose
 * head or records are not delivered. *findings counts them; quota, issued
 * and records summarise (any may be NULL).
 */
imp_err line_audit(const struct line_opts *o, line_record_fn record, void *record_arg,
		   line_finding_fn cb, void *arg, uint64_t *findings, uint64_t *records);

#endif
