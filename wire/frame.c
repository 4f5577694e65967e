#include <string.h>

#include "wire/frame.h"

/* CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320) four bits at a
 * time from a constant table: nothing to build at run time, so fixture
 * threads share it without a race. */
static const uint32_t crc_nibble[16] = {
	0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u,
	0x4DB26158u, 0x5005713Cu, 0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu,
	0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu,
};

uint32_t wire_crc32(uint32_t crc, const uint8_t *p, size_t n)
{
	crc = ~crc;
	for (size_t i = 0; i < n; i++) {
		crc ^= p[i];
		crc = crc_nibble[crc & 0xF] ^ (crc >> 4);
		crc = crc_nibble[crc & 0xF] ^ (crc >> 4);
	}
	return ~crc;
}

size_t wire_frame_encode(const struct wire_frame *f, uint8_t *out, size_t cap)
{
	size_t total = WIRE_FRAME_HDR_LEN + (size_t)f->len + WIRE_FRAME_CRC_LEN;

	if (f->len > WIRE_FRAME_MAX_PAYLOAD || cap < total)
		return 0;
	out[0] = WIRE_FRAME_MAGIC0;
	out[1] = WIRE_FRAME_MAGIC1;
	out[2] = WIRE_FRAME_VERSION;
	out[3] = f->type;
	wire_put_u16(out + 4, f->seq);
	wire_put_u16(out + 6, f->len);
	memcpy(out + WIRE_FRAME_HDR_LEN, f->payload, f->len);
	wire_put_u32(out + WIRE_FRAME_HDR_LEN + f->len,
		      wire_crc32(0, out + 2, WIRE_FRAME_HDR_LEN - 2 + (size_t)f->len));
	return total;
}

enum wire_frame_result wire_frame_decode(const uint8_t *buf, size_t n,
					   struct wire_frame *out, size_t *consumed)
{
	size_t start = 0;
	uint16_t len;
	uint32_t want;

	/* Skip noise up to the next magic. */
	while (start < n) {
		if (buf[start] == WIRE_FRAME_MAGIC0 &&
		    (start + 1 >= n || buf[start + 1] == WIRE_FRAME_MAGIC1))
			break;
		start++;
	}
	*consumed = start;
	if (n - start < WIRE_FRAME_HDR_LEN)
		return WIRE_FRAME_NEED_MORE;
	buf += start;
	len = wire_get_u16(buf + 6);
	if (buf[2] != WIRE_FRAME_VERSION || len > WIRE_FRAME_MAX_PAYLOAD) {
		*consumed = start + 1; /* resynchronise past this magic */
		return WIRE_FRAME_BAD;
	}
	if (n - start < WIRE_FRAME_HDR_LEN + (size_t)len + WIRE_FRAME_CRC_LEN)
		return WIRE_FRAME_NEED_MORE;
	out->type = buf[3];
	out->seq = wire_get_u16(buf + 4);
	out->len = 0;
	want = wire_get_u32(buf + WIRE_FRAME_HDR_LEN + len);
	if (wire_crc32(0, buf + 2, WIRE_FRAME_HDR_LEN - 2 + (size_t)len) != want) {
		*consumed = start + 1;
		return WIRE_FRAME_BAD_CRC;
	}
	out->len = len;
	memcpy(out->payload, buf + WIRE_FRAME_HDR_LEN, len);
	*consumed = start + WIRE_FRAME_HDR_LEN + (size_t)len + WIRE_FRAME_CRC_LEN;
	return WIRE_FRAME_OK;
}
