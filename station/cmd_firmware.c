/*
 * imprint firmware sign IMAGE [-o SIG] | verify IMAGE SIG: the production
 * image's signature with the organisation's code-signing key, which stays
 * in the HSM. The signature is the one the firmware step checks before it
 * programs a board (docs/PROVISIONING.md "Firmware signature"): DER
 * ECDSA-Sig-Value over SHA-256 of the image, by the key of
 * trust/code-signing.pem, whose certificate chains to the root.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "formats/ecdsa_der.h"
#include "hsm/org.h"
#include "imprint/log.h"
#include "imprint/util.h"
#include "run.h"

struct fw_keys {
	struct hsm *hsm;
	struct hsm_session *session;
	struct hsm_org org;
};

/* The configured HSM (or the embedded token) and the organisation's keys. */
static imp_err fw_keys_open(struct station_ctx *ctx, struct fw_keys *k)
{
	imp_err rc = st_open_hsm(ctx, &ctx->run->cfg, &k->hsm);

	if (rc == IMP_OK)
		rc = hsm_session_open(k->hsm, &k->session);
	if (rc == IMP_OK)
		rc = hsm_org_load(k->session, &k->org);
	return rc;
}

static void fw_keys_close(struct fw_keys *k)
{
	hsm_org_release(&k->org);
	hsm_session_close(k->session);
	hsm_close(k->hsm);
}

static imp_err read_image(const char *path, uint8_t **buf, size_t *n)
{
	imp_err rc = imp_read_file(path, buf, n);

	if (rc != IMP_OK) {
		IMP_ERROR("cannot read firmware image %s", path);
		return rc;
	}
	if (*n == 0) {
		IMP_ERROR("firmware image %s is empty: give the production image", path);
		return IMP_ERR_FIRMWARE;
	}
	return IMP_OK;
}

static void hex_sha256(const uint8_t *buf, size_t n, char hex[65])
{
	uint8_t d[32];

	EVP_Digest(buf, n, d, NULL, EVP_sha256(), NULL);
	imp_hex_encode(d, sizeof(d), hex);
}

static void print_result(const json_t *o, void *arg)
{
	(void)arg;
	printf("%s: %s (%lld bytes, sha256 %s)\n%s: %s\nsigned by: %s (sha256 %s)\n",
	       "image", json_string_value(json_object_get(o, "image")),
	       (long long)json_integer_value(json_object_get(o, "bytes")),
	       json_string_value(json_object_get(o, "sha256")), "signature",
	       json_string_value(json_object_get(o, "signature")),
	       json_string_value(json_object_get(o, "signer")),
	       json_string_value(json_object_get(o, "signer_sha256")));
	printf("%s\n", strcmp(json_string_value(json_object_get(o, "event")), "firmware_signed") == 0
			       ? "firmware signed: provisioning will program this image"
			       : "firmware signature: verified");
}

static json_t *result(const char *event, const char *image, const char *sig,
		      const uint8_t *buf, size_t n, X509 *code)
{
	char sha[65], fpr[65] = "", subject[256] = "";

	hex_sha256(buf, n, sha);
	fmt_cert_fingerprint(code, fpr);
	X509_NAME_oneline(X509_get_subject_name(code), subject, sizeof(subject));
	return json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:s}", "event", event, "image", image,
			 "signature", sig, "bytes", (json_int_t)n, "sha256", sha, "signer", subject,
			 "signer_sha256", fpr);
}

static const char *sign_out;

static const struct st_option sign_opts[] = {
	{ "out", 'o', ST_OPT_STRING, &sign_out, "SIG",
	  "where the signature goes (default IMAGE.sig; replaced if it exists)" },
	ST_OPTIONS_END,
};

static int firmware_sign(struct station_ctx *ctx, int argc, char **argv)
{
	const char *image = argv[1];
	struct fw_keys k = { 0 };
	uint8_t *buf = NULL, der[FMT_ECDSA_DER_MAX];
	size_t n = 0, der_len = 0;
	char def[4200];
	const char *sig = sign_out;
	imp_err rc;

	(void)argc;
	if (!sig) {
		snprintf(def, sizeof(def), "%s.sig", image);
		sig = def;
	}
	rc = read_image(image, &buf, &n);
	if (rc == IMP_OK)
		rc = fw_keys_open(ctx, &k);
	if (rc == IMP_OK)
		rc = hsm_sign_sha256_der(k.session, k.org.key[HSM_ORG_CODE], buf, n, der,
					 sizeof(der), &der_len);
	/* The check the firmware step makes, before the signature is handed out. */
	if (rc == IMP_OK)
		rc = prov_firmware_check(&k.org, buf, n, der, der_len);
	if (rc == IMP_OK) {
		rc = imp_write_file_atomic(sig, der, der_len, 0644);
		if (rc != IMP_OK)
			IMP_ERROR("cannot write the signature to %s; give another -o SIG", sig);
	}
	if (rc == IMP_OK)
		st_emit(ctx, result("firmware_signed", image, sig, buf, n, k.org.cert[HSM_ORG_CODE]),
			print_result, NULL);
	fw_keys_close(&k);
	free(buf);
	return st_fail(rc, rc == IMP_ERR_FIRMWARE || rc == IMP_ERR_IO || rc == IMP_ERR_NOT_FOUND
				   ? NULL : "no signature was written");
}

static int firmware_verify(struct station_ctx *ctx, int argc, char **argv)
{
	const char *image = argv[1], *sig_path = argv[2];
	struct fw_keys k = { 0 };
	uint8_t *buf = NULL, *sig = NULL;
	size_t n = 0, sig_len = 0;
	imp_err rc;

	(void)argc;
	rc = read_image(image, &buf, &n);
	if (rc == IMP_OK) {
		rc = imp_read_file(sig_path, &sig, &sig_len);
		if (rc != IMP_OK)
			IMP_ERROR("cannot read firmware signature %s", sig_path);
	}
	if (rc == IMP_OK)
		rc = fw_keys_open(ctx, &k);
	if (rc == IMP_OK)
		rc = prov_firmware_check(&k.org, buf, n, sig, sig_len);
	if (rc == IMP_OK)
		st_emit(ctx, result("firmware_verified", image, sig_path, buf, n,
				    k.org.cert[HSM_ORG_CODE]),
			print_result, NULL);
	fw_keys_close(&k);
	free(buf);
	free(sig);
	return st_fail(rc, rc == IMP_ERR_FIRMWARE
				   ? "provisioning refuses this image: sign it with 'imprint firmware "
				     "sign IMAGE'"
				   : NULL);
}

static const struct st_command firmware_sign_cmd = {
	.name = "sign",
	.fn = firmware_sign,
	.need = NEED_CONFIG,
	.summary = "sign a firmware image with the code-signing key in the hsm",
	.usage = "imprint firmware sign IMAGE [-o SIG]",
	.opts = sign_opts,
	.min_args = 1,
	.max_args = 1,
	.exits = (const imp_err[]){ IMP_ERR_IO, IMP_ERR_HSM, IMP_ERR_PIN, IMP_ERR_PIN_LOCKED,
				    IMP_ERR_NOT_FOUND, IMP_ERR_FIRMWARE, IMP_OK },
	.help = "Signs IMAGE with the organisation's code-signing key (imprint-code-signing, in "
		"the configured hsm or the embedded token; the key never leaves it), checks the "
		"signature as the firmware step will, and writes it to SIG: the DER "
		"ECDSA-Sig-Value over SHA-256 of the whole image (docs/PROVISIONING.md, "
		"\"Firmware signature\"). Name IMAGE and SIG in the configuration's "
		"firmware.image and firmware.signature. Exits 25 for an empty image.",
	.example = "imprint firmware sign build/app.bin -o build/app.bin.sig",
};

static const struct st_command firmware_verify_cmd = {
	.name = "verify",
	.fn = firmware_verify,
	.need = NEED_CONFIG,
	.summary = "check a firmware image's signature as provisioning does",
	.usage = "imprint firmware verify IMAGE SIG",
	.min_args = 2,
	.max_args = 2,
	.exits = (const imp_err[]){ IMP_ERR_IO, IMP_ERR_HSM, IMP_ERR_PIN, IMP_ERR_PIN_LOCKED,
				    IMP_ERR_NOT_FOUND, IMP_ERR_FIRMWARE, IMP_OK },
	.help = "Verifies SIG over IMAGE against the code-signing certificate in the hsm, which "
		"must chain to the organisation's root: the check the firmware step makes before "
		"any board is programmed. Exits 0 if it holds, 25 if it does not (a changed image, "
		"another key, or not a signature). Without the hsm, openssl checks the same "
		"signature with the certificate in DATA/trust (docs/PROVISIONING.md).",
	.example = "imprint firmware verify build/app.bin build/app.bin.sig",
};

static const struct st_command *const firmware_subs[] = { &firmware_sign_cmd,
							   &firmware_verify_cmd, NULL };

const struct st_command st_cmd_firmware = {
	.name = "firmware",
	.need = NEED_NOTHING,
	.summary = "sign a firmware image with the code-signing key, or verify its signature",
	.usage = "imprint firmware sign IMAGE [-o SIG] | verify IMAGE SIG",
	.subs = firmware_subs,
	.help = "Provisioning programs only an image whose signature verifies against the "
		"organisation's code-signing certificate (firmware.image and firmware.signature "
		"in the configuration). 'sign' makes that signature with the key in the hsm; "
		"'verify' checks one.",
	.example = "imprint firmware sign app.bin\n"
		   "imprint firmware verify app.bin app.bin.sig",
};
