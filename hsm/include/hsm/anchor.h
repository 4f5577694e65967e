/*
 * The journal's anchor in the HSM: a private token data object per station
 * holding the last signed checkpoint (seq, head hash), the serial counter
 * at that point, and the counter up to which serials may be issued before
 * the next value (the reservation, taken before a serial beyond it is), so
 * that a journal rolled back together with the files beside it is still
 * caught by something outside the data directory (docs/JOURNAL.md
 * "Integrity"). Only the hsm module touches it.
 *
 * Object (persisted): CKO_DATA, CKA_TOKEN, CKA_PRIVATE, CKA_MODIFIABLE
 * false, CKA_LABEL "imprint-journal-anchor:" + station id, CKA_APPLICATION
 * "imprint", CKA_VALUE the ASCII text
 *   "imprint-journal-anchor v1 <counter> <seq> <head hash hex> <reserved>"
 * (<reserved> absent in the values of older imprints: read as 0).
 * A new value is a new object; the older ones are destroyed after it
 * exists, so a stop in between leaves two, and the highest one counts.
 */
#ifndef HSM_ANCHOR_H
#define HSM_ANCHOR_H

#include <stdbool.h>
#include <stdint.h>

#include "hsm/hsm.h"

struct hsm_anchor {
	bool found;
	uint64_t serial_counter;
	uint64_t seq;       /* the checkpointed event */
	char head[65];      /* its hash, lowercase hex (empty: no checkpoint yet) */
	uint64_t reserved;  /* serials up to this counter may be on boards (0: unknown) */
};

/* Read the station's anchor; none: found = false, IMP_OK. */
imp_err hsm_anchor_get(struct hsm_session *s, const char *station_id, struct hsm_anchor *out);

/* Store a new value: each part the higher of a's and the stored one's (a
 * value that raises nothing is not written), then destroy the older
 * objects. */
imp_err hsm_anchor_put(struct hsm_session *s, const char *station_id,
		       const struct hsm_anchor *a);

#endif
