/*
 * The virtual chip "imprint-vb1" (memory map: sim/vb1_map.h), as a library:
 * the vboard's RSP server and UART agent drive it, and the station's `sim`
 * probe driver uses it in-process for unit tests.
 *
 * Non-volatile parts (flash, OTP, fuses, UID, the secure element's storage)
 * live in a state directory when one is given, so they survive a power cut
 * or a restart of the process; RAM and register state do not.
 */
#ifndef SIM_CHIP_H
#define SIM_CHIP_H

#include <stddef.h>
#include <stdint.h>

#include "imprint/err.h"

struct sim_chip;

struct sim_chip_opts {
	const char *state_dir;   /* NULL: everything in RAM only */
	const uint8_t *uid;      /* 16 bytes, or NULL for random (or from seed) */
	uint64_t seed;           /* 0: random UID; else UID derived from seed */
	double latency_scale;    /* 1.0 realistic, 0 none */
};

/*
 * Create a chip, or re-open the one stored in opts->state_dir (its UID and
 * NV contents win over opts->uid/seed). Returns NULL on failure (logged).
 * Hands over ownership: free with sim_chip_free().
 */
struct sim_chip *sim_chip_new(const struct sim_chip_opts *opts);
void sim_chip_free(struct sim_chip *chip);

/* The 16-byte UID. */
const uint8_t *sim_chip_uid(const struct sim_chip *chip);

/*
 * Debug-port (SWD) accesses of any size and alignment. Errors:
 * IMP_ERR_TARGET_LOCKED when the debug-lock fuse is effective,
 * IMP_ERR_PROBE for unmapped or partly unmapped ranges (nothing is done).
 */
imp_err sim_chip_read(struct sim_chip *chip, uint32_t addr, uint8_t *buf, size_t n);
imp_err sim_chip_write(struct sim_chip *chip, uint32_t addr, const uint8_t *buf, size_t n);

/* Reset the core: fuses burned since the last reset become effective. */
imp_err sim_chip_reset(struct sim_chip *chip);
imp_err sim_chip_halt(struct sim_chip *chip);

/* Burned fuse mask (VB1_FUSE_*), and the mask effective since the last reset. */
uint32_t sim_chip_fuses(const struct sim_chip *chip);
uint32_t sim_chip_fuses_effective(const struct sim_chip *chip);

#endif
