/*
 * The offline audit (docs/AUDIT.md): given a journal and/or exported records
 * and the organisation's trust folder, verify everything a line produced
 * and report every finding.
 *
 * It streams: records are read one batch at a time (from the journal's
 * outbox and/or a JSON-lines file), verified in parallel, and their
 * identifying values go to a temporary on-disk SQLite database where
 * uniqueness and completeness are settled with indexes and joins, so memory
 * stays flat however many records there are.
 */
#ifndef AUD_H
#define AUD_H

#include <stdbool.h>
#include <stdint.h>

#include "imprint/err.h"
#include "journal/journal.h"

/* One finding. Strings valid during the callback only; any may be "". */
struct aud_finding {
	const char *check;     /* "signature", "device-chain", "duplicate-serial",
				  "duplicate-uid", "duplicate-public-key",
				  "duplicate-cert-serial", "duplicate-record-id",
				  "missing-record", "orphan-record", "registry-missing",
				  "registry-orphan", "registry-mismatch",
				  "registry-revocation", "journal-chain",
				  "journal-rollback", "outbox-column", "quota",
				  "revocation", "malformed", "cloned-uid", "trust",
				  "device-validity" */
	const char *record_id;
	const char *serial;
	const char *uid;
	const char *message;   /* lowercase, what is wrong */
};

struct aud_opts {
	const char *journal;     /* journal file, or NULL */
	const char *records;     /* JSON lines: {"id":..,"jws":..} or a bare JWS per line; or NULL */
	const char *trust_dir;   /* bundle.pem, root-ca.pem, device-ca.pem,
				    record-signing.pem, revocation.pem (required) */
	const char *registry_db; /* imprint-registry database, or NULL */
	const char *anchor;      /* the journal's anchor file; NULL: JOURNAL-anchor beside it */
	bool require_anchor;     /* no anchor to compare the journal with is a finding */
	unsigned threads;        /* verifying threads; 0: online CPUs */
	const char *tmp_dir;     /* for the temporary database; NULL: $TMPDIR or /tmp */
	/* A further source of records (the line's database), or NULL: called
	 * once; it hands each record to add(add_ctx, id, jws), which returns
	 * the error that stops it. */
	imp_err (*source)(void *source_arg,
			  imp_err (*add)(void *add_ctx, const char *id, const char *jws),
			  void *add_ctx);
	void *source_arg;
	/* Called for every finding, from the calling thread. */
	void (*finding)(void *arg, const struct aud_finding *f);
	void *arg;
	/* Called (may be NULL) for every board of the journal rejected at or
	 * after its lock step (jnl_list_rejected_locked): not a finding, an
	 * outcome the line must see, as its fuses may be burnt and it carries
	 * no identity record; with o->arg. */
	void (*rejected_locked)(void *arg, const struct jnl_rejected_locked *r);
};

struct aud_summary {
	uint64_t records;          /* records read (both sources) */
	uint64_t identities;       /* distinct identity records */
	uint64_t revocations;      /* distinct revocation records */
	uint64_t signatures;       /* ECDSA signatures verified (JWS + device certificates) */
	uint64_t bad_records;      /* records that did not verify */
	uint64_t boards_done;      /* journal boards in DONE */
	uint64_t journal_events;
	uint64_t checkpoints;
	uint64_t boards_compared;  /* boards rows replayed from their events */
	uint64_t rejected_locked;  /* boards rejected at or after their lock step */
	bool chain_checked;
	/* The journal was compared with its anchor file (anchor_path, beside
	 * it or named by o->anchor): false for a copy without one, which may
	 * be older than the station's journal without anything saying so, and
	 * for a file that is not an anchor (anchor_damaged, a finding). */
	bool anchor_checked;
	bool anchor_damaged;
	char anchor_path[4200];
	uint64_t quota, issued;
	uint64_t findings;
	double seconds;            /* whole audit */
	double verify_seconds;     /* reading + verifying records */
};

/*
 * Run the audit. Returns IMP_OK if nothing was found, IMP_ERR_AUDIT if
 * anything was (every finding was reported through o->finding), or another
 * error if the audit itself could not run (unreadable input, no trust).
 */
imp_err aud_run(const struct aud_opts *o, struct aud_summary *sum);

#endif
