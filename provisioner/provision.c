/*
 * The per-board state machine (provisioner/provision.h).
 *
 * Each board's step data lives in the journal row's `data` object; a step
 * reads what earlier steps stored there and returns what it adds, which is
 * written together with the next state in one journal transaction before
 * the next step acts.
 */
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "board/agent.h"
#include "board/anchor.h"
#include "board/link.h"
#include "board/probe.h"
#include "formats/base64.h"
#include "formats/csr.h"
#include "formats/record.h"
#include "formats/signer.h"
#include "formats/x509.h"
#include "imprint/log.h"
#include "imprint/util.h"
#include "provisioner/matter.h"
#include "provisioner/provision.h"

#define WANT_FUSES (WIRE_FUSE_DEBUG_LOCK | WIRE_FUSE_BOOT_LOCK)
#define PROV_FIXTURE_STACK (512u << 10) /* a fixture thread's stack (prov_run_fixtures) */
#define PSK_KCV_LEN 8u

struct job {
	struct prov_station *st;
	const struct fmt_fixture *fx;
	struct hsm_session *s;
	struct board_probe *probe;
	struct board_link *link;
	struct board_anchor *anchor;
	struct board_agent_info info;
	char uid[JNL_UID_HEX_MAX + 1];
	char serial[JNL_SERIAL_MAX];
	enum jnl_state state;
	enum jnl_state failed_step; /* the step an error stopped (state may become FAILED) */
	json_t *data;     /* the journal's step data for this board (owned) */
	/* The device key as an object and its certificate's DER, from the
	 * step that made them or taken once from data (owned; NULL until
	 * needed). */
	EVP_PKEY *pub;
	uint8_t *cert_der;
	size_t cert_der_len;
	struct jnl_event_ref record_ev; /* the RECORD state change, if made here */
	bool lock_probed; /* the move to LOCK made here (it proved the outbox) */
	char record_id[JNL_RECORD_ID_MAX]; /* the identity record, once journaled here */
	uint8_t slot;
	double t0;
	double flash_reported; /* when flash progress was last reported */
};

static void report(struct job *j, imp_err rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void report(struct job *j, imp_err rc, const char *fmt, ...)
{
	struct prov_progress p;
	char msg[512] = "";
	va_list ap;

	if (!j->st->progress)
		return;
	memset(&p, 0, sizeof(p));
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
	}
	p.fixture = j->fx ? j->fx->name : "";
	p.uid = j->uid;
	p.serial = j->serial;
	p.state = j->state;
	p.rc = rc;
	p.failed_step = rc != IMP_OK && j->state >= JNL_ST_DONE ? j->failed_step : j->state;
	p.message = msg;
	p.elapsed_s = imp_now_s() - j->t0;
	j->st->progress(j->st->progress_arg, &p);
}

/* ---------------------------------------------------------- data access */

static const char *data_str(const struct job *j, const char *key)
{
	return json_string_value(json_object_get(j->data, key));
}

static imp_err data_hex(const struct job *j, const char *key, uint8_t *out, size_t n)
{
	const char *hex = data_str(j, key);

	if (!hex)
		return IMP_ERR_NOT_FOUND;
	return imp_hex_decode(hex, out, n) == IMP_OK ? IMP_OK : IMP_ERR_JOURNAL;
}

static void add_hex(json_t *obj, const char *key, const uint8_t *bin, size_t n)
{
	char hex[2 * 128 + 1];

	if (n > 128)
		return;
	imp_hex_encode(bin, n, hex);
	json_object_set_new(obj, key, json_string(hex));
}

/*
 * Crash-test hook: with IMPRINT_TEST_KILL_AFTER=N in the environment the
 * station kills itself (SIGKILL, as a power cut would stop it) right after
 * the N-th state transition it has committed to the journal. Used by the
 * crash-safety tests to stop at every transition; unset, it costs nothing.
 */
static void crash_point(void)
{
	static long left = -2;
	const char *env;

	if (left == -2) {
		env = getenv("IMPRINT_TEST_KILL_AFTER");
		left = env && *env ? strtol(env, NULL, 10) : -1;
	}
	if (left < 0)
		return;
	if (__atomic_sub_fetch(&left, 1, __ATOMIC_SEQ_CST) == 0)
		raise(SIGKILL);
}

/* Journal the next state with what the step added, then mirror it locally
 * (the journal and j->data share add's members; neither modifies them). */
static imp_err advance(struct job *j, enum jnl_state next, json_t *add)
{
	struct jnl_event_ref ev;
	imp_err rc;

	rc = jnl_set_state_obj(j->st->journal, j->uid, next, add, &ev);
	if (rc != IMP_OK)
		return rc;
	if (next == JNL_ST_RECORD)
		j->record_ev = ev;
	if (next == JNL_ST_LOCK)
		j->lock_probed = true;
	crash_point();
	if (add)
		json_object_update(j->data, add);
	j->state = next;
	report(j, IMP_OK, NULL);
	return IMP_OK;
}

/* ---------------------------------------------------------- helpers */

static imp_err device_subject(struct job *j, struct fmt_name_entry **names, size_t *n)
{
	return fmt_config_device_subject(j->st->cfg, j->serial, j->uid, j->st->cfg->product.sku,
					 names, n);
}

/* OpenSSL one-line form for the agent: "/O=Acme/CN=ACM000001". */
static imp_err subject_oneline(const struct fmt_name_entry *names, size_t n, char *out,
			       size_t cap)
{
	size_t len = 0;

	out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		int w;

		if (strchr(names[i].value, '/') || strchr(names[i].value, '=')) {
			IMP_ERROR("certificate subject value '%s' holds '/' or '=', which the "
				  "agent's subject form cannot carry; change certificate.subject",
				  names[i].value);
			return IMP_ERR_CONFIG;
		}
		w = snprintf(out + len, cap - len, "/%s=%s", names[i].attr, names[i].value);
		if (w < 0 || (size_t)w >= cap - len)
			return IMP_ERR_CONFIG;
		len += (size_t)w;
	}
	return IMP_OK;
}

/* The device's public key (borrowed from j): "pub" of the step data. */
static imp_err job_pub(struct job *j, EVP_PKEY **out)
{
	uint8_t point[WIRE_PUB_LEN];
	imp_err rc;

	if (!j->pub) {
		rc = data_hex(j, "pub", point, sizeof(point));
		if (rc != IMP_OK) {
			IMP_ERROR("%s: the journal holds no public key for board %s",
				  j->fx ? j->fx->name : "", j->uid);
			return IMP_ERR_JOURNAL;
		}
		rc = fmt_pubkey_from_point(point, &j->pub);
		if (rc != IMP_OK)
			return rc;
	}
	*out = j->pub;
	return IMP_OK;
}

/* The device certificate's DER (borrowed from j): "cert" of the step data. */
static imp_err job_cert(struct job *j, const uint8_t **der, size_t *n)
{
	const char *b64;
	imp_err rc;

	if (!j->cert_der) {
		b64 = data_str(j, "cert");
		if (!b64) {
			IMP_ERROR("%s: the journal holds no certificate for board %s",
				  j->fx ? j->fx->name : "", j->uid);
			return IMP_ERR_JOURNAL;
		}
		rc = fmt_b64_decode(b64, strlen(b64), &j->cert_der, &j->cert_der_len);
		if (rc != IMP_OK)
			return rc == IMP_ERR_NOMEM ? rc : IMP_ERR_PROTOCOL;
	}
	*der = j->cert_der;
	*n = j->cert_der_len;
	return IMP_OK;
}

/* A step that writes "pub" or "cert" replaces what was cached of it. */
static void job_set_pub(struct job *j, EVP_PKEY *pub)
{
	EVP_PKEY_free(j->pub);
	j->pub = pub;
}

static void job_set_cert(struct job *j, uint8_t *der, size_t n)
{
	free(j->cert_der);
	j->cert_der = der;
	j->cert_der_len = n;
}

/* The ephemeral ECDH key and KEK the station uses to wrap for the board. */
struct wrap_kek {
	hsm_obj eph_pub, eph_priv, kek;
	uint8_t eph_point[HSM_EC_POINT_LEN];
};

static imp_err kek_open(struct job *j, struct wrap_kek *k)
{
	struct hsm_key_opts o = { HSM_KEY_DERIVE, "imprint-ephemeral", NULL, 0 };
	imp_err rc;

	memset(k, 0, sizeof(*k));
	rc = hsm_ec_keygen(j->s, &o, &k->eph_pub, &k->eph_priv);
	if (rc == IMP_OK)
		rc = hsm_ec_point(j->s, k->eph_pub, k->eph_point);
	if (rc == IMP_OK)
		rc = hsm_ecdh_derive_aes(j->s, k->eph_priv, j->info.transport_pub, HSM_KEY_WRAP,
					 &k->kek);
	return rc;
}

static void kek_close(struct job *j, struct wrap_kek *k)
{
	if (k->kek)
		hsm_destroy(j->s, k->kek);
	if (k->eph_priv)
		hsm_destroy(j->s, k->eph_priv);
	if (k->eph_pub)
		hsm_destroy(j->s, k->eph_pub);
}

/* Wrap `key` for the board and import it into the anchor; out: pub or kcv. */
static imp_err import_wrapped(struct job *j, hsm_obj key, uint8_t kind, uint8_t *out,
			      size_t cap, size_t *out_len)
{
	struct wrap_kek k;
	uint8_t wrapped[512];
	size_t wlen = sizeof(wrapped);
	struct board_wrapped_key wk = { 0 };
	struct board_anchor_item item = { 0 };
	imp_err rc;

	rc = kek_open(j, &k);
	if (rc == IMP_OK)
		rc = hsm_wrap(j->s, HSM_WRAP_AES_KWP, k.kek, key, NULL, NULL, 0, wrapped, &wlen);
	if (rc != IMP_OK)
		goto cleanup;
	wk.slot = j->slot;
	wk.kind = kind;
	wk.alg = WIRE_WRAP_AES_KWP;
	memcpy(wk.station_pub, k.eph_point, sizeof(wk.station_pub));
	wk.wrapped = wrapped;
	wk.wrapped_len = wlen;
	item.kind = BOARD_ANCHOR_WRAPPED_KEY;
	item.slot = j->slot;
	item.wrapped = &wk;
	rc = board_anchor_inject(j->anchor, &item, out, cap, out_len);
cleanup:
	kek_close(j, &k);
	imp_wipe(wrapped, sizeof(wrapped));
	return rc;
}

/* The per-device PSK, diversified in the HSM from SHA-256(uid || serial). */
static imp_err psk_derive(struct job *j, unsigned flags, hsm_obj *psk)
{
	uint8_t div[HSM_PSK_DIVERSIFIER_LEN];
	char input[32 + JNL_UID_HEX_MAX + JNL_SERIAL_MAX];
	int n = snprintf(input, sizeof(input), "imprint-psk-v1|%s|%s", j->uid, j->serial);

	if (n < 0 || (size_t)n >= sizeof(input) ||
	    EVP_Digest(input, (size_t)n, div, NULL, EVP_sha256(), NULL) != 1)
		return IMP_ERR_CRYPTO;
	return hsm_psk_derive(j->s, j->st->org.psk_master, div, flags, psk);
}

/* ---------------------------------------------------------------- steps */

/*
 * The board's CSR against the point it reported: a request in the board key
 * store's own shape is read in place (fmt_csr_view_p256: strict DER, the
 * self-signature verified); any other goes through OpenSSL's parser, which
 * judges it and says why. *key (new) is the device key.
 */
static imp_err check_csr(struct job *j, const uint8_t *der, size_t n, const uint8_t pub[65],
			 const struct fmt_name_entry *names, size_t nn, EVP_PKEY **key)
{
	struct fmt_csr_view view;
	X509_REQ *csr = NULL;
	EVP_PKEY *csr_key = NULL, *board_key = NULL;
	imp_err rc;

	*key = NULL;
	rc = fmt_csr_view_p256(der, n, &view, &board_key);
	if (rc == IMP_OK) {
		if (memcmp(view.point, pub, sizeof(view.point)) != 0) {
			rc = IMP_ERR_VERIFY;
			goto mismatch;
		}
		rc = fmt_csr_check_subject_der(view.subject, view.subject_len, names, nn);
		goto cleanup;
	}
	if (rc != IMP_ERR_UNSUPPORTED)
		goto cleanup;
	rc = fmt_csr_parse(der, n, &csr); /* checks the self-signature */
	if (rc == IMP_OK)
		rc = fmt_csr_public_key(csr, &csr_key);
	if (rc != IMP_OK)
		goto cleanup;
	/* The CSR's key (its point checked on the curve when it was decoded,
	 * its self-signature verified) is the board's when it is that point:
	 * no second key built from the point and checked again. */
	if (fmt_pubkey_is_point(csr_key, pub)) {
		board_key = csr_key;
		csr_key = NULL;
	} else {
		rc = fmt_pubkey_from_point(pub, &board_key);
		if (rc != IMP_OK)
			goto cleanup;
		if (!fmt_pubkey_equal(csr_key, board_key)) {
			rc = IMP_ERR_VERIFY;
			goto mismatch;
		}
	}
	rc = fmt_csr_check_subject(csr, names, nn);
	goto cleanup;
mismatch:
	IMP_ERROR("%s: the board's csr is not for the key it generated; board rejected",
		  j->fx->name);
cleanup:
	if (rc == IMP_OK) {
		*key = board_key;
		board_key = NULL;
	}
	X509_REQ_free(csr);
	EVP_PKEY_free(csr_key);
	EVP_PKEY_free(board_key);
	return rc;
}

static imp_err step_keys_device(struct job *j, json_t *add)
{
	struct fmt_name_entry *names = NULL;
	size_t nn = 0;
	char subject[512];
	uint8_t pub[WIRE_PUB_LEN];
	uint8_t *csr_der = NULL;
	size_t csr_len = 0, got = 0;
	EVP_PKEY *board_key = NULL;
	struct board_anchor_item item = { .kind = BOARD_ANCHOR_GENERATE, .slot = j->slot,
					  .reuse = true };
	imp_err rc;

	rc = device_subject(j, &names, &nn);
	if (rc == IMP_OK)
		rc = subject_oneline(names, nn, subject, sizeof(subject));
	if (rc == IMP_OK)
		rc = board_anchor_inject(j->anchor, &item, pub, sizeof(pub), &got);
	if (rc == IMP_OK && got != WIRE_PUB_LEN)
		rc = IMP_ERR_PROTOCOL;
	if (rc == IMP_OK)
		rc = board_agent_get_csr(j->link, j->slot, subject, &csr_der, &csr_len);
	if (rc == IMP_OK)
		rc = check_csr(j, csr_der, csr_len, pub, names, nn, &board_key);
	if (rc != IMP_OK)
		goto cleanup;
	add_hex(add, "pub", pub, sizeof(pub));
	job_set_pub(j, board_key);
	board_key = NULL;
cleanup:
	fmt_name_entries_free(names, nn);
	free(csr_der);
	EVP_PKEY_free(board_key);
	return rc;
}

static imp_err step_keys_hsm(struct job *j, json_t *add)
{
	struct board_identity id = { 0 };
	struct hsm_key_opts o = { HSM_KEY_WRAPPABLE | HSM_KEY_SIGN, "imprint-device-key", NULL, 0 };
	hsm_obj pubh = HSM_OBJ_NONE, privh = HSM_OBJ_NONE;
	uint8_t hsm_pub[HSM_EC_POINT_LEN], board_pub[WIRE_PUB_LEN];
	size_t got = 0;
	imp_err rc;

	job_set_pub(j, NULL); /* built again from the "pub" this step writes */
	/* A crash after the import and before the journal: the slot has it. */
	rc = board_anchor_read_identity(j->anchor, j->slot, &id);
	if (rc != IMP_OK)
		return rc;
	if (id.has_pub) {
		add_hex(add, "pub", id.pub, sizeof(id.pub));
		IMP_INFO("%s: board %s already holds its injected key; reusing it", j->fx->name,
			 j->uid);
		board_identity_release(&id);
		return IMP_OK;
	}
	board_identity_release(&id);

	rc = hsm_ec_keygen(j->s, &o, &pubh, &privh);
	if (rc == IMP_OK)
		rc = hsm_ec_point(j->s, pubh, hsm_pub);
	if (rc == IMP_OK)
		rc = import_wrapped(j, privh, WIRE_KEY_EC_P256, board_pub, sizeof(board_pub), &got);
	if (rc != IMP_OK)
		goto cleanup;
	if (got != WIRE_PUB_LEN || CRYPTO_memcmp(board_pub, hsm_pub, WIRE_PUB_LEN) != 0) {
		IMP_ERROR("%s: the board reports another public key than the one injected",
			  j->fx->name);
		rc = IMP_ERR_VERIFY;
		goto cleanup;
	}
	add_hex(add, "pub", hsm_pub, sizeof(hsm_pub));
cleanup:
	/* The device key exists in the HSM only for the wrap: destroy it now. */
	if (privh)
		hsm_destroy(j->s, privh);
	if (pubh)
		hsm_destroy(j->s, pubh);
	return rc;
}

static imp_err psk_kcv(struct job *j, hsm_obj psk, uint8_t kcv[PSK_KCV_LEN])
{
	static const uint8_t zeros[16];
	uint8_t mac[HSM_CMAC_LEN];
	imp_err rc = hsm_cmac(j->s, psk, zeros, sizeof(zeros), mac);

	if (rc == IMP_OK)
		memcpy(kcv, mac, PSK_KCV_LEN);
	return rc;
}

static imp_err step_keys_psk(struct job *j, json_t *add)
{
	hsm_obj psk = HSM_OBJ_NONE;
	uint8_t kcv[PSK_KCV_LEN], board_kcv[WIRE_PUB_LEN];
	size_t got = 0;
	imp_err rc;

	rc = psk_derive(j, HSM_KEY_WRAPPABLE, &psk);
	if (rc == IMP_OK)
		rc = psk_kcv(j, psk, kcv);
	if (rc == IMP_OK)
		rc = import_wrapped(j, psk, WIRE_KEY_PSK, board_kcv, sizeof(board_kcv), &got);
	if (rc == IMP_OK)
		crash_point(); /* the anchor holds the PSK, the journal still says KEYS */
	if (rc == IMP_ERR_EXISTS) {
		/* Imported before a crash; CHALLENGE proves it is the same PSK. */
		IMP_INFO("%s: board %s already holds its psk; the challenge will prove it",
			 j->fx->name, j->uid);
		rc = IMP_OK;
	} else if (rc == IMP_OK &&
		   (got != PSK_KCV_LEN || CRYPTO_memcmp(board_kcv, kcv, PSK_KCV_LEN) != 0)) {
		IMP_ERROR("%s: the board's psk check value differs from the hsm's", j->fx->name);
		rc = IMP_ERR_VERIFY;
	}
	if (rc == IMP_OK)
		add_hex(add, "kcv", kcv, sizeof(kcv));
	if (psk)
		hsm_destroy(j->s, psk);
	return rc;
}

static imp_err step_keys(struct job *j, json_t *add)
{
	switch (j->st->cfg->key_mode) {
	case FMT_KEY_MODE_DEVICE:
		return step_keys_device(j, add);
	case FMT_KEY_MODE_HSM:
		return step_keys_hsm(j, add);
	case FMT_KEY_MODE_PSK:
		return step_keys_psk(j, add);
	}
	return IMP_ERR_INTERNAL;
}

static imp_err step_certify(struct job *j, json_t *add)
{
	struct fmt_name_entry *names = NULL;
	size_t nn = 0;
	struct fmt_certprof_request req = { 0 };
	struct fmt_certprof_vars vars;
	struct hsm_key_signer ks;
	struct fmt_signer signer;
	EVP_PKEY *pub = NULL;
	uint8_t *der = NULL;
	size_t der_len = 0;
	char *b64 = NULL;
	imp_err rc;

	/* Station-side only, journaled with the move to INJECT, which
	 * delivers it: the board sees nothing of it before the journal does. */
	rc = prov_matter_make(j->st, j->s, j->uid, j->serial, add);
	if (rc != IMP_OK)
		return rc;
	if (j->st->cfg->key_mode == FMT_KEY_MODE_PSK)
		return IMP_OK; /* a PSK has no certificate */
	rc = job_pub(j, &pub);
	if (rc == IMP_OK)
		rc = device_subject(j, &names, &nn);
	if (rc != IMP_OK)
		goto cleanup;
	/* The device profile of the configuration (certificate.profile). */
	fmt_config_cert_vars(j->st->cfg, j->serial, j->uid, j->st->cfg->product.sku, &vars);
	req.profile = j->st->cfg->certificate.profiles->role[FMT_CP_DEVICE];
	req.subject = names;
	req.subject_count = nn;
	req.vars = &vars;
	req.subject_key = pub;
	req.issuer = j->st->org.cert[HSM_ORG_DEVICE_CA];
	hsm_signer_init(&ks, j->s, j->st->org.key[HSM_ORG_DEVICE_CA],
			X509_get0_pubkey(j->st->org.cert[HSM_ORG_DEVICE_CA]), &signer);
	/* DER only: the journal, the board and the record take the bytes, and
	 * the challenge the key, which is pub. */
	rc = fmt_certprof_issue_der(&req, &signer, &der, &der_len);
	if (rc != IMP_OK)
		goto cleanup;
	b64 = fmt_b64_encode(der, der_len);
	if (!b64) {
		rc = IMP_ERR_NOMEM;
		goto cleanup;
	}
	json_object_set_new(add, "cert", json_string(b64));
	job_set_cert(j, der, der_len);
	der = NULL;
cleanup:
	fmt_name_entries_free(names, nn);
	free(der);
	free(b64);
	return rc;
}

/* What the board keeps as its identity: small, deterministic, public. */
static imp_err identity_blob(struct job *j, char **out)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "serial", j->serial, "uid", j->uid,
			      "sku", j->st->cfg->product.sku, "key_mode",
			      fmt_key_mode_name(j->st->cfg->key_mode), "station",
			      j->st->cfg->station_id);

	*out = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(o);
	return *out ? IMP_OK : IMP_ERR_NOMEM;
}

static imp_err step_inject(struct job *j, json_t *add)
{
	struct board_anchor_item item = { 0 };
	const uint8_t *der = NULL;
	size_t der_len = 0, got = 0;
	char *blob = NULL;
	imp_err rc = IMP_OK;

	(void)add;
	if (j->st->cfg->key_mode != FMT_KEY_MODE_PSK) {
		rc = job_cert(j, &der, &der_len);
		if (rc != IMP_OK)
			return rc;
		item.kind = BOARD_ANCHOR_CERT;
		item.slot = j->slot;
		item.data = der;
		item.data_len = der_len;
		rc = board_anchor_inject(j->anchor, &item, NULL, 0, &got);
	}
	if (rc == IMP_OK)
		rc = identity_blob(j, &blob);
	if (rc == IMP_OK) {
		memset(&item, 0, sizeof(item));
		item.kind = BOARD_ANCHOR_IDENTITY;
		item.serial = j->serial;
		item.data = (const uint8_t *)blob;
		item.data_len = strlen(blob);
		rc = board_anchor_inject(j->anchor, &item, NULL, 0, &got);
	}
	if (rc == IMP_OK)
		rc = prov_matter_deliver(j->st, j->s, j->link, j->uid, j->serial,
					 json_object_get(j->data, "matter"));
	free(blob);
	return rc;
}

/* Programming progress for the live board, at most every 100 ms. */
static void flash_progress(void *arg, size_t done, size_t total)
{
	struct job *j = arg;
	struct prov_progress p;
	double now = imp_now_s();

	if (!j->st->progress || (done < total && now - j->flash_reported < 0.1))
		return;
	j->flash_reported = now;
	memset(&p, 0, sizeof(p));
	p.fixture = j->fx ? j->fx->name : "";
	p.uid = j->uid;
	p.serial = j->serial;
	p.state = j->state;
	p.message = "programming";
	p.elapsed_s = now - j->t0;
	p.activity = PROV_ACT_FLASH;
	p.fw_done = done;
	p.fw_total = total;
	j->st->progress(j->st->progress_arg, &p);
}

static imp_err step_firmware(struct job *j, json_t *add)
{
	const struct prov_station *st = j->st;
	uint8_t digest[32];
	imp_err rc;

	if (!st->firmware)
		return IMP_OK;
	bool match = false;

	/* Resumed after programming: the flash already holds the image. Its
	 * first bytes tell a fresh board at once; only then the whole check
	 * (a server-side checksum or a read-back of the whole image). */
	{
		uint8_t head[16];
		size_t hn = st->firmware_len < sizeof(head) ? st->firmware_len : sizeof(head);

		rc = board_probe_read(j->probe, st->firmware_addr, head, hn);
		match = rc == IMP_OK && memcmp(head, st->firmware, hn) == 0;
	}
	if (match)
		rc = board_profile_flash_matches(st->profile, j->probe, st->firmware_addr,
						 st->firmware, st->firmware_len, &match);
	if (rc == IMP_OK && match) {
		add_hex(add, "firmware_sha256", st->firmware_sha256, 32);
		return IMP_OK;
	}
	(void)digest;
	rc = board_profile_program_flash_progress(st->profile, j->probe, st->firmware_addr,
						  st->firmware, st->firmware_len, flash_progress,
						  j);
	if (rc == IMP_OK)
		rc = board_profile_verify_flash(st->profile, j->probe, st->firmware_addr,
						st->firmware, st->firmware_len);
	if (rc == IMP_OK)
		add_hex(add, "firmware_sha256", st->firmware_sha256, 32);
	return rc;
}

/*
 * The board's signature over nonce, verified with the key of the issued
 * certificate: the key object the walk already holds when the certificate
 * certifies it (always, for a certificate this walk issued), else one built
 * from the certificate's own point.
 */
static imp_err verify_ecdsa_challenge(struct job *j, const uint8_t *nonce, const uint8_t *sig,
				      size_t sig_len)
{
	const uint8_t *der = NULL;
	size_t der_len = 0;
	uint8_t point[WIRE_PUB_LEN], have[WIRE_PUB_LEN];
	EVP_PKEY *key = NULL, *own = NULL;
	EVP_MD_CTX *md = NULL;
	imp_err rc;

	rc = job_cert(j, &der, &der_len);
	if (rc != IMP_OK)
		return rc;
	if (fmt_cert_der_point(der, der_len, point) != IMP_OK) {
		IMP_ERROR("%s: the journal's certificate for board %s holds no P-256 key",
			  j->fx ? j->fx->name : "", j->uid);
		return IMP_ERR_PROTOCOL;
	}
	/* j->pub is the key of the "pub" point (job_pub, step_keys_device) */
	if (data_hex(j, "pub", have, sizeof(have)) != IMP_OK || memcmp(have, point, sizeof(have)) ||
	    job_pub(j, &key) != IMP_OK) {
		rc = fmt_pubkey_from_point(point, &own);
		if (rc != IMP_OK)
			return rc;
		key = own;
	}
	md = EVP_MD_CTX_new();
	if (!md) {
		rc = IMP_ERR_NOMEM;
	} else if (EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
		   EVP_DigestVerify(md, sig, sig_len, nonce, WIRE_NONCE_LEN) != 1) {
		rc = IMP_ERR_CHALLENGE;
	}
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(own);
	return rc;
}

static imp_err verify_psk_challenge(struct job *j, const uint8_t *nonce, const uint8_t *sig,
				    size_t sig_len)
{
	hsm_obj psk = HSM_OBJ_NONE;
	uint8_t mac[HSM_CMAC_LEN];
	imp_err rc;

	rc = psk_derive(j, 0, &psk);
	if (rc == IMP_OK)
		rc = hsm_cmac(j->s, psk, nonce, WIRE_NONCE_LEN, mac);
	if (psk)
		hsm_destroy(j->s, psk);
	if (rc != IMP_OK)
		return rc;
	if (sig_len != sizeof(mac) || CRYPTO_memcmp(mac, sig, sizeof(mac)) != 0)
		return IMP_ERR_CHALLENGE;
	return IMP_OK;
}

static imp_err step_challenge(struct job *j, json_t *add)
{
	uint8_t nonce[WIRE_NONCE_LEN];
	uint8_t sig[BOARD_SIG_MAX];
	size_t sig_len = 0;
	imp_err rc;

	rc = hsm_random(j->s, nonce, sizeof(nonce));
	if (rc == IMP_OK)
		rc = board_anchor_challenge(j->anchor, j->slot, nonce, sig, sizeof(sig), &sig_len);
	/* No key where the journal's certified one was put: the board cannot
	 * prove the identity (erased since, or another chip with its UID).
	 * Resuming would meet the same answer forever: rejected. */
	if (rc == IMP_ERR_BOARD && board_agent_last_status() == WIRE_ST_NO_KEY) {
		IMP_ERROR("%s: board %s holds no key in slot %u for the identity challenge: it "
			  "no longer has the key certified for it (erased since, or another chip "
			  "with its UID); the board is rejected and will not be locked",
			  j->fx->name, j->uid, (unsigned)j->slot);
		return IMP_ERR_CHALLENGE;
	}
	if (rc != IMP_OK)
		return rc;
	if (j->st->cfg->key_mode == FMT_KEY_MODE_PSK)
		rc = verify_psk_challenge(j, nonce, sig, sig_len);
	else
		rc = verify_ecdsa_challenge(j, nonce, sig, sig_len);
	if (rc == IMP_ERR_CHALLENGE)
		IMP_ERROR("%s: board %s failed the identity challenge: its signature over a "
			  "fresh nonce does not verify; the board is rejected and will not be locked",
			  j->fx->name, j->uid);
	if (rc == IMP_OK) {
		add_hex(add, "challenge_nonce", nonce, sizeof(nonce));
		json_object_set_new(add, "challenge", json_string("verified"));
	}
	return rc;
}

/*
 * A resumed LOCK: the identity challenge again (a fresh nonce) and the
 * firmware's check, as the steps before LOCK made them. The firmware is
 * compared only while the debug port still reads: a board whose debug-lock
 * fuse an earlier run burnt before it stopped reads nothing, and has
 * nothing irreversible left but what its lock verification checks.
 */
static imp_err recheck_before_lock(struct job *j)
{
	const struct prov_station *st = j->st;
	json_t *scratch = json_object();
	imp_err rc;

	if (!scratch)
		return IMP_ERR_NOMEM;
	rc = step_challenge(j, scratch);
	json_decref(scratch);
	if (rc != IMP_OK)
		return rc;
	if (st->firmware) {
		uint8_t head[16];
		size_t hn = st->firmware_len < sizeof(head) ? st->firmware_len : sizeof(head);
		bool match = false;

		rc = board_probe_read(j->probe, st->firmware_addr, head, hn);
		match = rc == IMP_OK && memcmp(head, st->firmware, hn) == 0;
		if (match)
			rc = board_profile_flash_matches(st->profile, j->probe, st->firmware_addr,
							 st->firmware, st->firmware_len, &match);
		if (rc != IMP_OK) {
			/* Not readable (a debug port an earlier run locked): the
			 * challenge above is the proof left; the lock's own
			 * verification follows. */
			IMP_INFO("%s: board %s, resumed at LOCK: its flash does not read (%s); "
				 "the identity challenge passed", j->fx->name, j->uid,
				 imp_err_name(rc));
			return IMP_OK;
		}
		if (!match) {
			IMP_ERROR("%s: board %s, resumed at LOCK, no longer holds the firmware it "
				  "was verified with (erased or reprogrammed since); the board is "
				  "rejected and will not be locked", j->fx->name, j->uid);
			return IMP_ERR_VERIFY;
		}
	}
	return rc;
}

static imp_err step_lock(struct job *j, json_t *add)
{
	const struct board_profile *p = j->st->profile;
	struct board_anchor_lock_state ls;
	struct board_agent_info seen;
	bool have_seen;
	uint32_t want = WANT_FUSES & p->fuse_mask;
	uint32_t fuses = 0;
	char ts[32];
	imp_err rc;

	/* Irreversible from here: first prove the journal can take the record
	 * (the move to LOCK did, when this run made it; a resumed LOCK not). */
	rc = j->lock_probed ? IMP_OK : jnl_outbox_probe(j->st->journal, j->uid);
	if (rc != IMP_OK) {
		IMP_ERROR("%s: %s", j->fx->name, jnl_last_error());
		return rc;
	}
	/* A LOCK this run did not move to was journaled by an earlier one:
	 * its checks were made on the board as it was then. The board on the
	 * fixture now proves its identity again, and still holds the
	 * firmware, before anything irreversible (the anchor's lock, the
	 * fuses). */
	if (!j->lock_probed) {
		rc = recheck_before_lock(j);
		if (rc != IMP_OK)
			return rc;
	}
	rc = board_anchor_lock_state(j->anchor, &ls);
	if (rc != IMP_OK)
		return rc;
	if (!ls.locked) {
		rc = board_anchor_lock(j->anchor, BOARD_LOCK_SLOTS | BOARD_LOCK_PERSONALISE);
		if (rc != IMP_OK)
			return rc;
	}
	rc = board_profile_read_fuses(p, j->probe, &fuses);
	if (rc == IMP_ERR_TARGET_LOCKED) {
		IMP_INFO("%s: board %s is already debug-locked", j->fx->name, j->uid);
	} else if (rc != IMP_OK) {
		return rc;
	} else if ((fuses & want) != want) {
		rc = board_profile_burn_fuses_ex(p, j->probe, want & ~fuses,
						 j->st->permanent_lock_confirmed);
		if (rc != IMP_OK) {
			IMP_ERROR("%s: burning the lock fuses of board %s failed; it stays at LOCK "
				  "and 'imprint resume' retries", j->fx->name, j->uid);
			return rc;
		}
	}
	rc = board_profile_verify_lock_seen(p, j->probe, j->link, &seen, &have_seen);
	if (rc != IMP_OK)
		return rc;
	/* The agent's answer the verification just checked is its lock state
	 * (an agent anchor): not asked twice. */
	rc = board_anchor_lock_state_seen(j->anchor, have_seen ? &seen : NULL, &ls);
	if (rc != IMP_OK)
		return rc;
	imp_rfc3339_now(ts);
	/* debug_locked: what board_profile_verify_lock established from outside
	 * (the debug port refused and, where the chip can say, its own lock
	 * status confirmed), not what the agent claims. */
	json_object_set_new(add, "lock", json_pack("{s:b, s:b, s:s, s:s}", "debug_locked", 1,
						   "boot_locked",
						   (ls.fuses & WIRE_FUSE_BOOT_LOCK) != 0,
						   "lifecycle", board_lifecycle_name(ls.lifecycle),
						   "verified_at", ts));
	return IMP_OK;
}

/* Journal link of the record: the head event (the RECORD state change). */
struct head_event {
	uint64_t seq;
	char prev_hash[JNL_HASH_HEX_LEN + 1];
	char hash[JNL_HASH_HEX_LEN + 1];
};

static int head_event_cb(void *arg, const struct jnl_event *ev)
{
	struct head_event *h = arg;

	h->seq = ev->seq;
	snprintf(h->prev_hash, sizeof(h->prev_hash), "%s", ev->prev_hash);
	snprintf(h->hash, sizeof(h->hash), "%s", ev->hash);
	return 0;
}

/* The RECORD state change as this walk wrote it, else (a resumed board)
 * the board's last event, read back from the journal. */
static imp_err record_link(const struct job *j, struct head_event *h)
{
	memset(h, 0, sizeof(*h));
	if (j->record_ev.seq) {
		h->seq = j->record_ev.seq;
		memcpy(h->prev_hash, j->record_ev.prev_hash, sizeof(h->prev_hash));
		memcpy(h->hash, j->record_ev.hash, sizeof(h->hash));
		return IMP_OK;
	}
	return jnl_iterate_events(j->st->journal, 0, j->uid, head_event_cb, h);
}

static imp_err step_record(struct job *j, json_t *add)
{
	const struct prov_station *st = j->st;
	struct fmt_record r = { 0 };
	struct head_event head;
	const json_t *lock = json_object_get(j->data, "lock");
	const json_t *matter = json_object_get(j->data, "matter");
	struct fmt_record_matter rm;
	uint8_t uid_bin[JNL_UID_HEX_MAX / 2], kcv[PSK_KCV_LEN], fw[32], mdigest[32];
	size_t uid_len = strlen(j->uid) / 2;
	EVP_PKEY *pub = NULL;
	const uint8_t *cert_der = NULL;
	size_t cert_der_len = 0;
	X509 *chain[2];
	struct hsm_key_signer ks;
	struct fmt_signer signer;
	json_t *obj = NULL;
	char *jws = NULL;
	imp_err rc;

	(void)add;
	if (!lock) {
		IMP_ERROR("%s: board %s has no verified lock in the journal", j->fx ? j->fx->name : "",
			  j->uid);
		return IMP_ERR_JOURNAL;
	}
	rc = imp_hex_decode(j->uid, uid_bin, uid_len);
	if (rc == IMP_OK)
		rc = record_link(j, &head);
	if (rc != IMP_OK)
		return rc;
	r.serial = j->serial;
	r.chip_uid = uid_bin;
	r.chip_uid_len = uid_len;
	r.sku = st->cfg->product.sku;
	r.key_mode = st->cfg->key_mode;
	if (st->cfg->key_mode == FMT_KEY_MODE_PSK) {
		rc = data_hex(j, "kcv", kcv, sizeof(kcv));
		r.kcv = kcv;
		r.kcv_len = sizeof(kcv);
	} else {
		rc = job_pub(j, &pub);
		if (rc == IMP_OK)
			rc = job_cert(j, &cert_der, &cert_der_len);
		r.public_key = pub;
		r.device_certificate_der = cert_der;
		r.device_certificate_der_len = cert_der_len;
	}
	if (rc != IMP_OK)
		goto cleanup;
	if (data_hex(j, "firmware_sha256", fw, sizeof(fw)) == IMP_OK)
		r.firmware_sha256 = fw;
	if (matter) {
		rc = prov_matter_record(matter, &rm, mdigest);
		if (rc != IMP_OK)
			goto cleanup;
		r.matter = &rm;
	}
	r.lock_state.debug_locked = json_is_true(json_object_get(lock, "debug_locked"));
	r.lock_state.boot_locked = json_is_true(json_object_get(lock, "boot_locked"));
	r.lock_state.lifecycle = json_string_value(json_object_get(lock, "lifecycle"));
	r.lock_state.verified_at = json_string_value(json_object_get(lock, "verified_at"));
	r.station_id = st->cfg->station_id;
	r.fixture = j->fx ? j->fx->name : json_string_value(json_object_get(j->data, "fixture"));
	if (!r.fixture)
		r.fixture = "";
	r.operator_name = st->operator_name;
	r.journal.seq = head.seq;
	r.journal.prev_hash = head.prev_hash;
	r.journal.event_hash = head.hash;
	rc = fmt_record_build(&r, &obj);
	if (rc != IMP_OK)
		goto cleanup;
	chain[0] = st->org.cert[HSM_ORG_RECORD];
	chain[1] = st->org.cert[HSM_ORG_ROOT];
	hsm_signer_init(&ks, j->s, st->org.key[HSM_ORG_RECORD],
			X509_get0_pubkey(st->org.cert[HSM_ORG_RECORD]), &signer);
	if (st->record_header)
		rc = fmt_record_sign_with(obj, st->record_header, &signer, &jws);
	else
		rc = fmt_record_sign(obj, &signer, chain, 2, &jws);
	if (rc == IMP_OK) {
		const char *id = json_string_value(json_object_get(obj, "record_id"));

		rc = jnl_record_done(st->journal, j->uid, id, jws);
		if (rc == IMP_OK)
			snprintf(j->record_id, sizeof(j->record_id), "%s", id ? id : "");
	}
cleanup:
	json_decref(obj);
	free(jws);
	return rc;
}

typedef imp_err (*step_fn)(struct job *j, json_t *add);

static const step_fn steps[JNL_ST__COUNT] = {
	[JNL_ST_KEYS] = step_keys,
	[JNL_ST_CERTIFY] = step_certify,
	[JNL_ST_INJECT] = step_inject,
	[JNL_ST_FIRMWARE] = step_firmware,
	[JNL_ST_CHALLENGE] = step_challenge,
	[JNL_ST_LOCK] = step_lock,
	[JNL_ST_RECORD] = step_record,
};

/* Walk the board from j->state to DONE. */
static imp_err walk(struct job *j)
{
	imp_err rc = IMP_OK;

	while (j->state < JNL_ST_DONE) {
		step_fn fn = steps[j->state];
		json_t *add;

		if (!fn)
			return IMP_ERR_INTERNAL;
		if (j->st->stop && *j->st->stop)
			return IMP_ERR_INTERRUPTED;
		add = json_object();
		if (!add)
			return IMP_ERR_NOMEM;
		rc = fn(j, add);
		if (rc == IMP_OK) {
			if (j->state == JNL_ST_RECORD) {
				crash_point();
				j->state = JNL_ST_DONE; /* record_done journaled it */
				report(j, IMP_OK, "done");
			} else {
				rc = advance(j, (enum jnl_state)(j->state + 1), add);
			}
		}
		json_decref(add);
		if (rc != IMP_OK)
			return rc;
	}
	return IMP_OK;
}

/* ------------------------------------------------------------ identify */

static imp_err load_row(struct job *j, const struct jnl_board *b)
{
	json_error_t err;

	json_decref(j->data);
	j->data = json_loads(b->data ? b->data : "{}", 0, &err);
	if (!j->data || !json_is_object(j->data)) {
		IMP_ERROR("board %s: step data in the journal is not a json object: %s", b->uid,
			  err.text);
		return IMP_ERR_JOURNAL;
	}
	snprintf(j->serial, sizeof(j->serial), "%s", b->serial);
	j->state = b->state;
	return IMP_OK;
}

/*
 * A supervisor authorised a new pass for a finished or rejected board: it
 * keeps its serial and goes back to ALLOCATE. A locked board's anchor
 * refuses personalisation, so its identity can only be revoked.
 */
static imp_err reissue(struct job *j)
{
	struct jnl_board row = { 0 };
	imp_err rc;

	if (j->info.lifecycle == WIRE_LC_LOCKED || (j->info.fuses & WIRE_FUSE_DEBUG_LOCK)) {
		char rid[JNL_RECORD_ID_MAX] = "";

		if (jnl_identity_record_id(j->st->journal, j->uid, rid) != IMP_OK || !rid[0]) {
			IMP_ERROR("%s: board %s (%s) is locked and carries no identity record "
				  "(rejected at its lock step): its trust anchor refuses a new "
				  "identity and none was exported to revoke; keep it off the shipment "
				  "('imprint audit' lists it)", j->fx->name, j->uid, j->serial);
			return IMP_ERR_DUPLICATE;
		}
		IMP_ERROR("%s: board %s (%s) is locked: its trust anchor refuses a new identity; "
			  "revoke %s instead", j->fx->name, j->uid, j->serial, j->serial);
		return IMP_ERR_DUPLICATE;
	}
	if (j->state == JNL_ST_FAILED) {
		/* A rejected, unlocked board starts again from an erased chip
		 * where the profile can erase it whole (nRF52: CTRL-AP ERASEALL).
		 * Never a DONE board: its firmware and identity stay. */
		rc = board_profile_recover(j->st->profile, j->probe);
		if (rc != IMP_OK && rc != IMP_ERR_UNSUPPORTED) {
			IMP_ERROR("%s: board %s: erasing it for the reissue failed; it stays FAILED",
				  j->fx->name, j->uid);
			return rc;
		}
		if (rc == IMP_OK)
			IMP_INFO("%s: board %s erased whole for its reissue", j->fx->name, j->uid);
	}
	rc = jnl_reissue(j->st->journal, j->uid, j->st->reissue_reason,
				  j->st->reissue_by);
	if (rc == IMP_OK)
		rc = jnl_get_board(j->st->journal, j->uid, &row);
	if (rc == IMP_OK)
		rc = load_row(j, &row);
	jnl_board_release(&row);
	if (rc == IMP_OK)
		IMP_INFO("%s: board %s reissued by %s: %s", j->fx->name, j->uid,
			 j->st->reissue_by, j->st->reissue_reason);
	return rc;
}

/*
 * A DONE board was locked and verified from outside before its row became
 * DONE: lifecycle LOCKED, the lock fuses burnt, the debug port closed. A
 * board under that UID that shows otherwise is not that board.
 */
static bool done_contradicted(const struct job *j, bool swd_open, char *why, size_t cap)
{
	uint32_t want = WANT_FUSES & j->st->profile->fuse_mask;

	if (j->st->reissue_reason)
		return false; /* a supervisor authorised this pass (reissue refuses locked boards) */
	if (j->info.lifecycle != WIRE_LC_LOCKED) {
		snprintf(why, cap, "its lifecycle is %s, not locked",
			 board_lifecycle_name(j->info.lifecycle));
		return true;
	}
	if ((j->info.fuses & want) != want) {
		snprintf(why, cap, "its lock fuses are not burnt (0x%x of 0x%x)",
			 (unsigned)(j->info.fuses & want), (unsigned)want);
		return true;
	}
	if (swd_open && (want & WIRE_FUSE_DEBUG_LOCK)) {
		snprintf(why, cap, "its debug port answers");
		return true;
	}
	return false;
}

static bool take_new_board(struct prov_station *st)
{
	uint64_t n = __atomic_add_fetch(&st->new_boards, 1, __ATOMIC_SEQ_CST);

	if (st->max_new_boards == 0 || n <= st->max_new_boards)
		return true;
	__atomic_sub_fetch(&st->new_boards, 1, __ATOMIC_SEQ_CST);
	return false;
}

static bool uid_tail_zero(const uint8_t *uid, size_t from)
{
	for (size_t i = from; i < WIRE_UID_LEN; i++)
		if (uid[i])
			return false;
	return true;
}

/* What the board's data gains as it enters KEYS (owned by the caller). */
static json_t *keys_data(const struct job *j)
{
	return json_pack("{s:s, s:s}", "fixture", j->fx->name, "key_mode",
			 fmt_key_mode_name(j->st->cfg->key_mode));
}

/*
 * The board's serial. On the station's own journal a serial it issues
 * moves the board on to KEYS in the same transaction (*keys = true): the
 * move is the journal's alone, nothing acts on the board between the two.
 * The line allocates in its database first; its move follows on its own.
 */
static imp_err allocate(struct job *j, bool *existing, bool *keys)
{
	struct prov_station *st = j->st;
	json_t *add;
	imp_err rc;

	*keys = false;
	if (st->line)
		return line_allocate(st->line, j->uid, j->fx->name, j->serial, sizeof(j->serial),
				     existing);
	add = keys_data(j);
	if (!add)
		return IMP_ERR_NOMEM;
	rc = jnl_allocate_to(st->journal, j->uid, j->fx->name, j->serial, sizeof(j->serial),
			     existing, JNL_ST_KEYS, add);
	*keys = rc == IMP_OK && !*existing;
	if (*keys && j->data)
		json_object_update(j->data, add); /* what advance() would have merged */
	json_decref(add);
	return rc;
}

/*
 * Read the board's identity, compare the UID seen through SWD with the
 * agent's, and find the board in the journal: a new board is allocated, a
 * known one resumed, a locked unknown one quarantined.
 */
static imp_err identify(struct job *j, struct prov_result *res)
{
	struct prov_station *st = j->st;
	struct jnl_board row = { 0 };
	struct jnl_observed seen = { 0 };
	imp_err rc2 = IMP_OK;
	uint8_t swd_uid[64];
	size_t swd_len = 0;
	bool existing = false, keys = false, swd_open;
	char why[160];
	imp_err rc;

	rc = board_agent_identify(j->link, &j->info);
	if (rc != IMP_OK)
		return rc;
	imp_hex_encode(j->info.uid, WIRE_UID_LEN, j->uid);
	/* The agent says the debug-lock fuse is burnt: a shut debug port is
	 * what it should be, not an error to report. */
	board_probe_expect_locked(j->probe, (j->info.fuses & WIRE_FUSE_DEBUG_LOCK) != 0);
	rc = board_profile_read_uid(st->profile, j->probe, swd_uid, sizeof(swd_uid), &swd_len);
	board_probe_expect_locked(j->probe, false);
	/* A chip with a shorter UID (nRF52: 8 bytes) has the agent's 16 bytes
	 * end in zeros. */
	if (rc == IMP_OK &&
	    (swd_len > WIRE_UID_LEN || memcmp(swd_uid, j->info.uid, swd_len) != 0 ||
	     !uid_tail_zero(j->info.uid, swd_len))) {
		IMP_ERROR("%s: the uid read through swd differs from the agent's (%s): probe and "
			  "uart reach different boards; check the fixture wiring", j->fx->name, j->uid);
		return IMP_ERR_VERIFY;
	}
	if (rc == IMP_ERR_TARGET_LOCKED && j->info.lifecycle == WIRE_LC_OPEN &&
	    !(j->info.fuses & WIRE_FUSE_DEBUG_LOCK) &&
	    ((rc2 = jnl_get_board(st->journal, j->uid, &row)) == IMP_ERR_NOT_FOUND ||
	     (rc2 == IMP_OK && row.state <= JNL_ST_FIRMWARE))) {
		/* A part whose debug port is shut though nothing was locked: a
		 * hardened nRF52 new from the factory, or one reset before its
		 * firmware was in. Its profile opens it by erasing it whole;
		 * nothing is lost (the firmware step programs it again). */
		IMP_INFO("%s: board %s: debug port closed, agent open, firmware not yet in: "
			 "erasing it to open it", j->fx->name, j->uid);
		rc = board_profile_recover(st->profile, j->probe);
		if (rc == IMP_OK)
			rc = board_profile_read_uid(st->profile, j->probe, swd_uid, sizeof(swd_uid),
						    &swd_len);
		if (rc == IMP_OK &&
		    (swd_len > WIRE_UID_LEN || memcmp(swd_uid, j->info.uid, swd_len) != 0 ||
		     !uid_tail_zero(j->info.uid, swd_len)))
			rc = IMP_ERR_VERIFY;
		if (rc == IMP_ERR_UNSUPPORTED)
			rc = IMP_ERR_TARGET_LOCKED;
	}
	jnl_board_release(&row);
	memset(&row, 0, sizeof(row));
	if (rc != IMP_OK && rc != IMP_ERR_TARGET_LOCKED)
		return rc;
	swd_open = rc == IMP_OK;
	if (j->fx->reader) {
		struct board_agent_info card;

		rc = board_anchor_identify(j->anchor, &card);
		if (rc != IMP_OK)
			return rc;
		if (memcmp(card.uid, j->info.uid, WIRE_UID_LEN) != 0 ||
		    memcmp(card.transport_pub, j->info.transport_pub, WIRE_PUB_LEN) != 0) {
			IMP_ERROR("%s: the card in reader '%s' is not this board's secure element "
				  "(uid or transport key differ from the agent's); check the fixture",
				  j->fx->name, j->fx->reader);
			return IMP_ERR_VERIFY;
		}
	}
	report(j, IMP_OK, "identified");

	seen.lifecycle = board_lifecycle_name(j->info.lifecycle);
	seen.fuses = j->info.fuses;
	seen.debug_open = swd_open;
	rc = jnl_get_board(st->journal, j->uid, &row);
	if (rc == IMP_ERR_NOT_FOUND) {
		if (j->info.lifecycle == WIRE_LC_LOCKED || (j->info.fuses & WIRE_FUSE_DEBUG_LOCK)) {
			rc = jnl_quarantine_seen(st->journal, j->uid, j->fx->name, &seen,
						 "locked board unknown to the journal");
			res->quarantined = true;
			IMP_WARN("%s: board %s is locked and unknown to this journal: quarantined, "
				 "not touched; set it aside for inspection", j->fx->name, j->uid);
			return rc == IMP_OK ? IMP_ERR_QUARANTINE : rc;
		}
		if (st->only_known) {
			res->not_taken = true;
			report(j, IMP_OK, "not taken: a board new to the journal, and a resume "
			       "takes only boards in flight; it is left as it is");
			return IMP_ERR_INTERRUPTED;
		}
		if (!take_new_board(st)) {
			res->not_taken = true;
			report(j, IMP_OK, "not taken: the run's --count is reached; the board is "
			       "left as it is");
			return IMP_ERR_INTERRUPTED;
		}
		rc = allocate(j, &existing, &keys);
		if (rc != IMP_OK) {
			if (rc == IMP_ERR_QUOTA)
				IMP_ERROR("%s: %s", j->fx->name, jnl_last_error());
			return rc;
		}
		crash_point();
		rc = jnl_get_board(st->journal, j->uid, &row);
	}
	if (rc != IMP_OK)
		return rc;
	rc = load_row(j, &row);
	jnl_board_release(&row);
	if (rc != IMP_OK)
		return rc;
	if ((j->state == JNL_ST_DONE || j->state == JNL_ST_FAILED) && st->reissue_reason) {
		rc = reissue(j);
		if (rc != IMP_OK)
			return rc;
	}
	switch (j->state) {
	case JNL_ST_DONE:
		if (done_contradicted(j, swd_open, why, sizeof(why))) {
			/* Journaled (hash-chained) before the station says so; the
			 * DONE row stays the genuine board's. */
			rc = jnl_quarantine_seen(st->journal, j->uid, j->fx->name, &seen, why);
			if (rc != IMP_OK)
				return rc;
			res->quarantined = true;
			res->cloned_uid = true;
			IMP_ERROR("%s: board %s presents the uid of finished board %s but %s: a "
				  "cloned uid or a replaced chip; quarantined, not touched: set it "
				  "aside for inspection", j->fx->name, j->uid, j->serial, why);
			return IMP_ERR_QUARANTINE;
		}
		res->already_done = true;
		IMP_INFO("%s: board %s already has its identity %s; nothing to do", j->fx->name,
			 j->uid, j->serial);
		return IMP_OK;
	case JNL_ST_QUARANTINED:
		res->quarantined = true;
		IMP_WARN("%s: board %s is quarantined; not touched", j->fx->name, j->uid);
		return IMP_ERR_QUARANTINE;
	case JNL_ST_FAILED:
		IMP_ERROR("%s: board %s was rejected earlier; a supervisor reissue is needed to "
			  "retry it", j->fx->name, j->uid);
		return IMP_ERR_BOARD;
	case JNL_ST_CONNECT:
	case JNL_ST_IDENTIFY:
		rc = allocate(j, &existing, &keys);
		if (rc != IMP_OK)
			return rc;
		j->state = JNL_ST_ALLOCATE;
		break;
	default:
		break;
	}
	if (keys) {
		/* The serial, then the move the allocation made, as advance()
		 * reports it. */
		j->state = JNL_ST_ALLOCATE;
		report(j, IMP_OK, "serial %s", j->serial);
		j->state = JNL_ST_KEYS;
		report(j, IMP_OK, NULL);
		return IMP_OK;
	}
	report(j, IMP_OK, "serial %s", j->serial);
	if (j->state == JNL_ST_ALLOCATE) {
		json_t *add = keys_data(j);

		rc = add ? advance(j, JNL_ST_KEYS, add) : IMP_ERR_NOMEM;
		json_decref(add);
	}
	return rc;
}

/* ------------------------------------------------------------- a board */

static imp_err connect_board(struct job *j)
{
	const struct fmt_fixture *fx = j->fx;
	struct board_anchor_params ap = { 0 };
	imp_err rc;

	if (fx->probe_kind == FMT_PROBE_SIM || !fx->uart) {
		IMP_ERROR("%s: provisioning needs a probe (rsp://HOST:PORT or openocd://CONFIG) "
			  "and a uart path", fx->name);
		return IMP_ERR_CONFIG;
	}
	rc = board_probe_open(fx->probe, &j->probe);
	if (rc == IMP_OK) {
		/* Start from a known core state (a station that stopped half-way
		 * may have left the flash controller inside a sequence), unless
		 * the profile says a reset could lock the part: then its lock
		 * state is read first (board_profile_connect). A locked board
		 * is expected here (one presented again once finished):
		 * identify() decides what it means, so the probe does not
		 * report it as an error. */
		board_probe_expect_locked(j->probe, true);
		rc = board_profile_connect(j->st->profile, j->probe);
		board_probe_expect_locked(j->probe, false);
		if (rc == IMP_ERR_TARGET_LOCKED)
			rc = IMP_OK;
	}
	if (rc == IMP_OK)
		rc = board_link_open("serial", fx->uart, fx->baud, &j->link);
	if (rc != IMP_OK)
		return rc;
	ap.link = j->link;
	ap.reader = fx->reader;
	/* A fixture that names a reader keeps the board's trust anchor in it. */
	return board_anchor_open(fx->reader ? "pcsc" : "agent", &ap, &j->anchor);
}

static void job_release(struct job *j)
{
	board_anchor_close(j->anchor);
	board_link_close(j->link);
	board_probe_close(j->probe);
	json_decref(j->data);
	EVP_PKEY_free(j->pub);
	free(j->cert_der);
	j->pub = NULL;
	j->cert_der = NULL;
	j->cert_der_len = 0;
	j->anchor = NULL;
	j->link = NULL;
	j->probe = NULL;
	j->data = NULL;
}

/* Record a failure in the journal; a failed challenge rejects the board. */
static void record_failure(struct job *j, imp_err rc)
{
	char msg[JNL_ERRMSG_MAX];

	snprintf(msg, sizeof(msg), "%s at %s", imp_err_str(rc), jnl_state_name(j->state));
	if (!j->uid[0] || j->state < JNL_ST_ALLOCATE || !j->serial[0]) {
		jnl_fail(j->st->journal, NULL, j->fx->name, rc, msg);
		return;
	}
	if (rc == IMP_ERR_CHALLENGE || rc == IMP_ERR_VERIFY) {
		jnl_reject(j->st->journal, j->uid, rc, msg);
		j->state = JNL_ST_FAILED;
	} else {
		jnl_fail(j->st->journal, j->uid, j->fx->name, rc, msg);
	}
}

imp_err prov_run_board(struct prov_station *st, const struct fmt_fixture *fx,
		       struct prov_result *res)
{
	struct job j = { .st = st, .fx = fx, .state = JNL_ST_CONNECT };
	imp_err rc;

	memset(res, 0, sizeof(*res));
	j.t0 = imp_now_s();
	j.slot = st->profile->slot_device >= 0 ? (uint8_t)st->profile->slot_device : 0;
	if (st->cfg->key_mode == FMT_KEY_MODE_PSK && st->profile->slot_psk >= 0)
		j.slot = (uint8_t)st->profile->slot_psk;
	report(&j, IMP_OK, "connecting");
	rc = hsm_session_open(st->hsm, &j.s);
	if (rc == IMP_OK)
		rc = connect_board(&j);
	if (rc == IMP_OK) {
		j.state = JNL_ST_IDENTIFY;
		rc = identify(&j, res);
	}
	if (rc == IMP_OK && !res->already_done)
		rc = walk(&j);
	if (rc != IMP_OK)
		j.failed_step = j.state;
	if (rc != IMP_OK && rc != IMP_ERR_QUARANTINE && rc != IMP_ERR_INTERRUPTED &&
	    j.state != JNL_ST_FAILED && j.state != JNL_ST_DONE)
		record_failure(&j, rc);
	if (rc == IMP_ERR_INTERRUPTED && (!j.uid[0] || res->not_taken))
		rc = IMP_OK; /* --count reached before this board started */
	res->rc = rc;
	res->state = j.state;
	res->failed_step = j.failed_step;
	snprintf(res->uid, sizeof(res->uid), "%s", j.uid);
	snprintf(res->serial, sizeof(res->serial), "%s", j.serial);
	if (j.state == JNL_ST_DONE)
		snprintf(res->record_id, sizeof(res->record_id), "%s", j.record_id);
	res->seconds = imp_now_s() - j.t0;
	if (rc != IMP_OK)
		report(&j, rc, "%s", imp_err_str(rc));
	job_release(&j);
	hsm_session_close(j.s);
	return rc;
}

struct worker {
	pthread_t tid;
	struct prov_station *st;
	const struct fmt_fixture *fx;
	struct prov_result *res;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	if (w->st->continuous)
		prov_run_continuous(w->st, w->fx, w->res);
	else
		prov_run_board(w->st, w->fx, w->res);
	return NULL;
}

imp_err prov_run_fixtures(struct prov_station *st, const struct fmt_fixture *fx, size_t n,
			  struct prov_result *results)
{
	struct worker *w = calloc(n ? n : 1, sizeof(*w));
	pthread_attr_t attr;
	bool attr_ok;
	imp_err rc = IMP_OK;
	size_t started = 0;

	if (!w)
		return IMP_ERR_NOMEM;
	prov_fixtures_wait(); /* the fixtures' OpenOCDs up before any board's clock */
	/* A fixture thread needs well under 128 KiB of stack (a 64-fixture
	 * run passes with that); with glibc's 8 MiB default only five of 64
	 * stacks fit glibc's 40 MiB stack cache and the rest are unmapped at
	 * exit, each unmapping flushing the TLBs of every processor. */
	attr_ok = pthread_attr_init(&attr) == 0;
	if (attr_ok && pthread_attr_setstacksize(&attr, PROV_FIXTURE_STACK) != 0) {
		pthread_attr_destroy(&attr);
		attr_ok = false;
	}
	for (size_t i = 0; i < n; i++) {
		w[i] = (struct worker){ .st = st, .fx = &fx[i], .res = &results[i] };
		if (n == 1) {
			worker_main(&w[i]);
			continue;
		}
		if (pthread_create(&w[i].tid, attr_ok ? &attr : NULL, worker_main, &w[i]) != 0) {
			IMP_ERROR("cannot start a worker thread for fixture %s", fx[i].name);
			results[i].rc = IMP_ERR_NOMEM;
			break;
		}
		started++;
	}
	if (attr_ok)
		pthread_attr_destroy(&attr);
	for (size_t i = 0; i < started; i++)
		pthread_join(w[i].tid, NULL);
	for (size_t i = 0; i < n; i++)
		if (rc == IMP_OK && results[i].rc != IMP_OK)
			rc = results[i].rc;
	free(w);
	return rc;
}

/* ------------------------------------------------------------- records */

struct pending_list {
	struct jnl_board *rows;
	size_t n, cap;
};

static int collect_record_cb(void *arg, const struct jnl_board *b)
{
	struct pending_list *l = arg;

	if (b->state != JNL_ST_RECORD)
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct jnl_board *nr = realloc(l->rows, cap * sizeof(*nr));

		if (!nr)
			return 1;
		l->rows = nr;
		l->cap = cap;
	}
	l->rows[l->n] = *b;
	l->rows[l->n].data = strdup(b->data ? b->data : "{}");
	l->n++;
	return 0;
}

imp_err prov_finish_records(struct prov_station *st, unsigned *finished)
{
	struct pending_list l = { 0 };
	struct hsm_session *s = NULL;
	imp_err rc;

	*finished = 0;
	rc = jnl_list_unfinished(st->journal, collect_record_cb, &l);
	if (rc == IMP_OK && l.n > 0)
		rc = hsm_session_open(st->hsm, &s);
	for (size_t i = 0; rc == IMP_OK && i < l.n; i++) {
		struct job j = { .st = st, .s = s, .t0 = imp_now_s() };

		snprintf(j.uid, sizeof(j.uid), "%s", l.rows[i].uid);
		rc = load_row(&j, &l.rows[i]);
		if (rc == IMP_OK)
			rc = walk(&j);
		if (rc == IMP_OK)
			(*finished)++;
		json_decref(j.data);
		EVP_PKEY_free(j.pub);
		free(j.cert_der);
	}
	for (size_t i = 0; i < l.n; i++)
		jnl_board_release(&l.rows[i]);
	free(l.rows);
	hsm_session_close(s);
	return rc;
}

/* ------------------------------------------------------------ firmware */

imp_err prov_firmware_check(const struct hsm_org *org, const uint8_t *image, size_t n,
			    const uint8_t *sig, size_t sig_len)
{
	X509 *code = org->cert[HSM_ORG_CODE];
	X509_STORE *store = X509_STORE_new();
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	imp_err rc = IMP_OK;

	if (!store || !md) {
		rc = IMP_ERR_NOMEM;
		goto cleanup;
	}
	X509_STORE_add_cert(store, org->cert[HSM_ORG_ROOT]);
	rc = fmt_cert_verify_chain(store, code, NULL, FMT_KU_DIGITAL_SIGNATURE);
	if (rc != IMP_OK) {
		IMP_ERROR("the code-signing certificate does not chain to the organisation root");
		rc = IMP_ERR_FIRMWARE;
		goto cleanup;
	}
	if (EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, X509_get0_pubkey(code)) != 1 ||
	    EVP_DigestVerify(md, sig, sig_len, image, n) != 1) {
		IMP_ERROR("the firmware image's signature does not verify against the code-signing "
			  "certificate; the image is not programmed: sign it with the organisation's "
			  "code-signing key ('imprint firmware sign IMAGE -o SIG')");
		rc = IMP_ERR_FIRMWARE;
	}
cleanup:
	EVP_MD_CTX_free(md);
	X509_STORE_free(store);
	return rc;
}
