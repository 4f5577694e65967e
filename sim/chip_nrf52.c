/*
 * Chip family "nordic-nrf52840", following Nordic's nRF52840 Product
 * Specification v1.7: FICR (read-only factory information), UICR (user
 * configuration, programmed through the NVMC), NVMC (CONFIG REN/WEN/EEN,
 * READY, READYNEXT, ERASEPAGE, ERASEALL, ERASEUICR; bits only go 1 -> 0
 * without an erase; writes ignored unless CONFIG=WEN; READY low for the
 * operation's time), RAM, the APPROTECT peripheral of the hardened
 * revision, and the CTRL-AP (access port #1: RESET, ERASEALL,
 * ERASEALLSTATUS, APPROTECTSTATUS, IDR).
 *
 * Access port protection is evaluated at every reset:
 *   legacy (INFO.VARIANT AAD0): protected iff UICR APPROTECT.PALL != 0xFF;
 *   hardened (AAF0): protected after every reset; opened only when PALL
 *   reads 0x5A (HwDisabled) and the firmware writes APPROTECT.DISABLE =
 *   0x5A (SwDisabled) while it boots; writing FORCEPROTECT = 0 protects it
 *   at once until the next reset.
 * A CTRL-AP ERASEALL erases flash, UICR and RAM and opens the port until
 * the next reset. The "firmware" is modelled: when the flash holds an image
 * (the reset vector at 0x4 is not erased) it boots and, on the hardened
 * revision, writes APPROTECT.DISABLE (unless fw_keeps_approtect).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "chip_int.h"
#include "imprint/log.h"
#include "imprint/util.h"
#include "sim/nrf52_map.h"
#include "sim/vb1_map.h"

/* PERSISTED: layout of an nRF52840 STATE/nv.img, version 1 (docs/VBOARD.md):
 * the common header, the variant word at 40, flash at 4096, UICR after it. */
#define NV_VARIANT_OFF 40u
#define NV_FLASH_OFF SIM_NV_HDR_SIZE
#define NV_UICR_OFF (NV_FLASH_OFF + NRF_FLASH_SIZE)
#define NV_SIZE (NV_UICR_OFF + NRF_UICR_SIZE)

_Static_assert(NV_SIZE == 1056768, "nRF52840 nv.img size");

#define PERIPH_BASE 0x40000000u
#define PERIPH_SIZE 0x00040000u
#define GPIO_BASE 0x50000000u
#define GPIO_SIZE 0x00001000u

struct nrf {
	uint8_t ram[NRF_RAM_SIZE];
	bool hardened;
	bool fw_keeps_approtect;
	bool ap_locked;          /* access port protection in force */
	bool forceprotect;       /* APPROTECT.FORCEPROTECT written since reset */
	uint32_t config;         /* NVMC CONFIG */
	uint64_t busy_until;     /* NVMC READY low until then (ns) */
	/* CTRL-AP */
	uint32_t ctrl_reset;
	uint32_t ctrl_eraseall;
	uint64_t eraseall_until; /* ERASEALLSTATUS busy until then; 0: idle */
};

static struct nrf *st(const struct sim_chip *c)
{
	return c->fam_state;
}

static uint8_t *flash_mem(const struct sim_chip *c)
{
	return c->nv + NV_FLASH_OFF;
}

static uint8_t *uicr_mem(const struct sim_chip *c)
{
	return c->nv + NV_UICR_OFF;
}

static uint32_t variant(const struct sim_chip *c)
{
	return sim_load32(c->nv + NV_VARIANT_OFF);
}

static uint32_t pall(const struct sim_chip *c)
{
	return sim_load32(uicr_mem(c) + (NRF_UICR_APPROTECT - NRF_UICR_BASE)) & 0xFFu;
}

static void nrf_init_image(uint8_t *img, const struct sim_chip_opts *o)
{
	struct sim_nv_hdr *h = (struct sim_nv_hdr *)img;
	uint32_t var = NRF_VARIANT_AAD0;

	if (o->revision && strcasecmp(o->revision, "hardened") == 0)
		var = NRF_VARIANT_AAF0;
	/* The unique ID is DEVICEID[0..1]: 64 bits; the agent's 16 bytes end in 0. */
	memset(h->uid + 8, 0, 8);
	memcpy(img + NV_VARIANT_OFF, &var, 4);
	memset(img + NV_FLASH_OFF, 0xFF, NRF_FLASH_SIZE);
	memset(img + NV_UICR_OFF, 0xFF, NRF_UICR_SIZE);
}

static imp_err nrf_attach(struct sim_chip *c, const struct sim_chip_opts *o)
{
	struct nrf *s = calloc(1, sizeof(*s));
	uint32_t var = variant(c);

	if (!s)
		return IMP_ERR_NOMEM;
	if (var != NRF_VARIANT_AAD0 && var != NRF_VARIANT_AAF0) {
		free(s);
		IMP_ERROR("nv.img: unknown nRF52840 variant 0x%08x, move the image away", var);
		return IMP_ERR_IO;
	}
	s->hardened = var == NRF_VARIANT_AAF0;
	if (o->revision && strcasecmp(o->revision, "legacy") != 0 &&
	    strcasecmp(o->revision, "hardened") != 0) {
		free(s);
		IMP_ERROR("unknown nRF52840 revision '%s' (known: legacy, hardened)", o->revision);
		return IMP_ERR_USAGE;
	}
	if (o->revision && s->hardened != (strcasecmp(o->revision, "hardened") == 0))
		IMP_WARN("%s: the stored board is the %s revision, not %s: keeping the stored one",
			 c->state_dir ? c->state_dir : "board", s->hardened ? "hardened" : "legacy",
			 o->revision);
	s->fw_keeps_approtect = o->fw_keeps_approtect;
	c->fam_state = s;
	return IMP_OK;
}

static void nrf_detach(struct sim_chip *c)
{
	free(c->fam_state);
	c->fam_state = NULL;
}

static bool protect_configured(const struct sim_chip *c)
{
	uint32_t p = pall(c);

	if (st(c)->hardened)
		return p != NRF_APPROTECT_PALL_ERASED && p != NRF_APPROTECT_PALL_HWDISABLED;
	return p != NRF_APPROTECT_PALL_ERASED;
}

static void nrf_reset(struct sim_chip *c)
{
	struct nrf *s = st(c);

	s->config = NRF_NVMC_CONFIG_REN;
	s->forceprotect = false;
	if (s->hardened)
		s->ap_locked = true;
	else
		s->ap_locked = pall(c) != NRF_APPROTECT_PALL_ERASED;
	if (c->faults & SIM_FAULT_TAMPER_LOCK)
		s->ap_locked = false;
}

static void approtect_disable(struct sim_chip *c, uint32_t v)
{
	struct nrf *s = st(c);

	if (s->hardened && v == NRF_APPROTECT_SWDISABLE && !s->forceprotect &&
	    pall(c) == NRF_APPROTECT_PALL_HWDISABLED)
		s->ap_locked = false;
}

static void nrf_booted(struct sim_chip *c)
{
	struct nrf *s = st(c);

	if (sim_load32(flash_mem(c) + 4) == 0xFFFFFFFFu)
		return; /* erased flash: no firmware runs */
	if (!s->fw_keeps_approtect)
		approtect_disable(c, NRF_APPROTECT_SWDISABLE);
}

/* Settle an ERASEALL started through the CTRL-AP whose time is up. */
static void settle(const struct sim_chip *cc)
{
	struct nrf *s = st(cc);

	if (s->eraseall_until && imp_now_ns() >= s->eraseall_until) {
		s->eraseall_until = 0;
		s->ap_locked = false;
	}
}

static bool nrf_locked(const struct sim_chip *c)
{
	settle(c);
	return st(c)->ap_locked || st(c)->eraseall_until || st(c)->ctrl_reset;
}

/* The bus stalls while the NVMC is busy (sim_busy_wait). */
static void wait_ready(struct sim_chip *c)
{
	sim_busy_wait(st(c)->busy_until);
}

/* Queue an operation of us microseconds after the ones still running. */
static void set_busy(struct sim_chip *c, double us)
{
	sim_busy_queue(c, &st(c)->busy_until, us);
}

static bool nvmc_ready(const struct sim_chip *c)
{
	return imp_now_ns() >= st(c)->busy_until;
}

/* ---- memory map ---- */

enum region {
	R_FLASH, R_FICR, R_UICR, R_RAM, R_CODE_RAM, R_PERIPH, R_GPIO, R_PPB,
};

struct span {
	enum region r;
	uint32_t base;
	uint32_t size;
};

static const struct span spans[] = {
	{ R_FLASH, NRF_FLASH_BASE, NRF_FLASH_SIZE },
	{ R_CODE_RAM, NRF_CODE_RAM_BASE, NRF_RAM_SIZE },
	{ R_FICR, NRF_FICR_BASE, 0x1000 },
	{ R_UICR, NRF_UICR_BASE, NRF_UICR_SIZE },
	{ R_RAM, NRF_RAM_BASE, NRF_RAM_SIZE },
	{ R_PERIPH, PERIPH_BASE, PERIPH_SIZE },
	{ R_GPIO, GPIO_BASE, GPIO_SIZE },
	{ R_PPB, SIM_PPB_BASE, SIM_PPB_SIZE },
};

static const struct span *find_span(uint64_t addr)
{
	for (size_t i = 0; i < IMP_ARRAY_SIZE(spans); i++)
		if (addr >= spans[i].base && addr < (uint64_t)spans[i].base + spans[i].size)
			return &spans[i];
	return NULL;
}

/* Validate [addr, addr+n): every byte mapped. */
static bool mapped(uint32_t addr, size_t n)
{
	uint64_t end = (uint64_t)addr + n;

	for (uint64_t p = addr; p < end;) {
		const struct span *s = find_span(p);

		if (!s)
			return false;
		p = (uint64_t)s->base + s->size;
	}
	return true;
}

static uint32_t ficr_word(const struct sim_chip *c, uint32_t off)
{
	const uint8_t *uid = sim_hdr(c)->uid;
	uint32_t w;

	switch (off) {
	case 0x010: return NRF_FLASH_PAGE;
	case 0x014: return NRF_FLASH_SIZE / NRF_FLASH_PAGE;
	case 0x060: return sim_load32(uid);
	case 0x064: return sim_load32(uid + 4);
	case 0x0A0: return 0xFFFFFFFFu;          /* DEVICEADDRTYPE: random */
	case 0x0A4: return sim_load32(uid) ^ 0x5A5A5A5Au;
	case 0x0A8: return (sim_load32(uid + 4) ^ 0xA5A5u) | 0xFFFF0000u;
	case 0x100: return NRF_PART_52840;
	case 0x104: return variant(c);
	case 0x108: return 0x2004u;              /* QI: aQFN73 */
	case 0x10C: return NRF_RAM_SIZE / 1024;  /* K256 */
	case 0x110: return NRF_FLASH_SIZE / 1024; /* K1024 */
	default:
		break;
	}
	if (off >= 0x080 && off < 0x0A0) {
		/* ER[0..3], IR[0..3]: per-device keys, derived from the ID here. */
		w = sim_load32(uid + ((off >> 2) & 1) * 4);
		return w ^ (0x9E3779B9u * (off + 1));
	}
	return 0xFFFFFFFFu; /* reserved words read as erased */
}

static uint32_t periph_word(struct sim_chip *c, uint32_t a)
{
	struct nrf *s = st(c);

	switch (a) {
	case NRF_NVMC_READY:
	case NRF_NVMC_READYNEXT:
		return nvmc_ready(c) ? 1u : 0u;
	case NRF_NVMC_CONFIG:
		return s->config;
	case NRF_APPROTECT_FORCEPROTECT:
		return s->hardened ? (s->forceprotect ? 0u : 0xFFFFFFFFu) : 0;
	case NRF_APPROTECT_DISABLE:
		return 0;
	default:
		return 0;
	}
}

static uint64_t nrf_busy_until(const struct sim_chip *c)
{
	return st(c)->busy_until;
}

static uint8_t *nrf_ram_span(struct sim_chip *c, uint32_t addr, uint32_t *base, uint32_t *size)
{
	if (addr < NRF_RAM_BASE || addr - NRF_RAM_BASE >= NRF_RAM_SIZE)
		return NULL;
	*base = NRF_RAM_BASE;
	*size = NRF_RAM_SIZE;
	return st(c)->ram;
}

static imp_err nrf_read(struct sim_chip *c, uint32_t addr, uint8_t *buf, size_t n)
{
	uint64_t a = addr, end = (uint64_t)addr + n;
	bool first_flash = true;

	if (!mapped(addr, n))
		return IMP_ERR_PROBE;
	while (a < end) {
		const struct span *s = find_span(a);
		uint32_t off = (uint32_t)(a - s->base);
		size_t k = (size_t)((uint64_t)s->base + s->size - a);

		if (k > end - a)
			k = (size_t)(end - a);
		switch (s->r) {
		case R_FLASH:
			wait_ready(c);
			memcpy(buf, flash_mem(c) + off, k);
			if ((c->faults & SIM_FAULT_TAMPER_READBACK) && first_flash)
				buf[0] ^= 0x01;
			first_flash = false;
			break;
		case R_UICR:
			wait_ready(c);
			memcpy(buf, uicr_mem(c) + off, k);
			break;
		case R_FICR:
			for (size_t i = 0; i < k; i++) {
				uint32_t o = off + (uint32_t)i;

				buf[i] = (uint8_t)(ficr_word(c, o & ~3u) >> (8 * (o & 3u)));
			}
			break;
		case R_RAM:
		case R_CODE_RAM:
			memcpy(buf, st(c)->ram + off, k);
			break;
		case R_PERIPH:
		case R_GPIO:
			for (size_t i = 0; i < k; i++) {
				uint32_t o = (uint32_t)a + (uint32_t)i;

				buf[i] = (uint8_t)(periph_word(c, o & ~3u) >> (8 * (o & 3u)));
			}
			break;
		case R_PPB:
			sim_core_ppb_read(c, (uint32_t)a, buf, k);
			break;
		}
		buf += k;
		a += k;
	}
	return IMP_OK;
}

static void erase_range(struct sim_chip *c, uint8_t *p, size_t n, double ms)
{
	sim_nv_write_point();
	for (size_t i = 0; i < n; i += 4)
		sim_store32(p + i, 0xFFFFFFFFu);
	set_busy(c, ms * 1000.0);
}

static void nvmc_write(struct sim_chip *c, uint32_t a, uint32_t v)
{
	struct nrf *s = st(c);

	wait_ready(c);
	switch (a) {
	case NRF_NVMC_CONFIG:
		s->config = v & 3u;
		break;
	case NRF_NVMC_ERASEPAGE:
	case NRF_NVMC_BASE + 0x510: /* ERASEPCR0, the same for code pages */
		if (s->config != NRF_NVMC_CONFIG_EEN || v >= NRF_FLASH_SIZE || v % NRF_FLASH_PAGE) {
			IMP_DEBUG("nvmc: ERASEPAGE 0x%08x ignored (CONFIG %u)", v, s->config);
			break;
		}
		erase_range(c, flash_mem(c) + v, NRF_FLASH_PAGE, SIM_NRF_LAT_ERASEPAGE_MS);
		break;
	case NRF_NVMC_ERASEALL:
		if (s->config != NRF_NVMC_CONFIG_EEN || !(v & 1u))
			break;
		__atomic_add_fetch(&c->mass_erases, 1, __ATOMIC_RELAXED);
		sim_nv_write_point();
		for (size_t i = 0; i < NRF_FLASH_SIZE; i += 4)
			sim_store32(flash_mem(c) + i, 0xFFFFFFFFu);
		for (size_t i = 0; i < NRF_UICR_SIZE; i += 4)
			sim_store32(uicr_mem(c) + i, 0xFFFFFFFFu);
		set_busy(c, SIM_NRF_LAT_ERASEALL_MS * 1000.0);
		break;
	case NRF_NVMC_ERASEUICR:
		if (s->config != NRF_NVMC_CONFIG_EEN || !(v & 1u))
			break;
		erase_range(c, uicr_mem(c), NRF_UICR_SIZE, SIM_NRF_LAT_ERASEPAGE_MS);
		break;
	default:
		break;
	}
}

/* One 32-bit word into flash or UICR: only with CONFIG=WEN, bits 1 -> 0. */
static size_t program_word(struct sim_chip *c, uint8_t *dst, uint32_t v)
{
	uint32_t old;

	wait_ready(c);
	if (st(c)->config != NRF_NVMC_CONFIG_WEN) {
		IMP_DEBUG("nvmc: write ignored, CONFIG is %u, not WEN", st(c)->config);
		return 0;
	}
	old = sim_load32(dst);
	sim_nv_write_point();
	sim_store32(dst, old & v);
	set_busy(c, SIM_NRF_LAT_WRITE_US);
	return 4;
}

static imp_err nrf_write(struct sim_chip *c, uint32_t addr, const uint8_t *buf, size_t n)
{
	uint64_t a = addr, end = (uint64_t)addr + n;

	if (!mapped(addr, n))
		return IMP_ERR_PROBE;
	/* Validate first: a bus error does nothing. */
	for (uint64_t p = a; p < end;) {
		const struct span *s = find_span(p);
		uint64_t send = (uint64_t)s->base + s->size;

		if (send > end)
			send = end;
		if (s->r == R_FICR)
			return IMP_ERR_PROBE;
		if ((s->r == R_FLASH || s->r == R_UICR) && (p % 4 || (send - p) % 4))
			return IMP_ERR_PROBE; /* the NVMC takes whole words only */
		p = send;
	}
	while (a < end) {
		const struct span *s = find_span(a);
		uint32_t off = (uint32_t)(a - s->base);
		size_t k = (size_t)((uint64_t)s->base + s->size - a);

		if (k > end - a)
			k = (size_t)(end - a);
		switch (s->r) {
		case R_FLASH:
		case R_UICR:
			for (size_t i = 0; i < k; i += 4) {
				uint8_t *mem = s->r == R_FLASH ? flash_mem(c) : uicr_mem(c);

				program_word(c, mem + off + i, sim_load32(buf + i));
			}
			break;
		case R_RAM:
		case R_CODE_RAM:
			memcpy(st(c)->ram + off, buf, k);
			break;
		case R_PERIPH:
			if (a % 4 == 0 && k % 4 == 0) {
				for (size_t i = 0; i < k; i += 4) {
					uint32_t ra = (uint32_t)a + (uint32_t)i, v = sim_load32(buf + i);

					if (ra >= NRF_NVMC_BASE && ra < NRF_NVMC_BASE + 0x1000)
						nvmc_write(c, ra, v);
					else if (ra == NRF_APPROTECT_DISABLE)
						approtect_disable(c, v);
					else if (ra == NRF_APPROTECT_FORCEPROTECT && st(c)->hardened && v == 0) {
						/* Protected at once, and until the next reset. */
						st(c)->forceprotect = true;
						st(c)->ap_locked = true;
					}
				}
			}
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

static uint32_t nrf_lifecycle(const struct sim_chip *c)
{
	if (nrf_locked(c) && protect_configured(c))
		return 3;
	return sim_hdr(c)->personalised ? 2 : 1;
}

static uint32_t nrf_fuses(const struct sim_chip *c)
{
	return protect_configured(c) ? VB1_FUSE_DEBUG_LOCK : 0;
}

static uint32_t nrf_fuses_effective(const struct sim_chip *c)
{
	return nrf_locked(c) ? VB1_FUSE_DEBUG_LOCK : 0;
}

static void nrf_set_faults(struct sim_chip *c, uint32_t faults)
{
	if (faults & SIM_FAULT_TAMPER_LOCK)
		st(c)->ap_locked = false;
}

/* ---- CTRL-AP ---- */

static imp_err nrf_ap_read(struct sim_chip *c, unsigned apsel, uint32_t reg, uint32_t *v)
{
	struct nrf *s = st(c);

	*v = 0;
	if (apsel != NRF_CTRLAP_APSEL)
		return IMP_OK;
	settle(c);
	switch (reg) {
	case NRF_CTRLAP_RESET:
		*v = s->ctrl_reset;
		break;
	case NRF_CTRLAP_ERASEALL:
		*v = s->ctrl_eraseall;
		break;
	case NRF_CTRLAP_ERASEALLSTATUS:
		*v = s->eraseall_until ? 1u : 0u;
		break;
	case NRF_CTRLAP_APPROTECTSTATUS:
		*v = nrf_locked(c) ? 0u : 1u;
		break;
	case NRF_CTRLAP_IDR:
		*v = NRF_CTRLAP_IDR_VALUE;
		break;
	default:
		break;
	}
	return IMP_OK;
}

static void ctrlap_eraseall(struct sim_chip *c)
{
	struct nrf *s = st(c);
	uint64_t ns;

	/* Tests count this line: keep its words (docs/VBOARD.md). */
	IMP_INFO("nrf52840: CTRL-AP ERASEALL: flash, UICR and RAM erased");
	__atomic_add_fetch(&c->mass_erases, 1, __ATOMIC_RELAXED);
	sim_nv_write_point();
	for (size_t i = 0; i < NRF_FLASH_SIZE; i += 4)
		sim_store32(flash_mem(c) + i, 0xFFFFFFFFu);
	for (size_t i = 0; i < NRF_UICR_SIZE; i += 4)
		sim_store32(uicr_mem(c) + i, 0xFFFFFFFFu);
	memset(s->ram, 0, sizeof(s->ram));
	ns = sim_busy_ns(c, SIM_NRF_LAT_ERASEALL_MS * 1000.0);
	s->eraseall_until = imp_now_ns() + (ns ? ns : 1);
}

static imp_err nrf_ap_write(struct sim_chip *c, unsigned apsel, uint32_t reg, uint32_t v)
{
	struct nrf *s = st(c);

	if (apsel != NRF_CTRLAP_APSEL)
		return IMP_OK;
	settle(c);
	switch (reg) {
	case NRF_CTRLAP_RESET:
		v &= 1u;
		if (s->ctrl_reset && !v) {
			s->ctrl_reset = 0;
			sim_system_reset(c); /* released: the device starts from reset */
		}
		s->ctrl_reset = v;
		break;
	case NRF_CTRLAP_ERASEALL:
		/* Every write of 1 while none runs starts one (so a second
		 * request is a second erase, never merged into the first). */
		v &= 1u;
		if (v && !s->eraseall_until)
			ctrlap_eraseall(c);
		s->ctrl_eraseall = v;
		break;
	default:
		break;
	}
	return IMP_OK;
}

static void nrf_describe(const struct sim_chip *c, char *out, size_t cap)
{
	char id[17];

	imp_hex_encode(sim_hdr(c)->uid, 8, id);
	snprintf(out, cap, "\"revision\":\"%s\",\"deviceid\":\"%s\"",
		 st(c)->hardened ? "hardened" : "legacy", id);
}

const struct sim_chip_family sim_family_nrf52840 = {
	.name = "nordic-nrf52840",
	.nv_magic = "IMPNRF52",
	.nv_version = 1,
	.nv_size = NV_SIZE,
	.vector_table = NRF_FLASH_BASE,
	.core_debug = true,
	.init_image = nrf_init_image,
	.attach = nrf_attach,
	.detach = nrf_detach,
	.reset = nrf_reset,
	.booted = nrf_booted,
	.debug_locked = nrf_locked,
	.read = nrf_read,
	.write = nrf_write,
	.lifecycle = nrf_lifecycle,
	.fuses = nrf_fuses,
	.fuses_effective = nrf_fuses_effective,
	.set_faults = nrf_set_faults,
	.ap_read = nrf_ap_read,
	.ap_write = nrf_ap_write,
	.ram_span = nrf_ram_span,
	.busy_until = nrf_busy_until,
	.describe = nrf_describe,
};
