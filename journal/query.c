/*
 * Journal: queries for the CLI (status, resume, failures, outbox). Lists read
 * a snapshot on a connection of their own, so their callbacks may write to
 * the journal through the handle.
 */
#include <stdio.h>
#include <string.h>

#include "imprint/log.h"
#include "journal_int.h"

struct board_scan {
	jnl_board_cb cb;
	void *arg;
};

static imp_err board_row(void *arg, sqlite3_stmt *st, bool *stop)
{
	struct board_scan *s = arg;
	struct jnl_board b;
	imp_err rc = jboard_from_row(st, &b, false);

	if (rc == IMP_OK && s->cb(s->arg, &b))
		*stop = true;
	return rc;
}

/* Run a board query on a snapshot; ?1 is bound to text1 if not NULL. */
static imp_err list_boards(struct jnl *j, const char *sql, const char *text1,
			   jnl_board_cb cb, void *arg)
{
	struct board_scan s = { cb, arg };
	struct jdb_arg a = { .text = text1, .is_text = true };

	return jdb_snapshot(j, sql, &a, text1 ? 1 : 0, board_row, &s);
}

imp_err jnl_list_unfinished(struct jnl *j, jnl_board_cb cb, void *arg)
{
	return list_boards(j, "SELECT " BOARD_COLS " FROM boards WHERE state NOT IN "
			   "('DONE', 'FAILED', 'QUARANTINED') ORDER BY id", NULL, cb, arg);
}

imp_err jnl_list_failures(struct jnl *j, unsigned limit, jnl_board_cb cb,
				   void *arg)
{
	/* The steps in order, to compare a board's state with the step its last
	 * error was recorded at (instr gives each its place). */
#define STEPS "',CONNECT,IDENTIFY,ALLOCATE,KEYS,CERTIFY,INJECT,FIRMWARE,CHALLENGE,LOCK,RECORD,'"
	char sql[1024];

	/* Its error is the board's state unless the board left that step
	 * since (a retry went on, or it is DONE): as `imprint boards` shows it. */
	snprintf(sql, sizeof(sql), "SELECT " BOARD_COLS " FROM (SELECT *, " BOARD_ERROR_STEP
		 " AS error_step FROM boards WHERE last_error_code <> 0 AND state <> 'DONE') AS "
		 "boards WHERE state IN ('FAILED', 'QUARANTINED') OR error_step IS NULL OR "
		 "instr(" STEPS ", ',' || error_step || ',') = 0 OR instr(" STEPS ", ',' || state "
		 "|| ',') <= instr(" STEPS ", ',' || error_step || ',') ORDER BY updated DESC, "
		 "id DESC LIMIT %lld", limit ? (long long)limit : -1LL);
#undef STEPS
	return list_boards(j, sql, NULL, cb, arg);
}

imp_err jnl_list_state(struct jnl *j, enum jnl_state state, jnl_board_cb cb,
				void *arg)
{
	if ((unsigned)state >= JNL_ST__COUNT)
		return IMP_ERR_USAGE;
	return list_boards(j, "SELECT " BOARD_COLS " FROM boards WHERE state = ?1 ORDER BY id",
			   jnl_state_name(state), cb, arg);
}

imp_err jnl_counts(struct jnl *j, uint64_t counts[JNL_ST__COUNT])
{
	sqlite3_stmt *st = NULL;
	imp_err rc;

	jerr_clear();
	memset(counts, 0, sizeof(uint64_t) * JNL_ST__COUNT);
	jdb_lock_read(j);
	rc = jdb_prepare(j->db, "SELECT state, count(*) FROM boards GROUP BY state", &st);
	while (rc == IMP_OK) {
		enum jnl_state s;

		rc = jdb_step_row(j->db, st);
		if (rc == IMP_ERR_NOT_FOUND) {
			rc = IMP_OK;
			break;
		}
		if (rc)
			break;
		if (jnl_state_parse((const char *)sqlite3_column_text(st, 0), &s) == IMP_OK)
			counts[s] = (uint64_t)sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	jdb_unlock_read(j);
	return rc;
}

imp_err jnl_outbox_count_pending(struct jnl *j, uint64_t *out)
{
	sqlite3_stmt *st = NULL;
	imp_err rc;

	jerr_clear();
	*out = 0;
	jdb_lock_read(j);
	rc = jdb_prepare(j->db, "SELECT count(*) FROM outbox WHERE delivered_at IS NULL AND "
			 "rejected_reason IS NULL", &st);
	if (rc == IMP_OK)
		rc = jdb_step_row(j->db, st);
	if (rc == IMP_OK)
		*out = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	jdb_unlock_read(j);
	return rc;
}

struct outbox_scan {
	jnl_outbox_cb cb;
	void *arg;
};

static imp_err outbox_row(void *arg, sqlite3_stmt *st, bool *stop)
{
	struct outbox_scan *s = arg;
	struct jnl_outbox_entry e = { 0 };

	joutbox_from_row(st, &e);
	e.attempts = (uint32_t)sqlite3_column_int64(st, 6);
	e.last_error = (const char *)sqlite3_column_text(st, 7);
	if (s->cb(s->arg, &e))
		*stop = true;
	return IMP_OK;
}

imp_err jnl_outbox_pending(struct jnl *j, unsigned limit, jnl_outbox_cb cb, void *arg)
{
	struct outbox_scan s = { cb, arg };
	char sql[256];

	snprintf(sql, sizeof(sql), "SELECT record_id, serial, uid, kind, jws, created, attempts, "
		 "last_error FROM outbox WHERE delivered_at IS NULL AND rejected_reason IS NULL "
		 "ORDER BY created, rowid LIMIT %lld", limit ? (long long)limit : -1LL);
	return jdb_snapshot(j, sql, NULL, 0, outbox_row, &s);
}

void joutbox_from_row(sqlite3_stmt *st, struct jnl_outbox_entry *e)
{
	const char *kind = (const char *)sqlite3_column_text(st, 3);

	e->record_id = (const char *)sqlite3_column_text(st, 0);
	e->serial = (const char *)sqlite3_column_text(st, 1);
	e->uid = (const char *)sqlite3_column_text(st, 2);
	e->kind = kind && strcmp(kind, "revocation") == 0 ? JNL_OUTBOX_REVOCATION
							 : JNL_OUTBOX_IDENTITY;
	e->jws = (const char *)sqlite3_column_text(st, 4);
	e->created = (const char *)sqlite3_column_text(st, 5);
}
