/*
 * Sealing under a token key (hsm/hsm.h "sealing"), on a real SoftHSM2
 * token: the key is a sensitive, never extractable token secret key made
 * once and found again; what is sealed opens only with the same AAD and
 * unchanged bytes; two seals of one value differ (fresh IVs).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hsm/hsm.h"
#include "hsm_fixture.h"
#include "imprint/log.h"
#include "imprint/util.h"

static void test_seal_key(void **state)
{
	struct fx *f = *state;
	struct hsm_obj_info info;
	hsm_obj k = HSM_OBJ_NONE, k2 = HSM_OBJ_NONE;

	assert_int_equal(hsm_seal_key(f->s, "test-seal", false, &k), IMP_ERR_NOT_FOUND);
	assert_int_equal(hsm_seal_key(f->s, "test-seal", true, &k), IMP_OK);
	assert_int_equal(hsm_seal_key(f->s, "test-seal", false, &k2), IMP_OK);
	assert_int_equal(k, k2);
	assert_int_equal(hsm_object_info(f->s, k, &info), IMP_OK);
	assert_int_equal(info.cls, HSM_CLASS_SECRET_KEY);
	assert_true(info.token);
	assert_true(info.sensitive);
	assert_false(info.extractable);
	assert_true(info.encrypt);
	assert_true(info.decrypt);
	assert_false(info.wrap);
	assert_false(info.sign);
}

static void test_seal_unseal(void **state)
{
	static const uint8_t aad[] = "imprint-matter-passcode-v1|00ff|TST000001";
	static const uint8_t other[] = "imprint-matter-passcode-v1|00ff|TST000002";
	struct fx *f = *state;
	uint8_t secret[4] = { 0x25, 0x42, 0x34, 0x01 }, a[4 + HSM_SEAL_OVERHEAD],
		b[4 + HSM_SEAL_OVERHEAD], out[4];
	hsm_obj k = HSM_OBJ_NONE;

	assert_int_equal(hsm_seal_key(f->s, "test-seal", true, &k), IMP_OK);
	assert_int_equal(hsm_seal(f->s, k, aad, sizeof(aad) - 1, secret, 4, a), IMP_OK);
	assert_int_equal(hsm_seal(f->s, k, aad, sizeof(aad) - 1, secret, 4, b), IMP_OK);
	assert_memory_not_equal(a, b, sizeof(a)); /* fresh IV each time */
	assert_memory_not_equal(a + HSM_GCM_IV_LEN, secret, 4); /* not in clear */
	memset(out, 0, sizeof(out));
	assert_int_equal(hsm_unseal(f->s, k, aad, sizeof(aad) - 1, a, sizeof(a), out), IMP_OK);
	assert_memory_equal(out, secret, 4);
	assert_int_equal(hsm_unseal(f->s, k, aad, sizeof(aad) - 1, b, sizeof(b), out), IMP_OK);
	assert_memory_equal(out, secret, 4);
	/* must fail: another AAD, a changed IV, ciphertext or tag, a short input */
	assert_int_equal(hsm_unseal(f->s, k, other, sizeof(other) - 1, a, sizeof(a), out),
			 IMP_ERR_VERIFY);
	for (size_t i = 0; i < sizeof(a); i += 5) {
		memcpy(b, a, sizeof(a));
		b[i] ^= 0x01;
		assert_int_equal(hsm_unseal(f->s, k, aad, sizeof(aad) - 1, b, sizeof(b), out),
				 IMP_ERR_VERIFY);
	}
	assert_int_equal(hsm_unseal(f->s, k, aad, sizeof(aad) - 1, a, HSM_SEAL_OVERHEAD - 1, out),
			 IMP_ERR_VERIFY);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_seal_key, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_seal_unseal, fx_setup, fx_teardown),
	};

	imp_log_set_level(IMP_LOG_QUIET);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
