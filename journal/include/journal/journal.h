/*
 * The station journal: the station's truth, in one SQLite file.
 *
 * Every step of every board is journaled before the station acts on it: a
 * function of this API returns only once its change is committed to disk
 * (WAL, synchronous=FULL), so the caller acts *after* the journal knows. A
 * crash or power cut at any instant leaves each board finished (DONE, its
 * signed record in the outbox), resumable (any other in-flight state, with
 * the step data needed to go on), or clearly rejected (FAILED or
 * QUARANTINED, with the cause). docs/JOURNAL.md describes the schema, the
 * event hash chain byte by byte, the checkpoints and what a crash at each
 * point leaves.
 *
 * What it holds:
 *  - one row per board, keyed by its chip UID (lowercase hex): serial
 *    (allocated once, never reused), state, key mode, fixture, failure count,
 *    last error, and a JSON object `data` with the step data the state
 *    machine needs to resume (public key, certificate, firmware digest...);
 *  - an append-only, hash-chained event log (SHA-256 links; UPDATE and
 *    DELETE refused by triggers; verify_chain() catches a deliberate edit);
 *  - signed checkpoints of the chain head, every N events and on demand,
 *    signed through a callback (the record-signing key stays in the HSM);
 *  - the production quota and the serial counter (no over-production);
 *  - the outbox of signed records awaiting delivery to the registry.
 *
 * It never stores a secret: no private key, no PIN, no PSK. Callers must not
 * put one in `data`, in a reason or in an error message.
 *
 * Threads: one struct jnl may be shared by any number of threads
 * (its calls are serialised by a mutex); several handles, in one process or
 * in several, may use the same file at once (write transactions are BEGIN
 * IMMEDIATE, so allocation and chain appends stay exact). A handle must not
 * be used across fork().
 *
 * Errors: every SQLite failure is logged (function, SQLite message) and
 * returned as IMP_ERR_JOURNAL. Other codes are named per function. On any
 * error nothing was changed (the transaction was rolled back).
 */
#ifndef PROVISIONER_JOURNAL_H
#define PROVISIONER_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A station id: 1 to 64 of A-Z a-z 0-9 - _ . (formats/config.c). */
#define JNL_STATION_ID_MAX 64

#include <openssl/types.h>

#include "imprint/err.h"

/* Schema version this code writes (PRAGMA user_version). PERSISTED. */
#define JNL_SCHEMA_VERSION 3
/* The oldest version a read-only open (and the outbox scan) reads as it is:
 * 2 and 3 have the same tables and columns, 3 only writes the CHECK
 * constraints of boards without IN lists (docs/JOURNAL.md). PERSISTED. */
#define JNL_SCHEMA_READ_MIN 2

#define JNL_UID_HEX_MAX 128u     /* longest chip UID, in hex digits (64 bytes) */
#define JNL_SERIAL_MAX 64u       /* serial capacity, NUL included */
#define JNL_HASH_HEX_LEN 64u     /* SHA-256 in hex, without the NUL */
#define JNL_FPR_HEX_LEN 64u      /* signer fingerprint: SHA-256 of cert DER, hex */
#define JNL_ERRMSG_MAX 256u      /* stored error messages are cut to this (NUL incl.) */
/* Room for any message the journal composes (jnl_last_error, a report's
 * reason, jnl_anchor_check's and jnl_check_external's msg): it may name
 * the journal's path (up to PATH_MAX) and still say what to do next. */
#define JNL_MSG_MAX 4608u
#define JNL_CHECKPOINT_DEFAULT 100u

/*
 * Board states, in the order the state machine walks them. The names (not
 * the numbers) are stored in the journal: they are PERSISTED, never rename.
 */
enum jnl_state {
	JNL_ST_CONNECT = 0,
	JNL_ST_IDENTIFY,
	JNL_ST_ALLOCATE,
	JNL_ST_KEYS,
	JNL_ST_CERTIFY,
	JNL_ST_INJECT,
	JNL_ST_FIRMWARE,
	JNL_ST_CHALLENGE,
	JNL_ST_LOCK,
	JNL_ST_RECORD,
	JNL_ST_DONE,        /* finished: record signed, in the outbox */
	JNL_ST_FAILED,      /* rejected, with its cause; only a reissue revives it */
	JNL_ST_QUARANTINED, /* found locked and unknown to the journal; no serial */
	JNL_ST__COUNT       /* sentinel */
};

/* "CONNECT" ... "QUARANTINED"; "?" for an out-of-range value. */
const char *jnl_state_name(enum jnl_state s);
/* Parse an exact (upper-case) state name. IMP_ERR_NOT_FOUND if unknown. */
imp_err jnl_state_parse(const char *name, enum jnl_state *out);

/*
 * Sign a checkpoint: `digest` is the SHA-256 described in docs/JOURNAL.md;
 * write the ES256 signature as raw r||s (32 + 32 bytes, big-endian). This is
 * the record-signing key in the HSM (CKM_ECDSA on the digest). Return IMP_OK
 * or an error, which the journal passes on.
 */
typedef imp_err (*jnl_sign_fn)(void *arg, const uint8_t digest[32], uint8_t raw_sig[64]);

/*
 * Verify a checkpoint signature made by the signer whose certificate has
 * SHA-256 fingerprint `signer_fpr` (hex). Return IMP_OK if it verifies,
 * IMP_ERR_VERIFY if it does not, another error if it could not be checked.
 */
typedef imp_err (*jnl_verify_fn)(void *arg, const uint8_t digest[32], const uint8_t raw_sig[64],
				  const char *signer_fpr);

/*
 * Format serial number `counter` (1, 2, 3... never reused) into out (capacity
 * cap, NUL-terminated). Must be injective: two counters, two serials. This is
 * where the serial scheme lives (formats/); the journal does not know it.
 */
typedef imp_err (*jnl_serial_fmt_fn)(void *arg, uint64_t counter, char *out, size_t cap);

/*
 * Reserve serial counters up to `upto` outside the journal (the station:
 * in the HSM's anchor, docs/JOURNAL.md "Integrity"), durably, before the
 * first of them is issued. Called inside an allocation's transaction.
 */
typedef imp_err (*jnl_reserve_fn)(void *arg, uint64_t upto);

struct jnl;

struct jnl_opts {
	/*
	 * Station identity. Stored when the journal is created; when given to
	 * an existing journal it must match (else IMP_ERR_CONFIG: a journal
	 * belongs to one station). NULL: take the stored one ("station" if new).
	 */
	const char *station_id;
	/* Production quota to store; 0 keeps the stored value (0 if new). */
	uint64_t quota;
	/* Events between automatic checkpoints; 0 keeps the stored value
	 * (JNL_CHECKPOINT_DEFAULT if new). */
	uint32_t checkpoint_interval;
	/* Checkpoint signer; NULL: no checkpoints are taken by this handle. */
	jnl_sign_fn sign;
	void *sign_arg;
	/* Required with sign: hex SHA-256 of the signer certificate's DER. */
	const char *signer_fpr;
	/* Serial scheme; NULL: the counter in decimal, zero-padded to 10 digits. */
	jnl_serial_fmt_fn format_serial;
	void *format_arg;
	/* SQLite busy timeout in ms (waiting for another writer); 0: 10000. */
	int busy_timeout_ms;
	/* Open an existing journal only; never create one (IMP_ERR_NOT_FOUND if
	 * the file is absent or empty: a creation cut short by a crash). */
	bool must_exist;
	/* Open read-only (queries, verify, iterate); writes fail with
	 * IMP_ERR_JOURNAL. Implies must_exist; settings are not stored. */
	bool read_only;
	/*
	 * Line mode (docs/LINE.md): serials come only from leased blocks of
	 * the line's counter (jnl_lease_add), never from the local
	 * counter, and the local quota is not used (the leases are the quota).
	 * Stored when set ("serial_source" = "lease") and never undone: a
	 * journal that already issued serials from its own counter refuses it
	 * (IMP_ERR_CONFIG). false keeps what the journal has.
	 */
	bool leased_serials;
	/*
	 * Serials reserved outside the journal. reserve, when set, is called
	 * before a counter beyond the last reservation is issued (the
	 * allocation fails with its error), for JNL_RESERVE_BLOCK counters at
	 * a time. reserved is the reservation known at open (0: none). A
	 * writable open that finds no anchor file beside a journal that issued
	 * serials cannot tell from the file alone whether serials were issued
	 * that the journal lost: with reserve set, the journal's counter then
	 * moves past reserved, or the quota if lower (a "setting" event; never
	 * issued), or, with no reservation known or in line mode, the open is
	 * refused (IMP_ERR_JOURNAL, no serial issued). reserve NULL: the open
	 * warns and goes on from the journal's counter.
	 */
	jnl_reserve_fn reserve;
	void *reserve_arg;
	uint64_t reserved;
	/*
	 * With serials_after_given, a writable open moves the serial counter on
	 * to serials_after (a "setting" event; the serials up to it are never
	 * issued): the operator's word that no board carries a later one, also
	 * where no reservation is known. Refused (IMP_ERR_USAGE) below the
	 * journal's counter, beyond its quota (IMP_ERR_QUOTA) and in line mode
	 * (IMP_ERR_JOURNAL).
	 */
	uint64_t serials_after;
	bool serials_after_given;
};

/* Counters reserved at a time (jnl_opts.reserve): the most a journal that
 * lost its anchor file skips. */
#define JNL_RESERVE_BLOCK 128u

/*
 * Open (and if needed create, mode 0600, or migrate) the journal at path.
 * opts may be NULL (all defaults). On success *out owns the handle; release
 * it with jnl_close(). IMP_ERR_JOURNAL if the file is not a journal
 * or has a newer schema than this code; IMP_ERR_CONFIG on a station mismatch
 * or a signer without fingerprint.
 */
imp_err jnl_open(const char *path, const struct jnl_opts *opts,
			  struct jnl **out);

/* Close and free the handle; NULL is accepted. */
void jnl_close(struct jnl *j);

/*
 * The message of the last journal call that failed in this thread (it was
 * also logged), e.g. "production quota of 700 serials exhausted (700
 * issued): raise the quota in the configuration"; "" if none yet. Valid
 * until the next journal call in this thread.
 */
const char *jnl_last_error(void);

/* Snapshot of the settings and counters. */
struct jnl_info {
	char station_id[JNL_STATION_ID_MAX + 1];
	int schema_version;
	uint64_t quota;               /* serials this station may issue in all */
	uint64_t issued;              /* serials issued so far (= serial counter) */
	uint64_t quota_left;          /* quota - issued, or 0 */
	uint32_t checkpoint_interval;
	uint64_t head_seq;            /* last event (0: none) */
	char head_hash[JNL_HASH_HEX_LEN + 1]; /* its hash (64 zeros if none) */
	uint64_t last_checkpoint_seq; /* 0: none */
	bool leased_serials;          /* line mode: serials from leases only */
	uint64_t lease_left;          /* line mode: unissued counters in open leases;
				       * quota_left is the same value */
};
imp_err jnl_info(struct jnl *j, struct jnl_info *out);

/* Store a new production quota (from the configuration); a "setting" event
 * records old and new values. Lowering it below `issued` is allowed (nothing
 * more is issued). */
imp_err jnl_set_quota(struct jnl *j, uint64_t quota);

/* Store a new checkpoint interval (>= 1), with a "setting" event. */
imp_err jnl_set_checkpoint_interval(struct jnl *j, uint32_t interval);

/* ------------------------------------------------------------------ boards */

/* A board row, as read. */
struct jnl_board {
	char uid[JNL_UID_HEX_MAX + 1];  /* lowercase hex */
	char serial[JNL_SERIAL_MAX];    /* "" until allocated */
	enum jnl_state state;
	char key_mode[32];               /* "" if not set ("device", "hsm", "psk") */
	char fixture[64];                /* "" if not set */
	uint32_t attempts;               /* failures recorded since created / last reissue */
	uint32_t reissues;               /* authorised reissues */
	imp_err last_error;              /* IMP_OK if none */
	char last_error_msg[JNL_ERRMSG_MAX];
	char created[40];                /* RFC 3339 UTC, milliseconds */
	char updated[40];
	/* The step data, a JSON object as text ("{}" at least). Owned by the
	 * struct: jnl_board_release() frees it. In a list callback it belongs
	 * to the iterator and is valid only during the call. */
	char *data;
};

/* Free what a struct jnl_board owns (its data) and clear it. */
void jnl_board_release(struct jnl_board *b);

/*
 * Record a board whose UID was just read (state IDENTIFY). uid: hex, 2 to
 * JNL_UID_HEX_MAX digits, either case (stored lowercase). fixture and
 * key_mode may be NULL. If the board is new: insert it in IDENTIFY with a
 * "state" event, *existing = false. If it is known: change nothing, return
 * its row in *out (if out is not NULL), *existing = true (the caller resumes
 * from out->state). A known board in QUARANTINED returns
 * IMP_ERR_QUARANTINE; in DONE, IMP_ERR_DUPLICATE ("identity complete"); in
 * FAILED, IMP_ERR_BOARD (rejected: reissue to retry). In those three cases
 * *out is still filled. out may be NULL; else release it.
 */
imp_err jnl_register(struct jnl *j, const char *uid, const char *fixture,
			      const char *key_mode, struct jnl_board *out, bool *existing);

/*
 * Allocate the board's identity (serial), in one BEGIN IMMEDIATE transaction:
 *  - UID already has a serial: return it, *existing = true, nothing written
 *    (resume). DONE -> IMP_ERR_DUPLICATE "identity complete", serial_out
 *    still set (a reissue makes the board ALLOCATE again); FAILED ->
 *    IMP_ERR_BOARD; QUARANTINED -> IMP_ERR_QUARANTINE.
 *  - else: issued < quota or IMP_ERR_QUOTA (message names the quota); take
 *    counter + 1, format it, store it on the row (created if the UID was not
 *    registered), state ALLOCATE, "alloc" event; *existing = false.
 * A serial is never issued twice (counter and UNIQUE constraint); a UID never
 * gets two serials. serial_out receives the serial (cap >= JNL_SERIAL_MAX
 * is always enough). existing may be NULL. fixture may be NULL.
 */
imp_err jnl_allocate(struct jnl *j, const char *uid, const char *fixture,
			      char *serial_out, size_t cap, bool *existing);

/*
 * jnl_allocate() that, when it issues a serial (not *existing), moves the
 * board on from ALLOCATE to `then` with `then_data` merged into its data,
 * in the same transaction: the "alloc" event, then the "state" event that
 * jnl_set_state_obj() would write. then JNL_ST_ALLOCATE: jnl_allocate().
 * then DONE, FAILED, QUARANTINED or before ALLOCATE, or then_data not an
 * object: IMP_ERR_INTERNAL. The journal keeps references to then_data's
 * members: the caller must not modify them afterwards.
 */
struct json_t;
imp_err jnl_allocate_to(struct jnl *j, const char *uid, const char *fixture, char *serial_out,
			size_t cap, bool *existing, enum jnl_state then,
			struct json_t *then_data);

/*
 * Move a board to new_state and record it ("state" event), in one
 * transaction, durable before return. data_json, if not NULL, is a JSON
 * object merged into the board's data in the same transaction: its members
 * replace same-named ones, a member whose value is null is removed; the
 * event detail carries it too. NULL leaves data as is.
 * Refused (IMP_ERR_INTERNAL: a bug in the caller): new_state DONE (use
 * record_done), FAILED (use reject), QUARANTINED (use quarantine), a state
 * after ALLOCATE on a board without serial; data_json that is not an object
 * (IMP_ERR_USAGE). Unknown UID: IMP_ERR_NOT_FOUND. Board DONE:
 * IMP_ERR_DUPLICATE; FAILED: IMP_ERR_BOARD; QUARANTINED: IMP_ERR_QUARANTINE.
 * Setting the state it already has is allowed (records data, e.g. resume).
 * A move to LOCK also does what jnl_outbox_probe() does, in the same
 * transaction: if the journal could not take the board's record, the move
 * fails with IMP_ERR_JOURNAL and the board stays where it was.
 */
imp_err jnl_set_state(struct jnl *j, const char *uid, enum jnl_state new_state,
			       const char *data_json);

/* The event a write appended (its place in the hash chain). */
struct jnl_event_ref {
	uint64_t seq;
	char prev_hash[JNL_HASH_HEX_LEN + 1];
	char hash[JNL_HASH_HEX_LEN + 1];
};

/* jnl_set_state() that also returns, on success, the "state" event it
 * wrote (wrote may be NULL): what a record links to, with no re-read. */
imp_err jnl_set_state_ev(struct jnl *j, const char *uid, enum jnl_state new_state,
			 const char *data_json, struct jnl_event_ref *wrote);

/*
 * jnl_set_state_ev() with the data as a jansson object instead of text, so
 * that it is not dumped and parsed again on the way in (NULL or an empty
 * object: data as is; not an object: IMP_ERR_USAGE). The journal keeps
 * references to data's members: the caller must not modify them afterwards.
 */
imp_err jnl_set_state_obj(struct jnl *j, const char *uid, enum jnl_state new_state,
			  struct json_t *data, struct jnl_event_ref *wrote);

/*
 * Merge data_json into the board's data without a state change (same rules
 * as set_state's data_json; recorded as a "data" event).
 */
imp_err jnl_set_data(struct jnl *j, const char *uid, const char *data_json);

/*
 * Read a board by UID / by serial. IMP_ERR_NOT_FOUND if absent. On success
 * the caller releases *out with jnl_board_release().
 */
imp_err jnl_get_board(struct jnl *j, const char *uid, struct jnl_board *out);
imp_err jnl_get_board_by_serial(struct jnl *j, const char *serial,
					 struct jnl_board *out);

/*
 * A step failed: record code and message on the row (attempts + 1) and an
 * "error" event; the board stays in its state, resumable. uid may be NULL for
 * a failure before the UID was read (only the event is written; fixture
 * then says where). code must not be IMP_OK. An unknown, non-NULL uid:
 * IMP_ERR_NOT_FOUND.
 */
imp_err jnl_fail(struct jnl *j, const char *uid, const char *fixture,
			  imp_err code, const char *message);

/*
 * Reject a board: state FAILED with code and message (attempts + 1), an
 * "error" event and a "state" event. Only reissue() brings it back. A DONE
 * board cannot be rejected (IMP_ERR_DUPLICATE; revoke it instead).
 */
imp_err jnl_reject(struct jnl *j, const char *uid, imp_err code,
			    const char *message);

/*
 * A board was found locked and is unknown to the journal: record it in
 * QUARANTINED, without serial, with reason, and a "quarantine" event.
 * Idempotent on a board already QUARANTINED. A UID the journal knows in any
 * other state: IMP_ERR_EXISTS (it is not unknown: resume it).
 */
imp_err jnl_quarantine(struct jnl *j, const char *uid, const char *fixture,
				const char *reason);

/* What the station observed on a board it quarantines. */
struct jnl_observed {
	const char *lifecycle; /* the agent's lifecycle name ("open", "locked", ...) */
	uint32_t fuses;        /* the fuse bits as read */
	bool debug_open;       /* the debug port answered */
};

/*
 * Quarantine with what was observed (seen may be NULL): as jnl_quarantine
 * for a UID the journal does not know, the event's detail also holding
 * {"lifecycle","fuses","debug_open"}. A UID the journal finished (DONE)
 * presented by a board that contradicts the DONE row (a cloned UID, a
 * replaced chip): the DONE row, its record and outbox row stay as they are
 * (they are the genuine board's), and one "quarantine" event per
 * presentation, on that UID and serial, records it: {"reason","fixture",
 * "board_state":"DONE","lifecycle","fuses","debug_open"}. Any other state:
 * IMP_ERR_EXISTS, as jnl_quarantine.
 */
imp_err jnl_quarantine_seen(struct jnl *j, const char *uid, const char *fixture,
			    const struct jnl_observed *seen, const char *reason);

/* Quarantines in this journal: events of kind "quarantine" (*events), and
 * of those, the presentations of a DONE board's UID (*of_done). */
imp_err jnl_quarantine_counts(struct jnl *j, uint64_t *events, uint64_t *of_done);

/*
 * Let a board go through again (a supervisor authorised it; the caller has
 * checked that authorisation). The board keeps its serial (no new identity,
 * no quota used), goes back to ALLOCATE, reissues + 1, attempts = 0, error
 * cleared, data kept; a "reissue" event records reason and authorised_by
 * (both required, non-empty). Allowed from any state but QUARANTINED
 * (IMP_ERR_QUARANTINE); a board without serial: IMP_ERR_NOT_FOUND. Records
 * already in the outbox stay; finishing the board again queues a new
 * identity record (new record_id) for the same serial.
 */
imp_err jnl_reissue(struct jnl *j, const char *uid, const char *reason,
			     const char *authorised_by);

/*
 * The board's signed identity record is ready: insert it in the outbox
 * (kind "identity", record_id unique) AND move the board to DONE, with a
 * "state" event, in one transaction. The board must have a serial and be in
 * RECORD (else IMP_ERR_INTERNAL). If the board is already DONE with this very
 * record_id in the outbox, IMP_OK (a resumed call); if DONE otherwise,
 * IMP_ERR_DUPLICATE. A record_id already in the outbox: IMP_ERR_EXISTS.
 */
imp_err jnl_record_done(struct jnl *j, const char *uid, const char *record_id,
				 const char *jws);

/* -------------------------------------------------------------- checkpoints */

/*
 * Take a checkpoint of the current head now (if it is not already
 * checkpointed): sign, store the checkpoint row and a "checkpoint" event.
 * IMP_ERR_UNSUPPORTED if the handle has no signer; the signer's error if it
 * fails. Automatic checkpoints are taken after a commit that brings the head
 * interval events past the last checkpoint; their failure is logged and
 * retried on the next commit, never fails the operation that triggered it.
 */
imp_err jnl_checkpoint(struct jnl *j);

/* ---------------------------------------------------------------- queries */

/* Boards per state, indexed by enum jnl_state. */
imp_err jnl_counts(struct jnl *j, uint64_t counts[JNL_ST__COUNT]);

/*
 * Board list callbacks return 0 to go on, non-zero to stop (the list function
 * then returns IMP_OK). The struct and its data are valid only during the
 * call. The callback may call the journal (the list reads a snapshot).
 */
typedef int (*jnl_board_cb)(void *arg, const struct jnl_board *b);

/* Boards in flight (not DONE, FAILED or QUARANTINED), oldest first: what
 * `imprint resume` must finish. */
imp_err jnl_list_unfinished(struct jnl *j, jnl_board_cb cb, void *arg);

/* A board rejected at or after its lock step (FAILED from LOCK or RECORD):
 * its fuses may be burnt and it carries no identity record. */
struct jnl_rejected_locked {
	const char *uid, *serial;
	const char *from;  /* the state it was rejected at: "LOCK" or "RECORD" */
	const char *cause; /* the error's name, e.g. "IMP_ERR_VERIFY" */
	const char *ts;    /* the rejection's event time */
};
typedef int (*jnl_rejected_locked_cb)(void *arg, const struct jnl_rejected_locked *r);

/* Every board FAILED now whose rejection came at LOCK or RECORD, in the
 * order of the rejections (a snapshot; cb returning non-zero stops). */
imp_err jnl_list_rejected_locked(struct jnl *j, jnl_rejected_locked_cb cb, void *arg);

/* Boards whose recorded error is still theirs, most recently updated
 * first, at most limit (0: all): FAILED and QUARANTINED boards, and boards
 * in flight still at (or before) the step of their last error; not a DONE
 * board, nor one that went on past that step. */
imp_err jnl_list_failures(struct jnl *j, unsigned limit, jnl_board_cb cb,
				   void *arg);

/* All boards in one state, oldest first. */
imp_err jnl_list_state(struct jnl *j, enum jnl_state state, jnl_board_cb cb,
				void *arg);

/*
 * Every board (state NULL) or the boards in *state, oldest first, for
 * `imprint boards`. error_step is the state the board stood in when its
 * last error was recorded ("CHALLENGE" for a board rejected there), NULL if
 * none was; like b, valid only during the call. Callback: 0 goes on.
 */
typedef int (*jnl_board_list_cb)(void *arg, const struct jnl_board *b, const char *error_step);
imp_err jnl_list_boards(struct jnl *j, const enum jnl_state *state, jnl_board_list_cb cb,
			void *arg);

/* One event, as stored. Strings are valid only during the callback. */
struct jnl_event {
	uint64_t seq;
	const char *ts;        /* RFC 3339 UTC, milliseconds */
	uint64_t mono_ns;      /* CLOCK_MONOTONIC of the writer (per boot) */
	const char *uid;       /* NULL if none */
	const char *serial;    /* NULL if none */
	const char *kind;      /* "state", "alloc", "data", "error", "reissue",
				* "quarantine", "checkpoint", "setting",
				* "outbox" */
	const char *detail;    /* JSON object text */
	const char *prev_hash; /* hex */
	const char *hash;      /* hex */
};
typedef int (*jnl_event_cb)(void *arg, const struct jnl_event *ev);

/* Stream events with seq >= from_seq in order (a snapshot). uid, if not
 * NULL, keeps only that board's events. Callback: 0 goes on. */
imp_err jnl_iterate_events(struct jnl *j, uint64_t from_seq, const char *uid,
				    jnl_event_cb cb, void *arg);

/* Stream the events of one kind ("quarantine", ...) in order (a snapshot). */
imp_err jnl_iterate_kind(struct jnl *j, const char *kind, jnl_event_cb cb, void *arg);

/* --------------------------------------------------------------- verify */

struct jnl_verify_opts {
	/* Check checkpoint signatures with this P-256 public key, or with the
	 * callback (used if pkey is NULL). Neither: signatures not checked. */
	EVP_PKEY *pkey;
	jnl_verify_fn verify;
	void *verify_arg;
	/*
	 * Also require that a checkpoint covers the head: after the newest
	 * checkpoint that verifies there may only be its own "checkpoint" event
	 * and "outbox" events (deliveries, which a station may record without
	 * the HSM). Anything else there (a cut tail whose head was moved back,
	 * a rehashed chain whose checkpoints were dropped, a run that never
	 * finished) is reported as unsigned, at the first such event.
	 */
	bool require_signed_head;
};

struct jnl_verify_report {
	uint64_t events;              /* events checked */
	uint64_t checkpoints;         /* checkpoints checked */
	bool signatures_checked;      /* a key or callback was given */
	uint64_t last_checkpoint_seq; /* newest checkpoint that verified */
	uint64_t unsigned_tail;       /* events after it (not yet signed) */
	uint64_t last_significant_seq; /* newest event other than checkpoint/outbox */
	uint64_t bad_seq;             /* 0: all good; else the first broken seq */
	char reason[JNL_MSG_MAX];     /* what broke, lowercase ("" if nothing) */
};

/*
 * Verify the whole journal offline, on a snapshot: every event's seq follows
 * the previous one (from 1), its prev_hash is the previous hash (64 zeros
 * first) and its hash is recomputed; the head stored in settings is the last
 * event; every checkpoint row names an event with that hash, has a matching
 * "checkpoint" event, and (with a key) a good signature. Returns IMP_OK if
 * all holds, IMP_ERR_AUDIT with report->bad_seq and reason set at the first
 * problem (a deleted event, a changed byte, a reordered row, a bad or missing
 * checkpoint), or another error if it could not read. opts may be NULL.
 */
imp_err jnl_verify_chain(struct jnl *j, const struct jnl_verify_opts *opts,
				  struct jnl_verify_report *report);

/* --------------------------------------------------------------- integrity */

/*
 * Compare the journal with its anchor file (JOURNAL-anchor: the serial
 * counter and head written and synced before every allocation). IMP_OK if
 * the journal is not behind it (or there is none), IMP_ERR_AUDIT with the
 * finding in msg if it is (it was rolled back), or if the anchor is damaged
 * (not the fixed record anchor_store writes) or another station's, another
 * error if it could not read. A msg of JNL_MSG_MAX bytes holds the whole finding. *found
 * (may be NULL) says whether there was an anchor to compare with: without
 * one (a journal copied away from it) nothing was checked.
 */
imp_err jnl_anchor_check(struct jnl *j, char *msg, size_t cap, bool *found);
/* What jnl_anchor_check_at found to compare the journal with. */
enum jnl_anchor_seen {
	JNL_ANCHOR_NONE,     /* no anchor file (or one never written): nothing compared */
	JNL_ANCHOR_COMPARED, /* an anchor, read and compared */
	JNL_ANCHOR_DAMAGED,  /* a file that is not an anchor as the station writes one */
};

/* The same against the anchor file at anchor (NULL: the one beside the
 * journal), for a journal audited away from its data directory: a named
 * file must exist (IMP_ERR_NOT_FOUND) and be a regular file (IMP_ERR_IO),
 * and an empty or damaged one is the finding. *seen (may be NULL) says
 * which. */
imp_err jnl_anchor_check_at(struct jnl *j, const char *anchor, char *msg, size_t cap,
			   enum jnl_anchor_seen *seen);

/* An anchor file named by the user can be read as one: it exists
 * (IMP_ERR_NOT_FOUND), is a regular file and readable (IMP_ERR_IO); the
 * reason in jnl_last_error(). Checked by jnl_anchor_check_at too. */
imp_err jnl_anchor_named_usable(const char *path);

/*
 * The boards table replayed from the chain: each board's state, serial,
 * counter, fixture and key mode as its events set them (docs/JOURNAL.md
 * "The boards table from the events") against its row, and every board
 * that has events against a row of its own. The chain (jnl_verify_chain)
 * proves the events; this proves the table that `boards`, `status`, resume
 * and the audit read was not edited beside them. cb (may be NULL) is called
 * for each board that differs, with its uid (NULL-safe), the seq of its
 * newest event (0: none) and what differs; *boards (may be NULL) gets how
 * many rows were compared. IMP_OK if every row matches, IMP_ERR_AUDIT if
 * one does not, another error if it could not read.
 */
typedef void (*jnl_board_mismatch_fn)(void *arg, const char *uid, uint64_t last_seq,
				      const char *what);
imp_err jnl_verify_boards(struct jnl *j, jnl_board_mismatch_fn cb, void *arg, uint64_t *boards);

/* PRAGMA quick_check over every page, whatever journal.sqlite-checked
 * says (the open leaves it out on a file unchanged since a clean close
 * after one): IMP_ERR_JOURNAL names the damage. Stopped, with a warning
 * and IMP_OK, after 5 s. */
imp_err jnl_verify_pages(struct jnl *j);

/*
 * The outbox against the events (docs/JOURNAL.md "The outbox from the
 * events"): every record an event put there (a board's RECORD -> DONE
 * event, a revocation's "queued" outbox event) has its row, with the signed
 * record whose SHA-256 the event holds and the event's serial, uid and
 * kind; every row was put there by such an event; a row marked delivered,
 * or rejected, has the outbox event that says so (a row pending again is
 * only delivered once more: not compared). The attempts and
 * last_error columns (retry bookkeeping, journaled by no event) are not
 * compared. cb as jnl_verify_boards's, with the record's board; *rows (may
 * be NULL) gets how many rows were compared. IMP_OK, IMP_ERR_AUDIT on a
 * difference, another error if it could not read.
 */
imp_err jnl_verify_outbox(struct jnl *j, jnl_board_mismatch_fn cb, void *arg, uint64_t *rows);

/* Where the anchor of the journal at path is (path + "-anchor"). */
void jnl_anchor_path(const char *journal, char *out, size_t cap);

/*
 * The newest checkpoint (*seq, 0 if none, and head, the hash it signed)
 * and the serial counter, for an anchor kept outside the journal.
 */
imp_err jnl_checkpoint_head(struct jnl *j, uint64_t *seq, char head[JNL_HASH_HEX_LEN + 1],
			    uint64_t *serial_counter);

/*
 * Compare the journal with an anchor kept elsewhere (the HSM's): it must
 * have at least serial_counter serials, an event seq, and that event's
 * hash must be head. IMP_OK, IMP_ERR_AUDIT with the finding in msg, or a
 * read error. `where` names the anchor in the message.
 */
imp_err jnl_check_external(struct jnl *j, const char *where, uint64_t serial_counter,
			   uint64_t seq, const char *head, char *msg, size_t cap);

/*
 * Prove, before a board's fuses are burnt, that the journal can store its
 * record: the board row, an outbox row and an event are written in a
 * transaction that is rolled back. IMP_ERR_JOURNAL (with the cause) if any
 * of it fails.
 */
imp_err jnl_outbox_probe(struct jnl *j, const char *uid);

/* ------------------------------------------------------------------ outbox */

/* Outbox kinds. PERSISTED as "identity" and "revocation". */
enum jnl_outbox_kind {
	JNL_OUTBOX_IDENTITY = 0,
	JNL_OUTBOX_REVOCATION = 1,
};

struct jnl_outbox_entry {
	const char *record_id;
	const char *serial;
	const char *uid;
	enum jnl_outbox_kind kind;
	const char *jws;
	const char *created;
	uint32_t attempts;
	const char *last_error;  /* NULL if none */
};
typedef int (*jnl_outbox_cb)(void *arg, const struct jnl_outbox_entry *e);

/*
 * Add a revocation record for a board that has a serial (no state change;
 * an "outbox" event). IMP_ERR_EXISTS if record_id is taken, or if the
 * board's present identity is already revoked (jnl_revocation_record_id).
 */
imp_err jnl_outbox_add_revocation(struct jnl *j, const char *uid,
					   const char *record_id, const char *jws);

/* Undelivered, unrejected records, oldest first, at most limit (0: all). */
imp_err jnl_outbox_pending(struct jnl *j, unsigned limit, jnl_outbox_cb cb,
				    void *arg);

/* Count of pending records. */
imp_err jnl_outbox_count_pending(struct jnl *j, uint64_t *out);

/* The registry accepted it: delivered_at = now, an "outbox" event.
 * Idempotent. IMP_ERR_NOT_FOUND if no such record. */
imp_err jnl_outbox_delivered(struct jnl *j, const char *record_id);

/* The same for n records in one transaction (one durable commit for a whole
 * acknowledged batch); all or none. */
imp_err jnl_outbox_delivered_many(struct jnl *j, const char *const *record_ids,
					   size_t n);

/* A delivery attempt failed (retryable): attempts + 1, last_error. No event. */
imp_err jnl_outbox_attempt_failed(struct jnl *j, const char *record_id,
					   const char *error);

/* The registry refused it for good: rejected_reason set, an "outbox" event;
 * it leaves the pending list. IMP_ERR_NOT_FOUND if no such record. */
imp_err jnl_outbox_rejected(struct jnl *j, const char *record_id,
				     const char *reason);

/* ------------------------------------------------------------------ leases */

/*
 * Line mode (docs/LINE.md, docs/JOURNAL.md "Leases"). A lease is a block of
 * the line's serial counter, first..last inclusive, granted to this station
 * by the line database together with as many quota units. allocate() takes
 * the lowest unissued counter of the oldest open lease; next is the next
 * counter it would take (last + 1 when used up).
 */
struct jnl_lease {
	uint64_t id;          /* the line database's lease id */
	uint64_t first, last; /* counters, inclusive */
	uint64_t next;
	bool closed;          /* released: nothing more is issued from it */
};
typedef int (*jnl_lease_cb)(void *arg, const struct jnl_lease *l);

/*
 * Store a lease granted by the line, with a "lease" event. The journal must
 * be in line mode (else IMP_ERR_CONFIG). The same id with the same range
 * again: IMP_OK, nothing written (a grant fetched twice); a range that
 * overlaps another lease: IMP_ERR_DUPLICATE.
 */
imp_err jnl_lease_add(struct jnl *j, uint64_t id, uint64_t first,
			       uint64_t last);

/*
 * Close an open lease so nothing more is issued from it, with a "lease"
 * event; *next_out (may be NULL) receives its first unissued counter (last
 * + 1 if used up): counters next..last are then never issued by anyone.
 * Closing a closed lease: IMP_OK, *next_out as stored. Unknown id:
 * IMP_ERR_NOT_FOUND.
 */
imp_err jnl_lease_close(struct jnl *j, uint64_t id, uint64_t *next_out);

/* Leases, oldest first (open_only: only those not closed). Callback: 0 goes on. */
imp_err jnl_lease_list(struct jnl *j, bool open_only, jnl_lease_cb cb,
				void *arg);

/*
 * The line database does not hold lease le, which this journal holds: it
 * lost committed transactions (a failover to a standby that had not
 * received them, a restore from a backup). Before the station acts on it
 * (restores the lease in the line, or refuses to issue), a "lease" event
 * {"action":"lost","lease","first","last","next","found"} records it, and
 * every outbox record is marked undelivered to the line, so the feed gives
 * the line its copy again (the line answers "already there" for those it
 * kept). found: what the line holds instead (text). Unknown id:
 * IMP_ERR_NOT_FOUND.
 */
imp_err jnl_line_lost(struct jnl *j, uint64_t lease_id, const char *found);

/* ------------------------------------------------------ line delivery */

/*
 * The outbox is also fed to the line database (docs/LINE.md), with its own
 * delivery state (columns line_delivered_at, line_conflict). counter is the
 * line counter of the record's serial (0 if unknown).
 */
typedef int (*jnl_line_outbox_cb)(void *arg, const struct jnl_outbox_entry *e,
				   uint64_t counter);

/* Records not yet in the line database, oldest first, at most limit (0: all). */
imp_err jnl_line_pending(struct jnl *j, unsigned limit,
				  jnl_line_outbox_cb cb, void *arg);

/* Count of records not yet in the line database. */
imp_err jnl_line_count_pending(struct jnl *j, uint64_t *out);

/* Count of records the line database committed (line_delivered_at set). */
imp_err jnl_line_count_delivered(struct jnl *j, uint64_t *out);

/*
 * The line database holds fewer of this station's records than the journal
 * marked delivered (it lost committed transactions): an "outbox" event
 * {"action":"line_refeed","reason"} records it and every record is marked
 * undelivered to the line, so the feed gives it every record again (the
 * line answers "already there" for those it kept).
 */
imp_err jnl_line_refeed(struct jnl *j, const char *reason);

/*
 * The line database committed the record: line_delivered_at = now. conflict
 * (NULL if none) says why the line flagged it for a person (a UID or public
 * key another station already holds); it is stored and an "outbox" event
 * ("line_conflict") records it. Idempotent. IMP_ERR_NOT_FOUND if no such
 * record.
 */
imp_err jnl_line_delivered(struct jnl *j, const char *record_id,
				    const char *conflict);

/* Capacity of a record id, NUL included (ids are 64 hex digits). */
#define JNL_RECORD_ID_MAX 130u

/* The id of the newest identity record of board uid (a reissued board has
 * several); IMP_ERR_NOT_FOUND (not logged) if it has none. */
imp_err jnl_identity_record_id(struct jnl *j, const char *uid, char out[JNL_RECORD_ID_MAX]);

/*
 * The id of the revocation that withdraws board uid's present identity (a
 * revocation queued after its newest identity record, delivered or not);
 * IMP_ERR_NOT_FOUND (not logged) if that identity is not revoked. A serial
 * is revoked once: jnl_outbox_add_revocation refuses a second revocation.
 */
imp_err jnl_revocation_record_id(struct jnl *j, const char *uid, char out[JNL_RECORD_ID_MAX]);

/* ------------------------------------------------ reading the outbox file (read-only) */

/* One outbox row as stored (strings valid during the callback only). */
struct jnl_outbox_row {
	const char *record_id;
	const char *serial;
	const char *uid;
	const char *kind;          /* "identity" / "revocation" */
	const char *jws;
	const char *created;
	const char *delivered_at;  /* NULL if not delivered */
	uint32_t attempts;
	const char *last_error;    /* NULL if none */
	const char *rejected_reason; /* NULL if not rejected */
};
typedef int (*jnl_outbox_row_cb)(void *arg, const struct jnl_outbox_row *r);

enum jnl_outbox_filter {
	JNL_OUTBOX_ALL = 0,
	JNL_OUTBOX_REJECTED = 1,
	JNL_OUTBOX_DELIVERED = 2,
};

/*
 * Stream the outbox of the journal file at path (opened read-only, schema
 * version 1 as in docs/JOURNAL.md), ordered by creation, one row at a time
 * (memory stays flat). cb returns 0 to go on. IMP_ERR_NOT_FOUND if there is
 * no such file, IMP_ERR_JOURNAL if it is not a journal.
 */
imp_err jnl_outbox_scan(const char *path, enum jnl_outbox_filter filter, jnl_outbox_row_cb cb,
			void *arg);

/*
 * The records in the outbox (identity and revocation), oldest first, for
 * `imprint records`: created at or after since (the journal's layout,
 * "2026-12-01T06:00:00.000Z") and of that serial, each filter NULL for
 * any. Callback (struct jnl_outbox_row above): 0 goes on.
 */
imp_err jnl_list_records(struct jnl *j, const char *since, const char *serial,
			 jnl_outbox_row_cb cb, void *arg);

#endif
