/*
 * Reading the journal's outbox directly (read-only): every row, or the
 * rejected ones, streamed. The journal API lists only pending records; the
 * audit and `export --rejected` need the rest. The table is schema version 1
 * of docs/JOURNAL.md (PERSISTED), checked through PRAGMA user_version.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "journal/journal.h"
#include "journal_int.h"
#include "imprint/log.h"

imp_err jnl_outbox_scan(const char *path, enum jnl_outbox_filter filter, jnl_outbox_row_cb cb,
			void *arg)
{
	static const char *const where[] = {
		[JNL_OUTBOX_ALL] = "",
		[JNL_OUTBOX_REJECTED] = " WHERE rejected_reason IS NOT NULL",
		[JNL_OUTBOX_DELIVERED] = " WHERE delivered_at IS NOT NULL",
	};
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	char sql[512];
	imp_err rc = IMP_OK;
	int src;

	if (access(path, F_OK) != 0) {
		IMP_ERROR("no journal at %s", path);
		return IMP_ERR_NOT_FOUND;
	}
	{
		char name[4400];
		int flags = SQLITE_OPEN_READONLY;

		rc = jintegrity_ro_name(path, name, sizeof(name), &flags);
		if (rc) {
			IMP_ERROR("%s", jnl_last_error());
			return rc;
		}
		src = sqlite3_open_v2(name, &db, flags, NULL);
	}
	if (src == SQLITE_OK)
		src = sqlite3_busy_timeout(db, 10000);
	if (src == SQLITE_OK)
		src = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
	if (src == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW &&
	    (sqlite3_column_int(st, 0) < JNL_SCHEMA_READ_MIN ||
	     sqlite3_column_int(st, 0) > JNL_SCHEMA_VERSION)) {
		IMP_ERROR("%s: journal schema %d, this code reads %d to %d", path,
			  sqlite3_column_int(st, 0), JNL_SCHEMA_READ_MIN, JNL_SCHEMA_VERSION);
		rc = IMP_ERR_JOURNAL;
		goto cleanup;
	}
	sqlite3_finalize(st);
	st = NULL;
	snprintf(sql, sizeof(sql),
		 "SELECT record_id, serial, uid, kind, jws, created, delivered_at, attempts, "
		 "last_error, rejected_reason FROM outbox%s ORDER BY created, rowid",
		 where[filter]);
	if (src == SQLITE_OK)
		src = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (src != SQLITE_OK) {
		IMP_ERROR("%s: cannot read the outbox: %s", path, sqlite3_errmsg(db));
		rc = IMP_ERR_JOURNAL;
		goto cleanup;
	}
	while ((src = sqlite3_step(st)) == SQLITE_ROW) {
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

		if (cb(arg, &r) != 0) {
			src = SQLITE_DONE;
			break;
		}
	}
	if (src != SQLITE_DONE) {
		IMP_ERROR("%s: reading the outbox: %s", path, sqlite3_errmsg(db));
		rc = IMP_ERR_JOURNAL;
	}
cleanup:
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}
