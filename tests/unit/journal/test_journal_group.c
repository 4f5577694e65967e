/*
 * Group commit: fixture threads whose operations share one COMMIT.
 *  - no operation returns before its transaction is visible to another
 *    connection (SQLite makes a WAL commit visible only after its sync);
 *  - a process killed right after a shared COMMIT keeps every operation of
 *    it, from two boards or more;
 *  - a process killed right before one loses them all, and no thread has
 *    acted on any of them.
 * The journal's commit hook (journal_int.h, for tests) forces the sharing
 * (a short sleep before each COMMIT makes the other threads queue) and
 * places the kills.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "imprint/log.h"
#include "imprint/util.h"
#include "journal_int.h"
#include "jtest.h"

#define THREADS 8
#define PER_THREAD 12
#define MAX_BATCH_EVENTS 256

static const enum jnl_state steps[] = { JNL_ST_KEYS, JNL_ST_CERTIFY, JNL_ST_INJECT,
					JNL_ST_FIRMWARE };

static void nap_us(long us)
{
	struct timespec ts = { 0, us * 1000 };

	nanosleep(&ts, NULL);
}

/* ------------------------------------------------ visible on return */

struct shared {
	const char *path;
	struct jnl *j;
	uint64_t committed;     /* the head before the open batch */
	int max_allocs;         /* the most allocations one COMMIT held */
	unsigned max_ops;       /* the most operations one COMMIT held */
	unsigned commits;
	int invisible;          /* returns whose write another connection missed */
	int failures;
};

static void queue_hook(void *arg, enum jdb_commit_point at, unsigned ops, int src)
{
	struct shared *s = arg;

	(void)src;
	if (at != JDB_BEFORE_COMMIT)
		return;
	s->commits++;
	if (ops > s->max_ops)
		s->max_ops = ops;
	{
		sqlite3_stmt *st = NULL;

		if (sqlite3_prepare_v2(s->j->db, "SELECT count(*), coalesce(max(seq), 0) FROM "
				       "events WHERE seq > ?1 AND kind = 'alloc'", -1, &st,
				       NULL) == SQLITE_OK) {
			sqlite3_bind_int64(st, 1, (sqlite3_int64)s->committed);
			if (sqlite3_step(st) == SQLITE_ROW &&
			    sqlite3_column_int(st, 0) > s->max_allocs)
				s->max_allocs = sqlite3_column_int(st, 0);
		}
		sqlite3_finalize(st);
		if (sqlite3_prepare_v2(s->j->db, "SELECT coalesce(max(seq), 0) FROM events", -1,
				       &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
			s->committed = (uint64_t)sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	nap_us(300); /* the other threads queue for the lock meanwhile */
}

/* The board's state as another connection sees it ("" if no row). */
static void seen_state(sqlite3 *db, const char *uid, char out[32])
{
	sqlite3_stmt *st = NULL;

	out[0] = '\0';
	if (sqlite3_prepare_v2(db, "SELECT state FROM boards WHERE uid = ?1", -1, &st, NULL))
		return;
	sqlite3_bind_text(st, 1, uid, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		snprintf(out, 32, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
}

static bool seen_event(sqlite3 *db, uint64_t seq, const char *uid)
{
	sqlite3_stmt *st = NULL;
	bool found = false;

	if (sqlite3_prepare_v2(db, "SELECT 1 FROM events WHERE seq = ?1 AND uid = ?2", -1, &st,
			       NULL))
		return false;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
	sqlite3_bind_text(st, 2, uid, -1, SQLITE_STATIC);
	found = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	return found;
}

struct worker {
	struct shared *s;
	int index;
	int invisible, failures;
};

static void *visible_work(void *arg)
{
	struct worker *w = arg;
	sqlite3 *db = NULL;

	if (sqlite3_open_v2(w->s->path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		w->failures++;
		return NULL;
	}
	sqlite3_busy_timeout(db, 10000);
	for (int k = 0; k < PER_THREAD; k++) {
		char uid[25], serial[JNL_SERIAL_MAX], state[32];
		struct jnl_event_ref ev;

		jt_uid((uint64_t)(w->index * 1000 + k), uid);
		if (jnl_register(w->s->j, uid, "fx", "device", NULL, NULL)) {
			w->failures++;
			continue;
		}
		seen_state(db, uid, state);
		w->invisible += strcmp(state, "IDENTIFY") != 0;
		if (jnl_allocate(w->s->j, uid, "fx", serial, sizeof(serial), NULL)) {
			w->failures++;
			continue;
		}
		seen_state(db, uid, state);
		w->invisible += strcmp(state, "ALLOCATE") != 0;
		for (size_t i = 0; i < IMP_ARRAY_SIZE(steps); i++) {
			if (jnl_set_state_ev(w->s->j, uid, steps[i], NULL, &ev)) {
				w->failures++;
				break;
			}
			seen_state(db, uid, state);
			w->invisible += strcmp(state, jnl_state_name(steps[i])) != 0;
			w->invisible += !seen_event(db, ev.seq, uid);
		}
	}
	sqlite3_close(db);
	return NULL;
}

static void test_visible_on_return(void **state)
{
	char dir[256], path[300];
	struct shared s = { 0 };
	struct worker w[THREADS];
	pthread_t t[THREADS];
	EVP_PKEY *key = jt_key();
	struct jnl_verify_report r;
	struct jnl_verify_opts vo = { .pkey = key };

	(void)state;
	jt_mkdtemp(dir);
	snprintf(path, sizeof(path), "%s/j.sqlite", dir);
	s.path = path;
	s.j = jt_open(path, key, 100000, 5);
	jdb_set_commit_hook(s.j, queue_hook, &s);
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){ .s = &s, .index = i };
		assert_int_equal(pthread_create(&t[i], NULL, visible_work, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		s.invisible += w[i].invisible;
		s.failures += w[i].failures;
	}
	jdb_set_commit_hook(s.j, NULL, NULL);
	printf("group: %u commits for %d operations, at most %u in one, %d of them "
	       "allocations\n", s.commits, THREADS * PER_THREAD * (2 + (int)IMP_ARRAY_SIZE(steps)),
	       s.max_ops, s.max_allocs);
	assert_int_equal(s.failures, 0);
	assert_int_equal(s.invisible, 0);
	assert_true(s.max_ops >= 2); /* the commits were shared */
	assert_true(s.max_allocs >= 2); /* ... by allocations too (one intent each) */
	assert_true(s.commits < (unsigned)(THREADS * PER_THREAD * 6));
	assert_int_equal(jnl_verify_chain(s.j, &vo, &r), IMP_OK);
	assert_int_equal(r.events, (uint64_t)jt_sql_int(path, "SELECT count(*) FROM events"));
	jnl_close(s.j);
	EVP_PKEY_free(key);
	jt_rmtree(dir);
}

/* ------------------------------------------------ kill at the COMMIT */

struct killer {
	struct jnl *j;
	enum jdb_commit_point at;
	int fd;                 /* the batch's events go to the parent */
	uint64_t committed;     /* the head before the open batch */
	int skip;               /* shared commits of two boards to let through first */
};

/* The events of the open transaction, as "E seq uid" lines; the number of
 * distinct boards among them, and (allocs) of "alloc" events. */
static int batch_events(struct killer *k, char *buf, size_t cap, size_t *len, int *allocs)
{
	sqlite3_stmt *st = NULL;
	char seen[MAX_BATCH_EVENTS][25];
	int nseen = 0;

	*len = 0;
	*allocs = 0;
	if (sqlite3_prepare_v2(k->j->db, "SELECT seq, uid, kind FROM events WHERE seq > ?1 AND "
			       "uid IS NOT NULL", -1, &st, NULL))
		return 0;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)k->committed);
	while (sqlite3_step(st) == SQLITE_ROW && *len + 64 < cap) {
		const char *uid = (const char *)sqlite3_column_text(st, 1);
		bool known = false;

		*allocs += strcmp((const char *)sqlite3_column_text(st, 2), "alloc") == 0;

		*len += (size_t)snprintf(buf + *len, cap - *len, "E %lld %s\n",
					 (long long)sqlite3_column_int64(st, 0), uid);
		for (int i = 0; i < nseen; i++)
			known |= strcmp(seen[i], uid) == 0;
		if (!known && nseen < MAX_BATCH_EVENTS)
			snprintf(seen[nseen++], sizeof(seen[0]), "%s", uid);
	}
	sqlite3_finalize(st);
	return nseen;
}

static uint64_t head_of(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	uint64_t h = 0;

	if (sqlite3_prepare_v2(db, "SELECT coalesce(max(seq), 0) FROM events", -1, &st, NULL))
		return 0;
	if (sqlite3_step(st) == SQLITE_ROW)
		h = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return h;
}

static char batch_buf[MAX_BATCH_EVENTS * 64];
static size_t batch_len;

static void kill_hook(void *arg, enum jdb_commit_point at, unsigned ops, int src)
{
	struct killer *k = arg;
	int allocs = 0;

	if (at == JDB_BEFORE_COMMIT) {
		nap_us(300);
		/* Kill before a shared commit that holds two allocations or
		 * more: the anchor's intent (the first one's) is then one
		 * counter ahead of the journal, which the reopen accepts;
		 * the intent of the last would be refused as a rollback. */
		if (k->at == JDB_BEFORE_COMMIT && ops >= 2 &&
		    batch_events(k, batch_buf, sizeof(batch_buf), &batch_len, &allocs) >= 2 &&
		    allocs >= 2 && k->skip-- <= 0) {
			if (write(k->fd, batch_buf, batch_len) != (ssize_t)batch_len)
				_exit(3);
			raise(SIGKILL);
		}
		return;
	}
	if (src == SQLITE_OK && k->at == JDB_AFTER_COMMIT && ops >= 2 &&
	    batch_events(k, batch_buf, sizeof(batch_buf), &batch_len, &allocs) >= 2 &&
	    k->skip-- <= 0) {
		/* Durable now; no waiter has been told. */
		if (write(k->fd, batch_buf, batch_len) != (ssize_t)batch_len)
			_exit(3);
		raise(SIGKILL);
	}
	if (src == SQLITE_OK)
		k->committed = head_of(k->j->db);
}

struct actor {
	struct jnl *j;
	int index, fd;
};

/* Each return is an action on the board: said to the parent at once. */
static void *act_work(void *arg)
{
	struct actor *a = arg;

	for (int k = 0; k < PER_THREAD; k++) {
		char uid[25], serial[JNL_SERIAL_MAX], line[80];
		int n;

		jt_uid((uint64_t)(a->index * 1000 + k), uid);
		if (jnl_register(a->j, uid, "fx", "device", NULL, NULL) ||
		    jnl_allocate(a->j, uid, "fx", serial, sizeof(serial), NULL))
			_exit(4);
		for (size_t i = 0; i < IMP_ARRAY_SIZE(steps); i++) {
			struct jnl_event_ref ev;

			if (jnl_set_state_ev(a->j, uid, steps[i], NULL, &ev))
				_exit(5);
			n = snprintf(line, sizeof(line), "A %llu %s\n", (unsigned long long)ev.seq,
				     uid);
			if (write(a->fd, line, (size_t)n) != n)
				_exit(6);
		}
	}
	return NULL;
}

static void crash_child(const char *path, EVP_PKEY *key, enum jdb_commit_point at, int fd)
{
	struct killer k = { .at = at, .fd = fd, .skip = 6 };
	struct actor a[THREADS];
	pthread_t t[THREADS];

	imp_log_set_level(IMP_LOG_QUIET);
	k.j = jt_open(path, key, 100000, 5);
	jdb_set_commit_hook(k.j, kill_hook, &k);
	for (int i = 0; i < THREADS; i++) {
		a[i] = (struct actor){ .j = k.j, .index = i, .fd = fd };
		if (pthread_create(&t[i], NULL, act_work, &a[i]))
			_exit(7);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	_exit(0); /* no shared commit of two boards happened: the parent fails */
}

struct said {
	unsigned long long seq[THREADS * PER_THREAD * 8];
	char uid[THREADS * PER_THREAD * 8][25];
	int n;
};

static void parse(FILE *in, struct said *batch, struct said *acted)
{
	char line[128];

	while (fgets(line, sizeof(line), in)) {
		struct said *to = line[0] == 'E' ? batch : line[0] == 'A' ? acted : NULL;
		unsigned long long seq;
		char uid[25];

		if (!strchr(line, '\n'))
			continue; /* cut by the kill */
		if (!to || sscanf(line + 2, "%llu %24s", &seq, uid) != 2 ||
		    to->n >= (int)IMP_ARRAY_SIZE(to->seq))
			continue;
		to->seq[to->n] = seq;
		memcpy(to->uid[to->n], uid, sizeof(uid));
		to->n++;
	}
}

static int present(const char *path, unsigned long long seq, const char *uid)
{
	char sql[200];

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM events WHERE seq = %llu AND uid = '%s'",
		 seq, uid);
	return (int)jt_sql_int(path, sql);
}

static void crash_at(enum jdb_commit_point at)
{
	char dir[256], path[300];
	EVP_PKEY *key = jt_key();
	struct said *batch = calloc(1, sizeof(*batch)), *acted = calloc(1, sizeof(*acted));
	struct jnl_verify_report r;
	struct jnl_verify_opts vo = { .pkey = key };
	int fds[2], status = 0, boards = 0;
	struct jnl *j;
	FILE *in;
	pid_t pid;

	assert_non_null(batch);
	assert_non_null(acted);
	jt_mkdtemp(dir);
	snprintf(path, sizeof(path), "%s/j.sqlite", dir);
	jnl_close(jt_open(path, key, 100000, 5));
	assert_int_equal(pipe(fds), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		crash_child(path, key, at, fds[1]);
	}
	close(fds[1]);
	in = fdopen(fds[0], "r");
	assert_non_null(in);
	parse(in, batch, acted);
	fclose(in);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	assert_true(batch->n >= 2);
	for (int i = 0; i < batch->n; i++) {
		bool other = false;

		for (int k = 0; k < i; k++)
			other |= strcmp(batch->uid[k], batch->uid[i]) == 0;
		boards += !other;
	}
	assert_true(boards >= 2);

	j = jt_open(path, key, 100000, 5);
	assert_int_equal(jnl_verify_chain(j, &vo, &r), IMP_OK);
	jnl_close(j);
	for (int i = 0; i < batch->n; i++)
		assert_int_equal(present(path, batch->seq[i], batch->uid[i]),
				 at == JDB_AFTER_COMMIT ? 1 : 0);
	/* Everything a thread acted on survived; nothing of the lost batch was
	 * acted on. */
	for (int i = 0; i < acted->n; i++) {
		assert_int_equal(present(path, acted->seq[i], acted->uid[i]), 1);
		for (int k = 0; at == JDB_BEFORE_COMMIT && k < batch->n; k++)
			assert_false(acted->seq[i] == batch->seq[k]);
	}
	printf("group crash %s: %d events of %d boards in the killed commit, %d actions "
	       "before it\n", at == JDB_AFTER_COMMIT ? "after commit" : "before commit",
	       batch->n, boards, acted->n);
	free(batch);
	free(acted);
	EVP_PKEY_free(key);
	jt_rmtree(dir);
}

static void test_crash_after_shared_commit(void **state)
{
	(void)state;
	crash_at(JDB_AFTER_COMMIT);
}

static void test_crash_before_shared_commit(void **state)
{
	(void)state;
	crash_at(JDB_BEFORE_COMMIT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_visible_on_return),
		cmocka_unit_test(test_crash_after_shared_commit),
		cmocka_unit_test(test_crash_before_shared_commit),
	};

	imp_log_set_level(IMP_LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
