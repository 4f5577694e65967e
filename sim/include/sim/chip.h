/*
 * The virtual chip, as a library: one of the chip families "imprint-vb1"
 * (memory map: sim/vb1_map.h), "nordic-nrf52840" (sim/nrf52_map.h) and
 * "st-stm32u5" (sim/chip_stm32u5.c, docs/VBOARD.md).
 * The vboard's RSP server, debug port (sim/dap.h) and UART agent drive it,
 * and the station's `sim` probe driver uses it in-process for unit tests.
 *
 * Non-volatile parts (flash, OTP, fuses, UID, the secure element's storage)
 * live in a state directory when one is given, so they survive a power cut
 * or a restart of the process; RAM and register state do not.
 */
#ifndef SIM_CHIP_H
#define SIM_CHIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imprint/err.h"

struct sim_chip;

struct sim_chip_opts {
	const char *state_dir;   /* NULL: everything in RAM only */
	const uint8_t *uid;      /* 16 bytes, or NULL for random (or from seed) */
	uint64_t seed;           /* 0: random UID; else UID derived from seed */
	double latency_scale;    /* 1.0 realistic, 0 none */
	const char *family;      /* "imprint-vb1" (NULL: the same), "nordic-nrf52840" */
	/* nordic-nrf52840: "legacy" (INFO.VARIANT AAD0, NULL: the same) or
	 * "hardened" (AAF0, build codes Fxx); a stored image keeps its own. */
	const char *revision;
	/* nordic-nrf52840, hardened: the firmware does not write
	 * APPROTECT.DISABLE at boot (built with ENABLE_APPROTECT). */
	bool fw_keeps_approtect;
};

/* The known families, for messages: "imprint-vb1, nordic-nrf52840". */
const char *sim_chip_family_names(void);
bool sim_chip_family_known(const char *name);

/*
 * Create a chip, or re-open the one stored in opts->state_dir (its UID and
 * NV contents win over opts->uid/seed). Returns NULL on failure (logged).
 * Hands over ownership: free with sim_chip_free().
 */
struct sim_chip *sim_chip_new(const struct sim_chip_opts *opts);
void sim_chip_free(struct sim_chip *chip);

/* The family's name, as given in sim_chip_opts.family. */
const char *sim_chip_family(const struct sim_chip *chip);

/*
 * The 16-byte UID the agent reports. imprint-vb1: the 16 bytes at
 * VB1_UID_ADDR. nordic-nrf52840: FICR DEVICEID[0..1] (the 8 bytes at
 * 0x10000060, in memory order) followed by 8 zero bytes.
 */
const uint8_t *sim_chip_uid(const struct sim_chip *chip);

/*
 * Family-specific members for the vboard's endpoint line, as JSON members
 * without braces (e.g. "\"revision\":\"hardened\""), or "" when none.
 */
void sim_chip_describe(const struct sim_chip *chip, char *out, size_t cap);

/*
 * Debug-port (SWD) accesses of any size and alignment. Errors:
 * IMP_ERR_TARGET_LOCKED when the debug-lock fuse is effective,
 * IMP_ERR_PROBE for unmapped or partly unmapped ranges (nothing is done).
 */
imp_err sim_chip_read(struct sim_chip *chip, uint32_t addr, uint8_t *buf, size_t n);
imp_err sim_chip_write(struct sim_chip *chip, uint32_t addr, const uint8_t *buf, size_t n);

/* Sum of the delays the latency model charged this chip (flash programming,
 * erases, fuse burns), in ns: the physical floor of its SWD work. */
uint64_t sim_chip_modelled_ns(const struct sim_chip *chip);

/* Whole-flash erases the chip did (vb1 MER; nRF52840 NVMC ERASEALL and
 * CTRL-AP ERASEALL): how a test sees that a mass erase ran once. */
uint64_t sim_chip_mass_erases(const struct sim_chip *chip);

/* Reset the core: fuses burned since the last reset become effective. */
imp_err sim_chip_reset(struct sim_chip *chip);
imp_err sim_chip_halt(struct sim_chip *chip);

/*
 * The debug port's view (sim/dap.h). sim_chip_ap_read/write reach the
 * family's vendor access ports (apsel >= 1; nordic-nrf52840: the CTRL-AP
 * at 1); a port that does not exist reads 0 and ignores writes.
 * sim_chip_debug_locked: true while memory and core are refused to the
 * debugger (then the MEM-AP is disabled). sim_chip_has_core_debug: the map
 * holds a Cortex-M System Control Space (DHCSR, DCRSR, AIRCR, ...).
 */
imp_err sim_chip_ap_read(struct sim_chip *chip, unsigned apsel, uint32_t reg, uint32_t *v);
imp_err sim_chip_ap_write(struct sim_chip *chip, unsigned apsel, uint32_t reg, uint32_t v);
bool sim_chip_debug_locked(struct sim_chip *chip);
bool sim_chip_has_core_debug(const struct sim_chip *chip);
/* The JTAG-DP IDCODE (= DPIDR) the family's debug port reports. */
uint32_t sim_chip_dap_idcode(const struct sim_chip *chip);
/*
 * Changes when a reset of the chip also reset its debug port (st-stm32u5:
 * OBL_LAUNCH): the DP then drops its power-up acknowledgements and flags a
 * sticky error, so the debugger sees its connection lost and reconnects.
 */
uint32_t sim_chip_debug_generation(const struct sim_chip *chip);
/*
 * The probe let go of the debug port (its connection closed): the debug
 * domain powers down, so halting debug (DHCSR.C_DEBUGEN) and vector catch
 * (DEMCR) are cleared and a halted core runs on.
 */
void sim_chip_debug_detach(struct sim_chip *chip);

/*
 * Burned fuse mask (VB1_FUSE_*), and the mask effective since the last
 * reset. nordic-nrf52840: VB1_FUSE_DEBUG_LOCK when UICR APPROTECT is
 * programmed to protect (legacy: PALL != 0xFF; hardened: PALL neither 0xFF
 * nor 0x5A), effective while the access port is protected.
 */
uint32_t sim_chip_fuses(const struct sim_chip *chip);
uint32_t sim_chip_fuses_effective(const struct sim_chip *chip);

/*
 * Additions beyond the probe interface, used by the vboard (agent, RSP
 * server) and by tests. None of these is reachable over SWD.
 */

/* Core registers as the RSP 'g' packet orders them: r0..r12, sp, lr, pc, xpsr. */
#define SIM_CHIP_NREGS 17

/* IMP_ERR_TARGET_LOCKED when the debug-lock fuse is effective. */
imp_err sim_chip_read_regs(struct sim_chip *chip, uint32_t regs[SIM_CHIP_NREGS]);
imp_err sim_chip_write_regs(struct sim_chip *chip, const uint32_t regs[SIM_CHIP_NREGS]);

/* 1 while the core is halted (after "reset halt" or halt), 0 while it runs. */
int sim_chip_halted(const struct sim_chip *chip);
/* Resume the core (RSP 'c'); refused with IMP_ERR_TARGET_LOCKED when locked. */
imp_err sim_chip_resume(struct sim_chip *chip);

/*
 * Lifecycle as the chip reports it at VB1_LIFECYCLE_ADDR: 3 LOCKED when the
 * debug-lock fuse is effective, else 2 PERSONALISED once
 * sim_chip_set_personalised() was called (persisted), else 1 OPEN.
 */
uint32_t sim_chip_lifecycle(const struct sim_chip *chip);
/* Persist the PERSONALISED mark (one non-volatile write). */
imp_err sim_chip_set_personalised(struct sim_chip *chip);

/* Faults and tampering for tests (see docs/VBOARD.md). */
#define SIM_FAULT_FUSE_FAIL 0x1u       /* the next fuse burn sets ERR and burns nothing */
#define SIM_FAULT_TAMPER_READBACK 0x2u /* flash reads over SWD return one flipped bit */
#define SIM_FAULT_TAMPER_LOCK 0x4u     /* the debug-lock fuse burns but never takes effect */
void sim_chip_set_faults(struct sim_chip *chip, uint32_t faults);

/*
 * Latency model constants (milliseconds / bytes per second at scale 1.0).
 * The vboard prints them with --print-model.
 */
#define SIM_LAT_FLASH_BYTES_PER_S 40960.0 /* flash/OTP programming over SWD */
#define SIM_LAT_PAGE_ERASE_MS 20.0
#define SIM_LAT_MASS_ERASE_MS 40.0
#define SIM_LAT_FUSE_BURN_MS 10.0

/*
 * Power-cut simulation, process-wide. Every non-volatile write operation
 * (flash word, OTP word, page or mass erase, fuse burn, PERSONALISED mark,
 * secure-element storage write except the transport key made with the
 * board) calls sim_nv_write_point() just before it
 * persists anything. When armed with n > 0, the n-th call ends the process
 * at once with _exit(SIM_POWER_CUT_EXIT): that write and everything after it
 * is lost, everything before it survives.
 */
#define SIM_POWER_CUT_EXIT 75
void sim_power_cut_arm(uint64_t n);
void sim_nv_write_point(void);
/* Number of non-volatile write operations so far in this process. */
uint64_t sim_nv_write_count(void);

#endif
