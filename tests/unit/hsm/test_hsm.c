/*
 * hsm/ against a real SoftHSM2: every test gets a fresh token directory and
 * softhsm2.conf under /tmp, created through the embedded-default functions.
 * Host-side checks use OpenSSL (verify, ECDH, key unwrap, CMAC, ECB).
 */
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "formats/ecdsa_der.h"
#include "hsm/anchor.h"
#include "hsm/hsm.h"
#include "hsm_fixture.h"
#include "hsm/hsm_raw.h"
#include "hsm_int.h"
#include "imprint/log.h"
#include "imprint/util.h"

/* The user PIN from the embedded pins file (test-side parser). */
static void user_pin(struct fx *f, char pin[128])
{
	char path[256];
	uint8_t *buf;
	size_t n;
	char *p, *e;

	snprintf(path, sizeof(path), "%s/hsm/pins", f->dir);
	assert_int_equal(imp_read_file(path, &buf, &n), IMP_OK);
	p = strstr((char *)buf, "user=");
	assert_non_null(p);
	p += 5;
	e = strchr(p, '\n');
	assert_non_null(e);
	*e = '\0';
	assert_int_equal(strlen(p), 64);
	strcpy(pin, p);
	imp_wipe(buf, n);
	free(buf);
}

/* Run fn with stderr captured into buf. */
static imp_err capture_stderr(char *buf, size_t cap, imp_err (*fn)(void *), void *arg)
{
	char path[] = "/tmp/imp-hsm-err-XXXXXX";
	int fd = mkstemp(path), saved;
	ssize_t n;
	imp_err rc;

	assert_true(fd >= 0);
	fflush(stderr);
	saved = dup(2);
	dup2(fd, 2);
	rc = fn(arg);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	lseek(fd, 0, SEEK_SET);
	n = read(fd, buf, cap - 1);
	buf[n > 0 ? n : 0] = '\0';
	close(fd);
	unlink(path);
	return rc;
}

static imp_err open_with_env(void *arg)
{
	struct hsm_pin_source src = { .kind = HSM_PIN_ENV, .name = "IMP_TEST_PIN" };
	struct hsm *h = NULL;
	imp_err rc;

	(void)arg;
	rc = hsm_open(HSM_EMBEDDED_MODULE_PATH, "pkcs11:token=imprint", &src, &h);
	hsm_close(h);
	return rc;
}

/* P-256 key on the host. */
static EVP_PKEY *host_key(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");

	assert_non_null(k);
	return k;
}

static void host_point(EVP_PKEY *k, uint8_t point[HSM_EC_POINT_LEN])
{
	size_t n = 0;

	assert_int_equal(EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, point,
							 HSM_EC_POINT_LEN, &n), 1);
	assert_int_equal(n, HSM_EC_POINT_LEN);
}

/* Host side of ECDH: raw shared X coordinate with the HSM's public key. */
static void host_ecdh(EVP_PKEY *mine, EVP_PKEY *peer, uint8_t secret[32])
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(mine, NULL);
	size_t n = 32;

	assert_non_null(c);
	assert_int_equal(EVP_PKEY_derive_init(c), 1);
	assert_int_equal(EVP_PKEY_derive_set_peer(c, peer), 1);
	assert_int_equal(EVP_PKEY_derive(c, secret, &n), 1);
	assert_int_equal(n, 32);
	EVP_PKEY_CTX_free(c);
}

/* RFC 5649 unwrap on the host; returns the unwrapped length. */
static size_t host_unwrap_kwp(const uint8_t kek[32], const uint8_t *in, size_t n, uint8_t *out)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int l1 = 0, l2 = 0;

	assert_non_null(c);
	EVP_CIPHER_CTX_set_flags(c, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
	assert_int_equal(EVP_DecryptInit_ex(c, EVP_aes_256_wrap_pad(), NULL, kek, NULL), 1);
	assert_int_equal(EVP_DecryptUpdate(c, out, &l1, in, (int)n), 1);
	assert_int_equal(EVP_DecryptFinal_ex(c, out + l1, &l2), 1);
	EVP_CIPHER_CTX_free(c);
	return (size_t)(l1 + l2);
}

/* A KEK shared by HSM and host through ECDH: *kek in the HSM, raw on the host. */
static void shared_kek(struct fx *f, hsm_obj *kek, uint8_t host_kek[32])
{
	struct hsm_key_opts o = { .flags = HSM_KEY_DERIVE };
	hsm_obj pub, priv;
	EVP_PKEY *hk = host_key(), *hp = NULL;
	uint8_t point[HSM_EC_POINT_LEN];

	assert_int_equal(hsm_ec_keygen(f->s, &o, &pub, &priv), IMP_OK);
	host_point(hk, point);
	assert_int_equal(hsm_ecdh_derive_aes(f->s, priv, point, 0, kek), IMP_OK);
	assert_int_equal(hsm_ec_pkey(f->s, pub, &hp), IMP_OK);
	host_ecdh(hk, hp, host_kek);
	EVP_PKEY_free(hk);
	EVP_PKEY_free(hp);
}

/* ------------------------------------------------------------------ */

static void test_embedded_layout(void **state)
{
	struct fx *f = *state;
	struct hsm_token_info ti;
	char path[256];
	struct stat st;
	uint8_t *conf;
	size_t n;

	assert_int_equal(hsm_info(f->h, &ti), IMP_OK);
	assert_string_equal(ti.label, "imprint");
	assert_true(ti.initialized);
	assert_true(ti.user_pin_initialized);
	assert_false(ti.user_pin_locked);
	assert_string_equal(ti.manufacturer, "SoftHSM project");

	snprintf(path, sizeof(path), "%s/hsm/pins", f->dir);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	snprintf(path, sizeof(path), "%s/hsm/tokens", f->dir);
	assert_int_equal(lstat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	snprintf(path, sizeof(path), "%s/hsm/softhsm2.conf", f->dir);
	assert_int_equal(imp_read_file(path, &conf, &n), IMP_OK);
	assert_non_null(strstr((char *)conf, "directories.tokendir = "));
	assert_non_null(strstr((char *)conf, f->dir));
	assert_non_null(strstr((char *)conf, "objectstore.backend = file"));
	free(conf);
	assert_string_equal(getenv("SOFTHSM2_CONF"), path);

	assert_true(hsm_embedded_exists(f->dir));
	assert_false(hsm_embedded_exists("/nonexistent-imprint-dir"));
	assert_int_equal(hsm_embedded_create(f->dir), IMP_ERR_EXISTS);

	/* the module's mechanisms are what the design relies on */
	assert_true(hsm_has_mechanism(f->h, CKM_ECDSA, CKF_SIGN));
	assert_false(hsm_has_mechanism(f->h, CKM_ECDSA_SHA256, 0));
	assert_true(hsm_has_mechanism(f->h, CKM_AES_KEY_WRAP_PAD, CKF_WRAP));
	assert_true(hsm_has_mechanism(f->h, CKM_AES_CMAC, CKF_SIGN));
	assert_true(hsm_has_mechanism(f->h, CKM_AES_ECB_ENCRYPT_DATA, CKF_DERIVE));
}

static void test_reopen_and_token_list(void **state)
{
	struct fx *f = *state;
	struct hsm_token_info *tl;
	size_t n, imprint = 0, free_slots = 0;

	fx_close(f);
	assert_int_equal(hsm_embedded_open(f->dir, &f->h), IMP_OK);
	assert_int_equal(hsm_session_open(f->h, &f->s), IMP_OK);
	assert_int_equal(hsm_token_list(HSM_EMBEDDED_MODULE_PATH, &tl, &n), IMP_OK);
	for (size_t i = 0; i < n; i++) {
		if (tl[i].initialized && strcmp(tl[i].label, "imprint") == 0)
			imprint++;
		if (!tl[i].initialized)
			free_slots++;
	}
	free(tl);
	assert_int_equal(imprint, 1);
	assert_int_equal(free_slots, 1);
}

static void test_wrong_pin(void **state)
{
	struct fx *f = *state;
	char err[4096], pin[128];

	fx_close(f); /* no login left in the process */
	setenv("IMP_TEST_PIN", "0000000000", 1);
	assert_int_equal(capture_stderr(err, sizeof(err), open_with_env, NULL), IMP_ERR_PIN);
	assert_non_null(strstr(err, "C_Login failed: CKR_PIN_INCORRECT (0xa0)"));
	assert_non_null(strstr(err, "wrong user pin for token \"imprint\""));
	assert_non_null(strstr(err, "check the pin source"));
	assert_non_null(strstr(err, "locks"));
	assert_null(strstr(err, "0000000000"));   /* the PIN is never logged */

	user_pin(f, pin);
	setenv("IMP_TEST_PIN", pin, 1);
	assert_int_equal(capture_stderr(err, sizeof(err), open_with_env, NULL), IMP_OK);
	assert_null(strstr(err, pin));
	unsetenv("IMP_TEST_PIN");
	assert_int_equal(open_with_env(NULL), IMP_ERR_PIN); /* unset variable */
}

static void test_pin_file_modes(void **state)
{
	struct fx *f = *state;
	char pin[128], path[256], link[256], buf[HSM_PIN_MAX + 1];
	struct hsm_pin_source src = { .kind = HSM_PIN_FILE, .name = path };
	struct hsm *h = NULL;
	size_t len;
	FILE *fp;

	fx_close(f);
	user_pin(f, pin);
	snprintf(path, sizeof(path), "%s/user.pin", f->dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fprintf(fp, "%s\n", pin);
	fclose(fp);

	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(hsm_open(HSM_EMBEDDED_MODULE_PATH, "imprint", &src, &h), IMP_ERR_INSECURE);
	assert_null(h);
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(hsm_pin_read(&src, buf, sizeof(buf), &len), IMP_ERR_INSECURE);
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(hsm_pin_read(&src, buf, sizeof(buf), &len), IMP_OK);
	assert_int_equal(len, 64);           /* newline stripped */
	assert_string_equal(buf, pin);
	assert_int_equal(hsm_open(HSM_EMBEDDED_MODULE_PATH, "imprint", &src, &h), IMP_OK);
	hsm_close(h);

	/* a symbolic link or a directory is not a PIN file */
	snprintf(link, sizeof(link), "%s/link.pin", f->dir);
	assert_int_equal(symlink(path, link), 0);
	src.name = link;
	assert_int_equal(hsm_pin_read(&src, buf, sizeof(buf), &len), IMP_ERR_INSECURE);
	src.name = f->dir;
	assert_int_not_equal(hsm_pin_read(&src, buf, sizeof(buf), &len), IMP_OK);

	/* the embedded pins file is held to the same rule */
	snprintf(path, sizeof(path), "%s/hsm/pins", f->dir);
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(hsm_embedded_open(f->dir, &h), IMP_ERR_INSECURE);
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(hsm_embedded_open(f->dir, &f->h), IMP_OK);
	assert_int_equal(hsm_session_open(f->h, &f->s), IMP_OK);
}

static void test_keygen_token_and_session(void **state)
{
	struct fx *f = *state;
	static const uint8_t id[] = { 0xca, 0xfe };
	struct hsm_key_opts tok = { .flags = HSM_KEY_TOKEN | HSM_KEY_SIGN, .label = "org-test",
				    .id = id, .id_len = sizeof(id) };
	struct hsm_key_opts ses = { .flags = HSM_KEY_SIGN | HSM_KEY_WRAPPABLE };
	struct hsm_obj_info info;
	hsm_obj tpub, tpriv, spub, spriv, found;
	uint8_t p1[HSM_EC_POINT_LEN], p2[HSM_EC_POINT_LEN];

	assert_int_equal(hsm_ec_keygen(f->s, &tok, &tpub, &tpriv), IMP_OK);
	assert_int_equal(hsm_ec_keygen(f->s, &ses, &spub, &spriv), IMP_OK);

	assert_int_equal(hsm_object_info(f->s, tpriv, &info), IMP_OK);
	assert_int_equal(info.cls, HSM_CLASS_PRIVATE_KEY);
	assert_int_equal(info.key_type, CKK_EC);
	assert_true(info.token);
	assert_true(info.private_);
	assert_true(info.sensitive);
	assert_false(info.extractable);
	assert_true(info.always_sensitive);
	assert_true(info.never_extractable);
	assert_true(info.sign);
	assert_false(info.derive);
	assert_string_equal(info.label, "org-test");
	assert_int_equal(info.id_len, 2);
	assert_memory_equal(info.id, id, 2);

	assert_int_equal(hsm_object_info(f->s, spriv, &info), IMP_OK);
	assert_false(info.token);
	assert_true(info.sensitive);
	assert_true(info.extractable);       /* wrappable... */
	assert_false(info.never_extractable);

	/* public point from the public key and through the private key's CKA_ID */
	assert_int_equal(hsm_ec_point(f->s, tpub, p1), IMP_OK);
	assert_int_equal(p1[0], 0x04);
	assert_int_equal(hsm_ec_point(f->s, tpriv, p2), IMP_OK);
	assert_memory_equal(p1, p2, sizeof(p1));
	assert_int_equal(hsm_ec_point(f->s, spub, p2), IMP_OK);
	assert_memory_not_equal(p1, p2, sizeof(p1));
	assert_int_equal(hsm_ec_point(f->s, spriv, p2), IMP_ERR_NOT_FOUND); /* no id */

	/* session objects die with their session; token objects stay */
	fx_close(f);
	assert_int_equal(hsm_embedded_open(f->dir, &f->h), IMP_OK);
	assert_int_equal(hsm_session_open(f->h, &f->s), IMP_OK);
	assert_int_equal(hsm_find(f->s, HSM_CLASS_PRIVATE_KEY, "org-test", NULL, 0, &found),
			 IMP_OK);
	assert_int_equal(hsm_ec_point(f->s, found, p2), IMP_OK);
	assert_memory_equal(p1, p2, sizeof(p1));
	{
		struct hsm_obj_info *all;
		size_t n;

		assert_int_equal(hsm_list(f->s, HSM_CLASS_ANY, &all, &n), IMP_OK);
		assert_int_equal(n, 2); /* the token pair only */
		free(all);
	}
}

static void test_sign_verify(void **state)
{
	struct fx *f = *state;
	struct hsm_key_opts o = { .flags = HSM_KEY_SIGN };
	static const char msg[] = "imprint identity record 0001";
	uint8_t der[FMT_ECDSA_DER_MAX], raw[HSM_ECDSA_RAW_LEN], raw2[HSM_ECDSA_RAW_LEN];
	size_t der_len;
	hsm_obj pub, priv;
	EVP_PKEY *pk = NULL;
	EVP_MD_CTX *md;

	assert_int_equal(hsm_ec_keygen(f->s, &o, &pub, &priv), IMP_OK);
	assert_int_equal(hsm_ec_pkey(f->s, pub, &pk), IMP_OK);
	assert_int_equal(hsm_sign_sha256_der(f->s, priv, msg, strlen(msg), der, sizeof(der),
					     &der_len), IMP_OK);

	md = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pk), 1);
	assert_int_equal(EVP_DigestVerify(md, der, der_len, (const uint8_t *)msg, strlen(msg)), 1);
	/* must fail: altered data */
	assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pk), 1);
	assert_int_not_equal(EVP_DigestVerify(md, der, der_len, (const uint8_t *)"imprint identity record 0002",
					      strlen(msg)), 1);
	/* must fail: altered signature */
	assert_int_equal(fmt_ecdsa_der_to_raw(der, der_len, raw), IMP_OK);
	raw[40] ^= 1;
	assert_int_equal(fmt_ecdsa_raw_to_der(raw, der, sizeof(der), &der_len), IMP_OK);
	assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pk), 1);
	assert_int_not_equal(EVP_DigestVerify(md, der, der_len, (const uint8_t *)msg, strlen(msg)), 1);

	/* raw output verifies too, and ECDSA is randomised */
	assert_int_equal(hsm_sign_sha256(f->s, priv, msg, strlen(msg), raw), IMP_OK);
	assert_int_equal(hsm_sign_sha256(f->s, priv, msg, strlen(msg), raw2), IMP_OK);
	assert_memory_not_equal(raw, raw2, sizeof(raw));
	assert_int_equal(fmt_ecdsa_raw_to_der(raw2, der, sizeof(der), &der_len), IMP_OK);
	assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pk), 1);
	assert_int_equal(EVP_DigestVerify(md, der, der_len, (const uint8_t *)msg, strlen(msg)), 1);

	/* a key without CKA_SIGN cannot sign */
	o.flags = HSM_KEY_DERIVE;
	assert_int_equal(hsm_ec_keygen(f->s, &o, &pub, &priv), IMP_OK);
	assert_int_not_equal(hsm_sign_sha256(f->s, priv, msg, strlen(msg), raw), IMP_OK);

	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pk);
}

static void test_ecdh_agree(void **state)
{
	struct fx *f = *state;
	static const uint8_t iv[HSM_GCM_IV_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };
	static const char pt[] = "the same secret on both sides";
	uint8_t host_kek[32], point[HSM_EC_POINT_LEN];
	uint8_t ct1[sizeof(pt) + HSM_GCM_TAG_LEN], ct2[sizeof(pt) + HSM_GCM_TAG_LEN];
	uint8_t dec[sizeof(pt)];
	struct hsm_key_opts o = { .flags = HSM_KEY_DERIVE };
	hsm_obj pub, priv, k1, k2;
	EVP_PKEY *hk = host_key(), *hp = NULL;
	EVP_CIPHER_CTX *c;
	int l;

	assert_int_equal(hsm_ec_keygen(f->s, &o, &pub, &priv), IMP_OK);
	host_point(hk, point);
	assert_int_equal(hsm_ecdh_derive_aes(f->s, priv, point, 0, &k1), IMP_OK);
	assert_int_equal(hsm_ecdh_derive_aes(f->s, priv, point, 0, &k2), IMP_OK);
	assert_int_equal(hsm_ec_pkey(f->s, pub, &hp), IMP_OK);
	host_ecdh(hk, hp, host_kek);

	assert_int_equal(hsm_gcm_encrypt(f->s, k1, iv, NULL, 0, pt, sizeof(pt), ct1), IMP_OK);
	assert_int_equal(hsm_gcm_encrypt(f->s, k2, iv, NULL, 0, pt, sizeof(pt), ct2), IMP_OK);
	assert_memory_equal(ct1, ct2, sizeof(ct1));

	/* the host decrypts with its own ECDH result */
	c = EVP_CIPHER_CTX_new();
	assert_int_equal(EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, host_kek, iv), 1);
	assert_int_equal(EVP_DecryptUpdate(c, dec, &l, ct1, sizeof(pt)), 1);
	assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, HSM_GCM_TAG_LEN,
					     ct1 + sizeof(pt)), 1);
	assert_int_equal(EVP_DecryptFinal_ex(c, dec + l, &l), 1);
	assert_memory_equal(dec, pt, sizeof(pt));
	EVP_CIPHER_CTX_free(c);

	/* must fail: another host key gives another secret */
	{
		EVP_PKEY *other = host_key();
		uint8_t other_kek[32];

		host_ecdh(other, hp, other_kek);
		assert_memory_not_equal(other_kek, host_kek, 32);
		EVP_PKEY_free(other);
	}
	/* a point not on the curve is refused */
	point[HSM_EC_POINT_LEN - 1] ^= 1;
	assert_int_not_equal(hsm_ecdh_derive_aes(f->s, priv, point, 0, &k2), IMP_OK);
	EVP_PKEY_free(hk);
	EVP_PKEY_free(hp);
}

static void test_wrap_ec_key_kwp(void **state)
{
	struct fx *f = *state;
	struct hsm_key_opts dev = { .flags = HSM_KEY_SIGN | HSM_KEY_WRAPPABLE };
	struct hsm_key_opts fixed = { .flags = HSM_KEY_SIGN };
	uint8_t host_kek[32], wrapped[512], plain[512], iv[HSM_GCM_IV_LEN] = { 0 };
	size_t wlen = sizeof(wrapped), need = 0, plen;
	const uint8_t *p;
	hsm_obj kek, pub, priv, pub2, priv2;
	EVP_PKEY *unwrapped, *hsm_pub = NULL;
	PKCS8_PRIV_KEY_INFO *p8;

	shared_kek(f, &kek, host_kek);
	assert_int_equal(hsm_ec_keygen(f->s, &dev, &pub, &priv), IMP_OK);
	assert_int_equal(hsm_wrap(f->s, HSM_WRAP_AES_KWP, kek, priv, NULL, NULL, 0, NULL, &need),
			 IMP_OK);
	assert_int_equal(hsm_wrap(f->s, HSM_WRAP_AES_KWP, kek, priv, NULL, NULL, 0, wrapped,
				  &wlen), IMP_OK);
	assert_int_equal(wlen, need);
	assert_int_equal(wlen % 8, 0);

	plen = host_unwrap_kwp(host_kek, wrapped, wlen, plain);
	assert_int_equal(plen % 8, 0);       /* SoftHSM zero-pads to a multiple of 8 */
	/* PKCS#8 DER: the real length is in the header; the rest is padding */
	assert_int_equal(plain[0], 0x30);
	p = plain;
	p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)plen);
	assert_non_null(p8);
	assert_true((size_t)(p - plain) <= plen && plen - (size_t)(p - plain) < 8);
	for (const uint8_t *q = p; q < plain + plen; q++)
		assert_int_equal(*q, 0);
	unwrapped = EVP_PKCS82PKEY(p8);
	assert_non_null(unwrapped);
	assert_int_equal(hsm_ec_pkey(f->s, pub, &hsm_pub), IMP_OK);
	assert_int_equal(EVP_PKEY_eq(unwrapped, hsm_pub), 1);
	EVP_PKEY_free(unwrapped);
	PKCS8_PRIV_KEY_INFO_free(p8);

	/* must fail: a wrong KEK does not unwrap */
	{
		EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
		int l1 = 0, ok;

		host_kek[0] ^= 1;
		EVP_DecryptInit_ex(c, EVP_aes_256_wrap_pad(), NULL, host_kek, NULL);
		ok = EVP_DecryptUpdate(c, plain, &l1, wrapped, (int)wlen);
		assert_true(ok != 1 || l1 <= 0);
		EVP_CIPHER_CTX_free(c);
	}

	/* a non-extractable key cannot be wrapped */
	assert_int_equal(hsm_ec_keygen(f->s, &fixed, &pub2, &priv2), IMP_OK);
	wlen = sizeof(wrapped);
	assert_int_not_equal(hsm_wrap(f->s, HSM_WRAP_AES_KWP, kek, priv2, NULL, NULL, 0, wrapped,
				      &wlen), IMP_OK);
	/* SoftHSM 2.6.1: no GCM wrapping, reported cleanly */
	wlen = sizeof(wrapped);
	assert_int_equal(hsm_wrap(f->s, HSM_WRAP_AES_GCM, kek, priv, iv, NULL, 0, wrapped, &wlen),
			 IMP_ERR_UNSUPPORTED);
	EVP_PKEY_free(hsm_pub);
}

static void aes256_ecb(const uint8_t key[32], const uint8_t in[32], uint8_t out[32])
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int l = 0;

	assert_int_equal(EVP_EncryptInit_ex(c, EVP_aes_256_ecb(), NULL, key, NULL), 1);
	EVP_CIPHER_CTX_set_padding(c, 0);
	assert_int_equal(EVP_EncryptUpdate(c, out, &l, in, 32), 1);
	assert_int_equal(l, 32);
	EVP_CIPHER_CTX_free(c);
}

static void host_cmac(const uint8_t key[32], const void *data, size_t n, uint8_t mac[16])
{
	size_t len = 16;
	EVP_MAC *m = EVP_MAC_fetch(NULL, "CMAC", NULL);
	EVP_MAC_CTX *c = EVP_MAC_CTX_new(m);
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string("cipher", (char *)"AES-256-CBC", 0),
		OSSL_PARAM_construct_end(),
	};

	assert_int_equal(EVP_MAC_init(c, key, 32, params), 1);
	assert_int_equal(EVP_MAC_update(c, data, n), 1);
	assert_int_equal(EVP_MAC_final(c, mac, &len, 16), 1);
	EVP_MAC_CTX_free(c);
	EVP_MAC_free(m);
}

static void test_psk_diversify_cmac(void **state)
{
	struct fx *f = *state;
	struct hsm_key_opts mo = { .flags = HSM_KEY_TOKEN | HSM_KEY_DERIVE, .label = "psk-master" };
	struct hsm_key_opts to = { .flags = HSM_KEY_DERIVE | HSM_KEY_WRAPPABLE };
	uint8_t div[32], div2[32], mac1[16], mac2[16], mac3[16], hmac[16];
	uint8_t host_kek[32], w[128], master[64], psk[64], expect[32];
	static const char challenge[] = "station nonce 7f3a";
	struct hsm_obj_info info;
	hsm_obj m, p1, p2, p3, tm, tp, kek;
	size_t wl;

	/* production master: token key, never extractable */
	assert_int_equal(hsm_aes_keygen(f->s, &mo, &m), IMP_OK);
	assert_int_equal(hsm_object_info(f->s, m, &info), IMP_OK);
	assert_int_equal(info.cls, HSM_CLASS_SECRET_KEY);
	assert_true(info.token && info.sensitive && info.never_extractable && !info.extractable);
	assert_true(info.derive);

	memset(div, 0x5a, sizeof(div));
	memcpy(div2, div, sizeof(div));
	div2[31] ^= 1;
	assert_int_equal(hsm_psk_derive(f->s, m, div, 0, &p1), IMP_OK);
	assert_int_equal(hsm_psk_derive(f->s, m, div, 0, &p2), IMP_OK);
	assert_int_equal(hsm_psk_derive(f->s, m, div2, 0, &p3), IMP_OK);
	assert_int_equal(hsm_object_info(f->s, p1, &info), IMP_OK);
	assert_true(info.sensitive && !info.extractable && !info.token && info.sign);
	assert_int_equal(hsm_cmac(f->s, p1, challenge, strlen(challenge), mac1), IMP_OK);
	assert_int_equal(hsm_cmac(f->s, p2, challenge, strlen(challenge), mac2), IMP_OK);
	assert_int_equal(hsm_cmac(f->s, p3, challenge, strlen(challenge), mac3), IMP_OK);
	assert_memory_equal(mac1, mac2, 16);
	assert_memory_not_equal(mac1, mac3, 16);  /* another diversifier, another PSK */

	/* with a test master that can be wrapped, the host checks the arithmetic:
	 * PSK = AES-256-ECB(master, diversifier), CMAC as OpenSSL computes it */
	shared_kek(f, &kek, host_kek);
	assert_int_equal(hsm_aes_keygen(f->s, &to, &tm), IMP_OK);
	assert_int_equal(hsm_psk_derive(f->s, tm, div, HSM_KEY_WRAPPABLE, &tp), IMP_OK);
	wl = sizeof(w);
	assert_int_equal(hsm_wrap(f->s, HSM_WRAP_AES_KWP, kek, tm, NULL, NULL, 0, w, &wl), IMP_OK);
	assert_int_equal(host_unwrap_kwp(host_kek, w, wl, master), 32);
	wl = sizeof(w);
	assert_int_equal(hsm_wrap(f->s, HSM_WRAP_AES_KWP, kek, tp, NULL, NULL, 0, w, &wl), IMP_OK);
	assert_int_equal(host_unwrap_kwp(host_kek, w, wl, psk), 32);
	aes256_ecb(master, div, expect);
	assert_memory_equal(psk, expect, 32);
	assert_int_equal(hsm_cmac(f->s, tp, challenge, strlen(challenge), mac1), IMP_OK);
	host_cmac(psk, challenge, strlen(challenge), hmac);
	assert_memory_equal(mac1, hmac, 16);
	/* must fail: another challenge gives another MAC */
	host_cmac(psk, "station nonce 7f3b", strlen(challenge), hmac);
	assert_memory_not_equal(mac1, hmac, 16);
	imp_wipe(master, sizeof(master));
	imp_wipe(psk, sizeof(psk));
}

static void test_random(void **state)
{
	struct fx *f = *state;
	uint8_t a[32], b[32], zero[32] = { 0 };

	assert_int_equal(hsm_random(f->s, a, sizeof(a)), IMP_OK);
	assert_int_equal(hsm_random(f->s, b, sizeof(b)), IMP_OK);
	assert_memory_not_equal(a, b, sizeof(a));
	assert_memory_not_equal(a, zero, sizeof(a));
}

static X509 *self_signed(EVP_PKEY *k, const char *cn)
{
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 4242);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, n);
	X509_set_pubkey(x, k);
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	X509_NAME_free(n);
	return x;
}

static void test_find_and_cert(void **state)
{
	struct fx *f = *state;
	static const uint8_t id[] = { 0x01, 0x02 };
	struct hsm_key_opts o = { .flags = HSM_KEY_TOKEN | HSM_KEY_SIGN, .label = "device-ca",
				  .id = id, .id_len = sizeof(id) };
	struct hsm_key_opts dup = { .flags = HSM_KEY_SIGN, .label = "twice" };
	hsm_obj pub, priv, h, cert, d1, d2;
	EVP_PKEY *k = host_key();
	X509 *x = self_signed(k, "imprint test ca");
	uint8_t *der = NULL, *back = NULL;
	int der_len = i2d_X509(x, &der);
	size_t back_len;
	struct hsm_obj_info *all;
	size_t n;

	assert_int_equal(hsm_ec_keygen(f->s, &o, &pub, &priv), IMP_OK);
	assert_int_equal(hsm_find(f->s, HSM_CLASS_PRIVATE_KEY, "device-ca", NULL, 0, &h), IMP_OK);
	assert_int_equal(h, priv);
	assert_int_equal(hsm_find(f->s, HSM_CLASS_PUBLIC_KEY, NULL, id, sizeof(id), &h), IMP_OK);
	assert_int_equal(h, pub);
	assert_int_equal(hsm_find(f->s, HSM_CLASS_ANY, "device-ca", NULL, 0, &h), IMP_ERR_CONFIG);
	assert_int_equal(hsm_find(f->s, HSM_CLASS_PRIVATE_KEY, "no-such", NULL, 0, &h),
			 IMP_ERR_NOT_FOUND);

	assert_int_equal(hsm_find_uri(f->s, "pkcs11:object=device-ca;type=private", &h), IMP_OK);
	assert_int_equal(h, priv);
	assert_int_equal(hsm_find_uri(f->s, "pkcs11:token=imprint;id=%01%02;type=public", &h),
			 IMP_OK);
	assert_int_equal(h, pub);
	assert_int_equal(hsm_find_uri(f->s, "pkcs11:token=other;object=device-ca;type=private",
				      &h), IMP_ERR_NOT_FOUND);
	assert_int_equal(hsm_find_uri(f->s, "pkcs11:object=device-ca;type=secret-key", &h),
			 IMP_ERR_NOT_FOUND);
	assert_int_equal(hsm_find_uri(f->s, "https://example.com", &h), IMP_ERR_USAGE);

	assert_int_equal(hsm_ec_keygen(f->s, &dup, &d1, &d2), IMP_OK);
	assert_int_equal(hsm_ec_keygen(f->s, &dup, &d1, &d2), IMP_OK);
	assert_int_equal(hsm_find(f->s, HSM_CLASS_PRIVATE_KEY, "twice", NULL, 0, &h),
			 IMP_ERR_CONFIG);

	assert_true(der_len > 0);
	assert_int_equal(hsm_cert_store(f->s, der, (size_t)der_len, "device-ca", id, sizeof(id),
					&cert), IMP_OK);
	assert_int_equal(hsm_find_uri(f->s, "pkcs11:object=device-ca;type=cert", &h), IMP_OK);
	assert_int_equal(h, cert);
	assert_int_equal(hsm_object_value(f->s, cert, &back, &back_len), IMP_OK);
	assert_int_equal(back_len, (size_t)der_len);
	assert_memory_equal(back, der, back_len);
	assert_int_equal(hsm_cert_store(f->s, (const uint8_t *)"junk", 4, "x", NULL, 0, &h),
			 IMP_ERR_CRYPTO);

	assert_int_equal(hsm_list(f->s, HSM_CLASS_PRIVATE_KEY, &all, &n), IMP_OK);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++) /* what `hsm status` checks */
		assert_true(all[i].sensitive && !all[i].extractable && all[i].never_extractable);
	free(all);
	assert_int_equal(hsm_list(f->s, HSM_CLASS_CERTIFICATE, &all, &n), IMP_OK);
	assert_int_equal(n, 1);
	assert_int_equal(all[0].cls, HSM_CLASS_CERTIFICATE);
	assert_string_equal(all[0].label, "device-ca");
	free(all);

	assert_int_equal(hsm_destroy(f->s, cert), IMP_OK);
	assert_int_equal(hsm_find_uri(f->s, "pkcs11:object=device-ca;type=cert", &h),
			 IMP_ERR_NOT_FOUND);
	free(back);
	OPENSSL_free(der);
	X509_free(x);
	EVP_PKEY_free(k);
}

struct worker {
	struct hsm *h;
	imp_err rc;
	int signs;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct hsm_session *s = NULL;
	struct hsm_key_opts o = { .flags = HSM_KEY_SIGN };
	uint8_t raw[64], md[32] = { 7 };
	hsm_obj pub, priv;

	w->rc = hsm_session_open(w->h, &s);
	if (w->rc == IMP_OK)
		w->rc = hsm_ec_keygen(s, &o, &pub, &priv);
	for (int i = 0; w->rc == IMP_OK && i < 200; i++) {
		w->rc = hsm_sign_digest(s, priv, md, raw);
		w->signs += w->rc == IMP_OK;
	}
	hsm_session_close(s);
	return NULL;
}

static void test_threads(void **state)
{
	struct fx *f = *state;
	struct worker w[4];
	pthread_t t[4];

	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){ .h = f->h };
		assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].rc, IMP_OK);
		assert_int_equal(w[i].signs, 200);
	}
}

static void test_ckr_mapping(void **state)
{
	(void)state;
	assert_int_equal(hsm_ckr_to_err(CKR_OK), IMP_OK);
	assert_int_equal(hsm_ckr_to_err(CKR_PIN_INCORRECT), IMP_ERR_PIN);
	assert_int_equal(hsm_ckr_to_err(CKR_PIN_INVALID), IMP_ERR_PIN);
	assert_int_equal(hsm_ckr_to_err(CKR_PIN_LEN_RANGE), IMP_ERR_PIN);
	assert_int_equal(hsm_ckr_to_err(CKR_PIN_LOCKED), IMP_ERR_PIN_LOCKED);
	assert_int_equal(hsm_ckr_to_err(CKR_MECHANISM_INVALID), IMP_ERR_UNSUPPORTED);
	assert_int_equal(hsm_ckr_to_err(CKR_SIGNATURE_INVALID), IMP_ERR_VERIFY);
	assert_int_equal(hsm_ckr_to_err(CKR_HOST_MEMORY), IMP_ERR_NOMEM);
	assert_int_equal(hsm_ckr_to_err(CKR_TOKEN_NOT_PRESENT), IMP_ERR_NOT_FOUND);
	assert_int_equal(hsm_ckr_to_err(CKR_SLOT_ID_INVALID), IMP_ERR_NOT_FOUND);
	assert_int_equal(hsm_ckr_to_err(CKR_GENERAL_ERROR), IMP_ERR_HSM);
	assert_string_equal(hsm_ckr_name(CKR_PIN_INCORRECT), "CKR_PIN_INCORRECT");
	assert_string_equal(hsm_ckr_name(CKR_KEY_UNEXTRACTABLE), "CKR_KEY_UNEXTRACTABLE");
	assert_string_equal(hsm_ckr_name(0x7777), "unknown CKR");
}

/*
 * The journal's anchor with a second station process on the token (a
 * second station on the data directory, `export --follow`): both read the
 * same old anchor, both store a new one, and the other destroys the old one
 * first. The destroy that finds it gone is no failure and logs no error.
 */
static CK_FUNCTION_LIST *anchor_real_fl;
static unsigned anchor_errors;

static CK_RV anchor_destroy_raced(CK_SESSION_HANDLE sh, CK_OBJECT_HANDLE o)
{
	/* The other process wins: the object is gone when this one asks. */
	(void)anchor_real_fl->C_DestroyObject(sh, o);
	return anchor_real_fl->C_DestroyObject(sh, o);
}

static void anchor_sink(void *arg, enum imp_log_level level, const char *prog,
			const char *level_name, const char *msg)
{
	(void)arg;
	(void)prog;
	(void)level_name;
	(void)msg;
	if (level <= IMP_LOG_WARN)
		anchor_errors++;
}

static void test_anchor_put_raced(void **state)
{
	struct fx *f = *state;
	struct hsm_anchor a = { .found = true, .serial_counter = 2, .seq = 10 }, got;
	CK_FUNCTION_LIST raced;

	memset(a.head, 'a', 64);
	assert_int_equal(hsm_anchor_put(f->s, "st1", &a), IMP_OK);
	anchor_real_fl = f->s->fl;
	raced = *f->s->fl;
	raced.C_DestroyObject = anchor_destroy_raced;
	f->s->fl = &raced;
	anchor_errors = 0;
	imp_log_set_sink(anchor_sink, NULL);
	a.seq = 20;
	a.serial_counter = 4;
	memset(a.head, 'b', 64);
	assert_int_equal(hsm_anchor_put(f->s, "st1", &a), IMP_OK);
	imp_log_set_sink(NULL, NULL);
	f->s->fl = anchor_real_fl;
	assert_int_equal(anchor_errors, 0);
	assert_int_equal(hsm_anchor_get(f->s, "st1", &got), IMP_OK);
	assert_true(got.found);
	assert_int_equal(got.seq, 20);
	assert_int_equal(got.serial_counter, 4);
	assert_int_equal(got.head[0], 'b');
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ckr_mapping),
		cmocka_unit_test_setup_teardown(test_embedded_layout, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_reopen_and_token_list, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_wrong_pin, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_pin_file_modes, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_keygen_token_and_session, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_sign_verify, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_ecdh_agree, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_wrap_ec_key_kwp, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_psk_diversify_cmac, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_random, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_find_and_cert, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_threads, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_anchor_put_raced, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
