/*
 * The one way imprint signs: a callback that signs a SHA-256 digest and
 * returns raw ECDSA P-256 r||s. Keys held in the HSM are reached through it
 * (hsm/ fills one in); formats/ never talks PKCS#11.
 */
#ifndef FORMATS_SIGNER_H
#define FORMATS_SIGNER_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "imprint/err.h"

struct fmt_signer {
	/*
	 * Sign a SHA-256 digest; write raw r||s (64 bytes, big-endian, each
	 * half left-padded). Returns IMP_OK or the implementation's error
	 * (IMP_ERR_HSM, IMP_ERR_CRYPTO, ...), which callers pass on unchanged.
	 */
	imp_err (*sign_digest)(void *arg, const uint8_t digest[32], uint8_t raw_sig[64]);
	void *arg;
	EVP_PKEY *pub; /* the signer's public key (borrowed, EC P-256) */
};

/*
 * Fill *s with an in-memory signer over an OpenSSL EC P-256 private key
 * (tests, throwaway keys, device keys in the simulator). key is borrowed:
 * it must outlive *s. s->pub is key itself.
 */
void fmt_signer_from_pkey(struct fmt_signer *s, EVP_PKEY *key);

/* SHA-256 the data and sign the digest with s; raw r||s into raw_sig. */
imp_err fmt_signer_sign(const struct fmt_signer *s, const void *data, size_t n,
			uint8_t raw_sig[64]);

/*
 * Verify a raw r||s ECDSA P-256 signature over SHA-256(data) with pub.
 * IMP_OK if valid, IMP_ERR_VERIFY if not, IMP_ERR_CRYPTO if pub is unusable.
 */
imp_err fmt_verify_raw(EVP_PKEY *pub, const void *data, size_t n,
		       const uint8_t raw_sig[64]);

/* Generate a fresh EC P-256 key pair. *out is new; EVP_PKEY_free it. */
imp_err fmt_p256_generate(EVP_PKEY **out);

#endif
