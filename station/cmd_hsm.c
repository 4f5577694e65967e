/*
 * imprint hsm init | status | export-trust: the organisation's root of trust.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hsm/org.h"
#include "imprint/log.h"
#include "imprint/util.h"
#include "run.h"

struct hsm_cmd {
	const struct fmt_config *cfg; /* the run's */
	struct hsm *hsm;
	struct hsm_session *session;
};

static imp_err hsm_cmd_open(struct station_ctx *ctx, struct hsm_cmd *c, bool create)
{
	imp_err rc;

	c->cfg = &ctx->run->cfg;
	if (create && st_hsm_is_embedded(c->cfg) && !hsm_embedded_exists(ctx->data_dir)) {
		IMP_INFO("no hsm configured: creating the embedded SoftHSM2 token in %s/hsm "
			 "(demo and development only)", ctx->data_dir);
		rc = hsm_embedded_create(ctx->data_dir);
		if (rc != IMP_OK)
			return rc;
	}
	rc = st_open_hsm(ctx, c->cfg, &c->hsm);
	if (rc == IMP_OK)
		rc = hsm_session_open(c->hsm, &c->session);
	return rc;
}

static void hsm_cmd_close(struct hsm_cmd *c)
{
	hsm_session_close(c->session);
	hsm_close(c->hsm);
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
	printf("\n%s\n", json_is_true(json_object_get(r, "ok")) ? "status: ok" : "status: PROBLEMS");
}

static bool init_force;

static const struct st_option init_opts[] = {
	{ "force", 0, ST_OPT_FLAG, &init_force, NULL,
	  "destroy an existing hierarchy on the token and create a new one" },
	ST_OPTIONS_END,
};

static int hsm_init(struct station_ctx *ctx, int argc, char **argv)
{
	struct hsm_cmd c = { 0 };
	struct hsm_org_names names;
	char trust[4200];
	json_t *report = NULL;
	imp_err rc;

	(void)argc;
	(void)argv;
	rc = hsm_cmd_open(ctx, &c, true);
	if (rc != IMP_OK)
		goto cleanup;
	names.organisation = c.cfg->organisation.name;
	names.country = c.cfg->organisation.country;
	names.root_validity_days = c.cfg->organisation.root_validity_days;
	names.ca_validity_days = c.cfg->organisation.ca_validity_days;
	st_trust_dir(ctx, trust, sizeof(trust));
	rc = hsm_org_init(c.session, &names, init_force, trust);
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

static int hsm_status(struct station_ctx *ctx, int argc, char **argv)
{
	struct hsm_cmd c = { 0 };
	json_t *report = NULL;
	imp_err rc;

	(void)argc;
	(void)argv;
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

static const char *trust_out;

static const struct st_option trust_opts[] = {
	{ "out", 'o', ST_OPT_STRING, &trust_out, "FILE",
	  "where to write the bundle ('-' for stdout; default DATA/trust/bundle.pem)" },
	ST_OPTIONS_END,
};

static int hsm_export_trust(struct station_ctx *ctx, int argc, char **argv)
{
	const char *out = trust_out;
	struct hsm_cmd c = { 0 };
	struct hsm_org org = { 0 };
	char path[4200];
	char *pem = NULL;
	imp_err rc;

	(void)argc;
	(void)argv;
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

static const struct st_command hsm_export_trust_cmd = {
	.name = "export-trust",
	.fn = hsm_export_trust,
	.need = NEED_CONFIG,
	.summary = "write the public trust bundle a backend needs",
	.usage = "imprint hsm export-trust [--out FILE]",
	.opts = trust_opts,
	.help = "The organisation's certificates (root first, then the device CA, the "
		"record-signing, revocation and code-signing certificates) as one PEM file.",
};

static const struct st_command hsm_init_cmd = {
	.name = "init",
	.fn = hsm_init,
	.need = NEED_CONFIG,
	.summary = "create the organisation key hierarchy in the hsm",
	.usage = "imprint hsm init [--force]",
	.opts = init_opts,
	.help = "Creates the root CA, device CA, record-signing, revocation and code-signing "
		"keys as sensitive, never-extractable token objects, and their certificates. "
		"With no hsm configured, first creates the embedded SoftHSM2 token in DATA/hsm "
		"(demo and development only).",
};

static const struct st_command hsm_status_cmd = {
	.name = "status",
	.fn = hsm_status,
	.need = NEED_CONFIG,
	.summary = "list keys and certificates; check every private key stays in the hsm",
	.usage = "imprint hsm status",
	.help = "Exits 13 (insecure) if an organisation key could leave the hsm.",
};

static const struct st_command *const hsm_subs[] = {
	&hsm_export_trust_cmd,
	&hsm_init_cmd,
	&hsm_status_cmd,
	NULL,
};

const struct st_command st_cmd_hsm = {
	.name = "hsm",
	.need = NEED_DATA_DIR,
	.summary = "the organisation's keys: init, status, export-trust",
	.usage = "imprint hsm init [--force] | status | export-trust [--out FILE]",
	.subs = hsm_subs,
};
