/*
 * imprint hsm init | status | export-trust | tokens: the organisation's root
 * of trust, and the PKCS#11 modules and tokens the station can see.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hsm/org.h"
#include "imprint/log.h"
#include "imprint/util.h"
#include "station.h"

#define HSM_USAGE                                                                  \
	"imprint hsm init [--force] [--psk-master] | status | export-trust [--out FILE] | " \
	"tokens [--module NAME|PATH]"

struct hsm_cmd {
	struct fmt_config cfg;
	struct hsm *hsm;
	struct hsm_session *session;
};

static imp_err hsm_cmd_open(struct station_ctx *ctx, struct hsm_cmd *c, bool create)
{
	imp_err rc;

	rc = st_load_config(ctx, &c->cfg);
	if (rc != IMP_OK)
		return rc;
	if (create && st_hsm_is_embedded(&c->cfg) && !hsm_embedded_exists(ctx->data_dir)) {
		IMP_INFO("no hsm configured: creating the embedded SoftHSM2 token in %s/hsm "
			 "(demo and development only)", ctx->data_dir);
		rc = hsm_embedded_create(ctx->data_dir);
		if (rc != IMP_OK)
			return rc;
	}
	rc = st_open_hsm(ctx, &c->cfg, &c->hsm);
	if (rc == IMP_OK)
		rc = hsm_session_open(c->hsm, &c->session);
	return rc;
}

static void hsm_cmd_close(struct hsm_cmd *c)
{
	hsm_session_close(c->session);
	hsm_close(c->hsm);
	fmt_config_release(&c->cfg);
}

static void print_status(const json_t *r, void *arg)
{
	const json_t *tok = json_object_get(r, "token");
	size_t i;
	json_t *v;

	(void)arg;
	printf("token: %s (%s %s, serial %s)\n", json_string_value(json_object_get(tok, "label")),
	       json_string_value(json_object_get(tok, "manufacturer")),
	       json_string_value(json_object_get(tok, "model")),
	       json_string_value(json_object_get(tok, "serial")));
	printf("\nkeys:\n");
	json_array_foreach(json_object_get(r, "keys"), i, v) {
		const char *cls = json_string_value(json_object_get(v, "class"));
		bool checked = strcmp(cls, "private") == 0 || strcmp(cls, "secret-key") == 0;

		printf("  %-26s %-10s %s\n", json_string_value(json_object_get(v, "label")), cls,
		       !checked ? "" :
		       json_is_true(json_object_get(v, "ok")) ? "sensitive, never extractable" :
								"CAN LEAVE THE HSM");
	}
	printf("\ncertificates:\n");
	json_array_foreach(json_object_get(r, "certificates"), i, v) {
		if (json_is_true(json_object_get(v, "missing"))) {
			printf("  %-26s MISSING\n", json_string_value(json_object_get(v, "role")));
			continue;
		}
		printf("  %-26s %s\n    sha256 %s\n    expires %s%s\n",
		       json_string_value(json_object_get(v, "role")),
		       json_string_value(json_object_get(v, "subject")),
		       json_string_value(json_object_get(v, "sha256")),
		       json_string_value(json_object_get(v, "not_after")),
		       json_is_true(json_object_get(v, "expired")) ? " (EXPIRED)" : "");
	}
	printf("\nkey modes:\n");
	{
		const char *mode;

		json_object_foreach((json_t *)json_object_get(r, "key_modes"), mode, v) {
			if (json_is_true(json_object_get(v, "ok")))
				printf("  %-8s yes\n", mode);
			else
				printf("  %-8s no: lacks %s\n", mode,
				       json_string_value(json_object_get(v, "missing")));
		}
	}
	printf("\n%s\n", json_is_true(json_object_get(r, "ok")) ? "status: ok" : "status: PROBLEMS");
}

static int hsm_init(int argc, char **argv, struct station_ctx *ctx)
{
	bool force = false, psk_master = false, help = false;
	const struct st_option opts[] = {
		{ "force", 0, ST_OPT_FLAG, &force, NULL,
		  "destroy an existing hierarchy on the token and create a new one" },
		{ "psk-master", 0, ST_OPT_FLAG, &psk_master, NULL,
		  "also create the AES-256 psk master (implied by key_mode psk); added to an "
		  "existing hierarchy that lacks it" },
		ST_OPTIONS_END,
	};
	unsigned flags;
	struct hsm_cmd c = { 0 };
	struct hsm_org_names names;
	char trust[4200];
	json_t *report = NULL;
	int first;
	imp_err rc;

	rc = st_parse_options(opts, "imprint hsm init [--force] [--psk-master]", argc, argv,
			      &first, &help);
	if (rc != IMP_OK || help)
		return (int)rc;
	rc = hsm_cmd_open(ctx, &c, true);
	if (rc != IMP_OK)
		goto cleanup;
	names.organisation = c.cfg.organisation.name;
	names.country = c.cfg.organisation.country;
	names.root_validity_days = c.cfg.organisation.root_validity_days;
	names.ca_validity_days = c.cfg.organisation.ca_validity_days;
	st_trust_dir(ctx, trust, sizeof(trust));
	/* The hierarchy every key mode needs must be possible on this token. */
	rc = hsm_mode_check(c.hsm, HSM_MODE_DEVICE);
	if (rc != IMP_OK)
		goto cleanup;
	if (c.cfg.key_mode == FMT_KEY_MODE_PSK)
		psk_master = true;
	if (psk_master && !(hsm_modes(c.hsm, NULL) & HSM_MODE_PSK)) {
		rc = hsm_mode_check(c.hsm, HSM_MODE_PSK); /* says what is missing */
		goto cleanup;
	}
	flags = (force ? HSM_ORG_INIT_FORCE : 0) | (psk_master ? HSM_ORG_INIT_PSK_MASTER : 0);
	rc = hsm_org_init(c.session, &names, flags, trust);
	if (rc != IMP_OK)
		goto cleanup;
	rc = hsm_org_status(c.hsm, c.session, &report);
	if (report) {
		json_object_set_new(report, "trust_dir", json_string(trust));
		st_emit(ctx, report, print_status, NULL);
	}
cleanup:
	hsm_cmd_close(&c);
	if (rc == IMP_ERR_EXISTS)
		return (int)rc; /* the module already said what to do */
	return st_fail(rc, rc == IMP_OK ? NULL : "the hierarchy was not created");
}

static int hsm_status(int argc, char **argv, struct station_ctx *ctx)
{
	bool help = false;
	const struct st_option opts[] = { ST_OPTIONS_END };
	struct hsm_cmd c = { 0 };
	json_t *report = NULL;
	int first;
	imp_err rc;

	rc = st_parse_options(opts, "imprint hsm status", argc, argv, &first, &help);
	if (rc != IMP_OK || help)
		return (int)rc;
	rc = hsm_cmd_open(ctx, &c, false);
	if (rc == IMP_OK)
		rc = hsm_org_status(c.hsm, c.session, &report);
	if (report)
		st_emit(ctx, report, print_status, NULL);
	hsm_cmd_close(&c);
	return st_fail(rc, rc == IMP_ERR_INSECURE ? "a key that can leave the hsm is not fit for "
						   "an organisation key; replace it"
						 : NULL);
}

static int hsm_export_trust(int argc, char **argv, struct station_ctx *ctx)
{
	bool help = false;
	const char *out = NULL;
	const struct st_option opts[] = {
		{ "out", 'o', ST_OPT_STRING, &out, "FILE",
		  "where to write the bundle ('-' for stdout; default DATA/trust/bundle.pem)" },
		ST_OPTIONS_END,
	};
	struct hsm_cmd c = { 0 };
	struct hsm_org org = { 0 };
	char path[4200];
	char *pem = NULL;
	int first;
	imp_err rc;

	rc = st_parse_options(opts, "imprint hsm export-trust [--out FILE]", argc, argv, &first,
			      &help);
	if (rc != IMP_OK || help)
		return (int)rc;
	rc = hsm_cmd_open(ctx, &c, false);
	if (rc == IMP_OK)
		rc = hsm_org_load(c.session, &org);
	if (rc == IMP_OK)
		rc = hsm_org_bundle_pem(&org, &pem);
	if (rc != IMP_OK)
		goto cleanup;
	if (out && strcmp(out, "-") == 0) {
		fputs(pem, stdout);
		goto cleanup;
	}
	if (!out) {
		st_trust_dir(ctx, path, sizeof(path));
		rc = imp_mkdir_p(path, 0755);
		strncat(path, "/" HSM_ORG_BUNDLE_FILE, sizeof(path) - strlen(path) - 1);
		out = path;
	}
	if (rc == IMP_OK)
		rc = imp_write_file_atomic(out, pem, strlen(pem), 0644);
	if (rc == IMP_OK)
		st_emit(ctx, json_pack("{s:s, s:i}", "trust_bundle", out, "certificates",
				       HSM_ORG_ROLE_COUNT), NULL, NULL);
	if (rc == IMP_OK && !ctx->json)
		printf("trust bundle written to %s (%d certificates, root first)\n", out,
		       HSM_ORG_ROLE_COUNT);
cleanup:
	free(pem);
	hsm_org_release(&org);
	hsm_cmd_close(&c);
	return st_fail(rc, NULL);
}

static void print_module(const json_t *m, void *arg)
{
	const json_t *lib = json_object_get(m, "library");
	const json_t *slot;
	size_t i;

	(void)arg;
	if (json_object_get(m, "error")) {
		printf("module %s: cannot be listed (%s; the message above says why)\n\n",
		       json_string_value(json_object_get(m, "module")),
		       json_string_value(json_object_get(m, "error")));
		return;
	}
	printf("module %s: %s %s %s\n  %s\n", json_string_value(json_object_get(m, "module")),
	       json_string_value(json_object_get(lib, "manufacturer")),
	       json_string_value(json_object_get(lib, "description")),
	       json_string_value(json_object_get(lib, "version")),
	       json_string_value(json_object_get(m, "uri")));
	json_array_foreach(json_object_get(m, "slots"), i, slot) {
		const json_t *t = json_object_get(slot, "token");

		printf("  slot %" JSON_INTEGER_FORMAT " \"%s\"\n    %s\n",
		       json_integer_value(json_object_get(slot, "id")),
		       json_string_value(json_object_get(slot, "description")),
		       json_string_value(json_object_get(slot, "uri")));
		if (!json_is_object(t)) {
			printf("    no token\n");
			continue;
		}
		printf("    token \"%s\" (%s %s, serial %s)%s\n      %s\n",
		       json_string_value(json_object_get(t, "label")),
		       json_string_value(json_object_get(t, "manufacturer")),
		       json_string_value(json_object_get(t, "model")),
		       json_string_value(json_object_get(t, "serial")),
		       !json_is_true(json_object_get(t, "initialized")) ? " uninitialised" :
		       !json_is_true(json_object_get(t, "user_pin_initialized")) ? " no user pin" :
		       json_is_true(json_object_get(t, "user_pin_locked")) ? " user pin LOCKED" : "",
		       json_string_value(json_object_get(t, "uri")));
	}
	printf("\n");
}

static int hsm_tokens(int argc, char **argv, struct station_ctx *ctx)
{
	bool help = false;
	const char *only = NULL;
	const struct st_option opts[] = {
		{ "module", 'm', ST_OPT_STRING, &only, "NAME|PATH",
		  "list only this module (default: the configured one, then every module "
		  "registered with p11-kit)" },
		ST_OPTIONS_END,
	};
	struct fmt_config cfg = { 0 };
	char **names = NULL;
	size_t n = 0;
	const char *configured;
	int first;
	imp_err rc, one;

	rc = st_parse_options(opts, "imprint hsm tokens [--module NAME|PATH]", argc, argv, &first,
			      &help);
	if (rc != IMP_OK || help)
		return (int)rc;
	rc = st_load_config(ctx, &cfg);
	if (rc != IMP_OK)
		goto cleanup;
	configured = cfg.hsm.module;
	if (st_hsm_is_embedded(&cfg)) {
		configured = hsm_embedded_module();
		/* SoftHSM shows the embedded token only under its own configuration. */
		if (hsm_embedded_exists(ctx->data_dir))
			rc = hsm_embedded_use_conf(ctx->data_dir);
		if (rc != IMP_OK)
			goto cleanup;
	}
	if (only) {
		const char *args = strcmp(only, configured) == 0 ? cfg.hsm.init_args : NULL;
		json_t *report = NULL;

		rc = hsm_module_report(&(struct hsm_module){ only, args }, &report);
		st_emit(ctx, report, print_module, NULL);
		goto cleanup;
	}
	rc = hsm_module_names(&names, &n);
	if (rc != IMP_OK)
		goto cleanup;
	for (size_t i = 0; i <= n; i++) {
		const char *name = i == 0 ? configured : names[i - 1];
		json_t *report = NULL;

		if (i > 0 && strcmp(name, configured) == 0)
			continue;
		/* One module that fails is reported and the others still listed. */
		one = hsm_module_report(&(struct hsm_module){ name, i == 0 ? cfg.hsm.init_args
									: NULL }, &report);
		st_emit(ctx, report, print_module, NULL);
		if (i == 0)
			rc = one;
	}
cleanup:
	hsm_module_names_free(names, n);
	fmt_config_release(&cfg);
	return st_fail(rc, rc == IMP_OK ? NULL : "check the module name or path (p11-kit "
						  "list-modules shows the registered ones)");
}

int cmd_hsm(int argc, char **argv, struct station_ctx *ctx)
{
	static const struct {
		const char *name;
		st_cmd_fn fn;
	} subs[] = {
		{ "export-trust", hsm_export_trust },
		{ "init", hsm_init },
		{ "status", hsm_status },
		{ "tokens", hsm_tokens },
	};

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		st_print_usage(HSM_USAGE, NULL);
		return argc < 2 ? IMP_ERR_USAGE : 0;
	}
	for (size_t i = 0; i < IMP_ARRAY_SIZE(subs); i++)
		if (strcmp(argv[1], subs[i].name) == 0)
			return subs[i].fn(argc - 1, argv + 1, ctx);
	IMP_ERROR("unknown hsm command '%s'; run 'imprint hsm --help'", argv[1]);
	return IMP_ERR_USAGE;
}
