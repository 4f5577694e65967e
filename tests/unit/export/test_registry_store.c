/*
 * The registry database's schema and reader (registry/store.h): the writer
 * creates the schema in a new file and refuses another version or a
 * foreign file; the reader hands back what was stored and refuses a file
 * without the registry's tables or of another schema version.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "imprint/log.h"
#include "registry/store.h"

static char dir[64];

static int setup(void **st)
{
	(void)st;
	imp_log_set_level(IMP_LOG_QUIET);
	snprintf(dir, sizeof(dir), "/tmp/imprint-regstore.XXXXXX");
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int teardown(void **st)
{
	char cmd[128];

	(void)st;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static sqlite3 *open_rw(const char *name, char *path, size_t cap)
{
	sqlite3 *db = NULL;

	snprintf(path, cap, "%s/%s", dir, name);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	return db;
}

static void exec(sqlite3 *db, const char *sql)
{
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
}

struct seen {
	int n;
	char ids[4][32];
	int psk_null_key;
};

static int collect(void *arg, const struct reg_identity_row *row)
{
	struct seen *s = arg;

	if (s->n < 4)
		snprintf(s->ids[s->n], sizeof(s->ids[0]), "%s|%s|%s", row->record_id, row->serial,
			 row->uid);
	if (!row->public_key && !row->cert_sha256)
		s->psk_null_key++;
	s->n++;
	return 0;
}

static int stop_at_first(void *arg, const struct reg_identity_row *row)
{
	(void)row;
	(*(int *)arg)++;
	return 1;
}

static void test_round_trip(void **st)
{
	char path[128];
	sqlite3 *db = open_rw("reg.sqlite", path, sizeof(path));
	struct reg_reader *r = NULL;
	struct seen s = { 0 };
	int calls = 0;

	(void)st;
	assert_int_equal(reg_schema_apply(db), IMP_OK);
	assert_int_equal(reg_schema_apply(db), IMP_OK); /* again: same version, fine */
	exec(db, "INSERT INTO identities (record_id, serial, uid, public_key, cert_sha256, jws, "
		 "received_at) VALUES ('r2', 'S2', 'u2', 'x.y', 'ab', 'j', 't'),"
		 " ('r1', 'S1', 'u1', NULL, NULL, 'j', 't')");
	sqlite3_close(db);
	assert_int_equal(reg_reader_open(path, &r), IMP_OK);
	assert_int_equal(reg_reader_identities(r, collect, &s), IMP_OK);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.ids[0], "r2|S2|u2"); /* in the order stored */
	assert_string_equal(s.ids[1], "r1|S1|u1");
	assert_int_equal(s.psk_null_key, 1);
	assert_int_equal(reg_reader_identities(r, stop_at_first, &calls), IMP_OK);
	assert_int_equal(calls, 1);
	reg_reader_close(r);
}

static int collect_rev(void *arg, const struct reg_revocation_row *row)
{
	struct seen *s = arg;

	if (s->n < 4)
		snprintf(s->ids[s->n], sizeof(s->ids[0]), "%s|%s|%s", row->record_id, row->serial,
			 row->jws);
	s->n++;
	return 0;
}

/* The revocations table is read too (the audit compares it with the
 * station's signed revocations). */
static void test_revocations(void **st)
{
	char path[128];
	sqlite3 *db = open_rw("rev.sqlite", path, sizeof(path));
	struct reg_reader *r = NULL;
	struct seen s = { 0 };

	(void)st;
	assert_int_equal(reg_schema_apply(db), IMP_OK);
	exec(db, "INSERT INTO revocations (record_id, serial, reason, jws, received_at) VALUES "
		 "('v2', 'S2', 'lost', 'j2', 't'), ('v1', 'S1', 'lost', 'j1', 't')");
	sqlite3_close(db);
	assert_int_equal(reg_reader_open(path, &r), IMP_OK);
	assert_int_equal(reg_reader_revocations(r, collect_rev, &s), IMP_OK);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.ids[0], "v2|S2|j2");
	assert_string_equal(s.ids[1], "v1|S1|j1");
	reg_reader_close(r);
}

/* A database of this version's tables, one column short (an older
 * registry's): not a registry database it reads, refused as such, not an
 * I/O error on the first query. */
static void test_missing_column(void **st)
{
	static const char *const drop[] = {
		"ALTER TABLE identities DROP COLUMN revoked_at",
		"ALTER TABLE identities DROP COLUMN cert_sha256",
		"ALTER TABLE revocations DROP COLUMN jws",
	};

	(void)st;
	for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++) {
		char path[128], name[32];
		sqlite3 *db;
		struct reg_reader *r = (struct reg_reader *)1;

		snprintf(name, sizeof(name), "old%zu.sqlite", i);
		db = open_rw(name, path, sizeof(path));
		assert_int_equal(reg_schema_apply(db), IMP_OK);
		exec(db, drop[i]);
		sqlite3_close(db);
		assert_int_equal(reg_reader_open(path, &r), IMP_ERR_PROTOCOL);
		assert_null(r);
	}
}

static void test_other_version(void **st)
{
	char path[128];
	sqlite3 *db = open_rw("v2.sqlite", path, sizeof(path));
	struct reg_reader *r = (struct reg_reader *)1;

	(void)st;
	assert_int_equal(reg_schema_apply(db), IMP_OK);
	exec(db, "PRAGMA user_version = 2");
	assert_int_equal(reg_schema_apply(db), IMP_ERR_PROTOCOL);
	sqlite3_close(db);
	assert_int_equal(reg_reader_open(path, &r), IMP_ERR_PROTOCOL);
	assert_null(r);
}

static void test_foreign_file(void **st)
{
	char path[128], path2[128];
	sqlite3 *db = open_rw("other.sqlite", path, sizeof(path));
	sqlite3 *db2 = open_rw("other1.sqlite", path2, sizeof(path2));
	struct reg_reader *r = NULL;

	(void)st;
	/* another program's database, version 0 or 1: neither side takes it */
	exec(db, "CREATE TABLE boards (uid TEXT)");
	assert_int_equal(reg_schema_apply(db), IMP_ERR_PROTOCOL);
	sqlite3_close(db);
	assert_int_equal(reg_reader_open(path, &r), IMP_ERR_PROTOCOL);
	exec(db2, "CREATE TABLE boards (uid TEXT); PRAGMA user_version = 1");
	sqlite3_close(db2);
	assert_int_equal(reg_reader_open(path2, &r), IMP_ERR_PROTOCOL);
	/* a file that is not there, or not SQLite */
	snprintf(path, sizeof(path), "%s/missing.sqlite", dir);
	assert_int_equal(reg_reader_open(path, &r), IMP_ERR_IO);
	snprintf(path, sizeof(path), "%s/text", dir);
	{
		FILE *f = fopen(path, "w");

		assert_non_null(f);
		fputs("this is not a database, it is text long enough to have a header.....\n", f);
		fclose(f);
	}
	/* not SQLite at all: not a registry database either (docs/AUDIT.md) */
	assert_int_equal(reg_reader_open(path, &r), IMP_ERR_PROTOCOL);
	assert_null(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_revocations),
		cmocka_unit_test(test_missing_column),
		cmocka_unit_test(test_other_version),
		cmocka_unit_test(test_foreign_file),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
