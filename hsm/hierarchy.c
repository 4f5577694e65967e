/*
 * The organisation key hierarchy (hsm/org.h): created, loaded and checked
 * through the hsm layer, certificates issued with formats/x509.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/asn1.h>
#include <openssl/pem.h>

#include "formats/config.h"
#include "formats/x509.h"
#include "hsm/org.h"
#include "hsm_int.h"
#include "imprint/log.h"
#include "imprint/util.h"

struct role_desc {
	const char *label;     /* persisted */
	const char *file;      /* persisted */
	const char *cn_suffix; /* CN = "<organisation> <suffix>" */
	enum fmt_cert_profile profile;
};

static const struct role_desc roles[HSM_ORG_ROLE_COUNT] = {
	[HSM_ORG_ROOT] = { "imprint-root-ca", "root-ca.pem", "Root CA", FMT_CERT_ROOT_CA },
	[HSM_ORG_DEVICE_CA] = { "imprint-device-ca", "device-ca.pem", "Device Identity CA",
				FMT_CERT_SUB_CA },
	[HSM_ORG_RECORD] = { "imprint-record-signing", "record-signing.pem", "Record Signing",
			     FMT_CERT_RECORD_SIGNING },
	[HSM_ORG_CODE] = { "imprint-code-signing", "code-signing.pem", "Code Signing",
			   FMT_CERT_CODE_SIGNING },
	[HSM_ORG_REVOCATION] = { "imprint-revocation", "revocation.pem", "Revocation",
				 FMT_CERT_REVOCATION },
};

const char *hsm_org_label(enum hsm_org_role role)
{
	return role < HSM_ORG_ROLE_COUNT ? roles[role].label : "?";
}

const char *hsm_org_file(enum hsm_org_role role)
{
	return role < HSM_ORG_ROLE_COUNT ? roles[role].file : "?";
}

static bool is_org_label(const char *label)
{
	if (strcmp(label, HSM_ORG_PSK_LABEL) == 0)
		return true;
	for (int r = 0; r < HSM_ORG_ROLE_COUNT; r++)
		if (strcmp(label, roles[r].label) == 0)
			return true;
	return false;
}

static imp_err signer_sign(void *arg, const uint8_t digest[32], uint8_t raw[64])
{
	struct hsm_key_signer *ks = arg;

	return hsm_sign_digest(ks->session, ks->key, digest, raw);
}

void hsm_signer_init(struct hsm_key_signer *ks, struct hsm_session *s, hsm_obj key,
		     EVP_PKEY *pub, struct fmt_signer *out)
{
	ks->session = s;
	ks->key = key;
	out->sign_digest = signer_sign;
	out->arg = ks;
	out->pub = pub;
}

/*
 * Destroy (why != NULL: logged as the reason) or count the objects that
 * carry one of our labels; *psk counts those of the PSK master.
 */
static imp_err clear_existing(struct hsm_session *s, const char *why, size_t *found,
			      size_t *psk)
{
	struct hsm_obj_info *objs = NULL;
	size_t n = 0;
	imp_err rc;

	*found = 0;
	*psk = 0;
	rc = hsm_list(s, HSM_CLASS_ANY, &objs, &n);
	if (rc != IMP_OK)
		return rc;
	for (size_t i = 0; i < n; i++) {
		if (!objs[i].token || !is_org_label(objs[i].label))
			continue;
		(*found)++;
		if (strcmp(objs[i].label, HSM_ORG_PSK_LABEL) == 0)
			(*psk)++;
		if (!why)
			continue;
		rc = hsm_destroy(s, objs[i].handle);
		if (rc != IMP_OK)
			break;
		IMP_INFO("destroyed %s object '%s' (%s)", hsm_class_name(objs[i].cls),
			 objs[i].label, why);
	}
	free(objs);
	return rc;
}

static imp_err write_trust(const char *trust_dir, X509 *const certs[HSM_ORG_ROLE_COUNT])
{
	char path[4096];
	char *bundle = NULL;
	size_t blen = 0;
	imp_err rc;

	rc = imp_mkdir_p(trust_dir, 0755);
	if (rc != IMP_OK)
		return rc;
	for (int r = 0; r < HSM_ORG_ROLE_COUNT; r++) {
		char *pem = NULL;
		char *nb;
		size_t plen;

		snprintf(path, sizeof(path), "%s/%s", trust_dir, roles[r].file);
		rc = fmt_cert_write_pem(certs[r], path);
		if (rc == IMP_OK)
			rc = fmt_cert_to_pem(certs[r], &pem);
		if (rc != IMP_OK)
			goto cleanup;
		plen = strlen(pem);
		nb = realloc(bundle, blen + plen + 1);
		if (!nb) {
			free(pem);
			rc = IMP_ERR_NOMEM;
			goto cleanup;
		}
		bundle = nb;
		memcpy(bundle + blen, pem, plen + 1);
		blen += plen;
		free(pem);
	}
	snprintf(path, sizeof(path), "%s/%s", trust_dir, HSM_ORG_BUNDLE_FILE);
	rc = imp_write_file_atomic(path, bundle, blen, 0644);
cleanup:
	free(bundle);
	return rc;
}

static imp_err psk_master_create(struct hsm_session *s, hsm_obj *out)
{
	uint8_t id = 0x10;
	struct hsm_key_opts o = { HSM_KEY_TOKEN | HSM_KEY_DERIVE, HSM_ORG_PSK_LABEL, &id, 1 };

	return hsm_aes_keygen(s, &o, out);
}

/* A complete hierarchy without a PSK master: add one. */
static imp_err psk_master_add(struct hsm_session *s)
{
	struct hsm_org org;
	hsm_obj psk;
	imp_err rc;

	rc = hsm_org_load(s, &org);
	hsm_org_release(&org);
	if (rc != IMP_OK)
		return rc;
	rc = psk_master_create(s, &psk);
	if (rc == IMP_OK)
		IMP_INFO("added the psk master '%s' to the existing hierarchy", HSM_ORG_PSK_LABEL);
	return rc;
}

/* A role's certificate with the fixed roles of formats/x509.h. */
static imp_err issue_fixed(const struct hsm_org_names *names, enum hsm_org_role r,
			   EVP_PKEY *key, X509 *root, const struct fmt_signer *signer, X509 **out)
{
	char cn[256];
	struct fmt_name_entry subject[3];
	size_t ns = 0;
	struct fmt_cert_request req = { 0 };

	snprintf(cn, sizeof(cn), "%s %s", names->organisation, roles[r].cn_suffix);
	if (names->country && *names->country)
		subject[ns++] = (struct fmt_name_entry){ "C", names->country };
	subject[ns++] = (struct fmt_name_entry){ "O", names->organisation };
	subject[ns++] = (struct fmt_name_entry){ "CN", cn };
	req.profile = roles[r].profile;
	req.subject = subject;
	req.subject_count = ns;
	req.subject_key = key;
	req.issuer = root;
	req.validity_days = r == HSM_ORG_ROOT ? names->root_validity_days : names->ca_validity_days;
	return fmt_cert_issue(&req, signer, out);
}

_Static_assert(FMT_CP_ROOT == (int)HSM_ORG_ROOT && FMT_CP_DEVICE_CA == (int)HSM_ORG_DEVICE_CA &&
		       FMT_CP_RECORD_SIGNING == (int)HSM_ORG_RECORD &&
		       FMT_CP_CODE_SIGNING == (int)HSM_ORG_CODE &&
		       FMT_CP_REVOCATION == (int)HSM_ORG_REVOCATION,
	       "certificate profile roles are the hierarchy's roles");

/* A role's certificate with its profile (role r of the set is role r here). */
static imp_err issue_profiled(const struct hsm_org_names *names, enum hsm_org_role r,
			      EVP_PKEY *key, X509 *root, const struct fmt_signer *signer,
			      X509 **out)
{
	static const struct fmt_certprof_vars none = { 0 };
	const struct fmt_certprof_vars *v = names->vars ? names->vars : &none;
	struct fmt_certprof_request req = { 0 };
	struct fmt_name_entry *subject = NULL;
	size_t ns = 0;
	imp_err rc;

	req.profile = names->profiles->role[r];
	rc = fmt_certprof_subject(req.profile, v, &subject, &ns);
	if (rc != IMP_OK)
		return rc;
	req.subject = subject;
	req.subject_count = ns;
	req.vars = v;
	req.subject_key = key;
	req.issuer = root;
	rc = fmt_certprof_issue(&req, signer, out);
	fmt_name_entries_free(subject, ns);
	return rc;
}

imp_err hsm_org_init(struct hsm_session *s, const struct hsm_org_names *names,
		     unsigned flags, const char *trust_dir)
{
	hsm_obj pub[HSM_ORG_ROLE_COUNT] = { 0 }, priv[HSM_ORG_ROLE_COUNT] = { 0 };
	EVP_PKEY *pkey[HSM_ORG_ROLE_COUNT] = { 0 };
	X509 *cert[HSM_ORG_ROLE_COUNT] = { 0 };
	struct hsm_key_signer ks;
	struct fmt_signer root_signer;
	hsm_obj psk = HSM_OBJ_NONE;
	size_t found = 0, found_psk = 0;
	bool force = flags & HSM_ORG_INIT_FORCE;
	imp_err rc;

	rc = clear_existing(s, NULL, &found, &found_psk);
	if (rc != IMP_OK)
		return rc;
	if (found > 0 && !force && found_psk == 0 && (flags & HSM_ORG_INIT_PSK_MASTER))
		return psk_master_add(s);
	if (found > 0 && !force) {
		IMP_ERROR("the token already holds an organisation hierarchy (%zu objects); "
			  "nothing was changed. 'imprint hsm status' shows it%s", found,
			  flags & HSM_ORG_INIT_KEEP ? ""
			  : "; 'imprint hsm init --force' destroys and replaces it");
		return IMP_ERR_EXISTS;
	}
	if (found > 0) {
		rc = clear_existing(s, "--force", &found, &found_psk);
		if (rc != IMP_OK)
			return rc;
	}

	for (int r = 0; r < HSM_ORG_ROLE_COUNT; r++) {
		uint8_t id = (uint8_t)(r + 1);
		struct hsm_key_opts o = { HSM_KEY_TOKEN | HSM_KEY_SIGN, roles[r].label, &id, 1 };

		rc = hsm_ec_keygen(s, &o, &pub[r], &priv[r]);
		if (rc == IMP_OK)
			rc = hsm_ec_pkey(s, pub[r], &pkey[r]);
		if (rc != IMP_OK)
			goto cleanup;
	}
	if (flags & HSM_ORG_INIT_PSK_MASTER) {
		rc = psk_master_create(s, &psk);
		if (rc != IMP_OK)
			goto cleanup;
	}

	hsm_signer_init(&ks, s, priv[HSM_ORG_ROOT], pkey[HSM_ORG_ROOT], &root_signer);
	for (int r = 0; r < HSM_ORG_ROLE_COUNT; r++) {
		uint8_t *der = NULL;
		size_t der_len = 0;
		uint8_t id = (uint8_t)(r + 1);
		hsm_obj cobj;

		if (names->profiles)
			rc = issue_profiled(names, (enum hsm_org_role)r, pkey[r],
					    r == HSM_ORG_ROOT ? NULL : cert[HSM_ORG_ROOT],
					    &root_signer, &cert[r]);
		else
			rc = issue_fixed(names, (enum hsm_org_role)r, pkey[r],
					 r == HSM_ORG_ROOT ? NULL : cert[HSM_ORG_ROOT],
					 &root_signer, &cert[r]);
		if (rc == IMP_OK)
			rc = fmt_cert_to_der(cert[r], &der, &der_len);
		if (rc == IMP_OK)
			rc = hsm_cert_store(s, der, der_len, roles[r].label, &id, 1, &cobj);
		free(der);
		if (rc != IMP_OK)
			goto cleanup;
	}
	rc = write_trust(trust_dir, cert);
	if (rc == IMP_OK) {
		char note[4200];

		snprintf(note, sizeof(note), "%s/%s", trust_dir, FMT_CERTPROF_TRUST_FILE);
		if (names->profiles)
			rc = fmt_certprof_trust_write(trust_dir,
						      names->profiles->role[FMT_CP_DEVICE]);
		else if (unlink(note) != 0 && errno != ENOENT)
			rc = IMP_ERR_IO;
	}
	if (rc == IMP_OK)
		IMP_INFO("organisation hierarchy created%s%s; certificates in %s",
			 names->profiles ? " for certificate profile " : "",
			 names->profiles ? fmt_certprof_name(names->profiles->role[FMT_CP_DEVICE])
					 : "",
			 trust_dir);
cleanup:
	for (int r = 0; r < HSM_ORG_ROLE_COUNT; r++) {
		EVP_PKEY_free(pkey[r]);
		X509_free(cert[r]);
	}
	if (rc != IMP_OK) {
		/* Leave no half hierarchy behind: a retry must not need --force. */
		size_t dummy, dummy_psk;

		clear_existing(s, "rolling back the failed init", &dummy, &dummy_psk);
	}
	return rc;
}

/*
 * The one object labelled label among objs (as hsm_find would find it):
 * IMP_ERR_NOT_FOUND if none, IMP_ERR_CONFIG if several.
 */
static imp_err pick(const struct hsm_obj_info *objs, size_t n, const char *label,
		    enum hsm_class cls, hsm_obj *out)
{
	size_t found = 0;

	for (size_t i = 0; i < n; i++) {
		if (strcmp(objs[i].label, label) != 0)
			continue;
		*out = objs[i].handle;
		found++;
	}
	if (found == 0)
		return IMP_ERR_NOT_FOUND;
	if (found > 1) {
		IMP_ERROR("several objects match labelled \"%s\" (%s) on the token: name one by "
			  "its id too", label, hsm_class_name(cls));
		return IMP_ERR_CONFIG;
	}
	return IMP_OK;
}

static imp_err cert_of(struct hsm_session *s, hsm_obj o, X509 **out)
{
	uint8_t *der = NULL;
	size_t n = 0;
	imp_err rc;

	rc = hsm_object_value(s, o, &der, &n);
	if (rc == IMP_OK)
		rc = fmt_cert_from_der(der, n, out);
	free(der);
	return rc;
}

static imp_err load_cert(struct hsm_session *s, const char *label, X509 **out)
{
	hsm_obj o;
	imp_err rc;

	rc = hsm_find(s, HSM_CLASS_CERTIFICATE, label, NULL, 0, &o);
	return rc == IMP_OK ? cert_of(s, o, out) : rc;
}

/*
 * The roles' keys and certificates are found in one listing of each class
 * rather than one C_FindObjectsInit per object: SoftHSM2's file store reads
 * every object file of the token again at each C_FindObjectsInit. Not one
 * listing of every class: a station killed while SoftHSM2 wrote the
 * journal anchor's data object leaves one whose attributes no longer read
 * (CKR_ATTRIBUTE_VALUE_INVALID), and every later start-up would fail on it
 * (provision_crash).
 */
imp_err hsm_org_load(struct hsm_session *s, struct hsm_org *org)
{
	struct hsm_obj_info *keys = NULL, *certs = NULL;
	size_t nk = 0, nc = 0;
	hsm_obj cert;
	imp_err rc;

	memset(org, 0, sizeof(*org));
	rc = hsm_list(s, HSM_CLASS_PRIVATE_KEY, &keys, &nk);
	if (rc == IMP_OK)
		rc = hsm_list(s, HSM_CLASS_CERTIFICATE, &certs, &nc);
	for (int r = 0; r < HSM_ORG_ROLE_COUNT && rc == IMP_OK; r++) {
		rc = pick(keys, nk, roles[r].label, HSM_CLASS_PRIVATE_KEY, &org->key[r]);
		if (rc == IMP_OK)
			rc = pick(certs, nc, roles[r].label, HSM_CLASS_CERTIFICATE, &cert);
		if (rc == IMP_OK)
			rc = cert_of(s, cert, &org->cert[r]);
		if (rc == IMP_ERR_NOT_FOUND)
			IMP_ERROR("the token has no '%s': on a new token run 'imprint hsm "
				  "init' first; a station that has issued serials restores its "
				  "token from backup instead (init would start a new hierarchy)",
				  roles[r].label);
	}
	free(keys);
	free(certs);
	if (rc == IMP_OK) {
		/* Optional: only key mode psk needs it (hsm_org_ready). */
		rc = hsm_find(s, HSM_CLASS_SECRET_KEY, HSM_ORG_PSK_LABEL, NULL, 0, &org->psk_master);
		if (rc == IMP_ERR_NOT_FOUND) {
			org->psk_master = HSM_OBJ_NONE;
			rc = IMP_OK;
		}
	}
	if (rc != IMP_OK)
		hsm_org_release(org);
	return rc;
}

imp_err hsm_org_ready(struct hsm *h, const struct hsm_org *org, enum hsm_mode mode)
{
	imp_err rc;

	rc = hsm_mode_check(h, mode);
	if (rc != IMP_OK)
		return rc;
	if (mode == HSM_MODE_PSK && org->psk_master == HSM_OBJ_NONE) {
		IMP_ERROR("key mode psk needs the psk master '%s', and the token has none; "
			  "run 'imprint hsm init --psk-master' to add it (nothing was touched)",
			  HSM_ORG_PSK_LABEL);
		return IMP_ERR_NOT_FOUND;
	}
	return IMP_OK;
}

/* {"device": {"ok": true, "missing": ""}, ...}; psk also needs the master. */
static json_t *modes_json(struct hsm *h, struct hsm_session *s)
{
	static const enum hsm_mode all[] = { HSM_MODE_DEVICE, HSM_MODE_HSM, HSM_MODE_PSK };
	char missing[3][512];
	unsigned modes = hsm_modes(h, missing);
	hsm_obj psk;
	json_t *j = json_object();

	if ((modes & HSM_MODE_PSK) &&
	    hsm_find(s, HSM_CLASS_SECRET_KEY, HSM_ORG_PSK_LABEL, NULL, 0, &psk) != IMP_OK) {
		modes &= ~(unsigned)HSM_MODE_PSK;
		snprintf(missing[2], sizeof(missing[2]),
			 "the psk master (imprint hsm init --psk-master)");
	}
	for (size_t i = 0; i < IMP_ARRAY_SIZE(all); i++)
		json_object_set_new(j, hsm_mode_name(all[i]),
				    json_pack("{s:b, s:s}", "ok", (modes & all[i]) != 0, "missing",
					      missing[i]));
	return j;
}

/* The roles whose keys sign at every board. */
static const enum hsm_org_role per_board[] = { HSM_ORG_DEVICE_CA, HSM_ORG_RECORD };

static imp_err session_copy(struct hsm_session *s, hsm_obj *key, hsm_obj *token_key)
{
	hsm_obj copy;
	imp_err rc = hsm_key_session_copy(s, *key, &copy);

	if (rc == IMP_ERR_UNSUPPORTED)
		return IMP_OK;
	if (rc != IMP_OK)
		return rc;
	*token_key = *key;
	*key = copy;
	return IMP_OK;
}

imp_err hsm_org_session_keys(struct hsm_session *s, struct hsm_org *org)
{
	imp_err rc = IMP_OK;

	if (org->copies)
		return org->copies == s ? IMP_OK : IMP_ERR_INTERNAL;
	org->copies = s;
	for (size_t i = 0; i < IMP_ARRAY_SIZE(per_board) && rc == IMP_OK; i++)
		rc = session_copy(s, &org->key[per_board[i]], &org->token_key[per_board[i]]);
	if (rc == IMP_OK && org->psk_master != HSM_OBJ_NONE)
		rc = session_copy(s, &org->psk_master, &org->token_psk_master);
	return rc;
}

void hsm_org_release(struct hsm_org *org)
{
	for (int r = 0; r < HSM_ORG_ROLE_COUNT; r++) {
		if (org->copies && org->token_key[r] != HSM_OBJ_NONE)
			(void)hsm_destroy(org->copies, org->key[r]);
		X509_free(org->cert[r]);
	}
	if (org->copies && org->token_psk_master != HSM_OBJ_NONE)
		(void)hsm_destroy(org->copies, org->psk_master);
	memset(org, 0, sizeof(*org));
}

imp_err hsm_org_bundle_pem(const struct hsm_org *org, char **pem)
{
	char *out = NULL;
	size_t len = 0;

	*pem = NULL;
	for (int r = 0; r < HSM_ORG_ROLE_COUNT; r++) {
		char *one = NULL;
		char *nb;
		size_t n;
		imp_err rc = fmt_cert_to_pem(org->cert[r], &one);

		if (rc != IMP_OK) {
			free(out);
			return rc;
		}
		n = strlen(one);
		nb = realloc(out, len + n + 1);
		if (!nb) {
			free(one);
			free(out);
			return IMP_ERR_NOMEM;
		}
		out = nb;
		memcpy(out + len, one, n + 1);
		len += n;
		free(one);
	}
	*pem = out;
	return IMP_OK;
}

static void time_rfc3339(const ASN1_TIME *t, char out[32])
{
	struct tm tm;

	if (!t || ASN1_TIME_to_tm(t, &tm) != 1) {
		snprintf(out, 32, "?");
		return;
	}
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_t *cert_json(enum hsm_org_role r, X509 *cert)
{
	char fp[65] = "";
	char subject[512];
	char not_after[32];

	fmt_cert_fingerprint(cert, fp);
	X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof(subject));
	time_rfc3339(X509_get0_notAfter(cert), not_after);
	return json_pack("{s:s, s:s, s:s, s:s, s:b}", "role", roles[r].label, "subject", subject,
			 "sha256", fp, "not_after", not_after, "expired",
			 X509_cmp_current_time(X509_get0_notAfter(cert)) < 0);
}

imp_err hsm_org_status(struct hsm *h, struct hsm_session *s, json_t **report)
{
	struct hsm_token_info ti;
	struct hsm_obj_info *objs = NULL;
	size_t n = 0;
	json_t *keys = json_array();
	json_t *certs = json_array();
	json_t *lost = json_array();
	bool insecure = false, missing = false, have_key[HSM_ORG_ROLE_COUNT] = { false };
	imp_err rc;

	*report = NULL;
	rc = hsm_info(h, &ti);
	if (rc == IMP_OK)
		rc = hsm_list(s, HSM_CLASS_ANY, &objs, &n);
	if (rc != IMP_OK) {
		json_decref(keys);
		json_decref(certs);
		json_decref(lost);
		return rc;
	}
	for (size_t i = 0; i < n; i++) {
		const struct hsm_obj_info *o = &objs[i];
		bool anchor = hsm_anchor_key_form(o);
		bool checked = !anchor &&
			       (o->cls == HSM_CLASS_PRIVATE_KEY || o->cls == HSM_CLASS_SECRET_KEY);
		bool safe = !checked ||
			    (o->sensitive && !o->extractable && o->never_extractable &&
			     o->always_sensitive);

		if (o->cls == HSM_CLASS_CERTIFICATE)
			continue;
		for (int r = 0; r < HSM_ORG_ROLE_COUNT; r++)
			if (o->cls == HSM_CLASS_PRIVATE_KEY && strcmp(o->label, roles[r].label) == 0)
				have_key[r] = true;
		if (!safe) {
			insecure = true;
			IMP_ERROR("key '%s' can leave the hsm (sensitive=%d extractable=%d "
				  "never_extractable=%d); replace it with a non-extractable key",
				  o->label, o->sensitive, o->extractable, o->never_extractable);
		}
		json_array_append_new(keys, json_pack("{s:s, s:s, s:b, s:b, s:b, s:b, s:b}",
						      "label", o->label, "class",
						      anchor ? "journal-anchor" : hsm_class_name(o->cls),
						      "token", o->token,
						      "sensitive", o->sensitive, "extractable",
						      o->extractable, "never_extractable",
						      o->never_extractable, "ok", safe));
	}
	free(objs);
	/* Every role's private key, as provisioning needs them (hsm_org_load). */
	for (int r = 0; r < HSM_ORG_ROLE_COUNT; r++) {
		if (have_key[r])
			continue;
		missing = true;
		json_array_append_new(lost, json_string(roles[r].label));
		IMP_ERROR("the hsm holds no private key '%s'", roles[r].label);
	}
	for (int r = 0; r < HSM_ORG_ROLE_COUNT; r++) {
		X509 *cert = NULL;

		if (load_cert(s, roles[r].label, &cert) != IMP_OK) {
			missing = true;
			json_array_append_new(certs, json_pack("{s:s, s:b}", "role", roles[r].label,
							       "missing", 1));
			continue;
		}
		json_array_append_new(certs, cert_json((enum hsm_org_role)r, cert));
		X509_free(cert);
	}
	*report = json_pack("{s:{s:s, s:s, s:s, s:s}, s:o, s:o, s:o, s:b}", "token", "label",
			    ti.label, "manufacturer", ti.manufacturer, "model", ti.model, "serial",
			    ti.serial, "keys", keys, "certificates", certs, "key_modes",
			    modes_json(h, s), "ok", !insecure && !missing);
	if (*report)
		json_object_set_new(*report, "missing_private_keys", lost);
	else
		json_decref(lost);
	if (insecure)
		return IMP_ERR_INSECURE;
	if (missing) {
		IMP_ERROR("the organisation hierarchy is incomplete: on a new token run 'imprint "
			  "hsm init'; a station that has issued serials restores its token from "
			  "backup instead (init would start a new hierarchy)");
		return IMP_ERR_NOT_FOUND;
	}
	return IMP_OK;
}
