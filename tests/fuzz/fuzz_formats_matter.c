/*
 * libFuzzer target: the Matter onboarding payload readers
 * (formats/matter.c) on arbitrary text: fmt_base38_decode and
 * fmt_matter_qr_parse. Checks: bounds (the input is copied to a
 * NUL-terminated buffer of exactly its size), that decoded Base38
 * encodes back to the same text, and that a parsed "MT:" payload packs
 * back to the same string.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/matter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1), again[256];
	uint8_t bin[192];
	size_t n = 0;
	struct fmt_matter_payload p;
	char qr[FMT_MATTER_QR_MAX];

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (fmt_base38_decode(s, bin, sizeof(bin), &n) == IMP_OK) {
		if (n > sizeof(bin))
			abort();
		if (fmt_base38_encode(bin, n, again, sizeof(again)) == IMP_OK &&
		    strcmp(again, s) != 0)
			abort();
	}
	if (fmt_matter_qr_parse(s, &p) == IMP_OK) {
		if (fmt_matter_qr_raw(&p, qr) != IMP_OK || strcmp(qr, s) != 0)
			abort();
	}
	free(s);
	return 0;
}
