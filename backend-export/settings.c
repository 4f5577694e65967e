/*
 * The registry settings of a station configuration, read in one place for
 * `imprint export` and the background delivery of `provision`.
 */
#include <stdlib.h>
#include <string.h>

#include "exp/export.h"
#include "imprint/log.h"

imp_err exp_settings_from_config(const struct fmt_config *cfg, struct exp_settings *s)
{
	memset(s, 0, sizeof(*s));
	s->url = cfg->registry.url;
	s->ca = cfg->registry.ca;
	s->cert = cfg->registry.cert;
	s->key = cfg->registry.key;
	if (cfg->registry.bearer_env) {
		s->bearer = getenv(cfg->registry.bearer_env);
		if (!s->bearer || !*s->bearer) {
			IMP_ERROR("config: registry.bearer_env names %s, which is %s; export "
				  "the token in it or remove bearer_env",
				  cfg->registry.bearer_env, s->bearer ? "empty" : "not set");
			return IMP_ERR_CONFIG;
		}
		/* It goes into a header line: nothing that would end or split it. */
		for (const char *c = s->bearer; *c; c++)
			if ((unsigned char)*c <= ' ' || *c == 0x7f) {
				IMP_ERROR("config: the token in %s holds a blank or a control "
					  "character (a newline would start another header): give "
					  "the bare token", cfg->registry.bearer_env);
				return IMP_ERR_CONFIG;
			}
	}
	return IMP_OK;
}
