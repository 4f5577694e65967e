/*
 * imprint-registry internals: the store (SQLite + verification of every
 * record) and the demo TLS material. docs/REGISTRY.md is the reference.
 */
#ifndef REGISTRY_H
#define REGISTRY_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "formats/record_verify.h"
#include "imprint/err.h"

#define REG_REASON_MAX 256u

/* Per-record outcome, as sent on the wire. */
enum reg_status { REG_ACCEPTED, REG_DUPLICATE_SAME, REG_REJECTED };

struct reg_result {
	enum reg_status status;
	int code;                    /* 201 accepted, 200 same, 409 conflict, 422, 404, 400 */
	char reason[REG_REASON_MAX];
};

/* One record of a batch after verification, before it is stored. */
struct reg_item {
	const char *id;   /* borrowed from the request */
	const char *jws;  /* borrowed */
	bool revocation;
	bool verified;    /* false: result already set (rejected) */
	char serial[80];
	char uid[140];
	char public_key[100]; /* "x.y" of the JWK, "" for psk */
	char cert_sha256[65];
	char reason_text[REG_REASON_MAX]; /* revocation reason */
	struct reg_result res;
};

struct reg_store {
	void *db;                 /* sqlite3 */
	pthread_mutex_t lock;
	X509_STORE *trust;        /* the organisation bundle */
	char *revocation_x5c;     /* base64 DER of the revocation certificate */
	EVP_PKEY *revocation_pub; /* pinned for revocation records */
	struct fmt_rv_trust *fast; /* the bundle's keys, decoded once; NULL: none */
	unsigned device_ku;       /* keyUsage of device certificates (DIR/certprofile.json) */
	void *st[6];              /* prepared statements (sqlite3_stmt), under lock */
};

/* Open (create) the database and load DIR/bundle.pem and DIR/revocation.pem. */
imp_err reg_store_open(struct reg_store *s, const char *db_path, const char *trust_dir);
void reg_store_close(struct reg_store *s);

/*
 * Verify one item (thread-safe, no lock): fills serial, uid, ... or res.
 * rv: this thread's fast verifier over s->fast (fmt_rv_new), or NULL.
 */
void reg_verify(struct reg_store *s, struct fmt_rv *rv, struct reg_item *it);

/*
 * Store a batch in one transaction, in order, setting every res. If wait is
 * not NULL it is called with i before item i is looked at (it returns once
 * the item is verified: verification and storing overlap).
 */
imp_err reg_store_batch(struct reg_store *s, struct reg_item *items, size_t n,
			void (*wait)(void *arg, size_t i), void *arg);

/* GET /records/SERIAL: *out new object, IMP_ERR_NOT_FOUND if unknown. */
imp_err reg_lookup(struct reg_store *s, const char *serial, json_t **out);

/* init-tls DIR: a throwaway TLS CA, server and client certificates. */
imp_err reg_init_tls(const char *dir);

/* pem holds a readable PEM certificate (key false: the first one) or
 * private key (key true); else IMP_ERR_CONFIG, with an error naming path.
 * What the TLS library is then given is sound enough that its own checks
 * (a key that does not match) answer with their reason. */
imp_err reg_tls_pem_check(const char *pem, const char *path, bool key);

#endif
