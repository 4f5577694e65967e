/*
 * Probe driver "sim": the in-process virtual chip (imp_sim_chip).
 * URI: sim:[?uid=32HEX][&seed=N][&latency=X][&chip=NAME][&rev=legacy|hardened]
 * (chip: imprint-vb1, the default, nordic-nrf52840 or st-stm32u5; rev: the nRF52's APPROTECT
 * revision, docs/VBOARD.md).
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "imprint/log.h"
#include "imprint/util.h"
#include "probe_priv.h"

#ifdef BOARD_HAVE_SIM_CHIP
#include "sim/chip.h"

struct sim_probe {
	struct sim_chip *chip;
	bool owned;
};

static imp_err sim_open(const char *uri, void **priv)
{
	struct sim_chip_opts opts = { 0 };
	static const char *const revs[] = { "legacy", "hardened" };
	uint8_t uid[16];
	struct sim_probe *s;
	const char *q;

	if (strncmp(uri, "sim:", 4) != 0)
		return IMP_ERR_USAGE;
	q = uri + 4;
	if (*q == '?')
		q++;
	else if (*q) {
		IMP_ERROR("probe '%s': expected sim: or sim:?key=value&...", uri);
		return IMP_ERR_USAGE;
	}
	while (*q) {
		size_t len = strcspn(q, "&");
		char kv[128];
		char *eq, *end = NULL;

		if (len >= sizeof(kv)) {
			IMP_ERROR("probe '%s': option too long", uri);
			return IMP_ERR_USAGE;
		}
		memcpy(kv, q, len);
		kv[len] = '\0';
		q += len;
		if (*q == '&')
			q++;
		eq = strchr(kv, '=');
		if (!eq) {
			IMP_ERROR("probe '%s': option '%s' needs a value", uri, kv);
			return IMP_ERR_USAGE;
		}
		*eq++ = '\0';
		if (strcmp(kv, "uid") == 0) {
			if (strlen(eq) != 32 || imp_hex_decode(eq, uid, 16) != IMP_OK) {
				IMP_ERROR("probe '%s': uid must be 32 hex digits", uri);
				return IMP_ERR_USAGE;
			}
			opts.uid = uid;
		} else if (strcmp(kv, "seed") == 0) {
			opts.seed = strtoull(eq, &end, 10);
			if (!*eq || *end) {
				IMP_ERROR("probe '%s': seed must be a number", uri);
				return IMP_ERR_USAGE;
			}
		} else if (strcmp(kv, "latency") == 0) {
			opts.latency_scale = strtod(eq, &end);
			if (!*eq || *end || opts.latency_scale < 0) {
				IMP_ERROR("probe '%s': latency must be a number >= 0", uri);
				return IMP_ERR_USAGE;
			}
		} else if (strcmp(kv, "chip") == 0) {
			if (!sim_chip_family_known(eq)) {
				IMP_ERROR("probe '%s': unknown chip '%s' (known: %s)", uri, eq,
					  sim_chip_family_names());
				return IMP_ERR_USAGE;
			}
			opts.family = strcmp(eq, "nordic-nrf52840") == 0 ? "nordic-nrf52840" :
				      strcmp(eq, "st-stm32u5") == 0 ? "st-stm32u5" : "imprint-vb1";
		} else if (strcmp(kv, "rev") == 0) {
			if (strcmp(eq, revs[0]) != 0 && strcmp(eq, revs[1]) != 0) {
				IMP_ERROR("probe '%s': rev must be legacy or hardened", uri);
				return IMP_ERR_USAGE;
			}
			opts.revision = strcmp(eq, revs[0]) == 0 ? revs[0] : revs[1];
		} else {
			IMP_ERROR("probe '%s': unknown option '%s' (known: uid, seed, latency, chip, rev)",
				  uri, kv);
			return IMP_ERR_USAGE;
		}
	}
	if (opts.revision && (!opts.family || strcmp(opts.family, "nordic-nrf52840") != 0)) {
		IMP_ERROR("probe '%s': rev needs chip=nordic-nrf52840", uri);
		return IMP_ERR_USAGE;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return IMP_ERR_NOMEM;
	s->chip = sim_chip_new(&opts);
	if (!s->chip) {
		free(s);
		IMP_ERROR("probe '%s': could not create the virtual chip", uri);
		return IMP_ERR_PROBE;
	}
	s->owned = true;
	*priv = s;
	return IMP_OK;
}

imp_err board_probe_sim_attach_priv(struct sim_chip *chip, void **priv)
{
	struct sim_probe *s = calloc(1, sizeof(*s));

	if (!s)
		return IMP_ERR_NOMEM;
	s->chip = chip;
	*priv = s;
	return IMP_OK;
}

static void sim_close(void *priv)
{
	struct sim_probe *s = priv;

	if (s->owned)
		sim_chip_free(s->chip);
	free(s);
}

static imp_err sim_result(imp_err rc, const char *what, uint32_t addr, size_t n)
{
	if (rc != IMP_OK && rc != IMP_ERR_TARGET_LOCKED) /* the wrapper reports locked */
		IMP_ERROR("sim probe: %s of %zu bytes at 0x%08x failed: %s", what, n, addr,
			  imp_err_str(rc));
	return rc;
}

static imp_err sim_read(void *priv, uint32_t addr, uint8_t *buf, size_t n)
{
	struct sim_probe *s = priv;

	return sim_result(sim_chip_read(s->chip, addr, buf, n), "read", addr, n);
}

static imp_err sim_write(void *priv, uint32_t addr, const uint8_t *buf, size_t n)
{
	struct sim_probe *s = priv;

	return sim_result(sim_chip_write(s->chip, addr, buf, n), "write", addr, n);
}

static imp_err sim_reset(void *priv)
{
	struct sim_probe *s = priv;

	return sim_chip_reset(s->chip);
}

static imp_err sim_halt(void *priv)
{
	struct sim_probe *s = priv;

	return sim_chip_halt(s->chip);
}

const struct board_probe_driver board_probe_sim = {
	.name = "sim",
	.open = sim_open,
	.close = sim_close,
	.read_mem = sim_read,
	.write_mem = sim_write,
	.reset = sim_reset,
	.halt = sim_halt,
	.monitor = NULL,
};

#else /* !BOARD_HAVE_SIM_CHIP: the virtual chip is not built */

static imp_err sim_open(const char *uri, void **priv)
{
	(void)priv;
	IMP_ERROR("probe '%s': this build has no virtual chip (imp_sim_chip)", uri);
	return IMP_ERR_UNSUPPORTED;
}

imp_err board_probe_sim_attach_priv(struct sim_chip *chip, void **priv)
{
	(void)chip;
	(void)priv;
	IMP_ERROR("this build has no virtual chip (imp_sim_chip)");
	return IMP_ERR_UNSUPPORTED;
}

static void sim_close(void *priv)
{
	(void)priv;
}

static imp_err sim_none(void *priv, uint32_t addr, uint8_t *buf, size_t n)
{
	(void)priv, (void)addr, (void)buf, (void)n;
	return IMP_ERR_UNSUPPORTED;
}

static imp_err sim_none_w(void *priv, uint32_t addr, const uint8_t *buf, size_t n)
{
	(void)priv, (void)addr, (void)buf, (void)n;
	return IMP_ERR_UNSUPPORTED;
}

const struct board_probe_driver board_probe_sim = {
	.name = "sim",
	.open = sim_open,
	.close = sim_close,
	.read_mem = sim_none,
	.write_mem = sim_none_w,
};
#endif
