/*
 * Trust anchor "pcsc": imprint's applet on a UICC / secure element in a
 * PC/SC reader (board/pcsc.h, docs/PCSC.md). open() selects the applet,
 * reads the chip identity and opens a secure-messaging session keyed by an
 * ECDH between a fresh station key and the card's transport key; every
 * later command and response carries a MAC, so nothing on the bus can turn
 * a refusal into a success or change a returned key.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "board/anchor.h"
#include "board/pcsc.h"
#include "imprint/log.h"
#include "imprint/util.h"

struct pcsc_anchor {
	struct board_pcsc *card;
	struct board_sm sm;
	struct board_pcsc_chip chip;   /* as read at open() */
	uint8_t buf[BOARD_APDU_DATA_MAX];
	uint16_t last_sw;              /* status word of the last secured command */
};

static imp_err sw_check(const struct pcsc_anchor *a, const char *what, uint16_t sw)
{
	imp_err rc = board_sw_err(sw);

	if (rc != IMP_OK)
		IMP_ERROR("card in '%s' refused %s: %04X %s", board_pcsc_reader(a->card), what,
			  sw, board_sw_str(sw));
	return rc;
}

/* An unprotected command (SELECT, GET DATA before the session, OPEN SESSION). */
static imp_err plain(struct pcsc_anchor *a, const char *what, uint8_t cla, uint8_t ins,
		     uint8_t p1, uint8_t p2, const uint8_t *data, size_t len, size_t *rlen)
{
	struct board_apdu c = { cla, ins, p1, p2, data, len };
	uint16_t sw;
	imp_err rc;

	rc = board_pcsc_transmit(a->card, &c, a->buf, sizeof(a->buf), rlen, &sw);
	if (rc == IMP_OK)
		rc = sw_check(a, what, sw);
	return rc;
}

/*
 * A protected command: *out / *out_len is the verified response payload
 * (inside a->buf). A MAC failure is IMP_ERR_VERIFY: the step fails and
 * nothing that depends on the answer (the lock above all) happens.
 */
static imp_err secured(struct pcsc_anchor *a, const char *what, uint8_t ins, uint8_t p1,
		       uint8_t p2, const uint8_t *data, size_t len, const uint8_t **out,
		       size_t *out_len)
{
	uint8_t *cmd = malloc(len + BOARD_SM_MAC_LEN);
	struct board_apdu c = { BOARD_PCSC_CLA_SM, ins, p1, p2, NULL, 0 };
	size_t rlen = 0;
	uint16_t sw = 0;
	imp_err rc;

	*out = NULL;
	*out_len = 0;
	if (!cmd)
		return IMP_ERR_NOMEM;
	if (!a->sm.open) {
		IMP_ERROR("card in '%s': the secure-messaging session is closed after an earlier "
			  "failure; resume the board", board_pcsc_reader(a->card));
		free(cmd);
		return IMP_ERR_PROTOCOL;
	}
	rc = board_sm_wrap(&a->sm, ins, p1, p2, data, len, cmd, len + BOARD_SM_MAC_LEN, &c.len);
	c.data = cmd;
	if (rc == IMP_OK)
		rc = board_pcsc_transmit(a->card, &c, a->buf, sizeof(a->buf), &rlen, &sw);
	free(cmd);
	if (rc != IMP_OK)
		return rc;
	a->last_sw = sw;
	rc = board_sm_unwrap(&a->sm, a->buf, rlen, sw, out, out_len);
	if (rc == IMP_ERR_VERIFY || rc == IMP_ERR_PROTOCOL || rc == IMP_ERR_CRYPTO) {
		/* IMP_ERR_PROTOCOL, not VERIFY: the bus is at fault, not the board, which
		 * stays resumable instead of being rejected (docs/PCSC.md). */
		IMP_ERROR("card in '%s': the response to %s failed secure messaging (%s): "
			  "something on the bus changed it; nothing is trusted, the board is not "
			  "locked", board_pcsc_reader(a->card), what,
			  rc == IMP_ERR_VERIFY ? "wrong mac" : "no mac");
		return IMP_ERR_PROTOCOL;
	}
	if (rc != IMP_OK) {
		IMP_ERROR("card in '%s' refused %s: %04X %s", board_pcsc_reader(a->card), what, sw,
			  board_sw_str(sw));
		return rc;
	}
	return sw_check(a, what, sw);
}

/* ECDH of a fresh P-256 key with the card's transport key; pub receives ours. */
static imp_err station_ecdh(const uint8_t card_pub[WIRE_PUB_LEN], uint8_t pub[WIRE_PUB_LEN],
			    uint8_t z[32])
{
	EVP_PKEY *eph = EVP_EC_gen("P-256"), *peer = NULL;
	EVP_PKEY_CTX *pc = NULL, *dc = NULL;
	OSSL_PARAM params[3];
	size_t n = WIRE_PUB_LEN, zl = 32;
	imp_err rc = IMP_ERR_CRYPTO;

	if (!eph || EVP_PKEY_get_octet_string_param(eph, OSSL_PKEY_PARAM_PUB_KEY, pub,
						    WIRE_PUB_LEN, &n) != 1 || n != WIRE_PUB_LEN)
		goto cleanup;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
						     (char *)"prime256v1", 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)card_pub,
						      WIRE_PUB_LEN);
	params[2] = OSSL_PARAM_construct_end();
	pc = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	if (!pc || EVP_PKEY_fromdata_init(pc) != 1 ||
	    EVP_PKEY_fromdata(pc, &peer, EVP_PKEY_PUBLIC_KEY, params) != 1)
		goto cleanup;
	dc = EVP_PKEY_CTX_new(eph, NULL);
	if (dc && EVP_PKEY_derive_init(dc) == 1 && EVP_PKEY_derive_set_peer(dc, peer) == 1 &&
	    EVP_PKEY_derive(dc, z, &zl) == 1 && zl == 32)
		rc = IMP_OK;
cleanup:
	if (rc != IMP_OK)
		IMP_ERROR("pc/sc: ecdh with the card's transport key failed");
	EVP_PKEY_CTX_free(dc);
	EVP_PKEY_CTX_free(pc);
	EVP_PKEY_free(peer);
	EVP_PKEY_free(eph);
	return rc;
}

static imp_err open_session(struct pcsc_anchor *a)
{
	uint8_t req[WIRE_PUB_LEN + BOARD_SM_NONCE_LEN], z[32], auth[BOARD_SM_MAC_LEN];
	size_t rlen = 0;
	imp_err rc;

	rc = station_ecdh(a->chip.transport_pub, req, z);
	if (rc == IMP_OK && RAND_bytes(req + WIRE_PUB_LEN, BOARD_SM_NONCE_LEN) != 1)
		rc = IMP_ERR_CRYPTO;
	if (rc == IMP_OK)
		rc = plain(a, "OPEN SESSION", BOARD_PCSC_CLA, BOARD_PCSC_INS_OPEN_SESSION, 0, 0, req,
			   sizeof(req), &rlen);
	if (rc == IMP_OK && rlen != BOARD_SM_NONCE_LEN + BOARD_SM_MAC_LEN)
		rc = IMP_ERR_PROTOCOL;
	if (rc == IMP_OK)
		rc = board_sm_derive(&a->sm, z, req + WIRE_PUB_LEN, a->buf, auth);
	if (rc == IMP_OK &&
	    CRYPTO_memcmp(auth, a->buf + BOARD_SM_NONCE_LEN, BOARD_SM_MAC_LEN) != 0) {
		IMP_ERROR("card in '%s' does not hold the transport key it announced: session "
			  "refused", board_pcsc_reader(a->card));
		board_sm_close(&a->sm);
		rc = IMP_ERR_VERIFY;
	}
	imp_wipe(z, sizeof(z));
	return rc;
}

static void pc_close(void *priv)
{
	struct pcsc_anchor *a = priv;

	board_pcsc_close(a->card);
	board_sm_close(&a->sm);
	free(a);
}

static imp_err pc_open(const struct board_anchor_params *params, void **priv)
{
	struct pcsc_anchor *a;
	size_t rlen = 0;
	imp_err rc;

	if (!params || !params->reader || !*params->reader) {
		IMP_ERROR("trust anchor 'pcsc' needs a reader (the fixture's \"reader\")");
		return IMP_ERR_USAGE;
	}
	a = calloc(1, sizeof(*a));
	if (!a)
		return IMP_ERR_NOMEM;
	rc = board_pcsc_open(params->reader, &a->card);
	if (rc == IMP_OK)
		rc = plain(a, "SELECT", 0x00, BOARD_PCSC_INS_SELECT, 0x04, 0x00, board_pcsc_aid,
			   BOARD_PCSC_AID_LEN, &rlen);
	if (rc == IMP_OK)
		rc = plain(a, "GET DATA", BOARD_PCSC_CLA, BOARD_PCSC_INS_GET_DATA,
			   BOARD_PCSC_GET_DATA_CHIP, 0x01, NULL, 0, &rlen);
	if (rc == IMP_OK)
		rc = board_pcsc_parse_chip(a->buf, rlen, &a->chip);
	if (rc == IMP_OK)
		rc = open_session(a);
	if (rc != IMP_OK) {
		pc_close(a);
		return rc;
	}
	*priv = a;
	return IMP_OK;
}

static imp_err pc_inject(void *priv, const struct board_anchor_item *it, uint8_t *out, size_t cap,
			 size_t *out_len)
{
	struct pcsc_anchor *a = priv;
	const struct board_wrapped_key *k = it->wrapped;
	uint8_t *req = NULL;
	const uint8_t *r;
	size_t rl = 0, n, sl;
	imp_err rc;

	*out_len = 0;
	switch (it->kind) {
	case BOARD_ANCHOR_GENERATE:
		if (cap < WIRE_PUB_LEN)
			return IMP_ERR_USAGE;
		rc = secured(a, "GENERATE KEY", BOARD_PCSC_INS_GENERATE_KEY, it->slot,
			     it->reuse ? 1 : 0, NULL, 0, &r, &rl);
		if (rc == IMP_OK && (rl != WIRE_PUB_LEN || r[0] != 0x04))
			rc = IMP_ERR_PROTOCOL;
		if (rc == IMP_OK) {
			memcpy(out, r, WIRE_PUB_LEN);
			*out_len = WIRE_PUB_LEN;
		}
		return rc;
	case BOARD_ANCHOR_WRAPPED_KEY:
		if (!k || k->iv_len > 255 || cap < WIRE_PUB_LEN ||
		    k->wrapped_len > BOARD_APDU_DATA_MAX - 512)
			return IMP_ERR_USAGE;
		n = 3 + WIRE_PUB_LEN + 1 + k->iv_len + k->wrapped_len;
		req = malloc(n);
		if (!req)
			return IMP_ERR_NOMEM;
		req[0] = k->kind;
		req[1] = k->alg;
		req[2] = 0;
		memcpy(req + 3, k->station_pub, WIRE_PUB_LEN);
		req[3 + WIRE_PUB_LEN] = (uint8_t)k->iv_len;
		if (k->iv_len)
			memcpy(req + 4 + WIRE_PUB_LEN, k->iv, k->iv_len);
		memcpy(req + 4 + WIRE_PUB_LEN + k->iv_len, k->wrapped, k->wrapped_len);
		a->last_sw = 0;
		rc = secured(a, "PUT KEY", BOARD_PCSC_INS_PUT_KEY, k->slot, 0, req, n, &r, &rl);
		imp_wipe(req, n);
		free(req);
		/* The card's own answer: the slot holds a key (a PUT KEY before a crash). */
		if (rc != IMP_OK && a->last_sw == BOARD_SW_EXISTS)
			return IMP_ERR_EXISTS;
		if (rc == IMP_OK && rl != WIRE_PUB_LEN && rl != BOARD_KCV_LEN)
			rc = IMP_ERR_PROTOCOL;
		if (rc == IMP_OK) {
			memcpy(out, r, rl);
			*out_len = rl;
		}
		return rc;
	case BOARD_ANCHOR_CERT:
		if (!it->data || !it->data_len || it->data_len > BOARD_APDU_DATA_MAX - 64)
			return IMP_ERR_USAGE;
		return secured(a, "STORE DATA (certificate)", BOARD_PCSC_INS_STORE_DATA,
			       BOARD_PCSC_STORE_CERT, it->slot, it->data, it->data_len, &r, &rl);
	case BOARD_ANCHOR_IDENTITY:
		if (!it->serial)
			return IMP_ERR_USAGE;
		sl = strlen(it->serial);
		if (sl > 255 || it->data_len > BOARD_APDU_DATA_MAX - 512)
			return IMP_ERR_USAGE;
		n = 1 + sl + it->data_len;
		req = malloc(n);
		if (!req)
			return IMP_ERR_NOMEM;
		req[0] = (uint8_t)sl;
		memcpy(req + 1, it->serial, sl);
		if (it->data_len)
			memcpy(req + 1 + sl, it->data, it->data_len);
		rc = secured(a, "STORE DATA (identity)", BOARD_PCSC_INS_STORE_DATA,
			     BOARD_PCSC_STORE_IDENTITY, 0, req, n, &r, &rl);
		free(req);
		return rc;
	}
	IMP_ERROR("trust anchor 'pcsc': unknown item kind %d", (int)it->kind);
	return IMP_ERR_USAGE;
}

static imp_err pc_read_identity(void *priv, uint8_t slot, struct board_identity *out)
{
	struct pcsc_anchor *a = priv;
	const uint8_t *r;
	size_t rl;
	imp_err rc;

	memset(out, 0, sizeof(*out));
	rc = secured(a, "GET DATA (slot)", BOARD_PCSC_INS_GET_DATA, BOARD_PCSC_GET_DATA_SLOT, slot,
		     NULL, 0, &r, &rl);
	if (rc == IMP_OK)
		rc = board_pcsc_parse_slot(r, rl, out);
	return rc;
}

static imp_err pc_challenge(void *priv, uint8_t slot, const uint8_t nonce[WIRE_NONCE_LEN],
			    uint8_t *sig, size_t cap, size_t *sig_len)
{
	struct pcsc_anchor *a = priv;
	const uint8_t *r;
	size_t rl;
	imp_err rc;

	*sig_len = 0;
	rc = secured(a, "INTERNAL AUTHENTICATE", BOARD_PCSC_INS_INTERNAL_AUTH, 0, slot, nonce,
		     WIRE_NONCE_LEN, &r, &rl);
	if (rc == IMP_OK && (rl == 0 || rl > cap))
		rc = IMP_ERR_PROTOCOL;
	if (rc == IMP_OK) {
		memcpy(sig, r, rl);
		*sig_len = rl;
	}
	return rc;
}

static imp_err pc_lock(void *priv, uint8_t what)
{
	struct pcsc_anchor *a = priv;
	const uint8_t *r;
	size_t rl;

	return secured(a, "SET STATUS (lock)", BOARD_PCSC_INS_SET_STATUS, what, 0, NULL, 0, &r,
		       &rl);
}

static imp_err read_chip(struct pcsc_anchor *a, struct board_pcsc_chip *c)
{
	const uint8_t *r;
	size_t rl;
	imp_err rc;

	rc = secured(a, "GET DATA", BOARD_PCSC_INS_GET_DATA, BOARD_PCSC_GET_DATA_CHIP, 0x01, NULL,
		     0, &r, &rl);
	if (rc == IMP_OK)
		rc = board_pcsc_parse_chip(r, rl, c);
	if (rc == IMP_OK && memcmp(c->transport_pub, a->chip.transport_pub, WIRE_PUB_LEN) != 0)
		rc = IMP_ERR_VERIFY;
	return rc;
}

static imp_err pc_lock_state(void *priv, struct board_anchor_lock_state *out)
{
	struct pcsc_anchor *a = priv;
	struct board_pcsc_chip c;
	imp_err rc;

	rc = read_chip(a, &c);
	if (rc != IMP_OK)
		return rc;
	out->lifecycle = c.lifecycle;
	out->fuses = c.fuses;
	out->locked = c.locked;
	return IMP_OK;
}

static imp_err pc_identify(void *priv, struct board_agent_info *out)
{
	struct pcsc_anchor *a = priv;
	struct board_pcsc_chip c;
	imp_err rc;

	rc = read_chip(a, &c); /* under the session: proves the answer is the card's */
	if (rc != IMP_OK)
		return rc;
	memset(out, 0, sizeof(*out));
	memcpy(out->uid, c.uid, WIRE_UID_LEN);
	out->lifecycle = c.lifecycle;
	out->fuses = c.fuses;
	out->slots = c.slots;
	memcpy(out->transport_pub, c.transport_pub, WIRE_PUB_LEN);
	return IMP_OK;
}

const struct board_anchor_driver board_anchor_pcsc = {
	.name = "pcsc",
	.open = pc_open,
	.close = pc_close,
	.inject = pc_inject,
	.read_identity = pc_read_identity,
	.challenge = pc_challenge,
	.lock = pc_lock,
	.lock_state = pc_lock_state,
	.identify = pc_identify,
};
