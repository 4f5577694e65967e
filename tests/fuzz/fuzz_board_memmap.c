/*
 * libFuzzer target: the GDB memory-map parser (board/rsp_memmap.c) on
 * arbitrary bytes. Checks: bounds (ASan: the input is copied to a buffer
 * of exactly its size, so any read past it is caught), and that every
 * region it accepts is well-formed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "board/rsp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct board_rsp_region r[8];
	size_t n = 0;
	char *xml = malloc(size ? size : 1);

	if (!xml)
		return 0;
	memcpy(xml, data, size);
	if (board_rsp_parse_memory_map(xml, size, r, 8, &n) == 0) {
		if (n > 8)
			abort();
		for (size_t i = 0; i < n; i++) {
			if (r[i].length == 0 || r[i].start + r[i].length > 0x100000000ull)
				abort();
			if (r[i].type == BOARD_RSP_MEM_FLASH &&
			    (r[i].blocksize == 0 || r[i].length % r[i].blocksize))
				abort();
		}
	} else if (n != 0) {
		abort();
	}
	free(xml);
	return 0;
}
