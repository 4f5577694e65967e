#include <stdio.h>
#include <string.h>

#include "formats/serial.h"

const char *fmt_check_digit_name(enum fmt_check_digit c)
{
	switch (c) {
	case FMT_CHECK_NONE:
		return "none";
	case FMT_CHECK_LUHN36:
		return "luhn36";
	case FMT_CHECK_MOD97:
		return "mod97";
	}
	return "unknown";
}

imp_err fmt_check_digit_parse(const char *s, enum fmt_check_digit *c)
{
	if (!s)
		return IMP_ERR_USAGE;
	if (strcmp(s, "none") == 0)
		*c = FMT_CHECK_NONE;
	else if (strcmp(s, "luhn36") == 0)
		*c = FMT_CHECK_LUHN36;
	else if (strcmp(s, "mod97") == 0)
		*c = FMT_CHECK_MOD97;
	else
		return IMP_ERR_USAGE;
	return IMP_OK;
}

/* 0-9 -> 0..9, A-Z -> 10..35, anything else -1. */
static int code36(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A' + 10;
	return -1;
}

static int valid_chars(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (code36(s[i]) < 0)
			return 0;
	return 1;
}

/*
 * Luhn mod N sum over s[0..n); the rightmost character of s is doubled when
 * first_factor is 2 (generation) and not when it is 1 (validation).
 */
static unsigned luhn36_sum(const char *s, size_t n, unsigned first_factor)
{
	unsigned factor = first_factor;
	unsigned sum = 0;

	for (size_t i = n; i-- > 0;) {
		unsigned a = factor * (unsigned)code36(s[i]);

		sum += a / 36 + a % 36;
		factor = factor == 2 ? 1 : 2;
	}
	return sum % 36;
}

static char digit36(unsigned v)
{
	return (char)(v < 10 ? '0' + v : 'A' + (v - 10));
}

/* ISO 7064 MOD 97-10 remainder of s (letters count as two digits 10..35). */
static unsigned mod97(const char *s, size_t n)
{
	unsigned r = 0;

	for (size_t i = 0; i < n; i++) {
		int v = code36(s[i]);

		r = (v >= 10 ? r * 100 : r * 10) + (unsigned)v;
		r %= 97;
	}
	return r;
}

imp_err fmt_serial_format(const char *prefix, unsigned width, enum fmt_check_digit scheme,
			  uint64_t counter, char *out, size_t cap)
{
	size_t plen;
	uint64_t limit = 1;
	int n;

	if (cap)
		out[0] = '\0';
	if (!prefix)
		prefix = "";
	plen = strlen(prefix);
	if (plen > FMT_SERIAL_PREFIX_MAX || !valid_chars(prefix, plen))
		return IMP_ERR_USAGE;
	if (width < 1 || width > FMT_SERIAL_WIDTH_MAX)
		return IMP_ERR_USAGE;
	if ((unsigned)scheme > FMT_CHECK_MOD97)
		return IMP_ERR_USAGE;
	for (unsigned i = 0; i < width; i++)
		limit *= 10;
	if (counter >= limit)
		return IMP_ERR_QUOTA;
	if (cap < plen + width + 3)
		return IMP_ERR_USAGE;
	n = snprintf(out, cap, "%s%0*llu", prefix, (int)width, (unsigned long long)counter);
	if (n < 0)
		return IMP_ERR_INTERNAL;
	switch (scheme) {
	case FMT_CHECK_NONE:
		break;
	case FMT_CHECK_LUHN36:
		out[n] = digit36((36 - luhn36_sum(out, (size_t)n, 2)) % 36);
		out[n + 1] = '\0';
		break;
	case FMT_CHECK_MOD97: {
		/* check = 98 - (value * 100 mod 97), so that value||check = 1 mod 97 */
		unsigned c = 98 - (mod97(out, (size_t)n) * 100) % 97;

		out[n] = (char)('0' + c / 10);
		out[n + 1] = (char)('0' + c % 10);
		out[n + 2] = '\0';
		break;
	}
	}
	return IMP_OK;
}

imp_err fmt_serial_check(const char *serial, enum fmt_check_digit scheme)
{
	size_t n;

	if (!serial)
		return IMP_ERR_VERIFY;
	n = strlen(serial);
	if (n == 0 || !valid_chars(serial, n))
		return IMP_ERR_VERIFY;
	switch (scheme) {
	case FMT_CHECK_NONE:
		return IMP_OK;
	case FMT_CHECK_LUHN36:
		if (n < 2)
			return IMP_ERR_VERIFY;
		return luhn36_sum(serial, n, 1) == 0 ? IMP_OK : IMP_ERR_VERIFY;
	case FMT_CHECK_MOD97:
		if (n < 3 || code36(serial[n - 1]) > 9 || code36(serial[n - 2]) > 9)
			return IMP_ERR_VERIFY;
		return mod97(serial, n) == 1 ? IMP_OK : IMP_ERR_VERIFY;
	}
	return IMP_ERR_VERIFY;
}
