/*
 * bench-hsm: imprint's PKCS#11 layer against a bare PKCS#11 loop, same
 * process, same SoftHSM2 token (a fresh embedded default under /tmp).
 *
 *   bench-hsm [seconds-per-round]     (default 0.5; 3 rounds each, best kept)
 *
 * Rows: P-256 session key pair generation (+ destroy), ECDSA P-256 sign
 * (SHA-256 on the host + CKM_ECDSA), AES-KWP wrap of a P-256 private key.
 * Goal: imprint within 10% of bare (ratio >= 0.90).
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "hsm/hsm.h"
#include "hsm/hsm_raw.h"
#include "imprint/log.h"
#include "imprint/util.h"

struct ctx {
	struct hsm_session *s;
	CK_FUNCTION_LIST *fl;
	CK_SESSION_HANDLE bare;
	hsm_obj sign_key, kek, wrap_key;
	int failed;
};

static const uint8_t p256_params[] = {
	0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
};
static const char msg[] = "imprint bench message: a device identity record";

static void imp_keygen(struct ctx *c)
{
	struct hsm_key_opts o = { .flags = HSM_KEY_SIGN | HSM_KEY_WRAPPABLE };
	hsm_obj pub, priv;

	if (hsm_ec_keygen(c->s, &o, &pub, &priv) != IMP_OK ||
	    hsm_destroy(c->s, pub) != IMP_OK || hsm_destroy(c->s, priv) != IMP_OK)
		c->failed = 1;
}

static void bare_keygen(struct ctx *c)
{
	CK_MECHANISM m = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
	CK_BBOOL t = CK_TRUE, f = CK_FALSE;
	CK_OBJECT_CLASS pc = CKO_PUBLIC_KEY, kc = CKO_PRIVATE_KEY;
	CK_KEY_TYPE kt = CKK_EC;
	CK_ATTRIBUTE pub_t[] = {
		{ CKA_CLASS, &pc, sizeof(pc) }, { CKA_KEY_TYPE, &kt, sizeof(kt) },
		{ CKA_TOKEN, &f, 1 }, { CKA_PRIVATE, &f, 1 }, { CKA_VERIFY, &t, 1 },
		{ CKA_EC_PARAMS, (void *)p256_params, sizeof(p256_params) },
	};
	CK_ATTRIBUTE priv_t[] = {
		{ CKA_CLASS, &kc, sizeof(kc) }, { CKA_KEY_TYPE, &kt, sizeof(kt) },
		{ CKA_TOKEN, &f, 1 }, { CKA_PRIVATE, &t, 1 }, { CKA_SENSITIVE, &t, 1 },
		{ CKA_EXTRACTABLE, &t, 1 }, { CKA_SIGN, &t, 1 }, { CKA_DERIVE, &f, 1 },
	};
	CK_OBJECT_HANDLE pub, priv;

	if (c->fl->C_GenerateKeyPair(c->bare, &m, pub_t, 6, priv_t, 8, &pub, &priv) != CKR_OK ||
	    c->fl->C_DestroyObject(c->bare, pub) != CKR_OK ||
	    c->fl->C_DestroyObject(c->bare, priv) != CKR_OK)
		c->failed = 1;
}

static void imp_sign(struct ctx *c)
{
	uint8_t raw[HSM_ECDSA_RAW_LEN];

	if (hsm_sign_sha256(c->s, c->sign_key, msg, sizeof(msg), raw) != IMP_OK)
		c->failed = 1;
}

static void bare_sign(struct ctx *c)
{
	CK_MECHANISM m = { CKM_ECDSA, NULL, 0 };
	uint8_t md[32], raw[64];
	CK_ULONG len = sizeof(raw);

	SHA256((const uint8_t *)msg, sizeof(msg), md);
	if (c->fl->C_SignInit(c->bare, &m, c->sign_key) != CKR_OK ||
	    c->fl->C_Sign(c->bare, md, sizeof(md), raw, &len) != CKR_OK)
		c->failed = 1;
}

static void imp_wrap(struct ctx *c)
{
	uint8_t out[256];
	size_t n = sizeof(out);

	if (hsm_wrap(c->s, HSM_WRAP_AES_KWP, c->kek, c->wrap_key, NULL, NULL, 0, out, &n) != IMP_OK)
		c->failed = 1;
}

static void bare_wrap(struct ctx *c)
{
	CK_MECHANISM m = { CKM_AES_KEY_WRAP_PAD, NULL, 0 };
	uint8_t out[256];
	CK_ULONG n = sizeof(out);

	if (c->fl->C_WrapKey(c->bare, &m, c->kek, c->wrap_key, out, &n) != CKR_OK)
		c->failed = 1;
}

/* Operations per second of fn over about `secs` seconds. */
static double rate(struct ctx *c, void (*fn)(struct ctx *), double secs)
{
	double t0 = imp_now_s(), t;
	long n = 0;

	do {
		for (int i = 0; i < 16; i++)
			fn(c);
		n += 16;
		t = imp_now_s() - t0;
	} while (t < secs);
	return (double)n / t;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		void (*imprint)(struct ctx *);
		void (*bare)(struct ctx *);
	} rows[] = {
		{ "P-256 session keygen", imp_keygen, bare_keygen },
		{ "ECDSA P-256 sign", imp_sign, bare_sign },
		{ "AES-KWP wrap EC key", imp_wrap, bare_wrap },
	};
	double secs = argc > 1 ? atof(argv[1]) : 0.5;
	char dir[] = "/tmp/imp-bench-hsm-XXXXXX";
	struct hsm *h = NULL;
	struct ctx c = { 0 };
	struct hsm_key_opts so = { .flags = HSM_KEY_SIGN };
	struct hsm_key_opts wo = { .flags = HSM_KEY_SIGN | HSM_KEY_WRAPPABLE };
	struct hsm_key_opts ko = { .flags = HSM_KEY_WRAP };
	hsm_obj pub;
	int worst_ok = 1, rc = 1;

	if (secs <= 0)
		secs = 0.5;
	imp_log_set_prog("bench-hsm");
	if (!mkdtemp(dir) || hsm_embedded_create(dir) != IMP_OK ||
	    hsm_embedded_open(dir, &h) != IMP_OK || hsm_session_open(h, &c.s) != IMP_OK)
		goto cleanup;
	c.fl = hsm_raw_functions(h);
	if (c.fl->C_OpenSession(hsm_raw_slot(h), CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
				&c.bare) != CKR_OK)
		goto cleanup;
	/* Session objects are visible to every session of the application. */
	if (hsm_ec_keygen(c.s, &so, &pub, &c.sign_key) != IMP_OK ||
	    hsm_ec_keygen(c.s, &wo, &pub, &c.wrap_key) != IMP_OK ||
	    hsm_aes_keygen(c.s, &ko, &c.kek) != IMP_OK)
		goto cleanup;

	printf("bench-hsm: SoftHSM2 token in %s, %.2f s per round, best of 3 rounds\n", dir, secs);
	printf("%-24s %14s %14s %8s\n", "operation", "imprint ops/s", "bare ops/s", "ratio");
	for (size_t r = 0; r < IMP_ARRAY_SIZE(rows); r++) {
		double best_i = 0, best_b = 0, v;

		for (int round = 0; round < 3; round++) {
			v = rate(&c, rows[r].bare, secs);
			best_b = v > best_b ? v : best_b;
			v = rate(&c, rows[r].imprint, secs);
			best_i = v > best_i ? v : best_i;
		}
		printf("%-24s %14.0f %14.0f %8.3f%s\n", rows[r].name, best_i, best_b,
		       best_i / best_b, best_i / best_b >= 0.90 ? "" : "  (over 10% slower)");
		if (best_i / best_b < 0.90)
			worst_ok = 0;
	}
	if (c.failed) {
		fprintf(stderr, "bench-hsm: some operations failed\n");
		goto cleanup;
	}
	printf("goal (imprint within 10%% of bare): %s\n", worst_ok ? "met" : "NOT met");
	rc = 0;
cleanup:
	if (c.bare)
		c.fl->C_CloseSession(c.bare);
	hsm_session_close(c.s);
	hsm_close(h);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return rc;
}
