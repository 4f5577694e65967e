/*
 * base64url without padding (RFC 4648 section 5, as used by JWS / JWK) and
 * standard base64 with padding (section 4, as used by "x5c").
 *
 * Decoders are strict: only the alphabet's characters, no whitespace, no
 * line breaks, correct padding (standard) or none at all (url), and unused
 * trailing bits must be zero, so that every byte string has exactly one
 * accepted encoding.
 */
#ifndef FORMATS_BASE64_H
#define FORMATS_BASE64_H

#include <stddef.h>
#include <stdint.h>

#include "imprint/err.h"

/* Length of the unpadded base64url text for n bytes (without NUL). */
size_t fmt_b64url_len(size_t n);

/*
 * Encode n bytes as base64url, no padding. Returns a malloc'ed,
 * NUL-terminated string the caller frees, or NULL if out of memory.
 */
char *fmt_b64url_encode(const void *in, size_t n);

/*
 * Decode len characters of base64url (no padding accepted). On success *out
 * is a malloc'ed buffer of *n bytes, followed by one NUL byte that is not
 * counted (so decoded text can be used as a C string); the caller frees it.
 * An empty input decodes to an empty (non-NULL) buffer.
 * IMP_ERR_PROTOCOL on any malformed input, IMP_ERR_NOMEM.
 */
imp_err fmt_b64url_decode(const char *in, size_t len, uint8_t **out, size_t *n);

/* Standard base64 with '=' padding, one line. malloc'ed; NULL if OOM. */
char *fmt_b64_encode(const void *in, size_t n);

/* Strict decode of standard padded base64; same contract as above. */
imp_err fmt_b64_decode(const char *in, size_t len, uint8_t **out, size_t *n);

/* Bytes that len characters of unpadded base64 decode to (len % 4 != 1). */
size_t fmt_b64_decoded_len(size_t len);

/*
 * The same two decodings into the caller's buffer out of cap bytes (no NUL
 * added, nothing allocated: for hot paths). *n is the decoded length.
 * IMP_ERR_PROTOCOL on malformed input, IMP_ERR_USAGE if cap is too small
 * (fmt_b64_decoded_len(len) always suffices).
 */
imp_err fmt_b64url_decode_into(const char *in, size_t len, uint8_t *out, size_t cap,
			       size_t *n);
imp_err fmt_b64_decode_into(const char *in, size_t len, uint8_t *out, size_t cap, size_t *n);

#endif
