/*
 * Internals of the "https" exporter (https.c), apart so that the unit tests
 * (tests/unit/export) reach them. Not part of exp/export.h.
 */
#ifndef EXP_HTTPS_H
#define EXP_HTTPS_H

#include <stddef.h>

#include "exp/export.h"

/* libcurl, loaded when the exporter opens (curl_dyn.c): IMP_ERR_NOT_FOUND,
 * logged with the package to install, if it is missing. */
imp_err exp_curl_load(void);

/* A Retry-After longer than this is not believed (seconds). */
#define EXP_RETRY_AFTER_MAX 3600.0

/*
 * One raw response header line (as libcurl hands it over, CRLF included or
 * not). If it is "Retry-After:" in the delta-seconds form (RFC 9110 10.2.3:
 * digits only, surrounding blanks allowed) and at most EXP_RETRY_AFTER_MAX,
 * *seconds is set and 1 returned; an HTTP-date, a negative, fractional, huge
 * or malformed value, or another header: 0 (then the backoff applies).
 */
int exp_https_retry_after(const char *line, size_t len, double *seconds);

/*
 * The wait before retry number attempt + 1 (attempt counts from 0): full
 * jitter over [0, min(max_s, base_s * 2^attempt)], r01 a uniform number in
 * [0, 1); never less than retry_after_s when that is >= 0. Never negative,
 * never more than max(max_s, retry_after_s).
 */
double exp_https_backoff(double base_s, double max_s, unsigned attempt, double r01,
			 double retry_after_s);

/*
 * Read the registry's answer to POST /records (docs/REGISTRY.md) into res,
 * one entry per record of recs (all EXP_PENDING on entry). Strict and
 * hostile-proof: body not a JSON object with a "results" array:
 * IMP_ERR_PROTOCOL and every record stays PENDING. Entries that are not
 * objects, lack a string "id" or "status", name an id not in the batch, or
 * carry a status that is not one of the wire names are ignored (the record
 * stays PENDING); "code" is kept only if an integer in 0..999; a record
 * named twice with different statuses stays PENDING. Nothing else becomes
 * ACCEPTED or DUPLICATE_SAME.
 */
imp_err exp_https_parse_results(const char *body, size_t len, const struct exp_record *recs,
				size_t n, struct exp_result *res);

#endif
