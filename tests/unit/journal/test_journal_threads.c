/*
 * Concurrent allocation: fixture worker threads allocating at once must never
 * issue a serial twice, never give a UID two identities, and never produce
 * one board over the quota.
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

#define THREADS 4
#define BOARDS 1000

struct worker {
	struct jnl *shared;  /* NULL: open an own handle on path */
	const char *path;
	int index;
	int nuids;                    /* UIDs 0..nuids-1 ... */
	bool all_uids;                /* ... every thread takes all (else 1 in THREADS) */
	char (*serials)[JNL_SERIAL_MAX]; /* per UID, written by the thread that got it */
	int ok, quota, other, existing;
	char mine[BOARDS][JNL_SERIAL_MAX];
};

static void *work(void *arg)
{
	struct worker *w = arg;
	struct jnl *j = w->shared;
	struct jnl_opts o = { .busy_timeout_ms = 60000 };

	if (!j && jnl_open(w->path, &o, &j) != IMP_OK)
		return NULL;
	for (int k = 0; k < w->nuids; k++) {
		/* With all_uids, each thread walks the UIDs in its own order. */
		int off = w->index * w->nuids / THREADS;
		int n = !w->all_uids ? k : w->index % 2 ? (w->nuids - 1 - k + off) % w->nuids
							  : (k + off) % w->nuids;
		char uid[25], serial[JNL_SERIAL_MAX];
		bool existing = false;
		imp_err rc;

		if (!w->all_uids && n % THREADS != w->index)
			continue;
		jt_uid((uint64_t)n, uid);
		rc = jnl_allocate(j, uid, "f", serial, sizeof(serial), &existing);
		if (rc == IMP_OK) {
			w->ok++;
			w->existing += existing;
			memcpy(w->mine[n], serial, sizeof(serial));
		} else if (rc == IMP_ERR_QUOTA) {
			w->quota++;
		} else {
			fprintf(stderr, "allocate: %s: %s\n", imp_err_name(rc),
				jnl_last_error());
			w->other++;
		}
	}
	if (!w->shared)
		jnl_close(j);
	return NULL;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void run(struct worker *w, struct jnl *shared, const char *path, int nuids,
		bool all_uids)
{
	pthread_t t[THREADS];

	for (int i = 0; i < THREADS; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].shared = shared;
		w[i].path = path;
		w[i].index = i;
		w[i].nuids = nuids;
		w[i].all_uids = all_uids;
		assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
}

/* Gather every serial handed out, sorted; returns how many. */
static int gather(struct worker *w, int nuids, char (*out)[JNL_SERIAL_MAX])
{
	int n = 0;

	for (int i = 0; i < THREADS; i++)
		for (int u = 0; u < nuids; u++)
			if (w[i].mine[u][0])
				memcpy(out[n++], w[i].mine[u], JNL_SERIAL_MAX);
	qsort(out, (size_t)n, JNL_SERIAL_MAX, cmp_str);
	return n;
}

static void check_db(const char *path, int64_t issued)
{
	struct jnl *j = jt_open(path, NULL, 0, 0);
	struct jnl_verify_report r;

	assert_int_equal(jt_sql_int(path, "SELECT count(serial) FROM boards"), issued);
	assert_int_equal(jt_sql_int(path, "SELECT count(DISTINCT serial) FROM boards"), issued);
	assert_int_equal(jt_sql_int(path, "SELECT value FROM settings WHERE key='serial_counter'"),
			 issued);
	assert_int_equal(jt_sql_int(path, "SELECT count(*) FROM events WHERE kind='alloc'"), issued);
	assert_int_equal(jnl_verify_chain(j, NULL, &r), IMP_OK);
	jnl_close(j);
}

static void test_shared_handle_unique(void **state)
{
	static struct worker w[THREADS];
	static char all[THREADS * BOARDS][JNL_SERIAL_MAX];
	char dir[256], path[300];
	struct jnl *j;
	int n, ok = 0;

	(void)state;
	jt_mkdtemp(dir);
	snprintf(path, sizeof(path), "%s/j.sqlite", dir);
	j = jt_open(path, NULL, BOARDS, 0);
	run(w, j, path, BOARDS, false);
	jnl_close(j);
	for (int i = 0; i < THREADS; i++) {
		assert_int_equal(w[i].other, 0);
		assert_int_equal(w[i].quota, 0);
		ok += w[i].ok;
	}
	assert_int_equal(ok, BOARDS);
	n = gather(w, BOARDS, all);
	assert_int_equal(n, BOARDS);
	/* Exactly 1..1000, each once. */
	for (int i = 0; i < n; i++) {
		char want[JNL_SERIAL_MAX];

		snprintf(want, sizeof(want), "%010d", i + 1);
		assert_string_equal(all[i], want);
	}
	check_db(path, BOARDS);
	jt_rmtree(dir);
}

static void test_own_handles_quota(void **state)
{
	static struct worker w[THREADS];
	static char all[THREADS * BOARDS][JNL_SERIAL_MAX];
	char dir[256], path[300];
	const int quota = 700;
	int n, ok = 0, refused = 0;

	(void)state;
	jt_mkdtemp(dir);
	snprintf(path, sizeof(path), "%s/j.sqlite", dir);
	jnl_close(jt_open(path, NULL, (uint64_t)quota, 0));
	run(w, NULL, path, BOARDS, false);
	for (int i = 0; i < THREADS; i++) {
		assert_int_equal(w[i].other, 0);
		ok += w[i].ok;
		refused += w[i].quota;
	}
	/* Not one board over the quota, none lost under it. */
	assert_int_equal(ok, quota);
	assert_int_equal(refused, BOARDS - quota);
	n = gather(w, BOARDS, all);
	assert_int_equal(n, quota);
	for (int i = 1; i < n; i++)
		assert_string_not_equal(all[i - 1], all[i]);
	check_db(path, quota);
	jt_rmtree(dir);
}

static void test_same_uids_race(void **state)
{
	static struct worker w[THREADS];
	char dir[256], path[300];
	const int nuids = 200;
	int existing = 0;

	(void)state;
	jt_mkdtemp(dir);
	snprintf(path, sizeof(path), "%s/j.sqlite", dir);
	jnl_close(jt_open(path, NULL, BOARDS, 0));
	run(w, NULL, path, nuids, true);
	for (int i = 0; i < THREADS; i++) {
		assert_int_equal(w[i].other, 0);
		assert_int_equal(w[i].ok, nuids);
		existing += w[i].existing;
	}
	/* One identity per UID: every thread got the same serial for it, and
	 * all but one call per UID were told it already existed. */
	assert_int_equal(existing, (THREADS - 1) * nuids);
	for (int u = 0; u < nuids; u++)
		for (int i = 1; i < THREADS; i++)
			assert_string_equal(w[i].mine[u], w[0].mine[u]);
	check_db(path, nuids);
	jt_rmtree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shared_handle_unique),
		cmocka_unit_test(test_own_handles_quota),
		cmocka_unit_test(test_same_uids_race),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
