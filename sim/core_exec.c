/*
 * The Cortex-M core's instruction execution, for code a debugger runs on it
 * (OpenOCD's flash loader and CRC routine): the ARMv6-M Thumb instruction
 * set (ARMv6-M Architecture Reference Manual, A6.7), which is what such
 * loaders are built for, plus BL and the barrier and hint instructions.
 * The core executes only code in SRAM (0x20000000-0x3FFFFFFF) that a
 * debugger resumed it at, from a debug halt;
 * it stops at BKPT (a debug halt, DFSR.BKPT) and locks up (DHCSR.S_LOCKUP)
 * on anything it does not execute or on a faulting access — there is no
 * exception model. Memory goes through the chip family's bus, so flash
 * writes stall while the NVMC is busy, as on the part.
 */
#include <string.h>

#include "chip_int.h"
#include "imprint/util.h"

#define N_BIT (1u << 31)
#define Z_BIT (1u << 30)
#define C_BIT (1u << 29)
#define V_BIT (1u << 28)

enum { EX_OK, EX_HALT, EX_FAULT };

#define CORE_BUSY_STOP_NS 100000u

struct ex {
	struct sim_chip *c;
	uint32_t *r;
	bool stored; /* a store to memory (not to a peripheral) happened */
	bool started_busy; /* a store through the bus left the flash controller busy */
	/* the family's SRAM (ram_span), looked up at the first access to it */
	uint8_t *ram;
	uint32_t ram_base, ram_size;
};

/* The SRAM bytes of [a, a+n), or NULL: go through the bus. */
static inline uint8_t *ram_at(struct ex *e, uint32_t a, unsigned n)
{
	if (e->ram && a - e->ram_base < e->ram_size && e->ram_size - (a - e->ram_base) >= n)
		return e->ram + (a - e->ram_base);
	if (!e->ram && e->c->fam->ram_span) { /* until the first access to SRAM */
		e->ram = e->c->fam->ram_span(e->c, a, &e->ram_base, &e->ram_size);
		if (e->ram && a - e->ram_base < e->ram_size && e->ram_size - (a - e->ram_base) >= n)
			return e->ram + (a - e->ram_base);
	}
	return NULL;
}

/* n (1, 2 or 4) bytes little-endian, as the core's bus delivers them */
static inline uint32_t le_get(const uint8_t *m, unsigned n)
{
	switch (n) {
	case 1: return m[0];
	case 2: return (uint32_t)m[0] | (uint32_t)m[1] << 8;
	default: return (uint32_t)m[0] | (uint32_t)m[1] << 8 | (uint32_t)m[2] << 16 |
			(uint32_t)m[3] << 24;
	}
}

static bool ld(struct ex *e, uint32_t a, unsigned n, uint32_t *v)
{
	uint8_t b[4] = { 0 };
	const uint8_t *m;

	if (a & (n - 1))
		return false;
	m = ram_at(e, a, n);
	if (m) {
		*v = le_get(m, n);
		return true;
	}
	if (e->c->fam->read(e->c, a, b, n) != IMP_OK)
		return false;
	*v = le_get(b, n);
	return true;
}

static bool st(struct ex *e, uint32_t a, unsigned n, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
	uint8_t *m;

	if (a & (n - 1))
		return false;
	m = ram_at(e, a, n);
	if (m) {
		m[0] = b[0];
		if (n > 1)
			m[1] = b[1];
		if (n > 2) {
			m[2] = b[2];
			m[3] = b[3];
		}
	} else {
		uint64_t before = e->c->fam->busy_until ? e->c->fam->busy_until(e->c) : 0;
		uint64_t now = imp_now_ns();

		if (e->c->fam->write(e->c, a, b, n) != IMP_OK)
			return false;
		/* a loader's next step is to wait for the controller: when
		 * this store queued a long operation (an STM32U5 quad-word,
		 * 118 us), end the slice
		 * there rather than spin through it; a short one (an nRF52
		 * word, 41 us) is cheaper spun than slept */
		if (e->c->fam->busy_until &&
		    e->c->fam->busy_until(e->c) > (before > now ? before : now) + CORE_BUSY_STOP_NS)
			e->started_busy = true;
	}
	if (a < 0x40000000u)
		e->stored = true;
	return true;
}

static void set_nz(struct ex *e, uint32_t v)
{
	uint32_t *psr = &e->r[16];

	*psr &= ~(N_BIT | Z_BIT);
	*psr |= (v & N_BIT) | (v == 0 ? Z_BIT : 0);
}

static void set_c(struct ex *e, bool c)
{
	e->r[16] = (e->r[16] & ~C_BIT) | (c ? C_BIT : 0);
}

static bool flag(const struct ex *e, uint32_t bit)
{
	return (e->r[16] & bit) != 0;
}

/* a + b + carry, with NZCV when flags is set. */
static uint32_t addc(struct ex *e, uint32_t a, uint32_t b, bool carry, bool flags)
{
	uint64_t wide = (uint64_t)a + b + (carry ? 1 : 0);
	uint32_t res = (uint32_t)wide;

	if (flags) {
		set_nz(e, res);
		set_c(e, wide >> 32);
		e->r[16] = (e->r[16] & ~V_BIT) | ((((a ^ res) & (b ^ res)) >> 31) ? V_BIT : 0);
	}
	return res;
}

static bool cond_pass(const struct ex *e, unsigned cond)
{
	bool n = flag(e, N_BIT), z = flag(e, Z_BIT), c = flag(e, C_BIT), v = flag(e, V_BIT);

	switch (cond) {
	case 0x0: return z;
	case 0x1: return !z;
	case 0x2: return c;
	case 0x3: return !c;
	case 0x4: return n;
	case 0x5: return !n;
	case 0x6: return v;
	case 0x7: return !v;
	case 0x8: return c && !z;
	case 0x9: return !c || z;
	case 0xA: return n == v;
	case 0xB: return n != v;
	case 0xC: return !z && n == v;
	case 0xD: return z || n != v;
	default: return true;
	}
}

static uint32_t sext(uint32_t v, unsigned bits)
{
	uint32_t m = 1u << (bits - 1);

	return (v ^ m) - m;
}

/* Shifts by register (LSL 0, LSR 1, ASR 2, ROR 3), flags as ARMv6-M sets them. */
static uint32_t shift_reg(struct ex *e, unsigned kind, uint32_t v, uint32_t amount)
{
	uint32_t n = amount & 0xFFu, res = v;

	if (n == 0)
		return v;
	switch (kind) {
	case 0:
		res = n < 32 ? v << n : 0;
		set_c(e, n <= 32 ? (v >> (32 - n)) & 1u : 0);
		break;
	case 1:
		res = n < 32 ? v >> n : 0;
		set_c(e, n <= 32 ? (v >> (n - 1)) & 1u : 0);
		break;
	case 2:
		if (n >= 32) {
			res = (v & N_BIT) ? 0xFFFFFFFFu : 0;
			set_c(e, v >> 31);
		} else {
			res = (uint32_t)((int32_t)v >> n);
			set_c(e, ((int32_t)v >> (n - 1)) & 1);
		}
		break;
	default:
		n &= 31u;
		res = n ? (v >> n) | (v << (32 - n)) : v;
		set_c(e, res >> 31);
		break;
	}
	return res;
}

static int branch_to(struct ex *e, uint32_t target, bool interworking)
{
	if (interworking && !(target & 1u))
		return EX_FAULT; /* no ARM state on an M profile core */
	e->r[15] = target & ~1u;
	return EX_OK;
}

static int data_processing(struct ex *e, uint16_t op)
{
	unsigned opc = (op >> 6) & 0xFu, rm = (op >> 3) & 7u, rdn = op & 7u;
	uint32_t *r = e->r, a = r[rdn], b = r[rm], res;

	switch (opc) {
	case 0x0: res = a & b; set_nz(e, res); r[rdn] = res; break;             /* AND */
	case 0x1: res = a ^ b; set_nz(e, res); r[rdn] = res; break;             /* EOR */
	case 0x2: case 0x3: case 0x4: case 0x7:                                  /* LSL LSR ASR ROR */
		res = shift_reg(e, opc == 0x2 ? 0 : opc == 0x3 ? 1 : opc == 0x4 ? 2 : 3, a, b);
		set_nz(e, res);
		r[rdn] = res;
		break;
	case 0x5: r[rdn] = addc(e, a, b, flag(e, C_BIT), true); break;          /* ADC */
	case 0x6: r[rdn] = addc(e, a, ~b, flag(e, C_BIT), true); break;         /* SBC */
	case 0x8: set_nz(e, a & b); break;                                       /* TST */
	case 0x9: r[rdn] = addc(e, ~b, 0, true, true); break;                    /* RSB #0 */
	case 0xA: addc(e, a, ~b, true, true); break;                             /* CMP */
	case 0xB: addc(e, a, b, false, true); break;                             /* CMN */
	case 0xC: res = a | b; set_nz(e, res); r[rdn] = res; break;             /* ORR */
	case 0xD: res = a * b; set_nz(e, res); r[rdn] = res; break;             /* MUL */
	case 0xE: res = a & ~b; set_nz(e, res); r[rdn] = res; break;            /* BIC */
	default: res = ~b; set_nz(e, res); r[rdn] = res; break;                 /* MVN */
	}
	return EX_OK;
}

static int special_data(struct ex *e, uint16_t op, uint32_t pcv)
{
	unsigned opc = (op >> 8) & 3u, rm = (op >> 3) & 0xFu, rdn = (op & 7u) | ((op >> 4) & 8u);
	uint32_t *r = e->r, vm = rm == 15 ? pcv : r[rm], vn = rdn == 15 ? pcv : r[rdn];

	switch (opc) {
	case 0: /* ADD (high registers), no flags */
		if (rdn == 15)
			return branch_to(e, vn + vm, false);
		r[rdn] = vn + vm;
		return EX_OK;
	case 1: /* CMP */
		addc(e, vn, ~vm, true, true);
		return EX_OK;
	case 2: /* MOV */
		if (rdn == 15)
			return branch_to(e, vm, false);
		r[rdn] = vm;
		return EX_OK;
	default: /* BX, BLX */
		if (op & 0x80u)
			r[14] = (r[15] + 2) | 1u;
		return branch_to(e, vm, true);
	}
}

static int load_store(struct ex *e, unsigned kind, uint32_t addr, unsigned rt)
{
	uint32_t *r = e->r, v;

	switch (kind) {
	case 0: return st(e, addr, 4, r[rt]) ? EX_OK : EX_FAULT;
	case 1: return st(e, addr, 2, r[rt] & 0xFFFFu) ? EX_OK : EX_FAULT;
	case 2: return st(e, addr, 1, r[rt] & 0xFFu) ? EX_OK : EX_FAULT;
	case 3: if (!ld(e, addr, 1, &v)) return EX_FAULT; r[rt] = sext(v, 8); return EX_OK;
	case 4: if (!ld(e, addr, 4, &v)) return EX_FAULT; r[rt] = v; return EX_OK;
	case 5: if (!ld(e, addr, 2, &v)) return EX_FAULT; r[rt] = v; return EX_OK;
	case 6: if (!ld(e, addr, 1, &v)) return EX_FAULT; r[rt] = v; return EX_OK;
	default: if (!ld(e, addr, 2, &v)) return EX_FAULT; r[rt] = sext(v, 16); return EX_OK;
	}
}

static int misc(struct ex *e, uint16_t op)
{
	uint32_t *r = e->r, v;
	unsigned rm = (op >> 3) & 7u, rd = op & 7u;

	switch ((op >> 8) & 0xFu) {
	case 0x0: /* ADD/SUB SP, #imm7*4 */
		r[13] = (op & 0x80u) ? r[13] - (op & 0x7Fu) * 4u : r[13] + (op & 0x7Fu) * 4u;
		return EX_OK;
	case 0x2: /* SXTH SXTB UXTH UXTB */
		v = r[rm];
		switch ((op >> 6) & 3u) {
		case 0: r[rd] = sext(v & 0xFFFFu, 16); break;
		case 1: r[rd] = sext(v & 0xFFu, 8); break;
		case 2: r[rd] = v & 0xFFFFu; break;
		default: r[rd] = v & 0xFFu; break;
		}
		return EX_OK;
	case 0x4: case 0x5: { /* PUSH */
		unsigned list = (op & 0xFFu) | ((op & 0x100u) ? 0x4000u : 0), n = (unsigned)__builtin_popcount(list);
		uint32_t a = r[13] - 4u * n;

		for (unsigned i = 0; i < 15; i++)
			if (list & (1u << i)) {
				if (!st(e, a, 4, r[i]))
					return EX_FAULT;
				a += 4;
			}
		r[13] -= 4u * n;
		return EX_OK;
	}
	case 0x6: /* CPS: PRIMASK */
		if ((op & 0xFFEFu) == 0xB662u) {
			e->c->core.special = (e->c->core.special & ~1u) | ((op & 0x10u) ? 1u : 0);
			return EX_OK;
		}
		return EX_FAULT;
	case 0xA: /* REV REV16 REVSH */
		v = r[rm];
		switch ((op >> 6) & 3u) {
		case 0: r[rd] = __builtin_bswap32(v); return EX_OK;
		case 1: r[rd] = ((v & 0x00FF00FFu) << 8) | ((v >> 8) & 0x00FF00FFu); return EX_OK;
		case 3: r[rd] = sext(((v & 0xFFu) << 8) | ((v >> 8) & 0xFFu), 16); return EX_OK;
		default: return EX_FAULT;
		}
	case 0xC: case 0xD: { /* POP */
		unsigned list = (op & 0xFFu) | ((op & 0x100u) ? 0x8000u : 0);
		uint32_t a = r[13], pc = 0;
		bool to_pc = false;

		for (unsigned i = 0; i < 16; i++)
			if (list & (1u << i)) {
				if (!ld(e, a, 4, &v))
					return EX_FAULT;
				if (i == 15) {
					pc = v;
					to_pc = true;
				} else {
					r[i] = v;
				}
				a += 4;
			}
		r[13] = a;
		return to_pc ? branch_to(e, pc, true) : EX_OK;
	}
	case 0xE: /* BKPT */
		return EX_HALT;
	case 0xF: /* NOP, YIELD, WFE, WFI, SEV: no effect under a debugger */
		return (op & 0xFu) == 0 ? EX_OK : EX_FAULT;
	default:
		return EX_FAULT;
	}
}

static int multiple(struct ex *e, uint16_t op)
{
	unsigned rn = (op >> 8) & 7u, list = op & 0xFFu;
	uint32_t *r = e->r, a = r[rn], v;
	bool load = (op & 0x0800u) != 0;

	if (!list)
		return EX_FAULT;
	for (unsigned i = 0; i < 8; i++) {
		if (!(list & (1u << i)))
			continue;
		if (load) {
			if (!ld(e, a, 4, &v))
				return EX_FAULT;
			r[i] = v;
		} else if (!st(e, a, 4, r[i])) {
			return EX_FAULT;
		}
		a += 4;
	}
	if (!load || !(list & (1u << rn)))
		r[rn] = a;
	return EX_OK;
}

static int wide(struct ex *e, uint16_t op, uint32_t pc)
{
	uint32_t op2;

	if (!ld(e, pc + 2, 2, &op2))
		return EX_FAULT;
	if ((op & 0xF800u) == 0xF000u && (op2 & 0xD000u) == 0xD000u) { /* BL */
		uint32_t s = (op >> 10) & 1u, j1 = (op2 >> 13) & 1u, j2 = (op2 >> 11) & 1u;
		uint32_t i1 = !(j1 ^ s), i2 = !(j2 ^ s);
		uint32_t imm = (s << 24) | (i1 << 23) | (i2 << 22) | ((op & 0x3FFu) << 12) | ((op2 & 0x7FFu) << 1);

		e->r[14] = (pc + 4) | 1u;
		e->r[15] = pc + 4 + sext(imm, 25);
		return EX_OK;
	}
	if (op == 0xF3BFu && (op2 & 0xFFF0u) >= 0x8F40u && (op2 & 0xFFF0u) <= 0x8F60u) {
		e->r[15] = pc + 4; /* DSB, DMB, ISB */
		return EX_OK;
	}
	return EX_FAULT;
}

/* Execute the instruction at PC. */
static int step(struct ex *e)
{
	uint32_t *r = e->r, pc = r[15], pcv = pc + 4, v;
	uint16_t op;
	unsigned rd, rm, rn, imm;
	int rc = EX_OK;

	if (!ld(e, pc, 2, &v))
		return EX_FAULT;
	op = (uint16_t)v;
	r[15] = pc + 2;
	rd = op & 7u;
	rm = (op >> 3) & 7u;
	switch (op >> 11) {
	case 0x00: case 0x01: case 0x02: /* LSL LSR ASR #imm5 */
		imm = (op >> 6) & 31u;
		if ((op >> 11) == 0 && imm == 0) {
			v = r[rm];
		} else {
			unsigned kind = op >> 11;

			v = shift_reg(e, kind, r[rm], imm ? imm : 32);
		}
		set_nz(e, v);
		r[rd] = v;
		break;
	case 0x03: { /* ADDS/SUBS register or #imm3 */
		uint32_t b = (op & 0x400u) ? (op >> 6) & 7u : r[(op >> 6) & 7u];

		rn = rm;
		r[rd] = (op & 0x200u) ? addc(e, r[rn], ~b, true, true) : addc(e, r[rn], b, false, true);
		break;
	}
	case 0x04: /* MOVS #imm8 */
		rd = (op >> 8) & 7u;
		r[rd] = op & 0xFFu;
		set_nz(e, r[rd]);
		break;
	case 0x05: /* CMP #imm8 */
		addc(e, r[(op >> 8) & 7u], ~(uint32_t)(op & 0xFFu), true, true);
		break;
	case 0x06: /* ADDS #imm8 */
		rd = (op >> 8) & 7u;
		r[rd] = addc(e, r[rd], op & 0xFFu, false, true);
		break;
	case 0x07: /* SUBS #imm8 */
		rd = (op >> 8) & 7u;
		r[rd] = addc(e, r[rd], ~(uint32_t)(op & 0xFFu), true, true);
		break;
	case 0x08:
		rc = (op & 0x400u) ? special_data(e, op, pcv) : data_processing(e, op);
		break;
	case 0x09: /* LDR literal */
		rc = load_store(e, 4, (pcv & ~3u) + (op & 0xFFu) * 4u, (op >> 8) & 7u);
		break;
	case 0x0A: case 0x0B: /* register offset */
		rc = load_store(e, (op >> 9) & 7u, r[rm] + r[(op >> 6) & 7u], rd);
		break;
	case 0x0C: rc = load_store(e, 0, r[rm] + ((op >> 6) & 31u) * 4u, rd); break;
	case 0x0D: rc = load_store(e, 4, r[rm] + ((op >> 6) & 31u) * 4u, rd); break;
	case 0x0E: rc = load_store(e, 2, r[rm] + ((op >> 6) & 31u), rd); break;
	case 0x0F: rc = load_store(e, 6, r[rm] + ((op >> 6) & 31u), rd); break;
	case 0x10: rc = load_store(e, 1, r[rm] + ((op >> 6) & 31u) * 2u, rd); break;
	case 0x11: rc = load_store(e, 5, r[rm] + ((op >> 6) & 31u) * 2u, rd); break;
	case 0x12: rc = load_store(e, 0, r[13] + (op & 0xFFu) * 4u, (op >> 8) & 7u); break;
	case 0x13: rc = load_store(e, 4, r[13] + (op & 0xFFu) * 4u, (op >> 8) & 7u); break;
	case 0x14: r[(op >> 8) & 7u] = (pcv & ~3u) + (op & 0xFFu) * 4u; break;   /* ADR */
	case 0x15: r[(op >> 8) & 7u] = r[13] + (op & 0xFFu) * 4u; break;         /* ADD rd, SP */
	case 0x16: case 0x17:
		rc = misc(e, op);
		if (rc == EX_HALT)
			r[15] = pc; /* a BKPT halts on itself */
		break;
	case 0x18: case 0x19:
		rc = multiple(e, op);
		break;
	case 0x1A: case 0x1B: { /* B<cond>, UDF, SVC */
		unsigned cond = (op >> 8) & 0xFu;

		if (cond >= 0xE)
			return EX_FAULT;
		if (cond_pass(e, cond))
			r[15] = pcv + sext((op & 0xFFu) << 1, 9);
		break;
	}
	case 0x1C: /* B */
		r[15] = pcv + sext((op & 0x7FFu) << 1, 12);
		break;
	default:
		rc = wide(e, op, pc);
		break;
	}
	if (rc == EX_FAULT)
		r[15] = pc;
	return rc;
}

int sim_core_exec(struct sim_chip *c, unsigned budget, bool *progress)
{
	struct sim_core *k = &c->core;
	struct ex e = { .c = c, .r = k->regs };
	uint32_t before[15];
	unsigned i;

	*progress = false;
	memcpy(before, k->regs, sizeof(before));
	for (i = 0; i < budget && k->executing && !e.started_busy; i++) {
		int rc = step(&e);

		if (k->sysresetreq) { /* the code wrote AIRCR.SYSRESETREQ */
			k->sysresetreq = false;
			sim_system_reset(c);
			break;
		}
		if (rc == EX_HALT) {
			k->executing = false;
			k->halted = true;
			k->dfsr |= 0x2u; /* BKPT */
		} else if (rc == EX_FAULT) {
			k->executing = false;
			k->lockup = true;
		}
	}
	*progress = e.stored || memcmp(before, k->regs, sizeof(before)) != 0;
	c->core_stopped_busy = e.started_busy;
	c->core_computing = *progress && !e.stored;
	return (int)i;
}
