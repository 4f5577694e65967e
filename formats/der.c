/* The strict DER walker of the in-place readers (der_int.h). */
#include <string.h>

#include "der_int.h"

/* Next TLV of tag from in: strict DER lengths (definite, minimal, < 64 KiB). */
int fmt_der_take(struct fmt_der *in, uint8_t tag, struct fmt_der *val, struct fmt_der *whole)
{
	size_t len, hl;

	if (in->n < 2 || in->p[0] != tag)
		return 0;
	if (in->p[1] < 0x80) {
		len = in->p[1];
		hl = 2;
	} else if (in->p[1] == 0x81) {
		if (in->n < 3 || in->p[2] < 0x80)
			return 0;
		len = in->p[2];
		hl = 3;
	} else if (in->p[1] == 0x82) {
		if (in->n < 4 || in->p[2] == 0)
			return 0;
		len = ((size_t)in->p[2] << 8) | in->p[3];
		if (len < 0x100)
			return 0;
		hl = 4;
	} else {
		return 0;
	}
	if (in->n - hl < len)
		return 0;
	if (val)
		*val = (struct fmt_der){ in->p + hl, len };
	if (whole)
		*whole = (struct fmt_der){ in->p, hl + len };
	in->p += hl + len;
	in->n -= hl + len;
	return 1;
}

int fmt_der_eq(struct fmt_der d, const uint8_t *b, size_t n)
{
	return d.n == n && memcmp(d.p, b, n) == 0;
}
