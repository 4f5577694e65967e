/*
 * The virtual chip: what every chip family shares (the non-volatile image,
 * the power-cut model, the mutex, the public API) and the table of
 * families. A family (chip_vb1.c, chip_nrf52.c) fills struct
 * sim_chip_family in chip_int.h.
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
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "chip_int.h"
#include "imprint/log.h"
#include "imprint/util.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "nv.img is little-endian");

/* Alphabetical, NULL-terminated. */
static const struct sim_chip_family *const families[] = {
	&sim_family_vb1,
	&sim_family_nrf52840,
	&sim_family_stm32u5,
	NULL,
};

const char *sim_chip_family_names(void)
{
	return "imprint-vb1, nordic-nrf52840, st-stm32u5";
}

static const struct sim_chip_family *find_family(const char *name)
{
	if (!name)
		return &sim_family_vb1;
	for (size_t i = 0; families[i]; i++)
		if (strcmp(families[i]->name, name) == 0)
			return families[i];
	return NULL;
}

bool sim_chip_family_known(const char *name)
{
	return find_family(name) != NULL;
}

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

void sim_store32(void *p, uint32_t v)
{
	__atomic_store_n((uint32_t *)p, v, __ATOMIC_RELEASE);
}

uint32_t sim_load32(const void *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

void sim_charge_us(const struct sim_chip *c, double us)
{
	if (c->latency > 0 && us > 0) {
		/* The counter is bookkeeping, not chip state: const stays honest. */
		__atomic_add_fetch(&((struct sim_chip *)c)->modelled_ns,
				   (uint64_t)(us * 1000.0 * c->latency), __ATOMIC_RELAXED);
		imp_sleep_us((uint64_t)(us * c->latency));
	}
}

uint64_t sim_busy_ns(struct sim_chip *c, double us)
{
	uint64_t ns;

	if (c->latency <= 0 || us <= 0)
		return 0;
	ns = (uint64_t)(us * 1000.0 * c->latency);
	__atomic_add_fetch(&c->modelled_ns, ns, __ATOMIC_RELAXED);
	return ns;
}

void sim_busy_queue(struct sim_chip *c, uint64_t *busy_until, double us)
{
	uint64_t ns = sim_busy_ns(c, us), now = imp_now_ns();

	if (ns)
		*busy_until = (*busy_until > now ? *busy_until : now) + ns;
}

void sim_busy_wait(uint64_t busy_until)
{
	uint64_t now = imp_now_ns();

	if (busy_until > now + SIM_STALL_SLACK_NS)
		imp_sleep_us((busy_until - now - SIM_STALL_SLACK_NS + 999) / 1000);
}

uint64_t sim_chip_mass_erases(const struct sim_chip *chip)
{
	return __atomic_load_n(&chip->mass_erases, __ATOMIC_RELAXED);
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

static void init_image(const struct sim_chip_family *f, uint8_t *img, const struct sim_chip_opts *o)
{
	struct sim_nv_hdr *h = (struct sim_nv_hdr *)img;

	memset(img, 0, f->nv_size);
	memcpy(h->magic, f->nv_magic, 8);
	h->version = f->nv_version;
	h->hdr_size = SIM_NV_HDR_SIZE;
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
	f->init_image(img, o);
}

static bool image_valid(const struct sim_chip_family *f, const uint8_t *img)
{
	const struct sim_nv_hdr *h = (const struct sim_nv_hdr *)img;

	return memcmp(h->magic, f->nv_magic, 8) == 0 && h->version == f->nv_version &&
	       h->hdr_size == SIM_NV_HDR_SIZE;
}

static imp_err open_image(struct sim_chip *c, const struct sim_chip_opts *o)
{
	const struct sim_chip_family *f = c->fam;
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
		uint8_t *img = malloc(f->nv_size);

		if (!img)
			return IMP_ERR_NOMEM;
		init_image(f, img, o);
		rc = imp_write_file_atomic(path, img, f->nv_size, 0600);
		free(img);
		if (rc != IMP_OK)
			return rc;
	}
	fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		IMP_ERROR("cannot open %s: %s", path, strerror(errno));
		return IMP_ERR_IO;
	}
	if (fstat(fd, &st) != 0 || st.st_size != (off_t)f->nv_size) {
		IMP_ERROR("%s: not a %s image (size), move it away to start a new board", path, f->name);
		close(fd);
		return IMP_ERR_IO;
	}
	m = mmap(NULL, f->nv_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED) {
		IMP_ERROR("cannot map %s: %s", path, strerror(errno));
		return IMP_ERR_IO;
	}
	if (!image_valid(f, m)) {
		IMP_ERROR("%s: not a %s image (magic or version), move it away to start a new board "
			  "or pick the chip it was made for", path, f->name);
		munmap(m, f->nv_size);
		return IMP_ERR_IO;
	}
	c->nv = m;
	c->mapped = true;
	return IMP_OK;
}

void sim_system_reset(struct sim_chip *c)
{
	c->fam->reset(c);
	sim_core_reset(c, false);
	if (!c->core.halted && c->fam->booted)
		c->fam->booted(c);
}

/*
 * The core's thread: executes while core.executing, in slices under the
 * chip's mutex. A slice that made no progress (a loader waiting for its
 * FIFO or for the flash controller), or one that ended because it set the
 * flash controller busy, waits, the mutex released, until
 * what it waits for can have changed: the flash controller's end of busy
 * (the family's busy_until), a debugger's write (access_mem signals), or
 * at most CORE_IDLE_NS; so a waiting core neither spins a CPU nor sleeps
 * past the moment the part would go on.
 */
#define CORE_IDLE_NS 1000000ull
#define CORE_COMPUTE_SLICES 64u
static void *core_main(void *arg)
{
	struct sim_chip *c = arg;

	pthread_mutex_lock(&c->mu);
	for (;;) {
		bool progress = false;
		uint64_t now, until;

		while (!c->core_stop && !c->core.executing)
			pthread_cond_wait(&c->core_cv, &c->mu);
		if (c->core_stop)
			break;
		sim_core_exec(c, 1024, &progress);
		/* Code that only computes (a CRC over the image) runs on in
		 * one go, up to CORE_COMPUTE_SLICES slices: the debugger's
		 * polls wait for it instead of competing with it. */
		for (unsigned n = 1; n < CORE_COMPUTE_SLICES && c->core_computing &&
				     c->core.executing; n++)
			sim_core_exec(c, 1024, &progress);
		if (!c->core.executing)
			continue;
		now = imp_now_ns();
		until = c->fam->busy_until ? c->fam->busy_until(c) : 0;
		if (progress && !c->core_stopped_busy) {
			pthread_mutex_unlock(&c->mu);
			sched_yield();
			pthread_mutex_lock(&c->mu);
		} else {
			/* waiting, or it just started the flash controller
			 * (sim_core_exec ends a slice there) */
			uint64_t wake = now + CORE_IDLE_NS;
			struct timespec ts;

			if (until > now && until < wake)
				wake = until;
			ts.tv_sec = (time_t)(wake / 1000000000ull);
			ts.tv_nsec = (long)(wake % 1000000000ull);
			pthread_cond_timedwait(&c->core_cv, &c->mu, &ts);
		}
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

struct sim_chip *sim_chip_new(const struct sim_chip_opts *opts)
{
	const struct sim_chip_family *f = find_family(opts->family);
	struct sim_chip *c;

	if (!f) {
		IMP_ERROR("unknown chip '%s' (known: %s)", opts->family, sim_chip_family_names());
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		IMP_ERROR("out of memory");
		return NULL;
	}
	pthread_mutex_init(&c->mu, NULL);
	{
		pthread_condattr_t ca;

		/* timed waits against imp_now_ns()'s clock */
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&c->core_cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	c->fam = f;
	c->latency = opts->latency_scale;
	if (opts->state_dir) {
		c->state_dir = strdup(opts->state_dir);
		if (!c->state_dir || open_image(c, opts) != IMP_OK)
			goto fail;
	} else {
		c->nv = malloc(f->nv_size);
		if (!c->nv)
			goto fail;
		init_image(f, c->nv, opts);
	}
	if (f->attach(c, opts) != IMP_OK)
		goto fail;
	/* Power-up is a reset, with the debug logic in its power-on state. */
	f->reset(c);
	sim_core_reset(c, true);
	if (!c->core.halted && f->booted)
		f->booted(c);
	if (f->core_debug) {
		if (pthread_create(&c->core_thread, NULL, core_main, c) != 0) {
			IMP_ERROR("cannot start the core's thread");
			goto fail;
		}
		c->core_thread_started = true;
	}
	return c;
fail:
	sim_chip_free(c);
	return NULL;
}

void sim_chip_free(struct sim_chip *chip)
{
	if (!chip)
		return;
	if (chip->core_thread_started) {
		pthread_mutex_lock(&chip->mu);
		chip->core_stop = true;
		pthread_cond_signal(&chip->core_cv);
		pthread_mutex_unlock(&chip->mu);
		pthread_join(chip->core_thread, NULL);
	}
	if (chip->fam_state)
		chip->fam->detach(chip);
	if (chip->mapped)
		munmap(chip->nv, chip->fam->nv_size);
	else
		free(chip->nv);
	free(chip->state_dir);
	pthread_cond_destroy(&chip->core_cv);
	pthread_mutex_destroy(&chip->mu);
	free(chip);
}

const char *sim_chip_family(const struct sim_chip *chip)
{
	return chip->fam->name;
}

const uint8_t *sim_chip_uid(const struct sim_chip *chip)
{
	return sim_hdr(chip)->uid;
}

void sim_chip_describe(const struct sim_chip *chip, char *out, size_t cap)
{
	if (cap)
		out[0] = '\0';
	if (chip->fam->describe) {
		pthread_mutex_lock((pthread_mutex_t *)&chip->mu);
		chip->fam->describe(chip, out, cap);
		pthread_mutex_unlock((pthread_mutex_t *)&chip->mu);
	}
}

/* ---- debug access ---- */

/* A debugger's access: refused while locked; a write may reset the system. */
static imp_err access_mem(struct sim_chip *chip, uint32_t addr, uint8_t *rbuf,
			  const uint8_t *wbuf, size_t n)
{
	imp_err rc;

	pthread_mutex_lock(&chip->mu);
	if (chip->fam->debug_locked(chip)) {
		pthread_mutex_unlock(&chip->mu);
		return IMP_ERR_TARGET_LOCKED;
	}
	if (chip->fam->debug_refuses && chip->fam->debug_refuses(chip, addr, n)) {
		rc = IMP_ERR_PROBE;
	} else if (rbuf) {
		rc = chip->fam->read(chip, addr, rbuf, n);
	} else {
		rc = chip->fam->write(chip, addr, wbuf, n);
		if (chip->core.executing)
			pthread_cond_signal(&chip->core_cv); /* what a waiting loader polls */
		if (rc == IMP_OK && chip->core.sysresetreq) {
			chip->core.sysresetreq = false;
			sim_system_reset(chip);
		}
	}
	pthread_mutex_unlock(&chip->mu);
	return rc;
}

imp_err sim_chip_read(struct sim_chip *chip, uint32_t addr, uint8_t *buf, size_t n)
{
	return access_mem(chip, addr, buf, NULL, n);
}

imp_err sim_chip_write(struct sim_chip *chip, uint32_t addr, const uint8_t *buf, size_t n)
{
	return access_mem(chip, addr, NULL, buf, n);
}

imp_err sim_chip_ap_read(struct sim_chip *chip, unsigned apsel, uint32_t reg, uint32_t *v)
{
	imp_err rc = IMP_OK;

	*v = 0;
	pthread_mutex_lock(&chip->mu);
	if (chip->fam->ap_read)
		rc = chip->fam->ap_read(chip, apsel, reg, v);
	pthread_mutex_unlock(&chip->mu);
	return rc;
}

imp_err sim_chip_ap_write(struct sim_chip *chip, unsigned apsel, uint32_t reg, uint32_t v)
{
	imp_err rc = IMP_OK;

	pthread_mutex_lock(&chip->mu);
	if (chip->fam->ap_write)
		rc = chip->fam->ap_write(chip, apsel, reg, v);
	pthread_mutex_unlock(&chip->mu);
	return rc;
}

bool sim_chip_debug_locked(struct sim_chip *chip)
{
	bool l;

	pthread_mutex_lock(&chip->mu);
	l = chip->fam->debug_locked(chip);
	pthread_mutex_unlock(&chip->mu);
	return l;
}

uint32_t sim_chip_dap_idcode(const struct sim_chip *chip)
{
	return chip->fam->dap_idcode ? chip->fam->dap_idcode : 0x2BA01477u;
}

uint32_t sim_chip_debug_generation(const struct sim_chip *chip)
{
	return __atomic_load_n(&chip->debug_gen, __ATOMIC_ACQUIRE);
}

bool sim_chip_has_core_debug(const struct sim_chip *chip)
{
	return chip->fam->core_debug;
}

void sim_chip_debug_detach(struct sim_chip *chip)
{
	pthread_mutex_lock(&chip->mu);
	if (chip->fam->core_debug) {
		chip->core.dhcsr_ctrl = 0;
		chip->core.demcr = 0;
		chip->core.halted = false;
		chip->core.executing = false;
	}
	pthread_mutex_unlock(&chip->mu);
}

imp_err sim_chip_reset(struct sim_chip *chip)
{
	pthread_mutex_lock(&chip->mu);
	sim_system_reset(chip);
	pthread_mutex_unlock(&chip->mu);
	return IMP_OK;
}

/* Halt or resume the core through the debug port, which a lock refuses. */
static imp_err set_halted(struct sim_chip *chip, bool halted)
{
	imp_err rc = IMP_OK;

	pthread_mutex_lock(&chip->mu);
	if (chip->fam->debug_locked(chip)) {
		rc = IMP_ERR_TARGET_LOCKED;
	} else {
		chip->core.halted = halted;
		chip->core.executing = false;
		if (halted)
			chip->core.dfsr |= 0x1u; /* DFSR.HALTED */
	}
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
	return chip->core.halted ? 1 : 0;
}

uint32_t sim_chip_fuses(const struct sim_chip *chip)
{
	uint32_t v;

	pthread_mutex_lock((pthread_mutex_t *)&chip->mu);
	v = chip->fam->fuses(chip);
	pthread_mutex_unlock((pthread_mutex_t *)&chip->mu);
	return v;
}

uint32_t sim_chip_fuses_effective(const struct sim_chip *chip)
{
	uint32_t v;

	pthread_mutex_lock((pthread_mutex_t *)&chip->mu);
	v = chip->fam->fuses_effective(chip);
	pthread_mutex_unlock((pthread_mutex_t *)&chip->mu);
	return v;
}

imp_err sim_chip_read_regs(struct sim_chip *chip, uint32_t regs[SIM_CHIP_NREGS])
{
	imp_err rc = IMP_OK;

	pthread_mutex_lock(&chip->mu);
	if (chip->fam->debug_locked(chip))
		rc = IMP_ERR_TARGET_LOCKED;
	else
		memcpy(regs, chip->core.regs, sizeof(chip->core.regs));
	pthread_mutex_unlock(&chip->mu);
	return rc;
}

imp_err sim_chip_write_regs(struct sim_chip *chip, const uint32_t regs[SIM_CHIP_NREGS])
{
	imp_err rc = IMP_OK;

	pthread_mutex_lock(&chip->mu);
	if (chip->fam->debug_locked(chip))
		rc = IMP_ERR_TARGET_LOCKED;
	else
		memcpy(chip->core.regs, regs, sizeof(chip->core.regs));
	pthread_mutex_unlock(&chip->mu);
	return rc;
}

uint32_t sim_chip_lifecycle(const struct sim_chip *chip)
{
	uint32_t v;

	pthread_mutex_lock((pthread_mutex_t *)&chip->mu);
	v = chip->fam->lifecycle(chip);
	pthread_mutex_unlock((pthread_mutex_t *)&chip->mu);
	return v;
}

imp_err sim_chip_set_personalised(struct sim_chip *chip)
{
	pthread_mutex_lock(&chip->mu);
	if (!sim_hdr(chip)->personalised) {
		sim_nv_write_point();
		sim_store32(&sim_hdr(chip)->personalised, 1);
	}
	pthread_mutex_unlock(&chip->mu);
	return IMP_OK;
}

void sim_chip_set_faults(struct sim_chip *chip, uint32_t faults)
{
	pthread_mutex_lock(&chip->mu);
	chip->faults = faults;
	if (chip->fam->set_faults)
		chip->fam->set_faults(chip, faults);
	pthread_mutex_unlock(&chip->mu);
}
