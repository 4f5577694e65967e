/*
 * The UART frame of the imprint provisioning-agent protocol, version 1.
 * PERSISTED / WIRE FORMAT: every constant here is frozen; docs/PROTOCOL.md
 * describes the same layout.
 *
 *   offset size  field
 *   0      2     magic 0xA5 0x5A
 *   2      1     version (1)
 *   3      1     type (command code; a response is command | 0x80;
 *                0x7F is NAK: "your frame with this seq had a bad CRC")
 *   4      2     seq, big-endian: set by the station, echoed by the agent
 *   6      2     payload length, big-endian, at most WIRE_FRAME_MAX_PAYLOAD
 *   8      len   payload
 *   8+len  4     CRC-32 (IEEE 802.3, as zlib's crc32), big-endian, over
 *                bytes 2 .. 8+len-1 (version, type, seq, len, payload)
 *
 * All multi-byte integers in frames and payloads are big-endian.
 */
#ifndef WIRE_FRAME_H
#define WIRE_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "imprint/err.h"

#define WIRE_FRAME_MAGIC0 0xA5u         /* persisted */
#define WIRE_FRAME_MAGIC1 0x5Au         /* persisted */
#define WIRE_FRAME_VERSION 1u           /* persisted */
#define WIRE_FRAME_HDR_LEN 8u           /* persisted */
#define WIRE_FRAME_CRC_LEN 4u           /* persisted */
#define WIRE_FRAME_MAX_PAYLOAD 4096u    /* persisted */
#define WIRE_FRAME_MAX_LEN (WIRE_FRAME_HDR_LEN + WIRE_FRAME_MAX_PAYLOAD + WIRE_FRAME_CRC_LEN)
#define WIRE_FRAME_TYPE_NAK 0x7Fu       /* persisted */
#define WIRE_FRAME_RESPONSE 0x80u       /* persisted: response bit */

_Static_assert(WIRE_FRAME_HDR_LEN == 8, "frame header is 8 bytes");
_Static_assert(WIRE_FRAME_MAX_LEN == 4108, "largest frame is 4108 bytes");

struct wire_frame {
	uint8_t type;
	uint16_t seq;
	uint16_t len;
	uint8_t payload[WIRE_FRAME_MAX_PAYLOAD];
};

/* CRC-32 (IEEE), continuing from crc (start with 0). */
uint32_t wire_crc32(uint32_t crc, const uint8_t *p, size_t n);

/*
 * Encode f into out (capacity cap). Returns the number of bytes written, or
 * 0 if f->len is too large or cap too small.
 */
size_t wire_frame_encode(const struct wire_frame *f, uint8_t *out, size_t cap);

enum wire_frame_result {
	WIRE_FRAME_OK = 0,        /* *out holds a frame; drop *consumed bytes */
	WIRE_FRAME_NEED_MORE = 1, /* no full frame yet; drop *consumed bytes (noise) */
	WIRE_FRAME_BAD_CRC = 2,   /* header was sane but CRC failed: out->type and
	                              out->seq are those of the header (untrusted),
	                              drop *consumed bytes and decode again */
	WIRE_FRAME_BAD = 3,       /* malformed header; drop *consumed bytes */
};

/*
 * Decode the first frame in buf[0..n). Never reads past n, never trusts a
 * length before checking it, and always sets *consumed (possibly 0 when more
 * bytes are needed). Garbage before a magic is counted in *consumed.
 */
enum wire_frame_result wire_frame_decode(const uint8_t *buf, size_t n,
					   struct wire_frame *out, size_t *consumed);

/* Big-endian helpers for payload building and parsing. */
static inline void wire_put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void wire_put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline uint16_t wire_get_u16(const uint8_t *p)
{
	return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static inline uint32_t wire_get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

#endif
