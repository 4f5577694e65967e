/*
 * libFuzzer target: the Matter factory-data record reader
 * (wire/factory.c), the virtual board's first look at a STORE_FACTORY_DATA
 * payload. Checks: bounds (the input is copied to a buffer of exactly its
 * size), that an accepted record is within its documented bounds, and
 * that it writes back to the very bytes it was read from.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire/factory.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *in = malloc(size ? size : 1), out[WIRE_FACTORY_MAX_LEN];
	struct wire_factory f;
	struct wire_rd r;
	struct wire_wr w;

	if (!in)
		return 0;
	memcpy(in, data, size);
	wire_rd_init(&r, in, size);
	if (wire_factory_read(&r, &f)) {
		if (!wire_factory_valid(&f) || r.off > size)
			abort();
		wire_wr_init(&w, out, sizeof(out));
		wire_factory_write(&w, &f);
		if (w.overflow || w.n != r.off || memcmp(out, in, w.n) != 0)
			abort();
	}
	free(in);
	return 0;
}
