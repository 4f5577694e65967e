/*
 * Session copies of token keys (hsm_key_session_copy, hsm_org_session_keys)
 * against a real SoftHSM2: the copy is a session object that is still
 * private, sensitive and never extractable, signs as the token key does
 * from another session, and a token that refuses the copy (CKA_COPYABLE
 * false) leaves the token object in use.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "formats/ecdsa_der.h"
#include "hsm/hsm.h"
#include "hsm/org.h"
#include "hsm_fixture.h"
#include "hsm_int.h"

static const uint8_t p256_params[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };

/* A token pair; with copyable false the private half says CKA_COPYABLE false. */
static void token_pair(struct fx *f, const char *label, bool copyable, hsm_obj *pub,
		       hsm_obj *priv)
{
	CK_MECHANISM m = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
	struct hsm_tmpl pt = { .n = 0 }, kt = { .n = 0 };

	hsm_tmpl_bool(&pt, CKA_TOKEN, 1);
	hsm_tmpl_bytes(&pt, CKA_EC_PARAMS, p256_params, sizeof(p256_params));
	hsm_tmpl_bytes(&pt, CKA_LABEL, label, strlen(label));
	hsm_tmpl_bool(&kt, CKA_TOKEN, 1);
	hsm_tmpl_bool(&kt, CKA_PRIVATE, 1);
	hsm_tmpl_bool(&kt, CKA_SENSITIVE, 1);
	hsm_tmpl_bool(&kt, CKA_EXTRACTABLE, 0);
	hsm_tmpl_bool(&kt, CKA_SIGN, 1);
	hsm_tmpl_bool(&kt, CKA_COPYABLE, copyable);
	hsm_tmpl_bytes(&kt, CKA_LABEL, label, strlen(label));
	assert_int_equal(f->s->fl->C_GenerateKeyPair(f->s->sh, &m, pt.a, pt.n, kt.a, kt.n, pub,
						     priv), CKR_OK);
}

/* key signs in session s, and the signature verifies with pub. */
static void signs_as(struct hsm_session *s, hsm_obj key, EVP_PKEY *pub)
{
	static const uint8_t md[32] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	uint8_t raw[HSM_ECDSA_RAW_LEN], der[FMT_ECDSA_DER_MAX];
	size_t der_len;
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(pub, NULL);

	assert_int_equal(hsm_sign_digest(s, key, md, raw), IMP_OK);
	assert_int_equal(fmt_ecdsa_raw_to_der(raw, der, sizeof(der), &der_len), IMP_OK);
	assert_non_null(c);
	assert_int_equal(EVP_PKEY_verify_init(c), 1);
	assert_int_equal(EVP_PKEY_verify(c, der, der_len, md, sizeof(md)), 1);
	EVP_PKEY_CTX_free(c);
}

static void test_copy_is_guarded(void **state)
{
	struct fx *f = *state;
	uint8_t value[256];
	CK_ATTRIBUTE a = { CKA_VALUE, value, sizeof(value) };
	struct hsm_obj_info info;
	struct hsm_session *other = NULL;
	hsm_obj pub, priv, copy;
	EVP_PKEY *pk = NULL;

	token_pair(f, "copy-test", true, &pub, &priv);
	assert_int_equal(hsm_key_session_copy(f->s, priv, &copy), IMP_OK);
	assert_int_not_equal(copy, HSM_OBJ_NONE);
	assert_int_not_equal(copy, priv);

	assert_int_equal(hsm_object_info(f->s, copy, &info), IMP_OK);
	assert_int_equal(info.cls, HSM_CLASS_PRIVATE_KEY);
	assert_false(info.token);
	assert_true(info.private_);
	assert_true(info.sensitive);
	assert_false(info.extractable);
	assert_true(info.sign);
	assert_string_equal(info.label, "copy-test");
	/* The value never leaves: CKA_VALUE of the copy is refused. */
	assert_int_equal(f->s->fl->C_GetAttributeValue(f->s->sh, copy, &a, 1),
			 CKR_ATTRIBUTE_SENSITIVE);
	assert_int_equal(a.ulValueLen, CK_UNAVAILABLE_INFORMATION);
	/* Nor can it be wrapped out, and it cannot be made extractable. */
	{
		CK_BBOOL yes = CK_TRUE;
		CK_ATTRIBUTE ext = { CKA_EXTRACTABLE, &yes, sizeof(yes) };

		assert_int_not_equal(f->s->fl->C_SetAttributeValue(f->s->sh, copy, &ext, 1),
				     CKR_OK);
		assert_int_equal(hsm_object_info(f->s, copy, &info), IMP_OK);
		assert_false(info.extractable);
	}

	/* The copy signs as the token key, from another session too. */
	assert_int_equal(hsm_ec_pkey(f->s, pub, &pk), IMP_OK);
	signs_as(f->s, copy, pk);
	assert_int_equal(hsm_session_open(f->h, &other), IMP_OK);
	signs_as(other, copy, pk);
	hsm_session_close(other);

	/* It is a session object: it goes with its session, the token key stays. */
	{
		struct hsm_session *owner = NULL;
		hsm_obj c2;

		assert_int_equal(hsm_session_open(f->h, &owner), IMP_OK);
		assert_int_equal(hsm_key_session_copy(owner, priv, &c2), IMP_OK);
		hsm_session_close(owner);
		hsm_p11_quiet(true);
		assert_int_not_equal(hsm_object_info(f->s, c2, &info), IMP_OK);
		hsm_p11_quiet(false);
	}
	assert_int_equal(hsm_destroy(f->s, copy), IMP_OK);
	signs_as(f->s, priv, pk);
	/* Only token keys are copied. */
	assert_int_equal(hsm_key_session_copy(f->s, pub, &copy), IMP_ERR_USAGE);
	EVP_PKEY_free(pk);
}

static void test_copy_refused(void **state)
{
	struct fx *f = *state;
	hsm_obj pub, priv, copy = 1234;
	EVP_PKEY *pk = NULL;

	token_pair(f, "no-copy", false, &pub, &priv);
	assert_int_equal(hsm_key_session_copy(f->s, priv, &copy), IMP_ERR_UNSUPPORTED);
	assert_int_equal(copy, HSM_OBJ_NONE);
	{
		struct hsm_obj_info *all;
		size_t n;

		/* nothing left behind */
		assert_int_equal(hsm_list(f->s, HSM_CLASS_ANY, &all, &n), IMP_OK);
		assert_int_equal(n, 2);
		free(all);
	}
	assert_int_equal(hsm_ec_pkey(f->s, pub, &pk), IMP_OK);
	signs_as(f->s, priv, pk);
	EVP_PKEY_free(pk);
}


/* A token that does not give the copy's CKA_EXTRACTABLE (reads as
 * CKR_ATTRIBUTE_TYPE_INVALID): the copy is not taken as non-extractable. */
static CK_FUNCTION_LIST hiding;
static CK_C_GetAttributeValue real_get;
static CK_OBJECT_HANDLE shown;

static CK_RV hide_extractable(CK_SESSION_HANDLE sh, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_PTR a,
			      CK_ULONG n)
{
	CK_RV rv = real_get(sh, o, a, n);

	if (o == shown)
		return rv;
	for (CK_ULONG i = 0; i < n; i++)
		if (a[i].type == CKA_EXTRACTABLE) {
			a[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
			if (rv == CKR_OK)
				rv = CKR_ATTRIBUTE_TYPE_INVALID;
		}
	return rv;
}

static void test_copy_flag_unreadable(void **state)
{
	struct fx *f = *state;
	CK_FUNCTION_LIST *fl = f->s->fl;
	hsm_obj pub, priv, copy = 1234;
	struct hsm_obj_info *all;
	size_t n;

	token_pair(f, "hidden", true, &pub, &priv);
	hiding = *fl;
	real_get = fl->C_GetAttributeValue;
	hiding.C_GetAttributeValue = hide_extractable;
	shown = priv;
	f->s->fl = &hiding;
	assert_int_equal(hsm_key_session_copy(f->s, priv, &copy), IMP_ERR_UNSUPPORTED);
	f->s->fl = fl;
	assert_int_equal(copy, HSM_OBJ_NONE);
	/* the copy was destroyed */
	assert_int_equal(hsm_list(f->s, HSM_CLASS_ANY, &all, &n), IMP_OK);
	assert_int_equal(n, 2);
	free(all);
}

/* The hierarchy's per-board keys: copied where allowed, kept where not,
 * and the copies destroyed at release. */
static void test_org_session_keys(void **state)
{
	struct fx *f = *state;
	struct hsm_org org = { 0 };
	hsm_obj ca_pub, ca, rec_pub, rec, code_pub, code, copy;
	struct hsm_obj_info info;
	EVP_PKEY *ca_pk = NULL, *rec_pk = NULL;

	token_pair(f, "t-device-ca", false, &ca_pub, &ca);
	token_pair(f, "t-record", true, &rec_pub, &rec);
	token_pair(f, "t-code", true, &code_pub, &code);
	org.key[HSM_ORG_DEVICE_CA] = ca;
	org.key[HSM_ORG_RECORD] = rec;
	org.key[HSM_ORG_CODE] = code;
	org.psk_master = HSM_OBJ_NONE;

	assert_int_equal(hsm_org_session_keys(f->s, &org), IMP_OK);
	assert_int_equal(org.key[HSM_ORG_DEVICE_CA], ca); /* refused: the token key */
	assert_int_equal(org.token_key[HSM_ORG_DEVICE_CA], HSM_OBJ_NONE);
	assert_int_not_equal(org.key[HSM_ORG_RECORD], rec);
	assert_int_equal(org.token_key[HSM_ORG_RECORD], rec);
	assert_int_equal(org.key[HSM_ORG_CODE], code); /* not a per-board key */
	copy = org.key[HSM_ORG_RECORD];
	assert_int_equal(hsm_object_info(f->s, copy, &info), IMP_OK);
	assert_false(info.token);
	assert_true(info.sensitive);
	assert_false(info.extractable);
	/* twice is once */
	assert_int_equal(hsm_org_session_keys(f->s, &org), IMP_OK);
	assert_int_equal(org.key[HSM_ORG_RECORD], copy);

	assert_int_equal(hsm_ec_pkey(f->s, ca_pub, &ca_pk), IMP_OK);
	assert_int_equal(hsm_ec_pkey(f->s, rec_pub, &rec_pk), IMP_OK);
	signs_as(f->s, org.key[HSM_ORG_DEVICE_CA], ca_pk);
	signs_as(f->s, org.key[HSM_ORG_RECORD], rec_pk);

	hsm_org_release(&org);
	hsm_p11_quiet(true);
	assert_int_not_equal(hsm_object_info(f->s, copy, &info), IMP_OK);
	hsm_p11_quiet(false);
	assert_int_equal(hsm_object_info(f->s, rec, &info), IMP_OK);
	assert_true(info.token);
	EVP_PKEY_free(ca_pk);
	EVP_PKEY_free(rec_pk);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_copy_is_guarded, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_copy_refused, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_copy_flag_unreadable, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_org_session_keys, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
