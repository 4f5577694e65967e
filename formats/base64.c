#include <stdlib.h>
#include <string.h>

#include "formats/base64.h"

static const char url_alpha[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static const char std_alpha[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t fmt_b64url_len(size_t n)
{
	return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

static char *encode(const char *alpha, int pad, const void *in, size_t n)
{
	const uint8_t *p = in;
	size_t cap = (n + 2) / 3 * 4 + 1;
	char *out;
	char *o;
	size_t i;

	out = malloc(cap);
	if (!out)
		return NULL;
	o = out;
	for (i = 0; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];

		*o++ = alpha[v >> 18 & 63];
		*o++ = alpha[v >> 12 & 63];
		*o++ = alpha[v >> 6 & 63];
		*o++ = alpha[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)p[i] << 16;

		*o++ = alpha[v >> 18 & 63];
		*o++ = alpha[v >> 12 & 63];
		if (pad) {
			*o++ = '=';
			*o++ = '=';
		}
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;

		*o++ = alpha[v >> 18 & 63];
		*o++ = alpha[v >> 12 & 63];
		*o++ = alpha[v >> 6 & 63];
		if (pad)
			*o++ = '=';
	}
	*o = '\0';
	return out;
}

char *fmt_b64url_encode(const void *in, size_t n)
{
	return encode(url_alpha, 0, in, n);
}

char *fmt_b64_encode(const void *in, size_t n)
{
	return encode(std_alpha, 1, in, n);
}

/*
 * Decoding tables, [0] standard and [1] url: the value of each character,
 * -1 for every character outside the alphabet. The two alphabets differ
 * only in the characters of 62 and 63 ('+' '/' against '-' '_'), so one
 * macro writes both; test_base64 checks every byte against the alphabets
 * above.
 */
#define B64_NONE16 -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1
#define B64_TABLE(plus, minus, slash, underscore) {					\
		B64_NONE16,								\
		B64_NONE16,								\
		-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, plus, -1, minus, -1, slash,	\
		52, 53, 54, 55, 56, 57, 58, 59, 60, 61, -1, -1, -1, -1, -1, -1,		\
		-1,  0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11, 12, 13, 14,		\
		15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, -1, -1, -1, -1, underscore,	\
		-1, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,		\
		41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, -1, -1, -1, -1, -1,		\
		B64_NONE16, B64_NONE16, B64_NONE16, B64_NONE16,				\
		B64_NONE16, B64_NONE16, B64_NONE16, B64_NONE16,				\
	}

static const signed char b64_val[2][256] = {
	B64_TABLE(62, -1, 63, -1), /* standard: + / */
	B64_TABLE(-1, 62, -1, 63), /* url: - _ */
};

size_t fmt_b64_decoded_len(size_t len)
{
	return len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
}

/* Decode len characters with no padding in them into out (cap bytes). */
static imp_err decode_into(int url, const char *in, size_t len, uint8_t *out, size_t cap,
			   size_t *n)
{
	const signed char *t = b64_val[url];
	size_t rem = len % 4;
	size_t full = len - rem;
	size_t i;
	uint8_t *o = out;
	uint32_t acc;

	*n = 0;
	if (rem == 1)
		return IMP_ERR_PROTOCOL;
	if (cap < fmt_b64_decoded_len(len))
		return IMP_ERR_USAGE;
	for (i = 0; i < full; i += 4) {
		int a = t[(unsigned char)in[i]];
		int b = t[(unsigned char)in[i + 1]];
		int c = t[(unsigned char)in[i + 2]];
		int d = t[(unsigned char)in[i + 3]];

		if ((a | b | c | d) < 0)
			return IMP_ERR_PROTOCOL;
		acc = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
		*o++ = (uint8_t)(acc >> 16);
		*o++ = (uint8_t)(acc >> 8);
		*o++ = (uint8_t)acc;
	}
	if (rem) {
		int a = t[(unsigned char)in[i]];
		int b = t[(unsigned char)in[i + 1]];
		int c = rem == 3 ? t[(unsigned char)in[i + 2]] : 0;

		if ((a | b | c) < 0)
			return IMP_ERR_PROTOCOL;
		acc = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6;
		/* Unused trailing bits must be zero: one encoding per byte string. */
		if (acc & (rem == 2 ? 0xffffu : 0xffu))
			return IMP_ERR_PROTOCOL;
		*o++ = (uint8_t)(acc >> 16);
		if (rem == 3)
			*o++ = (uint8_t)(acc >> 8);
	}
	*n = (size_t)(o - out);
	return IMP_OK;
}

/* Padded standard base64: the length without the padding, or (size_t)-1. */
static size_t unpadded_len(const char *in, size_t len)
{
	size_t pad = 0;

	if (len % 4 != 0)
		return (size_t)-1;
	if (len >= 1 && in[len - 1] == '=')
		pad++;
	if (len >= 2 && in[len - 2] == '=')
		pad++;
	return len - pad;
}

/* Decode into a new buffer with a NUL after the end. */
static imp_err decode(int url, const char *in, size_t len, uint8_t **out, size_t *n)
{
	uint8_t *buf;
	imp_err rc;

	*out = NULL;
	*n = 0;
	if (len % 4 == 1)
		return IMP_ERR_PROTOCOL;
	buf = malloc(fmt_b64_decoded_len(len) + 1);
	if (!buf)
		return IMP_ERR_NOMEM;
	rc = decode_into(url, in, len, buf, fmt_b64_decoded_len(len), n);
	if (rc != IMP_OK) {
		free(buf);
		*n = 0;
		return rc;
	}
	buf[*n] = 0;
	*out = buf;
	return IMP_OK;
}

imp_err fmt_b64url_decode_into(const char *in, size_t len, uint8_t *out, size_t cap,
			       size_t *n)
{
	return decode_into(1, in, len, out, cap, n);
}

imp_err fmt_b64_decode_into(const char *in, size_t len, uint8_t *out, size_t cap, size_t *n)
{
	size_t l = unpadded_len(in, len);

	*n = 0;
	if (l == (size_t)-1)
		return IMP_ERR_PROTOCOL;
	return decode_into(0, in, l, out, cap, n);
}

imp_err fmt_b64url_decode(const char *in, size_t len, uint8_t **out, size_t *n)
{
	return decode(1, in, len, out, n);
}

imp_err fmt_b64_decode(const char *in, size_t len, uint8_t **out, size_t *n)
{
	size_t l = unpadded_len(in, len);

	*out = NULL;
	*n = 0;
	if (l == (size_t)-1)
		return IMP_ERR_PROTOCOL;
	return decode(0, in, l, out, n);
}
