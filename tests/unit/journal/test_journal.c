/*
 * Journal unit tests: schema, allocation and quota, transitions, failures,
 * quarantine, reissue, outbox atomicity, queries, and the hash chain with its
 * must-fail tampering cases.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "imprint/util.h"
#include "jtest.h"

struct fx {
	char dir[256];
	char path[300];
	EVP_PKEY *key;
	struct jnl *j;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	jt_mkdtemp(f->dir);
	snprintf(f->path, sizeof(f->path), "%s/journal.sqlite", f->dir);
	f->key = jt_key();
	f->j = jt_open(f->path, f->key, 10, 5);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	jnl_close(f->j);
	EVP_PKEY_free(f->key);
	jt_rmtree(f->dir);
	free(f);
	return 0;
}

/* Walk a board from ALLOCATE to RECORD. */
static void to_record(struct jnl *j, const char *uid)
{
	for (enum jnl_state s = JNL_ST_KEYS; s <= JNL_ST_RECORD; s++)
		assert_int_equal(jnl_set_state(j, uid, s, NULL), IMP_OK);
}

static void allocate_ok(struct jnl *j, const char *uid, char serial[JNL_SERIAL_MAX])
{
	bool existing = true;

	assert_int_equal(jnl_allocate(j, uid, "f0", serial, JNL_SERIAL_MAX, &existing),
			 IMP_OK);
	assert_false(existing);
}

/* jnl_board_mismatch_fn: print each, count them, keep the last uid. */
struct mismatches {
	int n;
	char uid[JNL_UID_HEX_MAX + 1];
	char what[JNL_MSG_MAX];
};

static void mismatch_cb(void *arg, const char *uid, uint64_t last_seq, const char *what)
{
	struct mismatches *m = arg;

	fprintf(stderr, "boards table: %s (event %llu)\n", what, (unsigned long long)last_seq);
	m->n++;
	snprintf(m->uid, sizeof(m->uid), "%s", uid ? uid : "");
	snprintf(m->what, sizeof(m->what), "%s", what);
}

/* The chain verifies and the boards table is what its events give. */
static void verify_ok(struct fx *f)
{
	struct jnl_verify_opts vo = { .pkey = f->key };
	struct jnl_verify_report r;
	struct mismatches m = { 0 };
	uint64_t boards = 0;
	imp_err rc = jnl_verify_chain(f->j, &vo, &r);

	if (rc)
		fprintf(stderr, "verify: %s at %llu: %s\n", imp_err_name(rc),
			(unsigned long long)r.bad_seq, r.reason);
	assert_int_equal(rc, IMP_OK);
	assert_int_equal(r.bad_seq, 0);
	assert_int_equal(jnl_verify_boards(f->j, mismatch_cb, &m, &boards), IMP_OK);
	assert_int_equal(m.n, 0);
	assert_int_equal((int64_t)boards, jt_sql_int(f->path, "SELECT count(*) FROM boards"));
}

/* ------------------------------------------------------------------ tests */

static void test_open_schema(void **state)
{
	struct fx *f = *state;
	struct jnl_info info;
	struct jnl_opts o = { .station_id = "other-station" };
	struct jnl *j2 = NULL;
	struct stat sb;
	char mode[16];

	assert_int_equal(jnl_info(f->j, &info), IMP_OK);
	assert_string_equal(info.station_id, "test-station");
	assert_int_equal(info.schema_version, JNL_SCHEMA_VERSION);
	assert_int_equal(info.quota, 10);
	assert_int_equal(info.issued, 0);
	assert_int_equal(info.quota_left, 10);
	assert_int_equal(info.checkpoint_interval, 5);
	assert_true(info.head_seq >= 1); /* creation and settings events */
	assert_int_equal(jt_sql_int(f->path, "PRAGMA user_version"), JNL_SCHEMA_VERSION);
	jt_sql_text(f->path, "PRAGMA journal_mode", mode, sizeof(mode));
	assert_string_equal(mode, "wal");
	assert_int_equal(stat(f->path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);

	/* A journal belongs to one station. */
	assert_int_equal(jnl_open(f->path, &o, &j2), IMP_ERR_CONFIG);
	assert_null(j2);
	assert_non_null(strstr(jnl_last_error(), "test-station"));

	/* Not a journal. */
	{
		char other[320];

		snprintf(other, sizeof(other), "%s/other.sqlite", f->dir);
		assert_int_equal(jt_sql(other, "CREATE TABLE x(y)"), 0);
		assert_int_equal(jnl_open(other, NULL, &j2), IMP_ERR_JOURNAL);
		/* Newer schema than this code. */
		snprintf(other, sizeof(other), "%s/newer.sqlite", f->dir);
		assert_int_equal(jt_sql(other, "PRAGMA user_version = 99"), 0);
		assert_int_equal(jnl_open(other, NULL, &j2), IMP_ERR_JOURNAL);
		snprintf(other, sizeof(other), "%s/absent.sqlite", f->dir);
		o.must_exist = true;
		o.station_id = NULL;
		assert_int_equal(jnl_open(other, &o, &j2), IMP_ERR_NOT_FOUND);
	}
	/* Reopen: settings kept, no new events when nothing changes. */
	jnl_close(f->j);
	f->j = jt_open(f->path, f->key, 10, 5);
	{
		struct jnl_info again;

		assert_int_equal(jnl_info(f->j, &again), IMP_OK);
		assert_int_equal(again.head_seq, info.head_seq);
	}
	verify_ok(f);
}

static void test_allocate_and_resume(void **state)
{
	struct fx *f = *state;
	char s1[JNL_SERIAL_MAX], s2[JNL_SERIAL_MAX], again[JNL_SERIAL_MAX];
	struct jnl_board b;
	bool existing = false;

	assert_int_equal(jnl_register(f->j, "0A0B0C0D", "f1", "device", &b, &existing),
			 IMP_OK);
	assert_false(existing);
	assert_string_equal(b.uid, "0a0b0c0d");
	assert_int_equal(b.state, JNL_ST_IDENTIFY);
	assert_string_equal(b.serial, "");
	assert_string_equal(b.key_mode, "device");
	jnl_board_release(&b);

	allocate_ok(f->j, "0a0b0c0d", s1);
	assert_string_equal(s1, "0000000001");
	/* Same UID (any case): same identity, flagged as existing. */
	assert_int_equal(jnl_allocate(f->j, "0A0B0C0D", "f2", again, sizeof(again),
					       &existing), IMP_OK);
	assert_true(existing);
	assert_string_equal(again, s1);
	/* A UID never registered gets a row on allocation. */
	allocate_ok(f->j, "ffee", s2);
	assert_string_equal(s2, "0000000002");

	assert_int_equal(jnl_get_board_by_serial(f->j, s2, &b), IMP_OK);
	assert_string_equal(b.uid, "ffee");
	assert_int_equal(b.state, JNL_ST_ALLOCATE);
	jnl_board_release(&b);
	assert_int_equal(jnl_get_board_by_serial(f->j, "nope", &b), IMP_ERR_NOT_FOUND);
	assert_int_equal(jnl_get_board(f->j, "1234", &b), IMP_ERR_NOT_FOUND);
	/* Register of a known, in-flight board: its row, for resume. */
	assert_int_equal(jnl_register(f->j, "0a0b0c0d", "f1", "device", &b, &existing),
			 IMP_OK);
	assert_true(existing);
	assert_string_equal(b.serial, s1);
	jnl_board_release(&b);

	/* Bad UIDs. */
	assert_int_equal(jnl_allocate(f->j, "xyz1", NULL, again, sizeof(again), NULL),
			 IMP_ERR_USAGE);
	assert_int_equal(jnl_allocate(f->j, "abc", NULL, again, sizeof(again), NULL),
			 IMP_ERR_USAGE);
	assert_int_equal(jt_sql_int(f->path, "SELECT value FROM settings WHERE key='serial_counter'"),
			 2);
	verify_ok(f);
}

/* jnl_allocate_to: the serial and the move after it in one transaction,
 * the same two events as an allocation and a state change. */
static void test_allocate_to(void **state)
{
	struct fx *f = *state;
	char s1[JNL_SERIAL_MAX], s2[JNL_SERIAL_MAX], text[256];
	json_t *add = json_pack("{s:s}", "key_mode", "device");
	struct jnl_board b;
	bool existing = true;
	int64_t events;

	assert_non_null(add);
	assert_int_equal(jnl_register(f->j, "aa01", "f1", "device", &b, &existing), IMP_OK);
	jnl_board_release(&b);
	events = jt_sql_int(f->path, "SELECT count(*) FROM events WHERE uid = 'aa01'");
	assert_int_equal(jnl_allocate_to(f->j, "aa01", "f1", s1, sizeof(s1), &existing,
					 JNL_ST_KEYS, add), IMP_OK);
	assert_false(existing);
	assert_int_equal(jnl_get_board(f->j, "aa01", &b), IMP_OK);
	assert_int_equal(b.state, JNL_ST_KEYS);
	assert_string_equal(b.serial, s1);
	assert_non_null(strstr(b.data, "\"key_mode\":\"device\""));
	jnl_board_release(&b);
	assert_int_equal(jt_sql_int(f->path, "SELECT count(*) FROM events WHERE uid = 'aa01'"),
			 events + 2);
	jt_sql_text(f->path, "SELECT group_concat(kind, ',') FROM (SELECT kind FROM events "
		    "WHERE uid = 'aa01' ORDER BY seq)", text, sizeof(text));
	assert_string_equal(text, "state,alloc,state"); /* registered, allocated, moved */
	jt_sql_text(f->path, "SELECT detail FROM events WHERE uid = 'aa01' ORDER BY seq DESC "
		    "LIMIT 1", text, sizeof(text));
	assert_string_equal(text, "{\"data\":{\"key_mode\":\"device\"},\"from\":\"ALLOCATE\","
			    "\"to\":\"KEYS\"}");
	/* Again: the board has its serial; nothing is written, nothing moves. */
	events = jt_sql_int(f->path, "SELECT count(*) FROM events WHERE uid = 'aa01'");
	assert_int_equal(jnl_allocate_to(f->j, "aa01", "f1", s2, sizeof(s2), &existing,
					 JNL_ST_KEYS, add), IMP_OK);
	assert_true(existing);
	assert_string_equal(s2, s1);
	assert_int_equal(jt_sql_int(f->path, "SELECT count(*) FROM events WHERE uid = 'aa01'"),
			 events);
	/* A move allocate may not make: refused before anything is issued. */
	assert_int_equal(jnl_allocate_to(f->j, "bb01", "f1", s2, sizeof(s2), &existing,
					 JNL_ST_DONE, NULL), IMP_ERR_INTERNAL);
	assert_int_equal(jnl_allocate_to(f->j, "bb01", "f1", s2, sizeof(s2), &existing,
					 JNL_ST_IDENTIFY, NULL), IMP_ERR_INTERNAL);
	assert_int_equal(jnl_get_board(f->j, "bb01", &b), IMP_ERR_NOT_FOUND);
	assert_int_equal(jt_sql_int(f->path, "SELECT value FROM settings WHERE "
				    "key='serial_counter'"), 1);
	/* A board never registered: its row comes with the allocation. */
	assert_int_equal(jnl_allocate_to(f->j, "bb01", "f2", s2, sizeof(s2), &existing,
					 JNL_ST_KEYS, add), IMP_OK);
	assert_int_equal(jnl_get_board(f->j, "bb01", &b), IMP_OK);
	assert_int_equal(b.state, JNL_ST_KEYS);
	jnl_board_release(&b);
	json_decref(add);
	verify_ok(f);
}

static void test_done_is_duplicate_and_reissue(void **state)
{
	struct fx *f = *state;
	char serial[JNL_SERIAL_MAX], again[JNL_SERIAL_MAX];
	struct jnl_info info;
	struct jnl_board b;
	bool existing = false;

	allocate_ok(f->j, "aa01", serial);
	to_record(f->j, "aa01");
	assert_int_equal(jnl_record_done(f->j, "aa01", "rec-1", "h.p.s"), IMP_OK);
	assert_int_equal(jnl_allocate(f->j, "aa01", "f0", again, sizeof(again), &existing),
			 IMP_ERR_DUPLICATE);
	assert_true(existing);
	assert_string_equal(again, serial);
	assert_non_null(strstr(jnl_last_error(), "identity complete"));
	assert_int_equal(jnl_register(f->j, "aa01", NULL, NULL, &b, &existing),
			 IMP_ERR_DUPLICATE);
	assert_int_equal(b.state, JNL_ST_DONE);
	jnl_board_release(&b);
	assert_int_equal(jnl_set_state(f->j, "aa01", JNL_ST_KEYS, NULL),
			 IMP_ERR_DUPLICATE);
	assert_int_equal(jnl_reject(f->j, "aa01", IMP_ERR_BOARD, "x"), IMP_ERR_DUPLICATE);

	/* A reissue needs reason and authoriser; keeps the serial and the quota. */
	assert_int_equal(jnl_reissue(f->j, "aa01", "", "sup"), IMP_ERR_USAGE);
	assert_int_equal(jnl_reissue(f->j, "aa01", "rma 42", "supervisor ann"), IMP_OK);
	assert_int_equal(jnl_get_board(f->j, "aa01", &b), IMP_OK);
	assert_int_equal(b.state, JNL_ST_ALLOCATE);
	assert_int_equal(b.reissues, 1);
	jnl_board_release(&b);
	assert_int_equal(jnl_allocate(f->j, "aa01", "f0", again, sizeof(again), &existing),
			 IMP_OK);
	assert_true(existing);
	assert_string_equal(again, serial);
	assert_int_equal(jnl_info(f->j, &info), IMP_OK);
	assert_int_equal(info.issued, 1);
	to_record(f->j, "aa01");
	assert_int_equal(jnl_record_done(f->j, "aa01", "rec-2", "h.p.s2"), IMP_OK);
	assert_int_equal(jt_sql_int(f->path, "SELECT count(*) FROM events WHERE kind='reissue' "
				    "AND detail LIKE '%supervisor ann%'"), 1);
	verify_ok(f);
}

/* A board presenting a DONE board's uid but contradicting it: one hash-
 * chained "quarantine" event per presentation, with what was seen; the DONE
 * row stays. Without an observation, jnl_quarantine still refuses it. */
static void test_quarantine_done_uid(void **state)
{
	struct fx *f = *state;
	char serial[JNL_SERIAL_MAX];
	struct jnl_observed seen = { "open", 0x0, true };
	uint64_t ev = 9, done = 9;
	struct jnl_board b;

	allocate_ok(f->j, "ab01", serial);
	assert_int_equal(jnl_quarantine_counts(f->j, &ev, &done), IMP_OK);
	assert_int_equal(ev, 0);
	to_record(f->j, "ab01");
	assert_int_equal(jnl_quarantine_seen(f->j, "ab01", "f2", &seen, "not locked"),
			 IMP_ERR_EXISTS); /* in flight: resume it */
	assert_int_equal(jnl_record_done(f->j, "ab01", "rec-q", "h.p.q"), IMP_OK);
	assert_int_equal(jnl_quarantine(f->j, "ab01", "f2", "x"), IMP_ERR_EXISTS);
	assert_int_equal(jnl_quarantine_seen(f->j, "AB01", "f2", &seen, "its lifecycle is open"),
			 IMP_OK);
	assert_int_equal(jnl_quarantine_seen(f->j, "ab01", "f3", &seen, "again"), IMP_OK);
	assert_int_equal(jnl_get_board(f->j, "ab01", &b), IMP_OK);
	assert_int_equal(b.state, JNL_ST_DONE);
	assert_string_equal(b.serial, serial);
	jnl_board_release(&b);
	assert_int_equal(jt_sql_int(f->path, "SELECT count(*) FROM events WHERE kind='quarantine' "
				    "AND uid='ab01' AND serial IS NOT NULL AND json_extract(detail, "
				    "'$.board_state')='DONE' AND json_extract(detail, '$.lifecycle')="
				    "'open' AND json_extract(detail, '$.debug_open')=1"), 2);
	assert_int_equal(jnl_quarantine_seen(f->j, "ee02", "f4", &seen, "locked, unknown"), IMP_OK);
	assert_int_equal(jnl_quarantine_counts(f->j, &ev, &done), IMP_OK);
	assert_int_equal(ev, 3);
	assert_int_equal(done, 2);
	verify_ok(f);
}

/* Line mode: a lease the line lost is journaled ("lost" lease event) and
 * every record is marked to be fed to the line again; so is a refeed. */
static void test_line_lost_and_refeed(void **state)
{
	struct fx *f = *state;
	struct jnl_opts o = {
		.station_id = "line-station", .checkpoint_interval = 100, .sign = jt_sign,
		.sign_arg = f->key, .signer_fpr = JT_FPR, .leased_serials = true,
	};
	char path[320], serial[JNL_SERIAL_MAX];
	struct jnl *j = NULL;
	uint64_t n = 9;

	snprintf(path, sizeof(path), "%s/line.sqlite", f->dir);
	assert_int_equal(jnl_open(path, &o, &j), IMP_OK);
	assert_int_equal(jnl_lease_add(j, 7, 1, 4), IMP_OK);
	assert_int_equal(jnl_line_lost(j, 8, "nothing"), IMP_ERR_NOT_FOUND);
	assert_int_equal(jnl_allocate(j, "c001", "f0", serial, sizeof(serial), NULL), IMP_OK);
	to_record(j, "c001");
	assert_int_equal(jnl_record_done(j, "c001", "rec-l1", "h.p.l1"), IMP_OK);
	assert_int_equal(jnl_line_count_delivered(j, &n), IMP_OK);
	assert_int_equal(n, 0);
	assert_int_equal(jnl_line_delivered(j, "rec-l1", NULL), IMP_OK);
	assert_int_equal(jnl_line_count_delivered(j, &n), IMP_OK);
	assert_int_equal(n, 1);

	assert_int_equal(jnl_line_lost(j, 7, "lease 7 of station s2, counters 1..4"), IMP_OK);
	assert_int_equal(jnl_line_count_delivered(j, &n), IMP_OK);
	assert_int_equal(n, 0);
	assert_int_equal(jnl_line_count_pending(j, &n), IMP_OK);
	assert_int_equal(n, 1);
	assert_int_equal(jt_sql_int(path, "SELECT count(*) FROM events WHERE kind = 'lease' AND "
				    "json_extract(detail, '$.action') = 'lost' AND "
				    "json_extract(detail, '$.lease') = 7 AND json_extract(detail, "
				    "'$.next') = 2 AND json_extract(detail, '$.found') LIKE '%s2%'"), 1);

	assert_int_equal(jnl_line_delivered(j, "rec-l1", NULL), IMP_OK);
	assert_int_equal(jnl_line_refeed(j, "the line holds 0 records"), IMP_OK);
	assert_int_equal(jnl_line_count_pending(j, &n), IMP_OK);
	assert_int_equal(n, 1);
	assert_int_equal(jt_sql_int(path, "SELECT count(*) FROM events WHERE kind = 'outbox' AND "
				    "json_extract(detail, '$.action') = 'line_refeed'"), 1);
	{
		struct jnl_verify_opts vo = { .pkey = f->key };
		struct jnl_verify_report r;

		assert_int_equal(jnl_verify_chain(j, &vo, &r), IMP_OK);
	}
	jnl_close(j);
}

static void test_quota_exhausted(void **state)
{
	struct fx *f = *state;
	char serial[JNL_SERIAL_MAX], uid[25];
	struct jnl_info info;

	assert_int_equal(jnl_set_quota(f->j, 3), IMP_OK);
	for (int i = 0; i < 3; i++) {
		jt_uid((uint64_t)i, uid);
		allocate_ok(f->j, uid, serial);
	}
	jt_uid(99, uid);
	assert_int_equal(jnl_allocate(f->j, uid, "f0", serial, sizeof(serial), NULL),
			 IMP_ERR_QUOTA);
	assert_string_equal(serial, "");
	assert_non_null(strstr(jnl_last_error(), "quota of 3 serials exhausted"));
	assert_int_equal(jnl_info(f->j, &info), IMP_OK);
	assert_int_equal(info.issued, 3);
	assert_int_equal(info.quota_left, 0);
	/* Nothing was written for the refused board. */
	assert_int_equal(jnl_get_board(f->j, uid, &(struct jnl_board){ 0 }),
			 IMP_ERR_NOT_FOUND);
	/* Known UIDs still resume with quota exhausted. */
	jt_uid(1, uid);
	assert_int_equal(jnl_allocate(f->j, uid, "f0", serial, sizeof(serial), NULL),
			 IMP_OK);
	assert_string_equal(serial, "0000000002");
	/* Raising the quota is recorded and lets production go on. */
	assert_int_equal(jnl_set_quota(f->j, 4), IMP_OK);
	jt_uid(99, uid);
	allocate_ok(f->j, uid, serial);
	assert_string_equal(serial, "0000000004");
	assert_int_equal(jt_sql_int(f->path, "SELECT count(*) FROM events WHERE kind='setting' AND "
				    "detail LIKE '%\"key\":\"quota\"%'"), 3);
	verify_ok(f);
}

static imp_err dup_format(void *arg, uint64_t counter, char *out, size_t cap)
{
	(void)arg;
	(void)counter;
	snprintf(out, cap, "SAME");
	return IMP_OK;
}

static void test_serial_scheme_not_injective(void **state)
{
	struct fx *f = *state;
	struct jnl_opts o = { .format_serial = dup_format };
	struct jnl *j2 = NULL;
	char serial[JNL_SERIAL_MAX];

	assert_int_equal(jnl_open(f->path, &o, &j2), IMP_OK);
	assert_int_equal(jnl_allocate(j2, "01", NULL, serial, sizeof(serial), NULL),
			 IMP_OK);
	assert_string_equal(serial, "SAME");
	/* The UNIQUE constraint stops a second "SAME"; the counter is not used. */
	assert_int_equal(jnl_allocate(j2, "02", NULL, serial, sizeof(serial), NULL),
			 IMP_ERR_DUPLICATE);
	assert_int_equal(jt_sql_int(f->path, "SELECT value FROM settings WHERE key='serial_counter'"),
			 1);
	jnl_close(j2);
}

static void test_state_and_data(void **state)
{
	struct fx *f = *state;
	char serial[JNL_SERIAL_MAX];
	struct jnl_board b;
	int64_t before;

	assert_int_equal(jnl_register(f->j, "bb01", "f2", "hsm", NULL, NULL), IMP_OK);
	/* No serial yet: no key step. */
	assert_int_equal(jnl_set_state(f->j, "bb01", JNL_ST_KEYS, NULL), IMP_ERR_INTERNAL);
	assert_int_equal(jnl_set_state(f->j, "cc01", JNL_ST_IDENTIFY, NULL),
			 IMP_ERR_NOT_FOUND);
	allocate_ok(f->j, "bb01", serial);
	assert_int_equal(jnl_set_state(f->j, "bb01", JNL_ST_DONE, NULL), IMP_ERR_INTERNAL);
	assert_int_equal(jnl_set_state(f->j, "bb01", JNL_ST_FAILED, NULL),
			 IMP_ERR_INTERNAL);
	assert_int_equal(jnl_set_state(f->j, "bb01", JNL_ST_KEYS,
						"{\"pub\":\"04aa\",\"csr\":\"x\"}"), IMP_OK);
	assert_int_equal(jnl_set_state(f->j, "bb01", JNL_ST_CERTIFY,
						"{\"cert\":\"MIIB\",\"csr\":null}"), IMP_OK);
	assert_int_equal(jnl_get_board(f->j, "bb01", &b), IMP_OK);
	assert_int_equal(b.state, JNL_ST_CERTIFY);
	assert_string_equal(b.data, "{\"cert\":\"MIIB\",\"pub\":\"04aa\"}");
	jnl_board_release(&b);
	/* Bad data: refused, nothing written. */
	before = jt_sql_int(f->path, "SELECT max(seq) FROM events");
	assert_int_equal(jnl_set_state(f->j, "bb01", JNL_ST_INJECT, "[1]"), IMP_ERR_USAGE);
	assert_int_equal(jnl_set_state(f->j, "bb01", JNL_ST_INJECT, "{bad"),
			 IMP_ERR_USAGE);
	assert_int_equal(jt_sql_int(f->path, "SELECT max(seq) FROM events"), before);
	assert_int_equal(jnl_get_board(f->j, "bb01", &b), IMP_OK);
	assert_int_equal(b.state, JNL_ST_CERTIFY);
	jnl_board_release(&b);
	/* Data without a state change. */
	assert_int_equal(jnl_set_data(f->j, "bb01", "{\"fw\":\"9f86\"}"), IMP_OK);
	assert_int_equal(jnl_get_board(f->j, "bb01", &b), IMP_OK);
	assert_int_equal(b.state, JNL_ST_CERTIFY);
	assert_non_null(strstr(b.data, "\"fw\":\"9f86\""));
	jnl_board_release(&b);
	assert_int_equal(jt_sql_int(f->path, "SELECT count(*) FROM events WHERE uid='bb01' AND "
				    "kind='state' AND detail LIKE '%\"to\":\"CERTIFY\"%'"), 1);
	/* The merge starts from the row as it is, not from what this handle
	 * wrote last (its parsed copy is only a shortcut for the same text). */
	assert_int_equal(jt_sql(f->path, "UPDATE boards SET data = '{\"other\":1}' "
				"WHERE uid = 'bb01'"), 0);
	assert_int_equal(jnl_set_data(f->j, "bb01", "{\"x\":2}"), IMP_OK);
	assert_int_equal(jnl_get_board(f->j, "bb01", &b), IMP_OK);
	assert_string_equal(b.data, "{\"other\":1,\"x\":2}");
	jnl_board_release(&b);
	assert_int_equal(jnl_set_data(f->j, "bb01", "{\"x\":null,\"y\":3}"), IMP_OK);
	assert_int_equal(jnl_get_board(f->j, "bb01", &b), IMP_OK);
	assert_string_equal(b.data, "{\"other\":1,\"y\":3}");
	jnl_board_release(&b);
	verify_ok(f);
}

/* The data as a jansson object writes what the same data as text writes:
 * the row's data and the event (its detail, hashed into the chain). */
static void test_state_data_object(void **state)
{
	struct fx *f = *state;
	char serial[JNL_SERIAL_MAX];
	struct jnl_board a, b;
	json_t *o;
	int64_t before;

	assert_int_equal(jnl_register(f->j, "dd01", "f2", "hsm", NULL, NULL), IMP_OK);
	assert_int_equal(jnl_register(f->j, "dd02", "f2", "hsm", NULL, NULL), IMP_OK);
	allocate_ok(f->j, "dd01", serial);
	allocate_ok(f->j, "dd02", serial);
	assert_int_equal(jnl_set_state(f->j, "dd01", JNL_ST_KEYS,
				       "{\"pub\":\"04aa\",\"lock\":{\"b\":true,\"a\":1}}"),
			 IMP_OK);
	o = json_pack("{s:{s:b, s:i}, s:s}", "lock", "b", 1, "a", 1, "pub", "04aa");
	assert_int_equal(jnl_set_state_obj(f->j, "dd02", JNL_ST_KEYS, o, NULL), IMP_OK);
	json_decref(o);
	assert_int_equal(jnl_get_board(f->j, "dd01", &a), IMP_OK);
	assert_int_equal(jnl_get_board(f->j, "dd02", &b), IMP_OK);
	assert_string_equal(a.data, b.data);
	assert_int_equal(b.state, JNL_ST_KEYS);
	jnl_board_release(&a);
	jnl_board_release(&b);
	assert_int_equal(jt_sql_int(f->path, "SELECT count(DISTINCT detail) FROM events WHERE "
				    "kind = 'state' AND uid IN ('dd01', 'dd02') AND "
				    "detail LIKE '%\"to\":\"KEYS\"%'"), 1);
	/* An empty object or none: the state moves, the data stays. */
	o = json_object();
	assert_int_equal(jnl_set_state_obj(f->j, "dd02", JNL_ST_CERTIFY, o, NULL), IMP_OK);
	assert_int_equal(jnl_set_state_obj(f->j, "dd02", JNL_ST_INJECT, NULL, NULL), IMP_OK);
	json_decref(o);
	assert_int_equal(jnl_get_board(f->j, "dd02", &b), IMP_OK);
	assert_int_equal(b.state, JNL_ST_INJECT);
	assert_int_equal(jnl_get_board(f->j, "dd01", &a), IMP_OK);
	assert_string_equal(a.data, b.data);
	jnl_board_release(&a);
	jnl_board_release(&b);
	/* Not an object: refused, nothing written. */
	before = jt_sql_int(f->path, "SELECT max(seq) FROM events");
	o = json_pack("[i]", 1);
	assert_int_equal(jnl_set_state_obj(f->j, "dd02", JNL_ST_FIRMWARE, o, NULL), IMP_ERR_USAGE);
	json_decref(o);
	assert_int_equal(jt_sql_int(f->path, "SELECT max(seq) FROM events"), before);
	verify_ok(f);
}

static int count_cb(void *arg, const struct jnl_board *b)
{
	(void)b;
	(*(int *)arg)++;
	return 0;
}

static void test_fail_reject_quarantine(void **state)
{
	struct fx *f = *state;
	char serial[JNL_SERIAL_MAX];
	uint64_t counts[JNL_ST__COUNT];
	struct jnl_board b;
	int n;

	allocate_ok(f->j, "dd01", serial);
	assert_int_equal(jnl_set_state(f->j, "dd01", JNL_ST_KEYS, NULL), IMP_OK);
	assert_int_equal(jnl_fail(f->j, "dd01", "f3", IMP_ERR_LINK, "uart timeout"), IMP_OK);
	assert_int_equal(jnl_fail(f->j, NULL, "f3", IMP_ERR_PROBE, "no target"), IMP_OK);
	assert_int_equal(jnl_fail(f->j, "dd99", "f3", IMP_ERR_PROBE, "x"),
			 IMP_ERR_NOT_FOUND);
	assert_int_equal(jnl_fail(f->j, "dd01", "f3", IMP_OK, "x"), IMP_ERR_INTERNAL);
	assert_int_equal(jnl_get_board(f->j, "dd01", &b), IMP_OK);
	assert_int_equal(b.state, JNL_ST_KEYS); /* still resumable */
	assert_int_equal(b.attempts, 1);
	assert_int_equal(b.last_error, IMP_ERR_LINK);
	assert_string_equal(b.last_error_msg, "uart timeout");
	jnl_board_release(&b);

	assert_int_equal(jnl_reject(f->j, "dd01", IMP_ERR_CHALLENGE, "bad signature"),
			 IMP_OK);
	assert_int_equal(jnl_allocate(f->j, "dd01", NULL, serial, sizeof(serial), NULL),
			 IMP_ERR_BOARD);
	assert_int_equal(jnl_set_state(f->j, "dd01", JNL_ST_LOCK, NULL), IMP_ERR_BOARD);

	assert_int_equal(jnl_quarantine(f->j, "ee01", "f4", "locked, unknown uid"), IMP_OK);
	assert_int_equal(jnl_quarantine(f->j, "ee01", "f4", "again"), IMP_OK);
	assert_int_equal(jnl_quarantine(f->j, "dd01", "f4", "x"), IMP_ERR_EXISTS);
	assert_int_equal(jnl_register(f->j, "ee01", NULL, NULL, NULL, NULL),
			 IMP_ERR_QUARANTINE);
	assert_int_equal(jnl_allocate(f->j, "ee01", NULL, serial, sizeof(serial), NULL),
			 IMP_ERR_QUARANTINE);
	assert_int_equal(jnl_reissue(f->j, "ee01", "r", "s"), IMP_ERR_QUARANTINE);
	assert_int_equal(jnl_get_board(f->j, "ee01", &b), IMP_OK);
	assert_int_equal(b.state, JNL_ST_QUARANTINED);
	assert_string_equal(b.serial, "");
	assert_int_equal(b.last_error, IMP_ERR_QUARANTINE);
	jnl_board_release(&b);

	assert_int_equal(jnl_counts(f->j, counts), IMP_OK);
	assert_int_equal(counts[JNL_ST_FAILED], 1);
	assert_int_equal(counts[JNL_ST_QUARANTINED], 1);
	n = 0;
	assert_int_equal(jnl_list_failures(f->j, 0, count_cb, &n), IMP_OK);
	assert_int_equal(n, 2);
	n = 0;
	assert_int_equal(jnl_list_failures(f->j, 1, count_cb, &n), IMP_OK);
	assert_int_equal(n, 1);
	/* An error at a step the board has left is history: a board that
	 * failed at KEYS and went on, one that then finished. */
	allocate_ok(f->j, "dd02", serial);
	assert_int_equal(jnl_set_state(f->j, "dd02", JNL_ST_KEYS, NULL), IMP_OK);
	assert_int_equal(jnl_fail(f->j, "dd02", "f3", IMP_ERR_LINK, "uart timeout"), IMP_OK);
	n = 0;
	assert_int_equal(jnl_list_failures(f->j, 0, count_cb, &n), IMP_OK);
	assert_int_equal(n, 3); /* still at KEYS: its error stands */
	assert_int_equal(jnl_set_state(f->j, "dd02", JNL_ST_CERTIFY, NULL), IMP_OK);
	n = 0;
	assert_int_equal(jnl_list_failures(f->j, 0, count_cb, &n), IMP_OK);
	assert_int_equal(n, 2);
	for (enum jnl_state s = JNL_ST_INJECT; s <= JNL_ST_RECORD; s++)
		assert_int_equal(jnl_set_state(f->j, "dd02", s, NULL), IMP_OK);
	assert_int_equal(jnl_record_done(f->j, "dd02", "rec-dd02", "h.p.dd02"), IMP_OK);
	n = 0;
	assert_int_equal(jnl_list_failures(f->j, 0, count_cb, &n), IMP_OK);
	assert_int_equal(n, 2);
	/* A rejected board comes back only by reissue. */
	assert_int_equal(jnl_reissue(f->j, "dd01", "operator retry", "sup"), IMP_OK);
	assert_int_equal(jnl_get_board(f->j, "dd01", &b), IMP_OK);
	assert_int_equal(b.state, JNL_ST_ALLOCATE);
	assert_int_equal(b.attempts, 0);
	assert_int_equal(b.last_error, IMP_OK);
	jnl_board_release(&b);
	assert_int_equal(jt_sql_int(f->path, "SELECT count(*) FROM events WHERE kind='error' AND "
				    "uid IS NULL"), 1);
	verify_ok(f);
}

static int pending_cb(void *arg, const struct jnl_outbox_entry *e)
{
	struct jnl *j = arg;

	/* Callbacks may write: the list reads a snapshot. */
	assert_int_equal(jnl_outbox_delivered(j, e->record_id), IMP_OK);
	return 0;
}

/* A revocation withdraws the board's newest identity: one identity record
 * made after it (a reissued board) may be revoked in its turn. */
static void test_revocation_of_newest_identity(void **state)
{
	struct fx *f = *state;
	char serial[JNL_SERIAL_MAX], rid[JNL_RECORD_ID_MAX];

	allocate_ok(f->j, "f001", serial);
	to_record(f->j, "f001");
	assert_int_equal(jnl_record_done(f->j, "f001", "r1", "jws1"), IMP_OK);
	assert_int_equal(jnl_outbox_add_revocation(f->j, "f001", "rv1", "jwsr1"), IMP_OK);
	assert_int_equal(jnl_outbox_add_revocation(f->j, "f001", "rv2", "jwsr2"),
			 IMP_ERR_EXISTS);
	assert_int_equal(jt_sql(f->path, "INSERT INTO outbox(record_id, serial, uid, kind, jws, "
				"created) SELECT 'r1b', serial, uid, 'identity', 'jws1b', "
				"created FROM outbox WHERE record_id = 'rv1'"), 0);
	assert_int_equal(jnl_revocation_record_id(f->j, "f001", rid), IMP_ERR_NOT_FOUND);
	assert_int_equal(jnl_outbox_add_revocation(f->j, "f001", "rv2", "jwsr2"), IMP_OK);
	assert_int_equal(jnl_revocation_record_id(f->j, "f001", rid), IMP_OK);
	assert_string_equal(rid, "rv2");
}

static void test_outbox_and_done_atomic(void **state)
{
	struct fx *f = *state;
	char serial[JNL_SERIAL_MAX], s2[JNL_SERIAL_MAX];
	struct jnl_board b;
	char rid[JNL_RECORD_ID_MAX];
	uint64_t pending;
	int64_t events;

	allocate_ok(f->j, "f001", serial);
	allocate_ok(f->j, "f002", s2);
	assert_int_equal(jnl_record_done(f->j, "f001", "r1", "jws"), IMP_ERR_INTERNAL);
	to_record(f->j, "f001");
	to_record(f->j, "f002");

	/* The outbox insert fails: the board must not be DONE, no event. */
	events = jt_sql_int(f->path, "SELECT max(seq) FROM events");
	assert_int_equal(jt_sql(f->path, "CREATE TRIGGER t_fail BEFORE INSERT ON outbox BEGIN "
				"SELECT RAISE(ABORT, 'injected'); END"), 0);
	assert_int_equal(jnl_record_done(f->j, "f001", "r1", "jws1"), IMP_ERR_JOURNAL);
	assert_int_equal(jnl_get_board(f->j, "f001", &b), IMP_OK);
	assert_int_equal(b.state, JNL_ST_RECORD);
	jnl_board_release(&b);
	assert_int_equal(jt_sql_int(f->path, "SELECT max(seq) FROM events"), events);
	assert_int_equal(jt_sql(f->path, "DROP TRIGGER t_fail"), 0);
	/* The state update fails: no outbox row. */
	assert_int_equal(jt_sql(f->path, "CREATE TRIGGER t_fail BEFORE UPDATE OF state ON boards "
				"WHEN new.state = 'DONE' BEGIN SELECT RAISE(ABORT, 'injected'); END"),
			 0);
	assert_int_equal(jnl_record_done(f->j, "f001", "r1", "jws1"), IMP_ERR_JOURNAL);
	assert_int_equal(jt_sql_int(f->path, "SELECT count(*) FROM outbox"), 0);
	assert_int_equal(jt_sql_int(f->path, "SELECT max(seq) FROM events"), events);
	assert_int_equal(jt_sql(f->path, "DROP TRIGGER t_fail"), 0);

	assert_int_equal(jnl_record_done(f->j, "f001", "r1", "jws1"), IMP_OK);
	/* Resumed call after a crash right after COMMIT: fine, nothing new. */
	assert_int_equal(jnl_record_done(f->j, "f001", "r1", "jws1"), IMP_OK);
	assert_int_equal(jnl_record_done(f->j, "f002", "r1", "jws2"), IMP_ERR_EXISTS);
	assert_int_equal(jnl_record_done(f->j, "f001", "r9", "jws9"), IMP_ERR_DUPLICATE);
	assert_int_equal(jt_sql_int(f->path, "SELECT count(*) FROM outbox"), 1);
	assert_int_equal(jt_sql_int(f->path, "SELECT count(*) FROM boards b WHERE state = 'DONE' "
				    "AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.uid = b.uid)"), 0);
	assert_int_equal(jnl_record_done(f->j, "f002", "r2", "jws2"), IMP_OK);
	assert_int_equal(jnl_revocation_record_id(f->j, "f002", rid), IMP_ERR_NOT_FOUND);
	assert_int_equal(jnl_outbox_add_revocation(f->j, "f002", "rv2", "jwsr"), IMP_OK);
	assert_int_equal(jnl_outbox_add_revocation(f->j, "f999", "rv9", "jwsr"),
			 IMP_ERR_NOT_FOUND);
	/* A serial is revoked once, whatever the second record says. */
	assert_int_equal(jnl_revocation_record_id(f->j, "F002", rid), IMP_OK);
	assert_string_equal(rid, "rv2");
	assert_int_equal(jnl_revocation_record_id(f->j, "f001", rid), IMP_ERR_NOT_FOUND);
	assert_int_equal(jnl_outbox_add_revocation(f->j, "f002", "rv3", "jwsr3"),
			 IMP_ERR_EXISTS);
	assert_non_null(strstr(jnl_last_error(), "already revoked: revocation record rv2"));
	assert_int_equal(jt_sql_int(f->path, "SELECT count(*) FROM outbox WHERE kind = "
				    "'revocation'"), 1);

	assert_int_equal(jnl_outbox_count_pending(f->j, &pending), IMP_OK);
	assert_int_equal(pending, 3);
	assert_int_equal(jnl_outbox_attempt_failed(f->j, "r2", "connection refused"),
			 IMP_OK);
	assert_int_equal(jnl_outbox_rejected(f->j, "rv2", "unknown serial"), IMP_OK);
	assert_int_equal(jnl_outbox_delivered(f->j, "nope"), IMP_ERR_NOT_FOUND);
	assert_int_equal(jnl_outbox_count_pending(f->j, &pending), IMP_OK);
	assert_int_equal(pending, 2);
	/* A batch is acknowledged all or none: one unknown id, nothing marked. */
	{
		const char *bad[] = { "r1", "nope" };

		assert_int_equal(jnl_outbox_delivered_many(f->j, bad, 2), IMP_ERR_NOT_FOUND);
		assert_int_equal(jnl_outbox_count_pending(f->j, &pending), IMP_OK);
		assert_int_equal(pending, 2);
		assert_int_equal(jnl_outbox_delivered_many(f->j, bad, 0), IMP_OK);
	}
	assert_int_equal(jt_sql_int(f->path, "SELECT attempts FROM outbox WHERE record_id='r2'"), 1);
	assert_int_equal(jnl_outbox_pending(f->j, 0, pending_cb, f->j), IMP_OK);
	assert_int_equal(jnl_outbox_count_pending(f->j, &pending), IMP_OK);
	assert_int_equal(pending, 0);
	/* Delivered twice: one event only. */
	assert_int_equal(jnl_outbox_delivered(f->j, "r1"), IMP_OK);
	assert_int_equal(jt_sql_int(f->path, "SELECT count(*) FROM events WHERE kind='outbox' AND "
				    "detail LIKE '%\"delivered\"%'"), 2);
	verify_ok(f);
}

static int unfinished_cb(void *arg, const struct jnl_board *b)
{
	char *seen = arg;

	strcat(seen, b->uid);
	strcat(seen, ":");
	strcat(seen, jnl_state_name(b->state));
	strcat(seen, " ");
	return 0;
}

struct ev_acc {
	int n;
	char kinds[256];
};

static int event_cb(void *arg, const struct jnl_event *ev)
{
	struct ev_acc *a = arg;

	a->n++;
	strcat(a->kinds, ev->kind);
	strcat(a->kinds, " ");
	return 0;
}

static void test_queries(void **state)
{
	struct fx *f = *state;
	char serial[JNL_SERIAL_MAX], seen[512] = "";
	struct ev_acc acc = { 0 };

	assert_int_equal(jnl_register(f->j, "a1", NULL, NULL, NULL, NULL), IMP_OK);
	allocate_ok(f->j, "a2", serial);
	assert_int_equal(jnl_set_state(f->j, "a2", JNL_ST_FIRMWARE, NULL), IMP_OK);
	allocate_ok(f->j, "a3", serial);
	to_record(f->j, "a3");
	assert_int_equal(jnl_record_done(f->j, "a3", "r3", "j"), IMP_OK);
	assert_int_equal(jnl_list_unfinished(f->j, unfinished_cb, seen), IMP_OK);
	assert_string_equal(seen, "a1:IDENTIFY a2:FIRMWARE ");
	seen[0] = '\0';
	assert_int_equal(jnl_list_state(f->j, JNL_ST_DONE, unfinished_cb, seen), IMP_OK);
	assert_string_equal(seen, "a3:DONE ");
	assert_int_equal(jnl_iterate_events(f->j, 0, "A2", event_cb, &acc), IMP_OK);
	assert_int_equal(acc.n, 2);
	assert_string_equal(acc.kinds, "alloc state ");
}

/* The last event of a board, read back from the chain. */
struct last_ev {
	uint64_t seq;
	char kind[32], prev_hash[65], hash[65], detail[512];
};

static int last_ev_cb(void *arg, const struct jnl_event *ev)
{
	struct last_ev *l = arg;

	l->seq = ev->seq;
	snprintf(l->kind, sizeof(l->kind), "%s", ev->kind);
	snprintf(l->prev_hash, sizeof(l->prev_hash), "%s", ev->prev_hash);
	snprintf(l->hash, sizeof(l->hash), "%s", ev->hash);
	snprintf(l->detail, sizeof(l->detail), "%s", ev->detail);
	return 0;
}

/* set_state_ev hands back the state event it wrote, never the checkpoint
 * that may follow it in the same call (interval 5 here). */
static void test_set_state_returns_event(void **state)
{
	struct fx *f = *state;
	char serial[JNL_SERIAL_MAX], want[64];
	struct jnl_info info;
	bool after_checkpoint = false;

	allocate_ok(f->j, "e1", serial);
	for (enum jnl_state s = JNL_ST_KEYS; s <= JNL_ST_RECORD; s++) {
		struct jnl_event_ref ref;
		struct last_ev last = { 0 };

		memset(&ref, 0x5a, sizeof(ref));
		assert_int_equal(jnl_set_state_ev(f->j, "e1", s, "{\"k\":1}", &ref), IMP_OK);
		assert_int_equal(jnl_iterate_events(f->j, 0, "e1", last_ev_cb, &last), IMP_OK);
		assert_int_equal(ref.seq, last.seq);
		assert_string_equal(ref.hash, last.hash);
		assert_string_equal(ref.prev_hash, last.prev_hash);
		assert_string_equal(last.kind, "state");
		snprintf(want, sizeof(want), "\"to\":\"%s\"", jnl_state_name(s));
		assert_non_null(strstr(last.detail, want));
		assert_int_equal(jnl_info(f->j, &info), IMP_OK);
		if (info.head_seq != ref.seq)
			after_checkpoint = true; /* the head is a checkpoint after it */
	}
	assert_true(after_checkpoint);
	/* A refused change returns nothing and leaves the chain as it was. */
	{
		struct jnl_event_ref ref = { .seq = 77 };
		uint64_t head;

		assert_int_equal(jnl_info(f->j, &info), IMP_OK);
		head = info.head_seq;
		assert_int_equal(jnl_set_state_ev(f->j, "e2", JNL_ST_KEYS, NULL, &ref),
				 IMP_ERR_NOT_FOUND);
		assert_int_equal(ref.seq, 77);
		assert_int_equal(jnl_info(f->j, &info), IMP_OK);
		assert_int_equal(info.head_seq, head);
	}
	verify_ok(f);
}

/* --------------------------------------------------------- the hash chain */

/* The documented canonical bytes, computed independently of the journal. */
static void doc_hash(const char *prev_hex, int64_t seq, int64_t mono, const char *ts,
		     const char *uid, const char *serial, const char *kind, const char *detail,
		     char out[65])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	const char *fields[] = { ts, uid, serial, kind, detail };
	uint8_t prev[32], be[8], md[32];
	unsigned int n;

	assert_int_equal(imp_hex_decode(prev_hex, prev, 32), IMP_OK);
	EVP_DigestInit_ex(c, EVP_sha256(), NULL);
	EVP_DigestUpdate(c, prev, 32);
	EVP_DigestUpdate(c, "imprint-journal-event-v1", 24);
	for (int k = 0; k < 2; k++) {
		uint64_t v = (uint64_t)(k == 0 ? seq : mono);

		for (int i = 0; i < 8; i++)
			be[i] = (uint8_t)(v >> (56 - 8 * i));
		EVP_DigestUpdate(c, be, 8);
	}
	for (size_t i = 0; i < 5; i++) {
		uint32_t len = fields[i] ? (uint32_t)strlen(fields[i]) : 0xffffffffu;
		uint8_t l[4] = { (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
				 (uint8_t)len };

		EVP_DigestUpdate(c, l, 4);
		if (fields[i])
			EVP_DigestUpdate(c, fields[i], len);
	}
	EVP_DigestFinal_ex(c, md, &n);
	EVP_MD_CTX_free(c);
	imp_hex_encode(md, 32, out);
}

/* Rewrite the whole chain from the stored rows (an attacker with the file
 * and the documentation, but without the signing key). */
#include <sqlite3.h>
static void forge_rehash(const char *path)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL, *up = NULL;
	char prev[65] = "0000000000000000000000000000000000000000000000000000000000000000";
	char h[65];

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_exec(db, "DROP TRIGGER IF EXISTS events_no_update; BEGIN", NULL, NULL, NULL);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT seq, ts, mono_ns, uid, serial, kind, detail "
					   "FROM events ORDER BY seq", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "UPDATE events SET prev_hash=?2, hash=?3 WHERE "
					   "seq=?1", -1, &up, NULL), SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		doc_hash(prev, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 2),
			 (const char *)sqlite3_column_text(st, 1),
			 (const char *)sqlite3_column_text(st, 3),
			 (const char *)sqlite3_column_text(st, 4),
			 (const char *)sqlite3_column_text(st, 5),
			 (const char *)sqlite3_column_text(st, 6), h);
		sqlite3_bind_int64(up, 1, sqlite3_column_int64(st, 0));
		sqlite3_bind_text(up, 2, prev, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(up, 3, h, -1, SQLITE_TRANSIENT);
		assert_int_equal(sqlite3_step(up), SQLITE_DONE);
		sqlite3_reset(up);
		memcpy(prev, h, 65);
	}
	sqlite3_finalize(st);
	sqlite3_finalize(up);
	st = NULL;
	assert_int_equal(sqlite3_prepare_v2(db, "UPDATE settings SET value=?1 WHERE key='head_hash'",
					   -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_text(st, 1, prev, -1, SQLITE_TRANSIENT);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

/* Fill the journal with some history: 3 boards through to DONE. */
static void history(struct fx *f)
{
	char serial[JNL_SERIAL_MAX], uid[25];

	for (int i = 0; i < 3; i++) {
		jt_uid((uint64_t)(100 + i), uid);
		assert_int_equal(jnl_register(f->j, uid, "f0", "device", NULL, NULL), IMP_OK);
		allocate_ok(f->j, uid, serial);
		assert_int_equal(jnl_set_state(f->j, uid, JNL_ST_KEYS, "{\"pub\":\"04\"}"),
				 IMP_OK);
		to_record(f->j, uid);
		assert_int_equal(jnl_record_done(f->j, uid, uid, "jws"), IMP_OK);
	}
}

static imp_err verify_with(struct fx *f, EVP_PKEY *key, struct jnl_verify_report *r)
{
	struct jnl_verify_opts vo = { .pkey = key };

	return jnl_verify_chain(f->j, &vo, r);
}

static void test_chain_and_checkpoints(void **state)
{
	struct fx *f = *state;
	struct jnl_verify_report r;
	struct jnl_info info;
	EVP_PKEY *other = jt_key();
	char h[65], ts[40], detail[256], hash[65];
	int64_t mono;

	history(f);
	assert_int_equal(verify_with(f, f->key, &r), IMP_OK);
	assert_true(r.signatures_checked);
	assert_true(r.events > 30);
	assert_true(r.checkpoints >= 5);
	assert_true(r.last_checkpoint_seq > 0);
	assert_int_equal(r.events, r.last_checkpoint_seq + r.unsigned_tail);
	/* Every N events a checkpoint, each followed by its event. */
	assert_int_equal(jt_sql_int(f->path, "SELECT count(*) FROM checkpoints"),
			 jt_sql_int(f->path, "SELECT count(*) FROM events WHERE kind='checkpoint'"));
	/* On demand: the head is signed now. */
	assert_int_equal(jnl_checkpoint(f->j), IMP_OK);
	assert_int_equal(jnl_info(f->j, &info), IMP_OK);
	assert_int_equal(info.last_checkpoint_seq, info.head_seq - 1);
	assert_int_equal(verify_with(f, f->key, &r), IMP_OK);
	assert_int_equal(r.unsigned_tail, 1);
	/* Twice in a row: nothing new to sign. */
	assert_int_equal(jnl_checkpoint(f->j), IMP_OK);
	assert_int_equal(jnl_info(f->j, &info), IMP_OK);
	assert_int_equal(info.last_checkpoint_seq, info.head_seq - 1);
	/* Without a key: links checked, signatures not. */
	assert_int_equal(jnl_verify_chain(f->j, NULL, &r), IMP_OK);
	assert_false(r.signatures_checked);
	/* Wrong key: MUST fail. */
	assert_int_equal(verify_with(f, other, &r), IMP_ERR_AUDIT);
	assert_non_null(strstr(r.reason, "signature"));

	/* The documented hash of event 2, recomputed independently. */
	jt_sql_text(f->path, "SELECT hash FROM events WHERE seq=1", h, sizeof(h));
	jt_sql_text(f->path, "SELECT ts FROM events WHERE seq=2", ts, sizeof(ts));
	jt_sql_text(f->path, "SELECT detail FROM events WHERE seq=2", detail, sizeof(detail));
	mono = jt_sql_int(f->path, "SELECT mono_ns FROM events WHERE seq=2");
	{
		char kind[32], uid[64], serial[64], stored[65];

		jt_sql_text(f->path, "SELECT kind FROM events WHERE seq=2", kind, sizeof(kind));
		jt_sql_text(f->path, "SELECT uid FROM events WHERE seq=2", uid, sizeof(uid));
		jt_sql_text(f->path, "SELECT serial FROM events WHERE seq=2", serial, sizeof(serial));
		assert_int_equal(jt_sql_int(f->path, "SELECT serial IS NULL FROM events WHERE seq=2"),
				 1);
		doc_hash(h, 2, mono, ts, uid[0] ? uid : NULL, NULL, kind, detail, hash);
		jt_sql_text(f->path, "SELECT hash FROM events WHERE seq=2", stored, sizeof(stored));
		assert_string_equal(hash, stored);
		jt_sql_text(f->path, "SELECT prev_hash FROM events WHERE seq=1", stored,
			    sizeof(stored));
		assert_string_equal(stored, "0000000000000000000000000000000000000000000000000000000000000000");
	}
	EVP_PKEY_free(other);
}

static void test_triggers_refuse_changes(void **state)
{
	struct fx *f = *state;

	history(f);
	assert_int_not_equal(jt_sql(f->path, "UPDATE events SET detail='{}' WHERE seq=3"), 0);
	assert_int_not_equal(jt_sql(f->path, "DELETE FROM events WHERE seq=3"), 0);
	assert_int_not_equal(jt_sql(f->path, "DELETE FROM checkpoints"), 0);
	assert_int_not_equal(jt_sql(f->path, "UPDATE checkpoints SET signature='00'"), 0);
	verify_ok(f);
}

static void test_tamper_delete_event(void **state)
{
	struct fx *f = *state;
	struct jnl_verify_report r;
	char serial[JNL_SERIAL_MAX];

	history(f);
	assert_int_equal(jt_sql(f->path, "DROP TRIGGER events_no_delete; "
				"DELETE FROM events WHERE seq=7"), 0);
	assert_int_equal(verify_with(f, f->key, &r), IMP_ERR_AUDIT);
	assert_int_equal(r.bad_seq, 7);
	assert_non_null(strstr(r.reason, "missing"));
	assert_int_equal(jnl_verify_chain(f->j, NULL, &r), IMP_ERR_AUDIT);
	assert_int_equal(r.bad_seq, 7);
	(void)serial;
}

static void test_tamper_truncate_tail(void **state)
{
	struct fx *f = *state;
	struct jnl_verify_report r;
	char serial[JNL_SERIAL_MAX];
	int64_t head = 0;

	history(f);
	head = jt_sql_int(f->path, "SELECT max(seq) FROM events");
	assert_int_equal(jt_sql(f->path, "DROP TRIGGER events_no_delete; "
				"DELETE FROM events WHERE seq=(SELECT max(seq) FROM events)"), 0);
	assert_int_equal(verify_with(f, f->key, &r), IMP_ERR_AUDIT);
	assert_int_equal(r.bad_seq, (uint64_t)head);
	/* The journal refuses to extend a cut chain. */
	assert_int_equal(jnl_allocate(f->j, "9999", NULL, serial, sizeof(serial), NULL),
			 IMP_ERR_JOURNAL);
}

static void test_tamper_alter_detail(void **state)
{
	struct fx *f = *state;
	struct jnl_verify_report r;

	history(f);
	assert_int_equal(jt_sql(f->path, "DROP TRIGGER events_no_update; "
				"UPDATE events SET detail=replace(detail, '}', ',\"x\":1}') WHERE seq=9"), 0);
	assert_int_equal(verify_with(f, f->key, &r), IMP_ERR_AUDIT);
	assert_int_equal(r.bad_seq, 9);
	assert_non_null(strstr(r.reason, "altered"));
}

static void test_tamper_reorder(void **state)
{
	struct fx *f = *state;
	struct jnl_verify_report r;

	history(f);
	/* Swap events 10 and 11 (their contents, hashes and all). */
	assert_int_equal(jt_sql(f->path, "DROP TRIGGER events_no_update; "
				"UPDATE events SET seq=-1 WHERE seq=10; "
				"UPDATE events SET seq=10 WHERE seq=11; "
				"UPDATE events SET seq=11 WHERE seq=-1"), 0);
	assert_int_equal(verify_with(f, f->key, &r), IMP_ERR_AUDIT);
	assert_int_equal(r.bad_seq, 10);
}

static void test_tamper_checkpoint_signature(void **state)
{
	struct fx *f = *state;
	struct jnl_verify_report r;
	int64_t cp;

	history(f);
	cp = jt_sql_int(f->path, "SELECT min(seq) FROM checkpoints");
	assert_true(cp > 0);
	/* Flip one bit of s. */
	assert_int_equal(jt_sql(f->path, "DROP TRIGGER checkpoints_no_update; "
				"UPDATE checkpoints SET signature = substr(signature, 1, 127) || "
				"CASE substr(signature, 128, 1) WHEN '0' THEN '1' ELSE '0' END "
				"WHERE seq = (SELECT min(seq) FROM checkpoints)"), 0);
	assert_int_equal(verify_with(f, f->key, &r), IMP_ERR_AUDIT);
	assert_int_equal(r.bad_seq, (uint64_t)cp);
	/* Even without the key: the row no longer matches its chained event. */
	assert_int_equal(jnl_verify_chain(f->j, NULL, &r), IMP_ERR_AUDIT);
	assert_int_equal(r.bad_seq, (uint64_t)cp);
}

static void test_tamper_rehashed_chain(void **state)
{
	struct fx *f = *state;
	struct jnl_verify_report r;

	history(f);
	/* An attacker changes a serial in a detail and rebuilds every hash
	 * exactly as documented; without the signing key the checkpoints
	 * still catch it. */
	assert_int_equal(jt_sql(f->path, "DROP TRIGGER events_no_update; "
				"UPDATE events SET detail = replace(detail, '0000000002', "
				"'0000000009') WHERE kind = 'alloc'"), 0);
	forge_rehash(f->path);
	assert_int_equal(verify_with(f, f->key, &r), IMP_ERR_AUDIT);
	assert_true(r.bad_seq > 0);
	assert_non_null(strstr(r.reason, "checkpoint"));
}

/*
 * The boards table edited beside its events: each edit is found, naming the
 * board and what differs, and the table put back passes again.
 */
static void test_tamper_boards_table(void **state)
{
	static const struct {
		const char *edit, *undo, *uid, *expect;
	} cases[] = {
		{ "UPDATE boards SET state = 'DONE' WHERE uid = 'bb02'",
		  "UPDATE boards SET state = 'FAILED' WHERE uid = 'bb02'", "bb02",
		  "state 'DONE' (its events: 'FAILED')" },
		{ "UPDATE boards SET state = 'RECORD' WHERE uid = 'bb01'",
		  "UPDATE boards SET state = 'DONE' WHERE uid = 'bb01'", "bb01", "state 'RECORD'" },
		{ "UPDATE boards SET serial = 'X9', counter = 99 WHERE uid = 'bb01'",
		  "UPDATE boards SET serial = (SELECT json_extract(detail, '$.serial') FROM events "
		  "WHERE uid = 'bb01' AND kind = 'alloc'), counter = 1 WHERE uid = 'bb01'", "bb01",
		  "counter '99' (its events: '1')" },
		{ "UPDATE boards SET fixture = 'f9' WHERE uid = 'bb03'",
		  "UPDATE boards SET fixture = 'f4' WHERE uid = 'bb03'", "bb03",
		  "fixture 'f9' (its events: 'f4')" },
		{ "UPDATE boards SET key_mode = 'psk' WHERE uid = 'bb04'",
		  "UPDATE boards SET key_mode = 'device' WHERE uid = 'bb04'", "bb04",
		  "key mode 'psk' (its events: 'device')" },
		{ "CREATE TABLE keep AS SELECT * FROM boards WHERE uid = 'bb01'; "
		  "DELETE FROM boards WHERE uid = 'bb01'",
		  "INSERT INTO boards SELECT * FROM keep; DROP TABLE keep", "bb01",
		  "but no row in the boards table" },
		{ "INSERT INTO boards(uid, state, created, updated) VALUES ('bb99', 'IDENTIFY', "
		  "'t', 't')", "DELETE FROM boards WHERE uid = 'bb99'", "bb99", "but no event" },
	};
	struct fx *f = *state;
	char serial[JNL_SERIAL_MAX];
	struct jnl_board b;

	allocate_ok(f->j, "bb01", serial); /* counter 1 */
	to_record(f->j, "bb01");
	assert_int_equal(jnl_record_done(f->j, "bb01", "rec-bb01", "h.p.s"), IMP_OK);
	allocate_ok(f->j, "bb02", serial);
	assert_int_equal(jnl_reject(f->j, "bb02", IMP_ERR_CHALLENGE, "bad signature"), IMP_OK);
	assert_int_equal(jnl_quarantine(f->j, "bb03", "f4", "locked, unknown"), IMP_OK);
	assert_int_equal(jnl_register(f->j, "bb04", "f5", "device", &b, NULL), IMP_OK);
	jnl_board_release(&b);
	verify_ok(f);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mismatches m = { 0 };

		assert_int_equal(jt_sql(f->path, cases[i].edit), 0);
		assert_int_equal(jnl_verify_boards(f->j, mismatch_cb, &m, NULL), IMP_ERR_AUDIT);
		assert_int_equal(m.n, 1);
		assert_string_equal(m.uid, cases[i].uid);
		assert_non_null(strstr(m.what, cases[i].expect));
		assert_non_null(strstr(m.what, "restore the journal from backup"));
		assert_int_equal(jt_sql(f->path, cases[i].undo), 0);
		verify_ok(f);
	}
	/* An event's uid edited past what a board may have (the chain breaks
	 * too): reported as events without a row, once, and the replay ends. */
	{
		struct mismatches m = { 0 };

		assert_int_equal(jt_sql(f->path, "DROP TRIGGER events_no_update; UPDATE events SET "
				 "uid = printf('%.200c', 'a') WHERE uid = 'bb04'"), 0);
		assert_int_equal(jnl_verify_boards(f->j, mismatch_cb, &m, NULL), IMP_ERR_AUDIT);
		assert_int_equal(m.n, 2); /* bb04's row without events, the long uid's events */
	}
}

/* A journal path SQLite cannot open (over 504 bytes) is refused naming the
 * cause and the way out; one of exactly 504 bytes opens. */
static void test_path_too_long(void **state)
{
	struct fx *f = *state;
	char dir[600], path[700];
	struct jnl *j = NULL;
	size_t n;

	snprintf(dir, sizeof(dir), "%s", f->dir);
	while (strlen(dir) + 1 + 200 + 1 + 32 < 504) {
		size_t at = strlen(dir);

		dir[at] = '/';
		memset(dir + at + 1, 'd', 200);
		dir[at + 201] = '\0';
		assert_int_equal(mkdir(dir, 0700), 0);
	}
	n = 504 - strlen(dir) - 1;
	snprintf(path, sizeof(path), "%s/%0*d", dir, (int)n, 0);
	assert_int_equal(strlen(path), 504);
	j = jt_open(path, f->key, 10, 5);
	assert_non_null(j);
	jnl_close(j);
	snprintf(path, sizeof(path), "%s/%0*d", dir, (int)n + 1, 0);
	assert_int_equal(jnl_open(path, NULL, &j), IMP_ERR_CONFIG);
	assert_null(j);
	assert_non_null(strstr(jnl_last_error(), "505 bytes"));
	assert_non_null(strstr(jnl_last_error(), "--data-dir"));
}

static void test_read_only(void **state)
{
	struct fx *f = *state;
	struct jnl_opts o = { .read_only = true };
	struct jnl *ro = NULL;
	struct jnl_verify_report r;
	char serial[JNL_SERIAL_MAX];
	uint64_t counts[JNL_ST__COUNT];

	history(f);
	assert_int_equal(jnl_open(f->path, &o, &ro), IMP_OK);
	assert_int_equal(jnl_counts(ro, counts), IMP_OK);
	assert_int_equal(counts[JNL_ST_DONE], 3);
	assert_int_equal(jnl_verify_chain(ro, &(struct jnl_verify_opts){ .pkey = f->key },
						   &r), IMP_OK);
	assert_int_equal(jnl_allocate(ro, "0101", NULL, serial, sizeof(serial), NULL),
			 IMP_ERR_JOURNAL);
	jnl_close(ro);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_schema, setup, teardown),
		cmocka_unit_test_setup_teardown(test_allocate_and_resume, setup, teardown),
		cmocka_unit_test_setup_teardown(test_allocate_to, setup, teardown),
		cmocka_unit_test_setup_teardown(test_done_is_duplicate_and_reissue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quota_exhausted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_serial_scheme_not_injective, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_and_data, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_data_object, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fail_reject_quarantine, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quarantine_done_uid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_line_lost_and_refeed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outbox_and_done_atomic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_revocation_of_newest_identity, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_queries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_state_returns_event, setup, teardown),
		cmocka_unit_test_setup_teardown(test_chain_and_checkpoints, setup, teardown),
		cmocka_unit_test_setup_teardown(test_triggers_refuse_changes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tamper_delete_event, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tamper_truncate_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tamper_alter_detail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tamper_reorder, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tamper_checkpoint_signature, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tamper_rehashed_chain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tamper_boards_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_path_too_long, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_only, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
