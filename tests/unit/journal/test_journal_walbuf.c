/*
 * Journal unit test of the write connection's VFS (walbuf.c): frames a
 * transaction wrote to the -wal before it was rolled back (a cache spill)
 * must not reach the file after the connection gave up the write lock,
 * where another connection's committed frames now are.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "jtest.h"
#include "journal_int.h"

static sqlite3 *db_open(const char *path, const char *vfs)
{
	sqlite3 *db = NULL;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
					 vfs), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	assert_int_equal(sqlite3_exec(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL",
				      NULL, NULL, NULL), SQLITE_OK);
	return db;
}

static int64_t one_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int64_t v = -1;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static void test_spill_rollback_then_other_commit(void **state)
{
	char dir[256], path[300], ok[64] = "";
	const char *vfs = jwalbuf_vfs();
	sqlite3 *a, *b;
	sqlite3_stmt *st = NULL;

	(void)state;
	assert_non_null(vfs);
	jt_mkdtemp(dir);
	snprintf(path, sizeof(path), "%s/j.sqlite", dir);
	a = db_open(path, vfs);
	b = db_open(path, NULL);
	assert_int_equal(sqlite3_exec(a, "CREATE TABLE t(k INTEGER PRIMARY KEY, v BLOB);"
				      "INSERT INTO t VALUES (1, zeroblob(100))", NULL, NULL, NULL),
			 SQLITE_OK);
	/* everything in the database file, the -wal empty */
	assert_int_equal(sqlite3_exec(b, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL),
			 SQLITE_OK);
	/* a: a transaction bigger than its cache spills frames, then is undone */
	assert_int_equal(sqlite3_exec(a, "PRAGMA cache_size = 10; BEGIN IMMEDIATE;"
				      "WITH RECURSIVE n(i) AS (SELECT 2 UNION ALL SELECT i + 1 FROM n "
				      "WHERE i < 40) INSERT INTO t SELECT i, randomblob(1500) FROM n;"
				      "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	/* b commits into the frames a wrote and rolled back */
	assert_int_equal(sqlite3_exec(b, "BEGIN IMMEDIATE;"
				      "WITH RECURSIVE n(i) AS (SELECT 100 UNION ALL SELECT i + 1 FROM n "
				      "WHERE i < 120) INSERT INTO t SELECT i, zeroblob(1500) FROM n;"
				      "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	/* a reads (and closes): nothing of its rolled-back frames may land */
	(void)one_int(a, "SELECT count(*) FROM t");
	assert_int_equal(sqlite3_close(a), SQLITE_OK);
	/* what a fresh connection reads of b's commit */
	sqlite3_close(b);
	b = db_open(path, NULL);
	assert_int_equal(one_int(b, "SELECT count(*) FROM t"), 22);
	assert_int_equal(sqlite3_prepare_v2(b, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		snprintf(ok, sizeof(ok), "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	assert_string_equal(ok, "ok");
	assert_int_equal(one_int(b, "SELECT count(*) FROM t WHERE v = zeroblob(1500)"), 21);
	sqlite3_close(b);
	jt_rmtree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spill_rollback_then_other_commit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
