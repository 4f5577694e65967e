/*
 * Chip family "st-stm32u5": an STM32U575 with 1 MiB of flash, following
 * ST's RM0456 (STM32U5 reference manual) as far as a debugger and a
 * provisioning station reach it, without TrustZone (TZEN reads 0):
 *
 * - Flash, 1 MiB at 0x08000000 in 8 KiB pages, two banks of 64 pages when
 *   FLASH_OPTR.DUALBANK is set (the factory value), one bank of 128 pages
 *   otherwise. Programmed a quad-word (128 bits) at a time: the controller
 *   collects four 32-bit words of one aligned quad-word and programs them
 *   after the fourth; a narrower access sets SIZERR, a quad-word left
 *   partial (PG cleared, or a word of another quad-word) sets PGAERR, a
 *   quad-word that is not erased (and not programmed to all zeros) PROGERR,
 *   a write without PG or with an error flag pending PGSERR. Nothing is
 *   programmed on an error.
 * - The FLASH controller at 0x40022000 (non-secure registers): NSKEYR
 *   (0x45670123, 0xCDEF89AB; a wrong key locks NSCR until the next reset
 *   and is a bus error), OPTKEYR (0x08192A3B, 0x4C5D6E7F, with NSCR
 *   unlocked), NSSR (EOP with EOPIE, OPERR, PROGERR, WRPERR, PGAERR,
 *   SIZERR, PGSERR, OPTWERR write-1-to-clear; BSY), NSCR (PG, PER, PNB,
 *   BKER, MER1, MER2, STRT, OPTSTRT, EOPIE, OBL_LAUNCH, OPTLOCK, LOCK).
 * - Option bytes: FLASH_OPTR and the other option registers (0x40..0x6C)
 *   are registers loaded from the option flash at power-on and at
 *   OBL_LAUNCH; a write (OPTLOCK clear) changes the register, OPTSTRT
 *   programs the registers into the option flash, OBL_LAUNCH reloads them
 *   and resets the chip, and that reset takes the debug port with it (the
 *   debugger's connection drops and it must reconnect: the expected
 *   outcome). RDP (OPTR[7:0]): 0xAA level 0, 0xCC level 2, any other value
 *   level 1 (0x55 is level 0.5 only with TrustZone, not modelled). Level 1
 *   -> 0 (RDP written 0xAA at OPTSTRT while level 1 is loaded) mass-erases
 *   the flash first; level 2 is permanent (the option registers are then
 *   read-only) and disables debug entirely. A system reset (SYSRESETREQ)
 *   does not reload the option bytes.
 * - Readout protection level 1: the debugger's accesses to flash and SRAM
 *   are bus errors (RM0456: no access to flash, SRAMs and backup registers
 *   while the debug is connected); the UID, the rest of the information
 *   block, the FLASH and DBGMCU registers and the core's debug registers
 *   stay readable. Code the core runs is not restricted.
 * - The 96-bit UID at 0x0BFA0700, FLASHSIZE (u16, KiB) at 0x0BFA07A0, the
 *   512-byte OTP at 0x0BFA0000 (programmed as flash, never erased),
 *   DBGMCU_IDCODE at 0xE0044000 (DEV_ID 0x482, REV_ID 0x2000: rev B), a
 *   Cortex-M33 (CPUID 0x410FD214) whose JTAG-DP identifies as 0x0BA04477.
 *   SRAM1-3: 768 KiB at 0x20000000.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chip_int.h"
#include "imprint/log.h"
#include "imprint/util.h"
#include "sim/stm32u5_map.h"
#include "sim/vb1_map.h"

#define FLASH_BASE 0x08000000u
#define FLASH_SIZE 0x00100000u
#define FLASH_PAGE SIM_U5_FLASH_PAGE
#define FLASH_PAGES (FLASH_SIZE / FLASH_PAGE)
#define QW 16u

#define INFO_BASE 0x0BFA0000u /* OTP, then the read-only information block */
#define INFO_SIZE 0x1000u
#define OTP_SIZE 0x200u
#define UID_OFF 0x700u
#define FLASHSIZE_OFF 0x7A0u

#define SRAM_BASE 0x20000000u
#define SRAM_SIZE 0x000C0000u /* SRAM1 192 KiB, SRAM2 64 KiB, SRAM3 512 KiB */

#define PERIPH_BASE 0x40000000u
#define PERIPH_SIZE 0x10000000u
#define FREG_BASE 0x40022000u
#define FREG_SIZE 0x400u
#define DBGMCU_BASE 0xE0044000u
#define DBGMCU_SIZE 0x1000u

/* FLASH register offsets (RM0456, non-secure view). */
#define F_ACR 0x00u
#define F_NSKEYR 0x08u
#define F_OPTKEYR 0x10u
#define F_NSSR 0x20u
#define F_NSCR 0x28u
#define F_SECCR 0x2Cu
#define F_OPTR 0x40u
#define F_OPT_FIRST 0x40u
#define F_OPT_LAST 0x6Cu
#define N_OPT ((F_OPT_LAST - F_OPT_FIRST) / 4 + 1)

#define KEY1 0x45670123u
#define KEY2 0xCDEF89ABu
#define OPTKEY1 0x08192A3Bu
#define OPTKEY2 0x4C5D6E7Fu

#define SR_EOP (1u << 0)
#define SR_OPERR (1u << 1)
#define SR_PROGERR (1u << 3)
#define SR_WRPERR (1u << 4)
#define SR_PGAERR (1u << 5)
#define SR_SIZERR (1u << 6)
#define SR_PGSERR (1u << 7)
#define SR_OPTWERR (1u << 13)
#define SR_BSY (1u << 16)
#define SR_ERRORS (SR_OPERR | SR_PROGERR | SR_WRPERR | SR_PGAERR | SR_SIZERR | SR_PGSERR | \
		   SR_OPTWERR)

#define CR_PG (1u << 0)
#define CR_PER (1u << 1)
#define CR_MER1 (1u << 2)
#define CR_PNB_SHIFT 3
#define CR_PNB_MASK (0x7Fu << CR_PNB_SHIFT)
#define CR_BKER (1u << 11)
#define CR_MER2 (1u << 15)
#define CR_STRT (1u << 16)
#define CR_OPTSTRT (1u << 17)
#define CR_EOPIE (1u << 24)
#define CR_ERRIE (1u << 25)
#define CR_OBL_LAUNCH (1u << 27)
#define CR_OPTLOCK (1u << 30)
#define CR_LOCK (1u << 31)
#define CR_KEEP (CR_PG | CR_PER | CR_MER1 | CR_PNB_MASK | CR_BKER | CR_MER2 | CR_EOPIE | \
		 CR_ERRIE)

#define OPTR_DUALBANK (1u << 21)
#define OPTR_TZEN (1u << 31)
#define RDP_LEVEL0 0xAAu
#define RDP_LEVEL2 0xCCu

#define DEV_ID 0x482u
#define REV_ID 0x2000u

#define LAT_QW_US SIM_U5_LAT_QW_US
#define LAT_PAGE_ERASE_MS SIM_U5_LAT_PAGE_ERASE_MS
#define LAT_BANK_ERASE_MS SIM_U5_LAT_BANK_ERASE_MS
#define LAT_OPT_PROGRAM_MS SIM_U5_LAT_OPT_PROGRAM_MS

/*
 * PERSISTED: layout of an STM32U5 STATE/nv.img, version 1 (docs/VBOARD.md):
 * the common header; the option flash (the option registers 0x40..0x6C as
 * OPTSTRT programmed them, 12 little-endian words) at 40; flash (1 MiB) at
 * 4096; OTP (512 bytes, in a 4 KiB block) after it.
 */
#define NV_OPT_OFF 40u
#define NV_FLASH_OFF SIM_NV_HDR_SIZE
#define NV_OTP_OFF (NV_FLASH_OFF + FLASH_SIZE)
#define NV_SIZE (NV_OTP_OFF + 0x1000u)

_Static_assert(NV_OPT_OFF + 4 * N_OPT <= SIM_NV_HDR_SIZE, "option bytes fit the header");
_Static_assert(NV_SIZE == 1056768, "STM32U5 nv.img size");

/* The factory values of the option registers 0x40..0x6C. */
static const uint32_t opt_factory[N_OPT] = {
	0x1FEFF8AAu, /* OPTR: RDP 0xAA (level 0), DUALBANK, TZEN 0 */
	0x0800007Fu, /* NSBOOTADD0R */
	0x0BF9007Fu, /* NSBOOTADD1R */
	0x0C00007Cu, /* SECBOOTADD0R */
	0xFFFF007Fu, /* SECWM1R1: no secure area (start > end) */
	0xFFFF0000u, /* SECWM1R2 */
	0xFF00FFFFu, /* WRP1AR: no write protection (start > end) */
	0xFF00FFFFu, /* WRP1BR */
	0xFFFF007Fu, /* SECWM2R1 */
	0xFFFF0000u, /* SECWM2R2 */
	0xFF00FFFFu, /* WRP2AR */
	0xFF00FFFFu, /* WRP2BR */
};

struct u5 {
	uint8_t sram[SRAM_SIZE];
	uint32_t opt[N_OPT];     /* option registers (loaded, or written since) */
	uint32_t rdp_loaded;     /* RDP byte in force since the last option load */
	uint32_t acr, sr, cr;
	int key_step;            /* NSKEYR: 0 none, 1 KEY1 seen */
	bool key_dead;           /* a wrong key: NSCR locked until reset */
	int optkey_step;
	bool optkey_dead;
	uint64_t busy_until;     /* BSY until then (ns) */
	/* the quad-word being collected under PG */
	bool qw_open;
	uint32_t qw_addr;        /* flash or OTP address of the quad-word */
	uint8_t qw_data[QW];
	unsigned qw_have;        /* bit mask of the words written */
	bool obl_pending;        /* OBL_LAUNCH written: reset with option load */
	uint32_t dbg_cr, dbg_fz[6];
};

static struct u5 *st(const struct sim_chip *c)
{
	return c->fam_state;
}

static uint8_t *flash_mem(const struct sim_chip *c)
{
	return c->nv + NV_FLASH_OFF;
}

static uint8_t *otp_mem(const struct sim_chip *c)
{
	return c->nv + NV_OTP_OFF;
}

static uint32_t stored_opt(const struct sim_chip *c, unsigned i)
{
	return sim_load32(c->nv + NV_OPT_OFF + 4 * i);
}

static bool level2(uint32_t rdp)
{
	return (rdp & 0xFFu) == RDP_LEVEL2;
}

static bool protected_rdp(uint32_t rdp)
{
	return (rdp & 0xFFu) != RDP_LEVEL0;
}

static void u5_init_image(uint8_t *img, const struct sim_chip_opts *o)
{
	struct sim_nv_hdr *h = (struct sim_nv_hdr *)img;

	(void)o;
	memset(h->uid + 12, 0, 4); /* a 96-bit UID: the agent's 16 bytes end in 0 */
	for (unsigned i = 0; i < N_OPT; i++)
		memcpy(img + NV_OPT_OFF + 4 * i, &opt_factory[i], 4);
	memset(img + NV_FLASH_OFF, 0xFF, FLASH_SIZE);
	memset(img + NV_OTP_OFF, 0xFF, 0x1000);
}

/* Option load (power-on, OBL_LAUNCH): the registers take the stored bytes. */
static void load_options(struct sim_chip *c)
{
	struct u5 *s = st(c);

	for (unsigned i = 0; i < N_OPT; i++)
		s->opt[i] = stored_opt(c, i);
	s->opt[0] &= ~OPTR_TZEN;
	if (c->faults & SIM_FAULT_TAMPER_LOCK)
		s->opt[0] = (s->opt[0] & ~0xFFu) | RDP_LEVEL0; /* the lock never takes */
	s->rdp_loaded = s->opt[0] & 0xFFu;
}

static imp_err u5_attach(struct sim_chip *c, const struct sim_chip_opts *o)
{
	struct u5 *s = calloc(1, sizeof(*s));

	if (!s)
		return IMP_ERR_NOMEM;
	if (o->revision) {
		free(s);
		IMP_ERROR("st-stm32u5 has no revisions to choose; drop --revision");
		return IMP_ERR_USAGE;
	}
	c->fam_state = s;
	load_options(c);
	return IMP_OK;
}

static void u5_detach(struct sim_chip *c)
{
	free(c->fam_state);
	c->fam_state = NULL;
}

static void u5_reset(struct sim_chip *c)
{
	struct u5 *s = st(c);

	if (s->obl_pending) {
		s->obl_pending = false;
		load_options(c);
		/* The reset takes the debug port with it: halting debug and
		 * vector catch are gone, and the DP drops its power-up acks. */
		c->core.dhcsr_ctrl = 0;
		c->core.demcr = 0;
		__atomic_add_fetch(&c->debug_gen, 1, __ATOMIC_RELEASE);
		IMP_INFO("st-stm32u5: OBL_LAUNCH: option bytes loaded (RDP 0x%02X), chip reset, "
			 "debug connection dropped", s->rdp_loaded);
	}
	s->acr = 0;
	s->sr = 0;
	s->cr = CR_LOCK | CR_OPTLOCK;
	s->key_step = 0;
	s->key_dead = false;
	s->optkey_step = 0;
	s->optkey_dead = false;
	s->qw_open = false;
	s->qw_have = 0;
	s->dbg_cr = 0;
	memset(s->dbg_fz, 0, sizeof(s->dbg_fz));
}

static bool u5_locked(const struct sim_chip *c)
{
	return level2(st(c)->rdp_loaded);
}

static bool in(uint64_t a, uint64_t n, uint32_t base, uint32_t size)
{
	return a < (uint64_t)base + size && a + n > base;
}

static bool u5_debug_refuses(const struct sim_chip *c, uint32_t addr, size_t n)
{
	if (!protected_rdp(st(c)->rdp_loaded))
		return false;
	return in(addr, n, FLASH_BASE, FLASH_SIZE) || in(addr, n, SRAM_BASE, SRAM_SIZE);
}

/* ---- busy time: the bus stalls while BSY (as nRF52's NVMC model) ---- */

static void wait_ready(struct sim_chip *c)
{
	sim_busy_wait(st(c)->busy_until);
}

static void set_busy(struct sim_chip *c, double us)
{
	sim_busy_queue(c, &st(c)->busy_until, us);
}

static bool busy(const struct sim_chip *c)
{
	return imp_now_ns() < st(c)->busy_until;
}

/* An operation completed: EOP only with EOPIE (RM0456). */
static void done(struct sim_chip *c)
{
	if (st(c)->cr & CR_EOPIE)
		st(c)->sr |= SR_EOP;
}

/* ---- memory map ---- */

enum region { R_FLASH, R_INFO, R_SRAM, R_FREG, R_PERIPH, R_DBGMCU, R_PPB };

struct span {
	enum region r;
	uint32_t base, size;
};

/* First match wins: the FLASH registers and DBGMCU before what holds them. */
static const struct span spans[] = {
	{ R_FLASH, FLASH_BASE, FLASH_SIZE },
	{ R_INFO, INFO_BASE, INFO_SIZE },
	{ R_SRAM, SRAM_BASE, SRAM_SIZE },
	{ R_FREG, FREG_BASE, FREG_SIZE },
	{ R_PERIPH, PERIPH_BASE, PERIPH_SIZE },
	{ R_DBGMCU, DBGMCU_BASE, DBGMCU_SIZE },
	{ R_PPB, SIM_PPB_BASE, SIM_PPB_SIZE },
};

static const struct span *find_span(uint64_t a, uint64_t *end)
{
	for (size_t i = 0; i < IMP_ARRAY_SIZE(spans); i++) {
		const struct span *s = &spans[i];

		if (a >= s->base && a < (uint64_t)s->base + s->size) {
			uint64_t e = (uint64_t)s->base + s->size;

			/* a span holding a later, more specific one ends where it starts */
			for (size_t k = 0; k < i; k++)
				if (spans[k].base > a && spans[k].base < e)
					e = spans[k].base;
			*end = e;
			return s;
		}
	}
	return NULL;
}

static bool mapped(uint32_t addr, size_t n)
{
	uint64_t end = (uint64_t)addr + n, e;

	for (uint64_t p = addr; p < end; p = e)
		if (!find_span(p, &e))
			return false;
	return true;
}

static uint32_t info_word(const struct sim_chip *c, uint32_t off)
{
	const uint8_t *uid = sim_hdr(c)->uid;

	if (off < OTP_SIZE)
		return sim_load32(otp_mem(c) + off);
	if (off >= UID_OFF && off < UID_OFF + 12)
		return sim_load32(uid + (off - UID_OFF));
	if (off == FLASHSIZE_OFF)
		return 0xFFFF0000u | (FLASH_SIZE / 1024);
	return 0xFFFFFFFFu;
}

static uint32_t freg_word(struct sim_chip *c, uint32_t off)
{
	struct u5 *s = st(c);

	switch (off) {
	case F_ACR: return s->acr;
	case F_NSSR: return s->sr | (busy(c) ? SR_BSY : 0);
	case F_NSCR: return s->cr;
	case F_SECCR: return CR_LOCK;
	default:
		break;
	}
	if (off >= F_OPT_FIRST && off <= F_OPT_LAST)
		return s->opt[(off - F_OPT_FIRST) / 4];
	return 0;
}

/* DBGMCU APB1FZR1, APB1FZR2, APB2FZR, APB3FZR, AHB1FZR, AHB3FZR; else -1. */
static int fz_index(uint32_t off)
{
	switch (off) {
	case 0x008: return 0;
	case 0x00C: return 1;
	case 0x010: return 2;
	case 0x014: return 3;
	case 0x020: return 4;
	case 0x028: return 5;
	default: return -1;
	}
}

static uint32_t dbgmcu_word(const struct sim_chip *c, uint32_t off)
{
	const struct u5 *s = st(c);

	if (fz_index(off) >= 0)
		return s->dbg_fz[fz_index(off)];
	switch (off) {
	case 0x000: return (REV_ID << 16) | DEV_ID;
	case 0x004: return s->dbg_cr;
	case 0x0FC: return 0x00010001u; /* DBGMCU_SR: debug and secure debug available */
	default: return 0;
	}
}

static uint64_t u5_busy_until(const struct sim_chip *c)
{
	return st(c)->busy_until;
}

static uint8_t *u5_ram_span(struct sim_chip *c, uint32_t addr, uint32_t *base, uint32_t *size)
{
	if (addr < SRAM_BASE || addr - SRAM_BASE >= SRAM_SIZE)
		return NULL;
	*base = SRAM_BASE;
	*size = SRAM_SIZE;
	return st(c)->sram;
}

static imp_err u5_read(struct sim_chip *c, uint32_t addr, uint8_t *buf, size_t n)
{
	uint64_t a = addr, end = (uint64_t)addr + n, e;
	bool first_flash = true;

	if (!mapped(addr, n))
		return IMP_ERR_PROBE;
	while (a < end) {
		const struct span *s = find_span(a, &e);
		uint32_t off = (uint32_t)(a - s->base);
		size_t k = (size_t)((e < end ? e : end) - a);

		switch (s->r) {
		case R_FLASH:
			wait_ready(c);
			memcpy(buf, flash_mem(c) + off, k);
			if ((c->faults & SIM_FAULT_TAMPER_READBACK) && first_flash)
				buf[0] ^= 0x01;
			first_flash = false;
			break;
		case R_SRAM:
			memcpy(buf, st(c)->sram + off, k);
			break;
		case R_PPB:
			sim_core_ppb_read(c, (uint32_t)a, buf, k);
			break;
		default:
			for (size_t i = 0; i < k; i++) {
				uint32_t o = off + (uint32_t)i, w;

				if (s->r == R_INFO)
					w = info_word(c, o & ~3u);
				else if (s->r == R_FREG)
					w = freg_word(c, o & ~3u);
				else if (s->r == R_DBGMCU)
					w = dbgmcu_word(c, o & ~3u);
				else
					w = 0;
				buf[i] = (uint8_t)(w >> (8 * (o & 3u)));
			}
			break;
		}
		buf += k;
		a += k;
	}
	return IMP_OK;
}

/* ---- programming ---- */

static bool dual_bank(const struct sim_chip *c)
{
	return (st(c)->opt[0] & OPTR_DUALBANK) != 0;
}

static void erase_pages(struct sim_chip *c, unsigned first, unsigned count, double ms)
{
	sim_nv_write_point();
	for (size_t i = (size_t)first * FLASH_PAGE; i < (size_t)(first + count) * FLASH_PAGE; i += 4)
		sim_store32(flash_mem(c) + i, 0xFFFFFFFFu);
	set_busy(c, ms * 1000.0);
}

/* NSCR STRT: a page or bank erase, as PER/MER1/MER2 say. */
static void start_erase(struct sim_chip *c)
{
	struct u5 *s = st(c);
	unsigned bank_pages = dual_bank(c) ? FLASH_PAGES / 2 : FLASH_PAGES;
	unsigned pnb = (s->cr & CR_PNB_MASK) >> CR_PNB_SHIFT;

	if (s->sr & SR_ERRORS) {
		s->sr |= SR_PGSERR;
		return;
	}
	if (s->cr & (CR_MER1 | CR_MER2)) {
		bool b1 = s->cr & CR_MER1, b2 = s->cr & CR_MER2;

		if (b1 && b2)
			__atomic_add_fetch(&c->mass_erases, 1, __ATOMIC_RELAXED);
		if (!dual_bank(c)) {
			erase_pages(c, 0, FLASH_PAGES, LAT_BANK_ERASE_MS);
		} else {
			if (b1)
				erase_pages(c, 0, bank_pages, LAT_BANK_ERASE_MS);
			if (b2)
				erase_pages(c, bank_pages, bank_pages, LAT_BANK_ERASE_MS);
		}
		done(c);
		return;
	}
	if (!(s->cr & CR_PER) || (s->cr & CR_PG)) {
		s->sr |= SR_PGSERR;
		return;
	}
	if (dual_bank(c) && (s->cr & CR_BKER))
		pnb += bank_pages;
	if (pnb >= FLASH_PAGES || (!dual_bank(c) && (s->cr & CR_BKER))) {
		s->sr |= SR_PGSERR;
		return;
	}
	erase_pages(c, pnb, 1, LAT_PAGE_ERASE_MS);
	done(c);
}

/* The quad-word is complete: program it if it may be. */
static void program_qw(struct sim_chip *c)
{
	struct u5 *s = st(c);
	bool otp = s->qw_addr >= INFO_BASE;
	uint8_t *dst = otp ? otp_mem(c) + (s->qw_addr - INFO_BASE)
			   : flash_mem(c) + (s->qw_addr - FLASH_BASE);
	bool erased = true, zeros = true;

	s->qw_open = false;
	s->qw_have = 0;
	for (unsigned i = 0; i < QW; i++) {
		erased = erased && dst[i] == 0xFF;
		zeros = zeros && s->qw_data[i] == 0x00;
	}
	if (!erased && !(zeros && !otp)) {
		IMP_DEBUG("stm32u5: quad-word at 0x%08x is not erased: PROGERR", s->qw_addr);
		s->sr |= SR_PROGERR;
		return;
	}
	sim_nv_write_point();
	for (unsigned i = 0; i < QW; i += 4)
		sim_store32(dst + i, sim_load32(s->qw_data + i));
	set_busy(c, LAT_QW_US);
	done(c);
}

/* A partial quad-word is abandoned: PGAERR, nothing programmed. */
static void abandon_qw(struct sim_chip *c)
{
	if (st(c)->qw_open) {
		st(c)->qw_open = false;
		st(c)->qw_have = 0;
		st(c)->sr |= SR_PGAERR;
	}
}

/* One access of n bytes to flash or OTP at address a (a % n == 0). */
static void program_access(struct sim_chip *c, uint32_t a, const uint8_t *b, size_t n)
{
	struct u5 *s = st(c);
	uint32_t q = a & ~(QW - 1);
	bool otp = a >= INFO_BASE;

	wait_ready(c);
	if (!(s->cr & CR_PG) || (s->cr & (CR_PER | CR_MER1 | CR_MER2)) || (s->sr & SR_ERRORS)) {
		s->sr |= SR_PGSERR;
		return;
	}
	if (n != 4) {
		s->sr |= SR_SIZERR;
		abandon_qw(c);
		return;
	}
	if (otp && a - INFO_BASE >= OTP_SIZE) {
		s->sr |= SR_PGSERR; /* the information block is read-only */
		return;
	}
	if (s->qw_open && s->qw_addr != q)
		abandon_qw(c);
	if (s->sr & SR_ERRORS)
		return;
	if (!s->qw_open) {
		s->qw_open = true;
		s->qw_addr = q;
		s->qw_have = 0;
		memset(s->qw_data, 0xFF, QW);
	}
	memcpy(s->qw_data + (a - q), b, 4);
	s->qw_have |= 1u << ((a - q) / 4);
	if (s->qw_have == 0xFu)
		program_qw(c);
}

/* OPTSTRT: program the option registers into the option flash. */
static void start_options(struct sim_chip *c)
{
	struct u5 *s = st(c);
	uint32_t new_rdp = s->opt[0] & 0xFFu;

	if (s->cr & CR_OPTLOCK)
		return;
	if (s->sr & SR_ERRORS) {
		s->sr |= SR_PGSERR;
		return;
	}
	if (level2(s->rdp_loaded) || (c->faults & SIM_FAULT_FUSE_FAIL)) {
		c->faults &= ~SIM_FAULT_FUSE_FAIL;
		s->sr |= SR_OPTWERR;
		return;
	}
	if (protected_rdp(s->rdp_loaded) && new_rdp == RDP_LEVEL0) {
		/* Regression to level 0: the flash is mass-erased first. */
		IMP_INFO("st-stm32u5: RDP regression 1 -> 0: flash mass-erased");
		__atomic_add_fetch(&c->mass_erases, 1, __ATOMIC_RELAXED);
		erase_pages(c, 0, FLASH_PAGES, LAT_BANK_ERASE_MS);
		memset(s->sram + 0x30000, 0, 0x10000); /* SRAM2 too */
	}
	sim_nv_write_point();
	for (unsigned i = 0; i < N_OPT; i++)
		sim_store32(c->nv + NV_OPT_OFF + 4 * i, s->opt[i]);
	set_busy(c, LAT_OPT_PROGRAM_MS * 1000.0);
	done(c);
}

static imp_err freg_write(struct sim_chip *c, uint32_t off, uint32_t v)
{
	struct u5 *s = st(c);

	switch (off) {
	case F_ACR:
		s->acr = v & 0x0000F00Fu;
		break;
	case F_NSKEYR:
		if (!(s->cr & CR_LOCK))
			break;
		if (!s->key_dead && s->key_step == 0 && v == KEY1) {
			s->key_step = 1;
		} else if (!s->key_dead && s->key_step == 1 && v == KEY2) {
			s->key_step = 0;
			s->cr &= ~CR_LOCK;
		} else {
			s->key_dead = true; /* locked until the next reset */
			return IMP_ERR_PROBE;
		}
		break;
	case F_OPTKEYR:
		if (!(s->cr & CR_OPTLOCK))
			break;
		if ((s->cr & CR_LOCK) || s->optkey_dead) {
			s->optkey_dead = true;
			return IMP_ERR_PROBE;
		}
		if (s->optkey_step == 0 && v == OPTKEY1) {
			s->optkey_step = 1;
		} else if (s->optkey_step == 1 && v == OPTKEY2) {
			s->optkey_step = 0;
			s->cr &= ~CR_OPTLOCK;
		} else {
			s->optkey_dead = true;
			return IMP_ERR_PROBE;
		}
		break;
	case F_NSSR:
		s->sr &= ~(v & (SR_EOP | SR_ERRORS));
		break;
	case F_NSCR:
		wait_ready(c);
		if (s->cr & CR_LOCK)
			break; /* locked: only a reset or the keys open it */
		if ((s->cr & CR_PG) && !(v & CR_PG))
			abandon_qw(c);
		s->cr = (s->cr & (CR_LOCK | CR_OPTLOCK)) | (v & CR_KEEP);
		if (v & CR_OPTLOCK)
			s->cr |= CR_OPTLOCK;
		if (v & CR_LOCK)
			s->cr |= CR_LOCK | CR_OPTLOCK;
		if (v & CR_STRT)
			start_erase(c);
		if (v & CR_OPTSTRT)
			start_options(c);
		if ((v & CR_OBL_LAUNCH) && !(s->cr & CR_OPTLOCK)) {
			/* The reset runs once this write completed (access_mem). */
			s->obl_pending = true;
			c->core.sysresetreq = true;
		}
		break;
	default:
		if (off >= F_OPT_FIRST && off <= F_OPT_LAST) {
			if ((s->cr & CR_OPTLOCK) || level2(s->rdp_loaded))
				break;
			if (off == F_OPTR)
				v &= ~OPTR_TZEN; /* TrustZone is not modelled */
			s->opt[(off - F_OPT_FIRST) / 4] = v;
		}
		break;
	}
	return IMP_OK;
}

static imp_err u5_write(struct sim_chip *c, uint32_t addr, const uint8_t *buf, size_t n)
{
	uint64_t a = addr, end = (uint64_t)addr + n, e;
	imp_err rc = IMP_OK;

	if (!mapped(addr, n))
		return IMP_ERR_PROBE;
	for (uint64_t p = a; p < end; p = e) {
		const struct span *s = find_span(p, &e);

		if (s->r == R_INFO && p - s->base >= OTP_SIZE)
			return IMP_ERR_PROBE; /* the UID and the rest are read-only */
	}
	while (a < end) {
		const struct span *s = find_span(a, &e);
		uint32_t off = (uint32_t)(a - s->base);
		size_t k = (size_t)((e < end ? e : end) - a);

		switch (s->r) {
		case R_FLASH:
		case R_INFO: {
			/* An AHB access is at most a word, aligned: split as the bus does. */
			size_t i = 0;

			while (i < k) {
				uint32_t at = (uint32_t)a + (uint32_t)i;
				size_t step = (at % 4 == 0 && k - i >= 4) ? 4 : 1;

				program_access(c, at, buf + i, step);
				i += step;
			}
			break;
		}
		case R_SRAM:
			memcpy(st(c)->sram + off, buf, k);
			break;
		case R_FREG:
			if (off % 4 || k % 4)
				return IMP_ERR_PROBE;
			for (size_t i = 0; i < k && rc == IMP_OK; i += 4)
				rc = freg_write(c, off + (uint32_t)i, sim_load32(buf + i));
			if (rc != IMP_OK)
				return rc;
			break;
		case R_DBGMCU:
			if (off == 0x004 && k == 4)
				st(c)->dbg_cr = sim_load32(buf) & 0x00000037u;
			else if (k == 4 && fz_index(off) >= 0)
				st(c)->dbg_fz[fz_index(off)] = sim_load32(buf);
			break;
		case R_PPB:
			sim_core_ppb_write(c, (uint32_t)a, buf, k);
			break;
		default:
			break;
		}
		buf += k;
		a += k;
	}
	return IMP_OK;
}

static uint32_t u5_lifecycle(const struct sim_chip *c)
{
	if (protected_rdp(st(c)->rdp_loaded))
		return 3;
	return sim_hdr(c)->personalised ? 2 : 1;
}

static uint32_t u5_fuses(const struct sim_chip *c)
{
	return protected_rdp(stored_opt(c, 0)) ? VB1_FUSE_DEBUG_LOCK : 0;
}

static uint32_t u5_fuses_effective(const struct sim_chip *c)
{
	return protected_rdp(st(c)->rdp_loaded) ? VB1_FUSE_DEBUG_LOCK : 0;
}

static void u5_describe(const struct sim_chip *c, char *out, size_t cap)
{
	char id[25];

	imp_hex_encode(sim_hdr(c)->uid, 12, id);
	snprintf(out, cap, "\"uid96\":\"%s\",\"rdp\":\"0x%02X\"", id, st(c)->rdp_loaded);
}

const struct sim_chip_family sim_family_stm32u5 = {
	.name = "st-stm32u5",
	.nv_magic = "IMPSTU5N",
	.nv_version = 1,
	.nv_size = NV_SIZE,
	.vector_table = FLASH_BASE,
	.core_debug = true,
	.cpuid = 0x410FD214u,     /* Cortex-M33 r0p4 */
	.dap_idcode = 0x0BA04477u, /* the Cortex-M33 JTAG-DP (RM0456, JTAG-DP data registers) */
	.init_image = u5_init_image,
	.attach = u5_attach,
	.detach = u5_detach,
	.reset = u5_reset,
	.debug_locked = u5_locked,
	.read = u5_read,
	.write = u5_write,
	.lifecycle = u5_lifecycle,
	.fuses = u5_fuses,
	.fuses_effective = u5_fuses_effective,
	.debug_refuses = u5_debug_refuses,
	.ram_span = u5_ram_span,
	.busy_until = u5_busy_until,
	.describe = u5_describe,
};
