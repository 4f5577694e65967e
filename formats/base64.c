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

static int val(int url, char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (url ? '-' : '+'))
		return 62;
	if (c == (url ? '_' : '/'))
		return 63;
	return -1;
}

/* Decode len characters with no padding in them; len % 4 != 1. */
static imp_err decode(int url, const char *in, size_t len, uint8_t **out, size_t *n)
{
	size_t rem = len % 4;
	size_t outlen = len / 4 * 3 + (rem ? rem - 1 : 0);
	uint8_t *buf;
	uint8_t *o;
	uint32_t acc = 0;
	size_t i;

	*out = NULL;
	*n = 0;
	if (rem == 1)
		return IMP_ERR_PROTOCOL;
	buf = malloc(outlen + 1);
	if (!buf)
		return IMP_ERR_NOMEM;
	o = buf;
	for (i = 0; i < len; i++) {
		int v = val(url, in[i]);

		if (v < 0) {
			free(buf);
			return IMP_ERR_PROTOCOL;
		}
		acc = acc << 6 | (uint32_t)v;
		if (i % 4 == 3) {
			*o++ = (uint8_t)(acc >> 16);
			*o++ = (uint8_t)(acc >> 8);
			*o++ = (uint8_t)acc;
			acc = 0;
		}
	}
	/* Unused trailing bits must be zero: one encoding per byte string. */
	if (rem == 2) {
		if (acc & 0x0f) {
			free(buf);
			return IMP_ERR_PROTOCOL;
		}
		*o++ = (uint8_t)(acc >> 4);
	} else if (rem == 3) {
		if (acc & 0x03) {
			free(buf);
			return IMP_ERR_PROTOCOL;
		}
		*o++ = (uint8_t)(acc >> 10);
		*o++ = (uint8_t)(acc >> 2);
	}
	*o = 0;
	*out = buf;
	*n = outlen;
	return IMP_OK;
}

imp_err fmt_b64url_decode(const char *in, size_t len, uint8_t **out, size_t *n)
{
	return decode(1, in, len, out, n);
}

imp_err fmt_b64_decode(const char *in, size_t len, uint8_t **out, size_t *n)
{
	size_t pad = 0;

	*out = NULL;
	*n = 0;
	if (len % 4 != 0)
		return IMP_ERR_PROTOCOL;
	if (len >= 1 && in[len - 1] == '=')
		pad++;
	if (len >= 2 && in[len - 2] == '=')
		pad++;
	return decode(0, in, len - pad, out, n);
}
