/*
 * Private to the journal (journal_*.c): the handle, SQLite wrappers,
 * transactions, settings, the event chain.
 */
#ifndef PROVISIONER_JOURNAL_INT_H
#define PROVISIONER_JOURNAL_INT_H

#include <pthread.h>
#include <sqlite3.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "journal/journal.h"

/* A point of the shared COMMIT (tests: fault injection, ordering). */
enum jdb_commit_point {
	JDB_BEFORE_COMMIT, /* every operation of the batch is in; COMMIT not yet run */
	JDB_AFTER_COMMIT,  /* COMMIT returned (durable if it succeeded); waiters not yet told */
};
typedef void (*jdb_commit_hook)(void *arg, enum jdb_commit_point at, unsigned ops, int sqlite_rc);
struct jdb_waiter;

/* A board's data as the journal last wrote it, parsed (board.c). */
#define JDATA_CACHE 64
struct jdata_cached {
	char uid[JNL_UID_HEX_MAX + 1];
	char *text;               /* the row's data text this object is */
	json_t *obj;
	uint64_t kept;            /* when it was kept (j->data_next): the oldest goes first */
};

struct jnl {
	sqlite3 *db;
	pthread_mutex_t lock;     /* one transaction at a time on db */
	/* A kept read-only connection for single-row reads (jdb_kept_reader):
	 * in WAL mode it sees exactly what was committed, so such a read
	 * neither waits for j->lock (held across a shared COMMIT) nor commits
	 * a shared transaction early, as a read on db must. */
	sqlite3 *rdb;
	pthread_mutex_t rlock;    /* one read at a time on rdb */
	char *path;
	char station_id[JNL_STATION_ID_MAX + 1]; /* the setting, once read (integrity.c) */
	bool read_only;
	bool pages_ok;      /* the page check passed, now or before the last clean close */
	bool pages_checked; /* ... now, by this handle */
	int busy_ms;
	jnl_sign_fn sign;
	void *sign_arg;
	char signer_fpr[JNL_FPR_HEX_LEN + 1];
	jnl_serial_fmt_fn format_serial;
	void *format_arg;
	/* Set by an append in the current transaction; read by jdb_end() to
	 * decide whether an automatic checkpoint is due. */
	uint64_t appended_seq;
	struct jnl_event_ref appended; /* the last event jchain_append() wrote */
	/*
	 * The chain's head as this handle last read or wrote it (chain.c):
	 * while head_ok, an append neither reads the last event nor the
	 * settings. It stays valid across this handle's transactions as long
	 * as no other connection commits (PRAGMA data_version, checked at
	 * every append); a rollback drops it (jchain_head_forget), a rollback
	 * to an operation's savepoint puts back op_head. head_flush: the
	 * settings head_seq/head_hash are behind it, written once before the
	 * COMMIT (jchain_head_flush) instead of at every append.
	 */
	struct jchain_head {
		bool ok;
		bool flush;
		uint64_t seq;
		char hash[JNL_HASH_HEX_LEN + 1];
		uint64_t txn;     /* txn_ends when it was last checked or written */
		/* PRAGMA data_version when it was read: kept with the head, so
		 * that putting back op_head puts back the version it was read
		 * at, not the one of a read the rollback undid */
		int64_t data_version;
	} head, op_head, probe_head; /* probe_head: jintegrity_probe_in_txn's */
	/* Transactions of db that ended (SQLite's commit and rollback hooks):
	 * while it has not moved, the head was checked in the transaction that
	 * is open, which no other connection can commit into. */
	uint64_t txn_ends;
	uint64_t cp_hint_seq;     /* last checkpoint seq this handle knows of */
	uint32_t cp_interval;     /* cached; re-read before signing */
	bool in_checkpoint;
	bool anchor_dirty;        /* the anchor follows the next commit */
	uint64_t anchor_counter;  /* the counter that commit holds (0: unchanged) */
	/* The open transaction's first allocation wrote and synced the
	 * anchor's intent (its counter at BEGIN + 1): the allocations after it
	 * in the same transaction need no intent of their own. */
	bool intent_synced;
	jnl_reserve_fn reserve;   /* jnl_opts.reserve */
	void *reserve_arg;
	uint64_t reserved;        /* the reservation this handle knows */
	uint64_t serials_after;   /* jnl_opts.serials_after, if given */
	bool serials_after_given;
	/*
	 * Group commit (db.c, docs/JOURNAL.md "Group commit"): the operations
	 * of fixture threads that come in while one holds the lock share one
	 * transaction, each in a savepoint of its own, and one COMMIT (one
	 * fdatasync). An operation returns only once the COMMIT that holds it
	 * is durable; the thread that leaves the lock with no one waiting for
	 * it commits for everyone.
	 */
	unsigned entering;        /* threads waiting for the lock (atomic) */
	bool txn_open;            /* a shared transaction is open */
	unsigned batch_ops;       /* operations in it, waiting for its COMMIT */
	uint64_t batch_head;      /* the highest event seq it appended */
	struct jdb_waiter *waiters; /* posted after the COMMIT that holds them (db.c) */
	bool op_anchor_dirty;     /* the anchor fields before the running operation */
	uint64_t op_anchor_counter;
	jdb_commit_hook commit_hook;
	void *commit_hook_arg;
	/* The data merge of a state change parses the row's data only when it
	 * is not the text this handle last wrote for that board (with the
	 * handle locked; an entry is taken out while it is worked on). */
	struct jdata_cached data_cache[JDATA_CACHE];
	uint64_t data_next;       /* the clock of data_cache[].kept */
};

/* Drop the data cache (jnl_close). */
void jdata_cache_free(struct jnl *j);

/* Settings keys. PERSISTED. */
#define JS_STATION_ID "station_id"
#define JS_SERIAL_COUNTER "serial_counter"
#define JS_QUOTA "quota"
#define JS_CP_INTERVAL "checkpoint_interval"
#define JS_HEAD_SEQ "head_seq"
#define JS_HEAD_HASH "head_hash"
#define JS_SERIAL_SOURCE "serial_source" /* absent or "counter"; "lease" in line mode */

#define J_ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"

/* Domain tags of the hashed bytes. PERSISTED (docs/JOURNAL.md). */
#define J_EVENT_TAG "imprint-journal-event-v1"
#define J_CHECKPOINT_TAG "imprint-journal-checkpoint-v1"

/* Log a failed sqlite3_* call (function, SQLite message, code) and return
 * IMP_ERR_JOURNAL. */
imp_err jdb_fail(sqlite3 *db, const char *fn, int rc);

/* Remember and log a failure message for jnl_last_error(). */
void jerr_set(imp_err code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void jerr_clear(void);

imp_err jdb_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st);
/*
 * A statement kept prepared on a handle's write connection, one per SQL
 * text, for the statements every board step runs: parsing one costs more
 * than running it on this schema (CHECKs, triggers, foreign keys). On a
 * connection that is not a handle's (a reader), or with the cache full or
 * the text's statement already handed out, a fresh one. Either way the
 * caller gives it back with jdb_stmt_done(), never sqlite3_finalize().
 */
imp_err jdb_stmt(sqlite3 *db, const char *sql, sqlite3_stmt **st);
/* Reset and unbind a cached statement, finalize any other; NULL is a no-op. */
void jdb_stmt_done(sqlite3_stmt *st);
imp_err jdb_exec(sqlite3 *db, const char *sql);
/* Bind text (NULL binds SQL NULL) / integer. The text is not copied
 * (SQLITE_STATIC): it must stay as it is until the statement is given back
 * (jdb_stmt_done) or finalized, which every caller does before its
 * buffers go; a board's data and an event's detail are the long ones. */
imp_err jdb_bind_text(sqlite3 *db, sqlite3_stmt *st, int idx, const char *s);
imp_err jdb_bind_i64(sqlite3 *db, sqlite3_stmt *st, int idx, int64_t v);
/* Step a statement expected to finish (SQLITE_DONE). *sqlite_rc (may be
 * NULL) receives the raw result so callers can tell a constraint apart. */
imp_err jdb_step_done(sqlite3 *db, sqlite3_stmt *st, int *sqlite_rc);
/* Step expecting a row: IMP_OK with a row, IMP_ERR_NOT_FOUND without. */
imp_err jdb_step_row(sqlite3 *db, sqlite3_stmt *st);

/* Lock the handle and open the operation's savepoint, in the shared
 * transaction (BEGIN IMMEDIATE if none is open). */
imp_err jdb_begin(struct jnl *j);
/* rc IMP_OK: release the savepoint and wait until a COMMIT holding it is
 * durable (running it if no other thread is waiting for the lock), take an
 * automatic checkpoint if one is due; else roll back to the savepoint.
 * Unlocks; returns rc, or the COMMIT failure. */
imp_err jdb_end(struct jnl *j, imp_err rc);
/* Lock the handle for reads on its connection: a shared transaction still
 * open is committed first, so a read never sees what is not durable. */
imp_err jdb_lock_read(struct jnl *j);
void jdb_unlock_read(struct jnl *j);
/* Tests only: called by the thread that runs a shared COMMIT (NULL: none). */
void jdb_set_commit_hook(struct jnl *j, jdb_commit_hook fn, void *arg);

/* Settings, inside a transaction. get: IMP_ERR_NOT_FOUND if absent. */
imp_err jdb_setting_get(sqlite3 *db, const char *key, char *out, size_t cap);
imp_err jdb_setting_get_u64(sqlite3 *db, const char *key, uint64_t *out);
imp_err jdb_setting_set(sqlite3 *db, const char *key, const char *value);
imp_err jdb_setting_set_u64(sqlite3 *db, const char *key, uint64_t v);

/* A second, read-only connection to the same file for snapshot reads that
 * call back into user code. Closed with sqlite3_close(). */
imp_err jdb_open_reader(struct jnl *j, sqlite3 **out);

/* The handle's kept reader (opened on first use, closed by jnl_close),
 * with j->rlock held by the caller; its statements stay prepared
 * (jdb_stmt). For reads of committed rows by a read-write handle. */
imp_err jdb_kept_reader(struct jnl *j, sqlite3 **out);

/* A value bound to a statement's ?N (N = its index + 1). */
struct jdb_arg {
	const char *text; /* bound as text when is_text (NULL binds NULL) */
	int64_t i64;
	bool is_text;
};

/* Called for each row; returns IMP_OK to go on, sets *stop to end early
 * (not an error), or returns an error that ends the scan. */
typedef imp_err (*jdb_row_fn)(void *arg, sqlite3_stmt *st, bool *stop);

/*
 * The read-snapshot loop: run sql on a read-only connection of its own,
 * inside one transaction (a consistent snapshot), with args bound, and hand
 * every row to fn. The callback may write to the journal through j, since
 * the snapshot holds no lock of j's.
 */
imp_err jdb_snapshot(struct jnl *j, const char *sql, const struct jdb_arg *args, size_t nargs,
		     jdb_row_fn fn, void *arg);

/* RFC 3339 UTC with milliseconds: "2026-11-26T09:50:00.123Z". */
void jtime_now(char out[40]);

/* The name of the VFS a handle's write connection opens with (walbuf.c,
 * registered on first use): the default VFS, with the writes of a COMMIT
 * to the -wal gathered into one. NULL if it cannot be registered (the
 * default VFS is used then). */
const char *jwalbuf_vfs(void);

/* SHA-256, fetched from the default provider once per process (chain.c):
 * EVP_sha256() makes every digest fetch it again, under OpenSSL's lock. */
const EVP_MD *jsha256(void);

/* Serialise a JSON value (compact, sorted keys) into a malloc'ed string and
 * drop the reference. NULL (logged) on failure. */
char *jjson_dump(json_t *v);

/*
 * The canonical text of v (canon.c), malloc'ed: byte for byte what
 * json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) gives.
 * NULL where json_dumps fails (a string that is not UTF-8, a loop) and
 * also for a key that is not UTF-8 (only jansson's *_nocheck calls make
 * one; json_dumps writes broken JSON for it), nesting deeper than 512 and
 * out of memory.
 */
char *jcanon_dump(const json_t *v);

/* A member of an object the journal builds, as json_pack's "s", "s?",
 * "I", "O" and "O?" take it. */
struct jcanon_member {
	const char *key;
	enum { JCM_STR, JCM_STR_OR_NULL, JCM_INT, JCM_JSON, JCM_JSON_OR_NULL } type;
	const char *s;
	json_int_t i;
	const json_t *v;
};
#define JCANON_MEMBERS_MAX 16
/*
 * The canonical text of the object of these members (distinct keys, at
 * most JCANON_MEMBERS_MAX), malloc'ed: what jcanon_dump of json_pack of the
 * same members gives, without building it. NULL where json_pack would fail
 * (a string that is not UTF-8, NULL for "s" or "O") or jcanon_dump would.
 */
char *jcanon_object(const struct jcanon_member *m, size_t n);

/* jnl_revocation_record_id on db, with the handle locked by the caller. */
imp_err jdb_revocation_record_id(sqlite3 *db, const char *uid, char out[JNL_RECORD_ID_MAX]);

/* Line mode: true if serials come from leases (inside a transaction). */
imp_err jdb_leased(sqlite3 *db, bool *out);

/* Columns of a board row, in the order jboard_from_row() decodes them. */
/* A boards row's error step: the state its newest "error" event was
 * recorded at (NULL if none), as a column of a query on boards. */
#define BOARD_ERROR_STEP "(SELECT json_extract(e.detail, '$.state') FROM events e " \
	"WHERE e.uid = boards.uid AND e.kind = 'error' ORDER BY e.seq DESC LIMIT 1)"
#define BOARD_COLS "uid, serial, state, key_mode, fixture, attempts, reissues, " \
		   "last_error_code, last_error, created, updated, data"
/* Fill b from a row of BOARD_COLS. copy_data: strdup the data (release b
 * after); else b->data borrows the statement's memory. */
imp_err jboard_from_row(sqlite3_stmt *st, struct jnl_board *b, bool copy_data);

/*
 * Fill e from an outbox row whose first six columns are record_id, serial,
 * uid, kind, jws, created (strings borrowed from st until its next step).
 */
void joutbox_from_row(sqlite3_stmt *st, struct jnl_outbox_entry *e);

/*
 * Append an event inside the current transaction: next seq, chained hash,
 * head kept in settings. uid/serial may be NULL; detail is JSON object text.
 */
imp_err jchain_append(struct jnl *j, const char *uid, const char *serial,
		      const char *kind, const char *detail);
/* jchain_append with detail as a JSON value (a new reference, taken;
 * NULL, a failed json_pack, is IMP_ERR_NOMEM). */
imp_err jchain_append_json(struct jnl *j, const char *uid, const char *serial,
			   const char *kind, json_t *detail);
/* Write the settings head_seq/head_hash of the appends since the last
 * flush, inside the transaction, before it commits (or before they are
 * read in it). IMP_OK if there is nothing to write. */
imp_err jchain_head_flush(struct jnl *j);
/* The transaction was rolled back: the head is read again at the next
 * append. */
void jchain_head_forget(struct jnl *j);
/* Take a checkpoint inside the current transaction (j->sign set). force:
 * even if fewer than interval events since the last one. */
imp_err jchain_checkpoint_locked(struct jnl *j, bool force);

/* ------------------------------------------------ integrity.c */

/* The anchor file JOURNAL-anchor (docs/JOURNAL.md "Integrity"). */
struct janchor {
	bool present;
	char station_id[JNL_STATION_ID_MAX + 1];
	uint64_t serial_counter; /* the highest counter seen committed */
	uint64_t intent;         /* the highest counter about to be committed */
	uint64_t head_seq;       /* the highest head seen committed */
	char head_hash[JNL_HASH_HEX_LEN + 1]; /* event head_seq's hash ("": not known) */
};
/* Read it; absent: present = false, IMP_OK. */
imp_err janchor_read(const char *journal, struct janchor *a);
/* At a read-write open, in the open's transaction or after it: refuse a
 * journal behind its anchor; start the anchor of a journal without one. */
imp_err janchor_open_check(struct jnl *j);
/* Inside allocate's transaction, before the counter becomes `issued`:
 * at the transaction's first allocation, refuse if the journal is behind
 * the anchor, else write the intent and sync it; later allocations of the
 * same transaction are covered by it (j->intent_synced). */
imp_err janchor_before_issue(struct jnl *j, uint64_t issued);
/* After a commit that allocated or checkpointed (j->anchor_dirty): record
 * the committed counter and head; a failure only warns. */
void janchor_after_commit(struct jnl *j, uint64_t head);
/* Before a new journal is created at path: refuse if an anchor says one
 * existed. */
imp_err janchor_refuse_new(const char *journal);
/* Lowercase hex SHA-256 of the string s. */
imp_err jdb_sha256_hex(const char *s, char out[JNL_HASH_HEX_LEN + 1]);
/* One statement without rows, kept prepared (BEGIN, SAVEPOINT, RELEASE). */
imp_err jdb_exec_kept(sqlite3 *db, const char *sql);
/* Inside an open operation: write what record_done will write for board
 * uid and roll it back (a savepoint of its own; the chain's head in memory
 * put back). IMP_ERR_JOURNAL, named, if any of it fails. */
imp_err jintegrity_probe_in_txn(struct jnl *j, const char *uid);
/* Move the serial counter on to *to (a "setting" event), in a transaction
 * of its own; refused in line mode, and beyond the quota (IMP_ERR_QUOTA)
 * unless cap, which lowers *to to the quota. */
imp_err jdb_counter_skip(struct jnl *j, uint64_t *to, bool cap);
/* Before SQLite opens path: a non-empty path-wal must have a WAL header
 * (magic, version) and the journal's page size; else IMP_ERR_JOURNAL and
 * nothing is touched. */
imp_err jintegrity_wal_precheck(const char *path);
bool jintegrity_wal_present(const char *path);
/* The name to open path read-only with: path itself, or, in a directory no
 * one can write and without a -wal, an immutable URI (*flags gets
 * SQLITE_OPEN_URI). IMP_ERR_JOURNAL if a -wal there cannot be read. */
imp_err jintegrity_ro_name(const char *path, char *out, size_t cap, int *flags);
/* PRAGMA quick_check, stopped (with a warning) after a few seconds; not
 * run again on a file unchanged since jintegrity_mark_checked. Sets
 * j->pages_ok when every page was checked (or the file is unchanged). */
imp_err jintegrity_quick_check(struct jnl *j);
/* After a clean close of a journal whose pages were checked at open:
 * PATH-checked records the file's fingerprint (no -wal left, else nothing). */
void jintegrity_mark_checked(const char *path);

#endif
