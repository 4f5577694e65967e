/*
 * bench-hsm: imprint's PKCS#11 layer against a bare PKCS#11 loop, same
 * process, same token, interleaved rounds.
 *
 *   bench-hsm [--name NAME] [--secs S] [--clock wall|cpu]
 *             [--module M --token URI --pin-env VAR [--init-args ARGS]]
 *
 * Without --module: a fresh embedded SoftHSM2 default under /tmp. With it:
 * any token (bench/hsm/run.sh sets up SoftHSM2, NSS softoken, tpm2-pkcs11
 * on swtpm and SoftHSM2 behind p11-kit's RPC and runs one bench per token).
 *
 * Rows (imprint and bare alternating in batches of about 20 ms for 2 * S
 * seconds; each side's rate is the median of its batches, the ratio the
 * median of adjacent batches' ratios):
 *   keygen  P-256 session key pair generation + destroy of both halves
 *   sign    ECDSA P-256 (SHA-256 on the host + CKM_ECDSA)
 *   wrap    RFC 5649 wrap of a P-256 private key (only where the token can
 *           do key mode hsm)
 *   board   the HSM work of one device-mode board: a 32-byte nonce from the
 *           token's RNG, the device certificate's and the record's ECDSA
 *           signatures (reported in ms per board)
 * The bare loop uses the same templates and mechanisms as imprint, so a
 * ratio below 1 is imprint's own overhead. Goal: ratio >= 0.95 each row.
 * The last line, "board_ms NAME X", is for run.sh.
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/sha.h>

#include "hsm/hsm.h"
#include "hsm/hsm_raw.h"
#include "imprint/log.h"
#include "imprint/util.h"

#define GOAL 0.95

#ifndef CKM_AES_KEY_WRAP_KWP
#define CKM_AES_KEY_WRAP_KWP (0x210bUL)
#endif

struct ctx {
	struct hsm *h;
	struct hsm_session *s;
	CK_FUNCTION_LIST *fl;
	CK_SESSION_HANDLE bare;
	CK_MECHANISM_TYPE kwp;
	hsm_obj sign_key, kek, wrap_key;
	bool token_keys; /* the token makes no session keys (tpm2-pkcs11) */
	int failed;
};

static const uint8_t p256_params[] = {
	0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
};
static const char msg[] = "imprint bench message: a device identity record";

static void imp_keygen(struct ctx *c)
{
	struct hsm_key_opts o = { .flags = HSM_KEY_SIGN | (c->token_keys ? HSM_KEY_TOKEN : 0) };
	hsm_obj pub, priv;

	if (hsm_ec_keygen(c->s, &o, &pub, &priv) != IMP_OK ||
	    hsm_destroy(c->s, pub) != IMP_OK || hsm_destroy(c->s, priv) != IMP_OK)
		c->failed = 1;
}

/* The same templates as hsm_ec_keygen (hsm/keys.c). */
static void bare_keygen(struct ctx *c)
{
	CK_MECHANISM m = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
	CK_BBOOL t = CK_TRUE, f = CK_FALSE, tok = c->token_keys;
	CK_OBJECT_CLASS pc = CKO_PUBLIC_KEY, kc = CKO_PRIVATE_KEY;
	CK_KEY_TYPE kt = CKK_EC;
	CK_ATTRIBUTE pub_t[] = {
		{ CKA_CLASS, &pc, sizeof(pc) }, { CKA_KEY_TYPE, &kt, sizeof(kt) },
		{ CKA_TOKEN, &tok, 1 }, { CKA_PRIVATE, &f, 1 },
		{ CKA_EC_PARAMS, (void *)p256_params, sizeof(p256_params) },
	};
	CK_ATTRIBUTE priv_t[] = {
		{ CKA_CLASS, &kc, sizeof(kc) }, { CKA_KEY_TYPE, &kt, sizeof(kt) },
		{ CKA_TOKEN, &tok, 1 }, { CKA_PRIVATE, &t, 1 }, { CKA_SENSITIVE, &t, 1 },
		{ CKA_EXTRACTABLE, &f, 1 }, { CKA_SIGN, &t, 1 }, { CKA_DERIVE, &f, 1 },
		{ CKA_DECRYPT, &f, 1 }, { CKA_UNWRAP, &f, 1 },
	};
	CK_OBJECT_HANDLE pub, priv;

	if (c->fl->C_GenerateKeyPair(c->bare, &m, pub_t, IMP_ARRAY_SIZE(pub_t), priv_t,
				     IMP_ARRAY_SIZE(priv_t), &pub, &priv) != CKR_OK ||
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
	CK_MECHANISM m = { c->kwp, NULL, 0 };
	uint8_t out[256];
	CK_ULONG n = sizeof(out);

	if (c->fl->C_WrapKey(c->bare, &m, c->kek, c->wrap_key, out, &n) != CKR_OK)
		c->failed = 1;
}

static void imp_board(struct ctx *c)
{
	uint8_t nonce[32];

	if (hsm_random(c->s, nonce, sizeof(nonce)) != IMP_OK)
		c->failed = 1;
	imp_sign(c);
	imp_sign(c);
}

static void bare_board(struct ctx *c)
{
	uint8_t nonce[32];

	if (c->fl->C_GenerateRandom(c->bare, nonce, sizeof(nonce)) != CKR_OK)
		c->failed = 1;
	bare_sign(c);
	bare_sign(c);
}

/*
 * The clock batches are timed with: wall time, or this process's CPU time
 * (--clock cpu: for in-process tokens, where all the work is ours and the
 * other processes on a shared machine should not count).
 */
static bool use_cpu_clock;

static double now(void)
{
	struct timespec ts;

	if (!use_cpu_clock)
		return imp_now_s();
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One batch: ops/s of fn over about 20 ms (at least 2 ops). */
static double batch_rate(struct ctx *c, void (*fn)(struct ctx *))
{
	double t0 = now(), t;
	long n = 0;

	do {
		fn(c);
		fn(c);
		n += 2;
		t = now() - t0;
	} while (t < 0.02 && !c->failed);
	return (double)n / t;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

#define MAX_BATCHES 2000

/*
 * imprint and bare alternate batch by batch for about 2 * secs seconds, so
 * that both see the same load from the rest of the machine; each side's
 * rate is the median of its batches, the ratio the median of the ratios of
 * adjacent batches (which cancels drifts of the machine's speed).
 */
static void measure(struct ctx *c, void (*imp)(struct ctx *), void (*bare)(struct ctx *),
		    double secs, double *imp_rate, double *bare_rate, double *ratio)
{
	static double ri[MAX_BATCHES], rb[MAX_BATCHES], rr[MAX_BATCHES];
	double t0 = imp_now_s();
	size_t n = 0;

	while (n < MAX_BATCHES && (n < 5 || imp_now_s() - t0 < 2 * secs) && !c->failed) {
		if (n % 2) {
			ri[n] = batch_rate(c, imp);
			rb[n] = batch_rate(c, bare);
		} else {
			rb[n] = batch_rate(c, bare);
			ri[n] = batch_rate(c, imp);
		}
		rr[n] = ri[n] / rb[n];
		n++;
	}
	qsort(rr, n, sizeof(*rr), cmp_double);
	*ratio = rr[n / 2];
	qsort(ri, n, sizeof(*ri), cmp_double);
	qsort(rb, n, sizeof(*rb), cmp_double);
	*imp_rate = ri[n / 2];
	*bare_rate = rb[n / 2];
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

struct opts {
	const char *name, *module, *token, *pin_env, *init_args;
	double secs;
};

static int parse(int argc, char **argv, struct opts *o)
{
	for (int i = 1; i < argc; i++) {
		const char **dst = NULL;

		if (strcmp(argv[i], "--name") == 0)
			dst = &o->name;
		else if (strcmp(argv[i], "--module") == 0)
			dst = &o->module;
		else if (strcmp(argv[i], "--token") == 0)
			dst = &o->token;
		else if (strcmp(argv[i], "--pin-env") == 0)
			dst = &o->pin_env;
		else if (strcmp(argv[i], "--init-args") == 0)
			dst = &o->init_args;
		else if (strcmp(argv[i], "--secs") == 0 && i + 1 < argc)
			o->secs = atof(argv[++i]);
		else if (strcmp(argv[i], "--clock") == 0 && i + 1 < argc)
			use_cpu_clock = strcmp(argv[++i], "cpu") == 0;
		else
			return -1;
		if (dst) {
			if (i + 1 >= argc)
				return -1;
			*dst = argv[++i];
		}
	}
	if (o->module && (!o->token || !o->pin_env))
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		void (*imprint)(struct ctx *);
		void (*bare)(struct ctx *);
		int needs_wrap;
	} rows[] = {
		{ "keygen", imp_keygen, bare_keygen, 0 },
		{ "sign", imp_sign, bare_sign, 0 },
		{ "wrap", imp_wrap, bare_wrap, 1 },
		{ "board", imp_board, bare_board, 0 },
	};
	struct opts o = { .name = "softhsm2-embedded", .secs = 0.3 };
	char dir[] = "/tmp/imp-bench-hsm-XXXXXX";
	bool made_dir = false, can_wrap;
	struct ctx c = { 0 };
	struct hsm_key_opts so = { .flags = HSM_KEY_SIGN };
	struct hsm_key_opts wo = { .flags = HSM_KEY_SIGN | HSM_KEY_WRAPPABLE };
	struct hsm_key_opts ko = { .flags = HSM_KEY_WRAP };
	CK_MECHANISM_INFO mi;
	double board_ms = 0;
	hsm_obj pub = HSM_OBJ_NONE;
	int worst_ok = 1, rc = 1;

	imp_log_set_prog("bench-hsm");
	if (parse(argc, argv, &o) != 0 || o.secs <= 0) {
		fprintf(stderr, "usage: bench-hsm [--name NAME] [--secs S] [--clock wall|cpu] "
				"[--module M --token URI --pin-env VAR [--init-args ARGS]]\n");
		return 2;
	}
	if (!o.module) {
		made_dir = mkdtemp(dir) != NULL;
		if (!made_dir || hsm_embedded_create(dir) != IMP_OK ||
		    hsm_embedded_open(dir, &c.h) != IMP_OK)
			goto cleanup;
	} else {
		struct hsm_pin_source pin = { .kind = HSM_PIN_ENV, .name = o.pin_env };

		if (hsm_open_module(&(struct hsm_module){ o.module, o.init_args }, o.token, &pin,
				    &c.h) != IMP_OK)
			goto cleanup;
	}
	if (hsm_session_open(c.h, &c.s) != IMP_OK)
		goto cleanup;
	c.fl = hsm_raw_functions(c.h);
	if (c.fl->C_OpenSession(hsm_raw_slot(c.h), CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
				&c.bare) != CKR_OK)
		goto cleanup;
	can_wrap = (hsm_modes(c.h, NULL) & HSM_MODE_HSM) != 0;
	c.kwp = c.fl->C_GetMechanismInfo(hsm_raw_slot(c.h), CKM_AES_KEY_WRAP_KWP, &mi) == CKR_OK &&
			(mi.flags & CKF_WRAP) ? CKM_AES_KEY_WRAP_KWP : CKM_AES_KEY_WRAP_PAD;
	/* Session objects are visible to every session of the application. */
	if (hsm_ec_keygen(c.s, &so, &pub, &c.sign_key) != IMP_OK) {
		c.token_keys = true;
		so.flags |= HSM_KEY_TOKEN;
		fprintf(stderr, "bench-hsm: %s makes no session keys; benchmarking token objects\n",
			o.name);
		if (hsm_ec_keygen(c.s, &so, &pub, &c.sign_key) != IMP_OK)
			goto cleanup;
	}
	if (can_wrap && (hsm_ec_keygen(c.s, &wo, &pub, &c.wrap_key) != IMP_OK ||
			 hsm_aes_keygen(c.s, &ko, &c.kek) != IMP_OK))
		goto cleanup;

	printf("# bench-hsm: token %s, %.2f s per side and row, median of 20 ms batches of %s "
	       "time%s\n", o.name, o.secs, use_cpu_clock ? "cpu" : "wall",
	       c.token_keys ? "; token objects (no session keys)" : "");
	printf("%-20s %-7s %13s %13s %7s\n", "token", "op", "imprint/s", "bare/s", "ratio");
	for (size_t r = 0; r < IMP_ARRAY_SIZE(rows); r++) {
		double best_i = 0, best_b = 0, ratio = 0;

		if (rows[r].needs_wrap && !can_wrap) {
			printf("%-20s %-7s %13s %13s %7s\n", o.name, rows[r].name, "-", "-",
			       "n/a (token cannot wrap)");
			continue;
		}
		measure(&c, rows[r].imprint, rows[r].bare, o.secs, &best_i, &best_b, &ratio);
		printf("%-20s %-7s %13.1f %13.1f %7.3f%s\n", o.name, rows[r].name, best_i, best_b,
		       ratio, ratio >= GOAL ? "" : "  (below 0.95)");
		if (ratio < GOAL)
			worst_ok = 0;
		if (strcmp(rows[r].name, "board") == 0)
			board_ms = 1000.0 / best_i;
	}
	if (c.failed) {
		fprintf(stderr, "bench-hsm: some operations failed\n");
		goto cleanup;
	}
	printf("# goal (imprint >= %.2f of bare, every row): %s\n", GOAL, worst_ok ? "met" : "NOT met");
	printf("board_ms %s %.3f\n", o.name, board_ms);
	rc = 0;
cleanup:
	if (c.token_keys && c.sign_key) {
		hsm_destroy(c.s, c.sign_key);
		hsm_destroy(c.s, pub);
	}
	if (c.bare)
		c.fl->C_CloseSession(c.bare);
	hsm_session_close(c.s);
	hsm_close(c.h);
	if (made_dir)
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return rc;
}
