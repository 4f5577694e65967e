#include <string.h>

#include "wire/frame.h"
#include "wire/payload.h"

void wire_wr_init(struct wire_wr *w, uint8_t *buf, size_t cap)
{
	*w = (struct wire_wr){ .p = buf, .cap = cap };
}

void wire_wr_bytes(struct wire_wr *w, const void *p, size_t n)
{
	if (w->overflow || n > w->cap - w->n) {
		w->overflow = true;
		return;
	}
	if (n)
		memcpy(w->p + w->n, p, n);
	w->n += n;
}

void wire_wr_u8(struct wire_wr *w, uint8_t v)
{
	wire_wr_bytes(w, &v, 1);
}

void wire_wr_u16(struct wire_wr *w, uint16_t v)
{
	uint8_t b[2];

	wire_put_u16(b, v);
	wire_wr_bytes(w, b, 2);
}

void wire_wr_blob(struct wire_wr *w, const void *p, size_t n)
{
	if (n > 0xFFFF) {
		w->overflow = true;
		return;
	}
	wire_wr_u16(w, (uint16_t)n);
	wire_wr_bytes(w, p, n);
}

void wire_rd_init(struct wire_rd *r, const uint8_t *p, size_t n)
{
	*r = (struct wire_rd){ .p = p, .n = n };
}

const uint8_t *wire_rd_bytes(struct wire_rd *r, size_t n)
{
	const uint8_t *p;

	if (r->bad || n > r->n - r->off) {
		r->bad = true;
		return NULL;
	}
	p = r->p + r->off;
	r->off += n;
	return p;
}

uint8_t wire_rd_u8(struct wire_rd *r)
{
	const uint8_t *p = wire_rd_bytes(r, 1);

	return p ? p[0] : 0;
}

uint16_t wire_rd_u16(struct wire_rd *r)
{
	const uint8_t *p = wire_rd_bytes(r, 2);

	return p ? wire_get_u16(p) : 0;
}

const uint8_t *wire_rd_blob(struct wire_rd *r, size_t *len)
{
	uint16_t l = wire_rd_u16(r);
	const uint8_t *p = wire_rd_bytes(r, l);

	*len = p ? l : 0;
	return p;
}

bool wire_rd_done(const struct wire_rd *r)
{
	return !r->bad && r->off == r->n;
}
