/*
 * Pure codecs of the PC/SC applet protocol (board/pcsc.h): no I/O. Every
 * length read from a response is checked against what remains.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "board/pcsc.h"
#include "imprint/util.h"

const uint8_t board_pcsc_aid[BOARD_PCSC_AID_LEN] = { 0xF0, 'I', 'M', 'P', 'R',
						     'I',  'N', 'T', 0x01 };

static const char sm_label[] = "imprint-pcsc-sm-v1"; /* persisted */

imp_err board_apdu_encode(uint8_t cla, uint8_t ins, uint8_t p1, uint8_t p2, const uint8_t *data,
			  size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
	size_t need = 4 + (len ? 1 + len : 0) + 1;

	*out_len = 0;
	if (len > BOARD_APDU_SHORT_MAX || cap < need)
		return IMP_ERR_USAGE;
	out[0] = cla;
	out[1] = ins;
	out[2] = p1;
	out[3] = p2;
	if (len) {
		out[4] = (uint8_t)len;
		memcpy(out + 5, data, len);
	}
	out[need - 1] = 0x00; /* Le: up to 256 */
	*out_len = need;
	return IMP_OK;
}

imp_err board_apdu_split(const uint8_t *buf, size_t n, const uint8_t **data, size_t *data_len,
			 uint16_t *sw)
{
	if (n < 2 || n > BOARD_APDU_DATA_MAX + 2)
		return IMP_ERR_PROTOCOL;
	*sw = (uint16_t)((buf[n - 2] << 8) | buf[n - 1]);
	*data = buf;
	*data_len = n - 2;
	return IMP_OK;
}

const char *board_sw_str(uint16_t sw)
{
	if ((sw & 0xFF00u) == 0x6100u)
		return "MORE DATA";
	switch (sw) {
	case BOARD_SW_OK: return "OK";
	case BOARD_SW_WRONG_LENGTH: return "WRONG LENGTH";
	case BOARD_SW_SECURITY: return "SECURITY STATUS NOT SATISFIED";
	case BOARD_SW_CONDITIONS: return "CONDITIONS NOT SATISFIED";
	case BOARD_SW_SM_INCORRECT: return "SECURE MESSAGING DATA INCORRECT";
	case BOARD_SW_WRONG_DATA: return "WRONG DATA";
	case BOARD_SW_NOT_FOUND: return "APPLET NOT FOUND";
	case BOARD_SW_NO_SPACE: return "NOT ENOUGH MEMORY";
	case BOARD_SW_WRONG_P1P2: return "WRONG P1 P2";
	case BOARD_SW_NO_KEY: return "REFERENCED DATA NOT FOUND";
	case BOARD_SW_EXISTS: return "DATA ALREADY EXISTS";
	case BOARD_SW_INS: return "INS NOT SUPPORTED";
	case BOARD_SW_CLA: return "CLA NOT SUPPORTED";
	}
	return "UNKNOWN STATUS";
}

imp_err board_sw_err(uint16_t sw)
{
	switch (sw) {
	case BOARD_SW_OK:
		return IMP_OK;
	case BOARD_SW_CONDITIONS:
	case BOARD_SW_WRONG_DATA:
	case BOARD_SW_NO_SPACE:
	case BOARD_SW_NO_KEY:
	case BOARD_SW_EXISTS:
		return IMP_ERR_BOARD;
	case BOARD_SW_NOT_FOUND:
		return IMP_ERR_NOT_FOUND;
	case BOARD_SW_SECURITY:
	case BOARD_SW_SM_INCORRECT:
		return IMP_ERR_VERIFY;
	}
	return IMP_ERR_PROTOCOL;
}

/* AES-256-CMAC, full 16 bytes. */
static imp_err cmac(const uint8_t key[32], const uint8_t *const parts[], const size_t lens[],
		    size_t nparts, uint8_t mac[16])
{
	EVP_MAC *m = EVP_MAC_fetch(NULL, "CMAC", NULL);
	EVP_MAC_CTX *c = m ? EVP_MAC_CTX_new(m) : NULL;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, (char *)"AES-256-CBC", 0),
		OSSL_PARAM_construct_end(),
	};
	size_t got = 0;
	imp_err rc = IMP_ERR_CRYPTO;

	if (!c || EVP_MAC_init(c, key, 32, params) != 1)
		goto cleanup;
	for (size_t i = 0; i < nparts; i++)
		if (lens[i] && EVP_MAC_update(c, parts[i], lens[i]) != 1)
			goto cleanup;
	if (EVP_MAC_final(c, mac, &got, 16) == 1 && got == 16)
		rc = IMP_OK;
cleanup:
	EVP_MAC_CTX_free(c);
	EVP_MAC_free(m);
	return rc;
}

imp_err board_sm_derive(struct board_sm *sm, const uint8_t z[32],
			const uint8_t host_nonce[BOARD_SM_NONCE_LEN],
			const uint8_t card_nonce[BOARD_SM_NONCE_LEN], uint8_t card_auth[BOARD_SM_MAC_LEN])
{
	static const char auth_label[] = "card-auth";
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned int n = 0;
	uint8_t full[16];
	imp_err rc = IMP_ERR_CRYPTO;

	memset(sm, 0, sizeof(*sm));
	if (md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
	    EVP_DigestUpdate(md, sm_label, sizeof(sm_label) - 1) == 1 &&
	    EVP_DigestUpdate(md, z, 32) == 1 &&
	    EVP_DigestUpdate(md, host_nonce, BOARD_SM_NONCE_LEN) == 1 &&
	    EVP_DigestUpdate(md, card_nonce, BOARD_SM_NONCE_LEN) == 1 &&
	    EVP_DigestFinal_ex(md, sm->key, &n) == 1 && n == 32) {
		const uint8_t *parts[] = { (const uint8_t *)auth_label, host_nonce, card_nonce };
		const size_t lens[] = { sizeof(auth_label) - 1, BOARD_SM_NONCE_LEN,
					BOARD_SM_NONCE_LEN };

		rc = cmac(sm->key, parts, lens, 3, full);
	}
	EVP_MD_CTX_free(md);
	if (rc != IMP_OK) {
		board_sm_close(sm);
		return rc;
	}
	memcpy(card_auth, full, BOARD_SM_MAC_LEN);
	sm->ctr = 1;
	sm->open = true;
	return IMP_OK;
}

void board_sm_close(struct board_sm *sm)
{
	imp_wipe(sm, sizeof(*sm));
}

imp_err board_sm_mac(const struct board_sm *sm, unsigned dir, const uint8_t *hdr, size_t hdr_len,
		     const uint8_t *data, size_t len, uint8_t mac[BOARD_SM_MAC_LEN])
{
	uint8_t pre[1 + 4], l[2], full[16];
	const uint8_t *parts[4] = { pre, hdr, l, data };
	const size_t lens[4] = { sizeof(pre), hdr_len, sizeof(l), len };
	imp_err rc;

	if (!sm->open || len > BOARD_APDU_DATA_MAX)
		return IMP_ERR_USAGE;
	pre[0] = (uint8_t)dir;
	pre[1] = (uint8_t)(sm->ctr >> 24);
	pre[2] = (uint8_t)(sm->ctr >> 16);
	pre[3] = (uint8_t)(sm->ctr >> 8);
	pre[4] = (uint8_t)sm->ctr;
	l[0] = (uint8_t)(len >> 8);
	l[1] = (uint8_t)len;
	rc = cmac(sm->key, parts, lens, 4, full);
	if (rc == IMP_OK)
		memcpy(mac, full, BOARD_SM_MAC_LEN);
	return rc;
}

imp_err board_sm_wrap(const struct board_sm *sm, uint8_t ins, uint8_t p1, uint8_t p2,
		      const uint8_t *data, size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
	const uint8_t hdr[4] = { BOARD_PCSC_CLA_SM, ins, p1, p2 };

	*out_len = 0;
	if (len > BOARD_APDU_DATA_MAX - BOARD_SM_MAC_LEN || cap < len + BOARD_SM_MAC_LEN)
		return IMP_ERR_USAGE;
	if (len)
		memmove(out, data, len);
	if (board_sm_mac(sm, 1, hdr, sizeof(hdr), out, len, out + len) != IMP_OK)
		return IMP_ERR_CRYPTO;
	*out_len = len + BOARD_SM_MAC_LEN;
	return IMP_OK;
}

imp_err board_sm_unwrap(struct board_sm *sm, const uint8_t *resp, size_t n, uint16_t sw,
			const uint8_t **data, size_t *data_len)
{
	uint8_t hdr[2] = { (uint8_t)(sw >> 8), (uint8_t)sw };
	uint8_t mac[BOARD_SM_MAC_LEN];
	size_t len;

	*data = NULL;
	*data_len = 0;
	if (!sm->open)
		return IMP_ERR_USAGE;
	if (n < BOARD_SM_MAC_LEN) {
		/* An unprotected answer: only a refusal may come without a MAC. */
		board_sm_close(sm);
		return sw == BOARD_SW_OK || n != 0 ? IMP_ERR_PROTOCOL : board_sw_err(sw);
	}
	len = n - BOARD_SM_MAC_LEN;
	if (board_sm_mac(sm, 2, hdr, sizeof(hdr), resp, len, mac) != IMP_OK) {
		board_sm_close(sm);
		return IMP_ERR_CRYPTO;
	}
	if (CRYPTO_memcmp(mac, resp + len, BOARD_SM_MAC_LEN) != 0) {
		board_sm_close(sm);
		return IMP_ERR_VERIFY;
	}
	sm->ctr++;
	*data = resp;
	*data_len = len;
	return IMP_OK;
}

imp_err board_pcsc_parse_chip(const uint8_t *p, size_t n, struct board_pcsc_chip *out)
{
	memset(out, 0, sizeof(*out));
	if (n != BOARD_PCSC_CHIP_INFO_LEN)
		return IMP_ERR_PROTOCOL;
	memcpy(out->uid, p, WIRE_UID_LEN);
	out->lifecycle = p[16];
	out->fuses = p[17];
	out->slots = p[18];
	if (p[19] > 1 || p[20] != 0x04)
		return IMP_ERR_PROTOCOL;
	out->locked = p[19] == 1;
	memcpy(out->transport_pub, p + 20, WIRE_PUB_LEN);
	return IMP_OK;
}

/* u16 length + bytes; returns NULL (and *ok false) past the end. */
static const uint8_t *take_blob(const uint8_t *p, size_t n, size_t *pos, size_t *len, bool *ok)
{
	size_t l;

	if (!*ok || n - *pos < 2) {
		*ok = false;
		return NULL;
	}
	l = ((size_t)p[*pos] << 8) | p[*pos + 1];
	*pos += 2;
	if (n - *pos < l) {
		*ok = false;
		return NULL;
	}
	*len = l;
	*pos += l;
	return p + *pos - l;
}

static uint8_t *dup_bytes(const uint8_t *p, size_t n, bool nul)
{
	uint8_t *d = malloc(n + 1);

	if (!d)
		return NULL;
	if (n)
		memcpy(d, p, n);
	if (nul)
		d[n] = 0;
	return d;
}

imp_err board_pcsc_parse_slot(const uint8_t *p, size_t n, struct board_identity *out)
{
	const uint8_t *serial, *ident, *cert, *pub;
	size_t sl = 0, il = 0, cl = 0, pl = 0, pos = 0;
	bool ok = true;

	memset(out, 0, sizeof(*out));
	serial = take_blob(p, n, &pos, &sl, &ok);
	ident = take_blob(p, n, &pos, &il, &ok);
	cert = take_blob(p, n, &pos, &cl, &ok);
	pub = take_blob(p, n, &pos, &pl, &ok);
	if (!ok || n - pos != 1 || (pl != 0 && pl != WIRE_PUB_LEN) ||
	    (pl && pub[0] != 0x04) || memchr(serial, 0, sl))
		return IMP_ERR_PROTOCOL;
	out->lifecycle = p[pos];
	out->serial = (char *)dup_bytes(serial, sl, true);
	if (il)
		out->identity = dup_bytes(ident, il, false);
	if (cl)
		out->cert = dup_bytes(cert, cl, false);
	if (!out->serial || (il && !out->identity) || (cl && !out->cert)) {
		board_identity_release(out);
		return IMP_ERR_NOMEM;
	}
	out->identity_len = il;
	out->cert_len = cl;
	if (pl) {
		memcpy(out->pub, pub, WIRE_PUB_LEN);
		out->has_pub = true;
	}
	return IMP_OK;
}
