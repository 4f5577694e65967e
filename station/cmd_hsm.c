/*
 * imprint hsm init | status | export-trust | tokens: the organisation's root
 * of trust, and the PKCS#11 modules and tokens the station can see.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hsm/anchor.h"
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

/* "certificate_profile": the device profile the hierarchy was made for. A
 * damaged note (it said why) makes the status not ok. */
static imp_err add_profile(struct station_ctx *ctx, json_t *report)
{
	char trust[4200], made[128];
	imp_err rc;

	st_trust_dir(ctx, trust, sizeof(trust));
	rc = fmt_certprof_trust_name(trust, made, sizeof(made));
	if (rc != IMP_OK) {
		snprintf(made, sizeof(made), "?");
		json_object_set_new(report, "ok", json_false());
	}
	json_object_set_new(report, "certificate_profile",
			    json_string(made[0] ? made : FMT_CERTPROF_DEFAULT));
	return rc;
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
	if (json_object_get(r, "certificate_profile"))
		printf("certificate profile: %s (docs/CERTIFICATES.md)\n",
		       json_string_value(json_object_get(r, "certificate_profile")));
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
	v = json_object_get(r, "journal_anchor");
	if (json_is_object(v))
		printf("\njournal anchor of station %s: event %" JSON_INTEGER_FORMAT ", serial counter "
		       "%" JSON_INTEGER_FORMAT ", serials reserved up to %" JSON_INTEGER_FORMAT "\n",
		       json_string_value(json_object_get(v, "station_id")),
		       json_integer_value(json_object_get(v, "seq")),
		       json_integer_value(json_object_get(v, "serial_counter")),
		       json_integer_value(json_object_get(v, "reserved")));
	else if (json_is_null(v))
		printf("\njournal anchor: none on this token yet\n");
	printf("\n%s\n", json_is_true(json_object_get(r, "ok")) ? "status: ok" : "status: PROBLEMS");
}

/* The journal's anchor of this station on the token (docs/JOURNAL.md
 * "Integrity"): null when there is none yet. */
static void add_anchor(struct station_ctx *ctx, struct hsm_session *s, json_t *report)
{
	const char *sid = ctx->run->cfg.station_id;
	struct jnl_opts jo = { .read_only = true, .must_exist = true };
	struct jnl_info info;
	struct hsm_anchor a;
	struct jnl *j = NULL;
	char jpath[4200];

	/* The station whose journal this data directory holds, else the
	 * configuration's (a journal not made yet). */
	st_journal_path(ctx, &ctx->run->cfg, jpath, sizeof(jpath));
	if (access(jpath, F_OK) == 0 && jnl_open(jpath, &jo, &j) == IMP_OK &&
	    jnl_info(j, &info) == IMP_OK)
		sid = info.station_id;
	if (!sid || hsm_anchor_get(s, sid, &a) != IMP_OK) {
		jnl_close(j);
		return;
	}
	json_object_set_new(report, "journal_anchor",
			    a.found ? json_pack("{s:s, s:I, s:I, s:I}", "station_id", sid, "seq",
						(json_int_t)a.seq, "serial_counter",
						(json_int_t)a.serial_counter, "reserved",
						(json_int_t)a.reserved)
				    : json_null());
	jnl_close(j);
}

static bool init_force, init_psk_master;

static const struct st_option init_opts[] = {
	{ "force", 0, ST_OPT_FLAG, &init_force, NULL,
	  "destroy an existing hierarchy on the token and create a new one (refused on a "
	  "station that has a journal)" },
	{ "psk-master", 0, ST_OPT_FLAG, &init_psk_master, NULL,
	  "also create the AES-256 psk master (implied by key_mode psk); added to an "
	  "existing hierarchy that lacks it" },
	ST_OPTIONS_END,
};

static int hsm_init(struct station_ctx *ctx, int argc, char **argv)
{
	struct hsm_cmd c = { 0 };
	struct hsm_org_names names;
	struct fmt_certprof_vars vars;
	char trust[4200];
	json_t *report = NULL;
	char jpath[4200];
	bool psk_master = init_psk_master, has_journal;
	unsigned flags;
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
	/* The CAs the configured device profile needs (certificate.profile). */
	fmt_config_cert_vars(c.cfg, NULL, NULL, NULL, &vars);
	names.profiles = c.cfg->certificate.profiles;
	names.vars = &vars;
	st_trust_dir(ctx, trust, sizeof(trust));
	/* The hierarchy every key mode needs must be possible on this token. */
	rc = hsm_mode_check(c.hsm, HSM_MODE_DEVICE);
	if (rc != IMP_OK)
		goto cleanup;
	if (c.cfg->key_mode == FMT_KEY_MODE_PSK)
		psk_master = true;
	if (psk_master && !(hsm_modes(c.hsm, NULL) & HSM_MODE_PSK)) {
		rc = hsm_mode_check(c.hsm, HSM_MODE_PSK); /* says what is missing */
		goto cleanup;
	}
	/* A station that made boards: they chain to the hierarchy --force
	 * would destroy, and its journal's checkpoints to its keys. */
	has_journal = st_has_journal(ctx, c.cfg, jpath, sizeof(jpath));
	if (init_force && has_journal) {
		IMP_ERROR("this station has a journal (%s): its boards and records chain to "
			  "the hierarchy --force would destroy, and nothing could verify them "
			  "after; a new hierarchy is for a new station (another data "
			  "directory)", jpath);
		rc = IMP_ERR_EXISTS;
		goto cleanup;
	}
	flags = (init_force ? HSM_ORG_INIT_FORCE : 0) |
		(psk_master ? HSM_ORG_INIT_PSK_MASTER : 0) |
		(has_journal ? HSM_ORG_INIT_KEEP : 0);
	rc = hsm_org_init(c.session, &names, flags, trust);
	/* The refusal did not suggest --force, which would be refused too. */
	if (rc == IMP_ERR_EXISTS && has_journal)
		IMP_ERROR("this station has a journal (%s): its boards and records chain to "
			  "that hierarchy, so it is kept and --force is refused; a new "
			  "hierarchy is for a new station (another data directory)", jpath);
	if (rc != IMP_OK)
		goto cleanup;
	rc = hsm_org_status(c.hsm, c.session, &report);
	if (report) {
		json_object_set_new(report, "trust_dir", json_string(trust));
		add_profile(ctx, report);
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
	bool keys_checked;
	struct hsm_cmd c = { 0 };
	json_t *report = NULL;
	imp_err rc;

	(void)argc;
	(void)argv;
	rc = hsm_cmd_open(ctx, &c, false);
	if (rc == IMP_OK)
		rc = hsm_org_status(c.hsm, c.session, &report);
	/* Only the key check has a report; an insecure pin file said its own fix. */
	keys_checked = report != NULL;
	if (report) {
		imp_err prc = add_profile(ctx, report);

		if (rc == IMP_OK)
			rc = prc;
		if (c.session)
			add_anchor(ctx, c.session, report);
		st_emit(ctx, report, print_status, NULL);
	}
	hsm_cmd_close(&c);
	return st_fail(rc, rc == IMP_ERR_INSECURE && keys_checked
				   ? "a key that can leave the hsm is not fit for an organisation "
				     "key; replace it"
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

static const char *tokens_module;

static const struct st_option tokens_opts[] = {
	{ "module", 'm', ST_OPT_STRING, &tokens_module, "NAME|PATH",
	  "list only this module (default: the configured one, then every module "
	  "registered with p11-kit)" },
	ST_OPTIONS_END,
};

static int hsm_tokens(struct station_ctx *ctx, int argc, char **argv)
{
	const struct fmt_config *cfg = &ctx->run->cfg;
	const char *only = tokens_module, *configured = cfg->hsm.module;
	char **names = NULL;
	size_t n = 0;
	imp_err rc = IMP_OK, one;

	(void)argc;
	(void)argv;
	if (st_hsm_is_embedded(cfg)) {
		configured = hsm_embedded_module();
		/* SoftHSM shows the embedded token only under its own configuration. */
		if (hsm_embedded_exists(ctx->data_dir))
			rc = hsm_embedded_use_conf(ctx->data_dir);
		if (rc != IMP_OK)
			goto cleanup;
	}
	if (only) {
		const char *args = strcmp(only, configured) == 0 ? cfg->hsm.init_args : NULL;
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
		one = hsm_module_report(&(struct hsm_module){ name, i == 0 ? cfg->hsm.init_args
									: NULL }, &report);
		st_emit(ctx, report, print_module, NULL);
		if (i == 0)
			rc = one;
	}
cleanup:
	hsm_module_names_free(names, n);
	return st_fail(rc, rc == IMP_OK ? NULL : "check the module name or path (p11-kit "
						  "list-modules shows the registered ones)");
}

static const struct st_command hsm_export_trust_cmd = {
	.name = "export-trust",
	.fn = hsm_export_trust,
	.need = NEED_CONFIG,
	.summary = "write the public trust bundle a backend needs",
	.usage = "imprint hsm export-trust [--out FILE]",
	.opts = trust_opts,
	.help = "Writes the organisation's certificates (root first, then the device CA, "
		"the record-signing, revocation and code-signing certificates) as one PEM "
		"file, read from the hsm: what a registry or backend needs to verify "
		"records and device certificates. Nothing secret is in it. Default FILE: "
		"DATA/trust/bundle.pem.",
	.exits = (const imp_err[]){ IMP_ERR_IO, IMP_ERR_HSM, IMP_ERR_PIN, IMP_ERR_NOT_FOUND, IMP_OK },
	.example = "imprint hsm export-trust --out /srv/registry/trust.pem",
};

static const struct st_command hsm_init_cmd = {
	.name = "init",
	.fn = hsm_init,
	.need = NEED_CONFIG,
	.summary = "create the organisation key hierarchy in the hsm",
	.usage = "imprint hsm init [--force] [--psk-master]",
	.opts = init_opts,
	.help = "Creates the root CA, device CA, record-signing, revocation and "
		"code-signing keys as sensitive, never-extractable token objects, and their "
		"certificates (written to DATA/trust as well); the AES-256 psk master only "
		"when key_mode is psk or with --psk-master. With no hsm configured, first "
		"creates the embedded SoftHSM2 token in DATA/hsm (demo and development "
		"only). Exits 10 if the token already holds a hierarchy: --force destroys "
		"it and every device certificate it issued stops chaining to the new root. "
		"On a station that has a journal --force is refused (exit 10), and the "
		"refusal without it says so instead of suggesting --force.",
	.exits = (const imp_err[]){ IMP_ERR_IO, IMP_ERR_HSM, IMP_ERR_PIN, IMP_ERR_PIN_LOCKED,
				    IMP_ERR_NOT_FOUND, IMP_ERR_EXISTS, IMP_ERR_UNSUPPORTED,
				    IMP_OK },
	.example = "imprint hsm init\nimprint --config station.json hsm init --psk-master",
};

static const struct st_command hsm_status_cmd = {
	.name = "status",
	.fn = hsm_status,
	.need = NEED_CONFIG,
	.summary = "list keys and certificates; check every private key stays in the hsm",
	.usage = "imprint hsm status",
	.help = "Lists the token, every key with whether it is sensitive and never "
		"extractable, and every role's certificate with its subject, SHA-256 and "
		"expiry; says which key modes (device, hsm, psk) the token can do and what "
		"it lacks for the others (docs/HSM.md). Exits 13 (insecure) if a private or "
		"secret key could leave the hsm, 9 if a role of the hierarchy is missing "
		"('imprint hsm init').",
	.exits = (const imp_err[]){ IMP_ERR_HSM, IMP_ERR_PIN, IMP_ERR_PIN_LOCKED,
				    IMP_ERR_NOT_FOUND, IMP_ERR_INSECURE, IMP_OK },
	.example = "imprint hsm status\nimprint --json hsm status",
};

static const struct st_command hsm_tokens_cmd = {
	.name = "tokens",
	.fn = hsm_tokens,
	.need = NEED_CONFIG,
	.summary = "list pkcs11 modules, slots and tokens with their uris",
	.usage = "imprint hsm tokens [--module NAME|PATH]",
	.opts = tokens_opts,
	.help = "Lists the configured module (the embedded SoftHSM2 default under its own "
		"configuration), then every module registered with p11-kit, loaded one at a "
		"time; each slot and token with its RFC 7512 uri, to copy into hsm.token. A "
		"module that cannot be loaded is reported and the others are still listed; "
		"--module lists one module only.",
	.exits = (const imp_err[]){ IMP_ERR_HSM, IMP_ERR_NOT_FOUND, IMP_OK },
	.example = "imprint hsm tokens --module softhsm2",
};

extern const struct st_command st_hsm_ca_verification_cert_cmd; /* cmd_hsm_verification.c */

static const struct st_command *const hsm_subs[] = {
	&st_hsm_ca_verification_cert_cmd,
	&hsm_export_trust_cmd,
	&hsm_init_cmd,
	&hsm_status_cmd,
	&hsm_tokens_cmd,
	NULL,
};

const struct st_command st_cmd_hsm = {
	.name = "hsm",
	.need = NEED_DATA_DIR,
	.summary = "the organisation's keys: init, status, export-trust, ca-verification-cert; "
		   "tokens",
	.usage = "imprint hsm init [--force] [--psk-master] | status | export-trust [--out FILE] | "
		 "ca-verification-cert --code CODE [--out FILE] | tokens [--module NAME|PATH]",
	.subs = hsm_subs,
	.help = "The organisation's root of trust in the hsm (the configured PKCS#11 token, "
		"or the embedded SoftHSM2 token in DATA/hsm): create it, check it, hand out "
		"its public certificates, and find tokens. Keys never leave the hsm; only "
		"certificates are written.",
	.example = "imprint hsm init\nimprint hsm status",
};
