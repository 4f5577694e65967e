/*
 * libFuzzer target: the RSP packet parser (board/rsp_packet.c) on arbitrary
 * bytes, with a small and a large output buffer. Checks: bounds (ASan),
 * progress, decoded length within the buffer, and that escape + frame +
 * parse round-trips any decoded payload.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "board/rsp.h"

static uint8_t out[BOARD_RSP_MAX_PAYLOAD];
static uint8_t esc[2 * BOARD_RSP_MAX_PAYLOAD];
static uint8_t framed[2 * BOARD_RSP_MAX_PAYLOAD + 8];
static uint8_t back[BOARD_RSP_MAX_PAYLOAD];

static void walk(const uint8_t *data, size_t size, size_t cap)
{
	size_t off = 0;

	while (off < size) {
		size_t used = 0, len = 0;
		char ack = 0;
		enum board_rsp_result r = board_rsp_parse(data + off, size - off, out, cap, &len,
							  &used, &ack);

		if (used > size - off || len > cap)
			abort();
		if (r == BOARD_RSP_ACK && ack != '+' && ack != '-')
			abort();
		if (r == BOARD_RSP_PACKET) {
			size_t consumed = 0, e, n, len2 = 0, u2 = 0;

			e = board_rsp_escape(out, len, esc, sizeof(esc), &consumed);
			if (consumed != len)
				abort();
			n = board_rsp_frame(esc, e, framed, sizeof(framed));
			if (n != e + 4)
				abort();
			if (board_rsp_parse(framed, n, back, sizeof(back), &len2, &u2, NULL) !=
				    BOARD_RSP_PACKET ||
			    len2 != len || u2 != n || memcmp(back, out, len) != 0)
				abort();
		}
		if (r == BOARD_RSP_NEED_MORE && used == 0)
			break;
		if (r != BOARD_RSP_NEED_MORE && used == 0)
			abort();
		off += used;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	walk(data, size, 16);
	walk(data, size, sizeof(out));
	return 0;
}
