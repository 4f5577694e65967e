/*
 * Raw PKCS#11 access to an open struct hsm, for benchmarks and tests only
 * (the bare-PKCS#11 baseline of bench-hsm, test set-up). The rest of imprint
 * must not call C_* functions: everything goes through hsm.h.
 */
#ifndef HSM_HSM_RAW_H
#define HSM_HSM_RAW_H

#include <p11-kit/pkcs11.h>

#include "hsm/hsm.h"

/* The module's function list; valid until hsm_close(h). */
CK_FUNCTION_LIST *hsm_raw_functions(struct hsm *h);
/* The slot of h's token. */
CK_SLOT_ID hsm_raw_slot(struct hsm *h);

#endif
