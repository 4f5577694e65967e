/*
 * Device serial numbers: PREFIX + counter in decimal, zero-padded to width,
 * + optional check character(s):
 *
 *   none    "ACM000042"
 *   luhn36  "ACM000042" + one character of 0-9A-Z: Luhn mod N (N = 36) over
 *           the whole string, prefix included (catches every single-character
 *           error and most adjacent transpositions)
 *   mod97   "ACM000042" + two digits: ISO 7064 MOD 97-10 as in IBAN (letters
 *           A..Z count as 10..35; catches every single substitution of a digit
 *           by a digit or a letter by a letter, and every transposition of
 *           adjacent digits)
 *
 * The prefix is 0..16 characters of A-Z and 0-9.
 */
#ifndef FORMATS_SERIAL_H
#define FORMATS_SERIAL_H

#include <stddef.h>
#include <stdint.h>

#include "imprint/err.h"

enum fmt_check_digit {
	FMT_CHECK_NONE = 0,
	FMT_CHECK_LUHN36 = 1,
	FMT_CHECK_MOD97 = 2,
};

#define FMT_SERIAL_PREFIX_MAX 16u
#define FMT_SERIAL_WIDTH_MAX 12u
/* Longest serial + NUL. */
#define FMT_SERIAL_MAX (FMT_SERIAL_PREFIX_MAX + FMT_SERIAL_WIDTH_MAX + 2u + 1u)

/* "none" / "luhn36" / "mod97"; never NULL. */
const char *fmt_check_digit_name(enum fmt_check_digit c);
/* Parse a scheme name; IMP_ERR_USAGE if unknown. */
imp_err fmt_check_digit_parse(const char *s, enum fmt_check_digit *c);

/*
 * Format serial number counter into out (cap bytes; FMT_SERIAL_MAX always
 * suffices). IMP_ERR_USAGE for a bad prefix or width (1..12), IMP_ERR_QUOTA
 * if counter does not fit in width digits (the serial space is exhausted).
 */
imp_err fmt_serial_format(const char *prefix, unsigned width, enum fmt_check_digit scheme,
			  uint64_t counter, char *out, size_t cap);

/*
 * Check a serial's check character(s) under scheme. IMP_OK if valid (always
 * for FMT_CHECK_NONE when the characters are A-Z0-9), IMP_ERR_VERIFY if not.
 */
imp_err fmt_serial_check(const char *serial, enum fmt_check_digit scheme);

#endif
