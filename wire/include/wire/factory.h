/*
 * The Matter factory-data record the station stores on a board with the
 * agent's STORE_FACTORY_DATA and reads back with READ_FACTORY_DATA
 * (wire/agent_proto.h; docs/PROTOCOL.md, docs/MATTER.md). One definition
 * for both ends: the station's agent client (board/) and the virtual
 * board's agent (sim/).
 *
 * WIRE FORMAT (persisted; integers big-endian, "blob" a u16 length and
 * its bytes, as every agent payload):
 *   format:u8 (= WIRE_FACTORY_FORMAT)
 *   vendor_id:u16 product_id:u16 discriminator:u16 (12 bits)
 *   iterations:u32 (PBKDF2, 1000..100000)
 *   salt:blob (16..32 bytes)
 *   verifier:blob (97 bytes: SPAKE2+ W0[32] || L[65])
 *   cd:blob (the certification declaration, CMS DER; 0..1024 bytes)
 * The passcode is not in it: a Matter device keeps only the verifier.
 */
#ifndef WIRE_FACTORY_H
#define WIRE_FACTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire/payload.h"

#define WIRE_FACTORY_FORMAT 1u          /* persisted */
#define WIRE_FACTORY_VERIFIER_LEN 97u   /* persisted */
#define WIRE_FACTORY_SALT_MIN 16u       /* persisted */
#define WIRE_FACTORY_SALT_MAX 32u       /* persisted */
#define WIRE_FACTORY_ITER_MIN 1000u     /* persisted */
#define WIRE_FACTORY_ITER_MAX 100000u   /* persisted */
#define WIRE_FACTORY_CD_MAX 1024u       /* persisted */
#define WIRE_FACTORY_DISCRIMINATOR_MAX 0xFFFu
/* Largest encoded record: 1 + 2*3 + 4 + (2+32) + (2+97) + (2+1024). */
#define WIRE_FACTORY_MAX_LEN 1170u
_Static_assert(WIRE_FACTORY_MAX_LEN == 1 + 6 + 4 + 2 + WIRE_FACTORY_SALT_MAX + 2 +
		       WIRE_FACTORY_VERIFIER_LEN + 2 + WIRE_FACTORY_CD_MAX,
	       "the largest factory-data record");

/* The record's fields; the pointers are borrowed (from the caller, or from
 * the payload a decoder read). */
struct wire_factory {
	uint16_t vendor_id;
	uint16_t product_id;
	uint16_t discriminator;
	uint32_t iterations;
	const uint8_t *salt;
	size_t salt_len;
	const uint8_t *verifier; /* WIRE_FACTORY_VERIFIER_LEN bytes */
	const uint8_t *cd;       /* may be NULL when cd_len is 0 */
	size_t cd_len;
};

/* Every field within its bounds (the decoder's check, for the encoder's
 * callers too). */
bool wire_factory_valid(const struct wire_factory *f);

/* Append the record to w (sticky overflow, as every wire_wr_ call). */
void wire_factory_write(struct wire_wr *w, const struct wire_factory *f);

/* Read one record from r into *f (pointers into r's payload); false for
 * a short, malformed or out-of-bounds record. Leaves r positioned after it. */
bool wire_factory_read(struct wire_rd *r, struct wire_factory *f);

#endif
