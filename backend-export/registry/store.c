/*
 * The registry's store: every record is verified (JWS against the
 * organisation bundle, device certificate chain to the root) before it is
 * kept in SQLite; duplicates of serial, chip UID or public key under another
 * record id are refused; the same record again is answered as such
 * (idempotent); revocations are verified with the pinned revocation key and
 * applied.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sqlite3.h>

#include "formats/base64.h"
#include "formats/certprofile.h"
#include "formats/jws.h"
#include "formats/record.h"
#include "formats/record_verify.h"
#include "formats/x509.h"
#include "imprint/log.h"
#include "imprint/util.h"
#include "registry.h"
#include "registry/store.h"

static imp_err db_fail(sqlite3 *db, const char *what)
{
	IMP_ERROR("registry database: %s: %s", what, sqlite3_errmsg(db));
	return IMP_ERR_IO;
}

static imp_err load_cert_b64(const char *path, char **b64, EVP_PKEY **pub)
{
	X509 *c = NULL;
	uint8_t *der = NULL;
	size_t n = 0;
	imp_err rc = fmt_cert_load(path, &c);

	if (rc == IMP_OK)
		rc = fmt_cert_to_der(c, &der, &n);
	if (rc == IMP_OK) {
		*b64 = fmt_b64_encode(der, n);
		*pub = X509_get_pubkey(c);
		if (!*b64 || !*pub)
			rc = IMP_ERR_NOMEM;
	}
	free(der);
	X509_free(c);
	return rc;
}

/*
 * The fast path's trust (formats/record_verify.h) from the bundle: the one record
 * signer (not a CA, digitalSignature, no extKeyUsage, chains to the bundle,
 * not the revocation certificate) and the CAs. With no such single signer
 * every record takes the reference path.
 */
static void fast_trust(struct reg_store *s, const char *bundle)
{
	BIO *b = BIO_new_file(bundle, "r");
	X509 *c, *cas[8], *signer = NULL;
	char *known[16];
	size_t ncas = 0, nsigners = 0, nknown = 0;
	char *x5c0 = NULL;

	while (b && (c = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		uint32_t f = X509_get_extension_flags(c);
		uint8_t *der = NULL;
		size_t n = 0;
		char *b64 = NULL;

		if (fmt_cert_to_der(c, &der, &n) == IMP_OK)
			b64 = fmt_b64_encode(der, n);
		free(der);
		if (b64 && nknown < IMP_ARRAY_SIZE(known))
			known[nknown++] = strdup(b64);
		if ((f & EXFLAG_CA) && ncas < IMP_ARRAY_SIZE(cas)) {
			cas[ncas++] = c;
			free(b64);
			continue;
		}
		if (b64 && !(f & EXFLAG_XKUSAGE) && strcmp(b64, s->revocation_x5c) != 0 &&
		    fmt_cert_verify_chain(s->trust, c, NULL, FMT_KU_DIGITAL_SIGNATURE) == IMP_OK) {
			nsigners++;
			X509_free(signer);
			free(x5c0);
			signer = c;
			x5c0 = b64;
			c = NULL;
			b64 = NULL;
		}
		free(b64);
		X509_free(c);
	}
	ERR_clear_error();
	BIO_free(b);
	if (nsigners == 1 && X509_get0_pubkey(signer) &&
	    fmt_rv_trust_new(X509_get0_pubkey(signer), x5c0, cas, ncas, s->trust, &s->fast) ==
		    IMP_OK)
		for (size_t i = 0; i < nknown; i++)
			if (known[i])
				fmt_rv_trust_allow_x5c(s->fast, known[i]);
	if (!s->fast)
		IMP_WARN("registry: no single record-signing certificate in %s: every record "
			 "is verified in full (slower)", bundle);
	X509_free(signer);
	free(x5c0);
	for (size_t i = 0; i < nknown; i++)
		free(known[i]);
	for (size_t i = 0; i < ncas; i++)
		X509_free(cas[i]);
}

imp_err reg_store_open(struct reg_store *s, const char *db_path, const char *trust_dir)
{
	sqlite3 *db = NULL;
	char path[4200];
	imp_err rc;

	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	s->trust = X509_STORE_new();
	if (!s->trust)
		return IMP_ERR_NOMEM;
	snprintf(path, sizeof(path), "%s/bundle.pem", trust_dir);
	rc = fmt_store_add_pem(s->trust, path);
	if (rc != IMP_OK) {
		IMP_ERROR("cannot load the trust bundle %s", path);
		return rc;
	}
	snprintf(path, sizeof(path), "%s/revocation.pem", trust_dir);
	rc = load_cert_b64(path, &s->revocation_x5c, &s->revocation_pub);
	if (rc != IMP_OK) {
		IMP_ERROR("cannot load the revocation certificate %s", path);
		return rc;
	}
	/* Which keyUsage the hierarchy's device profile gives (the default's
	 * without a note). */
	rc = fmt_certprof_trust_ku(trust_dir, &s->device_ku);
	if (rc != IMP_OK)
		return rc;
	snprintf(path, sizeof(path), "%s/bundle.pem", trust_dir);
	fast_trust(s, path);
	if (s->fast)
		fmt_rv_trust_set_device_ku(s->fast, s->device_ku);
	if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				  SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK) {
		rc = db_fail(db, "open");
		sqlite3_close(db);
		return rc;
	}
	s->db = db;
	sqlite3_busy_timeout(db, 10000);
	if (sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", NULL, NULL,
			 NULL) != SQLITE_OK)
		return db_fail(db, "open");
	return reg_schema_apply(db);
}

void reg_store_close(struct reg_store *s)
{
	for (size_t i = 0; i < IMP_ARRAY_SIZE(s->st); i++)
		sqlite3_finalize(s->st[i]);
	fmt_rv_trust_free(s->fast);
	sqlite3_close(s->db);
	X509_STORE_free(s->trust);
	free(s->revocation_x5c);
	EVP_PKEY_free(s->revocation_pub);
	pthread_mutex_destroy(&s->lock);
	memset(s, 0, sizeof(*s));
}

static void reject(struct reg_item *it, int code, const char *fmt, const char *arg)
{
	it->verified = false;
	it->res.status = REG_REJECTED;
	it->res.code = code;
	snprintf(it->res.reason, sizeof(it->res.reason), fmt, arg);
}

static void copy(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src ? src : "");
}

/* The protected header's x5c[0] is the revocation certificate. */
static bool signed_by_revocation_key(struct reg_store *s, const char *jws)
{
	json_t *hdr = NULL;
	const char *x5c0;
	bool yes;

	if (fmt_jws_peek_header(jws, &hdr) != IMP_OK)
		return false;
	x5c0 = json_string_value(json_array_get(json_object_get(hdr, "x5c"), 0));
	yes = x5c0 && strcmp(x5c0, s->revocation_x5c) == 0;
	json_decref(hdr);
	return yes;
}

static void keep_facts(struct reg_item *it, const struct fmt_record_facts *f)
{
	copy(it->serial, sizeof(it->serial), f->serial);
	copy(it->uid, sizeof(it->uid), f->uid);
	copy(it->cert_sha256, sizeof(it->cert_sha256), f->cert_sha256);
	copy(it->public_key, sizeof(it->public_key), f->pubkey);
}

static void verify_identity(struct reg_store *s, struct fmt_rv *rv, struct reg_item *it)
{
	struct fmt_record_anchors anchors = { .signers = s->trust, .devices = s->trust };
	struct fmt_record_facts facts;
	enum fmt_record_stage stage;
	imp_err rc;

	/* The fast path accepts most records; the reference decides (and
	 * explains) everything else. */
	if (rv && fmt_rv_identity(rv, it->jws, it->id, &facts) == IMP_OK) {
		keep_facts(it, &facts);
		it->verified = true;
		return;
	}
	IMP_DEBUG("record %s: not decided by the fast path, verifying it in full", it->id);
	if (signed_by_revocation_key(s, it->jws)) {
		reject(it, 422, "%s", "identity record signed with the revocation key");
		return;
	}
	rc = fmt_record_verify_full_ku(it->jws, &anchors, s->device_ku, it->id, &facts, &stage);
	switch (stage) {
	case FMT_RECORD_STAGE_OK:
		keep_facts(it, &facts);
		it->verified = true;
		return;
	case FMT_RECORD_STAGE_RECORD:
		reject(it, 422, "record signature or content does not verify (%s)",
		       imp_err_name(rc));
		return;
	case FMT_RECORD_STAGE_ID:
		reject(it, 422, "%s", "id does not match the record's record_id");
		return;
	case FMT_RECORD_STAGE_CHAIN:
		reject(it, 422, "device certificate does not chain to the device CA (%s)",
		       imp_err_name(rc));
		return;
	}
}

static void verify_revocation(struct reg_store *s, struct reg_item *it)
{
	json_t *rec = NULL;
	imp_err rc = fmt_revocation_verify(it->jws, s->revocation_pub, NULL, &rec);

	if (rc != IMP_OK) {
		reject(it, 422, "revocation does not verify with the revocation key (%s)",
		       imp_err_name(rc));
		return;
	}
	copy(it->serial, sizeof(it->serial), json_string_value(json_object_get(rec, "serial")));
	copy(it->reason_text, sizeof(it->reason_text),
	     json_string_value(json_object_get(rec, "reason")));
	/* uid carries the revoked record id, if the revocation names one. */
	copy(it->uid, sizeof(it->uid), json_string_value(json_object_get(rec, "record_id")));
	it->verified = true;
	json_decref(rec);
}

void reg_verify(struct reg_store *s, struct fmt_rv *rv, struct reg_item *it)
{
	json_t *hdr = NULL;
	const char *typ;

	memset(&it->res, 0, sizeof(it->res));
	it->verified = false;
	if (fmt_jws_peek_header(it->jws, &hdr) != IMP_OK) {
		reject(it, 400, "%s", "not a compact JWS");
		return;
	}
	typ = json_string_value(json_object_get(hdr, "typ"));
	it->revocation = typ && strcmp(typ, FMT_REVOCATION_TYP) == 0;
	json_decref(hdr);
	if (it->revocation)
		verify_revocation(s, it);
	else
		verify_identity(s, rv, it);
}

/* ------------------------------------------------------------ storing */

/* The statements kept prepared (reg_store.st), by index. */
static const char *const stmt_sql[] = {
	"SELECT jws FROM identities WHERE record_id = ?",
	"SELECT record_id FROM identities WHERE serial = ?",
	"SELECT record_id FROM identities WHERE uid = ?",
	"SELECT record_id FROM identities WHERE public_key = ?",
	"INSERT INTO identities (record_id, serial, uid, public_key, cert_sha256, jws, "
	"received_at) VALUES (?,?,?,?,?,?,?)",
	"SELECT jws FROM revocations WHERE record_id = ?",
};
_Static_assert(sizeof(stmt_sql) / sizeof(stmt_sql[0]) == 6, "reg_store.st size");

/* sql's statement, prepared once, reset (under s->lock); NULL on error. */
static sqlite3_stmt *stmt(struct reg_store *s, const char *sql)
{
	for (size_t i = 0; i < IMP_ARRAY_SIZE(stmt_sql); i++) {
		if (stmt_sql[i] != sql)
			continue;
		if (!s->st[i] &&
		    sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
				       (sqlite3_stmt **)&s->st[i], NULL) != SQLITE_OK)
			return NULL;
		sqlite3_reset(s->st[i]);
		sqlite3_clear_bindings(s->st[i]);
		return s->st[i];
	}
	return NULL;
}

/* First column of the first row of sql bound with a, or NULL (malloc'ed). */
static char *query1(struct reg_store *s, sqlite3 *db, const char *sql, const char *a, bool *err)
{
	sqlite3_stmt *st = NULL, *mine = NULL;
	char *out = NULL;
	int src;

	st = s ? stmt(s, sql) : NULL;
	if (!st) {
		if (sqlite3_prepare_v2(db, sql, -1, &mine, NULL) != SQLITE_OK) {
			*err = true;
			return NULL;
		}
		st = mine;
	}
	sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
	src = sqlite3_step(st);
	if (src == SQLITE_ROW)
		out = strdup((const char *)sqlite3_column_text(st, 0) ?
			     (const char *)sqlite3_column_text(st, 0) : "");
	else if (src != SQLITE_DONE)
		*err = true;
	if (mine)
		sqlite3_finalize(mine);
	else
		sqlite3_reset(st);
	return out;
}

static bool same_or_conflict(struct reg_item *it, char *stored_jws)
{
	if (!stored_jws)
		return false;
	if (strcmp(stored_jws, it->jws) == 0) {
		it->res.status = REG_DUPLICATE_SAME;
		it->res.code = 200;
		copy(it->res.reason, sizeof(it->res.reason), "already stored");
	} else {
		reject(it, 409, "record id %s already stored with other content", it->id);
	}
	free(stored_jws);
	return true;
}

static imp_err store_identity(struct reg_store *s, struct reg_item *it, const char *now)
{
	sqlite3 *db = s->db;
	const struct {
		const char *sql, *what;
	} uniq[] = {
		{ stmt_sql[1], "serial" },
		{ stmt_sql[2], "chip uid" },
		{ stmt_sql[3], "public key" },
	};
	const char *vals[] = { it->serial, it->uid, it->public_key };
	sqlite3_stmt *st = NULL;
	bool err = false;

	if (same_or_conflict(it, query1(s, db, stmt_sql[0], it->id, &err)))
		return IMP_OK;
	for (size_t i = 0; i < IMP_ARRAY_SIZE(uniq) && !err; i++) {
		char *other;

		if (!vals[i][0])
			continue;
		other = query1(s, db, uniq[i].sql, vals[i], &err);
		if (other) {
			char msg[REG_REASON_MAX];

			snprintf(msg, sizeof(msg), "duplicate %s: already registered by record %s",
				 uniq[i].what, other);
			free(other);
			reject(it, 409, "%s", msg);
			return IMP_OK;
		}
	}
	if (err)
		return db_fail(db, "lookup");
	st = stmt(s, stmt_sql[4]);
	if (!st)
		return db_fail(db, "insert");
	sqlite3_bind_text(st, 1, it->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, it->serial, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, it->uid, -1, SQLITE_STATIC);
	if (it->public_key[0])
		sqlite3_bind_text(st, 4, it->public_key, -1, SQLITE_STATIC);
	if (it->cert_sha256[0])
		sqlite3_bind_text(st, 5, it->cert_sha256, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, it->jws, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, now, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		sqlite3_reset(st);
		return db_fail(db, "insert");
	}
	sqlite3_reset(st);
	it->res.status = REG_ACCEPTED;
	it->res.code = 201;
	return IMP_OK;
}

static imp_err store_revocation(struct reg_store *s, struct reg_item *it, const char *now)
{
	sqlite3 *db = s->db;
	sqlite3_stmt *st = NULL;
	bool err = false;
	char *target;

	if (same_or_conflict(it, query1(s, db, stmt_sql[5], it->id, &err)))
		return IMP_OK;
	if (err)
		return db_fail(db, "lookup");
	target = query1(s, db, stmt_sql[1], it->serial, &err);
	if (err) {
		free(target);
		return db_fail(db, "lookup");
	}
	if (!target) {
		reject(it, 404, "revocation of unknown serial %s", it->serial);
		return IMP_OK;
	}
	if (it->uid[0] && strcmp(target, it->uid) != 0) {
		free(target);
		reject(it, 409, "revocation names record %s, which is not the serial's record",
		       it->uid);
		return IMP_OK;
	}
	free(target);
	if (sqlite3_prepare_v2(db,
			       "INSERT INTO revocations (record_id, serial, reason, jws, received_at) "
			       "VALUES (?,?,?,?,?)",
			       -1, &st, NULL) != SQLITE_OK)
		return db_fail(db, "insert");
	sqlite3_bind_text(st, 1, it->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, it->serial, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, it->reason_text, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, it->jws, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, now, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		sqlite3_finalize(st);
		return db_fail(db, "insert");
	}
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(db,
			       "UPDATE identities SET revoked_at = ?, revocation_reason = ?, "
			       "revocation_id = ? WHERE serial = ? AND revoked_at IS NULL",
			       -1, &st, NULL) != SQLITE_OK)
		return db_fail(db, "update");
	sqlite3_bind_text(st, 1, now, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, it->reason_text, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, it->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, it->serial, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		sqlite3_finalize(st);
		return db_fail(db, "update");
	}
	sqlite3_finalize(st);
	it->res.status = REG_ACCEPTED;
	it->res.code = 201;
	return IMP_OK;
}

imp_err reg_store_batch(struct reg_store *s, struct reg_item *items, size_t n,
			void (*wait)(void *arg, size_t i), void *arg)
{
	sqlite3 *db = s->db;
	char now[32];
	imp_err rc = IMP_OK;

	imp_rfc3339_now(now);
	pthread_mutex_lock(&s->lock);
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		rc = db_fail(db, "begin");
		goto out;
	}
	for (size_t i = 0; i < n && rc == IMP_OK; i++) {
		if (wait)
			wait(arg, i);
		if (!items[i].verified)
			continue;
		if (items[i].revocation)
			rc = store_revocation(s, &items[i], now);
		else
			rc = store_identity(s, &items[i], now);
	}
	if (rc == IMP_OK && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		rc = db_fail(db, "commit");
	if (rc != IMP_OK)
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
out:
	pthread_mutex_unlock(&s->lock);
	return rc;
}

imp_err reg_lookup(struct reg_store *s, const char *serial, json_t **out)
{
	sqlite3 *db = s->db;
	sqlite3_stmt *st = NULL;
	imp_err rc = IMP_ERR_NOT_FOUND;

	*out = NULL;
	pthread_mutex_lock(&s->lock);
	if (sqlite3_prepare_v2(db,
			       "SELECT record_id, serial, uid, jws, received_at, revoked_at, "
			       "revocation_reason, revocation_id FROM identities WHERE serial = ?",
			       -1, &st, NULL) != SQLITE_OK) {
		rc = db_fail(db, "lookup");
		goto out;
	}
	sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		const char *revoked = (const char *)sqlite3_column_text(st, 5);

		*out = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b}", "id",
				 (const char *)sqlite3_column_text(st, 0), "serial",
				 (const char *)sqlite3_column_text(st, 1), "chip_uid",
				 (const char *)sqlite3_column_text(st, 2), "jws",
				 (const char *)sqlite3_column_text(st, 3), "received_at",
				 (const char *)sqlite3_column_text(st, 4), "revoked", revoked != NULL);
		if (*out && revoked)
			json_object_set_new(
				*out, "revocation",
				json_pack("{s:s, s:s, s:s}", "revoked_at", revoked, "reason",
					  (const char *)sqlite3_column_text(st, 6), "id",
					  (const char *)sqlite3_column_text(st, 7)));
		rc = *out ? IMP_OK : IMP_ERR_NOMEM;
	}
out:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->lock);
	return rc;
}
