/*
 * Unit tests of the secure-element model (sim/se.h) and of the agent's
 * command handler: wrapped import as a station would wrap (ECDH + KWP with
 * SoftHSM-style zero padding, and GCM), CSR, challenge, persistence, locks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "wire/agent_proto.h"
#include "wire/frame.h"
#include "board_int.h"
#include "imprint/util.h"
#include "sim/chip.h"
#include "sim/se.h"
#include "sim/vb1_map.h"

static char *make_dir(void)
{
	char tmpl[] = "/tmp/imprint-se-unit.XXXXXX";
	char *d = mkdtemp(tmpl);

	assert_non_null(d);
	return strdup(d);
}

static void rm_dir(char *d)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d);
	assert_int_equal(system(cmd), 0);
	free(d);
}

static struct sim_se *se_in(const char *dir, const char *backdoor)
{
	struct sim_se_opts o = { .dir = dir, .backdoor_dir = backdoor, .latency_scale = 0 };
	struct sim_se *se = sim_se_new(&o);

	assert_non_null(se);
	return se;
}

static void pub_of(EVP_PKEY *k, uint8_t pub[65])
{
	size_t n = 0;

	assert_int_equal(EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
							 pub, 65, &n), 1);
	assert_int_equal(n, 65);
}

static EVP_PKEY *key_from_pub(const uint8_t pub[65])
{
	OSSL_PARAM params[3];
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	EVP_PKEY *k = NULL;
	char group[] = "prime256v1";

	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)pub, 65);
	params[2] = OSSL_PARAM_construct_end();
	assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
	assert_int_equal(EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_PUBLIC_KEY, params), 1);
	EVP_PKEY_CTX_free(ctx);
	return k;
}

/* The station side: ephemeral key, ECDH with the SE transport key -> KEK. */
static EVP_PKEY *station_kek(struct sim_se *se, uint8_t kek[32], uint8_t station_pub[65])
{
	uint8_t tpub[65];
	EVP_PKEY *eph = EVP_EC_gen("P-256"), *peer;
	EVP_PKEY_CTX *ctx;
	size_t n = 32;

	sim_se_transport_pub(se, tpub);
	peer = key_from_pub(tpub);
	ctx = EVP_PKEY_CTX_new(eph, NULL);
	assert_int_equal(EVP_PKEY_derive_init(ctx), 1);
	assert_int_equal(EVP_PKEY_derive_set_peer(ctx, peer), 1);
	assert_int_equal(EVP_PKEY_derive(ctx, kek, &n), 1);
	assert_int_equal(n, 32);
	pub_of(eph, station_pub);
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(peer);
	return eph;
}

static size_t kwp_wrap(const uint8_t kek[32], const uint8_t *in, size_t n, uint8_t *out)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int l1 = 0, l2 = 0;

	EVP_CIPHER_CTX_set_flags(ctx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
	assert_int_equal(EVP_EncryptInit_ex(ctx, EVP_aes_256_wrap_pad(), NULL, kek, NULL), 1);
	assert_int_equal(EVP_EncryptUpdate(ctx, out, &l1, in, (int)n), 1);
	assert_int_equal(EVP_EncryptFinal_ex(ctx, out + l1, &l2), 1);
	EVP_CIPHER_CTX_free(ctx);
	return (size_t)(l1 + l2);
}

static size_t gcm_seal(const uint8_t kek[32], const uint8_t iv[12], const uint8_t *in, size_t n,
		       uint8_t *out)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int l1 = 0, l2 = 0;

	assert_int_equal(EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, kek, iv), 1);
	assert_int_equal(EVP_EncryptUpdate(ctx, out, &l1, in, (int)n), 1);
	assert_int_equal(EVP_EncryptFinal_ex(ctx, out + l1, &l2), 1);
	assert_int_equal(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, out + l1 + l2), 1);
	EVP_CIPHER_CTX_free(ctx);
	return (size_t)(l1 + l2 + 16);
}

static size_t pkcs8_padded(EVP_PKEY *k, uint8_t *out)
{
	PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(k);
	unsigned char *der = NULL;
	int n = i2d_PKCS8_PRIV_KEY_INFO(p8, &der);
	size_t padded = ((size_t)n + 7) / 8 * 8 + 8; /* zero padding, as SoftHSM2 adds */

	memset(out, 0, padded);
	memcpy(out, der, (size_t)n);
	OPENSSL_free(der);
	PKCS8_PRIV_KEY_INFO_free(p8);
	return padded;
}

static void verify_sig(const uint8_t pub[65], const uint8_t nonce[32], const uint8_t *sig, size_t n,
		       int expect)
{
	EVP_PKEY *k = key_from_pub(pub);
	EVP_MD_CTX *md = EVP_MD_CTX_new();

	assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k), 1);
	assert_int_equal(EVP_DigestVerify(md, sig, n, nonce, 32), expect);
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(k);
}

static void test_import_kwp_ec(void **state)
{
	struct sim_se *se = se_in(NULL, NULL);
	uint8_t kek[32], spub[65], plain[256], wrapped[300], out[65], hpub[65], nonce[32], sig[80];
	EVP_PKEY *eph = station_kek(se, kek, spub), *dev = EVP_EC_gen("P-256");
	size_t pl = pkcs8_padded(dev, plain), wl = kwp_wrap(kek, plain, pl, wrapped), ol, sl;

	(void)state;
	pub_of(dev, hpub);
	/* a tampered wrap fails and leaves the slot empty */
	wrapped[5] ^= 1;
	assert_int_equal(sim_se_import(se, 1, WIRE_KEY_EC_P256, WIRE_WRAP_AES_KWP, spub, NULL, 0,
				       wrapped, wl, out, &ol), WIRE_ST_CRYPTO);
	assert_int_equal(sim_se_slot_kind(se, 1), 0);
	wrapped[5] ^= 1;
	assert_int_equal(sim_se_import(se, 1, WIRE_KEY_EC_P256, WIRE_WRAP_AES_KWP, spub, NULL, 0,
				       wrapped, wl, out, &ol), WIRE_ST_OK);
	assert_int_equal(ol, 65);
	assert_memory_equal(out, hpub, 65);
	assert_int_equal(sim_se_slot_mask(se), 0x2);
	/* no overwrite */
	assert_int_equal(sim_se_import(se, 1, WIRE_KEY_EC_P256, WIRE_WRAP_AES_KWP, spub, NULL, 0,
				       wrapped, wl, out, &ol), WIRE_ST_EXISTS);
	/* the imported key signs */
	for (int i = 0; i < 32; i++)
		nonce[i] = (uint8_t)i;
	assert_int_equal(sim_se_sign(se, 1, nonce, false, sig, &sl), WIRE_ST_OK);
	verify_sig(hpub, nonce, sig, sl, 1);
	assert_int_equal(sim_se_sign(se, 1, nonce, true, sig, &sl), WIRE_ST_OK);
	verify_sig(hpub, nonce, sig, sl, 0);
	EVP_PKEY_free(eph);
	EVP_PKEY_free(dev);
	sim_se_free(se);
}

static void test_import_gcm_psk(void **state)
{
	struct sim_se *se = se_in(NULL, NULL);
	uint8_t kek[32], spub[65], psk[32], iv[12] = { 9, 8, 7 }, wrapped[64], out[65];
	uint8_t zero[16] = { 0 }, mac[16], nonce[32] = { 1 }, sig[80];
	EVP_PKEY *eph = station_kek(se, kek, spub);
	size_t wl, ol, sl;

	(void)state;
	for (int i = 0; i < 32; i++)
		psk[i] = (uint8_t)(0xA0 + i);
	wl = gcm_seal(kek, iv, psk, 32, wrapped);
	assert_int_equal(sim_se_import(se, 2, WIRE_KEY_PSK, WIRE_WRAP_AES_GCM, spub, iv, 12,
				       wrapped, wl, out, &ol), WIRE_ST_OK);
	assert_int_equal(ol, 8);
	assert_int_equal(sim_cmac_aes256(psk, zero, 16, mac), IMP_OK);
	assert_memory_equal(out, mac, 8);
	assert_int_equal(sim_se_sign(se, 2, nonce, false, sig, &sl), WIRE_ST_OK);
	assert_int_equal(sl, 16);
	assert_int_equal(sim_cmac_aes256(psk, nonce, 32, mac), IMP_OK);
	assert_memory_equal(sig, mac, 16);
	assert_int_equal(sim_se_sign(se, 2, nonce, true, sig, &sl), WIRE_ST_OK);
	assert_memory_not_equal(sig, mac, 16);
	/* a PSK slot has no public key and no CSR */
	assert_false(sim_se_slot_pub(se, 2, out));
	/* KWP of a PSK too (32 bytes: no padding) */
	wl = kwp_wrap(kek, psk, 32, wrapped);
	assert_int_equal(sim_se_import(se, 3, WIRE_KEY_PSK, WIRE_WRAP_AES_KWP, spub, NULL, 0,
				       wrapped, wl, out, &ol), WIRE_ST_OK);
	assert_int_equal(ol, 8);
	assert_int_equal(sim_cmac_aes256(psk, zero, 16, mac), IMP_OK);
	assert_memory_equal(out, mac, 8);
	EVP_PKEY_free(eph);
	sim_se_free(se);
}

static void test_csr_verifies(void **state)
{
	struct sim_se *se = se_in(NULL, NULL);
	uint8_t pub[65], pub2[65], *der = NULL;
	const unsigned char *p;
	size_t dl;
	X509_REQ *req;
	EVP_PKEY *k;
	char cn[64];

	(void)state;
	assert_int_equal(sim_se_csr(se, 0, "/CN=x", &der, &dl), WIRE_ST_NO_KEY);
	assert_int_equal(sim_se_generate(se, 0, false, pub), WIRE_ST_OK);
	assert_int_equal(sim_se_generate(se, 0, false, pub2), WIRE_ST_EXISTS);
	assert_int_equal(sim_se_generate(se, 0, true, pub2), WIRE_ST_OK);
	assert_memory_equal(pub, pub2, 65);
	assert_int_equal(sim_se_csr(se, 0, "no-slash", &der, &dl), WIRE_ST_BAD_REQUEST);
	assert_int_equal(sim_se_csr(se, 0, "/O=Acme Corp/CN=ABC-000001", &der, &dl), WIRE_ST_OK);
	p = der;
	req = d2i_X509_REQ(NULL, &p, (long)dl);
	assert_non_null(req);
	k = X509_REQ_get0_pubkey(req);
	assert_non_null(k);
	assert_int_equal(X509_REQ_verify(req, k), 1);
	pub_of(k, pub2);
	assert_memory_equal(pub, pub2, 65);
	assert_int_equal(X509_NAME_get_text_by_NID(X509_REQ_get_subject_name(req), NID_commonName,
						   cn, sizeof(cn)), 10);
	assert_string_equal(cn, "ABC-000001");
	assert_int_equal(X509_NAME_get_text_by_NID(X509_REQ_get_subject_name(req),
						   NID_organizationName, cn, sizeof(cn)), 9);
	X509_REQ_free(req);
	free(der);
	sim_se_free(se);
}

static void test_persistence_and_lock(void **state)
{
	char *dir = make_dir();
	char se_dir[512], bd[512], path[600];
	struct sim_se *se;
	uint8_t tpub[65], tpub2[65], pub[65], pub2[65];
	const uint8_t *p;
	size_t n;
	struct stat st;

	(void)state;
	snprintf(se_dir, sizeof(se_dir), "%s/se", dir);
	snprintf(bd, sizeof(bd), "%s/backdoor", dir);
	se = se_in(se_dir, bd);
	sim_se_transport_pub(se, tpub);
	assert_int_equal(sim_se_generate(se, 0, false, pub), WIRE_ST_OK);
	assert_int_equal(sim_se_store_cert(se, 0, (const uint8_t *)"\x30\x03\x02\x01\x01", 5), WIRE_ST_OK);
	assert_int_equal(sim_se_store_identity(se, (const uint8_t *)"ABC-1", 5,
					       (const uint8_t *)"{\"a\":1}", 7), WIRE_ST_OK);
	assert_int_equal(sim_se_lock_slots(se), WIRE_ST_OK);
	assert_int_equal(sim_se_generate(se, 1, false, pub2), WIRE_ST_STATE);
	assert_int_equal(sim_se_store_cert(se, 1, (const uint8_t *)"x", 1), WIRE_ST_STATE);
	sim_se_free(se);
	snprintf(path, sizeof(path), "%s/slot0.pem", bd);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 077, 0);

	se = se_in(se_dir, NULL);
	sim_se_transport_pub(se, tpub2);
	assert_memory_equal(tpub, tpub2, 65);
	assert_true(sim_se_slot_pub(se, 0, pub2));
	assert_memory_equal(pub, pub2, 65);
	assert_true(sim_se_slots_locked(se));
	p = sim_se_serial(se, &n);
	assert_int_equal(n, 5);
	assert_memory_equal(p, "ABC-1", 5);
	p = sim_se_identity(se, &n);
	assert_int_equal(n, 7);
	p = sim_se_cert(se, 0, &n);
	assert_int_equal(n, 5);
	assert_int_equal(p[0], 0x30);
	sim_se_free(se);
	rm_dir(dir);
}

/* ---- agent handler ---- */

struct agent_fixture {
	struct sim_config cfg;
	struct sim_board b;
};

static int agent_setup(void **state)
{
	struct agent_fixture *fx = calloc(1, sizeof(*fx));
	struct sim_chip_opts co = { .seed = 5 };
	struct sim_se_opts so = { 0 };

	fx->b.cfg = &fx->cfg;
	fx->b.faults = &fx->cfg.faults;
	fx->b.chip = sim_chip_new(&co);
	fx->b.se = sim_se_new(&so);
	*state = fx;
	return fx->b.chip && fx->b.se ? 0 : -1;
}

static int agent_teardown(void **state)
{
	struct agent_fixture *fx = *state;

	sim_chip_free(fx->b.chip);
	sim_se_free(fx->b.se);
	free(fx);
	return 0;
}

static struct wire_frame *call(struct sim_board *b, uint8_t type, const void *pl, size_t n)
{
	static struct wire_frame req, resp;

	req.type = type;
	req.seq = 77;
	req.len = (uint16_t)n;
	if (n)
		memcpy(req.payload, pl, n);
	sim_agent_handle(b, &req, &resp);
	assert_int_equal(resp.type, type | 0x80);
	assert_int_equal(resp.seq, 77);
	assert_true(resp.len >= 1);
	return &resp;
}

static void lock_board(struct sim_chip *c)
{
	uint8_t key[4] = { 0xC7, 0xB0, 0x5E, 0xF0 }, cmd[4] = { 1, 0, 0, 0 };

	assert_int_equal(sim_chip_write(c, VB1_FUSEC_KEYR, key, 4), IMP_OK);
	assert_int_equal(sim_chip_write(c, VB1_FUSEC_CMD, cmd, 4), IMP_OK);
	assert_int_equal(sim_chip_reset(c), IMP_OK);
}

static void test_agent_commands(void **state)
{
	struct agent_fixture *fx = *state;
	struct sim_board *b = &fx->b;
	struct wire_frame *r;
	uint8_t req[64], nonce[32] = { 3 }, pub[65];

	r = call(b, WIRE_CMD_IDENTIFY, NULL, 0);
	assert_int_equal(r->len, 88);
	assert_int_equal(r->payload[0], WIRE_ST_OK);
	assert_memory_equal(r->payload + 1, sim_chip_uid(b->chip), 16);
	assert_int_equal(r->payload[17], WIRE_LC_OPEN);
	assert_int_equal(r->payload[22], 0); /* no slots */
	r = call(b, WIRE_CMD_IDENTIFY, "x", 1);
	assert_int_equal(r->payload[0], WIRE_ST_BAD_REQUEST);

	req[0] = 0;
	req[1] = 0;
	r = call(b, WIRE_CMD_GENERATE_KEY, req, 2);
	assert_int_equal(r->payload[0], WIRE_ST_OK);
	assert_int_equal(r->len, 66);
	memcpy(pub, r->payload + 1, 65);
	r = call(b, WIRE_CMD_GENERATE_KEY, req, 1);
	assert_int_equal(r->payload[0], WIRE_ST_BAD_REQUEST);

	/* GET_CSR */
	req[0] = 0;
	wire_put_u16(req + 1, 7);
	memcpy(req + 3, "/CN=abc", 7);
	r = call(b, WIRE_CMD_GET_CSR, req, 10);
	assert_int_equal(r->payload[0], WIRE_ST_OK);
	assert_int_equal(wire_get_u16(r->payload + 1), r->len - 3);

	/* STORE_IDENTITY then READ_IDENTITY */
	wire_put_u16(req, 3);
	memcpy(req + 2, "S-1", 3);
	wire_put_u16(req + 5, 2);
	memcpy(req + 7, "{}", 2);
	r = call(b, WIRE_CMD_STORE_IDENTITY, req, 9);
	assert_int_equal(r->payload[0], WIRE_ST_OK);
	req[0] = 0;
	r = call(b, WIRE_CMD_READ_IDENTITY, req, 1);
	assert_int_equal(r->payload[0], WIRE_ST_OK);
	assert_int_equal(r->len, 1 + 5 + 4 + 2 + 67 + 1);
	assert_memory_equal(r->payload + 3, "S-1", 3);
	assert_memory_equal(r->payload + 14, pub, 65);
	assert_int_equal(r->payload[79], WIRE_LC_OPEN);

	/* refuse fault */
	fx->cfg.faults.refuse[WIRE_CMD_ECHO] = 1;
	r = call(b, WIRE_CMD_ECHO, "hi", 2);
	assert_int_equal(r->payload[0], WIRE_ST_REFUSED);
	fx->cfg.faults.refuse[WIRE_CMD_ECHO] = 0;
	r = call(b, WIRE_CMD_ECHO, "hi", 2);
	assert_int_equal(r->len, 3);

	/* LOCK bit1 -> PERSONALISED */
	req[0] = 2;
	r = call(b, WIRE_CMD_LOCK, req, 1);
	assert_int_equal(r->payload[0], WIRE_ST_OK);
	assert_int_equal(sim_chip_lifecycle(b->chip), WIRE_LC_PERSONALISED);
	req[0] = 0x80;
	r = call(b, WIRE_CMD_LOCK, req, 1);
	assert_int_equal(r->payload[0], WIRE_ST_BAD_REQUEST);

	/* debug-lock fuse + reset: LOCKED, personalisation refused, the rest works */
	lock_board(b->chip);
	r = call(b, WIRE_CMD_IDENTIFY, NULL, 0);
	assert_int_equal(r->payload[17], WIRE_LC_LOCKED);
	assert_int_equal(r->payload[21], WIRE_FUSE_DEBUG_LOCK);
	assert_int_equal(r->payload[22], 1);
	req[0] = 1;
	req[1] = 0;
	r = call(b, WIRE_CMD_GENERATE_KEY, req, 2);
	assert_int_equal(r->payload[0], WIRE_ST_STATE);
	req[0] = 0;
	memcpy(req + 1, nonce, 32);
	r = call(b, WIRE_CMD_SIGN_CHALLENGE, req, 33);
	assert_int_equal(r->payload[0], WIRE_ST_OK);
	verify_sig(pub, nonce, r->payload + 3, wire_get_u16(r->payload + 1), 1);
	req[0] = 0;
	r = call(b, WIRE_CMD_READ_IDENTITY, req, 1);
	assert_int_equal(r->payload[0], WIRE_ST_OK);
	assert_int_equal(r->payload[r->len - 1], WIRE_LC_LOCKED);
	r = call(b, WIRE_CMD_ECHO, "ok", 2);
	assert_int_equal(r->payload[0], WIRE_ST_OK);
	wire_put_u16(req, 1);
	req[2] = 'x';
	wire_put_u16(req + 3, 0);
	r = call(b, WIRE_CMD_STORE_IDENTITY, req, 5);
	assert_int_equal(r->payload[0], WIRE_ST_STATE);
	r = call(b, 0x42, NULL, 0);
	assert_int_equal(r->payload[0], WIRE_ST_UNKNOWN_CMD);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_import_kwp_ec),
		cmocka_unit_test(test_import_gcm_psk),
		cmocka_unit_test(test_csr_verifies),
		cmocka_unit_test(test_persistence_and_lock),
		cmocka_unit_test_setup_teardown(test_agent_commands, agent_setup, agent_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
