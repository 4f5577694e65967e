/*
 * imprint hsm ca-verification-cert --code CODE [-o FILE]: the certificate
 * AWS IoT asks for before it registers a CA (register-ca-certificate
 * --verification-cert): subject CN = the account's registration code,
 * signed by the device CA key, which never leaves the HSM. It proves to
 * AWS that whoever registers the CA holds its key.
 *
 * The verification certificate needs a key pair of its own, but nobody needs
 * its private key: it is generated in memory, certified, and freed (never
 * written anywhere); the certificate alone is the proof.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "formats/x509.h"
#include "hsm/org.h"
#include "imprint/log.h"
#include "imprint/util.h"
#include "run.h"

#define VC_VALIDITY_DAYS 7 /* AWS checks it once, at registration */
#define VC_CODE_MAX 64     /* RFC 5280 ub-common-name; AWS's codes are 64 hex digits */

static const char *vc_code, *vc_out;

static const struct st_option vc_opts[] = {
	{ "code", 'c', ST_OPT_STRING, &vc_code, "CODE",
	  "the registration code ('aws iot get-registration-code' prints it)" },
	{ "out", 'o', ST_OPT_STRING, &vc_out, "FILE",
	  "where to write the PEM certificate ('-' or none: stdout)" },
	ST_OPTIONS_END,
};

static imp_err vc_check(int argc, char **argv)
{
	size_t n = vc_code ? strlen(vc_code) : 0;

	(void)argc;
	(void)argv;
	if (!vc_code) {
		IMP_ERROR("hsm ca-verification-cert: give --code CODE, the registration code "
			  "'aws iot get-registration-code' prints");
		return IMP_ERR_USAGE;
	}
	if (n < 1 || n > VC_CODE_MAX ||
	    strspn(vc_code, "0123456789abcdefABCDEF") != n) {
		IMP_ERROR("hsm ca-verification-cert: --code '%.80s' is not a registration code (1 "
			  "to %d hex digits; 'aws iot get-registration-code' prints yours)", vc_code,
			  VC_CODE_MAX);
		return IMP_ERR_USAGE;
	}
	return IMP_OK;
}

/* For people: on stderr, since the certificate itself may be on stdout. */
static void print_vc(const json_t *o, void *arg)
{
	const char *out = json_string_value(json_object_get(o, "out"));

	(void)arg;
	fprintf(stderr,
		"verification certificate for registration code %s %s%s\n"
		"  signed by the device CA (sha256 %s), valid until %s; its key was discarded\n"
		"next: aws iot register-ca-certificate --ca-certificate file://%s "
		"--verification-cert file://%s --set-as-active\n",
		json_string_value(json_object_get(o, "registration_code")),
		out ? "written to " : "on stdout", out ? out : "",
		json_string_value(json_object_get(o, "issuer_sha256")),
		json_string_value(json_object_get(o, "not_after")),
		json_string_value(json_object_get(o, "ca_certificate")),
		out ? out : "FILE");
}

static int hsm_ca_verification_cert(struct station_ctx *ctx, int argc, char **argv)
{
	const struct fmt_config *cfg = &ctx->run->cfg;
	const bool to_stdout = !vc_out || strcmp(vc_out, "-") == 0;
	struct fmt_name_entry subject[] = { { "CN", vc_code } };
	struct hsm *h = NULL;
	struct hsm_session *s = NULL;
	struct hsm_org org = { 0 };
	struct hsm_key_signer ks;
	struct fmt_signer signer;
	struct fmt_cert_request req = { 0 };
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	json_t *summary;
	char *pem = NULL, fp[65], ca[4400];
	char not_after[64] = "";
	imp_err rc;

	(void)argc;
	(void)argv;
	rc = st_open_hsm(ctx, cfg, &h);
	if (rc == IMP_OK)
		rc = hsm_session_open(h, &s);
	if (rc == IMP_OK)
		rc = hsm_org_load(s, &org);
	if (rc == IMP_OK)
		rc = fmt_p256_generate(&key);
	if (rc != IMP_OK)
		goto cleanup;
	hsm_signer_init(&ks, s, org.key[HSM_ORG_DEVICE_CA],
			X509_get0_pubkey(org.cert[HSM_ORG_DEVICE_CA]), &signer);
	req.profile = FMT_CERT_DEVICE;
	req.subject = subject;
	req.subject_count = IMP_ARRAY_SIZE(subject);
	req.subject_key = key;
	req.issuer = org.cert[HSM_ORG_DEVICE_CA];
	req.validity_days = VC_VALIDITY_DAYS;
	rc = fmt_cert_issue(&req, &signer, &cert);
	EVP_PKEY_free(key); /* the certificate is the proof: its key is of no use */
	key = NULL;
	if (rc != IMP_OK)
		goto cleanup;
	rc = fmt_cert_fingerprint(org.cert[HSM_ORG_DEVICE_CA], fp);
	if (rc == IMP_OK)
		rc = fmt_cert_to_pem(cert, &pem);
	if (rc != IMP_OK)
		goto cleanup;
	{
		struct tm tm;

		if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) == 1)
			strftime(not_after, sizeof(not_after), "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	/* With --json the PEM on stdout is a member of the event, not bare text. */
	if (to_stdout && !ctx->json)
		fputs(pem, stdout);
	else if (!to_stdout)
		rc = imp_write_file_atomic(vc_out, pem, strlen(pem), 0644);
	if (rc != IMP_OK)
		goto cleanup;
	st_trust_dir(ctx, ca, sizeof(ca));
	strncat(ca, "/", sizeof(ca) - strlen(ca) - 1);
	strncat(ca, hsm_org_file(HSM_ORG_DEVICE_CA), sizeof(ca) - strlen(ca) - 1);
	summary = json_pack("{s:s, s:s, s:s, s:s, s:s}", "event", "ca-verification-cert",
			    "registration_code", vc_code, "issuer_sha256", fp, "not_after", not_after,
			    "ca_certificate", ca);
	if (summary && !to_stdout)
		json_object_set_new(summary, "out", json_string(vc_out));
	else if (summary && ctx->json)
		json_object_set_new(summary, "pem", json_string(pem));
	if (ctx->json) {
		st_emit(ctx, summary, NULL, NULL);
	} else {
		if (summary)
			print_vc(summary, NULL);
		json_decref(summary);
	}
cleanup:
	EVP_PKEY_free(key);
	X509_free(cert);
	free(pem);
	hsm_org_release(&org);
	hsm_session_close(s);
	hsm_close(h);
	return st_fail(rc, rc == IMP_OK ? NULL : "no verification certificate was written");
}

const struct st_command st_hsm_ca_verification_cert_cmd = {
	.name = "ca-verification-cert",
	.fn = hsm_ca_verification_cert,
	.need = NEED_CONFIG,
	.summary = "sign AWS IoT's CA verification certificate with the device CA key",
	.usage = "imprint hsm ca-verification-cert --code CODE [--out FILE]",
	.opts = vc_opts,
	.check = vc_check,
	.help = "AWS IoT registers a CA only with a verification certificate whose subject CN "
		"is the account's registration code ('aws iot get-registration-code'), signed "
		"by that CA's key. This signs one with the device CA key in the hsm, for a "
		"fresh key pair made in memory and discarded (AWS needs only the certificate), "
		"valid 7 days. Then: aws iot register-ca-certificate --ca-certificate "
		"file://DATA/trust/device-ca.pem --verification-cert file://FILE "
		"--set-as-active (docs/EXPORT.md).",
	.exits = (const imp_err[]){ IMP_ERR_IO, IMP_ERR_HSM, IMP_ERR_PIN, IMP_ERR_PIN_LOCKED,
				    IMP_ERR_NOT_FOUND, IMP_OK },
	.example = "imprint hsm ca-verification-cert --code 0123abcd -o verification.pem",
};
