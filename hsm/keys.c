/*
 * Key generation, ECDSA signing, ECDH and PSK derivation, CMAC, wrapping,
 * GCM and random numbers.
 *
 * What SoftHSM2 2.6.1 offers (C_GetMechanismList / C_GetMechanismInfo on a
 * fresh token, Debian 12):
 *   - CKM_ECDSA (sign/verify) but no CKM_ECDSA_SHA256: we hash on the host.
 *   - CKM_EC_KEY_PAIR_GEN, P-256 (and 112..521 bits).
 *   - CKM_ECDH1_DERIVE, derive; only the CKD_NULL KDF is accepted, so the
 *     derived key is the raw shared X coordinate.
 *   - CKM_AES_KEY_GEN (16 and 32 byte keys), CKM_AES_ECB/CBC/CBC_PAD/CTR.
 *   - CKM_AES_KEY_WRAP and CKM_AES_KEY_WRAP_PAD (0x210a, printed as
 *     "mechtype-0x210A" by pkcs11-tool), wrap and unwrap. For _PAD SoftHSM
 *     zero-pads the key bytes to a multiple of 8 before the RFC 5649 wrap,
 *     so the length in the RFC 5649 header is the padded one.
 *   - CKM_AES_GCM: encrypt/decrypt ONLY (no CKF_WRAP): GCM key wrapping is
 *     reported as IMP_ERR_UNSUPPORTED; GCM encryption works.
 *   - CKM_AES_ECB_ENCRYPT_DATA and CKM_AES_CBC_ENCRYPT_DATA, derive.
 *   - CKM_AES_CMAC, sign/verify (no CKM_AES_CMAC_GENERAL).
 *   - A private EC key is wrapped as PKCS#8 PrivateKeyInfo DER.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include <openssl/sha.h>

#include "formats/ecdsa_der.h"
#include "hsm_int.h"
#include "imprint/log.h"
#include "imprint/util.h"

/* DER OID of prime256v1 / secp256r1, the CKA_EC_PARAMS of every EC key. */
static const uint8_t p256_params[] = {
	0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
};

static CK_BBOOL ck_true = CK_TRUE, ck_false = CK_FALSE;

static void tmpl_check(struct hsm_tmpl *t)
{
	if (t->n >= HSM_TMPL_MAX)
		abort(); /* a template in this file is larger than HSM_TMPL_MAX */
}

void hsm_tmpl_bool(struct hsm_tmpl *t, CK_ATTRIBUTE_TYPE type, int v)
{
	tmpl_check(t);
	t->a[t->n].type = type;
	t->a[t->n].pValue = v ? &ck_true : &ck_false;
	t->a[t->n].ulValueLen = sizeof(CK_BBOOL);
	t->n++;
}

void hsm_tmpl_ulong(struct hsm_tmpl *t, CK_ATTRIBUTE_TYPE type, CK_ULONG v)
{
	tmpl_check(t);
	t->ul[t->n] = v;
	t->a[t->n].type = type;
	t->a[t->n].pValue = &t->ul[t->n];
	t->a[t->n].ulValueLen = sizeof(CK_ULONG);
	t->n++;
}

void hsm_tmpl_bytes(struct hsm_tmpl *t, CK_ATTRIBUTE_TYPE type, const void *p, size_t n)
{
	if (!p)
		return;
	tmpl_check(t);
	t->a[t->n].type = type;
	t->a[t->n].pValue = (void *)p;
	t->a[t->n].ulValueLen = (CK_ULONG)n;
	t->n++;
}

static void tmpl_names(struct hsm_tmpl *t, const struct hsm_key_opts *o)
{
	if (o->label)
		hsm_tmpl_bytes(t, CKA_LABEL, o->label, strlen(o->label));
	if (o->id && o->id_len)
		hsm_tmpl_bytes(t, CKA_ID, o->id, o->id_len);
}

/* Every usage attribute stated, true or false: SoftHSM and NSS default
 * most of them to true on secret keys, and a PSK master that could also
 * CKA_ENCRYPT would hand out diversified PSKs in clear. */
static void tmpl_secret_key(struct hsm_tmpl *t, unsigned flags)
{
	hsm_tmpl_ulong(t, CKA_CLASS, CKO_SECRET_KEY);
	hsm_tmpl_ulong(t, CKA_KEY_TYPE, CKK_AES);
	hsm_tmpl_ulong(t, CKA_VALUE_LEN, HSM_AES256_LEN);
	hsm_tmpl_bool(t, CKA_TOKEN, flags & HSM_KEY_TOKEN);
	hsm_tmpl_bool(t, CKA_PRIVATE, 1);
	hsm_tmpl_bool(t, CKA_SENSITIVE, 1);
	hsm_tmpl_bool(t, CKA_EXTRACTABLE, flags & HSM_KEY_WRAPPABLE);
	hsm_tmpl_bool(t, CKA_SIGN, flags & HSM_KEY_SIGN);
	hsm_tmpl_bool(t, CKA_VERIFY, flags & HSM_KEY_SIGN);
	hsm_tmpl_bool(t, CKA_DERIVE, flags & HSM_KEY_DERIVE);
	hsm_tmpl_bool(t, CKA_WRAP, flags & HSM_KEY_WRAP);
	hsm_tmpl_bool(t, CKA_UNWRAP, flags & HSM_KEY_WRAP);
	hsm_tmpl_bool(t, CKA_ENCRYPT, flags & HSM_KEY_ENCRYPT);
	hsm_tmpl_bool(t, CKA_DECRYPT, flags & HSM_KEY_ENCRYPT);
}

imp_err hsm_ec_keygen(struct hsm_session *s, const struct hsm_key_opts *o, hsm_obj *pub,
		      hsm_obj *priv)
{
	CK_MECHANISM m = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
	struct hsm_tmpl pt = { .n = 0 }, kt = { .n = 0 };
	CK_OBJECT_HANDLE hp, hk;
	unsigned flags = o->flags;
	imp_err rc;

	if (!(flags & (HSM_KEY_SIGN | HSM_KEY_DERIVE)))
		flags |= HSM_KEY_SIGN;
	/*
	 * Only what imprint needs (docs/HSM.md, "Key templates"). No CKA_VERIFY
	 * on the public half: the station verifies with OpenSSL, and
	 * tpm2-pkcs11 1.9 maps CKA_VERIFY onto the TPM object's decrypt bit,
	 * finds it contradicts CKA_DECRYPT=false on the private half and fails
	 * the pair with CKR_GENERAL_ERROR ("attr mismatch: 0x10a"). Usage bits
	 * of the private half are all stated, because SoftHSM defaults
	 * CKA_SIGN, CKA_DECRYPT and CKA_UNWRAP to true and NSS CKA_DERIVE;
	 * tpm2-pkcs11 accepts them once CKA_VERIFY is gone (tested).
	 */
	hsm_tmpl_ulong(&pt, CKA_CLASS, CKO_PUBLIC_KEY);
	hsm_tmpl_ulong(&pt, CKA_KEY_TYPE, CKK_EC);
	hsm_tmpl_bool(&pt, CKA_TOKEN, flags & HSM_KEY_TOKEN);
	hsm_tmpl_bool(&pt, CKA_PRIVATE, 0);
	hsm_tmpl_bytes(&pt, CKA_EC_PARAMS, p256_params, sizeof(p256_params));
	tmpl_names(&pt, o);

	hsm_tmpl_ulong(&kt, CKA_CLASS, CKO_PRIVATE_KEY);
	hsm_tmpl_ulong(&kt, CKA_KEY_TYPE, CKK_EC);
	hsm_tmpl_bool(&kt, CKA_TOKEN, flags & HSM_KEY_TOKEN);
	hsm_tmpl_bool(&kt, CKA_PRIVATE, 1);
	hsm_tmpl_bool(&kt, CKA_SENSITIVE, 1);
	hsm_tmpl_bool(&kt, CKA_EXTRACTABLE, flags & HSM_KEY_WRAPPABLE);
	hsm_tmpl_bool(&kt, CKA_SIGN, flags & HSM_KEY_SIGN);
	hsm_tmpl_bool(&kt, CKA_DERIVE, flags & HSM_KEY_DERIVE);
	hsm_tmpl_bool(&kt, CKA_DECRYPT, 0);
	hsm_tmpl_bool(&kt, CKA_UNWRAP, 0);
	tmpl_names(&kt, o);

	rc = P11M(m.mechanism, s->fl, C_GenerateKeyPair, s->sh, &m, pt.a, pt.n, kt.a, kt.n, &hp, &hk);
	if (rc != IMP_OK)
		return rc;
	*pub = hp;
	*priv = hk;
	return IMP_OK;
}

imp_err hsm_aes_keygen(struct hsm_session *s, const struct hsm_key_opts *o, hsm_obj *key)
{
	CK_MECHANISM m = { CKM_AES_KEY_GEN, NULL, 0 };
	struct hsm_tmpl t = { .n = 0 };
	CK_OBJECT_HANDLE h;
	imp_err rc;

	tmpl_secret_key(&t, o->flags);
	tmpl_names(&t, o);
	rc = P11M(m.mechanism, s->fl, C_GenerateKey, s->sh, &m, t.a, t.n, &h);
	if (rc == IMP_OK)
		*key = h;
	return rc;
}

/* Accept the raw point or a DER OCTET STRING around it (what SoftHSM gives). */
static imp_err point_parse(const uint8_t *v, CK_ULONG n, uint8_t point[HSM_EC_POINT_LEN])
{
	if (n == HSM_EC_POINT_LEN + 2 && v[0] == 0x04 && v[1] == HSM_EC_POINT_LEN)
		v += 2;
	else if (n != HSM_EC_POINT_LEN)
		goto bad;
	if (v[0] != 0x04)
		goto bad;
	memcpy(point, v, HSM_EC_POINT_LEN);
	return IMP_OK;
bad:
	IMP_ERROR("the token returned an EC point that is not an uncompressed P-256 point");
	return IMP_ERR_UNSUPPORTED;
}

imp_err hsm_ec_point(struct hsm_session *s, hsm_obj key, uint8_t point[HSM_EC_POINT_LEN])
{
	CK_OBJECT_CLASS cls;
	uint8_t id[HSM_ID_MAX], buf[HSM_EC_POINT_LEN + 8];
	CK_ATTRIBUTE a[2] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_ID, id, sizeof(id) },
	};
	CK_ATTRIBUTE pa = { CKA_EC_POINT, buf, sizeof(buf) };
	CK_OBJECT_HANDLE pub = key;
	imp_err rc;

	rc = P11(s->fl, C_GetAttributeValue, s->sh, key, a, 2);
	if (rc != IMP_OK)
		return rc;
	if (cls == CKO_PRIVATE_KEY) {
		if (a[1].ulValueLen == 0 || a[1].ulValueLen == CK_UNAVAILABLE_INFORMATION) {
			IMP_ERROR("private key has no CKA_ID: cannot find its public key");
			return IMP_ERR_NOT_FOUND;
		}
		rc = hsm_find(s, HSM_CLASS_PUBLIC_KEY, NULL, id, a[1].ulValueLen, &pub);
		if (rc != IMP_OK)
			return rc;
	} else if (cls != CKO_PUBLIC_KEY) {
		IMP_ERROR("object is not an EC key");
		return IMP_ERR_USAGE;
	}
	rc = P11(s->fl, C_GetAttributeValue, s->sh, pub, &pa, 1);
	if (rc != IMP_OK)
		return rc;
	return point_parse(buf, pa.ulValueLen, point);
}

imp_err hsm_ec_pkey(struct hsm_session *s, hsm_obj key, EVP_PKEY **out)
{
	uint8_t point[HSM_EC_POINT_LEN];
	OSSL_PARAM params[3];
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pk = NULL;
	imp_err rc;

	*out = NULL;
	rc = hsm_ec_point(s, key, point);
	if (rc != IMP_OK)
		return rc;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
						     (char *)"prime256v1", 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point,
						      sizeof(point));
	params[2] = OSSL_PARAM_construct_end();
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	if (!ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
		IMP_ERROR("cannot make an openssl key of the token's public key");
		rc = IMP_ERR_CRYPTO;
		goto cleanup;
	}
	*out = pk;
cleanup:
	EVP_PKEY_CTX_free(ctx);
	return rc;
}

imp_err hsm_sign_digest(struct hsm_session *s, hsm_obj priv, const uint8_t digest[32],
			uint8_t raw[HSM_ECDSA_RAW_LEN])
{
	CK_MECHANISM m = { CKM_ECDSA, NULL, 0 };
	CK_ULONG len = HSM_ECDSA_RAW_LEN;
	bool one = s->h && hsm_p11_one_at_a_time(s->fl);
	imp_err rc;

	if (one)
		pthread_mutex_lock(&s->h->sign_lock);
	rc = P11M(m.mechanism, s->fl, C_SignInit, s->sh, &m, priv);
	if (rc == IMP_OK)
		rc = P11(s->fl, C_Sign, s->sh, (CK_BYTE *)digest, 32, raw, &len);
	if (one)
		pthread_mutex_unlock(&s->h->sign_lock);
	if (rc != IMP_OK)
		return rc;
	if (len != HSM_ECDSA_RAW_LEN) {
		IMP_ERROR("the token returned a %lu-byte ECDSA signature, not a P-256 one",
			  (unsigned long)len);
		return IMP_ERR_HSM;
	}
	return IMP_OK;
}

imp_err hsm_sign_sha256(struct hsm_session *s, hsm_obj priv, const void *data, size_t n,
			uint8_t raw[HSM_ECDSA_RAW_LEN])
{
	uint8_t md[SHA256_DIGEST_LENGTH];

	if (!SHA256(data, n, md))
		return IMP_ERR_CRYPTO;
	return hsm_sign_digest(s, priv, md, raw);
}

imp_err hsm_sign_sha256_der(struct hsm_session *s, hsm_obj priv, const void *data, size_t n,
			    uint8_t *der, size_t cap, size_t *der_len)
{
	uint8_t raw[HSM_ECDSA_RAW_LEN];
	imp_err rc;

	rc = hsm_sign_sha256(s, priv, data, n, raw);
	if (rc != IMP_OK)
		return rc;
	return fmt_ecdsa_raw_to_der(raw, der, cap, der_len);
}

imp_err hsm_ecdh_derive_aes(struct hsm_session *s, hsm_obj priv,
			    const uint8_t peer[HSM_EC_POINT_LEN], unsigned flags, hsm_obj *aes)
{
	CK_ECDH1_DERIVE_PARAMS p = {
		.kdf = CKD_NULL,
		.ulPublicDataLen = HSM_EC_POINT_LEN,
		.pPublicData = (CK_BYTE *)peer,
	};
	CK_MECHANISM m = { CKM_ECDH1_DERIVE, &p, sizeof(p) };
	struct hsm_tmpl t = { .n = 0 };
	CK_OBJECT_HANDLE h;
	imp_err rc;

	if (peer[0] != 0x04) {
		IMP_ERROR("peer public key is not an uncompressed point");
		return IMP_ERR_PROTOCOL;
	}
	tmpl_secret_key(&t, (flags & HSM_KEY_WRAPPABLE) | HSM_KEY_WRAP | HSM_KEY_ENCRYPT);
	rc = P11M(m.mechanism, s->fl, C_DeriveKey, s->sh, &m, priv, t.a, t.n, &h);
	if (rc == IMP_OK)
		*aes = h;
	return rc;
}

imp_err hsm_psk_derive(struct hsm_session *s, hsm_obj master,
		       const uint8_t diversifier[HSM_PSK_DIVERSIFIER_LEN], unsigned flags,
		       hsm_obj *psk)
{
	CK_KEY_DERIVATION_STRING_DATA d = {
		.pData = (CK_BYTE *)diversifier,
		.ulLen = HSM_PSK_DIVERSIFIER_LEN,
	};
	CK_MECHANISM m = { CKM_AES_ECB_ENCRYPT_DATA, &d, sizeof(d) };
	struct hsm_tmpl t = { .n = 0 };
	CK_OBJECT_HANDLE h;
	imp_err rc;

	flags &= HSM_KEY_WRAPPABLE | HSM_KEY_WRAP | HSM_KEY_ENCRYPT;
	tmpl_secret_key(&t, flags | HSM_KEY_SIGN);
	rc = P11M(m.mechanism, s->fl, C_DeriveKey, s->sh, &m, master, t.a, t.n, &h);
	if (rc == IMP_OK)
		*psk = h;
	return rc;
}

imp_err hsm_cmac(struct hsm_session *s, hsm_obj key, const void *data, size_t n,
		 uint8_t mac[HSM_CMAC_LEN])
{
	CK_MECHANISM m = { CKM_AES_CMAC, NULL, 0 };
	CK_ULONG len = HSM_CMAC_LEN;
	imp_err rc;

	rc = P11M(m.mechanism, s->fl, C_SignInit, s->sh, &m, key);
	if (rc != IMP_OK)
		return rc;
	rc = P11(s->fl, C_Sign, s->sh, (CK_BYTE *)data, (CK_ULONG)n, mac, &len);
	if (rc != IMP_OK)
		return rc;
	if (len != HSM_CMAC_LEN) {
		IMP_ERROR("the token returned a %lu-byte cmac", (unsigned long)len);
		return IMP_ERR_HSM;
	}
	return IMP_OK;
}

imp_err hsm_wrap(struct hsm_session *s, enum hsm_wrap_mech mech, hsm_obj kek, hsm_obj key,
		 const uint8_t *iv, const uint8_t *aad, size_t aad_len, uint8_t *out,
		 size_t *out_len)
{
	CK_GCM_PARAMS gcm = { 0 };
	CK_MECHANISM m = { CKM_AES_KEY_WRAP_PAD, NULL, 0 };
	CK_ULONG len = out ? (CK_ULONG)*out_len : 0;
	imp_err rc;

	switch (mech) {
	case HSM_WRAP_AES_KWP:
		m.mechanism = hsm_kwp_mechanism(s->h);
		break;
	case HSM_WRAP_AES_GCM:
		if (!hsm_has_mechanism(s->h, CKM_AES_GCM, CKF_WRAP)) {
			IMP_ERROR("token \"%s\" cannot wrap with AES-GCM (CKM_AES_GCM without "
				  "CKF_WRAP): use AES key wrap with padding", s->h->token_label);
			return IMP_ERR_UNSUPPORTED;
		}
		if (!iv) {
			IMP_ERROR("AES-GCM wrap needs an IV");
			return IMP_ERR_USAGE;
		}
		hsm_gcm_mechanism(&m, &gcm, iv, aad, aad_len);
		break;
	default:
		return IMP_ERR_USAGE;
	}
	rc = P11M(m.mechanism, s->fl, C_WrapKey, s->sh, &m, kek, key, out, &len);
	if (rc == IMP_OK)
		*out_len = len;
	return rc;
}

CK_MECHANISM_TYPE hsm_kwp_mechanism(const struct hsm *h)
{
	if (hsm_has_mechanism(h, CKM_AES_KEY_WRAP_KWP, CKF_WRAP))
		return CKM_AES_KEY_WRAP_KWP;
	return CKM_AES_KEY_WRAP_PAD;
}

void hsm_gcm_mechanism(CK_MECHANISM *m, CK_GCM_PARAMS *gcm, const uint8_t *iv,
		       const uint8_t *aad, size_t aad_len)
{
	*gcm = (CK_GCM_PARAMS){
		.pIv = (CK_BYTE *)iv,
		.ulIvLen = HSM_GCM_IV_LEN,
		.ulIvBits = HSM_GCM_IV_LEN * 8,
		.pAAD = (CK_BYTE *)aad,
		.ulAADLen = aad ? (CK_ULONG)aad_len : 0,
		.ulTagBits = HSM_GCM_TAG_LEN * 8,
	};
	*m = (CK_MECHANISM){ CKM_AES_GCM, gcm, sizeof(*gcm) };
}

imp_err hsm_gcm_encrypt(struct hsm_session *s, hsm_obj key, const uint8_t iv[HSM_GCM_IV_LEN],
			const uint8_t *aad, size_t aad_len, const void *in, size_t n,
			uint8_t *out)
{
	CK_GCM_PARAMS gcm;
	CK_MECHANISM m;
	CK_ULONG len = (CK_ULONG)(n + HSM_GCM_TAG_LEN);
	imp_err rc;

	hsm_gcm_mechanism(&m, &gcm, iv, aad, aad_len);
	if (!hsm_has_mechanism(s->h, CKM_AES_GCM, CKF_ENCRYPT)) {
		IMP_ERROR("token \"%s\" offers no AES-GCM encryption", s->h->token_label);
		return IMP_ERR_UNSUPPORTED;
	}
	rc = P11M(m.mechanism, s->fl, C_EncryptInit, s->sh, &m, key);
	if (rc != IMP_OK)
		return rc;
	rc = P11(s->fl, C_Encrypt, s->sh, (CK_BYTE *)in, (CK_ULONG)n, out, &len);
	if (rc != IMP_OK)
		return rc;
	if (len != n + HSM_GCM_TAG_LEN) {
		IMP_ERROR("the token returned %lu bytes of AES-GCM output for %zu bytes of input",
			  (unsigned long)len, n);
		return IMP_ERR_HSM;
	}
	return IMP_OK;
}

imp_err hsm_random(struct hsm_session *s, void *buf, size_t n)
{
	return P11(s->fl, C_GenerateRandom, s->sh, buf, (CK_ULONG)n);
}
