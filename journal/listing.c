/*
 * Journal: the listings of `imprint boards` and `imprint records`, and the
 * identity record of one board. Read on a snapshot (jdb_snapshot), so a
 * callback may write to the journal through the handle.
 */
#include <stdio.h>
#include <string.h>

#include "imprint/log.h"
#include "journal_int.h"

struct listing_scan {
	jnl_board_list_cb cb;
	void *arg;
};

static imp_err listing_row(void *arg, sqlite3_stmt *st, bool *stop)
{
	struct listing_scan *s = arg;
	struct jnl_board b;
	imp_err rc = jboard_from_row(st, &b, false);

	/* Column 12: the step the last "error" event was recorded at. */
	if (rc == IMP_OK && s->cb(s->arg, &b, (const char *)sqlite3_column_text(st, 12)))
		*stop = true;
	return rc;
}

imp_err jnl_list_boards(struct jnl *j, const enum jnl_state *state, jnl_board_list_cb cb,
			void *arg)
{
	struct listing_scan s = { cb, arg };
	struct jdb_arg a = { .is_text = true };
	char sql[512];

	if (state && (unsigned)*state >= JNL_ST__COUNT)
		return IMP_ERR_USAGE;
	a.text = state ? jnl_state_name(*state) : NULL;
	snprintf(sql, sizeof(sql),
		 "SELECT " BOARD_COLS ", " BOARD_ERROR_STEP " FROM boards%s ORDER BY id",
		 state ? " WHERE state = ?1" : "");
	return jdb_snapshot(j, sql, &a, state ? 1 : 0, listing_row, &s);
}

struct record_scan {
	jnl_outbox_row_cb cb;
	void *arg;
};

static imp_err record_row(void *arg, sqlite3_stmt *st, bool *stop)
{
	struct record_scan *s = arg;
	struct jnl_outbox_row r = {
		(const char *)sqlite3_column_text(st, 0),
		(const char *)sqlite3_column_text(st, 1),
		(const char *)sqlite3_column_text(st, 2),
		(const char *)sqlite3_column_text(st, 3),
		(const char *)sqlite3_column_text(st, 4),
		(const char *)sqlite3_column_text(st, 5),
		(const char *)sqlite3_column_text(st, 6),
		(uint32_t)sqlite3_column_int64(st, 7),
		(const char *)sqlite3_column_text(st, 8),
		(const char *)sqlite3_column_text(st, 9),
	};

	if (s->cb(s->arg, &r))
		*stop = true;
	return IMP_OK;
}

imp_err jnl_list_records(struct jnl *j, const char *since, const char *serial,
			 jnl_outbox_row_cb cb, void *arg)
{
	struct record_scan s = { cb, arg };
	const struct jdb_arg a[2] = { { .text = since, .is_text = true },
				      { .text = serial, .is_text = true } };

	return jdb_snapshot(j,
			    "SELECT record_id, serial, uid, kind, jws, created, delivered_at, "
			    "attempts, last_error, rejected_reason FROM outbox "
			    "WHERE (?1 IS NULL OR created >= ?1) AND (?2 IS NULL OR serial = ?2) "
			    "ORDER BY created, rowid",
			    a, 2, record_row, &s);
}

struct rejected_scan {
	jnl_rejected_locked_cb cb;
	void *arg;
};

static imp_err rejected_row(void *arg, sqlite3_stmt *st, bool *stop)
{
	struct rejected_scan *s = arg;
	struct jnl_rejected_locked r = {
		(const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
		(const char *)sqlite3_column_text(st, 2), (const char *)sqlite3_column_text(st, 3),
		(const char *)sqlite3_column_text(st, 4),
	};

	if (s->cb(s->arg, &r))
		*stop = true;
	return IMP_OK;
}

imp_err jnl_list_rejected_locked(struct jnl *j, jnl_rejected_locked_cb cb, void *arg)
{
	struct rejected_scan s = { cb, arg };

	/* The newest move to FAILED of each board that is FAILED now. */
	return jdb_snapshot(j,
			    "SELECT b.uid, coalesce(b.serial, ''), json_extract(e.detail, '$.from'), "
			    "coalesce(json_extract(e.detail, '$.cause'), ''), e.ts FROM boards b "
			    "JOIN events e ON e.seq = (SELECT max(seq) FROM events x WHERE x.uid = "
			    "b.uid AND x.kind = 'state' AND json_valid(x.detail) AND "
			    "json_extract(x.detail, '$.to') = 'FAILED') WHERE b.state = 'FAILED' AND "
			    "json_extract(e.detail, '$.from') IN ('LOCK', 'RECORD') ORDER BY e.seq",
			    NULL, 0, rejected_row, &s);
}

/* On the handle's own connection (one row, no callback into user code),
 * with its statement kept prepared: a run asks this for every board it
 * reports, and a connection of its own per call cost more than the rest of
 * the report. */
/* The record id sql (a kept statement, ?1 the board's uid) gives in its
 * first row; IMP_ERR_NOT_FOUND (not logged) if none. */
static imp_err record_id_of(sqlite3 *db, const char *sql, const char *uid,
			    char out[JNL_RECORD_ID_MAX])
{
	sqlite3_stmt *st = NULL;
	imp_err rc;

	out[0] = '\0';
	rc = jdb_stmt(db, sql, &st);
	if (rc == IMP_OK)
		rc = jdb_bind_text(db, st, 1, uid);
	if (rc == IMP_OK)
		rc = jdb_step_row(db, st);
	if (rc == IMP_OK) {
		const char *id = (const char *)sqlite3_column_text(st, 0);

		snprintf(out, JNL_RECORD_ID_MAX, "%s", id ? id : "");
		if (!out[0])
			rc = IMP_ERR_NOT_FOUND;
	}
	jdb_stmt_done(st);
	return rc;
}

imp_err jnl_identity_record_id(struct jnl *j, const char *uid, char out[JNL_RECORD_ID_MAX])
{
	imp_err rc;

	jerr_clear();
	jdb_lock_read(j);
	rc = record_id_of(j->db, "SELECT record_id FROM outbox WHERE uid = lower(?1) AND "
			  "kind = 'identity' ORDER BY created DESC, rowid DESC LIMIT 1", uid, out);
	jdb_unlock_read(j);
	return rc;
}

imp_err jdb_revocation_record_id(sqlite3 *db, const char *uid, char out[JNL_RECORD_ID_MAX])
{
	/* In the outbox's own order (created, then rowid): no identity record
	 * of the board after the revocation. */
	return record_id_of(db, "SELECT v.record_id FROM outbox v WHERE v.uid = lower(?1) AND "
			    "v.kind = 'revocation' AND NOT EXISTS (SELECT 1 FROM outbox i WHERE "
			    "i.uid = v.uid AND i.kind = 'identity' AND (i.created, i.rowid) > "
			    "(v.created, v.rowid)) ORDER BY v.created DESC, v.rowid DESC LIMIT 1",
			    uid, out);
}

imp_err jnl_revocation_record_id(struct jnl *j, const char *uid, char out[JNL_RECORD_ID_MAX])
{
	imp_err rc;

	jerr_clear();
	jdb_lock_read(j);
	rc = jdb_revocation_record_id(j->db, uid, out);
	jdb_unlock_read(j);
	return rc;
}
