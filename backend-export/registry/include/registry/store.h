/*
 * The registry's database (docs/REGISTRY.md "The database"). imprint-registry
 * owns it: the schema and its version are defined here, next to the one
 * reader other modules use (the audit). Nobody else opens its tables.
 */
#ifndef REGISTRY_STORE_H
#define REGISTRY_STORE_H

#include "imprint/err.h"

struct sqlite3;

/* PERSISTED: PRAGMA user_version of the registry database. */
#define REG_SCHEMA_VERSION 1

/*
 * Create the schema in db (a new, empty database: user_version 0), or check
 * that db already has this version's. For imprint-registry's own writable
 * connection. IMP_ERR_PROTOCOL for a database of another version,
 * IMP_ERR_IO.
 */
imp_err reg_schema_apply(struct sqlite3 *db);

/* One identity of the registry, as the reader hands it over. */
struct reg_identity_row {
	const char *record_id;
	const char *serial;
	const char *uid;         /* chip_uid, hex */
	const char *public_key;  /* the JWK's "x.y"; NULL for psk */
	const char *cert_sha256; /* NULL for psk */
	const char *jws;         /* the compact JWS as it was received */
	const char *received_at; /* RFC 3339 */
	const char *revoked_at;  /* NULL unless revoked */
};

/* One revocation record the registry took, as the reader hands it over. */
struct reg_revocation_row {
	const char *record_id;   /* the revocation record's id */
	const char *serial;      /* the serial it revokes */
	const char *jws;         /* the compact JWS as it was received */
	const char *received_at; /* RFC 3339 */
};

/* A read-only view of a registry database. */
struct reg_reader;

/*
 * Open the registry database at path read-only and check its schema
 * version (REG_SCHEMA_VERSION) and that its tables have every column the
 * reader reads. *out new (reg_reader_close). IMP_ERR_IO if it cannot be
 * read, IMP_ERR_PROTOCOL if it is not a registry database of this version
 * (another version, a missing table or column); both say so on stderr.
 */
imp_err reg_reader_open(const char *path, struct reg_reader **out);

/*
 * Call cb for every identity, in the order they were stored, in one read
 * transaction;
 * strings valid during the call only. cb returns non-zero to stop (then
 * IMP_OK is returned). IMP_ERR_IO.
 */
imp_err reg_reader_identities(struct reg_reader *r,
			      int (*cb)(void *arg, const struct reg_identity_row *row), void *arg);

/*
 * Call cb for every revocation record, in the order they were stored, in
 * one read transaction; as reg_reader_identities.
 */
imp_err reg_reader_revocations(struct reg_reader *r,
			       int (*cb)(void *arg, const struct reg_revocation_row *row),
			       void *arg);

/* Close; NULL is fine. */
void reg_reader_close(struct reg_reader *r);

#endif
