/* JTAG TAP, ADIv5 JTAG-DP and MEM-AP of the virtual board (sim/dap.h). */
#include <stdlib.h>
#include <string.h>

#include "imprint/log.h"
#include "sim/dap.h"

enum tap_state {
	TLR, RTI, SELDR, CAPDR, SHDR, EX1DR, PADR, EX2DR, UPDR,
	SELIR, CAPIR, SHIR, EX1IR, PAIR, EX2IR, UPIR,
};

/* IEEE 1149.1 state diagram: next[state][tms]. */
static const unsigned char next_state[16][2] = {
	[TLR] = { RTI, TLR },     [RTI] = { RTI, SELDR },
	[SELDR] = { CAPDR, SELIR }, [CAPDR] = { SHDR, EX1DR },
	[SHDR] = { SHDR, EX1DR }, [EX1DR] = { PADR, UPDR },
	[PADR] = { PADR, EX2DR }, [EX2DR] = { SHDR, UPDR },
	[UPDR] = { RTI, SELDR },  [SELIR] = { CAPIR, TLR },
	[CAPIR] = { SHIR, EX1IR }, [SHIR] = { SHIR, EX1IR },
	[EX1IR] = { PAIR, UPIR }, [PAIR] = { PAIR, EX2IR },
	[EX2IR] = { SHIR, UPIR }, [UPIR] = { RTI, SELDR },
};

#define IR_ABORT 0x8u
#define IR_DPACC 0xAu
#define IR_APACC 0xBu
#define IR_IDCODE 0xEu
#define IR_BYPASS 0xFu

#define ACK_OK_FAULT 0x2u

#define CS_ORUNDETECT (1u << 0)
#define CS_STICKYORUN (1u << 1)
#define CS_TRNMODE (3u << 2)
#define CS_STICKYCMP (1u << 4)
#define CS_STICKYERR (1u << 5)
#define CS_READOK (1u << 6)
#define CS_MASKLANE (0xFu << 8)
#define CS_TRNCNT (0xFFFu << 12)
#define CS_CDBGRSTREQ (1u << 26)
#define CS_CDBGPWRUPREQ (1u << 28)
#define CS_CSYSPWRUPREQ (1u << 30)
#define CS_RW (CS_ORUNDETECT | CS_TRNMODE | CS_MASKLANE | CS_TRNCNT | CS_CDBGRSTREQ | \
	       CS_CDBGPWRUPREQ | CS_CSYSPWRUPREQ)

#define CSW_SIZE 0x7u
#define CSW_ADDRINC (3u << 4)
#define CSW_DEVICEEN (1u << 6)
#define CSW_KEEP (0xFF000F00u | CSW_SIZE | CSW_ADDRINC)

struct sim_dap {
	struct sim_chip *chip;
	enum tap_state state;
	uint32_t ir;
	uint64_t sr;       /* the selected shift register */
	unsigned sr_len;
	/* DP */
	uint32_t ctrl;     /* CTRL/STAT as written, plus the sticky flags */
	uint32_t select;
	uint32_t read_result;
	/* MEM-AP */
	uint32_t csw, tar;
	uint32_t debug_gen; /* sim_chip_debug_generation() last seen */
};

struct sim_dap *sim_dap_new(struct sim_chip *chip)
{
	struct sim_dap *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->chip = chip;
	d->csw = 0x2u; /* 32-bit, no increment */
	d->debug_gen = sim_chip_debug_generation(chip);
	sim_dap_trst(d);
	return d;
}

void sim_dap_free(struct sim_dap *d)
{
	free(d);
}

void sim_dap_trst(struct sim_dap *d)
{
	d->state = TLR;
	d->ir = IR_IDCODE;
}

/* ---- MEM-AP ---- */

static unsigned csw_bytes(uint32_t csw)
{
	switch (csw & CSW_SIZE) {
	case 0: return 1;
	case 1: return 2;
	case 2: return 4;
	default: return 0;
	}
}

static void sticky_err(struct sim_dap *d)
{
	d->ctrl |= CS_STICKYERR;
}

/* One DRW/BD transfer at addr of n bytes; data in the AHB byte lanes. */
static uint32_t mem_transfer(struct sim_dap *d, uint32_t addr, unsigned n, bool rnw, uint32_t wdata)
{
	uint8_t b[4] = { 0 };
	uint32_t v = 0;
	unsigned lane;
	imp_err rc;

	if (n == 0) {
		sticky_err(d);
		return 0;
	}
	addr &= ~(n - 1); /* AHB transfers are aligned to their size */
	lane = addr & 3u;
	if (rnw) {
		rc = sim_chip_read(d->chip, addr, b, n);
		if (rc != IMP_OK) {
			sticky_err(d);
			return 0;
		}
		for (unsigned i = 0; i < n; i++)
			v |= (uint32_t)b[i] << (8 * (lane + i));
		return v;
	}
	for (unsigned i = 0; i < n; i++)
		b[i] = (uint8_t)(wdata >> (8 * (lane + i)));
	rc = sim_chip_write(d->chip, addr, b, n);
	if (rc != IMP_OK)
		sticky_err(d);
	return 0;
}

static uint32_t mem_ap(struct sim_dap *d, uint32_t reg, bool rnw, uint32_t wdata)
{
	bool locked = sim_chip_debug_locked(d->chip);
	uint32_t v = 0;

	if (locked) {
		/* The AHB-AP is disabled: registers read 0, transfers fail. */
		if (reg == 0x0C || (reg >= 0x10 && reg < 0x20))
			sticky_err(d);
		return 0;
	}
	switch (reg) {
	case 0x00: /* CSW */
		if (rnw)
			return d->csw | CSW_DEVICEEN;
		d->csw = wdata & CSW_KEEP;
		if ((d->csw & CSW_ADDRINC) > (1u << 4))
			d->csw &= ~CSW_ADDRINC; /* no packed transfers */
		return 0;
	case 0x04: /* TAR */
		if (rnw)
			return d->tar;
		d->tar = wdata;
		return 0;
	case 0x0C: { /* DRW */
		unsigned n = csw_bytes(d->csw);

		v = mem_transfer(d, d->tar, n, rnw, wdata);
		if ((d->csw & CSW_ADDRINC) == (1u << 4) && n)
			d->tar = (d->tar & ~0xFFFu) | ((d->tar + n) & 0xFFFu);
		return v;
	}
	case 0x10: case 0x14: case 0x18: case 0x1C: /* BD0..BD3 */
		return mem_transfer(d, (d->tar & ~0xFu) | (reg & 0xCu), 4, rnw, wdata);
	case 0xF4: /* CFG: little-endian, 32-bit addresses */
		return 0;
	case 0xF8: /* BASE */
		return sim_chip_has_core_debug(d->chip) ? 0xE00FF003u : 0xFFFFFFFFu;
	case 0xFC: /* IDR */
		return SIM_DAP_AHB_AP_IDR;
	default:
		return 0;
	}
}

/* ---- DP ---- */

static uint32_t ctrl_stat(const struct sim_dap *d)
{
	uint32_t v = d->ctrl;

	/* Power and reset requests are acknowledged at once. */
	if (v & CS_CDBGPWRUPREQ)
		v |= 1u << 29;
	if (v & CS_CSYSPWRUPREQ)
		v |= 1u << 31;
	if (v & CS_CDBGRSTREQ)
		v |= 1u << 27;
	return v;
}

void sim_dap_transact(struct sim_dap *d, bool ap, bool rnw, unsigned a, uint32_t wdata,
		      uint32_t *rdata)
{
	uint32_t v = 0, gen = sim_chip_debug_generation(d->chip);

	if (gen != d->debug_gen) {
		/* The chip's reset took the debug port with it: power-up
		 * requests dropped, and the lost transfers flagged. */
		d->debug_gen = gen;
		d->ctrl = CS_STICKYERR;
	}
	a &= 0xCu;
	if (!ap) {
		switch (a) {
		case 0x0: /* DPIDR (reads), reserved for writes on a JTAG-DP */
			v = sim_chip_dap_idcode(d->chip);
			break;
		case 0x4:
			if (rnw) {
				v = ctrl_stat(d);
			} else {
				d->ctrl &= ~(wdata & (CS_STICKYERR | CS_STICKYCMP | CS_STICKYORUN));
				d->ctrl = (d->ctrl & ~CS_RW) | (wdata & CS_RW);
			}
			break;
		case 0x8:
			if (rnw)
				v = d->select;
			else
				d->select = wdata;
			break;
		case 0xC: /* RDBUFF: the last AP read's result again */
			v = d->read_result;
			break;
		}
	} else if (d->ctrl & CS_STICKYERR) {
		v = 0; /* no AP transfer while an error is pending */
	} else {
		unsigned apsel = d->select >> 24;
		uint32_t reg = (d->select & 0xF0u) | a;

		if (apsel == 0) {
			v = mem_ap(d, reg, rnw, wdata);
		} else if (rnw) {
			if (sim_chip_ap_read(d->chip, apsel, reg, &v) != IMP_OK)
				sticky_err(d);
		} else if (sim_chip_ap_write(d->chip, apsel, reg, wdata) != IMP_OK) {
			sticky_err(d);
		}
	}
	if (rdata)
		*rdata = rnw ? v : 0;
}

/* ---- TAP ---- */

static unsigned dr_len(uint32_t ir)
{
	switch (ir) {
	case IR_IDCODE: return 32;
	case IR_DPACC:
	case IR_APACC:
	case IR_ABORT: return 35;
	default: return 1;
	}
}

static void capture_dr(struct sim_dap *d)
{
	d->sr_len = dr_len(d->ir);
	switch (d->ir) {
	case IR_IDCODE:
		d->sr = sim_chip_dap_idcode(d->chip);
		break;
	case IR_DPACC:
	case IR_APACC:
	case IR_ABORT:
		d->sr = ((uint64_t)d->read_result << 3) | ACK_OK_FAULT;
		break;
	default:
		d->sr = 0;
		break;
	}
}

static void update_dr(struct sim_dap *d)
{
	uint32_t data = (uint32_t)(d->sr >> 3), v = 0;
	bool rnw = d->sr & 1u;
	unsigned a = (unsigned)((d->sr >> 1) & 3u) << 2;

	switch (d->ir) {
	case IR_DPACC:
	case IR_APACC:
		sim_dap_transact(d, d->ir == IR_APACC, rnw, a, data, &v);
		/* RDBUFF gives back the previous result; any other read replaces it. */
		if (rnw && !(d->ir == IR_DPACC && a == 0xC))
			d->read_result = v;
		break;
	case IR_ABORT:
		/* DAPABORT: nothing is ever in flight, so there is nothing to cancel. */
		break;
	default:
		break;
	}
}

void sim_dap_clock(struct sim_dap *d, int tms, int tdi)
{
	switch (d->state) {
	case CAPDR:
		capture_dr(d);
		break;
	case CAPIR:
		d->sr = 0x1u;
		d->sr_len = 4;
		break;
	case SHDR:
	case SHIR:
		d->sr = (d->sr >> 1) | ((uint64_t)(tdi ? 1 : 0) << (d->sr_len - 1));
		break;
	default:
		break;
	}
	d->state = next_state[d->state][tms ? 1 : 0];
	switch (d->state) {
	case TLR:
		d->ir = IR_IDCODE;
		break;
	case UPDR:
		update_dr(d);
		break;
	case UPIR:
		d->ir = (uint32_t)(d->sr & 0xFu);
		break;
	default:
		break;
	}
}

int sim_dap_tdo(const struct sim_dap *d)
{
	if (d->state == SHDR || d->state == SHIR)
		return (int)(d->sr & 1u);
	return 0;
}
