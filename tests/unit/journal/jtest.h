/* Helpers shared by the journal tests. */
#ifndef PROV_JTEST_H
#define PROV_JTEST_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "journal/journal.h"

/* A fixed signer fingerprint for tests (64 hex digits). */
#define JT_FPR "abababababababababababababababababababababababababababababababab"

/* Make a fresh directory under /tmp; path receives "<dir>". */
void jt_mkdtemp(char path[256]);
/* Remove a directory tree made by jt_mkdtemp. */
void jt_rmtree(const char *path);

/* A new P-256 key (EVP_PKEY_free it). */
EVP_PKEY *jt_key(void);
/* jnl_sign_fn over an EVP_PKEY passed as arg. */
imp_err jt_sign(void *arg, const uint8_t digest[32], uint8_t raw_sig[64]);

/* Open with a signer over key, the given quota and checkpoint interval. */
struct jnl *jt_open(const char *path, EVP_PKEY *key, uint64_t quota, uint32_t interval);

/* Raw SQL on the journal file, outside the journal API (tampering). */
int jt_sql(const char *path, const char *sql);
/* First column of the first row as an integer (-1 if no row). */
int64_t jt_sql_int(const char *path, const char *sql);
/* First column of the first row as text into out ("" if none). */
void jt_sql_text(const char *path, const char *sql, char *out, size_t cap);

/* Hex UID for a number ("00000000000000000000002a" style, 12 bytes). */
void jt_uid(uint64_t n, char out[25]);

#endif
