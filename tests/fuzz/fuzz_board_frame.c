/*
 * libFuzzer target: the agent frame decoder (board/frame.c) on arbitrary
 * bytes, walked as the serial link walks its receive buffer. Checks: never
 * reads out of bounds (ASan), always makes progress or asks for more, and
 * every frame it accepts re-encodes to the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire/frame.h"

static struct wire_frame f, g;
static uint8_t enc[WIRE_FRAME_MAX_LEN];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0;

	while (off < size) {
		size_t used = 0;
		enum wire_frame_result r = wire_frame_decode(data + off, size - off, &f, &used);

		if (used > size - off || f.len > WIRE_FRAME_MAX_PAYLOAD)
			abort();
		if (r == WIRE_FRAME_OK) {
			size_t n = wire_frame_encode(&f, enc, sizeof(enc));
			size_t u2 = 0;

			/* The accepted frame is exactly the bytes at its end. */
			if (n == 0 || n > used || memcmp(enc, data + off + used - n, n) != 0)
				abort();
			if (wire_frame_decode(enc, n, &g, &u2) != WIRE_FRAME_OK || u2 != n ||
			    g.len != f.len || memcmp(g.payload, f.payload, f.len) != 0)
				abort();
		} else if (r == WIRE_FRAME_NEED_MORE && used == 0) {
			break;
		} else if (r != WIRE_FRAME_NEED_MORE && used == 0) {
			abort(); /* no progress on a bad frame */
		}
		off += used;
	}
	return 0;
}
