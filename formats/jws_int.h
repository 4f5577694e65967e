/*
 * Inside formats/: the JWS header rules (formats/jws.h "Verification is
 * strict"), shared by jws.c's verifiers and the record fast path
 * (record_verify.c).
 */
#ifndef FORMATS_JWS_INT_H
#define FORMATS_JWS_INT_H

#include <stdbool.h>

#include <jansson.h>

#include "imprint/err.h"

/*
 * hdr is a protected header we take: an object of only alg, cty, kid, typ,
 * x5c (so no crit), all strings but x5c, alg exactly "ES256", and typ equal
 * to typ if typ is not NULL. quiet: log nothing. IMP_ERR_PROTOCOL.
 */
imp_err fmt_jws_header_check(const json_t *hdr, const char *typ, bool quiet);

#endif
