/*
 * Journal: line mode (docs/LINE.md). Leased blocks of the line's serial
 * counter, and the delivery state of outbox records to the line database.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imprint/log.h"
#include "journal_int.h"

static imp_err lease_event(struct jnl *j, const char *action, uint64_t id,
			   uint64_t first, uint64_t last, uint64_t next)
{
	return jchain_append_json(j, NULL, NULL, "lease",
				  json_pack("{s:s, s:I, s:I, s:I, s:I}", "action", action, "lease",
					    (json_int_t)id, "first", (json_int_t)first, "last",
					    (json_int_t)last, "next", (json_int_t)next));
}

/* Read lease id inside the transaction: IMP_ERR_NOT_FOUND if absent. */
static imp_err lease_get(sqlite3 *db, uint64_t id, struct jnl_lease *out)
{
	sqlite3_stmt *st = NULL;
	imp_err rc;

	rc = jdb_prepare(db, "SELECT first_counter, last_counter, next_counter, closed IS NOT NULL "
			 "FROM leases WHERE id = ?1", &st);
	if (rc == IMP_OK)
		rc = jdb_bind_i64(db, st, 1, (int64_t)id);
	if (rc == IMP_OK)
		rc = jdb_step_row(db, st);
	if (rc == IMP_OK) {
		out->id = id;
		out->first = (uint64_t)sqlite3_column_int64(st, 0);
		out->last = (uint64_t)sqlite3_column_int64(st, 1);
		out->next = (uint64_t)sqlite3_column_int64(st, 2);
		out->closed = sqlite3_column_int(st, 3) != 0;
	}
	sqlite3_finalize(st);
	return rc;
}

imp_err jnl_lease_add(struct jnl *j, uint64_t id, uint64_t first,
			       uint64_t last)
{
	struct jnl_lease have;
	sqlite3_stmt *st = NULL;
	char now[40];
	bool leased;
	int src = 0;
	imp_err rc;

	if (id == 0 || first == 0 || last < first || last > (uint64_t)INT64_MAX - 1) {
		jerr_set(IMP_ERR_USAGE, "bad lease %" PRIu64 ": %" PRIu64 "..%" PRIu64, id, first,
			 last);
		return IMP_ERR_USAGE;
	}
	rc = jdb_begin(j);
	if (rc)
		return rc;
	rc = jdb_leased(j->db, &leased);
	if (rc == IMP_OK && !leased) {
		jerr_set(IMP_ERR_CONFIG, "this journal is not in line mode: no lease is taken");
		rc = IMP_ERR_CONFIG;
	}
	if (rc)
		goto cleanup;
	rc = lease_get(j->db, id, &have);
	if (rc == IMP_OK) {
		if (have.first != first || have.last != last) {
			jerr_set(IMP_ERR_DUPLICATE, "lease %" PRIu64 " is already stored with another "
				 "range", id);
			rc = IMP_ERR_DUPLICATE;
		}
		goto cleanup;
	}
	if (rc != IMP_ERR_NOT_FOUND)
		goto cleanup;
	/* Blocks never overlap (the line hands out each counter once). */
	rc = jdb_prepare(j->db, "SELECT count(*) FROM leases WHERE first_counter <= ?2 AND "
			 "last_counter >= ?1", &st);
	if (rc == IMP_OK)
		rc = jdb_bind_i64(j->db, st, 1, (int64_t)first);
	if (rc == IMP_OK)
		rc = jdb_bind_i64(j->db, st, 2, (int64_t)last);
	if (rc == IMP_OK)
		rc = jdb_step_row(j->db, st);
	if (rc == IMP_OK && sqlite3_column_int64(st, 0) != 0) {
		jerr_set(IMP_ERR_DUPLICATE, "lease %" PRIu64 " (%" PRIu64 "..%" PRIu64 ") overlaps a "
			 "stored lease", id, first, last);
		rc = IMP_ERR_DUPLICATE;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (rc)
		goto cleanup;
	jtime_now(now);
	rc = jdb_prepare(j->db, "INSERT INTO leases(id, first_counter, last_counter, next_counter, "
			 "created) VALUES (?1, ?2, ?3, ?2, ?4)", &st);
	if (rc == IMP_OK)
		rc = jdb_bind_i64(j->db, st, 1, (int64_t)id);
	if (rc == IMP_OK)
		rc = jdb_bind_i64(j->db, st, 2, (int64_t)first);
	if (rc == IMP_OK)
		rc = jdb_bind_i64(j->db, st, 3, (int64_t)last);
	if (rc == IMP_OK)
		rc = jdb_bind_text(j->db, st, 4, now);
	if (rc == IMP_OK)
		rc = jdb_step_done(j->db, st, &src);
	sqlite3_finalize(st);
	if (rc == IMP_OK)
		rc = lease_event(j, "granted", id, first, last, first);
cleanup:
	return jdb_end(j, rc);
}

imp_err jnl_lease_close(struct jnl *j, uint64_t id, uint64_t *next_out)
{
	struct jnl_lease l;
	sqlite3_stmt *st = NULL;
	char now[40];
	imp_err rc;

	rc = jdb_begin(j);
	if (rc)
		return rc;
	rc = lease_get(j->db, id, &l);
	if (rc == IMP_ERR_NOT_FOUND)
		jerr_set(rc, "no lease %" PRIu64 " in this journal", id);
	if (rc || l.closed)
		goto cleanup;
	jtime_now(now);
	rc = jdb_prepare(j->db, "UPDATE leases SET closed = ?2 WHERE id = ?1", &st);
	if (rc == IMP_OK)
		rc = jdb_bind_i64(j->db, st, 1, (int64_t)id);
	if (rc == IMP_OK)
		rc = jdb_bind_text(j->db, st, 2, now);
	if (rc == IMP_OK)
		rc = jdb_step_done(j->db, st, NULL);
	sqlite3_finalize(st);
	if (rc == IMP_OK)
		rc = lease_event(j, "closed", id, l.first, l.last, l.next);
cleanup:
	if (rc == IMP_OK && next_out)
		*next_out = l.next;
	return jdb_end(j, rc);
}

/*
 * Inside a transaction: the event of kind with detail (a new reference,
 * taken), then every record marked not yet delivered to the line, so the
 * next connection sends them all again.
 */
static imp_err refeed_locked(struct jnl *j, const char *kind, json_t *detail)
{
	imp_err rc = jchain_append_json(j, NULL, NULL, kind, detail);

	if (rc == IMP_OK)
		rc = jdb_exec(j->db, "UPDATE outbox SET line_delivered_at = NULL, line_conflict = NULL "
			      "WHERE line_delivered_at IS NOT NULL");
	return rc;
}

imp_err jnl_line_lost(struct jnl *j, uint64_t lease_id, const char *found)
{
	struct jnl_lease l;
	imp_err rc;

	rc = jdb_begin(j);
	if (rc)
		return rc;
	rc = lease_get(j->db, lease_id, &l);
	if (rc == IMP_ERR_NOT_FOUND)
		jerr_set(rc, "no lease %" PRIu64 " in this journal", lease_id);
	if (rc)
		goto cleanup;
	rc = refeed_locked(j, "lease",
			   json_pack("{s:s, s:I, s:I, s:I, s:I, s:s}", "action", "lost", "lease",
				     (json_int_t)l.id, "first", (json_int_t)l.first, "last",
				     (json_int_t)l.last, "next", (json_int_t)l.next, "found",
				     found ? found : ""));
cleanup:
	return jdb_end(j, rc);
}

struct lease_scan {
	jnl_lease_cb cb;
	void *arg;
};

static imp_err lease_row(void *arg, sqlite3_stmt *st, bool *stop)
{
	struct lease_scan *s = arg;
	struct jnl_lease l;

	l.id = (uint64_t)sqlite3_column_int64(st, 0);
	l.first = (uint64_t)sqlite3_column_int64(st, 1);
	l.last = (uint64_t)sqlite3_column_int64(st, 2);
	l.next = (uint64_t)sqlite3_column_int64(st, 3);
	l.closed = sqlite3_column_int(st, 4) != 0;
	if (s->cb(s->arg, &l))
		*stop = true;
	return IMP_OK;
}

imp_err jnl_lease_list(struct jnl *j, bool open_only, jnl_lease_cb cb, void *arg)
{
	struct lease_scan s = { cb, arg };

	return jdb_snapshot(j, open_only ?
			    "SELECT id, first_counter, last_counter, next_counter, 0 FROM "
			    "leases WHERE closed IS NULL ORDER BY first_counter" :
			    "SELECT id, first_counter, last_counter, next_counter, "
			    "closed IS NOT NULL FROM leases ORDER BY first_counter",
			    NULL, 0, lease_row, &s);
}

struct line_scan {
	jnl_line_outbox_cb cb;
	void *arg;
};

static imp_err line_row(void *arg, sqlite3_stmt *st, bool *stop)
{
	struct line_scan *s = arg;
	struct jnl_outbox_entry e = { 0 };

	joutbox_from_row(st, &e);
	if (s->cb(s->arg, &e, (uint64_t)sqlite3_column_int64(st, 6)))
		*stop = true;
	return IMP_OK;
}

imp_err jnl_line_pending(struct jnl *j, unsigned limit, jnl_line_outbox_cb cb, void *arg)
{
	struct line_scan s = { cb, arg };
	char sql[400];

	snprintf(sql, sizeof(sql), "SELECT o.record_id, o.serial, o.uid, o.kind, o.jws, o.created, "
		 "coalesce(b.counter, 0) FROM outbox o LEFT JOIN boards b ON b.uid = o.uid "
		 "WHERE o.line_delivered_at IS NULL ORDER BY o.created, o.rowid LIMIT %lld",
		 limit ? (long long)limit : -1LL);
	return jdb_snapshot(j, sql, NULL, 0, line_row, &s);
}

imp_err jnl_line_refeed(struct jnl *j, const char *reason)
{
	imp_err rc;

	rc = jdb_begin(j);
	if (rc)
		return rc;
	rc = refeed_locked(j, "outbox", json_pack("{s:s, s:s}", "action", "line_refeed", "reason",
						 reason ? reason : ""));
	return jdb_end(j, rc);
}

static imp_err count_one(struct jnl *j, const char *sql, uint64_t *out)
{
	sqlite3_stmt *st = NULL;
	sqlite3 *db = NULL;
	imp_err rc;

	jerr_clear();
	*out = 0;
	rc = jdb_open_reader(j, &db);
	if (rc)
		return rc;
	rc = jdb_prepare(db, sql, &st);
	if (rc == IMP_OK)
		rc = jdb_step_row(db, st);
	if (rc == IMP_OK)
		*out = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}

imp_err jnl_line_count_delivered(struct jnl *j, uint64_t *out)
{
	return count_one(j, "SELECT count(*) FROM outbox WHERE line_delivered_at IS NOT NULL", out);
}

imp_err jnl_line_count_pending(struct jnl *j, uint64_t *out)
{
	return count_one(j, "SELECT count(*) FROM outbox WHERE line_delivered_at IS NULL", out);
}
