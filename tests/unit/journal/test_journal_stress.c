/*
 * Journal stress of the per-board write path after the performance work:
 * fixture threads share one handle (group commit, kept head, savepoint
 * rollbacks of failed operations: duplicate serials, bad data, the outbox
 * probe) while a second handle on the same file commits beside them. The
 * chain must verify and the settings' head must name the last event.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "jtest.h"

#define THREADS 5
#define PER_THREAD 20

static imp_err fmt(void *arg, uint64_t counter, char *out, size_t cap)
{
	unsigned *seed = arg;
	(void)seed;
	/* Sometimes counter 1's serial again: the allocation is refused
	 * (IMP_ERR_DUPLICATE) after its intent, counter and head flush. */
	if (counter > 1 && (random() % 4) == 0)
		snprintf(out, cap, "%010u", 1u);
	else
		snprintf(out, cap, "%010llu", (unsigned long long)counter);
	return IMP_OK;
}

struct arg {
	struct jnl *j;
	int t;
	int fails;
};

static void *worker(void *p)
{
	struct arg *a = p;
	char uid[25], serial[JNL_SERIAL_MAX];

	for (int i = 0; i < PER_THREAD; i++) {
		jt_uid((uint64_t)a->t * 1000 + (uint64_t)i + 1, uid);
		if (jnl_register(a->j, uid, "F", NULL, NULL, NULL) != IMP_OK) {
			a->fails++;
			continue;
		}
		for (int k = 0; k < 4; k++)
			if (jnl_allocate(a->j, uid, "F", serial, sizeof(serial), NULL) == IMP_OK)
				break;
		if (!serial[0])
			continue;
		(void)jnl_set_state(a->j, uid, JNL_ST_KEYS, "{\"a\":1}");
		/* refused: not JSON */
		(void)jnl_set_state(a->j, uid, JNL_ST_CERTIFY, "{bad");
		(void)jnl_set_state(a->j, uid, JNL_ST_CERTIFY, NULL);
		(void)jnl_outbox_probe(a->j, uid);
		(void)jnl_set_data(a->j, uid, "{\"b\":2,\"a\":null}");
		(void)jnl_fail(a->j, uid, "F", IMP_ERR_BOARD, "flaky");
	}
	return NULL;
}

static void test_stress(void **state)
{
	char dir[256], path[300];
	EVP_PKEY *key = jt_key();
	struct jnl_verify_report r;
	struct jnl *ja, *jb;
	struct jnl_opts o = { .station_id = "test-station", .quota = 100000,
			      .checkpoint_interval = 7, .sign = jt_sign, .sign_arg = key,
			      .signer_fpr = JT_FPR, .format_serial = fmt };
	pthread_t th[THREADS + 1];
	struct arg args[THREADS + 1];
	char head[80], last[80];
	imp_err rc;

	(void)state;
	jt_mkdtemp(dir);
	snprintf(path, sizeof(path), "%s/journal.sqlite", dir);
	rc = jnl_open(path, &o, &ja);
	assert_int_equal(rc, IMP_OK);
	rc = jnl_open(path, &o, &jb);
	assert_int_equal(rc, IMP_OK);
	for (int t = 0; t <= THREADS; t++) {
		args[t] = (struct arg){ t == THREADS ? jb : ja, t + 1, 0 };
		pthread_create(&th[t], NULL, worker, &args[t]);
	}
	for (int t = 0; t <= THREADS; t++)
		pthread_join(th[t], NULL);
	rc = jnl_verify_chain(ja, NULL, &r);
	if (rc)
		fprintf(stderr, "verify: %s\n", jnl_last_error());
	assert_int_equal(rc, IMP_OK);
	jnl_close(ja);
	jnl_close(jb);
	assert_int_equal(jt_sql_int(path, "SELECT value FROM settings WHERE key = 'head_seq'"),
			 jt_sql_int(path, "SELECT max(seq) FROM events"));
	jt_sql_text(path, "SELECT value FROM settings WHERE key = 'head_hash'", head, sizeof(head));
	jt_sql_text(path, "SELECT hash FROM events ORDER BY seq DESC LIMIT 1", last, sizeof(last));
	assert_string_equal(head, last);
	assert_int_equal(jt_sql_int(path, "SELECT count(*) FROM events"),
			 jt_sql_int(path, "SELECT max(seq) FROM events"));
	fprintf(stderr, "events %lld boards %lld serials %lld fails %d\n",
		(long long)jt_sql_int(path, "SELECT count(*) FROM events"),
		(long long)jt_sql_int(path, "SELECT count(*) FROM boards"),
		(long long)jt_sql_int(path, "SELECT count(serial) FROM boards"), args[0].fails);
	for (int t = 0; t <= THREADS; t++)
		assert_int_equal(args[t].fails, 0);
	EVP_PKEY_free(key);
	jt_rmtree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stress),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
