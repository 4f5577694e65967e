/*
 * Set-up shared by commands: the configuration and the HSM.
 */
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "imprint/log.h"
#include "station.h"

imp_err st_load_config(struct station_ctx *ctx, struct fmt_config *cfg)
{
	char path[4200];
	const char *file = ctx->config;

	if (!file) {
		snprintf(path, sizeof(path), "%s/station.json", ctx->data_dir);
		if (access(path, F_OK) == 0)
			file = path;
	}
	if (!file)
		return fmt_config_defaults(cfg);
	IMP_DEBUG("configuration %s", file);
	return fmt_config_load(file, cfg, NULL);
}

static void pin_source_from_spec(const struct fmt_pin_spec *spec, struct hsm_pin_source *src)
{
	memset(src, 0, sizeof(*src));
	switch (spec->source) {
	case FMT_PIN_ENV:
		src->kind = HSM_PIN_ENV;
		src->name = spec->value;
		break;
	case FMT_PIN_FILE:
		src->kind = HSM_PIN_FILE;
		src->name = spec->value;
		break;
	case FMT_PIN_PROMPT:
	case FMT_PIN_DEFAULT:
		src->kind = HSM_PIN_PROMPT;
		src->name = "hsm user pin: ";
		break;
	}
}

bool st_hsm_is_embedded(const struct fmt_config *cfg)
{
	return cfg->hsm.module == NULL;
}

imp_err st_open_hsm(struct station_ctx *ctx, const struct fmt_config *cfg, struct hsm **out)
{
	struct hsm_pin_source pin;
	imp_err rc;

	if (st_hsm_is_embedded(cfg)) {
		rc = hsm_embedded_open(ctx->data_dir, out);
		if (rc == IMP_ERR_NOT_FOUND)
			IMP_ERROR("no hsm configured and no embedded token in %s/hsm; "
				  "run 'imprint hsm init' first", ctx->data_dir);
		return rc;
	}
	pin_source_from_spec(&cfg->hsm.pin, &pin);
	rc = hsm_open_module(&(struct hsm_module){ cfg->hsm.module, cfg->hsm.init_args },
			     cfg->hsm.token, &pin, out);
	if (rc == IMP_ERR_PIN)
		IMP_ERROR("the hsm refused the pin from %s; check it (the token locks after "
			  "too many wrong tries)", hsm_pin_source_describe(&pin));
	return rc;
}

enum hsm_mode st_hsm_mode(enum fmt_key_mode mode)
{
	switch (mode) {
	case FMT_KEY_MODE_HSM:
		return HSM_MODE_HSM;
	case FMT_KEY_MODE_PSK:
		return HSM_MODE_PSK;
	case FMT_KEY_MODE_DEVICE:
	default:
		return HSM_MODE_DEVICE;
	}
}

void st_trust_dir(const struct station_ctx *ctx, char *out, size_t cap)
{
	snprintf(out, cap, "%s/trust", ctx->data_dir);
}

void st_find_program(const char *name, const char *build_subdir, char *out, size_t cap)
{
	char self[PATH_MAX], dir[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n > 0) {
		self[n] = '\0';
		snprintf(dir, sizeof(dir), "%s", self);
		/* The build tree: station/imprint beside <build_subdir>/<name>. */
		snprintf(out, cap, "%s/../%s/%s", dirname(dir), build_subdir, name);
		if (access(out, X_OK) == 0)
			return;
		snprintf(dir, sizeof(dir), "%s", self);
		/* An installation: every program in one bin directory. */
		snprintf(out, cap, "%s/%s", dirname(dir), name);
		if (access(out, X_OK) == 0)
			return;
	}
	snprintf(out, cap, "%s", name); /* $PATH */
}
