/*
 * Chip family "imprint-vb1" (memory map: sim/vb1_map.h, docs/VBOARD.md):
 * flash and fuse controllers, OTP, the lifecycle word.
 */
#include <stdlib.h>
#include <string.h>

#include "chip_int.h"
#include "imprint/log.h"
#include "imprint/util.h"
#include "sim/vb1_map.h"

/* PERSISTED: layout of a vb1 STATE/nv.img, version 1 (docs/VBOARD.md). */
#define NV_FLASH_OFF SIM_NV_HDR_SIZE
#define NV_OTP_OFF (NV_FLASH_OFF + VB1_FLASH_SIZE)
#define NV_SIZE (NV_OTP_OFF + 4096u)

_Static_assert(NV_SIZE == 270336, "nv.img size");

#define FLASHC_CR_BITS (VB1_FLASHC_CR_PG | VB1_FLASHC_CR_PER | VB1_FLASHC_CR_MER | VB1_FLASHC_CR_OTPPG)
#define FUSE_ALL (VB1_FUSE_DEBUG_LOCK | VB1_FUSE_BOOT_LOCK)

struct vb1 {
	uint8_t sram[VB1_SRAM_SIZE];
	uint32_t fuses_eff;
	uint32_t flash_sr, flash_cr, flash_ar;
	int key_stage;         /* 0 locked, 1 KEY1 seen, 2 unlocked */
	bool key_lockout;      /* wrong key sequence: locked until reset */
	uint32_t fuse_sr;
	uint64_t fuse_busy_until;
};

static struct vb1 *st(const struct sim_chip *c)
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

static void vb1_init_image(uint8_t *img, const struct sim_chip_opts *o)
{
	(void)o;
	memset(img + NV_FLASH_OFF, 0xFF, VB1_FLASH_SIZE);
}

static imp_err vb1_attach(struct sim_chip *c, const struct sim_chip_opts *o)
{
	(void)o;
	c->fam_state = calloc(1, sizeof(struct vb1));
	return c->fam_state ? IMP_OK : IMP_ERR_NOMEM;
}

static void vb1_detach(struct sim_chip *c)
{
	free(c->fam_state);
	c->fam_state = NULL;
}

static void vb1_reset(struct sim_chip *c)
{
	struct vb1 *s = st(c);
	uint32_t f = sim_hdr(c)->fuses;

	if (c->faults & SIM_FAULT_TAMPER_LOCK)
		f &= ~VB1_FUSE_DEBUG_LOCK;
	s->fuses_eff = f;
	s->flash_sr = 0;
	s->flash_cr = 0;
	s->flash_ar = 0;
	s->key_stage = 0;
	s->key_lockout = false;
	s->fuse_sr = 0;
	s->fuse_busy_until = 0;
}

static bool vb1_locked(const struct sim_chip *c)
{
	return (st(c)->fuses_eff & VB1_FUSE_DEBUG_LOCK) != 0;
}

/* ---- memory map ---- */

enum region {
	R_NONE, R_FLASH, R_SRAM, R_SYS, R_OTP, R_FLASHC, R_FUSEC,
};

struct span {
	enum region r;
	uint32_t base;
	uint32_t size;
};

static const struct span spans[] = {
	{ R_FLASH, VB1_FLASH_BASE, VB1_FLASH_SIZE },
	{ R_SRAM, VB1_SRAM_BASE, VB1_SRAM_SIZE },
	{ R_SYS, VB1_SYS_BASE, VB1_OTP_BASE - VB1_SYS_BASE },
	{ R_OTP, VB1_OTP_BASE, VB1_OTP_SIZE },
	{ R_FLASHC, VB1_FLASHC_BASE, 0x400 },  /* registers beyond 0x10 read 0 */
	{ R_FUSEC, VB1_FUSEC_BASE, 0x400 },
};

static const struct span *find_span(uint64_t addr)
{
	for (size_t i = 0; i < IMP_ARRAY_SIZE(spans); i++)
		if (addr >= spans[i].base && addr < (uint64_t)spans[i].base + spans[i].size)
			return &spans[i];
	return NULL;
}

static uint32_t vb1_lifecycle(const struct sim_chip *c)
{
	if (st(c)->fuses_eff & VB1_FUSE_DEBUG_LOCK)
		return 3;
	return sim_hdr(c)->personalised ? 2 : 1;
}

static bool fuse_busy(const struct sim_chip *c)
{
	return st(c)->fuse_busy_until && imp_now_ns() < st(c)->fuse_busy_until;
}

static void regs_image(struct sim_chip *c, enum region r, uint8_t out[16])
{
	struct vb1 *s = st(c);
	uint32_t w[4] = { 0 };

	if (r == R_FLASHC) {
		w[0] = 0; /* KEYR reads 0 */
		w[1] = s->flash_sr;
		w[2] = s->flash_cr | (s->key_stage == 2 ? 0 : VB1_FLASHC_CR_LOCK);
		w[3] = s->flash_ar;
	} else {
		w[0] = 0;
		w[1] = 0;
		w[2] = (s->fuse_sr & ~VB1_FUSEC_SR_BSY) | (fuse_busy(c) ? VB1_FUSEC_SR_BSY : 0);
		w[3] = sim_hdr(c)->fuses;
	}
	memcpy(out, w, 16);
}

static imp_err vb1_read(struct sim_chip *chip, uint32_t addr, uint8_t *buf, size_t n)
{
	uint64_t a = addr, end = (uint64_t)addr + n;
	bool first_flash = true;

	/* Check the whole range first: nothing is done on a partly unmapped one. */
	for (uint64_t p = a; p < end;) {
		const struct span *s = find_span(p);

		if (!s)
			return IMP_ERR_PROBE;
		p = (uint64_t)s->base + s->size;
	}
	while (a < end) {
		const struct span *s = find_span(a);
		uint32_t off = (uint32_t)(a - s->base);
		size_t k = (size_t)((uint64_t)s->base + s->size - a);
		uint8_t img[20];
		size_t i;

		if (k > end - a)
			k = (size_t)(end - a);
		switch (s->r) {
		case R_FLASH:
			memcpy(buf, flash_mem(chip) + off, k);
			if ((chip->faults & SIM_FAULT_TAMPER_READBACK) && first_flash)
				buf[0] ^= 0x01;
			first_flash = false;
			break;
		case R_SRAM:
			memcpy(buf, st(chip)->sram + off, k);
			break;
		case R_SYS: {
			uint32_t lc = vb1_lifecycle(chip);

			memcpy(img, sim_hdr(chip)->uid, 16);
			memcpy(img + 16, &lc, 4);
			for (i = 0; i < k; i++)
				buf[i] = off + i < sizeof(img) ? img[off + i] : 0;
			break;
		}
		case R_OTP:
			memcpy(buf, otp_mem(chip) + off, k);
			break;
		case R_FLASHC:
		case R_FUSEC:
			regs_image(chip, s->r, img);
			for (i = 0; i < k; i++)
				buf[i] = off + i < 16 ? img[off + i] : 0;
			break;
		case R_NONE:
			break;
		}
		buf += k;
		a += k;
	}
	return IMP_OK;
}

/* Program one flash word; returns false (and sets an SR error) to stop. */
static bool program_word(struct sim_chip *c, uint8_t *dst, uint32_t val, bool otp)
{
	struct vb1 *s = st(c);
	uint32_t old = sim_load32(dst);

	if (s->fuses_eff & VB1_FUSE_BOOT_LOCK) {
		s->flash_sr |= VB1_FLASHC_SR_WRPERR;
		return false;
	}
	if (!otp && old != 0xFFFFFFFFu) {
		s->flash_sr |= VB1_FLASHC_SR_PGERR;
		return false;
	}
	sim_nv_write_point();
	sim_store32(dst, otp ? (old | val) : val);
	return true;
}

static void erase(struct sim_chip *c, uint32_t off, uint32_t len, double ms)
{
	struct vb1 *s = st(c);

	if (s->fuses_eff & VB1_FUSE_BOOT_LOCK) {
		s->flash_sr |= VB1_FLASHC_SR_WRPERR;
		return;
	}
	sim_nv_write_point();
	for (uint32_t i = 0; i < len; i += 4)
		sim_store32(flash_mem(c) + off + i, 0xFFFFFFFFu);
	s->flash_sr |= VB1_FLASHC_SR_EOP;
	sim_charge_us(c, ms * 1000.0);
}

static void write_flashc(struct sim_chip *c, uint32_t reg, uint32_t v)
{
	struct vb1 *s = st(c);

	switch (reg) {
	case 0x0: /* KEYR */
		if (s->key_stage == 2)
			break;
		if (!s->key_lockout && s->key_stage == 0 && v == VB1_FLASHC_KEY1) {
			s->key_stage = 1;
		} else if (!s->key_lockout && s->key_stage == 1 && v == VB1_FLASHC_KEY2) {
			s->key_stage = 2;
		} else {
			s->key_stage = 0;
			s->key_lockout = true;
			IMP_DEBUG("flash: wrong key sequence, locked until reset");
		}
		break;
	case 0x4: /* SR: write 1 to clear */
		s->flash_sr &= ~(v & (VB1_FLASHC_SR_PGERR | VB1_FLASHC_SR_WRPERR | VB1_FLASHC_SR_EOP));
		break;
	case 0x8: /* CR */
		if (v & VB1_FLASHC_CR_LOCK) {
			s->key_stage = 0;
			s->flash_cr = 0;
			break;
		}
		if (s->key_stage != 2)
			break;
		s->flash_cr = v & FLASHC_CR_BITS;
		if (v & VB1_FLASHC_CR_STRT) {
			if (s->flash_cr & VB1_FLASHC_CR_MER) {
				__atomic_add_fetch(&c->mass_erases, 1, __ATOMIC_RELAXED);
				erase(c, 0, VB1_FLASH_SIZE, SIM_LAT_MASS_ERASE_MS);
			} else if (s->flash_cr & VB1_FLASHC_CR_PER) {
				uint32_t ar = s->flash_ar;

				if (ar < VB1_FLASH_BASE || ar >= VB1_FLASH_BASE + VB1_FLASH_SIZE) {
					s->flash_sr |= VB1_FLASHC_SR_PGERR;
					break;
				}
				ar = (ar - VB1_FLASH_BASE) & ~(VB1_FLASH_PAGE - 1);
				erase(c, ar, VB1_FLASH_PAGE, SIM_LAT_PAGE_ERASE_MS);
			}
		}
		break;
	case 0xC: /* AR */
		s->flash_ar = v;
		break;
	}
}

static void write_fusec(struct sim_chip *c, uint32_t reg, uint32_t v)
{
	struct vb1 *s = st(c);

	switch (reg) {
	case 0x0: /* KEYR */
		if (v == VB1_FUSEC_KEY)
			s->fuse_sr |= VB1_FUSEC_SR_ARMED;
		else
			s->fuse_sr &= ~VB1_FUSEC_SR_ARMED;
		break;
	case 0x4: /* CMD */
		if (fuse_busy(c) || !(s->fuse_sr & VB1_FUSEC_SR_ARMED) ||
		    v == 0 || (v & ~FUSE_ALL)) {
			s->fuse_sr |= VB1_FUSEC_SR_ERR;
			s->fuse_sr &= ~VB1_FUSEC_SR_ARMED;
			break;
		}
		s->fuse_sr &= ~VB1_FUSEC_SR_ARMED;
		if (c->faults & SIM_FAULT_FUSE_FAIL) {
			c->faults &= ~SIM_FAULT_FUSE_FAIL;
			s->fuse_sr |= VB1_FUSEC_SR_ERR;
			IMP_INFO("fault: fuse burn 0x%x failed (injected)", v);
			break;
		}
		sim_nv_write_point();
		sim_store32(&sim_hdr(c)->fuses, sim_hdr(c)->fuses | v);
		if (c->latency > 0)
			s->fuse_busy_until = imp_now_ns() + sim_busy_ns(c, SIM_LAT_FUSE_BURN_MS * 1000.0);
		break;
	case 0x8: /* SR: write 1 to clear ERR */
		s->fuse_sr &= ~(v & VB1_FUSEC_SR_ERR);
		break;
	default: /* STATE is read-only */
		break;
	}
}

static imp_err vb1_write(struct sim_chip *chip, uint32_t addr, const uint8_t *buf, size_t n)
{
	struct vb1 *st_ = st(chip);
	uint64_t a = addr, end = (uint64_t)addr + n;
	size_t programmed = 0;
	bool stop = false;

	/* Validate everything before acting: a bus error does nothing. */
	for (uint64_t p = a; p < end;) {
		const struct span *s = find_span(p);
		uint64_t send;
		bool ok = s != NULL;

		if (ok) {
			send = (uint64_t)s->base + s->size;
			if (send > end)
				send = end;
			switch (s->r) {
			case R_SYS:
				ok = false;
				break;
			case R_FLASH:
			case R_OTP:
			case R_FLASHC:
			case R_FUSEC:
				ok = p % 4 == 0 && (send - p) % 4 == 0;
				if (s->r == R_FLASH)
					ok = ok && (st_->flash_cr & VB1_FLASHC_CR_PG) && st_->key_stage == 2;
				if (s->r == R_OTP)
					ok = ok && (st_->flash_cr & VB1_FLASHC_CR_OTPPG) && st_->key_stage == 2;
				break;
			default:
				break;
			}
			p = send;
		}
		if (!ok)
			return IMP_ERR_PROBE;
	}
	while (a < end) {
		const struct span *s = find_span(a);
		uint32_t off = (uint32_t)(a - s->base);
		size_t k = (size_t)((uint64_t)s->base + s->size - a);

		if (k > end - a)
			k = (size_t)(end - a);
		switch (s->r) {
		case R_SRAM:
			memcpy(st_->sram + off, buf, k);
			break;
		case R_FLASH:
		case R_OTP:
			for (size_t i = 0; i < k && !stop; i += 4) {
				uint8_t *mem = s->r == R_FLASH ? flash_mem(chip) : otp_mem(chip);

				if (!program_word(chip, mem + off + i, sim_load32(buf + i), s->r == R_OTP))
					stop = true;
				else
					programmed += 4;
			}
			if (!stop)
				st_->flash_sr |= VB1_FLASHC_SR_EOP;
			break;
		case R_FLASHC:
		case R_FUSEC:
			for (size_t i = 0; i < k; i += 4) {
				if (s->r == R_FLASHC)
					write_flashc(chip, off + (uint32_t)i, sim_load32(buf + i));
				else
					write_fusec(chip, off + (uint32_t)i, sim_load32(buf + i));
			}
			break;
		default:
			break;
		}
		buf += k;
		a += k;
	}
	sim_charge_us(chip, (double)programmed * 1e6 / SIM_LAT_FLASH_BYTES_PER_S);
	return IMP_OK;
}

static uint32_t vb1_fuses(const struct sim_chip *c)
{
	return sim_hdr(c)->fuses;
}

static uint32_t vb1_fuses_effective(const struct sim_chip *c)
{
	return st(c)->fuses_eff;
}

static void vb1_set_faults(struct sim_chip *c, uint32_t faults)
{
	if (faults & SIM_FAULT_TAMPER_LOCK)
		st(c)->fuses_eff &= ~VB1_FUSE_DEBUG_LOCK;
}

const struct sim_chip_family sim_family_vb1 = {
	.name = "imprint-vb1",
	.nv_magic = "IMPVB1NV",
	.nv_version = 1,
	.nv_size = NV_SIZE,
	.vector_table = VB1_FLASH_BASE,
	.core_debug = false,
	.init_image = vb1_init_image,
	.attach = vb1_attach,
	.detach = vb1_detach,
	.reset = vb1_reset,
	.booted = NULL,
	.debug_locked = vb1_locked,
	.read = vb1_read,
	.write = vb1_write,
	.lifecycle = vb1_lifecycle,
	.fuses = vb1_fuses,
	.fuses_effective = vb1_fuses_effective,
	.set_faults = vb1_set_faults,
	.ap_read = NULL,
	.ap_write = NULL,
	.describe = NULL,
};
