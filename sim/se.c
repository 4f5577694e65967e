/*
 * The secure-element model (sim/se.h), on OpenSSL 3.
 *
 * PERSISTED layout under the SE directory (docs/VBOARD.md), each file
 * written atomically (temp + fsync + rename), mode 0600:
 *   transport.key  PKCS#8 DER of the transport key pair
 *   slotK.key      "VB1K" version:u8(1) kind:u8 len:u16be key[len]
 *                  (EC: PKCS#8 DER; PSK: 32 raw bytes)
 *   slotK.crt      certificate DER
 *   identity.bin   serial_len:u16be serial identity_len:u32be identity
 *   locked         present once the slots are locked (LOCK bit0)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "wire/agent_proto.h"
#include "wire/frame.h"
#include "imprint/log.h"
#include "imprint/util.h"
#include "sim/chip.h"
#include "sim/se.h"

#define SLOT_MAGIC "VB1K"     /* persisted */
#define SLOT_VERSION 1u       /* persisted */
#define PSK_LEN 32u

struct se_slot {
	int kind;             /* 0 empty, WIRE_KEY_EC_P256, WIRE_KEY_PSK */
	EVP_PKEY *ec;
	uint8_t psk[PSK_LEN];
	uint8_t pub[65];
	uint8_t *cert;
	size_t cert_len;
};

struct sim_se {
	char *dir;
	char *backdoor_dir;
	double latency;
	uint64_t modelled_ns;  /* sum of the modelled delays (atomic) */
	EVP_PKEY *transport;
	uint8_t transport_pub[65];
	struct se_slot slots[SIM_SE_SLOTS];
	bool locked;
	uint8_t *serial;
	size_t serial_len;
	uint8_t *identity;
	size_t identity_len;
};

static void charge_ms(const struct sim_se *se, double ms)
{
	if (se->latency > 0) {
		__atomic_add_fetch(&((struct sim_se *)se)->modelled_ns,
				   (uint64_t)(ms * 1e6 * se->latency), __ATOMIC_RELAXED);
		imp_sleep_us((uint64_t)(ms * 1000.0 * se->latency));
	}
}

uint64_t sim_se_modelled_ns(const struct sim_se *se)
{
	return __atomic_load_n(&se->modelled_ns, __ATOMIC_RELAXED);
}

static void log_ossl(const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256];

	ERR_error_string_n(e, buf, sizeof(buf));
	IMP_DEBUG("se: %s failed: %s", what, buf);
	ERR_clear_error();
}

static bool pub_of(EVP_PKEY *k, uint8_t pub[65])
{
	size_t n = 0;

	if (EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pub, 65, &n) != 1 ||
	    n != 65 || pub[0] != 0x04) {
		log_ossl("public key export");
		return false;
	}
	return true;
}

static bool is_p256(EVP_PKEY *k)
{
	char name[64];
	size_t n = 0;

	if (EVP_PKEY_get_base_id(k) != EVP_PKEY_EC)
		return false;
	if (EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof(name), &n) != 1)
		return false;
	return strcmp(name, "prime256v1") == 0 || strcmp(name, "P-256") == 0;
}

/* PKCS#8 DER (trailing bytes ignored) -> key. */
static EVP_PKEY *key_from_pkcs8(const uint8_t *der, size_t n)
{
	const unsigned char *p = der;
	PKCS8_PRIV_KEY_INFO *p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)n);
	EVP_PKEY *k = NULL;

	if (!p8) {
		log_ossl("PKCS#8 parse");
		return NULL;
	}
	k = EVP_PKCS82PKEY(p8);
	PKCS8_PRIV_KEY_INFO_free(p8);
	if (!k)
		log_ossl("PKCS#8 key");
	return k;
}

/* key -> PKCS#8 DER, malloc'ed (OPENSSL_malloc); caller wipes and frees. */
static int key_to_pkcs8(EVP_PKEY *k, uint8_t **der)
{
	PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(k);
	int n;

	*der = NULL;
	if (!p8)
		return -1;
	n = i2d_PKCS8_PRIV_KEY_INFO(p8, der);
	PKCS8_PRIV_KEY_INFO_free(p8);
	return n;
}

static int path_of(const struct sim_se *se, char *out, size_t cap, const char *fmt, unsigned k)
{
	char name[64];

	snprintf(name, sizeof(name), fmt, k);
	return (size_t)snprintf(out, cap, "%s/%s", se->dir, name) < cap ? 0 : -1;
}

/*
 * One persisted storage write: the power-cut point, then an atomic file.
 * The transport key is made when the board is first created, like the chip
 * image, and is not a counted write (so --power-cut counts the same on a
 * fresh and on an existing state directory).
 */
static int persist(const struct sim_se *se, const char *fmt, unsigned k, const void *data, size_t n)
{
	char path[4096];

	if (!se->dir)
		return WIRE_ST_OK;
	if (path_of(se, path, sizeof(path), fmt, k) != 0)
		return WIRE_ST_STORAGE;
	if (strcmp(fmt, "transport.key") != 0)
		sim_nv_write_point();
	return imp_write_file_atomic(path, data, n, 0600) == IMP_OK ? WIRE_ST_OK : WIRE_ST_STORAGE;
}

static void backdoor_write(const struct sim_se *se, unsigned k)
{
	const struct se_slot *s = &se->slots[k];
	char path[4096];
	FILE *f;

	if (!se->backdoor_dir)
		return;
	if (imp_mkdir_p(se->backdoor_dir, 0700) != IMP_OK)
		return;
	snprintf(path, sizeof(path), "%s/slot%u.%s", se->backdoor_dir, k,
		 s->kind == WIRE_KEY_PSK ? "psk" : "pem");
	unlink(path);
	f = fopen(path, "wx");
	if (!f) {
		IMP_WARN("backdoor: cannot write %s: %s", path, strerror(errno));
		return;
	}
	fchmod(fileno(f), 0600);
	if (s->kind == WIRE_KEY_PSK) {
		char hex[2 * PSK_LEN + 1];

		imp_hex_encode(s->psk, PSK_LEN, hex);
		fprintf(f, "%s\n", hex);
		imp_wipe(hex, sizeof(hex));
	} else {
		PEM_write_PrivateKey(f, s->ec, NULL, NULL, 0, NULL, NULL);
	}
	fclose(f);
}

static void slot_clear(struct se_slot *s)
{
	EVP_PKEY_free(s->ec);
	s->ec = NULL;
	imp_wipe(s->psk, sizeof(s->psk));
	s->kind = 0;
	memset(s->pub, 0, sizeof(s->pub));
}

/* Persist the key of slot k; on failure the slot is emptied again. */
static int slot_commit(struct sim_se *se, unsigned k)
{
	struct se_slot *s = &se->slots[k];
	uint8_t *rec = NULL, *der = NULL;
	int dlen, st;

	if (s->kind == WIRE_KEY_PSK) {
		der = OPENSSL_malloc(PSK_LEN);
		if (!der)
			return WIRE_ST_STORAGE;
		memcpy(der, s->psk, PSK_LEN);
		dlen = PSK_LEN;
	} else {
		dlen = key_to_pkcs8(s->ec, &der);
		if (dlen <= 0)
			return WIRE_ST_STORAGE;
	}
	rec = malloc(8 + (size_t)dlen);
	if (!rec) {
		st = WIRE_ST_STORAGE;
		goto cleanup;
	}
	memcpy(rec, SLOT_MAGIC, 4);
	rec[4] = SLOT_VERSION;
	rec[5] = (uint8_t)s->kind;
	rec[6] = (uint8_t)(dlen >> 8);
	rec[7] = (uint8_t)dlen;
	memcpy(rec + 8, der, (size_t)dlen);
	st = persist(se, "slot%u.key", k, rec, 8 + (size_t)dlen);
	imp_wipe(rec, 8 + (size_t)dlen);
	if (st == WIRE_ST_OK)
		backdoor_write(se, k);
cleanup:
	free(rec);
	if (der) {
		OPENSSL_cleanse(der, (size_t)dlen);
		OPENSSL_free(der);
	}
	if (st != WIRE_ST_OK)
		slot_clear(s);
	return st;
}

static bool load_file(const struct sim_se *se, const char *fmt, unsigned k, uint8_t **data, size_t *n)
{
	char path[4096];

	if (path_of(se, path, sizeof(path), fmt, k) != 0)
		return false;
	return imp_read_file(path, data, n) == IMP_OK;
}

static imp_err load_slot(struct sim_se *se, unsigned k)
{
	struct se_slot *s = &se->slots[k];
	uint8_t *d = NULL;
	size_t n = 0;
	imp_err rc = IMP_OK;

	if (load_file(se, "slot%u.crt", k, &d, &n)) {
		s->cert = d;
		s->cert_len = n;
	}
	if (!load_file(se, "slot%u.key", k, &d, &n))
		return IMP_OK;
	if (n < 8 || memcmp(d, SLOT_MAGIC, 4) != 0 || d[4] != SLOT_VERSION ||
	    (size_t)((d[6] << 8) | d[7]) != n - 8) {
		rc = IMP_ERR_IO;
		goto cleanup;
	}
	if (d[5] == WIRE_KEY_PSK && n - 8 == PSK_LEN) {
		memcpy(s->psk, d + 8, PSK_LEN);
		s->kind = WIRE_KEY_PSK;
	} else if (d[5] == WIRE_KEY_EC_P256) {
		s->ec = key_from_pkcs8(d + 8, n - 8);
		if (!s->ec || !pub_of(s->ec, s->pub)) {
			rc = IMP_ERR_IO;
			goto cleanup;
		}
		s->kind = WIRE_KEY_EC_P256;
	} else {
		rc = IMP_ERR_IO;
	}
cleanup:
	if (rc != IMP_OK)
		IMP_ERROR("se: slot %u storage is corrupt", k);
	imp_wipe(d, n);
	free(d);
	return rc;
}

static imp_err load_identity(struct sim_se *se)
{
	uint8_t *d = NULL;
	size_t n = 0, sl, il;

	if (!load_file(se, "identity.bin", 0, &d, &n))
		return IMP_OK;
	sl = n >= 2 ? wire_get_u16(d) : 0;
	il = n >= 6 + sl ? wire_get_u32(d + 2 + sl) : 0;
	if (n < 6 + sl || il != n - 6 - sl) {
		free(d);
		IMP_ERROR("se: identity storage is corrupt");
		return IMP_ERR_IO;
	}
	se->serial = malloc(sl + 1);
	se->identity = malloc(il + 1);
	if (!se->serial || !se->identity) {
		free(d);
		return IMP_ERR_NOMEM;
	}
	memcpy(se->serial, d + 2, sl);
	se->serial_len = sl;
	memcpy(se->identity, d + 6 + sl, il);
	se->identity_len = il;
	free(d);
	return IMP_OK;
}

struct sim_se *sim_se_new(const struct sim_se_opts *opts)
{
	struct sim_se *se = calloc(1, sizeof(*se));
	uint8_t *d = NULL;
	size_t n = 0;

	if (!se)
		return NULL;
	se->latency = opts->latency_scale;
	if (opts->dir) {
		se->dir = strdup(opts->dir);
		if (!se->dir || imp_mkdir_p(se->dir, 0700) != IMP_OK)
			goto fail;
	}
	if (opts->backdoor_dir) {
		se->backdoor_dir = strdup(opts->backdoor_dir);
		if (!se->backdoor_dir)
			goto fail;
	}
	if (se->dir && load_file(se, "transport.key", 0, &d, &n)) {
		se->transport = key_from_pkcs8(d, n);
		imp_wipe(d, n);
		free(d);
		if (!se->transport) {
			IMP_ERROR("se: transport key storage is corrupt");
			goto fail;
		}
	} else {
		uint8_t *der = NULL;
		int dl;

		se->transport = EVP_EC_gen("P-256");
		if (!se->transport)
			goto fail;
		dl = key_to_pkcs8(se->transport, &der);
		if (dl <= 0 || persist(se, "transport.key", 0, der, (size_t)dl) != WIRE_ST_OK) {
			OPENSSL_clear_free(der, dl > 0 ? (size_t)dl : 0);
			goto fail;
		}
		OPENSSL_clear_free(der, (size_t)dl);
	}
	if (!pub_of(se->transport, se->transport_pub))
		goto fail;
	if (se->dir) {
		struct stat st;
		char path[4096];

		for (unsigned k = 0; k < SIM_SE_SLOTS; k++)
			if (load_slot(se, k) != IMP_OK)
				goto fail;
		if (load_identity(se) != IMP_OK)
			goto fail;
		if (path_of(se, path, sizeof(path), "locked", 0) == 0 && stat(path, &st) == 0)
			se->locked = true;
	}
	return se;
fail:
	IMP_ERROR("cannot create the secure element");
	sim_se_free(se);
	return NULL;
}

void sim_se_free(struct sim_se *se)
{
	if (!se)
		return;
	for (unsigned k = 0; k < SIM_SE_SLOTS; k++) {
		slot_clear(&se->slots[k]);
		free(se->slots[k].cert);
	}
	EVP_PKEY_free(se->transport);
	free(se->serial);
	free(se->identity);
	free(se->dir);
	free(se->backdoor_dir);
	free(se);
}

void sim_se_transport_pub(const struct sim_se *se, uint8_t pub[65])
{
	memcpy(pub, se->transport_pub, 65);
}

uint8_t sim_se_slot_mask(const struct sim_se *se)
{
	uint8_t m = 0;

	for (unsigned k = 0; k < SIM_SE_SLOTS; k++)
		if (se->slots[k].kind)
			m |= (uint8_t)(1u << k);
	return m;
}

int sim_se_slot_kind(const struct sim_se *se, unsigned slot)
{
	if (slot >= SIM_SE_SLOTS)
		return -1;
	return se->slots[slot].kind;
}

bool sim_se_slots_locked(const struct sim_se *se)
{
	return se->locked;
}

bool sim_se_slot_pub(const struct sim_se *se, unsigned slot, uint8_t pub[65])
{
	if (slot >= SIM_SE_SLOTS || se->slots[slot].kind != WIRE_KEY_EC_P256)
		return false;
	memcpy(pub, se->slots[slot].pub, 65);
	return true;
}

int sim_se_generate(struct sim_se *se, unsigned slot, bool return_existing, uint8_t pub[65])
{
	struct se_slot *s;
	int st;

	if (slot >= SIM_SE_SLOTS)
		return WIRE_ST_BAD_REQUEST;
	s = &se->slots[slot];
	if (s->kind) {
		if (return_existing && s->kind == WIRE_KEY_EC_P256) {
			memcpy(pub, s->pub, 65);
			return WIRE_ST_OK;
		}
		return WIRE_ST_EXISTS;
	}
	if (se->locked)
		return WIRE_ST_STATE;
	charge_ms(se, SIM_LAT_SE_KEYGEN_MS);
	s->ec = EVP_EC_gen("P-256");
	if (!s->ec || !pub_of(s->ec, s->pub)) {
		slot_clear(s);
		return WIRE_ST_CRYPTO;
	}
	s->kind = WIRE_KEY_EC_P256;
	st = slot_commit(se, slot);
	if (st == WIRE_ST_OK)
		memcpy(pub, s->pub, 65);
	return st;
}

/* "/O=Acme/CN=X" -> X509_NAME; backslash escapes the next character. */
static X509_NAME *parse_subject(const char *subj)
{
	X509_NAME *name = X509_NAME_new();
	size_t len = strlen(subj);
	char *buf = malloc(len + 1);
	size_t i = 0;
	int entries = 0;

	if (!name || !buf || subj[0] != '/')
		goto fail;
	i = 1;
	while (i < len) {
		size_t o = 0;
		char *eq;

		while (i < len && subj[i] != '/') {
			if (subj[i] == '\\' && i + 1 < len)
				i++;
			buf[o++] = subj[i++];
		}
		i++;
		buf[o] = '\0';
		if (o == 0)
			continue;
		eq = strchr(buf, '=');
		if (!eq || eq == buf)
			goto fail;
		*eq = '\0';
		if (!X509_NAME_add_entry_by_txt(name, buf, MBSTRING_UTF8,
						(const unsigned char *)eq + 1, -1, -1, 0))
			goto fail;
		entries++;
	}
	if (entries == 0)
		goto fail;
	free(buf);
	return name;
fail:
	ERR_clear_error();
	free(buf);
	X509_NAME_free(name);
	return NULL;
}

int sim_se_csr(struct sim_se *se, unsigned slot, const char *subject, uint8_t **der, size_t *der_len)
{
	X509_REQ *req = NULL;
	X509_NAME *name = NULL;
	unsigned char *out = NULL;
	int n, st = WIRE_ST_CRYPTO;

	*der = NULL;
	*der_len = 0;
	if (slot >= SIM_SE_SLOTS)
		return WIRE_ST_BAD_REQUEST;
	if (se->slots[slot].kind != WIRE_KEY_EC_P256)
		return WIRE_ST_NO_KEY;
	name = parse_subject(subject);
	if (!name)
		return WIRE_ST_BAD_REQUEST;
	charge_ms(se, SIM_LAT_SE_SIGN_MS);
	req = X509_REQ_new();
	if (!req || !X509_REQ_set_version(req, 0) || !X509_REQ_set_subject_name(req, name) ||
	    !X509_REQ_set_pubkey(req, se->slots[slot].ec) ||
	    X509_REQ_sign(req, se->slots[slot].ec, EVP_sha256()) <= 0) {
		log_ossl("csr");
		goto cleanup;
	}
	n = i2d_X509_REQ(req, &out);
	if (n <= 0)
		goto cleanup;
	*der = malloc((size_t)n);
	if (!*der) {
		st = WIRE_ST_STORAGE;
		goto cleanup;
	}
	memcpy(*der, out, (size_t)n);
	*der_len = (size_t)n;
	st = WIRE_ST_OK;
cleanup:
	OPENSSL_free(out);
	X509_REQ_free(req);
	X509_NAME_free(name);
	return st;
}

static EVP_PKEY *pub_to_key(const uint8_t pub[65])
{
	OSSL_PARAM params[3];
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	EVP_PKEY *k = NULL;
	char group[] = "prime256v1";

	if (!ctx)
		return NULL;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)pub, 65);
	params[2] = OSSL_PARAM_construct_end();
	if (EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_PUBLIC_KEY, params) != 1) {
		log_ossl("station public key");
		k = NULL;
	}
	EVP_PKEY_CTX_free(ctx);
	return k;
}

static bool ecdh(EVP_PKEY *mine, const uint8_t peer_pub[65], uint8_t secret[32])
{
	EVP_PKEY *peer = pub_to_key(peer_pub);
	EVP_PKEY_CTX *ctx = NULL;
	size_t n = 32;
	bool ok = false;

	if (!peer)
		return false;
	ctx = EVP_PKEY_CTX_new(mine, NULL);
	if (ctx && EVP_PKEY_derive_init(ctx) == 1 && EVP_PKEY_derive_set_peer(ctx, peer) == 1 &&
	    EVP_PKEY_derive(ctx, secret, &n) == 1 && n == 32)
		ok = true;
	else
		log_ossl("ecdh");
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(peer);
	return ok;
}

int sim_se_transport_ecdh(struct sim_se *se, const uint8_t peer_pub[65], uint8_t z[32])
{
	charge_ms(se, SIM_LAT_SE_ECDH_MS);
	return ecdh(se->transport, peer_pub, z) ? WIRE_ST_OK : WIRE_ST_CRYPTO;
}

/* Unwrap into out (capacity wrapped_len); returns the plaintext length or -1. */
static int unwrap(const uint8_t kek[32], unsigned alg, const uint8_t *iv, size_t iv_len,
		  const uint8_t *in, size_t n, uint8_t *out)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int l1 = 0, l2 = 0, ret = -1;

	if (!ctx)
		return -1;
	if (alg == WIRE_WRAP_AES_KWP) {
		if (iv_len != 0 || n < 16 || n % 8)
			goto cleanup;
		EVP_CIPHER_CTX_set_flags(ctx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
		if (EVP_DecryptInit_ex(ctx, EVP_aes_256_wrap_pad(), NULL, kek, NULL) != 1 ||
		    EVP_DecryptUpdate(ctx, out, &l1, in, (int)n) != 1 ||
		    EVP_DecryptFinal_ex(ctx, out + l1, &l2) != 1)
			goto cleanup;
	} else if (alg == WIRE_WRAP_AES_GCM) {
		if (iv_len != 12 || n < 16)
			goto cleanup;
		if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
		    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) != 1 ||
		    EVP_DecryptInit_ex(ctx, NULL, NULL, kek, iv) != 1 ||
		    EVP_DecryptUpdate(ctx, out, &l1, in, (int)(n - 16)) != 1 ||
		    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, (void *)(in + n - 16)) != 1 ||
		    EVP_DecryptFinal_ex(ctx, out + l1, &l2) != 1)
			goto cleanup;
	} else {
		goto cleanup;
	}
	ret = l1 + l2;
cleanup:
	if (ret < 0)
		log_ossl("unwrap");
	EVP_CIPHER_CTX_free(ctx);
	return ret;
}

imp_err sim_cmac_aes256(const uint8_t key[32], const uint8_t *msg, size_t n, uint8_t mac[16])
{
	EVP_MAC *m = EVP_MAC_fetch(NULL, "CMAC", NULL);
	EVP_MAC_CTX *ctx = NULL;
	OSSL_PARAM params[2];
	char cipher[] = "AES-256-CBC";
	size_t out = 0;
	imp_err rc = IMP_ERR_CRYPTO;

	if (!m)
		return rc;
	ctx = EVP_MAC_CTX_new(m);
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, cipher, 0);
	params[1] = OSSL_PARAM_construct_end();
	if (ctx && EVP_MAC_init(ctx, key, 32, params) == 1 && EVP_MAC_update(ctx, msg, n) == 1 &&
	    EVP_MAC_final(ctx, mac, &out, 16) == 1 && out == 16)
		rc = IMP_OK;
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(m);
	return rc;
}

int sim_se_import(struct sim_se *se, unsigned slot, unsigned kind, unsigned alg,
		  const uint8_t station_pub[65], const uint8_t *iv, size_t iv_len,
		  const uint8_t *wrapped, size_t wrapped_len, uint8_t *out, size_t *out_len)
{
	struct se_slot *s;
	uint8_t kek[32];
	uint8_t *plain = NULL;
	int pl, st = WIRE_ST_CRYPTO;

	*out_len = 0;
	if (slot >= SIM_SE_SLOTS || (kind != WIRE_KEY_EC_P256 && kind != WIRE_KEY_PSK) ||
	    (alg != WIRE_WRAP_AES_KWP && alg != WIRE_WRAP_AES_GCM) || station_pub[0] != 0x04)
		return WIRE_ST_BAD_REQUEST;
	s = &se->slots[slot];
	if (se->locked)
		return WIRE_ST_STATE;
	if (s->kind)
		return WIRE_ST_EXISTS;
	charge_ms(se, SIM_LAT_SE_ECDH_MS);
	if (!ecdh(se->transport, station_pub, kek))
		return WIRE_ST_CRYPTO;
	plain = malloc(wrapped_len + 16);
	if (!plain) {
		st = WIRE_ST_STORAGE;
		goto cleanup;
	}
	pl = unwrap(kek, alg, iv, iv_len, wrapped, wrapped_len, plain);
	if (pl < 0)
		goto cleanup;
	if (kind == WIRE_KEY_PSK) {
		if (pl != (int)PSK_LEN)
			goto cleanup;
		memcpy(s->psk, plain, PSK_LEN);
		s->kind = WIRE_KEY_PSK;
	} else {
		s->ec = key_from_pkcs8(plain, (size_t)pl);
		if (!s->ec || !is_p256(s->ec) || !pub_of(s->ec, s->pub)) {
			slot_clear(s);
			goto cleanup;
		}
		s->kind = WIRE_KEY_EC_P256;
	}
	st = slot_commit(se, slot);
	if (st != WIRE_ST_OK)
		goto cleanup;
	if (kind == WIRE_KEY_PSK) {
		uint8_t zero[16] = { 0 }, mac[16];

		if (sim_cmac_aes256(s->psk, zero, 16, mac) != IMP_OK) {
			st = WIRE_ST_CRYPTO;
			goto cleanup;
		}
		memcpy(out, mac, 8);
		*out_len = 8;
	} else {
		memcpy(out, s->pub, 65);
		*out_len = 65;
	}
cleanup:
	imp_wipe(kek, sizeof(kek));
	if (plain) {
		imp_wipe(plain, wrapped_len + 16);
		free(plain);
	}
	return st;
}

int sim_se_store_cert(struct sim_se *se, unsigned slot, const uint8_t *der, size_t len)
{
	uint8_t *copy;
	int st;

	if (slot >= SIM_SE_SLOTS || len == 0)
		return WIRE_ST_BAD_REQUEST;
	if (se->locked)
		return WIRE_ST_STATE;
	copy = malloc(len);
	if (!copy)
		return WIRE_ST_STORAGE;
	memcpy(copy, der, len);
	st = persist(se, "slot%u.crt", slot, der, len);
	if (st != WIRE_ST_OK) {
		free(copy);
		return st;
	}
	free(se->slots[slot].cert);
	se->slots[slot].cert = copy;
	se->slots[slot].cert_len = len;
	return WIRE_ST_OK;
}

int sim_se_store_identity(struct sim_se *se, const uint8_t *serial, size_t serial_len,
			  const uint8_t *blob, size_t blob_len)
{
	size_t n = 6 + serial_len + blob_len;
	uint8_t *rec = malloc(n);
	uint8_t *s = malloc(serial_len + 1), *b = malloc(blob_len + 1);
	int st = WIRE_ST_STORAGE;

	if (!rec || !s || !b || serial_len > 0xFFFF)
		goto cleanup;
	wire_put_u16(rec, (uint16_t)serial_len);
	memcpy(rec + 2, serial, serial_len);
	wire_put_u32(rec + 2 + serial_len, (uint32_t)blob_len);
	memcpy(rec + 6 + serial_len, blob, blob_len);
	st = persist(se, "identity.bin", 0, rec, n);
	if (st != WIRE_ST_OK)
		goto cleanup;
	memcpy(s, serial, serial_len);
	memcpy(b, blob, blob_len);
	free(se->serial);
	free(se->identity);
	se->serial = s;
	se->serial_len = serial_len;
	se->identity = b;
	se->identity_len = blob_len;
	s = b = NULL;
cleanup:
	free(rec);
	free(s);
	free(b);
	return st;
}

int sim_se_sign(struct sim_se *se, unsigned slot, const uint8_t nonce[32], bool wrong_key,
		uint8_t *sig, size_t *sig_len)
{
	struct se_slot *s;
	EVP_PKEY *k, *tmp = NULL;
	EVP_MD_CTX *md = NULL;
	size_t n = 80;
	int st = WIRE_ST_CRYPTO;

	*sig_len = 0;
	if (slot >= SIM_SE_SLOTS)
		return WIRE_ST_BAD_REQUEST;
	s = &se->slots[slot];
	if (!s->kind)
		return WIRE_ST_NO_KEY;
	charge_ms(se, SIM_LAT_SE_SIGN_MS);
	if (s->kind == WIRE_KEY_PSK) {
		if (sim_cmac_aes256(s->psk, nonce, 32, sig) != IMP_OK)
			return WIRE_ST_CRYPTO;
		if (wrong_key)
			sig[0] ^= 0x01;
		*sig_len = 16;
		return WIRE_ST_OK;
	}
	k = s->ec;
	if (wrong_key) {
		tmp = EVP_EC_gen("P-256");
		if (!tmp)
			return WIRE_ST_CRYPTO;
		k = tmp;
	}
	md = EVP_MD_CTX_new();
	if (md && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k) == 1 &&
	    EVP_DigestSign(md, sig, &n, nonce, 32) == 1) {
		*sig_len = n;
		st = WIRE_ST_OK;
	} else {
		log_ossl("sign");
	}
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(tmp);
	return st;
}

const uint8_t *sim_se_serial(const struct sim_se *se, size_t *len)
{
	*len = se->serial_len;
	return se->serial;
}

const uint8_t *sim_se_identity(const struct sim_se *se, size_t *len)
{
	*len = se->identity_len;
	return se->identity;
}

const uint8_t *sim_se_cert(const struct sim_se *se, unsigned slot, size_t *len)
{
	if (slot >= SIM_SE_SLOTS) {
		*len = 0;
		return NULL;
	}
	*len = se->slots[slot].cert_len;
	return se->slots[slot].cert;
}

int sim_se_lock_slots(struct sim_se *se)
{
	int st;

	if (se->locked)
		return WIRE_ST_OK;
	st = persist(se, "locked", 0, "1\n", 2);
	if (st == WIRE_ST_OK)
		se->locked = true;
	return st;
}
