/*
 * Crash simulation: a child process provisions boards through the journal
 * (register, allocate, every state, failures, rejects, quarantine, reissue,
 * record + DONE) and resumes what the previous child left; the parent kills it
 * with SIGKILL at a random instant, 60 times over the same journal file. After
 * each kill the journal must reopen, its chain and checkpoints verify, no
 * serial is issued twice, every DONE board has its record in the outbox, and
 * everything the child was told was committed is there.
 *
 * SIGKILL loses the process, not the page cache: this covers crashes at any
 * instruction; power loss relies on SQLite's WAL with synchronous=FULL.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "imprint/log.h"
#include "imprint/util.h"
#include "jtest.h"

#define TRIALS 60
#define PER_TRIAL 4000   /* board numbers per trial: trial * PER_TRIAL + i */
#define MAX_BOARDS (TRIALS * PER_TRIAL)

/* ----------------------------------------------------------------- child */

static FILE *ack;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(ack, fmt, ap);
	va_end(ap);
	fflush(ack);
}

static uint64_t uid_num(const char *uid)
{
	return strtoull(uid + 6, NULL, 16);
}

/* Drive a board from its journaled state to DONE; false if it stops. */
static bool finish(struct jnl *j, const char *uid)
{
	struct jnl_board b;
	char serial[JNL_SERIAL_MAX], rec[64];
	uint64_t n = uid_num(uid);

	for (;;) {
		enum jnl_state next;
		char data[96];

		if (jnl_get_board(j, uid, &b) != IMP_OK)
			_exit(3);
		next = b.state + 1;
		switch (b.state) {
		case JNL_ST_CONNECT:
		case JNL_ST_IDENTIFY:
			jnl_board_release(&b);
			if (jnl_allocate(j, uid, "fx", serial, sizeof(serial), NULL))
				return false;
			say("A %llu %s\n", (unsigned long long)n, serial);
			continue;
		case JNL_ST_RECORD:
			snprintf(rec, sizeof(rec), "rec-%s-%u", uid, b.reissues);
			jnl_board_release(&b);
			if (jnl_record_done(j, uid, rec, "hdr.payload.sig"))
				_exit(4);
			say("D %llu\n", (unsigned long long)n);
			return true;
		case JNL_ST_DONE:
		case JNL_ST_FAILED:
		case JNL_ST_QUARANTINED:
			jnl_board_release(&b);
			return true;
		default:
			jnl_board_release(&b);
			snprintf(data, sizeof(data), "{\"step%d\":\"%llx\"}", (int)next,
				 (unsigned long long)n);
			if (jnl_set_state(j, uid, next, data))
				_exit(5);
			say("S %llu %d\n", (unsigned long long)n, (int)next);
			if (rand() % 12 == 0) {
				if (jnl_fail(j, uid, "fx", IMP_ERR_LINK, "uart timeout"))
					_exit(6);
			}
			if (rand() % 40 == 0) {
				if (jnl_reject(j, uid, IMP_ERR_CHALLENGE, "bad signature"))
					_exit(7);
				say("J %llu\n", (unsigned long long)n);
				return true;
			}
		}
	}
}

struct uid_list {
	char uids[256][JNL_UID_HEX_MAX + 1];
	int n;
};

static int collect(void *arg, const struct jnl_board *b)
{
	struct uid_list *l = arg;

	if (l->n < 256)
		snprintf(l->uids[l->n++], JNL_UID_HEX_MAX + 1, "%s", b->uid);
	return 0;
}

/* Resume what is in flight, then provision up to max_new new boards. */
static void child(const char *path, EVP_PKEY *key, int trial, int max_new, int fd)
{
	struct jnl_opts o = {
		.station_id = "crash-station",
		.quota = 1000000,
		.checkpoint_interval = 7,
		.sign = jt_sign,
		.sign_arg = key,
		.signer_fpr = JT_FPR,
	};
	struct jnl *j = NULL;
	struct uid_list *todo = calloc(1, sizeof(*todo));

	ack = fdopen(fd, "w");
	srand((unsigned)trial * 7919u + 1u);
	imp_log_set_level(getenv("JT_VERBOSE") ? IMP_LOG_DEBUG : IMP_LOG_QUIET);
	if (!ack || !todo || jnl_open(path, &o, &j) != IMP_OK)
		_exit(2);
	say("O\n");
	/* Resume first: finish what the previous run left in flight. */
	if (jnl_list_unfinished(j, collect, todo) != IMP_OK)
		_exit(8);
	for (int i = 0; i < todo->n; i++)
		finish(j, todo->uids[i]);
	for (int i = 0; i < max_new; i++) {
		uint64_t n = (uint64_t)trial * PER_TRIAL + (uint64_t)i;
		char uid[25];
		imp_err rc;

		jt_uid(n, uid);
		if (rand() % 25 == 0) {
			if (jnl_quarantine(j, uid, "fx", "locked, unknown"))
				_exit(9);
			say("Q %llu\n", (unsigned long long)n);
			continue;
		}
		rc = jnl_register(j, uid, "fx", "device", NULL, NULL);
		if (rc == IMP_ERR_DUPLICATE || rc == IMP_ERR_BOARD || rc == IMP_ERR_QUARANTINE)
			continue;
		if (rc)
			_exit(10);
		say("S %llu %d\n", (unsigned long long)n, (int)JNL_ST_IDENTIFY);
		finish(j, uid);
		if (rand() % 15 == 0) {
			struct jnl_board b;

			if (jnl_get_board(j, uid, &b))
				_exit(11);
			if (b.serial[0]) {
				if (jnl_reissue(j, uid, "rework", "supervisor"))
					_exit(12);
				say("I %llu\n", (unsigned long long)n);
				finish(j, uid);
			}
			jnl_board_release(&b);
		}
	}
	jnl_close(j);
	_exit(0);
}

/* ---------------------------------------------------------------- parent */

struct expect {
	char serial[JNL_SERIAL_MAX];
	int8_t min_state;   /* -1: unknown board */
	bool done;          /* acked DONE, not reissued since */
	bool quarantined;
	bool rejected;
	uint32_t reissues;  /* acked reissues */
};

static struct expect *exp_;

static void read_acks(int fd, int *opened, int *lines)
{
	FILE *in = fdopen(fd, "r");
	char line[160];

	assert_non_null(in);
	while (fgets(line, sizeof(line), in)) {
		unsigned long long n = 0;
		char serial[JNL_SERIAL_MAX];
		int st;

		(*lines)++;
		if (line[0] == 'O') {
			(*opened)++;
			continue;
		}
		/* A line cut by the kill was never fully said: ignore it. */
		if (!strchr(line, '\n'))
			break;
		assert_true(sscanf(line + 2, "%llu", &n) == 1);
		assert_true(n < MAX_BOARDS);
		switch (line[0]) {
		case 'A':
			assert_int_equal(sscanf(line, "A %llu %63s", &n, serial), 2);
			if (exp_[n].serial[0])
				assert_string_equal(exp_[n].serial, serial);
			snprintf(exp_[n].serial, sizeof(exp_[n].serial), "%s", serial);
			if (exp_[n].min_state < JNL_ST_ALLOCATE)
				exp_[n].min_state = JNL_ST_ALLOCATE;
			break;
		case 'S':
			assert_int_equal(sscanf(line, "S %llu %d", &n, &st), 2);
			exp_[n].min_state = (int8_t)st;
			break;
		case 'D':
			exp_[n].done = true;
			exp_[n].min_state = JNL_ST_DONE;
			break;
		case 'J':
			exp_[n].rejected = true;
			break;
		case 'Q':
			exp_[n].quarantined = true;
			break;
		case 'I':
			exp_[n].reissues++;
			exp_[n].done = false;
			exp_[n].rejected = false;
			exp_[n].min_state = JNL_ST_ALLOCATE;
			break;
		default:
			fail_msg("bad ack line %s", line);
		}
	}
	fclose(in);
}

static void check_journal(const char *path, EVP_PKEY *key, bool any_opened)
{
	struct jnl *j = NULL;
	struct jnl_opts o = { .must_exist = true };
	struct jnl_verify_opts vo = { .pkey = key };
	struct jnl_verify_report r;
	char ok[16];
	imp_err rc;

	rc = jnl_open(path, &o, &j);
	if (rc == IMP_ERR_NOT_FOUND && !any_opened) {
		/* Killed while creating it: still no journal, and nobody was told
		 * otherwise. */
		return;
	}
	assert_int_equal(rc, IMP_OK);
	rc = jnl_verify_chain(j, &vo, &r);
	if (rc)
		fprintf(stderr, "verify: %s at %llu: %s\n", imp_err_name(rc),
			(unsigned long long)r.bad_seq, r.reason);
	assert_int_equal(rc, IMP_OK);
	jt_sql_text(path, "PRAGMA integrity_check", ok, sizeof(ok));
	assert_string_equal(ok, "ok");
	/* No serial twice, no serial lost: counter == boards with a serial ==
	 * alloc events. */
	assert_int_equal(jt_sql_int(path, "SELECT count(serial) - count(DISTINCT serial) FROM boards"),
			 0);
	assert_int_equal(jt_sql_int(path, "SELECT count(serial) FROM boards"),
			 jt_sql_int(path, "SELECT value FROM settings WHERE key='serial_counter'"));
	assert_int_equal(jt_sql_int(path, "SELECT count(serial) FROM boards"),
			 jt_sql_int(path, "SELECT count(*) FROM events WHERE kind='alloc'"));
	/* Every DONE board has its signed record queued. */
	assert_int_equal(jt_sql_int(path, "SELECT count(*) FROM boards b WHERE state='DONE' AND "
				    "NOT EXISTS (SELECT 1 FROM outbox o WHERE o.uid=b.uid AND "
				    "o.kind='identity')"), 0);
	/* And no record without its board having been DONE. */
	assert_int_equal(jt_sql_int(path, "SELECT count(*) FROM outbox o WHERE NOT EXISTS "
				    "(SELECT 1 FROM events e WHERE e.uid=o.uid AND e.kind='state' AND "
				    "e.detail LIKE '%\"to\":\"DONE\"%')"), 0);

	/* Everything acknowledged is durable. */
	for (uint64_t n = 0; n < MAX_BOARDS; n++) {
		struct expect *e = &exp_[n];
		struct jnl_board b;
		char uid[25];

		if (e->min_state < 0 && !e->quarantined)
			continue;
		jt_uid(n, uid);
		assert_int_equal(jnl_get_board(j, uid, &b), IMP_OK);
		/* A reissue committed just before the kill, whose ack was never
		 * written, legitimately moved the board back to ALLOCATE. */
		assert_true(b.reissues >= e->reissues);
		assert_true(b.reissues <= e->reissues + 1);
		if (b.reissues > e->reissues) {
			assert_true(b.state >= JNL_ST_ALLOCATE && b.state != JNL_ST_QUARANTINED);
		} else if (e->quarantined) {
			assert_int_equal(b.state, JNL_ST_QUARANTINED);
		} else if (e->rejected) {
			assert_int_equal(b.state, JNL_ST_FAILED);
		} else {
			if ((int)b.state < e->min_state)
				fail_msg("board %llu is %s, acked %s", (unsigned long long)n,
					 jnl_state_name(b.state), jnl_state_name(e->min_state));
			if (e->done)
				assert_int_equal(b.state, JNL_ST_DONE);
		}
		if (e->serial[0])
			assert_string_equal(b.serial, e->serial);
		jnl_board_release(&b);
	}
	jnl_close(j);
}

static void test_sigkill_anywhere(void **state)
{
	char dir[256], path[300];
	EVP_PKEY *key = jt_key();
	int opened = 0, lines = 0, killed = 0;
	uint64_t counts[JNL_ST__COUNT];
	struct jnl *j;

	(void)state;
	exp_ = calloc(MAX_BOARDS, sizeof(*exp_));
	assert_non_null(exp_);
	for (int i = 0; i < MAX_BOARDS; i++)
		exp_[i].min_state = -1;
	jt_mkdtemp(dir);
	snprintf(path, sizeof(path), "%s/journal.sqlite", dir);
	srand(12345);
	for (int trial = 0; trial < TRIALS; trial++) {
		int fds[2], status = 0;
		pid_t pid;

		assert_int_equal(pipe(fds), 0);
		fflush(NULL);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(fds[0]);
			child(path, key, trial, PER_TRIAL, fds[1]);
		}
		close(fds[1]);
		/* Anywhere from before open to deep into the run. */
		imp_sleep_us((uint64_t)(rand() % 60000));
		kill(pid, SIGKILL);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		if (WIFSIGNALED(status))
			killed++;
		else
			assert_int_equal(WEXITSTATUS(status), 0);
		read_acks(fds[0], &opened, &lines);
		check_journal(path, key, opened > 0);
	}
	/* The runs did real work and were really cut. */
	printf("crash: %d trials, %d killed, %d opened, %d acks\n", TRIALS, killed, opened, lines);
	assert_true(killed >= TRIALS / 2);
	assert_true(opened >= TRIALS / 3);
	assert_true(lines >= TRIALS); /* at least one acknowledged step per trial on average */
	/* A last clean run resumes everything that was left in flight. */
	{
		int fds[2], status = 0;
		pid_t pid;

		assert_int_equal(pipe(fds), 0);
		pid = fork();
		if (pid == 0) {
			close(fds[0]);
			child(path, key, TRIALS, 0, fds[1]); /* resume only */
		}
		close(fds[1]);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		read_acks(fds[0], &opened, &lines);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	check_journal(path, key, true);
	assert_int_equal(jnl_open(path, &(struct jnl_opts){ .must_exist = true },
					   &j), IMP_OK);
	assert_int_equal(jnl_counts(j, counts), IMP_OK);
	for (int s = JNL_ST_CONNECT; s < JNL_ST_DONE; s++)
		assert_int_equal(counts[s], 0);
	assert_true(counts[JNL_ST_DONE] > 0);
	jnl_close(j);
	EVP_PKEY_free(key);
	free(exp_);
	jt_rmtree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sigkill_anywhere),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
