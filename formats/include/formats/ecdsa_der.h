/*
 * ECDSA signature encodings for P-256: PKCS#11 and JWS (RFC 7518 3.4) use the
 * raw form r||s (32 + 32 bytes, big-endian, left-padded); X.509, CMS and
 * OpenSSL use DER: SEQUENCE { INTEGER r, INTEGER s }.
 */
#ifndef FORMATS_ECDSA_DER_H
#define FORMATS_ECDSA_DER_H

#include <stddef.h>
#include <stdint.h>

#include "imprint/err.h"

#define FMT_ECDSA_RAW_LEN 64u     /* P-256 r||s */
#define FMT_ECDSA_DER_MAX 72u     /* 2 + 2 * (2 + 33) */

/*
 * raw r||s -> DER into der (capacity cap, at least FMT_ECDSA_DER_MAX).
 * *der_len receives the length. IMP_ERR_CRYPTO if r or s is zero.
 */
imp_err fmt_ecdsa_raw_to_der(const uint8_t raw[FMT_ECDSA_RAW_LEN], uint8_t *der,
			     size_t cap, size_t *der_len);

/*
 * DER -> raw r||s. Strict: minimal INTEGER encodings, positive values that
 * fit 32 bytes, no trailing bytes. IMP_ERR_PROTOCOL on anything else.
 */
imp_err fmt_ecdsa_der_to_raw(const uint8_t *der, size_t der_len,
			     uint8_t raw[FMT_ECDSA_RAW_LEN]);

#endif
