/*
 * Set-up shared by commands: the configuration and the HSM.
 */
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "imprint/log.h"
#include "run.h"
#include "station.h"

imp_err st_load_config(struct station_ctx *ctx, struct fmt_config *cfg)
{
	char path[4200];
	const char *file = ctx->config;
	imp_err rc;

	if (!file) {
		snprintf(path, sizeof(path), "%s/station.json", ctx->data_dir);
		if (access(path, F_OK) == 0)
			file = path;
	}
	if (!file)
		return fmt_config_defaults(cfg);
	IMP_DEBUG("configuration %s", file);
	rc = fmt_config_load(file, cfg, NULL);
	/* The configuration named is missing: that is exit 3, "configuration
	 * missing or invalid", not a missing board or object (9). */
	if (rc == IMP_ERR_NOT_FOUND) {
		IMP_ERROR("no configuration at %s: give --config an existing file, or leave it "
			  "out for DATA/station.json or the defaults", file);
		rc = IMP_ERR_CONFIG;
	}
	return rc;
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

/*
 * A configured HSM is not imprint's to repair: when its token cannot be
 * found, say what the module does show and where to go next.
 */
static void configured_token_explain(const struct fmt_config *cfg)
{
	struct hsm_token_info *tokens = NULL;
	size_t n = 0, inited = 0;
	char labels[256] = "";
	size_t used = 0;

	if (hsm_token_list(cfg->hsm.module, &tokens, &n) != IMP_OK) {
		IMP_ERROR("the configured hsm module %s cannot list its slots: check that it "
			  "is installed and the hsm is connected", cfg->hsm.module);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		int w;

		if (!tokens[i].initialized)
			continue;
		inited++;
		w = snprintf(labels + used, sizeof(labels) - used, "%s\"%s\"", used ? ", " : "",
			     tokens[i].label);
		if (w > 0 && (size_t)w < sizeof(labels) - used)
			used += (size_t)w;
	}
	if (inited == 0)
		IMP_ERROR("the configured hsm module %s shows no initialised token (%zu slot%s): "
			  "connect the hsm or initialise its token with the hsm's own tools; "
			  "imprint never creates a token on a configured hsm", cfg->hsm.module, n,
			  n == 1 ? "" : "s");
	else
		IMP_ERROR("the configured hsm module %s shows %s but not %s: correct hsm.token "
			  "in the configuration, or restore the token with the hsm's own tools",
			  cfg->hsm.module, labels, cfg->hsm.token);
	free(tokens);
}

/*
 * No embedded token. A station with a journal has issued serials under its
 * organisation hierarchy: 'imprint hsm init' would start a new one that
 * nothing it made chains to, so the next step there is the backup.
 */
bool st_has_journal(const struct station_ctx *ctx, const struct fmt_config *cfg, char *jpath,
		    size_t cap)
{
	struct stat st;

	st_journal_path(ctx, cfg, jpath, cap);
	return stat(jpath, &st) == 0;
}

bool st_hierarchy_lost(const struct station_ctx *ctx, const struct fmt_config *cfg,
		       bool token_missing)
{
	char jpath[4200];

	if (!st_has_journal(ctx, cfg, jpath, sizeof(jpath)))
		return false;
	if (token_missing)
		IMP_ERROR("no embedded token in %s/hsm, but this station has a journal (%s): "
			  "the boards it made chain to that token's hierarchy; restore %s/hsm "
			  "from its backup ('imprint hsm init' would start a new organisation "
			  "hierarchy)", ctx->data_dir, jpath, ctx->data_dir);
	else
		IMP_ERROR("the hsm holds no organisation root key, but this station has a "
			  "journal (%s): the boards it made chain to the hierarchy that was in "
			  "the token; restore the token from its backup (%s/hsm for the embedded "
			  "one); a new hierarchy is not made over it", jpath, ctx->data_dir);
	return true;
}

static void embedded_missing_explain(const struct station_ctx *ctx,
				     const struct fmt_config *cfg)
{
	if (!st_hierarchy_lost(ctx, cfg, true))
		IMP_ERROR("no hsm configured and no embedded token in %s/hsm; "
			  "run 'imprint hsm init' first", ctx->data_dir);
}

imp_err st_open_hsm(struct station_ctx *ctx, const struct fmt_config *cfg, struct hsm **out)
{
	struct hsm_pin_source pin;
	imp_err rc;

	if (st_hsm_is_embedded(cfg)) {
		rc = hsm_embedded_open(ctx->data_dir, out);
		if (rc == IMP_ERR_NOT_FOUND)
			embedded_missing_explain(ctx, cfg);
		return rc;
	}
	pin_source_from_spec(&cfg->hsm.pin, &pin);
	rc = hsm_open_module(&(struct hsm_module){ cfg->hsm.module, cfg->hsm.init_args },
			     cfg->hsm.token, &pin, out);
	if (rc == IMP_ERR_NOT_FOUND)
		configured_token_explain(cfg);
	else if (rc == IMP_ERR_PIN_LOCKED)
		IMP_ERROR("the user pin of %s on the configured hsm is locked: unlock it with "
			  "the hsm's own tools (security officer); imprint never resets a "
			  "configured token", cfg->hsm.token);
	/* A wrong pin or one that could not be read: hsm_login said which. */
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
		/* An installation: every program in one bin directory. */
		snprintf(out, cap, "%s/%s", dirname(dir), name);
		if (access(out, X_OK) == 0)
			return;
		snprintf(dir, sizeof(dir), "%s", self);
		/* The build tree: station/imprint beside <build_subdir>/<name>. */
		snprintf(out, cap, "%s/../%s/%s", dirname(dir), build_subdir, name);
		if (access(out, X_OK) == 0)
			return;
	}
	snprintf(out, cap, "%s", name); /* $PATH */
}
