/*
 * Onboarding labels (imprint label, docs/MATTER.md "The label"): the QR
 * code of the "MT:" payload (libqrencode, error correction M), the manual
 * pairing code grouped as the specification prints it (4-3-4 digits, or
 * 4-3-4-5-5 for the 21-digit code) and the serial, as
 *
 *   png  8-bit grey, 6 pixels per module, a 4-module quiet zone, the text
 *        below in a 5x7 dot font (libpng)
 *   svg  one path of the dark modules, the text as <text> elements
 *   zpl  one ZPL II label for a label printer: ^BQ (model 2, error
 *        correction M) with the payload, the text in font 0
 *
 * The rendered label holds the passcode (the QR and the manual code say
 * it): callers keep it in memory only as long as needed, wipe it, and
 * write it where the operator asked (SECURITY.md).
 */
#ifndef STATION_LABEL_H
#define STATION_LABEL_H

#include <stddef.h>
#include <stdint.h>

#include "imprint/err.h"

enum st_label_format {
	ST_LABEL_PNG = 0,
	ST_LABEL_SVG = 1,
	ST_LABEL_ZPL = 2,
};

/* "png", "svg", "zpl"; IMP_ERR_USAGE otherwise. */
imp_err st_label_format_parse(const char *s, enum st_label_format *f);

/* The manual code with the dashes a label shows: "3497-011-2332". out
 * holds at least 28 bytes. */
void st_label_group_digits(const char *manual, char *out, size_t cap);

/*
 * Render one label. *out malloc'ed (*n bytes): the caller wipes and frees
 * it. IMP_ERR_USAGE if the payload cannot be encoded as a QR code.
 */
imp_err st_label_render(enum st_label_format f, const char *qr_payload, const char *manual,
			const char *serial, uint8_t **out, size_t *n);

#endif
