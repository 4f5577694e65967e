/*
 * Journal unit test of the migration from schema 2 to 3 (boards rebuilt
 * with its CHECK constraints as chains of comparisons): a version 2
 * journal reads as it is on a read-only open, a read-write open migrates it
 * keeping every row and the chain, and the constraints refuse exactly what
 * they refused before, on a migrated journal and on a new one.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "jtest.h"
#include "journal/journal.h"

/* boards as schema 2 wrote it, under another name (journal/db.c migrations[0], PERSISTED). */
#define BOARDS_V2(name) "CREATE TABLE " name " (" \
	"  id              INTEGER PRIMARY KEY," \
	"  uid             TEXT NOT NULL UNIQUE" \
	"                  CHECK (length(uid) BETWEEN 2 AND 128 AND length(uid) % 2 = 0" \
	"                         AND uid NOT GLOB '*[^0-9a-f]*')," \
	"  serial          TEXT UNIQUE," \
	"  counter         INTEGER UNIQUE," \
	"  state           TEXT NOT NULL CHECK (state IN ('CONNECT','IDENTIFY','ALLOCATE'," \
	"                  'KEYS','CERTIFY','INJECT','FIRMWARE','CHALLENGE','LOCK','RECORD'," \
	"                  'DONE','FAILED','QUARANTINED'))," \
	"  key_mode        TEXT," \
	"  fixture         TEXT," \
	"  attempts        INTEGER NOT NULL DEFAULT 0," \
	"  reissues        INTEGER NOT NULL DEFAULT 0," \
	"  last_error_code INTEGER NOT NULL DEFAULT 0," \
	"  last_error      TEXT," \
	"  data            TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(data))," \
	"  created         TEXT NOT NULL," \
	"  updated         TEXT NOT NULL," \
	"  CHECK ((serial IS NULL) = (counter IS NULL))," \
	"  CHECK (state <> 'QUARANTINED' OR serial IS NULL)," \
	"  CHECK (state IN ('CONNECT','IDENTIFY','ALLOCATE','FAILED','QUARANTINED')" \
	"         OR serial IS NOT NULL)" \
	");"

/* A journal made by this version taken back to schema 2, as one written before it is. */
#define TO_V2 "PRAGMA foreign_keys = OFF; BEGIN; " BOARDS_V2("boards_v2") \
	"INSERT INTO boards_v2 SELECT * FROM boards; DROP TABLE boards; " \
	"ALTER TABLE boards_v2 RENAME TO boards; " \
	"CREATE INDEX boards_state ON boards(state, id); PRAGMA user_version = 2; COMMIT"

#define ROWS "SELECT group_concat(id || uid || coalesce(serial, '-') || " \
	"coalesce(counter, '-') || state || coalesce(fixture, '-') || attempts || data || " \
	"created || updated, '|') FROM (SELECT * FROM boards ORDER BY id)"

/* What a journal's boards must refuse (each alone, on a copy of aa01). */
static void constraints_hold(const char *path)
{
	static const char *const refused[] = {
		"UPDATE boards SET state = 'BOGUS' WHERE uid = 'aa01'",
		"UPDATE boards SET state = 'keys' WHERE uid = 'aa01'",
		"UPDATE boards SET state = NULL WHERE uid = 'aa01'",
		"UPDATE boards SET data = '{\"a\":' WHERE uid = 'aa01'",
		"UPDATE boards SET counter = NULL WHERE uid = 'aa01'",
		"UPDATE boards SET state = 'QUARANTINED' WHERE uid = 'aa01'",
		"INSERT INTO boards(uid, state, created, updated) VALUES ('cc01', 'KEYS', 't', 't')",
		"INSERT INTO boards(uid, state, created, updated) VALUES ('CC01', 'IDENTIFY', 't', 't')",
		"INSERT INTO boards(uid, state, created, updated) VALUES ('c', 'IDENTIFY', 't', 't')",
	};
	static const char *const allowed[] = {
		"UPDATE boards SET state = 'LOCK' WHERE uid = 'aa01'",
		"INSERT INTO boards(uid, state, created, updated) VALUES ('cc01', 'IDENTIFY', 't', 't')",
		"UPDATE boards SET state = 'FAILED', serial = NULL, counter = NULL WHERE uid = 'cc01'",
		"UPDATE boards SET state = 'QUARANTINED' WHERE uid = 'cc01'",
	};

	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		if (jt_sql(path, refused[i]) == 0)
			fail_msg("accepted: %s", refused[i]);
	}
	for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
		if (jt_sql(path, allowed[i]) != 0)
			fail_msg("refused: %s", allowed[i]);
	}
}

static void history(struct jnl *j)
{
	char serial[JNL_SERIAL_MAX];

	assert_int_equal(jnl_allocate(j, "aa01", "F1", serial, sizeof(serial), NULL), IMP_OK);
	for (enum jnl_state s = JNL_ST_KEYS; s <= JNL_ST_RECORD; s++)
		assert_int_equal(jnl_set_state(j, "aa01", s, "{\"step\":\"x\"}"), IMP_OK);
	assert_int_equal(jnl_record_done(j, "aa01", "rec-1", "h.p.s"), IMP_OK);
	assert_int_equal(jnl_allocate(j, "bb01", "F2", serial, sizeof(serial), NULL), IMP_OK);
	assert_int_equal(jnl_set_state(j, "bb01", JNL_ST_KEYS, "{\"pub\":\"04\"}"), IMP_OK);
	assert_int_equal(jnl_quarantine(j, "dd01", "F3", "locked and unknown"), IMP_OK);
}

/* A journal of this version in a new directory dir, at path, with history's boards. */
static void journal_with_history(char dir[256], char *path, size_t cap, EVP_PKEY *key)
{
	struct jnl *j;

	jt_mkdtemp(dir);
	snprintf(path, cap, "%s/journal.sqlite", dir);
	j = jt_open(path, key, 10, 4);
	history(j);
	jnl_close(j);
}

static void test_v2_migrates(void **state)
{
	char dir[256], path[300], before[8192], after[8192];
	EVP_PKEY *key = jt_key();
	struct jnl_opts ro = { .read_only = true };
	struct jnl_verify_report r;
	struct jnl_board b;
	struct jnl *j;

	(void)state;
	journal_with_history(dir, path, sizeof(path), key);
	/* Back to schema 2, as a journal written before this version is. */
	assert_int_equal(jt_sql(path, TO_V2), 0);
	assert_true(jt_sql_int(path, "SELECT count(*) FROM sqlite_schema WHERE name = 'boards' "
			       "AND sql LIKE '%state IN (%'") == 1);
	jt_sql_text(path, ROWS, before, sizeof(before));
	assert_true(strlen(before) > 100);

	/* Read-only: read as it is, not migrated. */
	assert_int_equal(jnl_open(path, &ro, &j), IMP_OK);
	assert_int_equal(jnl_get_board(j, "aa01", &b), IMP_OK);
	assert_int_equal(b.state, JNL_ST_DONE);
	jnl_board_release(&b);
	jnl_close(j);
	assert_int_equal(jt_sql_int(path, "PRAGMA user_version"), 2);

	/* Read-write: migrated, every row kept, the chain whole. */
	j = jt_open(path, key, 10, 4);
	assert_int_equal(jt_sql_int(path, "PRAGMA user_version"), JNL_SCHEMA_VERSION);
	assert_true(jt_sql_int(path, "SELECT count(*) FROM sqlite_schema WHERE name = 'boards' "
			       "AND sql LIKE '% IN (%'") == 0);
	assert_true(jt_sql_int(path, "SELECT count(*) FROM sqlite_schema WHERE type = 'index' "
			       "AND tbl_name = 'boards'") == 4);
	jt_sql_text(path, ROWS, after, sizeof(after));
	assert_string_equal(before, after);
	assert_int_equal(jt_sql_int(path, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
	assert_int_equal(jnl_verify_chain(j, NULL, &r), IMP_OK);
	/* and it goes on */
	assert_int_equal(jnl_set_state(j, "bb01", JNL_ST_CERTIFY, "{\"cert\":\"MII\"}"), IMP_OK);
	assert_int_equal(jnl_verify_chain(j, NULL, &r), IMP_OK);
	jnl_close(j);
	/* Foreign keys are on again after the open's transaction. */
	j = jt_open(path, key, 10, 4);
	assert_int_equal(jnl_outbox_add_revocation(j, "aa01", "rev-1", "h.p.r"), IMP_OK);
	jnl_close(j);
	assert_int_not_equal(jt_sql(path, "PRAGMA foreign_keys = ON; INSERT INTO outbox(record_id, "
				    "serial, uid, kind, jws, created) VALUES ('x', 's', 'ee01', "
				    "'identity', 'j', 't')"), 0);
	constraints_hold(path);
	EVP_PKEY_free(key);
	jt_rmtree(dir);
}

static void test_new_journal_constraints(void **state)
{
	char dir[256], path[300];
	EVP_PKEY *key = jt_key();

	(void)state;
	journal_with_history(dir, path, sizeof(path), key);
	assert_int_equal(jt_sql_int(path, "PRAGMA user_version"), JNL_SCHEMA_VERSION);
	constraints_hold(path);
	EVP_PKEY_free(key);
	jt_rmtree(dir);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A migration killed at varied instants leaves a v2 that opens (and then
 * migrates) or a whole v3: never a half-migrated journal. The journal has
 * MIGRATE_KILL_ROWS boards (default 40000: enough to spill SQLite's page
 * cache into the -wal before the COMMIT), killed MIGRATE_KILLS times
 * (default 12) over the span of one migration. */
static void test_v2_killed_migration(void **state)
{
	char dir[256], path[300];
	EVP_PKEY *key = jt_key();
	struct jnl_opts ro = { .read_only = true };
	struct jnl_verify_report r;
	struct jnl *j;
	double t0, span;
	int64_t rows;
	int seen2 = 0, seen3 = 0;
	const char *e = getenv("MIGRATE_KILL_ROWS");
	long nrows = e ? atol(e) : 40000, kills;
	char fill[400];

	e = getenv("MIGRATE_KILLS");
	kills = e ? atol(e) : 12;
	if (nrows < 1000)
		nrows = 1000;
	if (kills < 1)
		kills = 1;
	snprintf(fill, sizeof(fill), "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 "
		 "FROM n WHERE i < %ld) INSERT INTO boards(uid, state, data, created, updated) "
		 "SELECT printf('%%016x', i), 'IDENTIFY', '{\"k\":\"vvvvvvvvvvvvvvvvvvvv\"}', "
		 "'t', 't' FROM n", nrows);
	(void)state;
	journal_with_history(dir, path, sizeof(path), key);
	assert_int_equal(jt_sql(path, fill), 0);
	rows = jt_sql_int(path, "SELECT count(*) FROM boards");
	assert_int_equal(jt_sql(path, TO_V2), 0);
	t0 = now_s();
	j = jt_open(path, key, 10, 4);
	jnl_close(j);
	span = now_s() - t0;
	fprintf(stderr, "migration of %lld rows: %.3f s\n", (long long)rows, span);
	for (long k = 0; k < kills; k++) {
		pid_t pid;
		int st, v;

		if (jt_sql_int(path, "PRAGMA user_version") == 3)
			assert_int_equal(jt_sql(path, TO_V2), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			struct jnl_opts o = { .station_id = "test-station", .quota = 10,
					      .checkpoint_interval = 4, .sign = jt_sign,
					      .sign_arg = key, .signer_fpr = JT_FPR };
			struct jnl *cj = NULL;

			_exit(jnl_open(path, &o, &cj) == IMP_OK ? 0 : 3);
		}
		usleep((useconds_t)(span * 1e6 * (double)(k + 1) / (double)kills * 1.1));
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		v = (int)jt_sql_int(path, "PRAGMA user_version");
		assert_true(v == 2 || v == 3);
		v == 2 ? seen2++ : seen3++;
		assert_int_equal(jt_sql_int(path, "SELECT count(*) FROM boards"), rows);
		assert_int_equal(jt_sql_int(path, "SELECT count(*) FROM sqlite_schema WHERE name = "
					    "'boards' AND sql LIKE '% IN (%'"), v == 2 ? 1 : 0);
		assert_int_equal(jt_sql_int(path, "SELECT count(*) FROM sqlite_schema WHERE "
					    "type = 'index' AND tbl_name = 'boards'"), 4);
		assert_int_equal(jt_sql_int(path, "SELECT count(*) FROM pragma_integrity_check "
					    "WHERE integrity_check <> 'ok'"), 0);
		assert_int_equal(jnl_open(path, &ro, &j), IMP_OK);
		assert_int_equal(jnl_verify_chain(j, NULL, &r), IMP_OK);
		jnl_close(j);
	}
	fprintf(stderr, "after a kill: %d at v2, %d at v3\n", seen2, seen3);
	j = jt_open(path, key, 10, 4);
	assert_int_equal(jnl_verify_chain(j, NULL, &r), IMP_OK);
	jnl_close(j);
	assert_int_equal(jt_sql_int(path, "PRAGMA user_version"), JNL_SCHEMA_VERSION);
	EVP_PKEY_free(key);
	jt_rmtree(dir);
}

/* A version-1 journal goes to 3 in one open's transaction. */
static void test_v1_migrates(void **state)
{
	char dir[256], path[300], before[8192], after[8192];
	EVP_PKEY *key = jt_key();
	struct jnl_verify_report r;
	struct jnl *j;

	(void)state;
	journal_with_history(dir, path, sizeof(path), key);
	assert_int_equal(jt_sql(path, TO_V2), 0);
	assert_int_equal(jt_sql(path, "DROP INDEX outbox_line_pending; DROP TABLE leases; "
				"ALTER TABLE outbox DROP COLUMN line_conflict; "
				"ALTER TABLE outbox DROP COLUMN line_delivered_at; PRAGMA user_version = 1"), 0);
	jt_sql_text(path, ROWS, before, sizeof(before));
	j = jt_open(path, key, 10, 4);
	assert_int_equal(jnl_verify_chain(j, NULL, &r), IMP_OK);
	jnl_close(j);
	assert_int_equal(jt_sql_int(path, "PRAGMA user_version"), JNL_SCHEMA_VERSION);
	jt_sql_text(path, ROWS, after, sizeof(after));
	assert_string_equal(before, after);
	assert_int_equal(jt_sql_int(path, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
	constraints_hold(path);
	EVP_PKEY_free(key);
	jt_rmtree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v2_migrates),
		cmocka_unit_test(test_new_journal_constraints),
		cmocka_unit_test(test_v2_killed_migration),
		cmocka_unit_test(test_v1_migrates),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
