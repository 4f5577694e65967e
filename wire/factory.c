/* The Matter factory-data record (wire/factory.h). */
#include <string.h>

#include "wire/factory.h"
#include "wire/frame.h"

bool wire_factory_valid(const struct wire_factory *f)
{
	return f->discriminator <= WIRE_FACTORY_DISCRIMINATOR_MAX &&
	       f->iterations >= WIRE_FACTORY_ITER_MIN && f->iterations <= WIRE_FACTORY_ITER_MAX &&
	       f->salt && f->salt_len >= WIRE_FACTORY_SALT_MIN &&
	       f->salt_len <= WIRE_FACTORY_SALT_MAX && f->verifier &&
	       f->cd_len <= WIRE_FACTORY_CD_MAX && (f->cd || f->cd_len == 0);
}

void wire_factory_write(struct wire_wr *w, const struct wire_factory *f)
{
	uint8_t b[4];

	wire_wr_u8(w, WIRE_FACTORY_FORMAT);
	wire_wr_u16(w, f->vendor_id);
	wire_wr_u16(w, f->product_id);
	wire_wr_u16(w, f->discriminator);
	wire_put_u32(b, f->iterations);
	wire_wr_bytes(w, b, 4);
	wire_wr_blob(w, f->salt, f->salt_len);
	wire_wr_blob(w, f->verifier, WIRE_FACTORY_VERIFIER_LEN);
	wire_wr_blob(w, f->cd, f->cd_len);
}

bool wire_factory_read(struct wire_rd *r, struct wire_factory *f)
{
	const uint8_t *it;
	size_t vl = 0;

	memset(f, 0, sizeof(*f));
	if (wire_rd_u8(r) != WIRE_FACTORY_FORMAT)
		return false;
	f->vendor_id = wire_rd_u16(r);
	f->product_id = wire_rd_u16(r);
	f->discriminator = wire_rd_u16(r);
	it = wire_rd_bytes(r, 4);
	f->iterations = it ? wire_get_u32(it) : 0;
	f->salt = wire_rd_blob(r, &f->salt_len);
	f->verifier = wire_rd_blob(r, &vl);
	f->cd = wire_rd_blob(r, &f->cd_len);
	if (r->bad || vl != WIRE_FACTORY_VERIFIER_LEN)
		return false;
	if (f->cd_len == 0)
		f->cd = NULL;
	return wire_factory_valid(f);
}
