/*
 * Private to imp_sim_chip: the state every chip shares and the table each
 * chip family fills in (chip_vb1.c, chip_nrf52.c). sim/chip.h is the public
 * face; sim_chip_* there take the chip's mutex and call the family.
 */
#ifndef SIM_CHIP_INT_H
#define SIM_CHIP_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim/chip.h"

/*
 * PERSISTED: the first 40 bytes of every STATE/nv.img, whatever the family
 * (docs/VBOARD.md). The magic names the family; the rest of the 4 KiB
 * header and the image after it belong to the family.
 */
struct sim_nv_hdr {
	char magic[8];         /* "IMPVB1NV", "IMPNRF52" */
	uint32_t version;
	uint32_t hdr_size;     /* 4096 */
	uint8_t uid[16];
	uint32_t fuses;        /* vb1: burned fuse mask; other families: 0 */
	uint32_t personalised; /* 1 once the agent's LOCK bit1 was done */
};

_Static_assert(sizeof(struct sim_nv_hdr) == 40, "nv header layout");

#define SIM_NV_HDR_SIZE 4096u

/*
 * Cortex-M debug state (core_cm.c): the core registers, halt and reset
 * bookkeeping, and the debug registers of the System Control Space.
 * Families without a System Control Space (vb1) use regs[] and halted only.
 */
struct sim_core {
	uint32_t regs[SIM_CHIP_NREGS]; /* r0..r12, sp, lr, pc, xpsr */
	uint32_t msp, psp, special;    /* special: CONTROL<<24|FAULTMASK<<16|BASEPRI<<8|PRIMASK */
	uint32_t fpscr, fpregs[32];
	bool halted;
	uint32_t dhcsr_ctrl;   /* C_DEBUGEN, C_HALT, C_STEP, C_MASKINTS (written bits) */
	bool reset_st;         /* DHCSR.S_RESET_ST, cleared by reading DHCSR */
	bool retire_st;        /* DHCSR.S_RETIRE_ST, cleared by reading DHCSR */
	uint32_t demcr, dcrdr, dfsr;
	uint32_t vtor, cpacr, shcsr;
	uint32_t fp_ctrl, fp_comp[8];
	uint32_t dwt_ctrl, dwt_comp[4][3];
	bool sysresetreq;      /* AIRCR.SYSRESETREQ written: the family resets after the write */
	bool executing;        /* resumed from a debug halt: the core executes code (core_exec.c) */
	bool lockup;           /* stopped on an instruction or access it cannot execute */
};

struct sim_chip_family {
	const char *name;
	const char *nv_magic;   /* 8 characters */
	uint32_t nv_version;
	size_t nv_size;         /* whole image, header included */
	uint32_t vector_table;  /* where the core fetches SP and PC at reset */
	bool core_debug;        /* the memory map holds a Cortex-M System Control Space */
	uint32_t cpuid;         /* SCS CPUID; 0: Cortex-M4 r0p1 (0x410FC241) */
	uint32_t dap_idcode;    /* JTAG-DP IDCODE/DPIDR; 0: SIM_DAP_IDCODE */

	/* Fill the family's part of a new image (the common header is done). */
	void (*init_image)(uint8_t *img, const struct sim_chip_opts *o);
	/* Allocate c->fam_state; the image is valid. IMP_OK or an error (logged). */
	imp_err (*attach)(struct sim_chip *c, const struct sim_chip_opts *o);
	/* Free c->fam_state (may be NULL). */
	void (*detach)(struct sim_chip *c);

	/* Every member below is called with c->mu held. */

	/* Power-on or system reset of the peripherals (core_cm resets the core). */
	void (*reset)(struct sim_chip *c);
	/* After the core left reset running (no vector catch): what boot code does. */
	void (*booted)(struct sim_chip *c);
	/* true while the debugger's access to memory and core is refused. */
	bool (*debug_locked)(const struct sim_chip *c);
	/* Bus accesses, the lock already checked; IMP_ERR_PROBE for a bus error. */
	imp_err (*read)(struct sim_chip *c, uint32_t addr, uint8_t *buf, size_t n);
	imp_err (*write)(struct sim_chip *c, uint32_t addr, const uint8_t *buf, size_t n);
	uint32_t (*lifecycle)(const struct sim_chip *c);
	uint32_t (*fuses)(const struct sim_chip *c);
	uint32_t (*fuses_effective)(const struct sim_chip *c);
	void (*set_faults)(struct sim_chip *c, uint32_t faults);
	/* Vendor access ports (apsel >= 1); NULL: none (reads 0, writes ignored). */
	imp_err (*ap_read)(struct sim_chip *c, unsigned apsel, uint32_t reg, uint32_t *v);
	imp_err (*ap_write)(struct sim_chip *c, unsigned apsel, uint32_t reg, uint32_t v);
	/*
	 * Optional: true when the debugger's access to [addr, addr+n) is
	 * refused as a bus error while the rest of the map answers (STM32
	 * readout protection level 1: flash and SRAM). The core's own
	 * accesses are not affected.
	 */
	bool (*debug_refuses)(const struct sim_chip *c, uint32_t addr, size_t n);
	/* Optional: until when (imp_now_ns) the flash controller is busy; 0 or
	 * a time past: it is not. The core's thread waits for it. */
	uint64_t (*busy_until)(const struct sim_chip *c);
	/*
	 * Optional: the plain memory (SRAM: no side effects, never stalls) that
	 * holds addr, for the core's own instruction fetches, loads and stores,
	 * which then go to it directly: its bytes, with [*base, *base + *size)
	 * the span they cover. NULL when addr is elsewhere (then the core goes
	 * through read and write).
	 */
	uint8_t *(*ram_span)(struct sim_chip *c, uint32_t addr, uint32_t *base, uint32_t *size);
	/* Extra fields of the endpoint line, as JSON members without braces, or NULL. */
	void (*describe)(const struct sim_chip *c, char *out, size_t cap);
};

struct sim_chip {
	pthread_mutex_t mu;
	const struct sim_chip_family *fam;
	void *fam_state;
	uint8_t *nv;           /* fam->nv_size bytes: mapping or malloc'ed */
	bool mapped;
	char *state_dir;
	double latency;
	uint64_t modelled_ns;  /* sum of the modelled delays (atomic) */
	uint64_t mass_erases;  /* whole-flash erases done (atomic) */
	uint32_t faults;
	/* Bumped by a family whose reset also resets the debug port (STM32
	 * OBL_LAUNCH): the DP then reports its power domains down (dap.c). */
	uint32_t debug_gen;
	struct sim_core core;
	/* the core's own thread (families with core_debug): runs while core.executing */
	pthread_t core_thread;
	bool core_thread_started;
	bool core_stop;
	bool core_stopped_busy;   /* the last slice ended at a long flash operation */
	bool core_computing;      /* the last slice changed registers but stored nothing */
	pthread_cond_t core_cv;
};

extern const struct sim_chip_family sim_family_vb1;
extern const struct sim_chip_family sim_family_nrf52840;
extern const struct sim_chip_family sim_family_stm32u5;

/* ---- shared helpers (chip.c) ---- */

static inline struct sim_nv_hdr *sim_hdr(const struct sim_chip *c)
{
	return (struct sim_nv_hdr *)c->nv;
}

void sim_store32(void *p, uint32_t v);
uint32_t sim_load32(const void *p);
/* Spend a modelled delay: sleep (scaled) and count it. */
void sim_charge_us(const struct sim_chip *c, double us);
/* Count a modelled delay that the chip spends busy while the caller goes on. */
uint64_t sim_busy_ns(struct sim_chip *c, double us);
/*
 * A non-volatile controller that stalls the bus while it is busy, as the
 * AHB does on the parts (nRF52 NVMC, STM32U5 FLASH). *busy_until is the
 * end of the work queued so far (imp_now_ns() time, 0 when idle).
 * sim_busy_queue queues an operation of us modelled microseconds after the
 * ones still running; sim_busy_wait takes the stall in steps of at least
 * SIM_STALL_SLACK_NS: an access may be taken while up to that much work is
 * still queued (the operations then follow each other in time), so that
 * word after word costs its modelled time on average without a sleep per
 * word, which a loaded machine stretches.
 */
#define SIM_STALL_SLACK_NS 2000000u
void sim_busy_queue(struct sim_chip *c, uint64_t *busy_until, double us);
void sim_busy_wait(uint64_t busy_until);
/* Full system reset (peripherals, then core), c->mu held. */
void sim_system_reset(struct sim_chip *c);

/* ---- Cortex-M debug (core_cm.c), c->mu held ---- */

#define SIM_PPB_BASE 0xE0000000u
#define SIM_PPB_SIZE 0x00100000u

/* Core part of a reset: registers from the vector table, vector catch. */
void sim_core_reset(struct sim_chip *c, bool power_on);
imp_err sim_core_ppb_read(struct sim_chip *c, uint32_t addr, uint8_t *buf, size_t n);
imp_err sim_core_ppb_write(struct sim_chip *c, uint32_t addr, const uint8_t *buf, size_t n);

/*
 * Execute up to budget instructions while c->core.executing (core_exec.c);
 * *progress: something was stored to memory, or a general-purpose register
 * (r0-r12, sp, lr) ended the run with another value than it started with:
 * the code computes (a CRC loop stores nothing until it ends) rather than
 * spins on a flag (a poll loop leaves them all as they were). Returns the
 * number executed.
 */
int sim_core_exec(struct sim_chip *c, unsigned budget, bool *progress);

#endif
