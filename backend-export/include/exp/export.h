/*
 * Export: delivery of the journal's outbox (signed identity and revocation
 * records) to where the organisation keeps its devices, exactly once.
 *
 * Exporters are drivers, picked by name from exp_drivers[] (NULL-terminated,
 * alphabetical): "https" delivers to a registry that speaks the API of
 * docs/REGISTRY.md (imprint-registry is the reference), the others write
 * files for backends that import in bulk (AWS IoT bulk registration with its
 * provisioning template, Azure IoT DPS bulk enrollment bodies and an
 * enrollment group, imprint's signed batch manifest, a Microchip-style
 * manifest of per-device signed entries, CSV for an ERP; docs/EXPORT.md).
 *
 * exp_deliver() is the pump: it takes pending records from the outbox in
 * batches, pushes them through one driver and records each result in the
 * journal. A record leaves the outbox only once the backend acknowledged
 * that very record; a record refused for good is kept, with the reason, for
 * a person to look at (`imprint export --rejected`).
 */
#ifndef EXP_EXPORT_H
#define EXP_EXPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "imprint/err.h"
#include "formats/config.h"
#include "formats/signer.h"
#include "journal/journal.h"

#define EXP_REASON_MAX 256u   /* result reasons are cut to this (NUL incl.) */
#define EXP_BATCH_DEFAULT 1000u
#define EXP_BATCH_MAX 5000u

/* One record to push. All pointers borrowed, valid during push() only. */
struct exp_record {
	const char *id;      /* record_id: also the idempotency key */
	const char *serial;
	const char *uid;     /* chip UID, lowercase hex */
	enum jnl_outbox_kind kind;
	const char *jws;     /* compact JWS as signed */
};

/* What the backend said about one record. */
enum exp_status {
	EXP_PENDING = 0,      /* no answer for it: try again later */
	EXP_ACCEPTED = 1,     /* stored by the backend */
	EXP_DUPLICATE_SAME = 2, /* the backend already had this very record: done */
	EXP_REJECTED = 3,     /* refused for good; reason says why */
};

/* "pending", "accepted", "duplicate-same", "rejected" (the wire names). */

struct exp_result {
	enum exp_status status;
	int code;                    /* HTTP-like code of the record (201, 200, 409, ...) or 0 */
	char reason[EXP_REASON_MAX]; /* "" if none */
};

/* Everything any driver may need. Unused members are ignored. */
struct exp_settings {
	/* https */
	const char *url;          /* registry base URL ("https://127.0.0.1:8443") */
	const char *ca;           /* PEM file: the only CA trusted for the server */
	const char *cert;         /* PEM client certificate (mTLS) */
	const char *key;          /* PEM client private key */
	const char *bearer;       /* bearer token value, or NULL (never logged) */
	long connect_timeout_ms;  /* 0: 5000 */
	long timeout_ms;          /* whole request; 0: 30000 */
	double retry_for_s;       /* keep retrying one batch this long; 0: 60; <0: one try */
	double backoff_base_s;    /* first backoff (0: 0.2); doubles, full jitter */
	double backoff_max_s;     /* cap (0: 10) */
	/* files */
	const char *out_path;     /* file (azure-dps: directory) to write, complete or not at all */
	bool replace;             /* an existing output may be replaced (--force) */
	const char *subject_cn;   /* azure-dps: the configured CN of device certificates
				     (a template: "{serial}"), NULL if the subject has none */
	X509 *device_ca;          /* azure-dps, microchip-manifest: the device CA certificate */
	const char *organisation; /* microchip-manifest: the organisation's name */
	/* manifest, microchip-manifest: the record-signing key and its chain (leaf first) */
	const struct fmt_signer *signer;
	X509 *const *x5c;
	size_t x5c_count;
};

/*
 * The configuration's "registry" section as settings (url, TLS files, the
 * bearer token from the environment variable bearer_env names): the one
 * reader for export and background delivery. Timeouts and the output path
 * stay 0 / NULL for the caller. IMP_ERR_CONFIG if bearer_env names an unset
 * variable.
 */
imp_err exp_settings_from_config(const struct fmt_config *cfg, struct exp_settings *s);


/*
 * An exporter. Contract, for every driver:
 *  - open() prepares the driver with s (which it may keep until close);
 *    on success *state is the driver's state; on failure nothing is left
 *    to release and close() is not called.
 *  - push() is called zero or more times between open() and close() with
 *    1..EXP_BATCH_MAX records; it fills res[i] for every record i (they
 *    arrive as EXP_PENDING). It returns IMP_OK when it got an answer (each
 *    record then is ACCEPTED, DUPLICATE_SAME or REJECTED, or PENDING if the
 *    backend did not mention it), or an error when the batch as a whole
 *    could not be delivered (IMP_ERR_EXPORT, IMP_ERR_TIMEOUT, IMP_ERR_IO):
 *    every record then stays PENDING and may be pushed again later. A
 *    driver retries transient failures itself (network, 5xx, Retry-After)
 *    within its settings before giving up.
 *  - pushing the same record again must be harmless (idempotent).
 *  - close() is called if and only if open() succeeded; it releases
 *    everything. For drivers with durable_on_close, ACCEPTED records are
 *    only durable once close() returned IMP_OK (a file is renamed into
 *    place); if it fails, none of them is.
 */
struct exp_driver {
	const char *name;
	const char *summary;
	bool durable_on_close;
	imp_err (*open)(const struct exp_settings *s, void **state);
	imp_err (*push)(void *state, const struct exp_record *recs, size_t n,
			struct exp_result *res);
	imp_err (*close)(void *state);
};

/* Every driver, alphabetical, NULL-terminated. */
extern const struct exp_driver *const exp_drivers[];

/* The driver called name, or NULL. */
const struct exp_driver *exp_driver_find(const char *name);

/* Statistics of one exp_deliver() run. */
struct exp_stats {
	uint64_t pushed;       /* records pushed (including retried ones) */
	uint64_t accepted;     /* newly stored by the backend */
	uint64_t duplicates;   /* the backend already had them (idempotent) */
	uint64_t rejected;     /* refused for good (kept for a person) */
	uint64_t failed;       /* batch deliveries that gave up (records still pending) */
	uint64_t batches;
	double seconds;
};

struct exp_deliver_opts {
	unsigned batch;          /* records per push; 0: EXP_BATCH_DEFAULT */
	uint64_t max_records;    /* stop after this many; 0: all pending */
	/* Polled between batches; returning true stops the run (signals). */
	bool (*stop)(void *arg);
	void *stop_arg;
};

/*
 * Deliver the pending outbox through driver d (already opened: state).
 * For each record: ACCEPTED / DUPLICATE_SAME -> jnl_outbox_delivered
 * (for durable_on_close drivers: only in exp_deliver_commit after close);
 * REJECTED -> jnl_outbox_rejected with the reason; PENDING ->
 * jnl_outbox_attempt_failed. Stops when the outbox is empty, when
 * a batch could not be delivered (returns that error; the records stay
 * pending) or when stop() says so. stats may be NULL.
 *
 * accepted_ids: for durable_on_close drivers, a malloc'ed array of malloc'ed
 * ids that were accepted but are not yet marked delivered; pass it to
 * exp_deliver_commit after close() succeeded (or free it with
 * exp_ids_free). NULL for other drivers.
 */
imp_err exp_deliver(struct jnl *j, const struct exp_driver *d, void *state,
		    const struct exp_deliver_opts *opts, struct exp_stats *stats,
		    char ***accepted_ids, size_t *accepted_n);

/*
 * A file export (a durable_on_close driver, opened by the caller, closed
 * by the caller after this returns): every outbox record of the journal at
 * path (the registry's refusals aside) created after `since` (RFC 3339 as
 * stored; NULL: all) is pushed to d. The outbox is only read, never
 * changed. st counts accepted and rejected records; *last (malloc'ed, or
 * NULL if none) is the creation time of the newest record written, the
 * driver's progress for a later `since`.
 */
imp_err exp_export_file(const char *journal, const struct exp_driver *d, void *state,
			const char *since, struct exp_stats *st, char **last);

/* Mark ids delivered (after a durable_on_close driver's close). */
imp_err exp_deliver_commit(struct jnl *j, char **ids, size_t n);
void exp_ids_free(char **ids, size_t n);

/* ------------------------------------------- delivery in the background */

/*
 * While `imprint provision` runs: a thread delivers the outbox of j to
 * cfg->registry through the https exporter every second (each pass retries
 * a failing batch for 5 s at most, 10 s per request), and once more when
 * stopped (the final flush). Failures are only logged: records stay in the
 * outbox for the next pass or `imprint export`. Without registry.url it does
 * nothing (*out NULL, IMP_OK). j must stay open until exp_background_stop;
 * cfg's strings too. An error: the thread was not started (*out NULL).
 */
struct exp_background;
imp_err exp_background_start(struct jnl *j, const struct fmt_config *cfg,
			     struct exp_background **out);

/* Stop (final flush, join, release); NULL is fine. Returns the records the
 * registry acknowledged (accepted or already there) during the run. */
uint64_t exp_background_stop(struct exp_background *bg);

#endif
