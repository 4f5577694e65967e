/*
 * Agent payloads: the bounds-checked writer and reader both ends of the
 * UART link use (the station's agent client in board/, the virtual board's
 * agent in sim/). Layout of each command's payload: docs/PROTOCOL.md.
 *
 * Both are sticky: after the first overflow or short read every further
 * call does nothing (reads return 0 / NULL), so a caller checks once, at
 * the end. Multi-byte integers are little-endian (wire/frame.h).
 */
#ifndef WIRE_PAYLOAD_H
#define WIRE_PAYLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wire_wr {
	uint8_t *p;     /* the payload buffer (not owned) */
	size_t cap;     /* its size */
	size_t n;       /* bytes written */
	bool overflow;  /* a write did not fit (or a blob exceeded 65535 bytes) */
};

void wire_wr_init(struct wire_wr *w, uint8_t *buf, size_t cap);
void wire_wr_bytes(struct wire_wr *w, const void *p, size_t n);
void wire_wr_u8(struct wire_wr *w, uint8_t v);
void wire_wr_u16(struct wire_wr *w, uint16_t v);
/* A blob: u16 length, then the bytes. */
void wire_wr_blob(struct wire_wr *w, const void *p, size_t n);

struct wire_rd {
	const uint8_t *p; /* the payload (not owned) */
	size_t n;         /* its length */
	size_t off;       /* bytes consumed */
	bool bad;         /* a read ran past the end */
};

void wire_rd_init(struct wire_rd *r, const uint8_t *p, size_t n);
/* The next n bytes, or NULL (and bad set) if fewer are left. */
const uint8_t *wire_rd_bytes(struct wire_rd *r, size_t n);
uint8_t wire_rd_u8(struct wire_rd *r);
uint16_t wire_rd_u16(struct wire_rd *r);
/* A blob (u16 length, bytes): its bytes and *len, or NULL and *len 0. */
const uint8_t *wire_rd_blob(struct wire_rd *r, size_t *len);
/* Every read succeeded and nothing is left over. */
bool wire_rd_done(const struct wire_rd *r);

#endif
