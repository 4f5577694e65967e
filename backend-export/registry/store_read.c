/*
 * The registry database's schema and its reader (registry/store.h). The
 * writer is store.c (imprint-registry); the schema text is here so that the
 * version the reader checks and the tables the writer creates cannot drift.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "imprint/log.h"
#include "registry/store.h"

/* PERSISTED: the registry database schema, version REG_SCHEMA_VERSION. */
static const char schema[] =
	"CREATE TABLE IF NOT EXISTS identities ("
	"  record_id         TEXT PRIMARY KEY,"
	"  serial            TEXT NOT NULL UNIQUE,"
	"  uid               TEXT NOT NULL UNIQUE,"
	"  public_key        TEXT UNIQUE,"      /* JWK x.y; NULL for psk */
	"  cert_sha256       TEXT,"
	"  jws               TEXT NOT NULL,"
	"  received_at       TEXT NOT NULL,"
	"  revoked_at        TEXT,"
	"  revocation_reason TEXT,"
	"  revocation_id     TEXT"
	");"
	"CREATE TABLE IF NOT EXISTS revocations ("
	"  record_id   TEXT PRIMARY KEY,"
	"  serial      TEXT NOT NULL,"
	"  reason      TEXT NOT NULL,"
	"  jws         TEXT NOT NULL,"
	"  received_at TEXT NOT NULL"
	");"
	"CREATE INDEX IF NOT EXISTS revocations_serial ON revocations(serial);";

_Static_assert(REG_SCHEMA_VERSION == 1, "the schema text above is version 1");

struct reg_reader {
	sqlite3 *db;
	char *path;
};

static imp_err schema_version(sqlite3 *db, int *v)
{
	sqlite3_stmt *st = NULL;
	imp_err rc = IMP_ERR_IO;

	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW) {
		*v = sqlite3_column_int(st, 0);
		rc = IMP_OK;
	}
	sqlite3_finalize(st);
	return rc;
}

/* Tables in db; -1 on error. */
static int table_count(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	int n = -1;

	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table'", -1,
			       &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return n;
}

/* 1 if db has the registry's two tables (whatever their version). */
static int has_registry_tables(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	int n = 0;

	if (sqlite3_prepare_v2(db,
			       "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN "
			       "('identities', 'revocations')",
			       -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return n == 2;
}

/* The columns the reader reads, table by table (a database that lacks one
 * is not of a version it reads, whatever its user_version says). */
static const struct {
	const char *table, *column;
} read_columns[] = {
	{ "identities", "record_id" },   { "identities", "serial" },
	{ "identities", "uid" },         { "identities", "public_key" },
	{ "identities", "cert_sha256" }, { "identities", "received_at" },
	{ "identities", "revoked_at" },  { "identities", "jws" },
	{ "revocations", "record_id" },  { "revocations", "serial" },
	{ "revocations", "jws" },        { "revocations", "received_at" },
};

/* The first column the reader needs that db lacks (into table, column),
 * 1 if one is missing, 0 if none, -1 on error. */
static int missing_column(sqlite3 *db, const char **table, const char **column)
{
	sqlite3_stmt *st = NULL;
	int missing = 0;

	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM pragma_table_info(?1) WHERE name = ?2",
			       -1, &st, NULL) != SQLITE_OK)
		return -1;
	for (size_t i = 0; !missing && i < sizeof(read_columns) / sizeof(read_columns[0]); i++) {
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, read_columns[i].table, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, read_columns[i].column, -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_ROW) {
			missing = -1;
		} else if (sqlite3_column_int(st, 0) == 0) {
			*table = read_columns[i].table;
			*column = read_columns[i].column;
			missing = 1;
		}
	}
	sqlite3_finalize(st);
	return missing;
}

imp_err reg_schema_apply(struct sqlite3 *db)
{
	char *err = NULL;
	char sql[sizeof(schema) + 64];
	int v = -1;

	if (schema_version(db, &v) != IMP_OK) {
		IMP_ERROR("registry database: cannot read its schema version: %s",
			  sqlite3_errmsg(db));
		return IMP_ERR_IO;
	}
	if (v != 0 && v != REG_SCHEMA_VERSION) {
		IMP_ERROR("registry database: schema version %d, this imprint-registry writes "
			  "version %d: use the imprint-registry that wrote it, or a new database",
			  v, REG_SCHEMA_VERSION);
		return IMP_ERR_PROTOCOL;
	}
	if (v == 0 && table_count(db) != 0) {
		IMP_ERROR("registry database: the file holds tables of something else: give "
			  "--db a new file or a registry database");
		return IMP_ERR_PROTOCOL;
	}
	snprintf(sql, sizeof(sql), "%sPRAGMA user_version = %d;", schema, REG_SCHEMA_VERSION);
	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
		IMP_ERROR("registry database: schema: %s", err ? err : sqlite3_errmsg(db));
		sqlite3_free(err);
		return IMP_ERR_IO;
	}
	return IMP_OK;
}

imp_err reg_reader_open(const char *path, struct reg_reader **out)
{
	struct reg_reader *r;
	int v = -1;

	*out = NULL;
	if (!path || access(path, R_OK) != 0) {
		IMP_ERROR("cannot read the registry database %s: give the file imprint-registry "
			  "serve --db writes", path ? path : "(none)");
		return IMP_ERR_IO;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		return IMP_ERR_NOMEM;
	if (sqlite3_open_v2(path, &r->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
		    SQLITE_OK ||
	    schema_version(r->db, &v) != IMP_OK) {
		/* A file SQLite does not take for a database at all is no registry
		 * database either (exit 17, as docs/AUDIT.md says), not an I/O error. */
		bool notadb = r->db && sqlite3_errcode(r->db) == SQLITE_NOTADB;

		if (notadb)
			IMP_ERROR("%s is not a registry database (%s): give the file imprint-registry "
				  "serve --db writes", path, sqlite3_errmsg(r->db));
		else
			IMP_ERROR("cannot read the registry database %s: %s", path,
				  r->db ? sqlite3_errmsg(r->db) : "out of memory");
		reg_reader_close(r);
		return notadb ? IMP_ERR_PROTOCOL : IMP_ERR_IO;
	}
	sqlite3_busy_timeout(r->db, 10000);
	if (v == 0 || !has_registry_tables(r->db)) {
		IMP_ERROR("%s is not a registry database: give the file imprint-registry serve "
			  "--db writes", path);
		reg_reader_close(r);
		return IMP_ERR_PROTOCOL;
	}
	if (v != REG_SCHEMA_VERSION) {
		IMP_ERROR("the registry database %s is schema version %d, this imprint reads "
			  "version %d: audit it with the matching imprint", path, v,
			  REG_SCHEMA_VERSION);
		reg_reader_close(r);
		return IMP_ERR_PROTOCOL;
	}
	{
		const char *table = NULL, *column = NULL;
		int m = missing_column(r->db, &table, &column);

		if (m != 0) {
			if (m > 0)
				IMP_ERROR("%s is not a registry database of schema version %d: its "
					  "table %s has no column %s (an older imprint-registry's?): "
					  "audit it with the matching imprint, or give the file this "
					  "imprint-registry serve --db writes",
					  path, REG_SCHEMA_VERSION, table, column);
			else
				IMP_ERROR("cannot read the registry database %s: %s", path,
					  sqlite3_errmsg(r->db));
			reg_reader_close(r);
			return m > 0 ? IMP_ERR_PROTOCOL : IMP_ERR_IO;
		}
	}
	r->path = strdup(path);
	if (!r->path) {
		reg_reader_close(r);
		return IMP_ERR_NOMEM;
	}
	*out = r;
	return IMP_OK;
}

static const char *col(sqlite3_stmt *st, int i)
{
	return (const char *)sqlite3_column_text(st, i);
}

/* A scan of one table in a read transaction of its own: the statement, or
 * NULL (said why). */
static sqlite3_stmt *scan_begin(struct reg_reader *r, const char *sql)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_exec(r->db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(r->db, sql, -1, &st, NULL) == SQLITE_OK)
		return st;
	IMP_ERROR("registry database %s: %s", r->path, sqlite3_errmsg(r->db));
	sqlite3_finalize(st);
	sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
	return NULL;
}

/* The end of a scan whose last step gave src (SQLITE_DONE: complete or
 * stopped by its callback). */
static imp_err scan_end(struct reg_reader *r, sqlite3_stmt *st, int src)
{
	imp_err rc = IMP_OK;

	if (src != SQLITE_DONE) {
		IMP_ERROR("registry database %s: %s", r->path, sqlite3_errmsg(r->db));
		rc = IMP_ERR_IO;
	}
	sqlite3_finalize(st);
	sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL);
	return rc;
}

imp_err reg_reader_identities(struct reg_reader *r,
			      int (*cb)(void *arg, const struct reg_identity_row *row), void *arg)
{
	sqlite3_stmt *st;
	int src;

	st = scan_begin(r, "SELECT record_id, serial, uid, public_key, cert_sha256, received_at, "
			   "revoked_at, jws FROM identities ORDER BY rowid");
	if (!st)
		return IMP_ERR_IO;
	while ((src = sqlite3_step(st)) == SQLITE_ROW) {
		struct reg_identity_row row = {
			.record_id = col(st, 0),
			.serial = col(st, 1),
			.uid = col(st, 2),
			.public_key = col(st, 3),
			.cert_sha256 = col(st, 4),
			.received_at = col(st, 5),
			.revoked_at = col(st, 6),
			.jws = col(st, 7),
		};

		if (cb(arg, &row) != 0) {
			src = SQLITE_DONE;
			break;
		}
	}
	return scan_end(r, st, src);
}

imp_err reg_reader_revocations(struct reg_reader *r,
			       int (*cb)(void *arg, const struct reg_revocation_row *row),
			       void *arg)
{
	sqlite3_stmt *st;
	int src;

	st = scan_begin(r, "SELECT record_id, serial, jws, received_at FROM revocations "
			   "ORDER BY rowid");
	if (!st)
		return IMP_ERR_IO;
	while ((src = sqlite3_step(st)) == SQLITE_ROW) {
		struct reg_revocation_row row = {
			.record_id = col(st, 0),
			.serial = col(st, 1),
			.jws = col(st, 2),
			.received_at = col(st, 3),
		};

		if (cb(arg, &row) != 0) {
			src = SQLITE_DONE;
			break;
		}
	}
	return scan_end(r, st, src);
}

void reg_reader_close(struct reg_reader *r)
{
	if (!r)
		return;
	sqlite3_close(r->db);
	free(r->path);
	free(r);
}
