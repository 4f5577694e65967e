/*
 * Key-mode capability checks (hsm/caps.c) and mechanism naming in failure
 * messages, against fake tokens: a struct hsm whose mechanism cache and
 * token flags are what real tokens report (lists taken from SoftHSM2 2.6.1,
 * NSS softoken 3.87's key database slot, tpm2-pkcs11 1.9, p11-kit 0.24's
 * RPC client, opencryptoki 3.8's soft token without EC), and a function
 * list whose calls answer as a test says.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "hsm/hsm.h"
#include "hsm_int.h"
#include "imprint/log.h"

#define GEN CKF_GENERATE
#define GKP CKF_GENERATE_KEY_PAIR

static const struct hsm_mech_cache softhsm[] = {
	{ CKM_EC_KEY_PAIR_GEN, GKP, 112, 521 }, { CKM_ECDSA, CKF_SIGN | CKF_VERIFY, 112, 521 },
	{ CKM_ECDH1_DERIVE, CKF_DERIVE, 112, 521 }, { CKM_AES_KEY_GEN, GEN, 16, 32 },
	{ CKM_AES_KEY_WRAP_PAD, CKF_WRAP | CKF_UNWRAP, 16, 32 },
	{ CKM_AES_ECB_ENCRYPT_DATA, CKF_DERIVE, 0, 0 }, { CKM_AES_CMAC, CKF_SIGN, 16, 32 },
	{ CKM_AES_GCM, CKF_ENCRYPT | CKF_DECRYPT, 16, 32 },
};
static const struct hsm_mech_cache nss_db[] = {
	{ CKM_EC_KEY_PAIR_GEN, GKP, 256, 521 }, { CKM_ECDSA, CKF_SIGN, 256, 521 },
	{ CKM_ECDH1_DERIVE, CKF_DERIVE, 256, 521 }, { CKM_AES_KEY_GEN, GEN, 16, 32 },
	{ CKM_AES_KEY_WRAP_PAD, CKF_WRAP | CKF_UNWRAP, 16, 32 },
	{ CKM_AES_KEY_WRAP_KWP, CKF_WRAP | CKF_UNWRAP, 1, 32 }, { CKM_AES_CMAC, CKF_SIGN, 16, 32 },
};
static const struct hsm_mech_cache tpm2[] = {
	{ CKM_EC_KEY_PAIR_GEN, GKP, 192, 638 }, { CKM_ECDSA, CKF_SIGN, 192, 638 },
	{ CKM_AES_KEY_GEN, GEN, 16, 32 }, { CKM_AES_CBC, CKF_ENCRYPT | CKF_DECRYPT, 16, 32 },
};
static const struct hsm_mech_cache opencryptoki_soft[] = {
	{ CKM_RSA_PKCS_KEY_PAIR_GEN, GKP, 512, 4096 }, { CKM_AES_KEY_GEN, GEN, 16, 32 },
	{ CKM_AES_ECB, CKF_ENCRYPT | CKF_DECRYPT, 16, 32 }, { CKM_SHA256, CKF_DIGEST, 0, 0 },
};
/* A token that reports AES key sizes in bits (accepted) and one whose EC
 * range excludes P-256 (refused). */
static const struct hsm_mech_cache aes_bits[] = {
	{ CKM_EC_KEY_PAIR_GEN, GKP, 256, 384 }, { CKM_ECDSA, CKF_SIGN, 256, 384 },
	{ CKM_ECDH1_DERIVE, CKF_DERIVE, 256, 384 },
	{ CKM_AES_KEY_WRAP_PAD, CKF_WRAP, 128, 256 },
};
static const struct hsm_mech_cache p384_only[] = {
	{ CKM_EC_KEY_PAIR_GEN, GKP, 384, 384 }, { CKM_ECDSA, CKF_SIGN, 384, 384 },
};
/* CKM_AES_KEY_WRAP_PAD offered for unwrapping only. */
static const struct hsm_mech_cache unwrap_only[] = {
	{ CKM_EC_KEY_PAIR_GEN, GKP, 256, 256 }, { CKM_ECDSA, CKF_SIGN, 256, 256 },
	{ CKM_ECDH1_DERIVE, CKF_DERIVE, 256, 256 }, { CKM_AES_KEY_WRAP_PAD, CKF_UNWRAP, 32, 32 },
};

/* ------------------------------------------------------- fake module */

static CK_RV keygen_rv = CKR_OK;
static CK_BBOOL probe_extractable = CK_TRUE;
static CK_OBJECT_HANDLE next_handle = 100;

static CK_RV fake_open(CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR app, CK_NOTIFY n,
		       CK_SESSION_HANDLE_PTR sh)
{
	(void)slot, (void)flags, (void)app, (void)n;
	*sh = 7;
	return CKR_OK;
}

static CK_RV fake_close(CK_SESSION_HANDLE sh)
{
	(void)sh;
	return CKR_OK;
}

static CK_RV fake_keypair(CK_SESSION_HANDLE sh, CK_MECHANISM_PTR m, CK_ATTRIBUTE_PTR pt,
			  CK_ULONG pn, CK_ATTRIBUTE_PTR kt, CK_ULONG kn, CK_OBJECT_HANDLE_PTR pub,
			  CK_OBJECT_HANDLE_PTR priv)
{
	(void)sh, (void)m, (void)pt, (void)pn, (void)kt, (void)kn;
	if (keygen_rv != CKR_OK)
		return keygen_rv;
	*pub = next_handle++;
	*priv = next_handle++;
	return CKR_OK;
}

static CK_RV fake_keygen(CK_SESSION_HANDLE sh, CK_MECHANISM_PTR m, CK_ATTRIBUTE_PTR t,
			 CK_ULONG n, CK_OBJECT_HANDLE_PTR key)
{
	(void)sh, (void)m, (void)t, (void)n;
	if (keygen_rv != CKR_OK)
		return keygen_rv;
	*key = next_handle++;
	return CKR_OK;
}

/* What a probe reads back: sensitive, session object, extractable as set. */
static CK_RV fake_getattr(CK_SESSION_HANDLE sh, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_PTR a,
			  CK_ULONG n)
{
	(void)sh, (void)o;
	for (CK_ULONG i = 0; i < n; i++) {
		CK_BBOOL v = CK_FALSE;

		switch (a[i].type) {
		case CKA_SENSITIVE:
			v = CK_TRUE;
			break;
		case CKA_EXTRACTABLE:
			v = probe_extractable;
			break;
		case CKA_CLASS:
		case CKA_KEY_TYPE:
		case CKA_LABEL:
		case CKA_ID:
			a[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
			continue;
		default:
			break;
		}
		if (a[i].pValue && a[i].ulValueLen >= sizeof(v))
			memcpy(a[i].pValue, &v, sizeof(v));
		a[i].ulValueLen = sizeof(v);
	}
	return CKR_OK;
}

static CK_RV fake_destroy(CK_SESSION_HANDLE sh, CK_OBJECT_HANDLE o)
{
	(void)sh, (void)o;
	return CKR_OK;
}

static CK_FUNCTION_LIST fake_fl = {
	.C_OpenSession = fake_open,
	.C_CloseSession = fake_close,
	.C_GenerateKeyPair = fake_keypair,
	.C_GenerateKey = fake_keygen,
	.C_GetAttributeValue = fake_getattr,
	.C_DestroyObject = fake_destroy,
};

static struct hsm tok;

static void use(const struct hsm_mech_cache *m, size_t n, CK_FLAGS token_flags)
{
	memset(&tok, 0, sizeof(tok));
	tok.fl = &fake_fl;
	tok.mechs = (struct hsm_mech_cache *)m;
	tok.n_mechs = n;
	tok.token_flags = token_flags;
	snprintf(tok.token_label, sizeof(tok.token_label), "fake");
	keygen_rv = CKR_OK;
	probe_extractable = CK_TRUE;
}
#define USE(m, f) use((m), sizeof(m) / sizeof((m)[0]), (f))

/* stderr of `call`, into buf. */
static char err_buf[4096];
#define CAPTURE(call)                                                                  \
	do {                                                                           \
		FILE *f_ = tmpfile();                                                  \
		int saved_ = dup(2);                                                   \
		size_t n_;                                                             \
		fflush(stderr);                                                        \
		dup2(fileno(f_), 2);                                                   \
		call;                                                                  \
		fflush(stderr);                                                        \
		dup2(saved_, 2);                                                       \
		close(saved_);                                                         \
		rewind(f_);                                                            \
		n_ = fread(err_buf, 1, sizeof(err_buf) - 1, f_);                       \
		err_buf[n_] = '\0';                                                    \
		fclose(f_);                                                            \
	} while (0)

static void assert_contains(const char *hay, const char *needle)
{
	if (!strstr(hay, needle))
		fail_msg("\"%s\" not in \"%s\"", needle, hay);
}

/* --------------------------------------------------------------- tests */

static void test_softhsm_all_modes(void **state)
{
	char missing[3][512];

	(void)state;
	USE(softhsm, CKF_RNG | CKF_LOGIN_REQUIRED);
	assert_int_equal(hsm_modes(&tok, missing), HSM_MODES_ALL);
	assert_string_equal(missing[0], "");
	assert_string_equal(missing[2], "");
	assert_int_equal(hsm_mode_check(&tok, HSM_MODE_PSK), IMP_OK);
	assert_int_equal(hsm_kwp_mechanism(&tok), CKM_AES_KEY_WRAP_PAD);
}

static void test_nss_no_psk(void **state)
{
	imp_err rc;

	(void)state;
	USE(nss_db, CKF_RNG);
	assert_int_equal(hsm_modes(&tok, NULL), HSM_MODE_DEVICE | HSM_MODE_HSM);
	/* NSS's KEY_WRAP_PAD is not RFC 5649: the KWP mechanism is used. */
	assert_int_equal(hsm_kwp_mechanism(&tok), CKM_AES_KEY_WRAP_KWP);
	CAPTURE(rc = hsm_mode_check(&tok, HSM_MODE_PSK));
	assert_int_equal(rc, IMP_ERR_UNSUPPORTED);
	assert_int_equal((int)rc, 24);
	assert_contains(err_buf, "token \"fake\" cannot do key mode psk: it lacks "
				 "CKM_AES_ECB_ENCRYPT_DATA (derive); key modes this token can do: "
				 "device, hsm");
}

static void test_tpm2_device_only(void **state)
{
	char missing[3][512];
	imp_err rc;

	(void)state;
	USE(tpm2, CKF_RNG);
	assert_int_equal(hsm_modes(&tok, missing), HSM_MODE_DEVICE);
	assert_string_equal(missing[1], "CKM_ECDH1_DERIVE (derive, P-256), CKM_AES_KEY_WRAP_KWP or "
					"CKM_AES_KEY_WRAP_PAD (wrap, AES-256)");
	CAPTURE(rc = hsm_mode_check(&tok, HSM_MODE_HSM));
	assert_int_equal(rc, IMP_ERR_UNSUPPORTED);
	assert_contains(err_buf, "key modes this token can do: device");
}

static void test_opencryptoki_nothing(void **state)
{
	imp_err rc;

	(void)state;
	USE(opencryptoki_soft, CKF_RNG);
	assert_int_equal(hsm_modes(&tok, NULL), 0);
	CAPTURE(rc = hsm_mode_check(&tok, HSM_MODE_DEVICE));
	assert_int_equal(rc, IMP_ERR_UNSUPPORTED);
	assert_contains(err_buf, "it lacks CKM_EC_KEY_PAIR_GEN (generate key pair, P-256), "
				 "CKM_ECDSA (sign, P-256)");
	assert_contains(err_buf, "this token can do no key mode");
}

static void test_token_flags(void **state)
{
	char missing[3][512];

	(void)state;
	USE(softhsm, 0); /* no RNG */
	assert_int_equal(hsm_modes(&tok, missing), 0);
	assert_string_equal(missing[0], "a random generator (CKF_RNG)");
	USE(softhsm, CKF_RNG | CKF_WRITE_PROTECTED);
	assert_int_equal(hsm_modes(&tok, missing), 0);
	assert_string_equal(missing[0], "a writable token (it is CKF_WRITE_PROTECTED)");
}

static void test_sizes_and_flags(void **state)
{
	char missing[3][512];

	(void)state;
	USE(aes_bits, CKF_RNG);
	assert_int_equal(hsm_modes(&tok, NULL) & HSM_MODE_HSM, HSM_MODE_HSM);
	USE(p384_only, CKF_RNG);
	assert_int_equal(hsm_modes(&tok, missing), 0);
	assert_string_equal(missing[0], "CKM_EC_KEY_PAIR_GEN (generate key pair, P-256), "
					"CKM_ECDSA (sign, P-256)");
	USE(unwrap_only, CKF_RNG);
	assert_int_equal(hsm_modes(&tok, missing), HSM_MODE_DEVICE);
	assert_string_equal(missing[1], "CKM_AES_KEY_WRAP_KWP or CKM_AES_KEY_WRAP_PAD (wrap, AES-256)");
}

/* Mechanisms listed, attribute combination refused: the probe finds it. */
static void test_probe(void **state)
{
	char missing[3][512];

	(void)state;
	USE(softhsm, CKF_RNG);
	keygen_rv = CKR_TEMPLATE_INCONSISTENT;
	assert_int_equal(hsm_modes(&tok, missing), HSM_MODE_DEVICE);
	assert_string_equal(missing[1], "EC session keys that are sensitive and extractable "
					"(wrap only)");
	assert_string_equal(missing[2], "AES session keys that are sensitive and extractable "
					"(wrap only)");
	/* Key made, but not extractable as asked. */
	USE(softhsm, CKF_RNG);
	probe_extractable = CK_FALSE;
	assert_int_equal(hsm_modes(&tok, NULL), HSM_MODE_DEVICE);
	/* Probes run once per struct hsm. */
	probe_extractable = CK_TRUE;
	assert_int_equal(hsm_modes(&tok, NULL), HSM_MODE_DEVICE);
}

/* A failing call that takes a mechanism names it (opencryptoki's answer to
 * an EC key pair on its soft token). */
static void test_mechanism_named(void **state)
{
	struct hsm_session s = { &tok, &fake_fl, 7 };
	struct hsm_key_opts o = { HSM_KEY_TOKEN | HSM_KEY_SIGN, "k", NULL, 0 };
	hsm_obj pub, priv;
	imp_err rc;

	(void)state;
	USE(opencryptoki_soft, CKF_RNG);
	keygen_rv = CKR_MECHANISM_INVALID;
	CAPTURE(rc = hsm_ec_keygen(&s, &o, &pub, &priv));
	assert_int_equal(rc, IMP_ERR_UNSUPPORTED);
	assert_contains(err_buf, "C_GenerateKeyPair failed: CKR_MECHANISM_INVALID (0x70) for "
				 "CKM_EC_KEY_PAIR_GEN (0x1040)");
	keygen_rv = CKR_FUNCTION_NOT_SUPPORTED; /* tpm2-pkcs11's AES keygen */
	CAPTURE(rc = hsm_aes_keygen(&s, &o, &pub));
	assert_int_equal(rc, IMP_ERR_UNSUPPORTED);
	assert_contains(err_buf, "C_GenerateKey failed: CKR_FUNCTION_NOT_SUPPORTED (0x54) for "
				 "CKM_AES_KEY_GEN (0x1080)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_softhsm_all_modes),
		cmocka_unit_test(test_nss_no_psk),
		cmocka_unit_test(test_tpm2_device_only),
		cmocka_unit_test(test_opencryptoki_nothing),
		cmocka_unit_test(test_token_flags),
		cmocka_unit_test(test_sizes_and_flags),
		cmocka_unit_test(test_probe),
		cmocka_unit_test(test_mechanism_named),
	};

	imp_log_set_level(IMP_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
