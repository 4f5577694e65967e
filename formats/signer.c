#include <string.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "formats/ecdsa_der.h"
#include "formats/signer.h"
#include "imprint/log.h"

static imp_err pkey_sign_digest(void *arg, const uint8_t digest[32], uint8_t raw_sig[64])
{
	EVP_PKEY *key = arg;
	EVP_PKEY_CTX *ctx = NULL;
	uint8_t der[FMT_ECDSA_DER_MAX];
	size_t der_len = sizeof(der);
	imp_err rc = IMP_ERR_CRYPTO;

	ctx = EVP_PKEY_CTX_new(key, NULL);
	if (!ctx)
		goto cleanup;
	if (EVP_PKEY_sign_init(ctx) != 1)
		goto cleanup;
	if (EVP_PKEY_sign(ctx, der, &der_len, digest, 32) != 1)
		goto cleanup;
	rc = fmt_ecdsa_der_to_raw(der, der_len, raw_sig);
	if (rc != IMP_OK)
		rc = IMP_ERR_CRYPTO;
cleanup:
	EVP_PKEY_CTX_free(ctx);
	return rc;
}

void fmt_signer_from_pkey(struct fmt_signer *s, EVP_PKEY *key)
{
	s->sign_digest = pkey_sign_digest;
	s->arg = key;
	s->pub = key;
}

imp_err fmt_signer_sign(const struct fmt_signer *s, const void *data, size_t n,
			uint8_t raw_sig[64])
{
	uint8_t digest[32];

	if (!s || !s->sign_digest)
		return IMP_ERR_INTERNAL;
	if (!SHA256(data, n, digest))
		return IMP_ERR_CRYPTO;
	return s->sign_digest(s->arg, digest, raw_sig);
}

imp_err fmt_verify_raw(EVP_PKEY *pub, const void *data, size_t n, const uint8_t raw_sig[64])
{
	uint8_t digest[32];
	uint8_t der[FMT_ECDSA_DER_MAX];
	size_t der_len;
	EVP_PKEY_CTX *ctx = NULL;
	imp_err rc;
	int v;

	if (!SHA256(data, n, digest))
		return IMP_ERR_CRYPTO;
	rc = fmt_ecdsa_raw_to_der(raw_sig, der, sizeof(der), &der_len);
	if (rc != IMP_OK)
		return IMP_ERR_VERIFY;
	rc = IMP_ERR_CRYPTO;
	ctx = EVP_PKEY_CTX_new(pub, NULL);
	if (!ctx)
		goto cleanup;
	if (EVP_PKEY_verify_init(ctx) != 1)
		goto cleanup;
	v = EVP_PKEY_verify(ctx, der, der_len, digest, 32);
	rc = v == 1 ? IMP_OK : IMP_ERR_VERIFY;
cleanup:
	EVP_PKEY_CTX_free(ctx);
	return rc;
}

imp_err fmt_p256_generate(EVP_PKEY **out)
{
	*out = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (!*out) {
		IMP_ERROR("cannot generate a P-256 key");
		return IMP_ERR_CRYPTO;
	}
	return IMP_OK;
}
