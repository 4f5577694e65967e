/*
 * imprint audit, the engine (exp/audit.h, docs/AUDIT.md).
 *
 * Records are read in batches of AUDIT_BATCH, verified by `threads` threads
 * (the calling one included; each takes the next record from an atomic
 * counter), then their identifying values are inserted into a temporary
 * on-disk SQLite database. Once every record is in, indexes are built and
 * duplicates and completeness are found with GROUP BY and anti-joins: memory
 * is bounded by the batch and SQLite's page cache, not by the record count.
 *
 * Trust: the record-signing and revocation certificates are verified once
 * against the root and their keys then pinned for every record; the device
 * CA is verified once against the root and then used as the anchor of every
 * device certificate (X509_V_FLAG_PARTIAL_CHAIN), so each record costs two
 * ECDSA verifications (JWS and device certificate), the minimum.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <sqlite3.h>

#include "audit/audit.h"
#include "formats/certprofile.h"
#include "formats/jws.h"
#include "formats/record.h"
#include "formats/record_verify.h"
#include "formats/x509.h"
#include "imprint/log.h"
#include "imprint/util.h"
#include "journal/journal.h"
#include "registry/store.h"

#define AUDIT_BATCH 2048u
#define MSG_MAX 240u

enum kind { K_IDENTITY = 0, K_REVOCATION = 1 };

struct item {
	char *id;   /* as the source names it, or NULL */
	char *jws;
	/* An outbox row's own serial, uid and kind columns (NULL: a file line),
	 * which feed journal events and the line: they must be the record's. */
	char *col_serial, *col_uid, *col_kind;
	/* results */
	bool ok;
	enum kind kind;
	unsigned sigs;
	char check[24];
	char msg[MSG_MAX];
	char record_id[80];
	char serial[80];
	char uid[140];
	char pubkey[100];
	char cert_serial[48];
	char cert_sha256[65];
	char digest[65];
};

/* One batch: filled by the reading thread, verified by the pool. */
struct batch {
	struct item *items;
	size_t n;
	atomic_size_t next;   /* next item to verify */
	atomic_size_t done;   /* items verified */
};

struct audit {
	const struct aud_opts *o;
	struct aud_summary *sum;
	EVP_PKEY *rec_pub, *rev_pub;
	X509_STORE *dev_store;
	unsigned device_ku;     /* keyUsage of device certificates (trust/certprofile.json) */
	time_t devca_not_after; /* no device certificate may end later */
	struct fmt_rv_trust *fast;
	sqlite3 *db;
	sqlite3_stmt *ins;
	sqlite3_stmt *reg_ins; /* check_registry's insert */
	char db_path[4200];
	/* Two batches: one is filled (and then kept) while the other is verified. */
	struct batch b[2];
	unsigned fill;         /* index of the batch being filled */
	bool busy[2];          /* submitted, not yet kept */
	pthread_t th[64];
	unsigned nth;
	pthread_mutex_t mu;
	pthread_cond_t cv_work, cv_done;
	struct batch *cur;     /* the batch the pool works on, or NULL */
	uint64_t gen;          /* bumped at every submit */
	unsigned active;       /* pool threads working on cur */
	bool stop, mu_ready;
	unsigned threads;
	imp_err rc;
};

static void finding(struct audit *a, const char *check, const char *id, const char *serial,
		    const char *uid, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void finding(struct audit *a, const char *check, const char *id, const char *serial,
		    const char *uid, const char *fmt, ...)
{
	struct aud_finding f;
	char *msg = NULL;
	va_list ap;

	/* Allocated: a message may name a path (the journal's) and must still
	 * end with what to do next. */
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	f.check = check;
	f.record_id = id ? id : "";
	f.serial = serial ? serial : "";
	f.uid = uid ? uid : "";
	f.message = msg ? msg : "(out of memory composing the finding's message)";
	a->sum->findings++;
	if (a->o->finding)
		a->o->finding(a->o->arg, &f);
	free(msg);
}

/* --------------------------------------------------------------- trust */

static imp_err load_cert(const char *dir, const char *name, X509 **out)
{
	char path[4200];
	imp_err rc;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	rc = fmt_cert_load(path, out);
	if (rc != IMP_OK) {
		IMP_ERROR("cannot load %s: the audit needs the organisation's certificates in the "
			  "trust folder (DATA/trust, or --trust DIR): restore it from its backup (the "
			  "hsm holds the same certificates: 'imprint hsm export-trust' prints "
			  "them as one bundle)", path);
		if (rc == IMP_ERR_PROTOCOL || rc == IMP_ERR_CRYPTO)
			rc = IMP_ERR_CONFIG; /* a damaged file, not a peer's answer */
	}
	return rc;
}

static imp_err load_trust(struct audit *a)
{
	X509 *root = NULL, *devca = NULL, *rec = NULL, *rev = NULL;
	X509_STORE *rs = NULL;
	struct stat st;
	imp_err rc;

	if (stat(a->o->trust_dir, &st) != 0 && errno == ENOENT) {
		IMP_ERROR("no trust folder at %s: the audit needs the organisation's "
			  "certificates; give --trust DIR (a copy of the station's DATA/trust), or, "
			  "on a station, 'imprint hsm init' makes them", a->o->trust_dir);
		return IMP_ERR_NOT_FOUND;
	}
	rc = load_cert(a->o->trust_dir, "root-ca.pem", &root);
	if (rc == IMP_OK)
		rc = load_cert(a->o->trust_dir, "device-ca.pem", &devca);
	if (rc == IMP_OK)
		rc = load_cert(a->o->trust_dir, "record-signing.pem", &rec);
	if (rc == IMP_OK)
		rc = load_cert(a->o->trust_dir, "revocation.pem", &rev);
	if (rc != IMP_OK)
		goto cleanup;
	rs = X509_STORE_new();
	a->dev_store = X509_STORE_new();
	if (!rs || !a->dev_store || X509_STORE_add_cert(rs, root) != 1 ||
	    X509_STORE_add_cert(a->dev_store, devca) != 1) {
		rc = IMP_ERR_NOMEM;
		goto cleanup;
	}
	X509_STORE_set_flags(a->dev_store, X509_V_FLAG_PARTIAL_CHAIN);
	if (fmt_cert_verify_chain(rs, devca, NULL, FMT_KU_KEY_CERT_SIGN) != IMP_OK)
		finding(a, "trust", NULL, NULL, NULL, "device-ca.pem does not chain to root-ca.pem");
	if (fmt_cert_verify_chain(rs, rec, NULL, FMT_KU_DIGITAL_SIGNATURE) != IMP_OK)
		finding(a, "trust", NULL, NULL, NULL,
			"record-signing.pem does not chain to root-ca.pem");
	if (fmt_cert_verify_chain(rs, rev, NULL, FMT_KU_DIGITAL_SIGNATURE) != IMP_OK)
		finding(a, "trust", NULL, NULL, NULL, "revocation.pem does not chain to root-ca.pem");
	a->rec_pub = X509_get_pubkey(rec);
	a->rev_pub = X509_get_pubkey(rev);
	if (!a->rec_pub || !a->rev_pub)
		rc = IMP_ERR_CRYPTO;
	{
		struct tm tm;

		if (ASN1_TIME_to_tm(X509_get0_notAfter(devca), &tm) == 1)
			a->devca_not_after = timegm(&tm);
		else
			rc = IMP_ERR_CRYPTO;
	}
	if (rc == IMP_OK)
		rc = fmt_certprof_trust_ku(a->o->trust_dir, &a->device_ku);
	if (rc == IMP_OK)
		rc = fmt_rv_trust_new(a->rec_pub, NULL, &devca, 1, NULL, &a->fast);
	if (rc == IMP_OK)
		fmt_rv_trust_set_device_ku(a->fast, a->device_ku);
cleanup:
	X509_STORE_free(rs);
	X509_free(root);
	X509_free(devca);
	X509_free(rec);
	X509_free(rev);
	return rc;
}

/* ------------------------------------------------------------- verify */

static void copy(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src ? src : "");
}

static void bad(struct item *it, const char *check, const char *msg, imp_err rc)
{
	it->ok = false;
	copy(it->check, sizeof(it->check), check);
	snprintf(it->msg, sizeof(it->msg), "%s (%s)", msg, imp_err_name(rc));
}

static bool is_revocation(const char *jws)
{
	json_t *hdr = NULL;
	const char *typ;
	bool rev;

	if (fmt_jws_peek_header(jws, &hdr) != IMP_OK)
		return false;
	typ = json_string_value(json_object_get(hdr, "typ"));
	rev = typ && strcmp(typ, FMT_REVOCATION_TYP) == 0;
	json_decref(hdr);
	return rev;
}

static void keep_facts(struct item *it, const struct fmt_record_facts *f)
{
	imp_hex_encode(f->jws_sha256, sizeof(f->jws_sha256), it->digest);
	it->sigs = f->signatures;
	copy(it->record_id, sizeof(it->record_id), f->record_id);
	copy(it->serial, sizeof(it->serial), f->serial);
	copy(it->uid, sizeof(it->uid), f->uid);
	copy(it->pubkey, sizeof(it->pubkey), f->pubkey);
	copy(it->cert_serial, sizeof(it->cert_serial), f->cert_serial);
	copy(it->cert_sha256, sizeof(it->cert_sha256), f->cert_sha256);
}

static void verify_item(struct audit *a, struct fmt_rv *rv, struct item *it)
{
	struct fmt_record_anchors anchors = { .signer = a->rec_pub, .devices = a->dev_store };
	struct fmt_record_facts facts;
	enum fmt_record_stage stage;
	uint8_t md[32];
	json_t *rec = NULL;
	imp_err rc;

	it->ok = true;
	it->kind = K_IDENTITY;
	/* Most records: the fast path accepts them; anything else is decided
	 * (and explained) by the reference below. */
	if (rv && fmt_rv_identity(rv, it->jws, it->id, &facts) == IMP_OK) {
		keep_facts(it, &facts);
		return;
	}
	if (is_revocation(it->jws)) {
		it->kind = K_REVOCATION;
		if (!rv || !fmt_rv_sha256(rv, it->jws, strlen(it->jws), md))
			SHA256((const uint8_t *)it->jws, strlen(it->jws), md);
		imp_hex_encode(md, sizeof(md), it->digest);
		rc = fmt_revocation_verify(it->jws, a->rev_pub, NULL, &rec);
		if (rc != IMP_OK) {
			bad(it, "signature", "revocation does not verify with the revocation key", rc);
			copy(it->record_id, sizeof(it->record_id), it->id);
			return;
		}
		it->sigs = 1;
		copy(it->record_id, sizeof(it->record_id), it->id);
		copy(it->serial, sizeof(it->serial),
		     json_string_value(json_object_get(rec, "serial")));
		/* uid: the identity record the revocation names, if any */
		copy(it->uid, sizeof(it->uid), json_string_value(json_object_get(rec, "record_id")));
		json_decref(rec);
		return;
	}
	IMP_DEBUG("record %s: not decided by the fast path, verifying it in full",
		  it->id ? it->id : "(no id)");
	memset(&facts, 0, sizeof(facts));
	rc = fmt_record_verify_full_ku(it->jws, &anchors, a->device_ku, it->id, &facts, &stage);
	keep_facts(it, &facts);
	switch (stage) {
	case FMT_RECORD_STAGE_OK:
		break;
	case FMT_RECORD_STAGE_RECORD:
		bad(it, "signature", "record does not verify with the record-signing key", rc);
		copy(it->record_id, sizeof(it->record_id), it->id);
		break;
	case FMT_RECORD_STAGE_ID:
		bad(it, "malformed", "the record's record_id is not the id it was stored under",
		    IMP_ERR_PROTOCOL);
		break;
	case FMT_RECORD_STAGE_CHAIN:
		bad(it, "device-chain", "device certificate does not chain to the device CA", rc);
		break;
	}
	if (stage == FMT_RECORD_STAGE_OK && facts.cert_not_after > (int64_t)a->devca_not_after)
		bad(it, "device-validity", "device certificate is valid after its device CA expires",
		    IMP_ERR_VERIFY);
}

/* A pool thread: verify items of each submitted batch until stopped. */
static void *verify_worker(void *arg)
{
	struct audit *a = arg;
	struct fmt_rv *rv = NULL;
	uint64_t seen = 0;

	if (a->fast && fmt_rv_new(a->fast, &rv) != IMP_OK)
		rv = NULL;
	for (;;) {
		struct batch *b;
		size_t i, k = 0;

		pthread_mutex_lock(&a->mu);
		while (!a->stop && (!a->cur || a->gen == seen))
			pthread_cond_wait(&a->cv_work, &a->mu);
		if (a->stop) {
			pthread_mutex_unlock(&a->mu);
			break;
		}
		b = a->cur;
		seen = a->gen;
		a->active++;
		pthread_mutex_unlock(&a->mu);
		while ((i = atomic_fetch_add(&b->next, 1)) < b->n) {
			verify_item(a, rv, &b->items[i]);
			k++;
		}
		pthread_mutex_lock(&a->mu);
		if (k && atomic_fetch_add(&b->done, k) + k == b->n)
			a->cur = NULL;
		a->active--;
		if (!a->cur && a->active == 0)
			pthread_cond_broadcast(&a->cv_done);
		pthread_mutex_unlock(&a->mu);
	}
	fmt_rv_free(rv);
	return NULL;
}

static void pool_start(struct audit *a)
{
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cv_work, NULL);
	pthread_cond_init(&a->cv_done, NULL);
	a->mu_ready = true;
	for (unsigned t = 0; t < a->threads && t < IMP_ARRAY_SIZE(a->th); t++)
		if (pthread_create(&a->th[a->nth], NULL, verify_worker, a) == 0)
			a->nth++;
}

static void pool_stop(struct audit *a)
{
	pthread_mutex_lock(&a->mu);
	a->stop = true;
	pthread_cond_broadcast(&a->cv_work);
	pthread_mutex_unlock(&a->mu);
	for (unsigned t = 0; t < a->nth; t++)
		pthread_join(a->th[t], NULL);
	a->mu_ready = false;
	pthread_mutex_destroy(&a->mu);
	pthread_cond_destroy(&a->cv_work);
	pthread_cond_destroy(&a->cv_done);
}

/* Wait until the pool is idle (the submitted batch is verified). */
static void pool_wait(struct audit *a)
{
	if (!a->mu_ready)
		return;
	pthread_mutex_lock(&a->mu);
	while (a->cur || a->active)
		pthread_cond_wait(&a->cv_done, &a->mu);
	pthread_mutex_unlock(&a->mu);
}

/* Hand b to the pool (which is idle); without a pool, verify it here. */
static void pool_submit(struct audit *a, struct batch *b)
{
	atomic_store(&b->next, 0);
	atomic_store(&b->done, 0);
	if (b->n == 0)
		return;
	if (a->nth == 0) {
		struct fmt_rv *rv = NULL;

		if (a->fast && fmt_rv_new(a->fast, &rv) != IMP_OK)
			rv = NULL;
		for (size_t i = 0; i < b->n; i++)
			verify_item(a, rv, &b->items[i]);
		fmt_rv_free(rv);
		return;
	}
	pthread_mutex_lock(&a->mu);
	a->cur = b;
	a->gen++;
	pthread_cond_broadcast(&a->cv_work);
	pthread_mutex_unlock(&a->mu);
}

/* --------------------------------------------------------------- the db */

static imp_err db_exec(struct audit *a, const char *sql)
{
	char *err = NULL;

	if (sqlite3_exec(a->db, sql, NULL, NULL, &err) != SQLITE_OK) {
		IMP_ERROR("audit database: %s", err ? err : sqlite3_errmsg(a->db));
		sqlite3_free(err);
		return IMP_ERR_IO;
	}
	return IMP_OK;
}

static imp_err db_open(struct audit *a)
{
	const char *tmp = a->o->tmp_dir ? a->o->tmp_dir : getenv("TMPDIR");
	int fd;

	snprintf(a->db_path, sizeof(a->db_path), "%s/imprint-audit.XXXXXX",
		 tmp && tmp[0] ? tmp : "/tmp");
	fd = mkstemp(a->db_path);
	if (fd < 0) {
		IMP_ERROR("cannot create a temporary database in %s", tmp ? tmp : "/tmp");
		a->db_path[0] = '\0';
		return IMP_ERR_IO;
	}
	close(fd);
	if (sqlite3_open_v2(a->db_path, &a->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK)
		return IMP_ERR_IO;
	return db_exec(a, "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
			  "PRAGMA cache_size=-4000; PRAGMA temp_store=FILE;"
			  "CREATE TABLE recs (record_id TEXT NOT NULL, digest TEXT NOT NULL,"
			  "  kind INTEGER NOT NULL, serial TEXT, uid TEXT, pubkey TEXT,"
			  "  cert_serial TEXT, cert_sha256 TEXT);"
			  "CREATE TABLE done (uid TEXT PRIMARY KEY, serial TEXT);"
			  "BEGIN;");
}

static void db_close(struct audit *a)
{
	sqlite3_finalize(a->ins);
	sqlite3_close(a->db);
	if (a->db_path[0]) {
		char side[4300];

		unlink(a->db_path);
		snprintf(side, sizeof(side), "%s-journal", a->db_path);
		unlink(side);
	}
}

static void bind_or_null(sqlite3_stmt *st, int i, const char *v)
{
	if (v && v[0])
		sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

/*
 * Keep one verified record: appended (rowid order), so that memory and time
 * do not depend on how many are there; copies and clashing ids are settled
 * once at the end (settle_ids).
 */
/* Step a bound INSERT into the audit's own database. */
static imp_err insert_done(struct audit *a, sqlite3_stmt *st)
{
	if (sqlite3_step(st) == SQLITE_DONE)
		return IMP_OK;
	IMP_ERROR("audit database: %s", sqlite3_errmsg(a->db));
	return IMP_ERR_IO;
}

static imp_err keep(struct audit *a, const struct item *it)
{
	if (!a->ins &&
	    sqlite3_prepare_v3(a->db,
			       "INSERT INTO recs (record_id, digest, kind, serial, uid, pubkey, "
			       "cert_serial, cert_sha256) VALUES (?,?,?,?,?,?,?,?)",
			       -1, SQLITE_PREPARE_PERSISTENT, &a->ins, NULL) != SQLITE_OK)
		return IMP_ERR_IO;
	sqlite3_reset(a->ins);
	sqlite3_bind_text(a->ins, 1, it->record_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(a->ins, 2, it->digest, -1, SQLITE_STATIC);
	sqlite3_bind_int(a->ins, 3, (int)it->kind);
	bind_or_null(a->ins, 4, it->serial);
	bind_or_null(a->ins, 5, it->uid);
	bind_or_null(a->ins, 6, it->pubkey);
	bind_or_null(a->ins, 7, it->cert_serial);
	bind_or_null(a->ins, 8, it->cert_sha256);
	return insert_done(a, a->ins);
}

/* An outbox row's columns against the signed record they carry. */
static void outbox_columns_check(struct audit *a, const struct item *it)
{
	const char *kind = it->kind == K_REVOCATION ? "revocation" : "identity";

	if (!it->col_kind)
		return;
	if (strcmp(it->col_kind, kind) != 0)
		finding(a, "outbox-column", it->record_id, it->serial, it->uid,
			"the outbox row says kind %s, its signed record is a%s %s record",
			it->col_kind, it->kind == K_IDENTITY ? "n" : "", kind);
	if (!it->col_serial || strcmp(it->col_serial, it->serial) != 0)
		finding(a, "outbox-column", it->record_id, it->serial, it->uid,
			"the outbox row's serial column (%s) differs from its signed record (%s)",
			it->col_serial ? it->col_serial : "null", it->serial);
	if (it->kind == K_IDENTITY && (!it->col_uid || strcmp(it->col_uid, it->uid) != 0))
		finding(a, "outbox-column", it->record_id, it->serial, it->uid,
			"the outbox row's uid column (%s) differs from its signed record's chip "
			"uid (%s)", it->col_uid ? it->col_uid : "null", it->uid);
}

/* Keep a verified batch (this thread) and empty it. */
static imp_err keep_batch(struct audit *a, struct batch *b)
{
	imp_err rc = IMP_OK;

	for (size_t i = 0; i < b->n; i++) {
		struct item *it = &b->items[i];

		a->sum->records++;
		a->sum->signatures += it->sigs;
		if (!it->ok) {
			a->sum->bad_records++;
			finding(a, it->check, it->record_id, it->serial, it->uid, "%s", it->msg);
		} else {
			outbox_columns_check(a, it);
			if (rc == IMP_OK)
				rc = keep(a, it);
		}
		free(it->id);
		free(it->jws);
		free(it->col_serial);
		free(it->col_uid);
		free(it->col_kind);
		memset(it, 0, sizeof(*it));
	}
	b->n = 0;
	return rc;
}

/*
 * The batch being filled is full (or the input ended): wait for the pool to
 * finish the other one, hand it this one, and keep the other one while the
 * pool works: reading, verifying and storing overlap.
 */
static imp_err flush(struct audit *a)
{
	struct batch *full = &a->b[a->fill], *other = &a->b[a->fill ^ 1u];
	imp_err rc = IMP_OK;

	pool_wait(a);
	pool_submit(a, full);
	a->busy[a->fill] = true;
	if (a->busy[a->fill ^ 1u]) {
		rc = keep_batch(a, other);
		a->busy[a->fill ^ 1u] = false;
	}
	a->fill ^= 1u;
	return rc;
}

/* At the end: verify and keep whatever is left. */
static imp_err drain(struct audit *a)
{
	imp_err rc = flush(a);
	imp_err rc2;

	pool_wait(a);
	rc2 = flush(a); /* keeps the last submitted batch (the filled one is empty) */
	pool_wait(a);
	return rc != IMP_OK ? rc : rc2;
}

static imp_err add(struct audit *a, const char *id, size_t id_len, const char *jws,
		   size_t jws_len)
{
	struct batch *b = &a->b[a->fill];
	struct item *it = &b->items[b->n];

	it->id = id ? strndup(id, id_len) : NULL;
	it->jws = strndup(jws, jws_len);
	if (!it->jws || (id && !it->id)) {
		free(it->id);
		free(it->jws);
		free(it->col_serial);
		free(it->col_uid);
		free(it->col_kind);
		it->id = it->jws = it->col_serial = it->col_uid = it->col_kind = NULL;
		return IMP_ERR_NOMEM;
	}
	b->n++;
	if (b->n == AUDIT_BATCH)
		return flush(a);
	return IMP_OK;
}

static int outbox_cb(void *arg, const struct jnl_outbox_row *r)
{
	struct audit *a = arg;
	struct batch *b = &a->b[a->fill];
	struct item *it = &b->items[b->n]; /* the slot add() fills */

	it->col_serial = r->serial ? strdup(r->serial) : NULL;
	it->col_uid = r->uid ? strdup(r->uid) : NULL;
	it->col_kind = strdup(r->kind ? r->kind : "");
	if (!it->col_kind || (r->serial && !it->col_serial) || (r->uid && !it->col_uid)) {
		a->rc = IMP_ERR_NOMEM;
		return 1;
	}
	a->rc = add(a, r->record_id, r->record_id ? strlen(r->record_id) : 0, r->jws,
		    strlen(r->jws));
	return a->rc != IMP_OK;
}

/*
 * The common line {"id":"ID","jws":"JWS"} without escapes, read without a
 * JSON parser (the same as json_loads would give); anything else: 0.
 */
static int plain_line(const char *p, const char **id, size_t *id_len, const char **jws,
		      size_t *jws_len)
{
	static const char a[] = "{\"id\":\"", b[] = "\",\"jws\":\"", c[] = "\"}";
	const char *q;

	if (strncmp(p, a, sizeof(a) - 1) != 0)
		return 0;
	p += sizeof(a) - 1;
	q = strpbrk(p, "\"\\");
	if (!q || *q != '"' || strncmp(q, b, sizeof(b) - 1) != 0)
		return 0;
	*id = p;
	*id_len = (size_t)(q - p);
	p = q + sizeof(b) - 1;
	q = strpbrk(p, "\"\\");
	if (!q || *q != '"' || strcmp(q, c) != 0)
		return 0;
	*jws = p;
	*jws_len = (size_t)(q - p);
	for (const char *k = *id; k < *id + *id_len; k++)
		if ((unsigned char)*k < 0x20)
			return 0;
	for (const char *k = *jws; k < *jws + *jws_len; k++)
		if ((unsigned char)*k < 0x20)
			return 0;
	return 1;
}

static imp_err add_from_source(void *ctx, const char *id, const char *jws)
{
	return add(ctx, id, id ? strlen(id) : 0, jws, strlen(jws));
}

static imp_err read_jsonl(struct audit *a, const char *path)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	uint64_t lineno = 0;
	imp_err rc = IMP_OK;

	if (!f) {
		IMP_ERROR("cannot open %s", path);
		return IMP_ERR_IO;
	}
	while (rc == IMP_OK && (len = getline(&line, &cap, f)) >= 0) {
		char *p = line;
		const char *id, *jws;
		size_t id_len, jws_len;

		lineno++;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r' ||
				   line[len - 1] == ' '))
			line[--len] = '\0';
		while (*p == ' ')
			p++;
		if (!*p)
			continue;
		if (plain_line(p, &id, &id_len, &jws, &jws_len)) {
			rc = add(a, id, id_len, jws, jws_len);
		} else if (*p == '{') {
			json_t *o = json_loads(p, 0, NULL);
			const char *js = json_string_value(json_object_get(o, "jws"));
			const char *ids = json_string_value(json_object_get(o, "id"));

			if (js)
				rc = add(a, ids, ids ? strlen(ids) : 0, js, strlen(js));
			else
				finding(a, "malformed", NULL, NULL, NULL,
					"%s:%llu: not a record line", path,
					(unsigned long long)lineno);
			json_decref(o);
		} else {
			rc = add(a, NULL, 0, p, strlen(p));
		}
	}
	free(line);
	fclose(f);
	return rc;
}

/* ---------------------------------------------------------- set checks */

/* Run sql and report each row (columns: record_id, serial, uid, extra). */
static imp_err report_rows(struct audit *a, const char *sql, const char *check,
			   const char *what)
{
	sqlite3_stmt *st = NULL;
	int src;

	if (sqlite3_prepare_v2(a->db, sql, -1, &st, NULL) != SQLITE_OK) {
		IMP_ERROR("audit database: %s", sqlite3_errmsg(a->db));
		return IMP_ERR_IO;
	}
	while ((src = sqlite3_step(st)) == SQLITE_ROW) {
		const char *c[4];

		for (int i = 0; i < 4; i++) {
			c[i] = (const char *)sqlite3_column_text(st, i);
			if (!c[i])
				c[i] = "";
		}
		finding(a, check, c[0], c[1], c[2], "%s%s%s", what, c[3][0] ? ": " : "", c[3]);
	}
	sqlite3_finalize(st);
	return src == SQLITE_DONE ? IMP_OK : IMP_ERR_IO;
}

/* Count rows of sql into *out. */
static imp_err count_rows(struct audit *a, const char *sql, uint64_t *out)
{
	sqlite3_stmt *st = NULL;
	imp_err rc = IMP_ERR_IO;

	if (sqlite3_prepare_v2(a->db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW) {
		*out = (uint64_t)sqlite3_column_int64(st, 0);
		rc = IMP_OK;
	}
	sqlite3_finalize(st);
	return rc;
}

/*
 * One record per id: the same record met again (both sources) counts once;
 * another record under a known id is a duplicate-record-id finding (one per
 * clashing copy); the first one read stays.
 */
static imp_err settle_ids(struct audit *a)
{
	imp_err rc = db_exec(a, "COMMIT; CREATE INDEX recs_id ON recs(record_id, digest);");

	if (rc == IMP_OK)
		rc = report_rows(a,
				 "SELECT r.record_id, r.serial, r.uid, '' FROM recs r JOIN "
				 "(SELECT record_id, min(rowid) AS first FROM recs GROUP BY record_id "
				 "HAVING count(*) > 1) d ON r.record_id = d.record_id JOIN recs f ON "
				 "f.rowid = d.first WHERE r.rowid <> d.first AND r.digest <> f.digest "
				 "ORDER BY r.rowid",
				 "duplicate-record-id", "the record id names two different records");
	if (rc == IMP_OK)
		rc = db_exec(a, "DELETE FROM recs WHERE rowid NOT IN (SELECT min(rowid) FROM recs "
				"GROUP BY record_id); DROP INDEX recs_id;");
	if (rc == IMP_OK)
		rc = count_rows(a, "SELECT count(*) FROM recs WHERE kind = 0", &a->sum->identities);
	if (rc == IMP_OK)
		rc = count_rows(a, "SELECT count(*) FROM recs WHERE kind = 1", &a->sum->revocations);
	return rc;
}

static imp_err check_duplicates(struct audit *a)
{
	static const struct {
		const char *col, *check, *what;
	} d[] = {
		{ "serial", "duplicate-serial", "serial in several identity records" },
		{ "uid", "duplicate-uid", "chip uid in several identity records" },
		{ "pubkey", "duplicate-public-key", "public key in several identity records" },
		{ "cert_serial", "duplicate-cert-serial",
		  "device certificate serial number in several records" },
	};
	imp_err rc = settle_ids(a);

	if (rc == IMP_OK)
		rc = db_exec(a, "CREATE INDEX recs_serial ON recs(kind, serial);"
				"CREATE INDEX recs_uid ON recs(kind, uid);"
				"CREATE INDEX recs_pubkey ON recs(kind, pubkey);"
				"CREATE INDEX recs_cert ON recs(kind, cert_serial);");

	for (size_t i = 0; rc == IMP_OK && i < IMP_ARRAY_SIZE(d); i++) {
		char sql[512];

		snprintf(sql, sizeof(sql),
			 "SELECT '', min(serial), min(uid), group_concat(record_id, ' ') FROM recs "
			 "WHERE kind = 0 AND %s IS NOT NULL GROUP BY %s HAVING count(*) > 1",
			 d[i].col, d[i].col);
		rc = report_rows(a, sql, d[i].check, d[i].what);
	}
	if (rc == IMP_OK)
		rc = report_rows(a,
				 "SELECT r.record_id, r.serial, r.uid, '' FROM recs r WHERE "
				 "r.kind = 1 AND NOT EXISTS (SELECT 1 FROM recs i WHERE i.kind = 0 "
				 "AND i.serial = r.serial)",
				 "revocation", "revocation of a serial without identity record");
	return rc;
}

static int done_cb(void *arg, const struct jnl_board *b)
{
	struct audit *a = arg;
	sqlite3_stmt *st = NULL;

	a->sum->boards_done++;
	if (sqlite3_prepare_v2(a->db, "INSERT OR IGNORE INTO done (uid, serial) VALUES (?, ?)", -1,
			       &st, NULL) != SQLITE_OK) {
		a->rc = IMP_ERR_IO;
		return 1;
	}
	sqlite3_bind_text(st, 1, b->uid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, b->serial, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		a->rc = IMP_ERR_IO;
	sqlite3_finalize(st);
	return a->rc != IMP_OK;
}

/* A quarantine event on a DONE board's UID: a board that presented it
 * contradicted the DONE row (a cloned UID or a replaced chip). */
static int quarantine_cb(void *arg, const struct jnl_event *ev)
{
	struct audit *a = arg;
	json_t *d = json_loads(ev->detail, 0, NULL);
	const char *state = json_string_value(json_object_get(d, "board_state"));

	if (state && strcmp(state, "DONE") == 0) {
		const char *fx = json_string_value(json_object_get(d, "fixture"));
		const char *lc = json_string_value(json_object_get(d, "lifecycle"));

		finding(a, "cloned-uid", NULL, ev->serial, ev->uid,
			"event %llu at %s: a board on fixture %s presented the uid of finished board "
			"%s, but %s (lifecycle %s, fuses 0x%llx, debug port %s): quarantined; keep "
			"it aside and check the genuine board",
			(unsigned long long)ev->seq, ev->ts, fx ? fx : "?", ev->serial ? ev->serial : "?",
			json_string_value(json_object_get(d, "reason")) ?
				json_string_value(json_object_get(d, "reason")) : "?",
			lc ? lc : "?",
			(unsigned long long)json_integer_value(json_object_get(d, "fuses")),
			json_is_true(json_object_get(d, "debug_open")) ? "open" : "closed");
	}
	json_decref(d);
	return 0;
}

/* A boards row that its events do not give (jnl_verify_boards). */
static void board_table_cb(void *arg, const char *uid, uint64_t last_seq, const char *what)
{
	(void)last_seq;
	finding(arg, "board-table", NULL, NULL, uid, "%s", what);
}

/* An outbox row that its events do not give (jnl_verify_outbox). */
static void outbox_table_cb(void *arg, const char *uid, uint64_t last_seq, const char *what)
{
	(void)last_seq;
	finding(arg, "outbox-table", NULL, NULL, uid, "%s", what);
}

static int rejected_locked_cb(void *arg, const struct jnl_rejected_locked *r)
{
	struct audit *a = arg;

	a->sum->rejected_locked++;
	if (a->o->rejected_locked)
		a->o->rejected_locked(a->o->arg, r);
	return 0;
}

static imp_err check_journal(struct audit *a)
{
	struct jnl_opts jo = { .read_only = true, .must_exist = true };
	struct jnl *j = NULL;
	struct jnl_verify_opts vo = { .pkey = a->rec_pub, .require_signed_head = true };
	struct jnl_verify_report rep = { 0 };
	struct jnl_info info;
	bool chain_ok;
	imp_err rc, anchor_rc = IMP_OK;

	rc = jnl_open(a->o->journal, &jo, &j);
	/* Every page, also of a file the open did not check again. */
	if (rc == IMP_OK) {
		rc = jnl_verify_pages(j);
		if (rc != IMP_OK)
			jnl_close(j);
	}
	if (rc != IMP_OK) {
		IMP_ERROR("audit: %s", jnl_last_error());
		return rc;
	}
	rc = jnl_verify_chain(j, &vo, &rep);
	a->sum->chain_checked = true;
	a->sum->journal_events = rep.events;
	a->sum->checkpoints = rep.checkpoints;
	if (rc == IMP_OK || rc == IMP_ERR_AUDIT) {
		char msg[JNL_MSG_MAX];
		enum jnl_anchor_seen seen = JNL_ANCHOR_NONE;
		imp_err arc = jnl_anchor_check_at(j, a->o->anchor, msg, sizeof(msg), &seen);

		a->sum->anchor_checked = seen == JNL_ANCHOR_COMPARED;
		a->sum->anchor_damaged = seen == JNL_ANCHOR_DAMAGED;
		if (a->o->anchor)
			snprintf(a->sum->anchor_path, sizeof(a->sum->anchor_path), "%s",
				 a->o->anchor);
		else
			jnl_anchor_path(a->o->journal, a->sum->anchor_path,
					sizeof(a->sum->anchor_path));
		if (arc == IMP_ERR_AUDIT) {
			finding(a, "journal-rollback", NULL, NULL, NULL, "%s", msg);
		} else if (arc != IMP_OK) {
			IMP_ERROR("audit: %s", jnl_last_error());
			anchor_rc = arc; /* after the chain's finding, if it has one */
		} else if (!a->sum->anchor_checked && a->o->require_anchor) {
			finding(a, "journal-anchor", NULL, NULL, NULL,
				"no anchor at %s to compare the journal with: an older copy of the "
				"journal would pass as current; give the station's anchor file "
				"with --anchor FILE", a->sum->anchor_path);
		}
	}
	chain_ok = rc == IMP_OK;
	if (rc == IMP_ERR_AUDIT) {
		finding(a, "journal-chain", NULL, NULL, NULL, "event %llu: %s",
			(unsigned long long)rep.bad_seq, rep.reason);
		rc = IMP_OK;
	}
	if (anchor_rc != IMP_OK) {
		chain_ok = false;
		rc = anchor_rc;
	}
	/* The table against events the chain proved (a broken chain is the
	 * finding; its events prove nothing to compare with). */
	if (rc == IMP_OK && chain_ok) {
		rc = jnl_verify_boards(j, board_table_cb, a, &a->sum->boards_compared);
		if (rc == IMP_ERR_AUDIT)
			rc = IMP_OK; /* each board that differs is a finding */
		if (rc == IMP_OK)
			rc = jnl_verify_outbox(j, outbox_table_cb, a, NULL);
		if (rc == IMP_ERR_AUDIT)
			rc = IMP_OK; /* each row that differs is a finding */
		if (rc == IMP_OK)
			rc = jnl_list_rejected_locked(j, rejected_locked_cb, a);
		if (rc != IMP_OK)
			IMP_ERROR("audit: %s", jnl_last_error());
	}
	if (rc == IMP_OK)
		rc = jnl_info(j, &info);
	if (rc == IMP_OK) {
		a->sum->quota = info.quota;
		a->sum->issued = info.issued;
		if (info.issued > info.quota)
			finding(a, "quota", NULL, NULL, NULL,
				"%llu serials issued, quota %llu",
				(unsigned long long)info.issued, (unsigned long long)info.quota);
		if (a->sum->identities > info.issued)
			finding(a, "quota", NULL, NULL, NULL,
				"%llu identity records, but only %llu serials issued",
				(unsigned long long)a->sum->identities,
				(unsigned long long)info.issued);
	}
	if (rc == IMP_OK) {
		a->rc = IMP_OK;
		rc = db_exec(a, "BEGIN;");
		if (rc == IMP_OK)
			rc = jnl_list_state(j, JNL_ST_DONE, done_cb, a);
		if (rc == IMP_OK)
			rc = jnl_iterate_kind(j, "quarantine", quarantine_cb, a);
		if (rc == IMP_OK)
			rc = a->rc;
		if (rc == IMP_OK)
			rc = db_exec(a, "COMMIT;");
	}
	jnl_close(j);
	if (rc != IMP_OK)
		return rc;
	rc = report_rows(a,
			 "SELECT '', d.serial, d.uid, '' FROM done d WHERE NOT EXISTS (SELECT 1 "
			 "FROM recs r WHERE r.kind = 0 AND r.uid = d.uid)",
			 "missing-record", "locked board (DONE) without a valid identity record");
	if (rc == IMP_OK)
		rc = report_rows(a,
				 "SELECT r.record_id, r.serial, r.uid, '' FROM recs r WHERE "
				 "r.kind = 0 AND NOT EXISTS (SELECT 1 FROM done d WHERE "
				 "d.uid = r.uid AND d.serial = r.serial)",
				 "orphan-record",
				 "identity record without a DONE board of that uid and serial");
	return rc;
}

/* The hex SHA-256 of a registry row's JWS (NULL: of nothing), as the
 * audit's digest of a record. */
static void jws_digest(const char *jws, char out[65])
{
	uint8_t md[32];

	SHA256((const uint8_t *)(jws ? jws : ""), jws ? strlen(jws) : 0, md);
	imp_hex_encode(md, sizeof(md), out);
}

static int registry_cb(void *arg, const struct reg_identity_row *row)
{
	struct audit *a = arg;
	sqlite3_stmt *st = a->reg_ins;
	char digest[65];

	/* The digest of the registry's own copy of the record, compared with
	 * the signed record of that id (registry-mismatch). */
	jws_digest(row->jws, digest);
	sqlite3_reset(st);
	sqlite3_bind_text(st, 1, row->record_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, row->serial, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, row->uid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, digest, -1, SQLITE_TRANSIENT);
	bind_or_null(st, 5, row->public_key);
	bind_or_null(st, 6, row->cert_sha256);
	bind_or_null(st, 7, row->revoked_at);
	a->rc = insert_done(a, st);
	if (a->rc != IMP_OK)
		return 1;
	return 0;
}

static int registry_rev_cb(void *arg, const struct reg_revocation_row *row)
{
	struct audit *a = arg;
	sqlite3_stmt *st = a->reg_ins;
	char digest[65];

	jws_digest(row->jws, digest);
	sqlite3_reset(st);
	sqlite3_bind_text(st, 1, row->record_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, row->serial, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, digest, -1, SQLITE_TRANSIENT);
	a->rc = insert_done(a, st);
	if (a->rc != IMP_OK)
		return 1;
	return 0;
}

/*
 * Revocations: what the registry shows revoked (an identity's revoked_at,
 * its revocations table) against the station's signed revocation records
 * (recs of kind 1), both ways.
 */
static imp_err check_registry_revocations(struct audit *a)
{
	imp_err rc;

	rc = report_rows(a,
			 "SELECT i.record_id, i.serial, i.uid, 'revoked_at ' || i.revoked_at FROM "
			 "reg i WHERE i.revoked_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM recs r "
			 "WHERE r.kind = 1 AND r.serial = i.serial)",
			 "registry-revocation",
			 "the registry shows this device revoked, but no signed revocation record "
			 "of the station revokes its serial");
	if (rc == IMP_OK)
		rc = report_rows(a,
				 "SELECT v.record_id, v.serial, '', CASE WHEN EXISTS (SELECT 1 FROM "
				 "recs r WHERE r.kind = 1 AND r.record_id = v.record_id) THEN 'its JWS "
				 "is not the signed revocation record' ELSE 'no signed revocation "
				 "record has its id' END FROM reg_rev v WHERE NOT EXISTS (SELECT 1 FROM "
				 "recs r WHERE r.kind = 1 AND r.record_id = v.record_id AND r.digest = "
				 "v.digest)",
				 "registry-revocation",
				 "the registry holds a revocation the station did not sign");
	if (rc == IMP_OK)
		rc = report_rows(a,
				 "SELECT r.record_id, r.serial, i.uid, CASE WHEN i.revoked_at IS NULL "
				 "THEN 'the device is not revoked there' ELSE 'its revocations table "
				 "lacks this record' END FROM recs r JOIN reg i ON i.serial = r.serial "
				 "WHERE r.kind = 1 AND (i.revoked_at IS NULL OR NOT EXISTS (SELECT 1 "
				 "FROM reg_rev v WHERE v.record_id = r.record_id))",
				 "registry-revocation",
				 "the station's signed revocation of this serial is not in the "
				 "registry; export it (imprint export)");
	return rc;
}

/*
 * The registry's identities, read through the registry's own reader
 * (registry/store.h, which checks its schema version) into the audit's
 * database, then compared with the boards that must be there.
 */
static imp_err check_registry(struct audit *a)
{
	struct reg_reader *r = NULL;
	/* The boards that must be there: the journal's DONE boards, else the records. */
	const char *set = a->o->journal ? "SELECT uid, serial FROM done"
					: "SELECT uid, serial FROM recs WHERE kind = 0";
	char q[1024];
	imp_err rc;

	rc = reg_reader_open(a->o->registry_db, &r);
	if (rc != IMP_OK)
		return rc;
	rc = db_exec(a, "CREATE TABLE reg (record_id TEXT, serial TEXT, uid TEXT, digest TEXT, "
			"pubkey TEXT, cert_sha256 TEXT, revoked_at TEXT);"
			"CREATE TABLE reg_rev (record_id TEXT, serial TEXT, digest TEXT); BEGIN;");
	if (rc == IMP_OK &&
	    sqlite3_prepare_v2(a->db,
			       "INSERT INTO reg (record_id, serial, uid, digest, pubkey, cert_sha256, "
			       "revoked_at) VALUES (?,?,?,?,?,?,?)",
			       -1, &a->reg_ins, NULL) != SQLITE_OK)
		rc = IMP_ERR_IO;
	if (rc == IMP_OK) {
		a->rc = IMP_OK;
		rc = reg_reader_identities(r, registry_cb, a);
		if (rc == IMP_OK)
			rc = a->rc;
	}
	sqlite3_finalize(a->reg_ins);
	a->reg_ins = NULL;
	if (rc == IMP_OK &&
	    sqlite3_prepare_v2(a->db, "INSERT INTO reg_rev (record_id, serial, digest) VALUES (?,?,?)",
			       -1, &a->reg_ins, NULL) != SQLITE_OK)
		rc = IMP_ERR_IO;
	if (rc == IMP_OK) {
		a->rc = IMP_OK;
		rc = reg_reader_revocations(r, registry_rev_cb, a);
		if (rc == IMP_OK)
			rc = a->rc;
	}
	sqlite3_finalize(a->reg_ins);
	a->reg_ins = NULL;
	reg_reader_close(r);
	if (rc == IMP_OK)
		rc = db_exec(a, "COMMIT; CREATE INDEX reg_board ON reg(uid, serial);"
				"CREATE INDEX reg_serial ON reg(serial);"
				"CREATE INDEX reg_rev_id ON reg_rev(record_id);");
	if (rc != IMP_OK)
		return rc;
	snprintf(q, sizeof(q),
		 "SELECT '', b.serial, b.uid, '' FROM (%s) b WHERE NOT EXISTS (SELECT 1 FROM "
		 "reg i WHERE i.uid = b.uid AND i.serial = b.serial)",
		 set);
	rc = report_rows(a, q, "registry-missing", "locked board without a record in the registry");
	snprintf(q, sizeof(q),
		 "SELECT i.record_id, i.serial, i.uid, '' FROM reg i WHERE NOT EXISTS "
		 "(SELECT 1 FROM (%s) b WHERE b.uid = i.uid AND b.serial = i.serial)",
		 set);
	if (rc == IMP_OK)
		rc = report_rows(a, q, "registry-orphan",
				 "registry record that matches no locked board");
	if (rc == IMP_OK)
		rc = report_rows(a,
				 "SELECT i.record_id, i.serial, i.uid, r.record_id FROM "
				 "reg i JOIN recs r ON r.kind = 0 AND r.uid = i.uid "
				 "WHERE r.record_id <> i.record_id",
				 "registry-orphan", "the registry holds another record for this board");
	/* A registry row under a known record id must be that record: its JWS
	 * byte for byte, and the columns a backend looks devices up by (the
	 * public key, the certificate fingerprint) must be the record's. */
	if (rc == IMP_OK)
		rc = report_rows(a,
				 "SELECT i.record_id, i.serial, i.uid, CASE WHEN i.digest <> r.digest "
				 "THEN 'its JWS is not the signed record' ELSE 'its public_key or "
				 "cert_sha256 column differs from the record' END FROM reg i JOIN "
				 "recs r ON r.kind = 0 AND r.record_id = i.record_id WHERE i.digest <> "
				 "r.digest OR ifnull(i.pubkey, '') <> ifnull(r.pubkey, '') OR "
				 "ifnull(i.cert_sha256, '') <> ifnull(r.cert_sha256, '')",
				 "registry-mismatch",
				 "the registry's copy of this record differs from the signed record");
	if (rc == IMP_OK)
		rc = check_registry_revocations(a);
	return rc;
}

imp_err aud_run(const struct aud_opts *o, struct aud_summary *sum)
{
	struct audit a = { .o = o, .sum = sum };
	double t0 = imp_now_s();
	imp_err rc;

	memset(sum, 0, sizeof(*sum));
	if (!o->trust_dir || (!o->journal && !o->records && !o->source)) {
		IMP_ERROR("audit needs the trust folder and a journal or a records file");
		return IMP_ERR_USAGE;
	}
	if ((o->anchor || o->require_anchor) && !o->journal) {
		IMP_ERROR("audit: an anchor is compared with a journal: give --journal FILE");
		return IMP_ERR_USAGE;
	}
	/* Before any record is verified: the anchor named is one to read. */
	if (o->anchor) {
		imp_err arc = jnl_anchor_named_usable(o->anchor);

		if (arc != IMP_OK) {
			IMP_ERROR("audit: %s", jnl_last_error());
			return arc;
		}
	}
	a.threads = o->threads ? o->threads : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	if (a.threads < 1)
		a.threads = 1;
	a.b[0].items = calloc(AUDIT_BATCH, sizeof(*a.b[0].items));
	a.b[1].items = calloc(AUDIT_BATCH, sizeof(*a.b[1].items));
	if (!a.b[0].items || !a.b[1].items) {
		free(a.b[0].items);
		free(a.b[1].items);
		return IMP_ERR_NOMEM;
	}
	rc = load_trust(&a);
	if (rc == IMP_OK)
		pool_start(&a);
	if (rc == IMP_OK)
		rc = db_open(&a);
	if (rc == IMP_OK && o->journal) {
		a.rc = IMP_OK;
		rc = jnl_outbox_scan(o->journal, JNL_OUTBOX_ALL, outbox_cb, &a);
		if (rc == IMP_OK)
			rc = a.rc;
	}
	if (rc == IMP_OK && o->records)
		rc = read_jsonl(&a, o->records);
	if (rc == IMP_OK && o->source)
		rc = o->source(o->source_arg, add_from_source, &a);
	if (rc == IMP_OK)
		rc = drain(&a);
	pool_wait(&a);
	if (a.mu_ready)
		pool_stop(&a);
	sum->verify_seconds = imp_now_s() - t0;
	if (rc == IMP_OK)
		rc = check_duplicates(&a);
	if (rc == IMP_OK && o->journal)
		rc = check_journal(&a);
	if (rc == IMP_OK && o->registry_db)
		rc = check_registry(&a);
	for (int k = 0; k < 2; k++) {
		for (size_t i = 0; i < a.b[k].n; i++) {
			free(a.b[k].items[i].id);
			free(a.b[k].items[i].jws);
		}
		free(a.b[k].items);
	}
	fmt_rv_trust_free(a.fast);
	db_close(&a);
	EVP_PKEY_free(a.rec_pub);
	EVP_PKEY_free(a.rev_pub);
	X509_STORE_free(a.dev_store);
	sum->seconds = imp_now_s() - t0;
	if (rc == IMP_OK && sum->findings > 0)
		rc = IMP_ERR_AUDIT;
	return rc;
}
