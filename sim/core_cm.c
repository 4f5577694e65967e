/*
 * Cortex-M4 debug as the ARMv7-M Architecture Reference Manual describes it
 * (C1: debug; B3: System Control Space), as far as a debugger drives it:
 * DHCSR (halt, step, resume, S_REGRDY, sticky S_RESET_ST/S_RETIRE_ST), DCRSR/
 * DCRDR (core, special and FP registers), DEMCR (vector catch at reset),
 * DFSR, AIRCR (SYSRESETREQ, VECTRESET), CPUID, VTOR, CPACR, MVFR0/1, the FPB
 * and DWT comparators, and the ROM table of the PPB with the components'
 * identification registers. Everything else in the PPB reads 0 and ignores
 * writes. A core resumed from a debug halt at code in SRAM executes it
 * (core_exec.c, in the chip's core thread); firmware in flash, and a core
 * that left reset running, run abstractly, as the family models it
 * (docs/VBOARD.md).
 */
#include <string.h>

#include "chip_int.h"

#define DHCSR 0xE000EDF0u
#define DCRSR 0xE000EDF4u
#define DCRDR 0xE000EDF8u
#define DEMCR 0xE000EDFCu
#define CPUID 0xE000ED00u
#define ICSR 0xE000ED04u
#define VTOR 0xE000ED08u
#define AIRCR 0xE000ED0Cu
#define CCR 0xE000ED14u
#define SHCSR 0xE000ED24u
#define DFSR 0xE000ED30u
#define CPACR 0xE000ED88u
#define FPCCR 0xE000EF34u
#define MVFR0 0xE000EF40u
#define MVFR1 0xE000EF44u
#define FP_CTRL 0xE0002000u
#define FP_COMP0 0xE0002008u
#define DWT_CTRL 0xE0001000u
#define DWT_COMP0 0xE0001020u
#define ROM_TABLE 0xE00FF000u

#define DBGKEY 0xA05Fu
#define C_DEBUGEN (1u << 0)
#define C_HALT (1u << 1)
#define C_STEP (1u << 2)
#define C_MASKINTS (1u << 3)
#define C_SNAPSTALL (1u << 5)
#define S_REGRDY (1u << 16)
#define S_HALT (1u << 17)
#define S_RETIRE_ST (1u << 24)
#define S_RESET_ST (1u << 25)
#define VC_CORERESET (1u << 0)
#define DFSR_HALTED 0x1u
#define DFSR_VCATCH 0x8u

#define CORTEX_M4_CPUID 0x410FC241u /* r0p1 */

void sim_core_reset(struct sim_chip *c, bool power_on)
{
	struct sim_core *k = &c->core;
	uint8_t vec[8] = { 0 };

	if (power_on) {
		/* The debug logic is reset by power-on only, not by a system reset. */
		k->dhcsr_ctrl = 0;
		k->demcr = 0;
		k->dfsr = 0;
		k->fp_ctrl = 0;
		memset(k->fp_comp, 0, sizeof(k->fp_comp));
		k->dwt_ctrl = 0;
		memset(k->dwt_comp, 0, sizeof(k->dwt_comp));
	}
	memset(k->regs, 0, sizeof(k->regs));
	k->psp = 0;
	k->special = 0;
	k->fpscr = 0;
	memset(k->fpregs, 0, sizeof(k->fpregs));
	k->vtor = 0;
	k->cpacr = 0;
	k->shcsr = 0;
	k->sysresetreq = false;
	if (c->fam->read(c, c->fam->vector_table, vec, 8) == IMP_OK) {
		k->regs[13] = sim_load32(vec);
		k->regs[15] = sim_load32(vec + 4) & ~1u;
	}
	k->msp = k->regs[13];
	k->regs[14] = 0xFFFFFFFFu;
	k->regs[16] = 0x01000000u; /* xPSR: Thumb bit */
	k->halted = false;
	k->executing = false;
	k->lockup = false;
	if (c->fam->core_debug) {
		k->reset_st = true;
		if ((k->dhcsr_ctrl & C_DEBUGEN) && (k->demcr & VC_CORERESET)) {
			k->halted = true;
			k->dfsr |= DFSR_VCATCH;
		}
		k->dhcsr_ctrl &= ~(C_HALT | C_STEP);
		if (k->halted)
			k->dhcsr_ctrl |= C_HALT;
	}
}

/* DCRSR register selector to a storage slot; NULL for a reserved one. */
static uint32_t *core_reg(struct sim_core *k, unsigned sel)
{
	if (sel <= 16)
		return &k->regs[sel];
	if (sel == 17)
		return &k->regs[13]; /* MSP: the stack in use (CONTROL.SPSEL = 0) */
	if (sel == 18)
		return &k->psp;
	if (sel == 20)
		return &k->special;
	if (sel == 0x21)
		return &k->fpscr;
	if (sel >= 0x40 && sel < 0x60)
		return &k->fpregs[sel - 0x40];
	return NULL;
}

struct cid {
	uint32_t base;
	uint8_t pid[8]; /* PIDR0..7 */
	uint8_t cls;    /* CIDR1 */
};

/* Identification of the PPB's CoreSight components (ARM's Cortex-M4 TRM). */
static const struct cid components[] = {
	{ 0xE000E000u, { 0x0C, 0xB0, 0x0B, 0x00, 0x04 }, 0xE0 }, /* SCS */
	{ 0xE0001000u, { 0x02, 0xB0, 0x3B, 0x00, 0x04 }, 0xE0 }, /* DWT */
	{ 0xE0002000u, { 0x03, 0xB0, 0x2B, 0x00, 0x04 }, 0xE0 }, /* FPB */
	{ 0xE0000000u, { 0x01, 0xB0, 0x3B, 0x00, 0x04 }, 0xE0 }, /* ITM */
	{ ROM_TABLE, { 0xC4, 0xB4, 0x0B, 0x00, 0x04 }, 0x10 },   /* ROM table */
};

static uint32_t id_reg(uint32_t addr, bool *hit)
{
	uint32_t off = addr & 0xFFFu;

	*hit = false;
	if (off < 0xFD0u)
		return 0;
	for (size_t i = 0; i < sizeof(components) / sizeof(components[0]); i++) {
		const struct cid *p = &components[i];

		if ((addr & ~0xFFFu) != p->base)
			continue;
		*hit = true;
		if (off >= 0xFD0u && off < 0xFE0u)
			return p->pid[4 + (off - 0xFD0u) / 4] & 0xFFu;
		if (off >= 0xFE0u && off < 0xFF0u)
			return p->pid[(off - 0xFE0u) / 4];
		switch (off) {
		case 0xFF0u: return 0x0D;
		case 0xFF4u: return p->cls;
		case 0xFF8u: return 0x05;
		case 0xFFCu: return 0xB1;
		default: return 0;
		}
	}
	return 0;
}

static uint32_t ppb_read32(struct sim_chip *c, uint32_t a)
{
	struct sim_core *k = &c->core;
	uint32_t v;
	bool hit;

	switch (a) {
	case DHCSR:
		v = k->dhcsr_ctrl | S_REGRDY;
		if (k->halted)
			v |= S_HALT;
		if (k->reset_st)
			v |= S_RESET_ST;
		if (k->retire_st)
			v |= S_RETIRE_ST;
		if (k->lockup)
			v |= 1u << 19; /* S_LOCKUP */
		k->reset_st = false;
		k->retire_st = false;
		return v;
	case DCRDR: return k->dcrdr;
	case DEMCR: return k->demcr;
	case CPUID: return c->fam->cpuid ? c->fam->cpuid : CORTEX_M4_CPUID;
	case ICSR: return 0;
	case VTOR: return k->vtor;
	case AIRCR: return 0xFA050000u;
	case CCR: return 0x200u;
	case SHCSR: return k->shcsr;
	case DFSR: return k->dfsr;
	case CPACR: return k->cpacr;
	case FPCCR: return 0xC0000000u;
	case MVFR0: return 0x10110021u;
	case MVFR1: return 0x11000011u;
	case FP_CTRL: return (k->fp_ctrl & 1u) | (6u << 4) | (2u << 8);
	case DWT_CTRL: return 0x40000000u | (k->dwt_ctrl & 0x0FFFFFFFu);
	default:
		break;
	}
	if (a >= FP_COMP0 && a < FP_COMP0 + 4 * 8)
		return k->fp_comp[(a - FP_COMP0) / 4];
	if (a >= DWT_COMP0 && a < DWT_COMP0 + 16 * 4 && (a & 0xF) < 12)
		return k->dwt_comp[(a - DWT_COMP0) / 16][(a & 0xF) / 4];
	if (a >= ROM_TABLE && a < ROM_TABLE + 0x18) {
		static const uint32_t entries[] = {
			0xFFF0F003u, 0xFFF02003u, 0xFFF03003u, 0xFFF01003u, 0xFFF41002u, 0xFFF42002u,
		};
		return entries[(a - ROM_TABLE) / 4];
	}
	if (a == ROM_TABLE + 0xFCC)
		return 1; /* MEMTYPE: system memory on this bus */
	v = id_reg(a, &hit);
	return hit ? v : 0;
}

static void ppb_write32(struct sim_chip *c, uint32_t a, uint32_t v)
{
	struct sim_core *k = &c->core;

	switch (a) {
	case DHCSR:
		if ((v >> 16) != DBGKEY)
			return;
		k->dhcsr_ctrl = v & (C_DEBUGEN | C_HALT | C_STEP | C_MASKINTS | C_SNAPSTALL);
		if (!(k->dhcsr_ctrl & C_DEBUGEN)) {
			k->halted = false;
			k->executing = false;
		} else if (k->dhcsr_ctrl & C_HALT) {
			if (!k->halted)
				k->dfsr |= DFSR_HALTED;
			k->halted = true;
			k->executing = false;
			k->lockup = false;
		} else if (k->halted) {
			/* Resume from the debug halt. Code in SRAM (what a debugger
			 * loads) is executed; firmware in flash runs abstractly. */
			bool progress;

			k->retire_st = true;
			k->halted = false;
			k->lockup = false;
			k->executing = k->regs[15] >= 0x20000000u && k->regs[15] < 0x40000000u;
			if (k->dhcsr_ctrl & C_STEP) {
				if (k->executing)
					sim_core_exec(c, 1, &progress);
				k->executing = false;
				if (!k->lockup) {
					k->halted = true;
					k->dfsr |= DFSR_HALTED;
				}
			} else if (k->executing) {
				pthread_cond_signal(&c->core_cv);
			}
		}
		return;
	case DCRSR: {
		uint32_t *r = core_reg(k, v & 0x7Fu);

		if (!r)
			return;
		if (v & (1u << 16))
			*r = k->dcrdr;
		else
			k->dcrdr = *r;
		return;
	}
	case DCRDR: k->dcrdr = v; return;
	case DEMCR: k->demcr = v & 0x010F07F1u; return;
	case VTOR: k->vtor = v & 0xFFFFFF80u; return;
	case AIRCR:
		if ((v >> 16) != 0x05FAu)
			return;
		if (v & (1u << 2))
			k->sysresetreq = true; /* the system resets once this write completed */
		else if (v & 1u)
			sim_core_reset(c, false);
		return;
	case SHCSR: k->shcsr = v; return;
	case DFSR: k->dfsr &= ~(v & 0x1Fu); return;
	case CPACR: k->cpacr = v & 0x00F00000u; return;
	case FP_CTRL:
		if (v & 2u)
			k->fp_ctrl = v & 1u;
		return;
	case DWT_CTRL: k->dwt_ctrl = v & 0x0FFFFFFFu; return;
	default:
		break;
	}
	if (a >= FP_COMP0 && a < FP_COMP0 + 4 * 8)
		k->fp_comp[(a - FP_COMP0) / 4] = v;
	else if (a >= DWT_COMP0 && a < DWT_COMP0 + 16 * 4 && (a & 0xF) < 12)
		k->dwt_comp[(a - DWT_COMP0) / 16][(a & 0xF) / 4] = v;
}

imp_err sim_core_ppb_read(struct sim_chip *c, uint32_t addr, uint8_t *buf, size_t n)
{
	while (n > 0) {
		uint32_t w = addr & ~3u, v = ppb_read32(c, w);
		size_t off = addr & 3u, k = 4 - off;

		if (k > n)
			k = n;
		for (size_t i = 0; i < k; i++)
			buf[i] = (uint8_t)(v >> (8 * (off + i)));
		buf += k;
		addr += (uint32_t)k;
		n -= k;
	}
	return IMP_OK;
}

imp_err sim_core_ppb_write(struct sim_chip *c, uint32_t addr, const uint8_t *buf, size_t n)
{
	/* Registers take whole words; narrower writes are ignored (as the SCS
	 * permits only word access to most registers). */
	if (addr % 4 || n % 4)
		return IMP_OK;
	for (size_t i = 0; i < n; i += 4)
		ppb_write32(c, addr + (uint32_t)i, sim_load32(buf + i));
	return IMP_OK;
}
