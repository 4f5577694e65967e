/*
 * Journal unit test of the chain head a handle keeps between its appends
 * (chain.c): after every committed operation the settings' head_seq and
 * head_hash name the last event; an operation rolled back to its savepoint
 * (the outbox probe) leaves no gap; two handles on one file, each keeping
 * a head, append in turn without forking the chain.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "jtest.h"

/* The committed head in the settings is the last event, read on a
 * connection of its own. */
static void head_is_last(const char *path)
{
	char head[80], last[80];

	assert_int_equal(jt_sql_int(path, "SELECT value FROM settings WHERE key = 'head_seq'"),
			 jt_sql_int(path, "SELECT max(seq) FROM events"));
	jt_sql_text(path, "SELECT value FROM settings WHERE key = 'head_hash'", head, sizeof(head));
	jt_sql_text(path, "SELECT hash FROM events ORDER BY seq DESC LIMIT 1", last, sizeof(last));
	assert_string_equal(head, last);
}

static void test_head_follows_commits(void **state)
{
	char dir[256], path[300], serial[JNL_SERIAL_MAX];
	EVP_PKEY *key = jt_key();
	struct jnl_verify_report r;
	struct jnl *j;
	int64_t before;

	(void)state;
	jt_mkdtemp(dir);
	snprintf(path, sizeof(path), "%s/journal.sqlite", dir);
	j = jt_open(path, key, 10, 3);
	head_is_last(path);
	assert_int_equal(jnl_allocate(j, "aa01", "F1", serial, sizeof(serial), NULL), IMP_OK);
	head_is_last(path);
	for (enum jnl_state s = JNL_ST_KEYS; s <= JNL_ST_LOCK; s++) {
		assert_int_equal(jnl_set_state(j, "aa01", s, "{\"k\":1}"), IMP_OK);
		head_is_last(path);
	}
	assert_int_equal(jnl_set_state(j, "aa01", JNL_ST_RECORD, NULL), IMP_OK);
	/* The probe appends an event and rolls it back: no gap, no fork. */
	before = jt_sql_int(path, "SELECT max(seq) FROM events");
	assert_int_equal(jnl_outbox_probe(j, "aa01"), IMP_OK);
	assert_int_equal(jt_sql_int(path, "SELECT max(seq) FROM events"), before);
	head_is_last(path);
	assert_int_equal(jnl_record_done(j, "aa01", "rec-1", "h.p.s"), IMP_OK);
	head_is_last(path);
	assert_int_equal(jt_sql_int(path, "SELECT count(*) FROM events"),
			 jt_sql_int(path, "SELECT max(seq) FROM events"));
	assert_int_equal(jnl_verify_chain(j, NULL, &r), IMP_OK);
	jnl_close(j);
	EVP_PKEY_free(key);
	jt_rmtree(dir);
}

/* A move to LOCK proves the outbox can take the record: refused with the
 * outbox refusing (the board stays at CHALLENGE, the chain whole), taken
 * once it takes rows again. */
static void test_lock_move_probes_outbox(void **state)
{
	char dir[256], path[300], serial[JNL_SERIAL_MAX];
	EVP_PKEY *key = jt_key();
	struct jnl_verify_report r;
	struct jnl_board b = { 0 };
	struct jnl *j;
	int64_t before;

	(void)state;
	jt_mkdtemp(dir);
	snprintf(path, sizeof(path), "%s/journal.sqlite", dir);
	j = jt_open(path, key, 10, 1000);
	assert_int_equal(jnl_allocate(j, "aa01", "F1", serial, sizeof(serial), NULL), IMP_OK);
	for (enum jnl_state s = JNL_ST_KEYS; s <= JNL_ST_CHALLENGE; s++)
		assert_int_equal(jnl_set_state(j, "aa01", s, NULL), IMP_OK);
	assert_int_equal(jt_sql(path, "CREATE TRIGGER refuse BEFORE INSERT ON outbox BEGIN "
			       "SELECT RAISE(ABORT, 'outbox refuses'); END"), 0);
	before = jt_sql_int(path, "SELECT max(seq) FROM events");
	assert_int_equal(jnl_set_state(j, "aa01", JNL_ST_LOCK, "{\"k\":1}"), IMP_ERR_JOURNAL);
	assert_non_null(strstr(jnl_last_error(), "cannot store the record of board aa01"));
	assert_non_null(strstr(jnl_last_error(), "outbox refuses"));
	assert_int_equal(jt_sql_int(path, "SELECT max(seq) FROM events"), before);
	assert_int_equal(jnl_get_board(j, "aa01", &b), IMP_OK);
	assert_int_equal(b.state, JNL_ST_CHALLENGE);
	jnl_board_release(&b);
	assert_int_equal(jt_sql(path, "DROP TRIGGER refuse"), 0);
	assert_int_equal(jnl_set_state(j, "aa01", JNL_ST_LOCK, "{\"k\":1}"), IMP_OK);
	head_is_last(path);
	assert_int_equal(jt_sql_int(path, "SELECT count(*) FROM outbox"), 0);
	assert_int_equal(jnl_verify_chain(j, NULL, &r), IMP_OK);
	jnl_close(j);
	EVP_PKEY_free(key);
	jt_rmtree(dir);
}

static void test_two_handles_in_turn(void **state)
{
	char dir[256], path[300], serial[JNL_SERIAL_MAX], uid[25];
	EVP_PKEY *key = jt_key();
	struct jnl_verify_report r;
	struct jnl *a, *b;

	(void)state;
	jt_mkdtemp(dir);
	snprintf(path, sizeof(path), "%s/journal.sqlite", dir);
	a = jt_open(path, key, 100, 7);
	b = jt_open(path, key, 100, 7);
	for (int i = 0; i < 12; i++) {
		struct jnl *h = i % 3 == 2 ? b : a; /* a twice, b once */

		jt_uid((uint64_t)i, uid);
		assert_int_equal(jnl_allocate(h, uid, "F", serial, sizeof(serial), NULL), IMP_OK);
		assert_int_equal(jnl_set_state(i % 2 ? a : b, uid, JNL_ST_KEYS, "{\"n\":2}"), IMP_OK);
		head_is_last(path);
	}
	assert_int_equal(jnl_verify_chain(a, NULL, &r), IMP_OK);
	assert_int_equal(r.events, (uint64_t)jt_sql_int(path, "SELECT max(seq) FROM events"));
	jnl_close(a);
	jnl_close(b);
	EVP_PKEY_free(key);
	jt_rmtree(dir);
}

/* An operation that re-reads the head because another handle committed,
 * appends, and is rolled back to its savepoint (the outbox probe) must not
 * leave the head it read before that commit as current: the next append
 * of the handle would take a seq the other handle already used. */
static void test_rollback_after_other_commit(void **state)
{
	char dir[256], path[300], serial[JNL_SERIAL_MAX];
	EVP_PKEY *key = jt_key();
	struct jnl_verify_report r;
	struct jnl *a, *b;

	(void)state;
	jt_mkdtemp(dir);
	snprintf(path, sizeof(path), "%s/journal.sqlite", dir);
	a = jt_open(path, key, 100, 50);
	b = jt_open(path, key, 100, 50);
	assert_int_equal(jnl_allocate(a, "aa01", "F1", serial, sizeof(serial), NULL), IMP_OK);
	assert_int_equal(jnl_allocate(b, "aa02", "F2", serial, sizeof(serial), NULL), IMP_OK);
	/* a's first append since b's commit re-reads the head, then is undone */
	assert_int_equal(jnl_outbox_probe(a, "aa01"), IMP_OK);
	assert_int_equal(jnl_set_state(a, "aa01", JNL_ST_KEYS, "{\"k\":1}"), IMP_OK);
	head_is_last(path);
	assert_int_equal(jnl_verify_chain(a, NULL, &r), IMP_OK);
	jnl_close(a);
	jnl_close(b);
	EVP_PKEY_free(key);
	jt_rmtree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_head_follows_commits),
		cmocka_unit_test(test_lock_move_probes_outbox),
		cmocka_unit_test(test_two_handles_in_turn),
		cmocka_unit_test(test_rollback_after_other_commit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
