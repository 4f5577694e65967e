/*
 * The virtual chip imprint-vb1: memory map, flash and fuse controllers, and
 * the non-volatile image.
 *
 * Non-volatile state lives in STATE/nv.img, mapped MAP_SHARED: a store into
 * the mapping is in the kernel's page cache the moment it is made, so it
 * survives the process being killed at any instant (the power-cut model),
 * and every persisted field is an aligned 32-bit word written with one
 * store, so nothing is ever torn. The file is created whole (temp + fsync +
 * rename) so a cut during creation leaves no half image.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "imprint/log.h"
#include "imprint/util.h"
#include "sim/chip.h"
#include "sim/vb1_map.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "nv.img is little-endian");

/* PERSISTED: layout of STATE/nv.img, version 1 (docs/VBOARD.md). */
#define NV_MAGIC "IMPVB1NV"
#define NV_VERSION 1u
#define NV_HDR_SIZE 4096u
#define NV_FLASH_OFF NV_HDR_SIZE
#define NV_OTP_OFF (NV_FLASH_OFF + VB1_FLASH_SIZE)
#define NV_SIZE (NV_OTP_OFF + 4096u)

struct nv_hdr {
	char magic[8];         /* "IMPVB1NV" */
	uint32_t version;      /* 1 */
	uint32_t hdr_size;     /* 4096 */
	uint8_t uid[16];
	uint32_t fuses;        /* burned fuse mask */
	uint32_t personalised; /* 1 once the agent's LOCK bit1 was done */
};

_Static_assert(sizeof(struct nv_hdr) == 40, "nv header layout");
_Static_assert(NV_SIZE == 270336, "nv.img size");

#define FLASHC_CR_BITS (VB1_FLASHC_CR_PG | VB1_FLASHC_CR_PER | VB1_FLASHC_CR_MER | VB1_FLASHC_CR_OTPPG)
#define FUSE_ALL (VB1_FUSE_DEBUG_LOCK | VB1_FUSE_BOOT_LOCK)

struct sim_chip {
	pthread_mutex_t mu;
	uint8_t *nv;           /* NV_SIZE bytes: mapping or malloc'ed */
	bool mapped;
	char *state_dir;
	double latency;
	uint64_t modelled_ns;  /* sum of the modelled delays (atomic) */
	uint32_t faults;

	/* volatile */
	uint8_t sram[VB1_SRAM_SIZE];
	uint32_t fuses_eff;
	uint32_t flash_sr, flash_cr, flash_ar;
	int key_stage;         /* 0 locked, 1 KEY1 seen, 2 unlocked */
	bool key_lockout;      /* wrong key sequence: locked until reset */
	uint32_t fuse_sr;
	uint64_t fuse_busy_until;
	uint32_t regs[SIM_CHIP_NREGS];
	bool halted;
};

/* ---- power cut ---- */

static uint64_t power_cut_at;
static uint64_t nv_ops;

void sim_power_cut_arm(uint64_t n)
{
	__atomic_store_n(&power_cut_at, n, __ATOMIC_SEQ_CST);
}

void sim_nv_write_point(void)
{
	uint64_t k = __atomic_add_fetch(&nv_ops, 1, __ATOMIC_SEQ_CST);
	uint64_t at = __atomic_load_n(&power_cut_at, __ATOMIC_SEQ_CST);

	if (at != 0 && k == at) {
		static const char msg[] = "imprint-vboard: power cut at a non-volatile write\n";
		ssize_t w = write(2, msg, sizeof(msg) - 1);

		(void)w;
		_exit(SIM_POWER_CUT_EXIT);
	}
}

uint64_t sim_nv_write_count(void)
{
	return __atomic_load_n(&nv_ops, __ATOMIC_SEQ_CST);
}

/* ---- helpers ---- */

static struct nv_hdr *hdr(const struct sim_chip *c)
{
	return (struct nv_hdr *)c->nv;
}

static uint8_t *flash_mem(const struct sim_chip *c)
{
	return c->nv + NV_FLASH_OFF;
}

static uint8_t *otp_mem(const struct sim_chip *c)
{
	return c->nv + NV_OTP_OFF;
}

static void store32(void *p, uint32_t v)
{
	__atomic_store_n((uint32_t *)p, v, __ATOMIC_RELEASE);
}

static uint32_t load32(const void *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static void charge_us(const struct sim_chip *c, double us)
{
	if (c->latency > 0 && us > 0) {
		/* The counter is bookkeeping, not chip state: const stays honest. */
		__atomic_add_fetch(&((struct sim_chip *)c)->modelled_ns,
				   (uint64_t)(us * 1000.0 * c->latency), __ATOMIC_RELAXED);
		imp_sleep_us((uint64_t)(us * c->latency));
	}
}

uint64_t sim_chip_modelled_ns(const struct sim_chip *chip)
{
	return __atomic_load_n(&chip->modelled_ns, __ATOMIC_RELAXED);
}

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static void init_image(uint8_t *img, const struct sim_chip_opts *o)
{
	struct nv_hdr *h = (struct nv_hdr *)img;

	memset(img, 0, NV_SIZE);
	memcpy(h->magic, NV_MAGIC, 8);
	h->version = NV_VERSION;
	h->hdr_size = NV_HDR_SIZE;
	if (o->uid) {
		memcpy(h->uid, o->uid, 16);
	} else if (o->seed) {
		uint64_t s = o->seed, a = splitmix64(&s), b = splitmix64(&s);

		memcpy(h->uid, &a, 8);
		memcpy(h->uid + 8, &b, 8);
	} else if (getrandom(h->uid, 16, 0) != 16) {
		uint64_t s = imp_now_ns() ^ (uint64_t)getpid(), a = splitmix64(&s), b = splitmix64(&s);

		memcpy(h->uid, &a, 8);
		memcpy(h->uid + 8, &b, 8);
	}
	memset(img + NV_FLASH_OFF, 0xFF, VB1_FLASH_SIZE);
}

static bool image_valid(const uint8_t *img)
{
	const struct nv_hdr *h = (const struct nv_hdr *)img;

	return memcmp(h->magic, NV_MAGIC, 8) == 0 && h->version == NV_VERSION &&
	       h->hdr_size == NV_HDR_SIZE;
}

static imp_err open_image(struct sim_chip *c, const struct sim_chip_opts *o)
{
	char path[4096];
	struct stat st;
	int fd = -1;
	void *m;
	imp_err rc;

	rc = imp_mkdir_p(o->state_dir, 0700);
	if (rc != IMP_OK)
		return rc;
	if ((size_t)snprintf(path, sizeof(path), "%s/nv.img", o->state_dir) >= sizeof(path))
		return IMP_ERR_IO;
	if (stat(path, &st) != 0) {
		uint8_t *img = malloc(NV_SIZE);

		if (!img)
			return IMP_ERR_NOMEM;
		init_image(img, o);
		rc = imp_write_file_atomic(path, img, NV_SIZE, 0600);
		free(img);
		if (rc != IMP_OK)
			return rc;
	}
	fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		IMP_ERROR("cannot open %s: %s", path, strerror(errno));
		return IMP_ERR_IO;
	}
	if (fstat(fd, &st) != 0 || st.st_size != (off_t)NV_SIZE) {
		IMP_ERROR("%s: not a vb1 image (size), move it away to start a new board", path);
		close(fd);
		return IMP_ERR_IO;
	}
	m = mmap(NULL, NV_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED) {
		IMP_ERROR("cannot map %s: %s", path, strerror(errno));
		return IMP_ERR_IO;
	}
	if (!image_valid(m)) {
		IMP_ERROR("%s: not a vb1 image (magic or version), move it away to start a new board", path);
		munmap(m, NV_SIZE);
		return IMP_ERR_IO;
	}
	c->nv = m;
	c->mapped = true;
	return IMP_OK;
}

/* Core and peripheral reset; caller holds the lock. */
static void do_reset(struct sim_chip *c)
{
	uint32_t f = hdr(c)->fuses;

	if (c->faults & SIM_FAULT_TAMPER_LOCK)
		f &= ~VB1_FUSE_DEBUG_LOCK;
	c->fuses_eff = f;
	c->flash_sr = 0;
	c->flash_cr = 0;
	c->flash_ar = 0;
	c->key_stage = 0;
	c->key_lockout = false;
	c->fuse_sr = 0;
	c->fuse_busy_until = 0;
	memset(c->regs, 0, sizeof(c->regs));
	c->regs[13] = load32(flash_mem(c));       /* initial SP from the vector table */
	c->regs[15] = load32(flash_mem(c) + 4) & ~1u; /* reset vector */
	c->regs[14] = 0xFFFFFFFFu;
	c->regs[16] = 0x01000000u;                /* xPSR: Thumb bit */
	c->halted = false;
}

struct sim_chip *sim_chip_new(const struct sim_chip_opts *opts)
{
	struct sim_chip *c = calloc(1, sizeof(*c));

	if (!c) {
		IMP_ERROR("out of memory");
		return NULL;
	}
	pthread_mutex_init(&c->mu, NULL);
	c->latency = opts->latency_scale;
	if (opts->state_dir) {
		c->state_dir = strdup(opts->state_dir);
		if (!c->state_dir || open_image(c, opts) != IMP_OK)
			goto fail;
	} else {
		c->nv = malloc(NV_SIZE);
		if (!c->nv)
			goto fail;
		init_image(c->nv, opts);
	}
	do_reset(c);
	return c;
fail:
	sim_chip_free(c);
	return NULL;
}

void sim_chip_free(struct sim_chip *chip)
{
	if (!chip)
		return;
	if (chip->mapped)
		munmap(chip->nv, NV_SIZE);
	else
		free(chip->nv);
	free(chip->state_dir);
	pthread_mutex_destroy(&chip->mu);
	free(chip);
}

const uint8_t *sim_chip_uid(const struct sim_chip *chip)
{
	return hdr(chip)->uid;
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

static uint32_t lifecycle_locked(const struct sim_chip *c)
{
	if (c->fuses_eff & VB1_FUSE_DEBUG_LOCK)
		return 3;
	return hdr(c)->personalised ? 2 : 1;
}

static bool fuse_busy(const struct sim_chip *c)
{
	return c->fuse_busy_until && imp_now_ns() < c->fuse_busy_until;
}

static void regs_image(struct sim_chip *c, enum region r, uint8_t out[16])
{
	uint32_t w[4] = { 0 };

	if (r == R_FLASHC) {
		w[0] = 0; /* KEYR reads 0 */
		w[1] = c->flash_sr;
		w[2] = c->flash_cr | (c->key_stage == 2 ? 0 : VB1_FLASHC_CR_LOCK);
		w[3] = c->flash_ar;
	} else {
		w[0] = 0;
		w[1] = 0;
		w[2] = (c->fuse_sr & ~VB1_FUSEC_SR_BSY) | (fuse_busy(c) ? VB1_FUSEC_SR_BSY : 0);
		w[3] = hdr(c)->fuses;
	}
	memcpy(out, w, 16);
}

imp_err sim_chip_read(struct sim_chip *chip, uint32_t addr, uint8_t *buf, size_t n)
{
	uint64_t a = addr, end = (uint64_t)addr + n;
	bool first_flash = true;

	pthread_mutex_lock(&chip->mu);
	if (chip->fuses_eff & VB1_FUSE_DEBUG_LOCK) {
		pthread_mutex_unlock(&chip->mu);
		return IMP_ERR_TARGET_LOCKED;
	}
	/* Check the whole range first: nothing is done on a partly unmapped one. */
	for (uint64_t p = a; p < end;) {
		const struct span *s = find_span(p);

		if (!s) {
			pthread_mutex_unlock(&chip->mu);
			return IMP_ERR_PROBE;
		}
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
			memcpy(buf, chip->sram + off, k);
			break;
		case R_SYS: {
			uint32_t lc = lifecycle_locked(chip);

			memcpy(img, hdr(chip)->uid, 16);
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
	pthread_mutex_unlock(&chip->mu);
	return IMP_OK;
}

/* Program one flash word; returns false (and sets an SR error) to stop. */
static bool program_word(struct sim_chip *c, uint8_t *dst, uint32_t val, bool otp)
{
	uint32_t old = load32(dst);

	if (c->fuses_eff & VB1_FUSE_BOOT_LOCK) {
		c->flash_sr |= VB1_FLASHC_SR_WRPERR;
		return false;
	}
	if (!otp && old != 0xFFFFFFFFu) {
		c->flash_sr |= VB1_FLASHC_SR_PGERR;
		return false;
	}
	sim_nv_write_point();
	store32(dst, otp ? (old | val) : val);
	return true;
}

static void erase(struct sim_chip *c, uint32_t off, uint32_t len, double ms)
{
	if (c->fuses_eff & VB1_FUSE_BOOT_LOCK) {
		c->flash_sr |= VB1_FLASHC_SR_WRPERR;
		return;
	}
	sim_nv_write_point();
	for (uint32_t i = 0; i < len; i += 4)
		store32(flash_mem(c) + off + i, 0xFFFFFFFFu);
	c->flash_sr |= VB1_FLASHC_SR_EOP;
	charge_us(c, ms * 1000.0);
}

static void write_flashc(struct sim_chip *c, uint32_t reg, uint32_t v)
{
	switch (reg) {
	case 0x0: /* KEYR */
		if (c->key_stage == 2)
			break;
		if (!c->key_lockout && c->key_stage == 0 && v == VB1_FLASHC_KEY1) {
			c->key_stage = 1;
		} else if (!c->key_lockout && c->key_stage == 1 && v == VB1_FLASHC_KEY2) {
			c->key_stage = 2;
		} else {
			c->key_stage = 0;
			c->key_lockout = true;
			IMP_DEBUG("flash: wrong key sequence, locked until reset");
		}
		break;
	case 0x4: /* SR: write 1 to clear */
		c->flash_sr &= ~(v & (VB1_FLASHC_SR_PGERR | VB1_FLASHC_SR_WRPERR | VB1_FLASHC_SR_EOP));
		break;
	case 0x8: /* CR */
		if (v & VB1_FLASHC_CR_LOCK) {
			c->key_stage = 0;
			c->flash_cr = 0;
			break;
		}
		if (c->key_stage != 2)
			break;
		c->flash_cr = v & FLASHC_CR_BITS;
		if (v & VB1_FLASHC_CR_STRT) {
			if (c->flash_cr & VB1_FLASHC_CR_MER) {
				erase(c, 0, VB1_FLASH_SIZE, SIM_LAT_MASS_ERASE_MS);
			} else if (c->flash_cr & VB1_FLASHC_CR_PER) {
				uint32_t ar = c->flash_ar;

				if (ar < VB1_FLASH_BASE || ar >= VB1_FLASH_BASE + VB1_FLASH_SIZE) {
					c->flash_sr |= VB1_FLASHC_SR_PGERR;
					break;
				}
				ar = (ar - VB1_FLASH_BASE) & ~(VB1_FLASH_PAGE - 1);
				erase(c, ar, VB1_FLASH_PAGE, SIM_LAT_PAGE_ERASE_MS);
			}
		}
		break;
	case 0xC: /* AR */
		c->flash_ar = v;
		break;
	}
}

static void write_fusec(struct sim_chip *c, uint32_t reg, uint32_t v)
{
	switch (reg) {
	case 0x0: /* KEYR */
		if (v == VB1_FUSEC_KEY)
			c->fuse_sr |= VB1_FUSEC_SR_ARMED;
		else
			c->fuse_sr &= ~VB1_FUSEC_SR_ARMED;
		break;
	case 0x4: /* CMD */
		if (fuse_busy(c) || !(c->fuse_sr & VB1_FUSEC_SR_ARMED) ||
		    v == 0 || (v & ~FUSE_ALL)) {
			c->fuse_sr |= VB1_FUSEC_SR_ERR;
			c->fuse_sr &= ~VB1_FUSEC_SR_ARMED;
			break;
		}
		c->fuse_sr &= ~VB1_FUSEC_SR_ARMED;
		if (c->faults & SIM_FAULT_FUSE_FAIL) {
			c->faults &= ~SIM_FAULT_FUSE_FAIL;
			c->fuse_sr |= VB1_FUSEC_SR_ERR;
			IMP_INFO("fault: fuse burn 0x%x failed (injected)", v);
			break;
		}
		sim_nv_write_point();
		store32(&hdr(c)->fuses, hdr(c)->fuses | v);
		if (c->latency > 0) {
			uint64_t busy = (uint64_t)(SIM_LAT_FUSE_BURN_MS * 1e6 * c->latency);

			c->fuse_busy_until = imp_now_ns() + busy;
			__atomic_add_fetch(&c->modelled_ns, busy, __ATOMIC_RELAXED);
		}
		break;
	case 0x8: /* SR: write 1 to clear ERR */
		c->fuse_sr &= ~(v & VB1_FUSEC_SR_ERR);
		break;
	default: /* STATE is read-only */
		break;
	}
}

imp_err sim_chip_write(struct sim_chip *chip, uint32_t addr, const uint8_t *buf, size_t n)
{
	uint64_t a = addr, end = (uint64_t)addr + n;
	size_t programmed = 0;
	bool stop = false;

	pthread_mutex_lock(&chip->mu);
	if (chip->fuses_eff & VB1_FUSE_DEBUG_LOCK) {
		pthread_mutex_unlock(&chip->mu);
		return IMP_ERR_TARGET_LOCKED;
	}
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
					ok = ok && (chip->flash_cr & VB1_FLASHC_CR_PG) && chip->key_stage == 2;
				if (s->r == R_OTP)
					ok = ok && (chip->flash_cr & VB1_FLASHC_CR_OTPPG) && chip->key_stage == 2;
				break;
			default:
				break;
			}
			p = send;
		}
		if (!ok) {
			pthread_mutex_unlock(&chip->mu);
			return IMP_ERR_PROBE;
		}
	}
	while (a < end) {
		const struct span *s = find_span(a);
		uint32_t off = (uint32_t)(a - s->base);
		size_t k = (size_t)((uint64_t)s->base + s->size - a);

		if (k > end - a)
			k = (size_t)(end - a);
		switch (s->r) {
		case R_SRAM:
			memcpy(chip->sram + off, buf, k);
			break;
		case R_FLASH:
		case R_OTP:
			for (size_t i = 0; i < k && !stop; i += 4) {
				uint8_t *mem = s->r == R_FLASH ? flash_mem(chip) : otp_mem(chip);

				if (!program_word(chip, mem + off + i, load32(buf + i), s->r == R_OTP))
					stop = true;
				else
					programmed += 4;
			}
			if (!stop)
				chip->flash_sr |= VB1_FLASHC_SR_EOP;
			break;
		case R_FLASHC:
		case R_FUSEC:
			for (size_t i = 0; i < k; i += 4) {
				if (s->r == R_FLASHC)
					write_flashc(chip, off + (uint32_t)i, load32(buf + i));
				else
					write_fusec(chip, off + (uint32_t)i, load32(buf + i));
			}
			break;
		default:
			break;
		}
		buf += k;
		a += k;
	}
	charge_us(chip, (double)programmed * 1e6 / SIM_LAT_FLASH_BYTES_PER_S);
	pthread_mutex_unlock(&chip->mu);
	return IMP_OK;
}

imp_err sim_chip_reset(struct sim_chip *chip)
{
	pthread_mutex_lock(&chip->mu);
	do_reset(chip);
	pthread_mutex_unlock(&chip->mu);
	return IMP_OK;
}

/* Halt or resume the core through the debug port, which a lock refuses. */
static imp_err set_halted(struct sim_chip *chip, bool halted)
{
	imp_err rc = IMP_OK;

	pthread_mutex_lock(&chip->mu);
	if (chip->fuses_eff & VB1_FUSE_DEBUG_LOCK)
		rc = IMP_ERR_TARGET_LOCKED;
	else
		chip->halted = halted;
	pthread_mutex_unlock(&chip->mu);
	return rc;
}

imp_err sim_chip_halt(struct sim_chip *chip)
{
	return set_halted(chip, true);
}

imp_err sim_chip_resume(struct sim_chip *chip)
{
	return set_halted(chip, false);
}

int sim_chip_halted(const struct sim_chip *chip)
{
	return chip->halted ? 1 : 0;
}

uint32_t sim_chip_fuses(const struct sim_chip *chip)
{
	return hdr(chip)->fuses;
}

uint32_t sim_chip_fuses_effective(const struct sim_chip *chip)
{
	return chip->fuses_eff;
}

imp_err sim_chip_read_regs(struct sim_chip *chip, uint32_t regs[SIM_CHIP_NREGS])
{
	imp_err rc = IMP_OK;

	pthread_mutex_lock(&chip->mu);
	if (chip->fuses_eff & VB1_FUSE_DEBUG_LOCK)
		rc = IMP_ERR_TARGET_LOCKED;
	else
		memcpy(regs, chip->regs, sizeof(chip->regs));
	pthread_mutex_unlock(&chip->mu);
	return rc;
}

imp_err sim_chip_write_regs(struct sim_chip *chip, const uint32_t regs[SIM_CHIP_NREGS])
{
	imp_err rc = IMP_OK;

	pthread_mutex_lock(&chip->mu);
	if (chip->fuses_eff & VB1_FUSE_DEBUG_LOCK)
		rc = IMP_ERR_TARGET_LOCKED;
	else
		memcpy(chip->regs, regs, sizeof(chip->regs));
	pthread_mutex_unlock(&chip->mu);
	return rc;
}

uint32_t sim_chip_lifecycle(const struct sim_chip *chip)
{
	return lifecycle_locked(chip);
}

imp_err sim_chip_set_personalised(struct sim_chip *chip)
{
	pthread_mutex_lock(&chip->mu);
	if (!hdr(chip)->personalised) {
		sim_nv_write_point();
		store32(&hdr(chip)->personalised, 1);
	}
	pthread_mutex_unlock(&chip->mu);
	return IMP_OK;
}

void sim_chip_set_faults(struct sim_chip *chip, uint32_t faults)
{
	pthread_mutex_lock(&chip->mu);
	chip->faults = faults;
	if (faults & SIM_FAULT_TAMPER_LOCK)
		chip->fuses_eff &= ~VB1_FUSE_DEBUG_LOCK;
	pthread_mutex_unlock(&chip->mu);
}
