/*
 * Journal: opening, schema and migrations, SQLite wrappers, transactions,
 * settings.
 */
#include <errno.h>
#include <semaphore.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "imprint/log.h"
#include "imprint/util.h"
#include "journal_int.h"

static _Thread_local char jerr_msg[JNL_MSG_MAX];

const char *jnl_last_error(void)
{
	return jerr_msg;
}

void jerr_clear(void)
{
	jerr_msg[0] = '\0';
}

void jerr_set(imp_err code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(jerr_msg, sizeof(jerr_msg), fmt, ap);
	va_end(ap);
	if (code == IMP_ERR_JOURNAL || code == IMP_ERR_INTERNAL)
		IMP_ERROR("journal: %s", jerr_msg);
	else
		IMP_DEBUG("journal: %s (%s)", jerr_msg, imp_err_name(code));
}

imp_err jdb_fail(sqlite3 *db, const char *fn, int rc)
{
	int ext = db ? sqlite3_extended_errcode(db) : rc;

	if ((ext & 0xff) == SQLITE_FULL || (db && sqlite3_system_errno(db) == ENOSPC)) {
		jerr_set(IMP_ERR_JOURNAL, "%s failed: the disk holding the journal is full "
			 "(SQLITE_FULL, ENOSPC): nothing was written; free space on it, then resume",
			 fn);
		return IMP_ERR_JOURNAL;
	}
	if ((ext & 0xff) == SQLITE_CORRUPT && db) {
		const char *path = sqlite3_db_filename(db, "main");
		char mark[4200];

		/* Found while reading: the next open checks every page again. */
		if (path && *path && snprintf(mark, sizeof(mark), "%s-checked", path) <
					     (int)sizeof(mark))
			(void)unlink(mark);
		jerr_set(IMP_ERR_JOURNAL, "%s failed: the journal %s is damaged (%s); this operation "
			 "wrote nothing: run `imprint status --verify`, then restore the journal "
			 "from backup", fn, path && *path ? path : "", sqlite3_errmsg(db));
		return IMP_ERR_JOURNAL;
	}
	jerr_set(IMP_ERR_JOURNAL, "%s failed: %s (sqlite %d)", fn,
		 db ? sqlite3_errmsg(db) : sqlite3_errstr(rc), rc);
	return IMP_ERR_JOURNAL;
}

imp_err jdb_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
	int rc = sqlite3_prepare_v2(db, sql, -1, st, NULL);

	if (rc != SQLITE_OK) {
		*st = NULL;
		return jdb_fail(db, "sqlite3_prepare_v2", rc);
	}
	return IMP_OK;
}

/* ------------------------------------------------------ statement cache */

#define JDB_CACHE_MAX 32

struct jdb_cached {
	sqlite3_stmt *st;
	const char *asked; /* the text pointer it was last asked by: a hint only */
	bool lent;        /* handed out, not yet given back */
};

struct jdb_cache {
	sqlite3 *db;
	struct jdb_cached e[JDB_CACHE_MAX];
	size_t n;
	struct jdb_cache *next;
};

/* The write connections of open handles; the lock covers the list and
 * every entry (a handle is used by several fixture threads in turn). */
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct jdb_cache *caches;

static struct jdb_cache *cache_of(sqlite3 *db)
{
	struct jdb_cache *c = caches;

	while (c && c->db != db)
		c = c->next;
	return c;
}

/* Start keeping statements of db (a handle's write connection). */
static imp_err cache_attach(sqlite3 *db)
{
	struct jdb_cache *c = calloc(1, sizeof(*c));

	if (!c)
		return IMP_ERR_NOMEM;
	c->db = db;
	pthread_mutex_lock(&cache_lock);
	c->next = caches;
	caches = c;
	pthread_mutex_unlock(&cache_lock);
	return IMP_OK;
}

/* Finalize what db kept, before it is closed. */
static void cache_detach(sqlite3 *db)
{
	struct jdb_cache **pp, *c = NULL;

	pthread_mutex_lock(&cache_lock);
	for (pp = &caches; *pp; pp = &(*pp)->next) {
		if ((*pp)->db == db) {
			c = *pp;
			*pp = c->next;
			break;
		}
	}
	pthread_mutex_unlock(&cache_lock);
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++)
		sqlite3_finalize(c->e[i].st);
	free(c);
}

imp_err jdb_stmt(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
	struct jdb_cache *c;
	bool known = false;
	imp_err rc;

	*st = NULL;
	pthread_mutex_lock(&cache_lock);
	c = cache_of(db);
	/* Callers pass literals: the same pointer finds the entry without
	 * comparing every text (a pointer is confirmed by its text). */
	for (size_t i = 0; c && i < c->n; i++) {
		if (c->e[i].asked != sql || c->e[i].lent || strcmp(sqlite3_sql(c->e[i].st), sql) != 0)
			continue;
		c->e[i].lent = true;
		*st = c->e[i].st;
		pthread_mutex_unlock(&cache_lock);
		return IMP_OK;
	}
	for (size_t i = 0; c && i < c->n; i++) {
		if (strcmp(sqlite3_sql(c->e[i].st), sql) != 0)
			continue;
		known = true;
		if (c->e[i].lent)
			break; /* in use further up the stack: a fresh one */
		c->e[i].lent = true;
		c->e[i].asked = sql;
		*st = c->e[i].st;
		pthread_mutex_unlock(&cache_lock);
		return IMP_OK;
	}
	if (c && !known && c->n < JDB_CACHE_MAX) {
		rc = jdb_prepare(db, sql, st);
		if (rc == IMP_OK) {
			c->e[c->n].st = *st;
			c->e[c->n].asked = sql;
			c->e[c->n].lent = true;
			c->n++;
		}
		pthread_mutex_unlock(&cache_lock);
		return rc;
	}
	pthread_mutex_unlock(&cache_lock);
	return jdb_prepare(db, sql, st);
}

void jdb_stmt_done(sqlite3_stmt *st)
{
	struct jdb_cache *c;

	if (!st)
		return;
	pthread_mutex_lock(&cache_lock);
	c = cache_of(sqlite3_db_handle(st));
	for (size_t i = 0; c && i < c->n; i++) {
		if (c->e[i].st == st) {
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			c->e[i].lent = false;
			pthread_mutex_unlock(&cache_lock);
			return;
		}
	}
	pthread_mutex_unlock(&cache_lock);
	sqlite3_finalize(st);
}

imp_err jdb_exec(sqlite3 *db, const char *sql)
{
	int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);

	if (rc != SQLITE_OK)
		return jdb_fail(db, "sqlite3_exec", rc);
	return IMP_OK;
}

/*
 * One statement without rows (BEGIN, SAVEPOINT, RELEASE, COMMIT), kept
 * prepared: every journal operation runs two to four of them, and
 * sqlite3_exec would parse each again. The SQLite result code, as
 * sqlite3_exec gives it (SQLITE_OK when done).
 */
static int exec_kept(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int src;

	if (jdb_stmt(db, sql, &st) != IMP_OK)
		return sqlite3_exec(db, sql, NULL, NULL, NULL);
	src = sqlite3_step(st);
	if (src == SQLITE_DONE || src == SQLITE_ROW)
		src = SQLITE_OK;
	jdb_stmt_done(st);
	return src;
}

imp_err jdb_exec_kept(sqlite3 *db, const char *sql)
{
	int rc = exec_kept(db, sql);

	if (rc != SQLITE_OK)
		return jdb_fail(db, "sqlite3_exec", rc);
	return IMP_OK;
}

imp_err jdb_bind_text(sqlite3 *db, sqlite3_stmt *st, int idx, const char *s)
{
	int rc;

	if (s)
		rc = sqlite3_bind_text(st, idx, s, -1, SQLITE_STATIC);
	else
		rc = sqlite3_bind_null(st, idx);
	if (rc != SQLITE_OK)
		return jdb_fail(db, "sqlite3_bind_text", rc);
	return IMP_OK;
}

imp_err jdb_bind_i64(sqlite3 *db, sqlite3_stmt *st, int idx, int64_t v)
{
	int rc = sqlite3_bind_int64(st, idx, v);

	if (rc != SQLITE_OK)
		return jdb_fail(db, "sqlite3_bind_int64", rc);
	return IMP_OK;
}

imp_err jdb_step_done(sqlite3 *db, sqlite3_stmt *st, int *sqlite_rc)
{
	int rc = sqlite3_step(st);

	if (sqlite_rc)
		*sqlite_rc = rc;
	if (rc == SQLITE_DONE)
		return IMP_OK;
	if (rc == SQLITE_ROW) {
		jerr_set(IMP_ERR_INTERNAL, "unexpected row from: %s", sqlite3_sql(st));
		return IMP_ERR_JOURNAL;
	}
	return jdb_fail(db, "sqlite3_step", rc);
}

imp_err jdb_step_row(sqlite3 *db, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW)
		return IMP_OK;
	if (rc == SQLITE_DONE)
		return IMP_ERR_NOT_FOUND;
	return jdb_fail(db, "sqlite3_step", rc);
}

static char *put_digits(char *p, unsigned v, int width)
{
	for (int i = width - 1; i >= 0; i--) {
		p[i] = (char)('0' + v % 10);
		v /= 10;
	}
	return p + width;
}

void jtime_now(char out[40])
{
	struct timespec ts;
	struct tm tm;
	char *p = out;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	if (tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999) {
		size_t n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);

		snprintf(out + n, 40 - n, ".%03uZ", (unsigned)(ts.tv_nsec / 1000000) % 1000u);
		return;
	}
	/* "%Y-%m-%dT%H:%M:%S.mmmZ", written digit by digit: every event and
	 * row write takes one, and strftime with snprintf cost more than the
	 * rest of it. */
	p = put_digits(p, (unsigned)(tm.tm_year + 1900), 4);
	*p++ = '-';
	p = put_digits(p, (unsigned)tm.tm_mon + 1, 2);
	*p++ = '-';
	p = put_digits(p, (unsigned)tm.tm_mday, 2);
	*p++ = 'T';
	p = put_digits(p, (unsigned)tm.tm_hour, 2);
	*p++ = ':';
	p = put_digits(p, (unsigned)tm.tm_min, 2);
	*p++ = ':';
	p = put_digits(p, (unsigned)tm.tm_sec, 2);
	*p++ = '.';
	p = put_digits(p, (unsigned)(ts.tv_nsec / 1000000) % 1000u, 3);
	*p++ = 'Z';
	*p = '\0';
}

char *jjson_dump(json_t *v)
{
	char *s;

	if (!v) {
		jerr_set(IMP_ERR_NOMEM, "cannot build event detail");
		return NULL;
	}
	s = jcanon_dump(v);
	json_decref(v);
	if (!s)
		jerr_set(IMP_ERR_NOMEM, "cannot serialise event detail");
	return s;
}

/* ------------------------------------------------------------ settings */

imp_err jdb_setting_get(sqlite3 *db, const char *key, char *out, size_t cap)
{
	sqlite3_stmt *st = NULL;
	const unsigned char *v;
	imp_err rc;

	rc = jdb_stmt(db, "SELECT value FROM settings WHERE key = ?1", &st);
	if (rc)
		goto cleanup;
	rc = jdb_bind_text(db, st, 1, key);
	if (rc)
		goto cleanup;
	rc = jdb_step_row(db, st);
	if (rc)
		goto cleanup;
	v = sqlite3_column_text(st, 0);
	if (!v || strlen((const char *)v) >= cap) {
		jerr_set(IMP_ERR_JOURNAL, "setting %s is missing or too long", key);
		rc = IMP_ERR_JOURNAL;
		goto cleanup;
	}
	memcpy(out, v, strlen((const char *)v) + 1);
cleanup:
	jdb_stmt_done(st);
	return rc;
}

imp_err jdb_setting_get_u64(sqlite3 *db, const char *key, uint64_t *out)
{
	char buf[32];
	char *end;
	imp_err rc;

	rc = jdb_setting_get(db, key, buf, sizeof(buf));
	if (rc)
		return rc;
	errno = 0;
	*out = strtoull(buf, &end, 10);
	if (errno || end == buf || *end || buf[0] == '-') {
		jerr_set(IMP_ERR_JOURNAL, "setting %s is not a number: %s", key, buf);
		return IMP_ERR_JOURNAL;
	}
	return IMP_OK;
}

imp_err jdb_setting_set(sqlite3 *db, const char *key, const char *value)
{
	sqlite3_stmt *st = NULL;
	imp_err rc;

	rc = jdb_stmt(db, "INSERT INTO settings(key, value) VALUES (?1, ?2) "
			     "ON CONFLICT(key) DO UPDATE SET value = excluded.value", &st);
	if (rc)
		goto cleanup;
	rc = jdb_bind_text(db, st, 1, key);
	if (rc)
		goto cleanup;
	rc = jdb_bind_text(db, st, 2, value);
	if (rc)
		goto cleanup;
	rc = jdb_step_done(db, st, NULL);
cleanup:
	jdb_stmt_done(st);
	return rc;
}

imp_err jdb_setting_set_u64(sqlite3 *db, const char *key, uint64_t v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	return jdb_setting_set(db, key, buf);
}

imp_err jdb_leased(sqlite3 *db, bool *out)
{
	char v[16];
	imp_err rc;

	rc = jdb_setting_get(db, JS_SERIAL_SOURCE, v, sizeof(v));
	*out = rc == IMP_OK && strcmp(v, "lease") == 0;
	return rc == IMP_ERR_NOT_FOUND ? IMP_OK : rc;
}

/* --------------------------------------------------------- transactions */

/*
 * Group commit. The fixture threads share one connection, so their
 * operations run one at a time under j->lock; what they need not do one at
 * a time is the fdatasync of each COMMIT. An operation runs in a savepoint
 * of the transaction that is open (the first one in opens it); when it
 * succeeds and other threads are already waiting for the lock, it leaves
 * its savepoint in the transaction and sleeps until a COMMIT holding it
 * returns; the thread that leaves the lock with no one waiting (or with
 * JDB_BATCH_MAX operations in) runs that COMMIT for all of them. So an
 * operation never returns before its transaction is durable, exactly as
 * with a COMMIT of its own; a failed operation rolls back to its savepoint
 * and takes nothing else with it; a failed COMMIT fails every operation it
 * held.
 */
#define JDB_BATCH_MAX 64

/*
 * An operation waiting for the COMMIT that holds it. It sleeps on a
 * semaphore of its own, without j->lock: the committer posts each waiter
 * once, so a shared COMMIT wakes each of its waiters exactly once, and none
 * of them has to take j->lock again only to return (with a condition
 * variable, every waiter woke to queue on the lock the next operations
 * need).
 */
struct jdb_waiter {
	struct jdb_waiter *next;
	sem_t done;
	imp_err rc;
	char msg[sizeof(jerr_msg)];
};

static void lock_enter(struct jnl *j)
{
	__atomic_add_fetch(&j->entering, 1, __ATOMIC_SEQ_CST);
	pthread_mutex_lock(&j->lock);
	__atomic_sub_fetch(&j->entering, 1, __ATOMIC_SEQ_CST);
}

static bool others_waiting(struct jnl *j)
{
	return __atomic_load_n(&j->entering, __ATOMIC_SEQ_CST) > 0;
}

static bool checkpoint_due(const struct jnl *j, uint64_t head)
{
	return j->sign && !j->in_checkpoint && head && head >= j->cp_hint_seq + j->cp_interval;
}

/* Hand rc (and, on failure, this thread's message) to every waiter of the
 * batch and close it. */
static void batch_finish(struct jnl *j, imp_err rc)
{
	struct jdb_waiter *w = j->waiters, *next;

	j->waiters = NULL;
	j->txn_open = false;
	j->batch_ops = 0;
	j->batch_head = 0;
	j->anchor_dirty = false;
	j->anchor_counter = 0;
	j->intent_synced = false;
	for (; w; w = next) {
		next = w->next; /* w is the waiter's, gone once it is posted */
		w->rc = rc;
		if (rc)
			memcpy(w->msg, jerr_msg, sizeof(w->msg));
		sem_post(&w->done);
	}
}

/* The open transaction was rolled back under us (SQLite does that on some
 * errors): every operation it held is lost. */
static void batch_lost(struct jnl *j)
{
	char keep[sizeof(jerr_msg)];

	if (!j->txn_open)
		return;
	memcpy(keep, jerr_msg, sizeof(keep));
	jchain_head_forget(j);
	if (j->batch_ops)
		jerr_set(IMP_ERR_JOURNAL, "the transaction was rolled back before its commit: "
			 "%s", keep[0] ? keep : "sqlite ended it");
	batch_finish(j, IMP_ERR_JOURNAL);
	memcpy(jerr_msg, keep, sizeof(keep));
}

/* COMMIT the open transaction for everyone in it, with j->lock held;
 * then the anchor and a due checkpoint. Returns the COMMIT's result. */
static imp_err batch_commit(struct jnl *j)
{
	uint64_t head = j->batch_head;
	int src = SQLITE_ERROR;
	imp_err rc, crc;

	/* The settings' head with the events it names, in the same COMMIT. */
	rc = jchain_head_flush(j);
	if (j->commit_hook)
		j->commit_hook(j->commit_hook_arg, JDB_BEFORE_COMMIT, j->batch_ops, SQLITE_OK);
	if (rc == IMP_OK) {
		src = exec_kept(j->db, "COMMIT");
		if (src != SQLITE_OK)
			rc = jdb_fail(j->db, "sqlite3_exec(COMMIT)", src);
	}
	if (rc) {
		if (!sqlite3_get_autocommit(j->db))
			sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
		jchain_head_forget(j);
	}
	if (j->commit_hook)
		j->commit_hook(j->commit_hook_arg, JDB_AFTER_COMMIT, j->batch_ops, src);
	if (rc == IMP_OK && j->anchor_dirty)
		janchor_after_commit(j, head);
	batch_finish(j, rc);
	/* The operations are durable (or rolled back); a due checkpoint is
	 * taken in a transaction of its own, so a signer failure cannot undo
	 * them. */
	if (rc == IMP_OK && checkpoint_due(j, head)) {
		char keep[sizeof(jerr_msg)];

		memcpy(keep, jerr_msg, sizeof(keep));
		j->appended_seq = 0;
		crc = jdb_exec(j->db, "BEGIN IMMEDIATE");
		if (crc == IMP_OK) {
			crc = jchain_checkpoint_locked(j, false);
			if (crc == IMP_OK)
				crc = jchain_head_flush(j);
			if (crc == IMP_OK)
				crc = jdb_exec(j->db, "COMMIT");
			if (crc) {
				sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
				jchain_head_forget(j);
			} else if (j->anchor_dirty)
				janchor_after_commit(j, j->appended_seq);
			j->anchor_dirty = false;
		}
		if (crc)
			IMP_WARN("journal: automatic checkpoint failed (%s): retried after the "
				 "next event", imp_err_name(crc));
		memcpy(jerr_msg, keep, sizeof(keep));
	}
	return rc;
}

/* This thread's operation is over (failed, or never started): commit what
 * others left waiting unless a thread waiting for the lock will; unlock. */
static void leave(struct jnl *j)
{
	if (j->txn_open && sqlite3_get_autocommit(j->db))
		batch_lost(j);
	if (j->txn_open && (!j->batch_ops || !others_waiting(j))) {
		char keep[sizeof(jerr_msg)];

		memcpy(keep, jerr_msg, sizeof(keep));
		batch_commit(j);
		memcpy(jerr_msg, keep, sizeof(keep));
	}
	pthread_mutex_unlock(&j->lock);
}

imp_err jdb_begin(struct jnl *j)
{
	imp_err rc;

	jerr_clear();
	if (j->read_only) {
		jerr_set(IMP_ERR_JOURNAL, "journal opened read-only");
		return IMP_ERR_JOURNAL;
	}
	lock_enter(j);
	if (!j->txn_open) {
		rc = jdb_exec_kept(j->db, "BEGIN IMMEDIATE");
		if (rc) {
			pthread_mutex_unlock(&j->lock);
			return rc;
		}
		j->txn_open = true;
	}
	j->appended_seq = 0;
	j->op_head = j->head;
	j->op_anchor_dirty = j->anchor_dirty;
	j->op_anchor_counter = j->anchor_counter;
	rc = jdb_exec_kept(j->db, "SAVEPOINT jdb_op");
	if (rc)
		leave(j);
	return rc;
}

imp_err jdb_end(struct jnl *j, imp_err rc)
{
	struct jdb_waiter w = { 0 };

	if (sqlite3_get_autocommit(j->db)) {
		/* SQLite rolled the whole transaction back on an error. */
		jchain_head_forget(j);
		if (rc == IMP_OK) {
			jerr_set(IMP_ERR_JOURNAL, "the transaction ended before its commit");
			rc = IMP_ERR_JOURNAL;
		}
		leave(j);
		return rc;
	}
	if (rc == IMP_OK)
		rc = jdb_exec_kept(j->db, "RELEASE jdb_op");
	if (rc) {
		exec_kept(j->db, "ROLLBACK TO jdb_op");
		exec_kept(j->db, "RELEASE jdb_op");
		j->head = j->op_head;
		j->anchor_dirty = j->op_anchor_dirty;
		j->anchor_counter = j->op_anchor_counter;
		j->appended_seq = 0;
		leave(j);
		return rc;
	}
	if (j->appended_seq > j->batch_head)
		j->batch_head = j->appended_seq;
	j->appended_seq = 0;
	j->batch_ops++;
	if (!others_waiting(j) || j->batch_ops >= JDB_BATCH_MAX) {
		rc = batch_commit(j);
		pthread_mutex_unlock(&j->lock);
		return rc;
	}
	if (sem_init(&w.done, 0, 0) != 0) {
		rc = batch_commit(j); /* cannot wait: commit now, for everyone */
		pthread_mutex_unlock(&j->lock);
		return rc;
	}
	w.next = j->waiters;
	j->waiters = &w;
	pthread_mutex_unlock(&j->lock);
	while (sem_wait(&w.done) != 0 && errno == EINTR)
		;
	sem_destroy(&w.done);
	if (w.rc)
		memcpy(jerr_msg, w.msg, sizeof(jerr_msg));
	return w.rc;
}

imp_err jdb_lock_read(struct jnl *j)
{
	lock_enter(j);
	if (j->txn_open) {
		char keep[sizeof(jerr_msg)];

		memcpy(keep, jerr_msg, sizeof(keep));
		if (sqlite3_get_autocommit(j->db))
			batch_lost(j);
		else
			batch_commit(j);
		memcpy(jerr_msg, keep, sizeof(keep));
	}
	return IMP_OK;
}

void jdb_unlock_read(struct jnl *j)
{
	pthread_mutex_unlock(&j->lock);
}

void jdb_set_commit_hook(struct jnl *j, jdb_commit_hook fn, void *arg)
{
	/* As a read: a batch whose last thread left because this one was
	 * entering is committed here, so its waiters do not wait for the
	 * next operation. */
	jdb_lock_read(j);
	j->commit_hook = fn;
	j->commit_hook_arg = arg;
	jdb_unlock_read(j);
}

/* ---------------------------------------------------------------- schema */

/*
 * migrations[v] brings a journal from user_version v to v + 1. PERSISTED:
 * never edit a shipped step, append a new one.
 */
static const char *const migrations[] = {
	/* 0 -> 1 */
	"CREATE TABLE settings ("
	"  key   TEXT PRIMARY KEY,"
	"  value TEXT NOT NULL"
	") WITHOUT ROWID;"
	"CREATE TABLE boards ("
	"  id              INTEGER PRIMARY KEY,"
	"  uid             TEXT NOT NULL UNIQUE"
	"                  CHECK (length(uid) BETWEEN 2 AND 128 AND length(uid) % 2 = 0"
	"                         AND uid NOT GLOB '*[^0-9a-f]*'),"
	"  serial          TEXT UNIQUE,"
	"  counter         INTEGER UNIQUE,"
	"  state           TEXT NOT NULL CHECK (state IN ('CONNECT','IDENTIFY','ALLOCATE',"
	"                  'KEYS','CERTIFY','INJECT','FIRMWARE','CHALLENGE','LOCK','RECORD',"
	"                  'DONE','FAILED','QUARANTINED')),"
	"  key_mode        TEXT,"
	"  fixture         TEXT,"
	"  attempts        INTEGER NOT NULL DEFAULT 0,"
	"  reissues        INTEGER NOT NULL DEFAULT 0,"
	"  last_error_code INTEGER NOT NULL DEFAULT 0,"
	"  last_error      TEXT,"
	"  data            TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(data)),"
	"  created         TEXT NOT NULL,"
	"  updated         TEXT NOT NULL,"
	"  CHECK ((serial IS NULL) = (counter IS NULL)),"
	"  CHECK (state <> 'QUARANTINED' OR serial IS NULL),"
	"  CHECK (state IN ('CONNECT','IDENTIFY','ALLOCATE','FAILED','QUARANTINED')"
	"         OR serial IS NOT NULL)"
	");"
	"CREATE INDEX boards_state ON boards(state, id);"
	"CREATE TABLE events ("
	"  seq       INTEGER PRIMARY KEY,"
	"  ts        TEXT NOT NULL,"
	"  mono_ns   INTEGER NOT NULL,"
	"  uid       TEXT REFERENCES boards(uid),"
	"  serial    TEXT,"
	"  kind      TEXT NOT NULL,"
	"  detail    TEXT NOT NULL,"
	"  prev_hash TEXT NOT NULL,"
	"  hash      TEXT NOT NULL UNIQUE"
	");"
	"CREATE INDEX events_uid ON events(uid, seq);"
	"CREATE TRIGGER events_no_update BEFORE UPDATE ON events"
	"  BEGIN SELECT RAISE(ABORT, 'journal events are append-only'); END;"
	"CREATE TRIGGER events_no_delete BEFORE DELETE ON events"
	"  BEGIN SELECT RAISE(ABORT, 'journal events are append-only'); END;"
	"CREATE TABLE checkpoints ("
	"  seq       INTEGER PRIMARY KEY REFERENCES events(seq),"
	"  head_hash TEXT NOT NULL,"
	"  signature TEXT NOT NULL,"
	"  signer    TEXT NOT NULL,"
	"  ts        TEXT NOT NULL"
	");"
	"CREATE TRIGGER checkpoints_no_update BEFORE UPDATE ON checkpoints"
	"  BEGIN SELECT RAISE(ABORT, 'journal checkpoints are append-only'); END;"
	"CREATE TRIGGER checkpoints_no_delete BEFORE DELETE ON checkpoints"
	"  BEGIN SELECT RAISE(ABORT, 'journal checkpoints are append-only'); END;"
	"CREATE TABLE outbox ("
	"  record_id       TEXT PRIMARY KEY,"
	"  serial          TEXT NOT NULL,"
	"  uid             TEXT NOT NULL REFERENCES boards(uid),"
	"  kind            TEXT NOT NULL CHECK (kind IN ('identity','revocation')),"
	"  jws             TEXT NOT NULL,"
	"  created         TEXT NOT NULL,"
	"  delivered_at    TEXT,"
	"  attempts        INTEGER NOT NULL DEFAULT 0,"
	"  last_error      TEXT,"
	"  rejected_reason TEXT"
	");"
	"CREATE INDEX outbox_pending ON outbox(created) "
	"  WHERE delivered_at IS NULL AND rejected_reason IS NULL;"
	"CREATE INDEX outbox_uid ON outbox(uid);",
	/* 1 -> 2: line mode (docs/LINE.md): leased serial blocks, and the
	 * delivery state of each outbox record to the line database. */
	"CREATE TABLE leases ("
	"  id            INTEGER PRIMARY KEY,"
	"  first_counter INTEGER NOT NULL UNIQUE CHECK (first_counter >= 1),"
	"  last_counter  INTEGER NOT NULL UNIQUE,"
	"  next_counter  INTEGER NOT NULL,"
	"  created       TEXT NOT NULL,"
	"  closed        TEXT,"
	"  CHECK (last_counter >= first_counter),"
	"  CHECK (next_counter BETWEEN first_counter AND last_counter + 1)"
	");"
	"ALTER TABLE outbox ADD COLUMN line_delivered_at TEXT;"
	"ALTER TABLE outbox ADD COLUMN line_conflict TEXT;"
	"CREATE INDEX outbox_line_pending ON outbox(created) WHERE line_delivered_at IS NULL;",
	/* 2 -> 3: the same boards, its CHECK constraints written as chains of
	 * comparisons: SQLite builds a table for a constant IN list of more
	 * than two values at every row a CHECK tests, which was most of the
	 * cost of a state change. Rebuilt the documented way (foreign keys
	 * off around the open's transaction, then foreign_key_check). */
	"CREATE TABLE boards_v3 ("
	"  id              INTEGER PRIMARY KEY,"
	"  uid             TEXT NOT NULL UNIQUE"
	"                  CHECK (length(uid) BETWEEN 2 AND 128 AND length(uid) % 2 = 0"
	"                         AND uid NOT GLOB '*[^0-9a-f]*'),"
	"  serial          TEXT UNIQUE,"
	"  counter         INTEGER UNIQUE,"
	"  state           TEXT NOT NULL CHECK (state = 'CONNECT' OR state = 'IDENTIFY'"
	"                  OR state = 'ALLOCATE' OR state = 'KEYS' OR state = 'CERTIFY'"
	"                  OR state = 'INJECT' OR state = 'FIRMWARE' OR state = 'CHALLENGE'"
	"                  OR state = 'LOCK' OR state = 'RECORD' OR state = 'DONE'"
	"                  OR state = 'FAILED' OR state = 'QUARANTINED'),"
	"  key_mode        TEXT,"
	"  fixture         TEXT,"
	"  attempts        INTEGER NOT NULL DEFAULT 0,"
	"  reissues        INTEGER NOT NULL DEFAULT 0,"
	"  last_error_code INTEGER NOT NULL DEFAULT 0,"
	"  last_error      TEXT,"
	"  data            TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(data)),"
	"  created         TEXT NOT NULL,"
	"  updated         TEXT NOT NULL,"
	"  CHECK ((serial IS NULL) = (counter IS NULL)),"
	"  CHECK (state <> 'QUARANTINED' OR serial IS NULL),"
	"  CHECK (state = 'CONNECT' OR state = 'IDENTIFY' OR state = 'ALLOCATE'"
	"         OR state = 'FAILED' OR state = 'QUARANTINED' OR serial IS NOT NULL)"
	");"
	"INSERT INTO boards_v3(id, uid, serial, counter, state, key_mode, fixture, attempts, "
	"  reissues, last_error_code, last_error, data, created, updated) "
	"  SELECT id, uid, serial, counter, state, key_mode, fixture, attempts, reissues, "
	"  last_error_code, last_error, data, created, updated FROM boards;"
	"DROP TABLE boards;"
	"ALTER TABLE boards_v3 RENAME TO boards;"
	"CREATE INDEX boards_state ON boards(state, id);",
};
_Static_assert(IMP_ARRAY_SIZE(migrations) == JNL_SCHEMA_VERSION,
	       "one migration step per schema version");

static imp_err get_user_version(sqlite3 *db, int *out)
{
	sqlite3_stmt *st = NULL;
	imp_err rc;

	rc = jdb_prepare(db, "PRAGMA user_version", &st);
	if (rc)
		goto cleanup;
	rc = jdb_step_row(db, st);
	if (rc == IMP_ERR_NOT_FOUND)
		rc = jdb_fail(db, "PRAGMA user_version", SQLITE_ERROR);
	if (rc)
		goto cleanup;
	*out = sqlite3_column_int(st, 0);
cleanup:
	sqlite3_finalize(st);
	return rc;
}

static imp_err set_pragma(sqlite3 *db, const char *sql, const char *want)
{
	sqlite3_stmt *st = NULL;
	imp_err rc;

	rc = jdb_prepare(db, sql, &st);
	if (rc)
		goto cleanup;
	rc = sqlite3_step(st) == SQLITE_ROW ? IMP_OK : IMP_ERR_NOT_FOUND;
	if (want) {
		const char *got = rc == IMP_OK ? (const char *)sqlite3_column_text(st, 0) : NULL;

		if (!got || strcasecmp(got, want) != 0) {
			jerr_set(IMP_ERR_JOURNAL, "%s: got %s, need %s", sql, got ? got : "nothing",
				 want);
			rc = IMP_ERR_JOURNAL;
			goto cleanup;
		}
	}
	rc = IMP_OK;
cleanup:
	sqlite3_finalize(st);
	return rc;
}

/* "setting" event for a changed value, inside a transaction. */
static imp_err setting_event(struct jnl *j, const char *key, const char *old,
			     const char *new_value)
{
	return jchain_append_json(j, NULL, NULL, "setting",
				  json_pack("{s:s, s:s?, s:s}", "key", key, "old", old, "new",
					    new_value));
}

static imp_err change_setting_u64(struct jnl *j, const char *key, uint64_t v)
{
	char old[32], new_value[32];
	imp_err rc;

	rc = jdb_setting_get(j->db, key, old, sizeof(old));
	if (rc)
		return rc;
	snprintf(new_value, sizeof(new_value), "%" PRIu64, v);
	if (strcmp(old, new_value) == 0)
		return IMP_OK;
	rc = jdb_setting_set(j->db, key, new_value);
	if (rc)
		return rc;
	return setting_event(j, key, old, new_value);
}

/* A quota counts every serial the journal issued: one below them would
 * make every later audit report the journal as over quota. Not in line
 * mode (line true, or the journal's serial source), where serials come
 * from the line's leases and its quota is the line's. */
static imp_err quota_change(struct jnl *j, uint64_t quota, bool line)
{
	uint64_t issued = 0;
	bool leased = line;
	imp_err rc = leased ? IMP_OK : jdb_leased(j->db, &leased);

	if (rc == IMP_OK && leased)
		return change_setting_u64(j, JS_QUOTA, quota);
	if (rc == IMP_OK)
		rc = jdb_setting_get_u64(j->db, JS_SERIAL_COUNTER, &issued);
	if (rc == IMP_ERR_NOT_FOUND) {
		issued = 0;
		rc = IMP_OK;
	}
	if (rc)
		return rc;
	if (quota < issued) {
		jerr_set(IMP_ERR_CONFIG, "quota %" PRIu64 " is below the %" PRIu64 " serials journal "
			 "%s already issued (a quota counts every serial issued since the journal "
			 "began): give at least %" PRIu64 " (that many issues no more)", quota, issued,
			 j->path, issued);
		return IMP_ERR_CONFIG;
	}
	return change_setting_u64(j, JS_QUOTA, quota);
}

/* The end of a transaction of the open's own (outside the group commit):
 * the head with its events and COMMIT, or ROLLBACK on rc. */
static imp_err own_txn_end(struct jnl *j, imp_err rc)
{
	if (rc == IMP_OK)
		rc = jchain_head_flush(j);
	if (rc == IMP_OK)
		rc = jdb_exec(j->db, "COMMIT");
	if (rc) {
		sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
		jchain_head_forget(j);
	}
	return rc;
}

/* Create or migrate the schema and store settings, in one transaction. */
static imp_err init_schema(struct jnl *j, const struct jnl_opts *o)
{
	char station[JNL_STATION_ID_MAX + 1];
	int version;
	imp_err rc;

	rc = jdb_exec(j->db, "BEGIN IMMEDIATE");
	if (rc)
		return rc;
	rc = get_user_version(j->db, &version);
	if (rc)
		goto cleanup;
	if (version > JNL_SCHEMA_VERSION) {
		jerr_set(IMP_ERR_JOURNAL, "journal %s has schema version %d, newer than this "
			 "imprint (%d): use a newer imprint", j->path, version,
			 JNL_SCHEMA_VERSION);
		rc = IMP_ERR_JOURNAL;
		goto cleanup;
	}
	if (version == 0 && o->must_exist) {
		/* An empty file: a creation cut short is not a journal yet. */
		jerr_set(IMP_ERR_NOT_FOUND, "no journal in %s (empty file)", j->path);
		rc = IMP_ERR_NOT_FOUND;
		goto cleanup;
	}
	if (version == 0) {
		sqlite3_stmt *st = NULL;

		/* An empty file is a new journal; anything else is not ours. */
		rc = jdb_prepare(j->db, "SELECT count(*) FROM sqlite_schema", &st);
		if (rc == IMP_OK)
			rc = jdb_step_row(j->db, st);
		if (rc == IMP_OK && sqlite3_column_int(st, 0) != 0) {
			jerr_set(IMP_ERR_JOURNAL, "%s is a database but not an imprint journal%s",
				 j->path, jintegrity_wal_present(j->path)
						  ? " (with a -wal beside it, which may be another "
						    "database's: move it aside and retry)"
						  : "");
			rc = IMP_ERR_JOURNAL;
		}
		sqlite3_finalize(st);
		if (rc)
			goto cleanup;
	}
	for (int v = version; v < JNL_SCHEMA_VERSION; v++) {
		char sql[48];

		rc = jdb_exec(j->db, migrations[v]);
		if (rc)
			goto cleanup;
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
		rc = jdb_exec(j->db, sql);
		if (rc)
			goto cleanup;
	}
	if (version > 0 && version < JNL_SCHEMA_VERSION) {
		/* The steps ran with foreign keys off (jnl_open): every event and
		 * outbox row must still name a board. */
		sqlite3_stmt *st = NULL;

		rc = jdb_prepare(j->db, "PRAGMA foreign_key_check", &st);
		if (rc == IMP_OK && sqlite3_step(st) == SQLITE_ROW) {
			jerr_set(IMP_ERR_JOURNAL, "journal %s: a row of %s names no board after the "
				 "migration to schema %d: nothing was changed; run imprint audit",
				 j->path, (const char *)sqlite3_column_text(st, 0), JNL_SCHEMA_VERSION);
			rc = IMP_ERR_JOURNAL;
		}
		sqlite3_finalize(st);
		if (rc)
			goto cleanup;
		IMP_INFO("journal: %s migrated from schema %d to %d", j->path, version,
			 JNL_SCHEMA_VERSION);
	}
	if (version == 0) {
		const char *sid = o->station_id ? o->station_id : "station";

		if (strlen(sid) >= sizeof(station) || !sid[0]) {
			jerr_set(IMP_ERR_CONFIG, "station id must be 1 to %zu characters",
				 sizeof(station) - 1);
			rc = IMP_ERR_CONFIG;
			goto cleanup;
		}
		rc = jdb_setting_set(j->db, JS_STATION_ID, sid);
		if (rc == IMP_OK)
			rc = jdb_setting_set_u64(j->db, JS_SERIAL_COUNTER, 0);
		if (rc == IMP_OK)
			rc = jdb_setting_set_u64(j->db, JS_QUOTA, 0);
		if (rc == IMP_OK)
			rc = jdb_setting_set_u64(j->db, JS_CP_INTERVAL, JNL_CHECKPOINT_DEFAULT);
		if (rc == IMP_OK)
			rc = jdb_setting_set_u64(j->db, JS_HEAD_SEQ, 0);
		if (rc == IMP_OK)
			rc = jdb_setting_set(j->db, JS_HEAD_HASH, J_ZERO_HASH);
		if (rc)
			goto cleanup;
		rc = jchain_append_json(j, NULL, NULL, "setting",
					json_pack("{s:s, s:s, s:i}", "created", "journal",
						  "station_id", sid, "schema", JNL_SCHEMA_VERSION));
		if (rc)
			goto cleanup;
	}
	rc = jdb_setting_get(j->db, JS_STATION_ID, station, sizeof(station));
	if (rc)
		goto cleanup;
	if (o->station_id && strcmp(o->station_id, station) != 0) {
		jerr_set(IMP_ERR_CONFIG, "journal %s belongs to station %s, not %s: check "
			 "station_id or the data directory", j->path, station, o->station_id);
		rc = IMP_ERR_CONFIG;
		goto cleanup;
	}
	if (o->quota) {
		rc = quota_change(j, o->quota, o->leased_serials);
		if (rc)
			goto cleanup;
	}
	if (o->checkpoint_interval) {
		rc = change_setting_u64(j, JS_CP_INTERVAL, o->checkpoint_interval);
		if (rc)
			goto cleanup;
	}
	if (o->leased_serials) {
		bool leased = false;
		uint64_t issued;

		rc = jdb_leased(j->db, &leased);
		if (rc == IMP_OK && !leased)
			rc = jdb_setting_get_u64(j->db, JS_SERIAL_COUNTER, &issued);
		if (rc)
			goto cleanup;
		if (!leased && issued) {
			jerr_set(IMP_ERR_CONFIG, "journal %s already issued %" PRIu64 " serials from "
				 "its own counter: a station joins a line with a new journal",
				 j->path, issued);
			rc = IMP_ERR_CONFIG;
			goto cleanup;
		}
		if (!leased) {
			rc = jdb_setting_set(j->db, JS_SERIAL_SOURCE, "lease");
			if (rc == IMP_OK)
				rc = setting_event(j, JS_SERIAL_SOURCE, "counter", "lease");
			if (rc)
				goto cleanup;
		}
	}
cleanup:
	return own_txn_end(j, rc);
}

imp_err jdb_counter_skip(struct jnl *j, uint64_t *to, bool cap)
{
	uint64_t counter, quota;
	bool leased = false;
	imp_err rc = jdb_exec(j->db, "BEGIN IMMEDIATE");

	if (rc)
		return rc;
	rc = jdb_leased(j->db, &leased);
	if (rc == IMP_OK && leased) {
		jerr_set(IMP_ERR_JOURNAL, "a line-mode journal takes its serials from the line's "
			 "leases: its counter is not skipped");
		rc = IMP_ERR_JOURNAL;
	}
	if (rc == IMP_OK)
		rc = jdb_setting_get_u64(j->db, JS_SERIAL_COUNTER, &counter);
	if (rc == IMP_OK)
		rc = jdb_setting_get_u64(j->db, JS_QUOTA, &quota);
	/* The quota bounds what can have been issued as surely as a reservation. */
	if (rc == IMP_OK && *to > quota && cap)
		*to = quota > counter ? quota : counter;
	if (rc == IMP_OK && *to > quota) {
		jerr_set(IMP_ERR_QUOTA, "moving the serial counter on to %" PRIu64 " passes the "
			 "production quota of %" PRIu64 ": no serial would be left to issue; raise "
			 "the quota in the configuration first if more are authorised", *to, quota);
		rc = IMP_ERR_QUOTA;
	}
	if (rc == IMP_OK && *to > counter)
		rc = change_setting_u64(j, JS_SERIAL_COUNTER, *to);
	return own_txn_end(j, rc);
}

static imp_err load_cp_state(struct jnl *j)
{
	sqlite3_stmt *st = NULL;
	uint64_t interval;
	imp_err rc;

	rc = jdb_setting_get_u64(j->db, JS_CP_INTERVAL, &interval);
	if (rc)
		return rc;
	j->cp_interval = interval ? (uint32_t)interval : JNL_CHECKPOINT_DEFAULT;
	rc = jdb_prepare(j->db, "SELECT coalesce(max(seq), 0) FROM checkpoints", &st);
	if (rc == IMP_OK)
		rc = jdb_step_row(j->db, st);
	if (rc == IMP_OK)
		j->cp_hint_seq = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc;
}

/* SQLite's commit and rollback hooks on a handle's write connection:
 * count the transactions that end (struct jnl, txn_ends). */
static int count_commit(void *arg)
{
	struct jnl *j = arg;

	j->txn_ends++;
	return 0;
}

static void count_rollback(void *arg)
{
	struct jnl *j = arg;

	j->txn_ends++;
}

/*
 * Process-wide SQLite settings, before SQLite's first use in the process
 * (later, sqlite3_config refuses with SQLITE_MISUSE and the defaults stay,
 * which are correct, only slower): no memory statistics, whose global
 * mutex every sqlite3_malloc of every fixture thread took. Statement
 * journals keep SQLite's default (in memory up to 64 KiB, then a file):
 * all in memory, a bulk update of the outbox (a line's refeed) would hold
 * the whole table in RAM, and a larger spill threshold made SQLite 3.40
 * fail a big INSERT's spill with SQLITE_FULL (journal_migrate).
 */
static pthread_once_t sqlite_once = PTHREAD_ONCE_INIT;

static void sqlite_process_config(void)
{
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

static imp_err open_db(const char *path, int flags, int busy_ms, sqlite3 **out)
{
	sqlite3 *db = NULL;
	char name[4400];
	int src;

	pthread_once(&sqlite_once, sqlite_process_config);
	if (flags & SQLITE_OPEN_READONLY) {
		imp_err rc = jintegrity_ro_name(path, name, sizeof(name), &flags);

		if (rc)
			return rc;
		path = name;
	}
	/* A writer gathers its -wal writes (walbuf.c); NULL: the default VFS. */
	src = sqlite3_open_v2(path, &db, flags,
			      flags & SQLITE_OPEN_READONLY ? NULL : jwalbuf_vfs());
	if (src != SQLITE_OK) {
		imp_err rc = jdb_fail(db, "sqlite3_open_v2", src);

		sqlite3_close(db);
		return rc;
	}
	sqlite3_extended_result_codes(db, 1);
	/* Until the journal passed its checks at open, closing it must not
	 * checkpoint a -wal into it (a stale or foreign -wal would overwrite
	 * good pages); jnl_open turns checkpoints on close back on. */
	sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
	src = sqlite3_busy_timeout(db, busy_ms);
	if (src != SQLITE_OK) {
		imp_err rc = jdb_fail(db, "sqlite3_busy_timeout", src);

		sqlite3_close(db);
		return rc;
	}
	*out = db;
	return IMP_OK;
}

imp_err jdb_open_reader(struct jnl *j, sqlite3 **out)
{
	return open_db(j->path, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, j->busy_ms, out);
}

imp_err jdb_kept_reader(struct jnl *j, sqlite3 **out)
{
	imp_err rc;

	*out = NULL;
	if (!j->rdb) {
		rc = jdb_open_reader(j, &j->rdb);
		if (rc == IMP_OK)
			rc = cache_attach(j->rdb);
		if (rc) {
			sqlite3_close(j->rdb);
			j->rdb = NULL;
			return rc;
		}
	}
	*out = j->rdb;
	return IMP_OK;
}

imp_err jdb_snapshot(struct jnl *j, const char *sql, const struct jdb_arg *args, size_t nargs,
		     jdb_row_fn fn, void *arg)
{
	sqlite3_stmt *st = NULL;
	sqlite3 *db = NULL;
	bool stop = false;
	imp_err rc;

	jerr_clear();
	rc = jdb_open_reader(j, &db);
	if (rc)
		return rc;
	rc = jdb_exec(db, "BEGIN");
	if (rc == IMP_OK)
		rc = jdb_prepare(db, sql, &st);
	for (size_t i = 0; rc == IMP_OK && i < nargs; i++)
		rc = args[i].is_text ? jdb_bind_text(db, st, (int)i + 1, args[i].text)
				     : jdb_bind_i64(db, st, (int)i + 1, args[i].i64);
	while (rc == IMP_OK && !stop) {
		rc = jdb_step_row(db, st);
		if (rc == IMP_ERR_NOT_FOUND) {
			rc = IMP_OK;
			break;
		}
		if (rc == IMP_OK)
			rc = fn(arg, st, &stop);
	}
	sqlite3_finalize(st);
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(db);
	return rc;
}

/*
 * SQLite's unix VFS opens a database whose absolute path (symbolic links
 * resolved) is at most 512 bytes with room for "-journal" after it, and
 * says only "unable to open database file" past that: say why here.
 */
#define JDB_PATH_MAX 504u

static imp_err path_fits(const char *path)
{
	char dir[PATH_MAX], real[PATH_MAX], full[2 * PATH_MAX];
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	size_t n;

	if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - path) : 1,
			 slash ? path : ".");
	if (realpath(path, real)) /* the file exists: every link resolved, as SQLite does */
		snprintf(full, sizeof(full), "%s", real);
	else if (realpath(dir, real))
		snprintf(full, sizeof(full), "%s/%s", strcmp(real, "/") ? real : "", base);
	else if (path[0] == '/' || !getcwd(real, sizeof(real)))
		snprintf(full, sizeof(full), "%s", path);
	else
		snprintf(full, sizeof(full), "%s/%s", real, path);
	n = strlen(full);
	if (n <= JDB_PATH_MAX)
		return IMP_OK;
	jerr_set(IMP_ERR_CONFIG, "the journal's path is %zu bytes long (%.60s...); SQLite opens "
		 "one of at most %u: give the station a data directory with a shorter path "
		 "(--data-dir)", n, full, JDB_PATH_MAX);
	return IMP_ERR_CONFIG;
}

imp_err jnl_open(const char *path, const struct jnl_opts *opts,
			  struct jnl **out)
{
	static const struct jnl_opts defaults;
	const struct jnl_opts *o = opts ? opts : &defaults;
	struct jnl *j = NULL;
	bool must_exist = o->must_exist || o->read_only;
	struct stat sb;
	imp_err rc;

	jerr_clear();
	*out = NULL;
	if (!path || !path[0]) {
		jerr_set(IMP_ERR_USAGE, "no journal path");
		return IMP_ERR_USAGE;
	}
	if (o->sign && (!o->signer_fpr || strlen(o->signer_fpr) != JNL_FPR_HEX_LEN)) {
		jerr_set(IMP_ERR_CONFIG, "a checkpoint signer needs its certificate fingerprint "
			 "(64 hex digits)");
		return IMP_ERR_CONFIG;
	}
	rc = path_fits(path);
	if (rc)
		return rc;
	if (!must_exist && (stat(path, &sb) != 0 ? errno == ENOENT : sb.st_size == 0)) {
		/* Never a new journal where this station's anchor says one existed. */
		rc = janchor_refuse_new(path);
		if (rc)
			return rc;
	}
	if (stat(path, &sb) != 0) {
		int fd;

		if (errno != ENOENT || must_exist) {
			int err = errno;

			/* Gone while its anchor says serials were issued: lost, not new. */
			if (err == ENOENT && (rc = janchor_refuse_new(path)) != IMP_OK)
				return rc;
			jerr_set(IMP_ERR_NOT_FOUND, "no journal at %s: %s", path, strerror(err));
			return IMP_ERR_NOT_FOUND;
		}
		/* Create it ourselves so it is 0600 (SQLite gives -wal and -shm
		 * the same mode). */
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0 && errno != EEXIST) {
			jerr_set(IMP_ERR_IO, "cannot create journal %s: %s", path, strerror(errno));
			return IMP_ERR_IO;
		}
		if (fd >= 0)
			close(fd);
	} else if (!S_ISREG(sb.st_mode)) {
		jerr_set(IMP_ERR_CONFIG, "the journal %s is %s, not a file: give the journal's file "
			 "(the configuration's \"journal\", default DATA/journal.sqlite)", path,
			 S_ISDIR(sb.st_mode) ? "a directory" : "not a regular file");
		return IMP_ERR_CONFIG;
	}
	j = calloc(1, sizeof(*j));
	if (!j)
		return IMP_ERR_NOMEM;
	pthread_mutex_init(&j->lock, NULL);
	pthread_mutex_init(&j->rlock, NULL);
	j->path = strdup(path);
	if (!j->path) {
		rc = IMP_ERR_NOMEM;
		goto cleanup;
	}
	j->read_only = o->read_only;
	j->busy_ms = o->busy_timeout_ms > 0 ? o->busy_timeout_ms : 10000;
	j->sign = o->sign;
	j->sign_arg = o->sign_arg;
	j->reserve = o->reserve;
	j->reserve_arg = o->reserve_arg;
	j->reserved = o->reserved;
	j->serials_after = o->serials_after;
	j->serials_after_given = o->serials_after_given;
	if (o->sign) {
		for (size_t i = 0; i < JNL_FPR_HEX_LEN; i++)
			j->signer_fpr[i] = (char)(o->signer_fpr[i] | 0x20);
	}
	j->format_serial = o->format_serial;
	j->format_arg = o->format_arg;

	rc = jintegrity_wal_precheck(path);
	if (rc)
		goto cleanup;
	rc = open_db(path, (o->read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) |
			   SQLITE_OPEN_FULLMUTEX, j->busy_ms, &j->db);
	if (rc == IMP_OK)
		rc = cache_attach(j->db);
	if (rc)
		goto cleanup;
	sqlite3_commit_hook(j->db, count_commit, j);
	sqlite3_rollback_hook(j->db, count_rollback, j);
	if (!o->read_only) {
		rc = set_pragma(j->db, "PRAGMA journal_mode = WAL", "wal");
		if (rc)
			goto cleanup;
	}
	rc = set_pragma(j->db, "PRAGMA synchronous = FULL", NULL);
	if (rc)
		goto cleanup;
	if (o->read_only) {
		int version;

		rc = get_user_version(j->db, &version);
		if (rc == IMP_OK && (version < JNL_SCHEMA_READ_MIN || version > JNL_SCHEMA_VERSION)) {
			jerr_set(IMP_ERR_JOURNAL, "journal %s has schema version %d, this imprint "
				 "reads %d to %d: %s", path, version, JNL_SCHEMA_READ_MIN,
				 JNL_SCHEMA_VERSION,
				 version == 0 ? "it holds no journal (a creation cut short, or "
						"another database); restore the journal from backup"
				 : version > JNL_SCHEMA_VERSION
					 ? "use a newer imprint"
					 : "a writable command of this imprint (resume) migrates it");
			rc = IMP_ERR_JOURNAL;
		}
	} else {
		/* Foreign keys go on after the schema's transaction: a migration
		 * that rebuilds a table runs with them off (they cannot change
		 * inside a transaction) and checks them itself. */
		rc = set_pragma(j->db, "PRAGMA foreign_keys = OFF", NULL);
		if (rc == IMP_OK)
			rc = init_schema(j, o);
	}
	if (rc == IMP_OK)
		rc = set_pragma(j->db, "PRAGMA foreign_keys = ON", NULL);
	if (rc == IMP_OK)
		rc = jintegrity_quick_check(j);
	if (rc == IMP_OK && !o->read_only)
		rc = janchor_open_check(j);
	if (rc)
		goto cleanup;
	sqlite3_db_config(j->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 0, NULL);
	rc = load_cp_state(j);
cleanup:
	/* A file cut short (a partial copy, a truncated backup) fails on its
	 * first read, before the page check: say so as the page check does. */
	if (rc && j->db && (sqlite3_extended_errcode(j->db) & 0xff) == SQLITE_NOTADB)
		jerr_set(IMP_ERR_JOURNAL, "%s is not a journal (%s: overwritten, or another "
			 "file put in its place); nothing is written to it: restore the journal "
			 "from backup", path, sqlite3_errmsg(j->db));
	else if (rc && j->db && (sqlite3_extended_errcode(j->db) & 0xff) == SQLITE_CORRUPT)
		jerr_set(IMP_ERR_JOURNAL, "the journal %s is damaged (%s); nothing is written to "
			 "it: %s", path, sqlite3_errmsg(j->db),
			 jintegrity_wal_present(path)
				 ? "its -wal may be stale or foreign (put back from elsewhere): move "
				   "it aside and retry, else restore the journal from backup"
				 : "restore it from backup");
	if (rc) {
		jnl_close(j);
		return rc;
	}
	*out = j;
	return IMP_OK;
}

void jnl_close(struct jnl *j)
{
	if (!j)
		return;
	if (j->rdb) {
		/* before db: the last connection to close checkpoints the -wal */
		cache_detach(j->rdb);
		sqlite3_close(j->rdb);
		j->rdb = NULL;
	}
	if (j->db) {
		int src;

		if (j->txn_open) {
			pthread_mutex_lock(&j->lock);
			batch_commit(j);
			pthread_mutex_unlock(&j->lock);
		}
		jdata_cache_free(j);
		cache_detach(j->db);
		src = sqlite3_close(j->db);
		if (src != SQLITE_OK)
			jdb_fail(j->db, "sqlite3_close", src);
		else if (j->pages_ok && !j->read_only)
			jintegrity_mark_checked(j->path);
	}
	pthread_mutex_destroy(&j->lock);
	pthread_mutex_destroy(&j->rlock);
	free(j->path);
	free(j);
}

/* ------------------------------------------------------- settings API */

imp_err jnl_info(struct jnl *j, struct jnl_info *out)
{
	sqlite3_stmt *st = NULL;
	uint64_t v;
	imp_err rc;

	jerr_clear();
	memset(out, 0, sizeof(*out));
	jdb_lock_read(j);
	rc = jdb_exec(j->db, "BEGIN");
	if (rc)
		goto unlock;
	rc = jdb_setting_get(j->db, JS_STATION_ID, out->station_id, sizeof(out->station_id));
	if (rc == IMP_OK)
		rc = get_user_version(j->db, &out->schema_version);
	if (rc == IMP_OK)
		rc = jdb_setting_get_u64(j->db, JS_QUOTA, &out->quota);
	if (rc == IMP_OK)
		rc = jdb_setting_get_u64(j->db, JS_SERIAL_COUNTER, &out->issued);
	if (rc == IMP_OK)
		rc = jdb_setting_get_u64(j->db, JS_CP_INTERVAL, &v);
	if (rc == IMP_OK)
		out->checkpoint_interval = (uint32_t)v;
	if (rc == IMP_OK)
		rc = jdb_setting_get_u64(j->db, JS_HEAD_SEQ, &out->head_seq);
	if (rc == IMP_OK)
		rc = jdb_setting_get(j->db, JS_HEAD_HASH, out->head_hash, sizeof(out->head_hash));
	if (rc == IMP_OK)
		rc = jdb_prepare(j->db, "SELECT coalesce(max(seq), 0) FROM checkpoints", &st);
	if (rc == IMP_OK)
		rc = jdb_step_row(j->db, st);
	if (rc == IMP_OK)
		out->last_checkpoint_seq = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	out->quota_left = out->quota > out->issued ? out->quota - out->issued : 0;
	if (rc == IMP_OK)
		rc = jdb_leased(j->db, &out->leased_serials);
	if (rc == IMP_OK && out->leased_serials) {
		sqlite3_stmt *ls = NULL;

		rc = jdb_prepare(j->db, "SELECT coalesce(sum(last_counter + 1 - next_counter), 0) "
				 "FROM leases WHERE closed IS NULL", &ls);
		if (rc == IMP_OK)
			rc = jdb_step_row(j->db, ls);
		if (rc == IMP_OK)
			out->lease_left = (uint64_t)sqlite3_column_int64(ls, 0);
		sqlite3_finalize(ls);
		out->quota_left = out->lease_left;
	}
	sqlite3_exec(j->db, "COMMIT", NULL, NULL, NULL);
unlock:
	jdb_unlock_read(j);
	return rc;
}

imp_err jnl_set_quota(struct jnl *j, uint64_t quota)
{
	imp_err rc;

	rc = jdb_begin(j);
	if (rc)
		return rc;
	rc = quota_change(j, quota, false);
	return jdb_end(j, rc);
}

imp_err jnl_set_checkpoint_interval(struct jnl *j, uint32_t interval)
{
	imp_err rc;

	if (interval == 0) {
		jerr_set(IMP_ERR_USAGE, "checkpoint interval must be at least 1");
		return IMP_ERR_USAGE;
	}
	rc = jdb_begin(j);
	if (rc)
		return rc;
	rc = change_setting_u64(j, JS_CP_INTERVAL, interval);
	if (rc == IMP_OK)
		j->cp_interval = interval;
	return jdb_end(j, rc);
}
