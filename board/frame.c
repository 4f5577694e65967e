#include <string.h>

#include "board/frame.h"

uint32_t board_crc32(uint32_t crc, const uint8_t *p, size_t n)
{
	static uint32_t table[256];
	static int ready;

	if (!ready) {
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t c = i;

			for (int k = 0; k < 8; k++)
				c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
			table[i] = c;
		}
		/* Benign race: every thread computes the same table. */
		__atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
	}
	crc = ~crc;
	for (size_t i = 0; i < n; i++)
		crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
	return ~crc;
}

size_t board_frame_encode(const struct board_frame *f, uint8_t *out, size_t cap)
{
	size_t total = BOARD_FRAME_HDR_LEN + (size_t)f->len + BOARD_FRAME_CRC_LEN;

	if (f->len > BOARD_FRAME_MAX_PAYLOAD || cap < total)
		return 0;
	out[0] = BOARD_FRAME_MAGIC0;
	out[1] = BOARD_FRAME_MAGIC1;
	out[2] = BOARD_FRAME_VERSION;
	out[3] = f->type;
	board_put_u16(out + 4, f->seq);
	board_put_u16(out + 6, f->len);
	memcpy(out + BOARD_FRAME_HDR_LEN, f->payload, f->len);
	board_put_u32(out + BOARD_FRAME_HDR_LEN + f->len,
		      board_crc32(0, out + 2, BOARD_FRAME_HDR_LEN - 2 + (size_t)f->len));
	return total;
}

enum board_frame_result board_frame_decode(const uint8_t *buf, size_t n,
					   struct board_frame *out, size_t *consumed)
{
	size_t start = 0;
	uint16_t len;
	uint32_t want;

	/* Skip noise up to the next magic. */
	while (start < n) {
		if (buf[start] == BOARD_FRAME_MAGIC0 &&
		    (start + 1 >= n || buf[start + 1] == BOARD_FRAME_MAGIC1))
			break;
		start++;
	}
	*consumed = start;
	if (n - start < BOARD_FRAME_HDR_LEN)
		return BOARD_FRAME_NEED_MORE;
	buf += start;
	len = board_get_u16(buf + 6);
	if (buf[2] != BOARD_FRAME_VERSION || len > BOARD_FRAME_MAX_PAYLOAD) {
		*consumed = start + 1; /* resynchronise past this magic */
		return BOARD_FRAME_BAD;
	}
	if (n - start < BOARD_FRAME_HDR_LEN + (size_t)len + BOARD_FRAME_CRC_LEN)
		return BOARD_FRAME_NEED_MORE;
	out->type = buf[3];
	out->seq = board_get_u16(buf + 4);
	out->len = 0;
	want = board_get_u32(buf + BOARD_FRAME_HDR_LEN + len);
	if (board_crc32(0, buf + 2, BOARD_FRAME_HDR_LEN - 2 + (size_t)len) != want) {
		*consumed = start + 1;
		return BOARD_FRAME_BAD_CRC;
	}
	out->len = len;
	memcpy(out->payload, buf + BOARD_FRAME_HDR_LEN, len);
	*consumed = start + BOARD_FRAME_HDR_LEN + (size_t)len + BOARD_FRAME_CRC_LEN;
	return BOARD_FRAME_OK;
}
