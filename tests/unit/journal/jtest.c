#include <ftw.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <sqlite3.h>

#include "jtest.h"

void jt_mkdtemp(char path[256])
{
	snprintf(path, 256, "/tmp/imprint-prov-test-XXXXXX");
	assert_non_null(mkdtemp(path));
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

void jt_rmtree(const char *path)
{
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

EVP_PKEY *jt_key(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");

	assert_non_null(k);
	return k;
}

imp_err jt_sign(void *arg, const uint8_t digest[32], uint8_t raw_sig[64])
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new((EVP_PKEY *)arg, NULL);
	unsigned char der[80];
	const unsigned char *p = der;
	size_t len = sizeof(der);
	ECDSA_SIG *sig = NULL;
	imp_err rc = IMP_ERR_CRYPTO;

	if (!ctx || EVP_PKEY_sign_init(ctx) <= 0 ||
	    EVP_PKEY_sign(ctx, der, &len, digest, 32) <= 0)
		goto out;
	sig = d2i_ECDSA_SIG(NULL, &p, (long)len);
	if (!sig)
		goto out;
	if (BN_bn2binpad(ECDSA_SIG_get0_r(sig), raw_sig, 32) != 32 ||
	    BN_bn2binpad(ECDSA_SIG_get0_s(sig), raw_sig + 32, 32) != 32)
		goto out;
	rc = IMP_OK;
out:
	ECDSA_SIG_free(sig);
	EVP_PKEY_CTX_free(ctx);
	return rc;
}

struct jnl *jt_open(const char *path, EVP_PKEY *key, uint64_t quota, uint32_t interval)
{
	struct jnl_opts o = {
		.station_id = "test-station",
		.quota = quota,
		.checkpoint_interval = interval,
		.sign = key ? jt_sign : NULL,
		.sign_arg = key,
		.signer_fpr = key ? JT_FPR : NULL,
	};
	struct jnl *j = NULL;
	imp_err rc = jnl_open(path, &o, &j);

	if (rc)
		fprintf(stderr, "open %s: %s: %s\n", path, imp_err_name(rc), jnl_last_error());
	assert_int_equal(rc, IMP_OK);
	return j;
}

static sqlite3 *raw_open(const char *path)
{
	sqlite3 *db = NULL;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 10000);
	return db;
}

int jt_sql(const char *path, const char *sql)
{
	sqlite3 *db = raw_open(path);
	int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);

	sqlite3_close(db);
	return rc;
}

int64_t jt_sql_int(const char *path, const char *sql)
{
	sqlite3 *db = raw_open(path);
	sqlite3_stmt *st = NULL;
	int64_t v = -1;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

void jt_sql_text(const char *path, const char *sql, char *out, size_t cap)
{
	sqlite3 *db = raw_open(path);
	sqlite3_stmt *st = NULL;

	out[0] = '\0';
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		snprintf(out, cap, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(db);
}

void jt_uid(uint64_t n, char out[25])
{
	snprintf(out, 25, "c0ffee%018llx", (unsigned long long)n);
}
