/*
 * A strict DER walker for the in-place readers of exactly the shapes
 * imprint writes (x509_view.c: device certificates; csr.c: the board key
 * store's CSR). Private to formats/.
 */
#ifndef FORMATS_DER_INT_H
#define FORMATS_DER_INT_H

#include <stddef.h>
#include <stdint.h>

/* A span of DER bytes. */
struct fmt_der {
	const uint8_t *p;
	size_t n;
};

/*
 * Take the next TLV of tag from in (strict DER lengths: definite, minimal,
 * under 64 KiB): its value in *val and the whole TLV in *whole (either
 * may be NULL); 1 on success and in advanced past it, 0 otherwise.
 */
int fmt_der_take(struct fmt_der *in, uint8_t tag, struct fmt_der *val, struct fmt_der *whole);

/* Whether d holds exactly the n bytes b. */
int fmt_der_eq(struct fmt_der d, const uint8_t *b, size_t n);

#endif
