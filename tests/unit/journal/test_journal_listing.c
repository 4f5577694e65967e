/*
 * Journal unit tests of the listings' readers: jnl_list_boards (with the
 * step of the last error), jnl_list_records (--since, --serial) and
 * jnl_identity_record_id (the newest identity record after a reissue).
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

struct fx {
	char dir[256];
	char path[300];
	EVP_PKEY *key;
	struct jnl *j;
	char serial_a[JNL_SERIAL_MAX], serial_b[JNL_SERIAL_MAX], serial_c[JNL_SERIAL_MAX];
};

static void walk(struct jnl *j, const char *uid, enum jnl_state to)
{
	for (enum jnl_state s = JNL_ST_KEYS; s <= to; s++)
		assert_int_equal(jnl_set_state(j, uid, s, NULL), IMP_OK);
}

/* aa01: done, reissued, done again; bb01: rejected at CHALLENGE; cc01: in
 * flight at KEYS after a failed attempt. */
static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	jt_mkdtemp(f->dir);
	snprintf(f->path, sizeof(f->path), "%s/journal.sqlite", f->dir);
	f->key = jt_key();
	f->j = jt_open(f->path, f->key, 10, 5);
	assert_int_equal(jnl_allocate(f->j, "aa01", "F1", f->serial_a, JNL_SERIAL_MAX, NULL),
			 IMP_OK);
	walk(f->j, "aa01", JNL_ST_RECORD);
	assert_int_equal(jnl_record_done(f->j, "aa01", "rec-a1", "h.p.s1"), IMP_OK);
	assert_int_equal(jnl_allocate(f->j, "bb01", "F2", f->serial_b, JNL_SERIAL_MAX, NULL),
			 IMP_OK);
	walk(f->j, "bb01", JNL_ST_CHALLENGE);
	assert_int_equal(jnl_reject(f->j, "bb01", IMP_ERR_CHALLENGE, "bad signature"), IMP_OK);
	assert_int_equal(jnl_allocate(f->j, "cc01", "F3", f->serial_c, JNL_SERIAL_MAX, NULL),
			 IMP_OK);
	walk(f->j, "cc01", JNL_ST_KEYS);
	assert_int_equal(jnl_fail(f->j, "cc01", "F3", IMP_ERR_LINK, "uart timeout"), IMP_OK);
	assert_int_equal(jnl_reissue(f->j, "aa01", "rma 7", "supervisor"), IMP_OK);
	assert_int_equal(jnl_allocate(f->j, "aa01", "F1", f->serial_a, JNL_SERIAL_MAX, NULL),
			 IMP_OK);
	walk(f->j, "aa01", JNL_ST_RECORD);
	assert_int_equal(jnl_record_done(f->j, "aa01", "rec-a2", "h.p.s2"), IMP_OK);
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

struct seen {
	unsigned n;
	char uid[4][JNL_UID_HEX_MAX + 1];
	enum jnl_state state[4];
	char step[4][16];
};

static int board_cb(void *arg, const struct jnl_board *b, const char *error_step)
{
	struct seen *s = arg;

	if (s->n < 4) {
		snprintf(s->uid[s->n], sizeof(s->uid[0]), "%s", b->uid);
		s->state[s->n] = b->state;
		snprintf(s->step[s->n], sizeof(s->step[0]), "%s", error_step ? error_step : "-");
	}
	s->n++;
	return 0;
}

static void test_list_boards(void **state)
{
	struct fx *f = *state;
	struct seen s = { 0 };
	enum jnl_state failed = JNL_ST_FAILED, lock = JNL_ST_LOCK, bad = JNL_ST__COUNT;

	assert_int_equal(jnl_list_boards(f->j, NULL, board_cb, &s), IMP_OK);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.uid[0], "aa01"); /* oldest first */
	assert_int_equal(s.state[0], JNL_ST_DONE);
	assert_string_equal(s.step[0], "-");
	assert_string_equal(s.uid[1], "bb01");
	assert_int_equal(s.state[1], JNL_ST_FAILED);
	assert_string_equal(s.step[1], "CHALLENGE");
	assert_string_equal(s.uid[2], "cc01");
	assert_int_equal(s.state[2], JNL_ST_KEYS);
	assert_string_equal(s.step[2], "KEYS");

	memset(&s, 0, sizeof(s));
	assert_int_equal(jnl_list_boards(f->j, &failed, board_cb, &s), IMP_OK);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.uid[0], "bb01");
	memset(&s, 0, sizeof(s));
	assert_int_equal(jnl_list_boards(f->j, &lock, board_cb, &s), IMP_OK);
	assert_int_equal(s.n, 0);
	assert_int_equal(jnl_list_boards(f->j, &bad, board_cb, &s), IMP_ERR_USAGE);
}

struct recs {
	unsigned n;
	char ids[4][JNL_RECORD_ID_MAX];
};

static int record_cb(void *arg, const struct jnl_outbox_row *r)
{
	struct recs *s = arg;

	if (s->n < 4)
		snprintf(s->ids[s->n], sizeof(s->ids[0]), "%s", r->record_id);
	s->n++;
	return 0;
}

static void test_list_records(void **state)
{
	struct fx *f = *state;
	struct recs s = { 0 };

	assert_int_equal(jnl_outbox_add_revocation(f->j, "bb01", "rev-b", "h.p.r"), IMP_OK);
	assert_int_equal(jnl_list_records(f->j, NULL, NULL, record_cb, &s), IMP_OK);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.ids[0], "rec-a1");
	assert_string_equal(s.ids[1], "rec-a2");
	assert_string_equal(s.ids[2], "rev-b");

	memset(&s, 0, sizeof(s));
	assert_int_equal(jnl_list_records(f->j, NULL, f->serial_a, record_cb, &s), IMP_OK);
	assert_int_equal(s.n, 2);
	memset(&s, 0, sizeof(s));
	assert_int_equal(jnl_list_records(f->j, NULL, f->serial_b, record_cb, &s), IMP_OK);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.ids[0], "rev-b");
	memset(&s, 0, sizeof(s));
	assert_int_equal(jnl_list_records(f->j, NULL, "NOSUCH", record_cb, &s), IMP_OK);
	assert_int_equal(s.n, 0);
	memset(&s, 0, sizeof(s));
	assert_int_equal(jnl_list_records(f->j, "2000-01-01T00:00:00.000Z", NULL, record_cb, &s),
			 IMP_OK);
	assert_int_equal(s.n, 3);
	memset(&s, 0, sizeof(s));
	assert_int_equal(jnl_list_records(f->j, "2999-01-01T00:00:00.000Z", NULL, record_cb, &s),
			 IMP_OK);
	assert_int_equal(s.n, 0);
}

static void test_identity_record_id(void **state)
{
	struct fx *f = *state;
	char id[JNL_RECORD_ID_MAX];

	assert_int_equal(jnl_identity_record_id(f->j, "aa01", id), IMP_OK);
	assert_string_equal(id, "rec-a2"); /* the reissue's, not the first */
	assert_int_equal(jnl_identity_record_id(f->j, "AA01", id), IMP_OK);
	assert_string_equal(id, "rec-a2");
	assert_int_equal(jnl_outbox_add_revocation(f->j, "bb01", "rev-b", "h.p.r"), IMP_OK);
	assert_int_equal(jnl_identity_record_id(f->j, "bb01", id), IMP_ERR_NOT_FOUND);
	assert_string_equal(id, "");
	assert_int_equal(jnl_identity_record_id(f->j, "cc01", id), IMP_ERR_NOT_FOUND);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_list_boards, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_records, setup, teardown),
		cmocka_unit_test_setup_teardown(test_identity_record_id, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
