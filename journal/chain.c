/*
 * Journal: the hash-chained event log, signed checkpoints, verification and
 * event iteration. The bytes hashed and signed are specified in
 * docs/JOURNAL.md; any change here is a new format version.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include "imprint/log.h"
#include "imprint/util.h"
#include "journal_int.h"

static void put_be64(uint8_t out[8], uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		out[i] = (uint8_t)v;
		v >>= 8;
	}
}

static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256_fetched;

static void sha256_fetch(void)
{
	sha256_fetched = EVP_MD_fetch(NULL, "SHA256", NULL);
}

const EVP_MD *jsha256(void)
{
	pthread_once(&sha256_once, sha256_fetch);
	return sha256_fetched ? sha256_fetched : EVP_sha256();
}

/* Length-prefixed field: u32 BE length then the bytes; NULL is 0xFFFFFFFF. */
static size_t put_field(uint8_t *out, const char *s, size_t n)
{
	uint32_t len = s ? (uint32_t)n : UINT32_MAX;

	out[0] = (uint8_t)(len >> 24);
	out[1] = (uint8_t)(len >> 16);
	out[2] = (uint8_t)(len >> 8);
	out[3] = (uint8_t)len;
	if (s)
		memcpy(out + 4, s, n);
	return 4 + (s ? n : 0);
}

#define EVENT_MSG_STACK 2048

/*
 * hash = SHA-256(prev_hash (32 raw bytes) || "imprint-journal-event-v1" ||
 *        seq (u64 BE) || mono_ns (u64 BE) || field(ts) || field(uid) ||
 *        field(serial) || field(kind) || field(detail))
 * The message is laid out in one buffer and hashed in one call.
 */
static imp_err event_hash(const char *prev_hex, uint64_t seq, uint64_t mono_ns, const char *ts,
			  const char *uid, const char *serial, const char *kind,
			  const char *detail, char out_hex[JNL_HASH_HEX_LEN + 1])
{
	const char *fields[] = { ts, uid, serial, kind, detail };
	size_t lens[IMP_ARRAY_SIZE(fields)];
	size_t tag = sizeof(J_EVENT_TAG) - 1, total = 32 + tag + 16, o;
	uint8_t stack_msg[EVENT_MSG_STACK], *msg = stack_msg, md[32];
	unsigned int mdlen = 0;
	imp_err rc = IMP_ERR_CRYPTO;

	for (size_t i = 0; i < IMP_ARRAY_SIZE(fields); i++) {
		lens[i] = fields[i] ? strlen(fields[i]) : 0;
		if (lens[i] >= UINT32_MAX)
			return IMP_ERR_INTERNAL;
		total += 4 + lens[i];
	}
	if (total > sizeof(stack_msg)) {
		msg = malloc(total);
		if (!msg)
			return IMP_ERR_NOMEM;
	}
	if (imp_hex_decode(prev_hex, msg, 32) != IMP_OK) {
		rc = IMP_ERR_VERIFY;
		goto cleanup;
	}
	o = 32;
	memcpy(msg + o, J_EVENT_TAG, tag);
	o += tag;
	put_be64(msg + o, seq);
	put_be64(msg + o + 8, mono_ns);
	o += 16;
	for (size_t i = 0; i < IMP_ARRAY_SIZE(fields); i++)
		o += put_field(msg + o, fields[i], lens[i]);
	if (!EVP_Digest(msg, o, md, &mdlen, jsha256(), NULL) || mdlen != 32)
		goto cleanup;
	imp_hex_encode(md, sizeof(md), out_hex);
	rc = IMP_OK;
cleanup:
	if (msg != stack_msg)
		free(msg);
	return rc;
}

/* SHA-256("imprint-journal-checkpoint-v1" || seq (u64 BE) || head (32 raw)). */
static imp_err checkpoint_digest(uint64_t seq, const char *head_hex, uint8_t digest[32])
{
	uint8_t msg[sizeof(J_CHECKPOINT_TAG) - 1 + 8 + 32];
	size_t tag = sizeof(J_CHECKPOINT_TAG) - 1;
	unsigned int mdlen = 0;

	_Static_assert(sizeof(msg) == 69, "checkpoint message is 29 + 8 + 32 bytes");
	memcpy(msg, J_CHECKPOINT_TAG, tag);
	put_be64(msg + tag, seq);
	if (imp_hex_decode(head_hex, msg + tag + 8, 32) != IMP_OK)
		return IMP_ERR_VERIFY;
	if (!EVP_Digest(msg, sizeof(msg), digest, &mdlen, jsha256(), NULL) || mdlen != 32)
		return IMP_ERR_CRYPTO;
	return IMP_OK;
}

/* The last event (0 and 64 zeros if none), inside a transaction. */
static imp_err chain_head(sqlite3 *db, uint64_t *seq, char hash[JNL_HASH_HEX_LEN + 1],
			  char kind[32])
{
	sqlite3_stmt *st = NULL;
	imp_err rc;

	rc = jdb_stmt(db, "SELECT seq, hash, kind FROM events ORDER BY seq DESC LIMIT 1", &st);
	if (rc)
		return rc;
	rc = jdb_step_row(db, st);
	if (rc == IMP_ERR_NOT_FOUND) {
		*seq = 0;
		memcpy(hash, J_ZERO_HASH, JNL_HASH_HEX_LEN + 1);
		if (kind)
			kind[0] = '\0';
		rc = IMP_OK;
	} else if (rc == IMP_OK) {
		const char *h = (const char *)sqlite3_column_text(st, 1);
		const char *k = (const char *)sqlite3_column_text(st, 2);

		*seq = (uint64_t)sqlite3_column_int64(st, 0);
		if (!h || strlen(h) != JNL_HASH_HEX_LEN) {
			jerr_set(IMP_ERR_JOURNAL, "event %" PRIu64 " has a malformed hash: run "
				 "imprint audit", *seq);
			rc = IMP_ERR_JOURNAL;
		} else {
			memcpy(hash, h, JNL_HASH_HEX_LEN + 1);
		}
		if (kind)
			snprintf(kind, 32, "%s", k ? k : "");
	}
	jdb_stmt_done(st);
	return rc;
}

imp_err jchain_append_json(struct jnl *j, const char *uid, const char *serial,
			   const char *kind, json_t *detail)
{
	char *text = jjson_dump(detail);
	imp_err rc;

	if (!text)
		return IMP_ERR_NOMEM;
	rc = jchain_append(j, uid, serial, kind, text);
	free(text);
	return rc;
}

/* PRAGMA data_version of j->db, inside its transaction. */
static imp_err data_version(struct jnl *j, int64_t *out)
{
	sqlite3_stmt *st = NULL;
	imp_err rc;

	rc = jdb_stmt(j->db, "PRAGMA data_version", &st);
	if (rc == IMP_OK)
		rc = jdb_step_row(j->db, st);
	if (rc == IMP_ERR_NOT_FOUND)
		rc = jdb_fail(j->db, "PRAGMA data_version", SQLITE_ERROR);
	if (rc == IMP_OK)
		*out = sqlite3_column_int64(st, 0);
	jdb_stmt_done(st);
	return rc;
}

/* Make j->head the chain's head, inside the transaction: kept if no other
 * connection committed since it was read, else read from the last event
 * and checked against the settings. */
static imp_err head_current(struct jnl *j)
{
	char head[JNL_HASH_HEX_LEN + 1], stored_head[JNL_HASH_HEX_LEN + 1];
	uint64_t seq, stored_seq;
	int64_t dv;
	imp_err rc;

	if (j->head.ok && j->head.txn == j->txn_ends)
		return IMP_OK; /* checked or written in this transaction */
	rc = data_version(j, &dv);
	if (rc)
		return rc;
	if (j->head.ok && dv == j->head.data_version) {
		j->head.txn = j->txn_ends;
		return IMP_OK;
	}
	/* Another connection committed (the settings are then its own, never
	 * behind), or nothing is known. */
	j->head.ok = false;
	j->head.flush = false;
	rc = chain_head(j->db, &seq, head, NULL);
	if (rc)
		return rc;
	rc = jdb_setting_get_u64(j->db, JS_HEAD_SEQ, &stored_seq);
	if (rc == IMP_OK)
		rc = jdb_setting_get(j->db, JS_HEAD_HASH, stored_head, sizeof(stored_head));
	if (rc)
		return rc;
	/* Never extend a chain whose end was cut or changed: that would hide it. */
	if (stored_seq != seq || strcmp(stored_head, head) != 0) {
		jerr_set(IMP_ERR_JOURNAL, "journal head is event %" PRIu64 " but settings say %"
			 PRIu64 ": the journal was altered, run imprint audit", seq, stored_seq);
		return IMP_ERR_JOURNAL;
	}
	j->head.seq = seq;
	memcpy(j->head.hash, head, sizeof(j->head.hash));
	j->head.ok = true;
	j->head.txn = j->txn_ends;
	j->head.data_version = dv;
	return IMP_OK;
}

imp_err jchain_head_flush(struct jnl *j)
{
	imp_err rc;

	if (!j->head.ok || !j->head.flush)
		return IMP_OK;
	rc = jdb_setting_set_u64(j->db, JS_HEAD_SEQ, j->head.seq);
	if (rc == IMP_OK)
		rc = jdb_setting_set(j->db, JS_HEAD_HASH, j->head.hash);
	if (rc == IMP_OK)
		j->head.flush = false;
	return rc;
}

void jchain_head_forget(struct jnl *j)
{
	memset(&j->head, 0, sizeof(j->head));
	memset(&j->op_head, 0, sizeof(j->op_head));
}

imp_err jchain_append(struct jnl *j, const char *uid, const char *serial,
		      const char *kind, const char *detail)
{
	char hash[JNL_HASH_HEX_LEN + 1], ts[40];
	uint64_t seq, mono = imp_now_ns();
	sqlite3_stmt *st = NULL;
	imp_err rc;

	rc = head_current(j);
	if (rc)
		return rc;
	seq = j->head.seq + 1;
	jtime_now(ts);
	rc = event_hash(j->head.hash, seq, mono, ts, uid, serial, kind, detail, hash);
	if (rc) {
		jerr_set(rc, "cannot hash event %" PRIu64, seq);
		return rc;
	}
	rc = jdb_stmt(j->db, "INSERT INTO events(seq, ts, mono_ns, uid, serial, kind, detail, "
			 "prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)", &st);
	if (rc)
		goto cleanup;
	rc = jdb_bind_i64(j->db, st, 1, (int64_t)seq);
	if (rc == IMP_OK)
		rc = jdb_bind_text(j->db, st, 2, ts);
	if (rc == IMP_OK)
		rc = jdb_bind_i64(j->db, st, 3, (int64_t)mono);
	if (rc == IMP_OK)
		rc = jdb_bind_text(j->db, st, 4, uid);
	if (rc == IMP_OK)
		rc = jdb_bind_text(j->db, st, 5, serial);
	if (rc == IMP_OK)
		rc = jdb_bind_text(j->db, st, 6, kind);
	if (rc == IMP_OK)
		rc = jdb_bind_text(j->db, st, 7, detail);
	if (rc == IMP_OK)
		rc = jdb_bind_text(j->db, st, 8, j->head.hash);
	if (rc == IMP_OK)
		rc = jdb_bind_text(j->db, st, 9, hash);
	if (rc)
		goto cleanup;
	rc = jdb_step_done(j->db, st, NULL);
	if (rc)
		goto cleanup;
	j->appended_seq = seq;
	j->appended.seq = seq;
	memcpy(j->appended.prev_hash, j->head.hash, sizeof(j->appended.prev_hash));
	memcpy(j->appended.hash, hash, sizeof(j->appended.hash));
	j->head.seq = seq;
	memcpy(j->head.hash, hash, sizeof(j->head.hash));
	j->head.flush = true;
cleanup:
	jdb_stmt_done(st);
	return rc;
}

imp_err jchain_checkpoint_locked(struct jnl *j, bool force)
{
	char head[JNL_HASH_HEX_LEN + 1], kind[32], sig_hex[129], ts[40];
	uint8_t digest[32], sig[64];
	uint64_t seq, last_cp = 0, interval;
	sqlite3_stmt *st = NULL;
	imp_err rc;

	j->in_checkpoint = true;
	rc = chain_head(j->db, &seq, head, kind);
	if (rc)
		goto cleanup;
	rc = jdb_setting_get_u64(j->db, JS_CP_INTERVAL, &interval);
	if (rc)
		goto cleanup;
	j->cp_interval = interval ? (uint32_t)interval : JNL_CHECKPOINT_DEFAULT;
	rc = jdb_prepare(j->db, "SELECT coalesce(max(seq), 0) FROM checkpoints", &st);
	if (rc == IMP_OK)
		rc = jdb_step_row(j->db, st);
	if (rc)
		goto cleanup;
	last_cp = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	st = NULL;
	j->cp_hint_seq = last_cp;
	/* Nothing new since the last checkpoint (its own event aside). */
	if (seq == 0 || seq == last_cp || (seq == last_cp + 1 && strcmp(kind, "checkpoint") == 0))
		goto cleanup;
	if (!force && seq < last_cp + j->cp_interval)
		goto cleanup;

	rc = checkpoint_digest(seq, head, digest);
	if (rc)
		goto cleanup;
	rc = j->sign(j->sign_arg, digest, sig);
	if (rc) {
		jerr_set(rc, "checkpoint of event %" PRIu64 " not signed: %s", seq,
			 imp_err_str(rc));
		goto cleanup;
	}
	imp_hex_encode(sig, sizeof(sig), sig_hex);
	jtime_now(ts);
	rc = jdb_prepare(j->db, "INSERT INTO checkpoints(seq, head_hash, signature, signer, ts) "
			 "VALUES (?1, ?2, ?3, ?4, ?5)", &st);
	if (rc == IMP_OK)
		rc = jdb_bind_i64(j->db, st, 1, (int64_t)seq);
	if (rc == IMP_OK)
		rc = jdb_bind_text(j->db, st, 2, head);
	if (rc == IMP_OK)
		rc = jdb_bind_text(j->db, st, 3, sig_hex);
	if (rc == IMP_OK)
		rc = jdb_bind_text(j->db, st, 4, j->signer_fpr);
	if (rc == IMP_OK)
		rc = jdb_bind_text(j->db, st, 5, ts);
	if (rc == IMP_OK)
		rc = jdb_step_done(j->db, st, NULL);
	if (rc)
		goto cleanup;
	rc = jchain_append_json(j, NULL, NULL, "checkpoint",
				json_pack("{s:I, s:s, s:s, s:s}", "seq", (json_int_t)seq, "head",
					  head, "signature", sig_hex, "signer", j->signer_fpr));
	if (rc == IMP_OK) {
		j->cp_hint_seq = seq;
		j->anchor_dirty = true; /* the signed head goes to the anchor */
	}
cleanup:
	sqlite3_finalize(st);
	j->in_checkpoint = false;
	return rc;
}

imp_err jnl_checkpoint(struct jnl *j)
{
	imp_err rc;

	if (!j->sign) {
		jerr_set(IMP_ERR_UNSUPPORTED, "no checkpoint signer configured");
		return IMP_ERR_UNSUPPORTED;
	}
	rc = jdb_begin(j);
	if (rc)
		return rc;
	rc = jchain_checkpoint_locked(j, true);
	return jdb_end(j, rc);
}

/* ---------------------------------------------------------------- verify */

struct cp_row {
	uint64_t seq;
	char head[JNL_HASH_HEX_LEN + 1];
	char sig[129];
	char signer[JNL_FPR_HEX_LEN + 1];
	bool event_seen;   /* the event it names was seen */
	bool matched;      /* a "checkpoint" event names it */
};

static void note_bad(struct jnl_verify_report *r, uint64_t seq, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void note_bad(struct jnl_verify_report *r, uint64_t seq, const char *fmt, ...)
{
	va_list ap;

	if (r->bad_seq && r->bad_seq <= seq)
		return;
	r->bad_seq = seq;
	va_start(ap, fmt);
	vsnprintf(r->reason, sizeof(r->reason), fmt, ap);
	va_end(ap);
}

static const char *col_text(sqlite3_stmt *st, int i)
{
	return (const char *)sqlite3_column_text(st, i);
}

static void copy_str(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src ? src : "");
}

static imp_err load_checkpoints(sqlite3 *db, struct cp_row **out, size_t *n)
{
	sqlite3_stmt *st = NULL;
	struct cp_row *rows = NULL;
	size_t count = 0, cap = 0;
	imp_err rc;

	rc = jdb_prepare(db, "SELECT seq, head_hash, signature, signer FROM checkpoints "
			 "ORDER BY seq", &st);
	while (rc == IMP_OK) {
		rc = jdb_step_row(db, st);
		if (rc == IMP_ERR_NOT_FOUND) {
			rc = IMP_OK;
			break;
		}
		if (rc)
			break;
		if (count == cap) {
			struct cp_row *nr;

			cap = cap ? 2 * cap : 16;
			nr = realloc(rows, cap * sizeof(*rows));
			if (!nr) {
				rc = IMP_ERR_NOMEM;
				break;
			}
			rows = nr;
		}
		memset(&rows[count], 0, sizeof(rows[count]));
		rows[count].seq = (uint64_t)sqlite3_column_int64(st, 0);
		copy_str(rows[count].head, sizeof(rows[count].head), col_text(st, 1));
		copy_str(rows[count].sig, sizeof(rows[count].sig), col_text(st, 2));
		copy_str(rows[count].signer, sizeof(rows[count].signer), col_text(st, 3));
		count++;
	}
	sqlite3_finalize(st);
	if (rc) {
		free(rows);
		return rc;
	}
	*out = rows;
	*n = count;
	return IMP_OK;
}

static struct cp_row *find_cp(struct cp_row *rows, size_t n, uint64_t seq)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (rows[mid].seq == seq)
			return &rows[mid];
		if (rows[mid].seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* A "checkpoint" event must name a checkpoint row with the same contents. */
static void check_cp_event(struct jnl_verify_report *r, uint64_t ev_seq, const char *detail,
			   struct cp_row *rows, size_t n)
{
	json_t *d = json_loads(detail ? detail : "", 0, NULL);
	json_int_t cseq = 0;
	const char *head = NULL, *sig = NULL, *signer = NULL;
	struct cp_row *row;

	if (!d || json_unpack(d, "{s:I, s:s, s:s, s:s}", "seq", &cseq, "head", &head,
			      "signature", &sig, "signer", &signer) != 0) {
		note_bad(r, ev_seq, "checkpoint event %" PRIu64 " has a malformed detail", ev_seq);
		goto cleanup;
	}
	row = find_cp(rows, n, (uint64_t)cseq);
	if (!row) {
		note_bad(r, (uint64_t)cseq, "checkpoint of event %" PRIu64 " was removed",
			 (uint64_t)cseq);
		goto cleanup;
	}
	row->matched = true;
	if (strcmp(row->head, head) != 0 || strcmp(row->sig, sig) != 0 ||
	    strcmp(row->signer, signer) != 0)
		note_bad(r, row->seq, "checkpoint of event %" PRIu64 " differs from its "
			 "checkpoint event %" PRIu64, row->seq, ev_seq);
cleanup:
	json_decref(d);
}

static imp_err verify_sig_pkey(EVP_PKEY *pkey, const uint8_t digest[32], const uint8_t raw[64])
{
	ECDSA_SIG *sig = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(raw, 32, NULL);
	BIGNUM *s = BN_bin2bn(raw + 32, 32, NULL);
	EVP_PKEY_CTX *ctx = NULL;
	unsigned char *der = NULL;
	int der_len, ok;
	imp_err rc = IMP_ERR_CRYPTO;

	if (!sig || !r || !s || !ECDSA_SIG_set0(sig, r, s))
		goto cleanup;
	r = s = NULL; /* owned by sig now */
	der_len = i2d_ECDSA_SIG(sig, &der);
	if (der_len <= 0)
		goto cleanup;
	ctx = EVP_PKEY_CTX_new(pkey, NULL);
	if (!ctx || EVP_PKEY_verify_init(ctx) <= 0)
		goto cleanup;
	ok = EVP_PKEY_verify(ctx, der, (size_t)der_len, digest, 32);
	rc = ok == 1 ? IMP_OK : IMP_ERR_VERIFY;
cleanup:
	EVP_PKEY_CTX_free(ctx);
	OPENSSL_free(der);
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(sig);
	return rc;
}

static void check_cp_rows(struct jnl_verify_report *r, const struct jnl_verify_opts *o,
			  struct cp_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct cp_row *c = &rows[i];
		uint8_t digest[32], sig[64];
		imp_err vrc;

		if (!c->event_seen) {
			note_bad(r, c->seq, "checkpoint names event %" PRIu64 ", which is missing",
				 c->seq);
			continue;
		}
		if (!c->matched) {
			note_bad(r, c->seq, "checkpoint of event %" PRIu64 " has no checkpoint "
				 "event", c->seq);
			continue;
		}
		if (imp_hex_decode(c->sig, sig, sizeof(sig)) != IMP_OK ||
		    checkpoint_digest(c->seq, c->head, digest) != IMP_OK) {
			note_bad(r, c->seq, "checkpoint of event %" PRIu64 " is malformed", c->seq);
			continue;
		}
		r->checkpoints++;
		if (o->pkey)
			vrc = verify_sig_pkey(o->pkey, digest, sig);
		else if (o->verify)
			vrc = o->verify(o->verify_arg, digest, sig, c->signer);
		else
			vrc = IMP_OK;
		if (vrc) {
			note_bad(r, c->seq, "checkpoint signature of event %" PRIu64 " does not "
				 "verify (%s)", c->seq, imp_err_name(vrc));
			continue;
		}
		if (r->bad_seq == 0 || c->seq < r->bad_seq)
			r->last_checkpoint_seq = c->seq;
	}
}

imp_err jnl_verify_chain(struct jnl *j, const struct jnl_verify_opts *opts,
				  struct jnl_verify_report *report)
{
	static const struct jnl_verify_opts none;
	const struct jnl_verify_opts *o = opts ? opts : &none;
	char prev[JNL_HASH_HEX_LEN + 1], hash[JNL_HASH_HEX_LEN + 1];
	char head_hash[JNL_HASH_HEX_LEN + 1];
	uint64_t expect = 1, head_seq;
	struct cp_row *cps = NULL;
	size_t ncp = 0, cpi = 0;
	sqlite3_stmt *st = NULL;
	sqlite3 *db = NULL;
	imp_err rc;

	jerr_clear();
	memset(report, 0, sizeof(*report));
	report->signatures_checked = o->pkey || o->verify;
	memcpy(prev, J_ZERO_HASH, sizeof(prev));
	rc = jdb_open_reader(j, &db);
	if (rc)
		return rc;
	rc = jdb_exec(db, "BEGIN");
	if (rc)
		goto cleanup;
	rc = load_checkpoints(db, &cps, &ncp);
	if (rc)
		goto cleanup;
	rc = jdb_prepare(db, "SELECT seq, ts, mono_ns, uid, serial, kind, detail, prev_hash, hash "
			 "FROM events ORDER BY seq", &st);
	if (rc)
		goto cleanup;
	for (;;) {
		const char *stored_prev, *stored_hash, *kind;
		uint64_t seq;

		rc = jdb_step_row(db, st);
		if (rc == IMP_ERR_NOT_FOUND) {
			rc = IMP_OK;
			break;
		}
		if (rc)
			goto cleanup;
		seq = (uint64_t)sqlite3_column_int64(st, 0);
		stored_prev = col_text(st, 7);
		stored_hash = col_text(st, 8);
		kind = col_text(st, 5);
		report->events++;
		if (seq != expect)
			note_bad(report, expect, "event %" PRIu64 " is missing (next is %" PRIu64 ")",
				 expect, seq);
		if (!stored_prev || strcmp(stored_prev, prev) != 0)
			note_bad(report, seq, "event %" PRIu64 " does not link to the event before it",
				 seq);
		rc = event_hash(stored_prev ? stored_prev : "", seq,
				(uint64_t)sqlite3_column_int64(st, 2), col_text(st, 1),
				col_text(st, 3), col_text(st, 4), kind, col_text(st, 6), hash);
		if (rc == IMP_ERR_VERIFY) {
			note_bad(report, seq, "event %" PRIu64 " has a malformed prev_hash", seq);
			rc = IMP_OK;
		} else if (rc) {
			goto cleanup;
		} else if (!stored_hash || strcmp(stored_hash, hash) != 0) {
			note_bad(report, seq, "event %" PRIu64 " was altered (hash mismatch)", seq);
		}
		while (cpi < ncp && cps[cpi].seq < seq)
			cpi++;
		if (cpi < ncp && cps[cpi].seq == seq) {
			cps[cpi].event_seen = true;
			if (!stored_hash || strcmp(cps[cpi].head, stored_hash) != 0 ||
			    strcmp(cps[cpi].head, hash) != 0)
				note_bad(report, seq, "checkpoint of event %" PRIu64 " does not match "
					 "its hash", seq);
		}
		if (kind && strcmp(kind, "checkpoint") == 0)
			check_cp_event(report, seq, col_text(st, 6), cps, ncp);
		else if (!kind || strcmp(kind, "outbox") != 0)
			report->last_significant_seq = seq;
		copy_str(prev, sizeof(prev), stored_hash);
		expect = seq + 1;
	}
	sqlite3_finalize(st);
	st = NULL;
	rc = jdb_setting_get_u64(db, JS_HEAD_SEQ, &head_seq);
	if (rc == IMP_OK)
		rc = jdb_setting_get(db, JS_HEAD_HASH, head_hash, sizeof(head_hash));
	if (rc)
		goto cleanup;
	if (head_seq != expect - 1 || strcmp(head_hash, prev) != 0)
		note_bad(report, head_seq < expect ? head_seq + 1 : expect,
			 "the journal ends at event %" PRIu64 " but its head is event %" PRIu64
			 ": events were removed or added outside imprint", expect - 1, head_seq);
	check_cp_rows(report, o, cps, ncp);
	if (o->require_signed_head && report->bad_seq == 0 &&
	    report->last_significant_seq > report->last_checkpoint_seq)
		note_bad(report, report->last_checkpoint_seq + 1,
			 "the head is not signed: events %" PRIu64 " to %" PRIu64 " are after the "
			 "newest signed checkpoint (of event %" PRIu64 ", 0: none); if a run was cut "
			 "short, resume it or take `imprint journal checkpoint`, else the tail was "
			 "cut or the chain rewritten", report->last_checkpoint_seq + 1, expect - 1,
			 report->last_checkpoint_seq);
	if (report->bad_seq == 0 || report->last_checkpoint_seq < report->bad_seq)
		report->unsigned_tail = (expect - 1) - report->last_checkpoint_seq;
	if (report->bad_seq) {
		jerr_set(IMP_ERR_AUDIT, "journal chain broken at event %" PRIu64 ": %s",
			 report->bad_seq, report->reason);
		rc = IMP_ERR_AUDIT;
	}
cleanup:
	sqlite3_finalize(st);
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(db);
	free(cps);
	return rc;
}

/* ---------------------------------------------------------------- iterate */

struct event_scan {
	jnl_event_cb cb;
	void *arg;
};

static imp_err event_row(void *arg, sqlite3_stmt *st, bool *stop)
{
	struct event_scan *s = arg;
	struct jnl_event ev;

	ev.seq = (uint64_t)sqlite3_column_int64(st, 0);
	ev.ts = col_text(st, 1);
	ev.mono_ns = (uint64_t)sqlite3_column_int64(st, 2);
	ev.uid = col_text(st, 3);
	ev.serial = col_text(st, 4);
	ev.kind = col_text(st, 5);
	ev.detail = col_text(st, 6);
	ev.prev_hash = col_text(st, 7);
	ev.hash = col_text(st, 8);
	if (s->cb(s->arg, &ev))
		*stop = true;
	return IMP_OK;
}

imp_err jnl_iterate_events(struct jnl *j, uint64_t from_seq, const char *uid,
			   jnl_event_cb cb, void *arg)
{
	struct event_scan s = { cb, arg };
	const struct jdb_arg args[] = {
		{ .i64 = (int64_t)from_seq },
		{ .text = uid, .is_text = true },
	};

	return jdb_snapshot(j, "SELECT seq, ts, mono_ns, uid, serial, kind, detail, prev_hash, "
			    "hash FROM events WHERE seq >= ?1 AND (?2 IS NULL OR uid = lower(?2)) "
			    "ORDER BY seq", args, 2, event_row, &s);
}

imp_err jnl_iterate_kind(struct jnl *j, const char *kind, jnl_event_cb cb, void *arg)
{
	struct event_scan s = { cb, arg };
	const struct jdb_arg args[] = { { .text = kind, .is_text = true } };

	return jdb_snapshot(j, "SELECT seq, ts, mono_ns, uid, serial, kind, detail, prev_hash, "
			    "hash FROM events WHERE kind = ?1 ORDER BY seq", args, 1, event_row, &s);
}
