#include <string.h>

#include "formats/ecdsa_der.h"

/* Encode one 32-byte big-endian unsigned value as a minimal DER INTEGER. */
static size_t put_integer(const uint8_t v[32], uint8_t *out)
{
	size_t skip = 0;
	size_t len;
	size_t pad;

	while (skip < 31 && v[skip] == 0)
		skip++;
	pad = (v[skip] & 0x80) ? 1 : 0;
	len = 32 - skip + pad;
	out[0] = 0x02;
	out[1] = (uint8_t)len;
	if (pad)
		out[2] = 0;
	memcpy(out + 2 + pad, v + skip, 32 - skip);
	return 2 + len;
}

static int all_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

imp_err fmt_ecdsa_raw_to_der(const uint8_t raw[FMT_ECDSA_RAW_LEN], uint8_t *der,
			     size_t cap, size_t *der_len)
{
	uint8_t body[2 * 35];
	size_t n;

	*der_len = 0;
	if (cap < FMT_ECDSA_DER_MAX)
		return IMP_ERR_INTERNAL;
	if (all_zero(raw, 32) || all_zero(raw + 32, 32))
		return IMP_ERR_CRYPTO;
	n = put_integer(raw, body);
	n += put_integer(raw + 32, body + n);
	der[0] = 0x30;
	der[1] = (uint8_t)n; /* at most 70: short form */
	memcpy(der + 2, body, n);
	*der_len = n + 2;
	return IMP_OK;
}

/* Parse one INTEGER at p (at most end), write it right-aligned into out[32]. */
static imp_err get_integer(const uint8_t **p, const uint8_t *end, uint8_t out[32])
{
	const uint8_t *q = *p;
	size_t len;

	if (end - q < 2 || q[0] != 0x02)
		return IMP_ERR_PROTOCOL;
	len = q[1];
	q += 2;
	if (len == 0 || len > 33 || (size_t)(end - q) < len)
		return IMP_ERR_PROTOCOL;
	if (q[0] & 0x80)
		return IMP_ERR_PROTOCOL; /* negative */
	if (len > 1 && q[0] == 0 && !(q[1] & 0x80))
		return IMP_ERR_PROTOCOL; /* not minimal */
	if (len == 33) {
		if (q[0] != 0)
			return IMP_ERR_PROTOCOL;
		q++;
		len--;
	}
	memset(out, 0, 32);
	memcpy(out + 32 - len, q, len);
	*p = q + len;
	return IMP_OK;
}

imp_err fmt_ecdsa_der_to_raw(const uint8_t *der, size_t der_len,
			     uint8_t raw[FMT_ECDSA_RAW_LEN])
{
	const uint8_t *p = der;
	const uint8_t *end;
	imp_err rc;

	if (der_len < 8 || der_len > FMT_ECDSA_DER_MAX || der[0] != 0x30 || der[1] & 0x80)
		return IMP_ERR_PROTOCOL;
	if ((size_t)der[1] + 2 != der_len)
		return IMP_ERR_PROTOCOL;
	end = der + der_len;
	p += 2;
	rc = get_integer(&p, end, raw);
	if (rc != IMP_OK)
		return rc;
	rc = get_integer(&p, end, raw + 32);
	if (rc != IMP_OK)
		return rc;
	if (p != end)
		return IMP_ERR_PROTOCOL;
	if (all_zero(raw, 32) || all_zero(raw + 32, 32))
		return IMP_ERR_PROTOCOL;
	return IMP_OK;
}
