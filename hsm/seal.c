/*
 * Sealing small secrets under a token key (hsm/hsm.h "sealing"): AES-256-GCM
 * in the HSM, a fresh 12-byte IV from the token's RNG per seal, the
 * caller's binding as AAD. The key never leaves the token.
 */
#include <string.h>

#include "hsm_int.h"
#include "imprint/log.h"
#include "imprint/util.h"

imp_err hsm_gcm_decrypt(struct hsm_session *s, hsm_obj key, const uint8_t iv[HSM_GCM_IV_LEN],
			const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t n,
			uint8_t *out)
{
	CK_GCM_PARAMS gcm;
	CK_MECHANISM m;
	uint8_t buf[HSM_SEAL_MAX + HSM_GCM_TAG_LEN];
	CK_ULONG len = sizeof(buf);
	CK_RV rv;
	imp_err rc;

	hsm_gcm_mechanism(&m, &gcm, iv, aad, aad_len);
	/* SoftHSM 2.6.1 wants room for the whole input (ciphertext and tag)
	 * before it returns the plaintext: decrypt into a buffer that size. */
	if (n < HSM_GCM_TAG_LEN)
		return IMP_ERR_VERIFY;
	if (n > sizeof(buf))
		return IMP_ERR_USAGE;
	if (!hsm_has_mechanism(s->h, CKM_AES_GCM, CKF_DECRYPT)) {
		IMP_ERROR("token \"%s\" offers no AES-GCM decryption", s->h->token_label);
		return IMP_ERR_UNSUPPORTED;
	}
	rc = P11M(m.mechanism, s->fl, C_DecryptInit, s->sh, &m, key);
	if (rc != IMP_OK)
		return rc;
	rv = P11_CALL(s->fl, C_Decrypt, s->sh, (CK_BYTE *)in, (CK_ULONG)n, buf, &len);
	/* A tag that does not verify: CKR_ENCRYPTED_DATA_INVALID by the
	 * standard, CKR_GENERAL_ERROR from SoftHSM 2.6.1 (docs/HSM.md). */
	if (rv == CKR_ENCRYPTED_DATA_INVALID || rv == CKR_GENERAL_ERROR) {
		IMP_ERROR("the sealed data does not verify under the sealing key (C_Decrypt: %s): "
			  "it was changed, or sealed for another board or by another token",
			  rv == CKR_GENERAL_ERROR ? "CKR_GENERAL_ERROR" : "CKR_ENCRYPTED_DATA_INVALID");
		imp_wipe(buf, sizeof(buf));
		return IMP_ERR_VERIFY;
	}
	rc = hsm_p11_result("C_Decrypt", rv, CKR_OK);
	if (rc == IMP_OK && len == n - HSM_GCM_TAG_LEN)
		memcpy(out, buf, len);
	imp_wipe(buf, sizeof(buf));
	if (rc != IMP_OK)
		return rc;
	if (len != n - HSM_GCM_TAG_LEN) {
		IMP_ERROR("the token returned %lu bytes of AES-GCM plaintext for %zu bytes",
			  (unsigned long)len, n);
		return IMP_ERR_HSM;
	}
	return IMP_OK;
}

imp_err hsm_seal_key(struct hsm_session *s, const char *label, bool create, hsm_obj *out)
{
	struct hsm_key_opts o = { HSM_KEY_TOKEN | HSM_KEY_ENCRYPT, label, NULL, 0 };
	imp_err rc;

	rc = hsm_find(s, HSM_CLASS_SECRET_KEY, label, NULL, 0, out);
	if (rc != IMP_ERR_NOT_FOUND || !create)
		return rc;
	rc = hsm_aes_keygen(s, &o, out);
	if (rc == IMP_OK)
		IMP_INFO("created the sealing key \"%s\" in the hsm", label);
	return rc;
}

imp_err hsm_seal(struct hsm_session *s, hsm_obj key, const uint8_t *aad, size_t aad_len,
		 const void *in, size_t n, uint8_t *out)
{
	imp_err rc = hsm_random(s, out, HSM_GCM_IV_LEN);

	if (rc == IMP_OK)
		rc = hsm_gcm_encrypt(s, key, out, aad, aad_len, in, n, out + HSM_GCM_IV_LEN);
	return rc;
}

imp_err hsm_unseal(struct hsm_session *s, hsm_obj key, const uint8_t *aad, size_t aad_len,
		   const uint8_t *in, size_t n, uint8_t *out)
{
	if (n < HSM_SEAL_OVERHEAD)
		return IMP_ERR_VERIFY;
	return hsm_gcm_decrypt(s, key, in, aad, aad_len, in + HSM_GCM_IV_LEN,
			       n - HSM_GCM_IV_LEN, out);
}
