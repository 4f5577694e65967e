/*
 * The virtual card (sim/card.h): imprint's applet (docs/PCSC.md) over the
 * board's secure element, plugged into vpcd. Its side of secure messaging
 * uses the same codecs as the station (board/pcsc.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "wire/agent_proto.h"
#include "board/pcsc.h"
#include "card.h"
#include "imprint/log.h"
#include "imprint/util.h"

#define RESP_MAX (BOARD_APDU_DATA_MAX + BOARD_SM_MAC_LEN)

/* 3B 80 80 01 01: direct convention, T=0 and T=1 offered, TCK. */
static const uint8_t card_atr[] = { 0x3B, 0x80, 0x80, 0x01, 0x01 };

struct sim_card {
	struct sim_card_opts o;
	struct sim_se *se;
	struct sim_chip *chip;
	int stop_fd;
	pthread_t tid;
	bool started;

	bool selected;
	struct board_sm sm;
	uint8_t chain[BOARD_APDU_DATA_MAX];
	size_t chain_len;
	uint8_t chain_ins;
	bool chaining;
	uint8_t pend[RESP_MAX];    /* response left for GET RESPONSE */
	size_t pend_len, pend_off;
	uint16_t pend_sw;
	uint64_t apdus;            /* received, for remove_after */
	uint64_t secured;          /* secured responses sent, for tamper */
	bool removed_once;
};

static void reset_applet(struct sim_card *c)
{
	c->selected = false;
	board_sm_close(&c->sm);
	c->chain_len = 0;
	c->chaining = false;
	c->pend_len = c->pend_off = 0;
}

static uint16_t sw_of(int st)
{
	switch (st) {
	case WIRE_ST_OK: return BOARD_SW_OK;
	case WIRE_ST_UNKNOWN_CMD: return BOARD_SW_INS;
	case WIRE_ST_BAD_REQUEST: return BOARD_SW_WRONG_DATA;
	case WIRE_ST_STATE: return BOARD_SW_CONDITIONS;
	case WIRE_ST_CRYPTO: return BOARD_SW_WRONG_DATA;
	case WIRE_ST_NO_KEY: return BOARD_SW_NO_KEY;
	case WIRE_ST_REFUSED: return BOARD_SW_CONDITIONS;
	case WIRE_ST_STORAGE: return BOARD_SW_NO_SPACE;
	case WIRE_ST_EXISTS: return BOARD_SW_EXISTS;
	}
	return BOARD_SW_CONDITIONS;
}

static bool applet_locked(const struct sim_card *c)
{
	return sim_se_slots_locked(c->se) || sim_chip_lifecycle(c->chip) == WIRE_LC_LOCKED;
}

static size_t put_blob(uint8_t *out, size_t pos, const uint8_t *p, size_t n)
{
	if (pos + 2 + n > RESP_MAX - BOARD_SM_MAC_LEN)
		return SIZE_MAX;
	out[pos] = (uint8_t)(n >> 8);
	out[pos + 1] = (uint8_t)n;
	if (n)
		memcpy(out + pos + 2, p, n);
	return pos + 2 + n;
}

static size_t chip_info(const struct sim_card *c, uint8_t *out)
{
	memcpy(out, sim_chip_uid(c->chip), WIRE_UID_LEN);
	out[16] = (uint8_t)sim_chip_lifecycle(c->chip);
	out[17] = (uint8_t)(sim_chip_fuses(c->chip) & (WIRE_FUSE_DEBUG_LOCK | WIRE_FUSE_BOOT_LOCK));
	out[18] = sim_se_slot_mask(c->se);
	out[19] = applet_locked(c) ? 1 : 0;
	sim_se_transport_pub(c->se, out + 20);
	return BOARD_PCSC_CHIP_INFO_LEN;
}

/* A secured command's body (MAC already checked): out gets the plain answer. */
static uint16_t secured_cmd(struct sim_card *c, uint8_t ins, uint8_t p1, uint8_t p2,
			    const uint8_t *d, size_t n, uint8_t *out, size_t *ol)
{
	size_t pos = 0, l;
	const uint8_t *p;
	int st;

	*ol = 0;
	switch (ins) {
	case BOARD_PCSC_INS_GET_DATA:
		if (n)
			return BOARD_SW_WRONG_LENGTH;
		if (p1 == BOARD_PCSC_GET_DATA_CHIP && p2 == 0x01) {
			*ol = chip_info(c, out);
			return BOARD_SW_OK;
		}
		if (p1 != BOARD_PCSC_GET_DATA_SLOT || p2 >= SIM_SE_SLOTS)
			return BOARD_SW_WRONG_P1P2;
		p = sim_se_serial(c->se, &l);
		pos = put_blob(out, pos, p, l);
		p = sim_se_identity(c->se, &l);
		pos = pos == SIZE_MAX ? pos : put_blob(out, pos, p, l);
		p = sim_se_cert(c->se, p2, &l);
		pos = pos == SIZE_MAX ? pos : put_blob(out, pos, p, l);
		{
			uint8_t pub[65];
			bool has = sim_se_slot_pub(c->se, p2, pub);

			pos = pos == SIZE_MAX ? pos : put_blob(out, pos, pub, has ? 65 : 0);
		}
		if (pos == SIZE_MAX)
			return BOARD_SW_NO_SPACE;
		out[pos++] = (uint8_t)sim_chip_lifecycle(c->chip);
		*ol = pos;
		return BOARD_SW_OK;
	case BOARD_PCSC_INS_GENERATE_KEY:
		if (n || p2 > 1)
			return n ? BOARD_SW_WRONG_LENGTH : BOARD_SW_WRONG_P1P2;
		if (applet_locked(c))
			return BOARD_SW_CONDITIONS;
		st = sim_se_generate(c->se, p1, p2 & 1, out);
		if (st == WIRE_ST_OK)
			*ol = 65;
		return sw_of(st);
	case BOARD_PCSC_INS_PUT_KEY: {
		size_t ivl, hdr = 3 + 65 + 1;

		if (n < hdr || (ivl = d[3 + 65]) > n - hdr)
			return BOARD_SW_WRONG_DATA;
		if (applet_locked(c))
			return BOARD_SW_CONDITIONS;
		st = sim_se_import(c->se, p1, d[0], d[1], d + 3, ivl ? d + hdr : NULL, ivl,
				   d + hdr + ivl, n - hdr - ivl, out, ol);
		if (st != WIRE_ST_OK)
			*ol = 0;
		return sw_of(st);
	}
	case BOARD_PCSC_INS_STORE_DATA:
		if (applet_locked(c))
			return BOARD_SW_CONDITIONS;
		if (p1 == BOARD_PCSC_STORE_CERT) {
			const uint8_t *cur = sim_se_cert(c->se, p2, &l);

			if (p2 >= SIM_SE_SLOTS || !n)
				return BOARD_SW_WRONG_DATA;
			if (cur && l == n && memcmp(cur, d, n) == 0)
				return BOARD_SW_OK; /* the same again: a retry */
			return sw_of(sim_se_store_cert(c->se, p2, d, n));
		}
		if (p1 == BOARD_PCSC_STORE_IDENTITY) {
			const uint8_t *cs, *cb;
			size_t csl, cbl, sl;

			if (!n || (sl = d[0]) > n - 1)
				return BOARD_SW_WRONG_DATA;
			cs = sim_se_serial(c->se, &csl);
			cb = sim_se_identity(c->se, &cbl);
			if ((cs || cb) && csl == sl && cbl == n - 1 - sl &&
			    (sl == 0 || memcmp(cs, d + 1, sl) == 0) &&
			    (cbl == 0 || memcmp(cb, d + 1 + sl, cbl) == 0))
				return BOARD_SW_OK;
			if (sim_chip_lifecycle(c->chip) != WIRE_LC_OPEN)
				return BOARD_SW_CONDITIONS;
			return sw_of(sim_se_store_identity(c->se, d + 1, sl, d + 1 + sl,
							   n - 1 - sl));
		}
		return BOARD_SW_WRONG_P1P2;
	case BOARD_PCSC_INS_INTERNAL_AUTH:
		if (n != WIRE_NONCE_LEN)
			return BOARD_SW_WRONG_LENGTH;
		st = sim_se_sign(c->se, p2, d, false, out, ol);
		if (st != WIRE_ST_OK)
			*ol = 0;
		return sw_of(st);
	case BOARD_PCSC_INS_SET_STATUS:
		if (n || (p1 & ~3u))
			return n ? BOARD_SW_WRONG_LENGTH : BOARD_SW_WRONG_P1P2;
		if (p1 & 1) {
			st = sim_se_lock_slots(c->se);
			if (st != WIRE_ST_OK)
				return sw_of(st);
		}
		if ((p1 & 2) && sim_chip_set_personalised(c->chip) != IMP_OK)
			return BOARD_SW_NO_SPACE;
		return BOARD_SW_OK;
	}
	return BOARD_SW_INS;
}

/* An unprotected command of the applet. */
static uint16_t plain_cmd(struct sim_card *c, uint8_t cla, uint8_t ins, uint8_t p1, uint8_t p2,
			  const uint8_t *d, size_t n, uint8_t *out, size_t *ol)
{
	*ol = 0;
	if (ins == BOARD_PCSC_INS_SELECT && cla == 0x00) {
		if (p1 != 0x04 || n != BOARD_PCSC_AID_LEN || memcmp(d, board_pcsc_aid, n) != 0) {
			c->selected = false;
			return BOARD_SW_NOT_FOUND;
		}
		reset_applet(c);
		c->selected = true;
		out[0] = 0x01; /* applet protocol version */
		*ol = 1;
		return BOARD_SW_OK;
	}
	if (!c->selected)
		return BOARD_SW_CONDITIONS;
	if (cla != BOARD_PCSC_CLA)
		return BOARD_SW_CLA;
	if (ins == BOARD_PCSC_INS_GET_DATA && p1 == BOARD_PCSC_GET_DATA_CHIP && p2 == 0x01) {
		*ol = chip_info(c, out);
		return BOARD_SW_OK;
	}
	if (ins == BOARD_PCSC_INS_OPEN_SESSION) {
		uint8_t z[32];

		if (n != 65 + BOARD_SM_NONCE_LEN)
			return BOARD_SW_WRONG_LENGTH;
		board_sm_close(&c->sm);
		if (sim_se_transport_ecdh(c->se, d, z) != WIRE_ST_OK)
			return BOARD_SW_WRONG_DATA;
		if (RAND_bytes(out, BOARD_SM_NONCE_LEN) != 1 ||
		    board_sm_derive(&c->sm, z, d + 65, out, out + BOARD_SM_NONCE_LEN) != IMP_OK) {
			imp_wipe(z, sizeof(z));
			return BOARD_SW_CONDITIONS;
		}
		imp_wipe(z, sizeof(z));
		*ol = BOARD_SM_NONCE_LEN + BOARD_SM_MAC_LEN;
		return BOARD_SW_OK;
	}
	return BOARD_SW_SECURITY; /* everything else needs the session */
}

/* Queue a whole response; answer its first chunk (61xx when more follows). */
static void respond(struct sim_card *c, const uint8_t *d, size_t n, uint16_t sw, uint8_t *out,
		    size_t *out_len)
{
	size_t chunk, left;

	if (d != c->pend && n)
		memmove(c->pend, d, n);
	c->pend_len = n;
	c->pend_off = 0;
	c->pend_sw = sw;
	chunk = n > 256 ? 256 : n;
	memcpy(out, c->pend, chunk);
	c->pend_off = chunk;
	left = n - chunk;
	if (left) {
		out[chunk] = 0x61;
		out[chunk + 1] = (uint8_t)(left > 255 ? 0 : left);
	} else {
		out[chunk] = (uint8_t)(sw >> 8);
		out[chunk + 1] = (uint8_t)sw;
		c->pend_len = 0;
	}
	*out_len = chunk + 2;
}

void sim_card_apdu(struct sim_card *c, const uint8_t *in, size_t n, uint8_t *out, size_t *out_len)
{
	static __thread uint8_t body[RESP_MAX];
	uint8_t cla, ins, p1, p2;
	const uint8_t *d = NULL;
	size_t dl = 0, ol = 0;
	uint16_t sw;

	c->apdus++;
	if (n < 4) {
		respond(c, NULL, 0, BOARD_SW_WRONG_LENGTH, out, out_len);
		return;
	}
	cla = in[0];
	ins = in[1];
	p1 = in[2];
	p2 = in[3];
	if (n > 5) {
		dl = in[4];
		d = in + 5;
		if (dl == 0 || n - 5 < dl || n - 5 - dl > 1) { /* extended length: not supported */
			respond(c, NULL, 0, BOARD_SW_WRONG_LENGTH, out, out_len);
			return;
		}
	}
	if (ins == BOARD_PCSC_INS_GET_RESPONSE && !(cla & BOARD_PCSC_CLA_CHAIN)) {
		size_t left = c->pend_len - c->pend_off, chunk;

		if (!c->pend_len || !left) {
			respond(c, NULL, 0, BOARD_SW_CONDITIONS, out, out_len);
			return;
		}
		chunk = left > 256 ? 256 : left;
		memcpy(out, c->pend + c->pend_off, chunk);
		c->pend_off += chunk;
		left -= chunk;
		out[chunk] = left ? 0x61 : (uint8_t)(c->pend_sw >> 8);
		out[chunk + 1] = left ? (uint8_t)(left > 255 ? 0 : left) : (uint8_t)c->pend_sw;
		if (!left)
			c->pend_len = 0;
		*out_len = chunk + 2;
		return;
	}
	c->pend_len = 0;
	/* Command chaining: collect the blocks, act on the last. */
	if (cla & BOARD_PCSC_CLA_CHAIN) {
		if ((c->chaining && c->chain_ins != ins) || c->chain_len + dl > sizeof(c->chain)) {
			c->chaining = false;
			c->chain_len = 0;
			respond(c, NULL, 0, BOARD_SW_WRONG_DATA, out, out_len);
			return;
		}
		if (dl)
			memcpy(c->chain + c->chain_len, d, dl);
		c->chain_len += dl;
		c->chain_ins = ins;
		c->chaining = true;
		respond(c, NULL, 0, BOARD_SW_OK, out, out_len);
		return;
	}
	if (c->chaining) {
		if (c->chain_ins != ins || c->chain_len + dl > sizeof(c->chain)) {
			c->chaining = false;
			c->chain_len = 0;
			respond(c, NULL, 0, BOARD_SW_WRONG_DATA, out, out_len);
			return;
		}
		if (dl)
			memcpy(c->chain + c->chain_len, d, dl);
		d = c->chain;
		dl += c->chain_len;
		c->chain_len = 0;
		c->chaining = false;
	}
	if (cla != BOARD_PCSC_CLA_SM) {
		sw = plain_cmd(c, cla, ins, p1, p2, d, dl, body, &ol);
		respond(c, body, sw == BOARD_SW_OK ? ol : 0, sw, out, out_len);
		return;
	}
	/* Secured: check the command's MAC, act, MAC the answer (also a refusal). */
	{
		const uint8_t hdr[4] = { cla, ins, p1, p2 };
		uint8_t mac[BOARD_SM_MAC_LEN], swb[2];

		if (!c->selected || !c->sm.open) {
			respond(c, NULL, 0, BOARD_SW_SECURITY, out, out_len);
			return;
		}
		if (dl < BOARD_SM_MAC_LEN ||
		    board_sm_mac(&c->sm, 1, hdr, 4, d, dl - BOARD_SM_MAC_LEN, mac) != IMP_OK ||
		    memcmp(mac, d + dl - BOARD_SM_MAC_LEN, BOARD_SM_MAC_LEN) != 0) {
			IMP_WARN("card: command mac wrong: session closed");
			board_sm_close(&c->sm);
			respond(c, NULL, 0, BOARD_SW_SM_INCORRECT, out, out_len);
			return;
		}
		sw = secured_cmd(c, ins, p1, p2, d, dl - BOARD_SM_MAC_LEN, body, &ol);
		if (sw != BOARD_SW_OK)
			ol = 0;
		swb[0] = (uint8_t)(sw >> 8);
		swb[1] = (uint8_t)sw;
		if (board_sm_mac(&c->sm, 2, swb, 2, body, ol, body + ol) != IMP_OK) {
			respond(c, NULL, 0, BOARD_SW_CONDITIONS, out, out_len);
			return;
		}
		c->sm.ctr++;
		ol += BOARD_SM_MAC_LEN;
		c->secured++;
		if (c->o.tamper && c->secured == c->o.tamper) {
			IMP_WARN("card: tampering: one bit of this secured response flipped");
			body[0] ^= 0x01;
		}
		respond(c, body, ol, sw, out, out_len);
	}
}

/* ------------------------------------------------------------ vpcd */

static bool stopping(int stop_fd, int ms)
{
	struct pollfd p = { stop_fd, POLLIN, 0 };

	return poll(&p, 1, ms) > 0;
}

/* Read exactly n bytes, watching stop_fd; false on EOF, error or stop. */
static bool read_full(struct sim_card *c, int fd, uint8_t *p, size_t n)
{
	while (n) {
		ssize_t r;

		if (!imp_wait_readable(fd, c->stop_fd))
			return false;
		r = recv(fd, p, n, 0);
		if (r <= 0)
			return false;
		p += r;
		n -= (size_t)r;
	}
	{
		int one = 1;

		setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
	}
	return true;
}

static bool send_msg(int fd, const uint8_t *p, size_t n)
{
	uint8_t buf[2 + 258];

	if (n > 258)
		return false;
	buf[0] = (uint8_t)(n >> 8);
	buf[1] = (uint8_t)n;
	memcpy(buf + 2, p, n);
	return send(fd, buf, n + 2, MSG_NOSIGNAL) == (ssize_t)(n + 2);
}

static int dial(const struct sim_card *c)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)c->o.port) };
	int fd, one = 1;

	if (inet_pton(AF_INET, c->o.host, &sa.sin_addr) != 1)
		return -1;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
	return fd;
}

/* Serve one insertion; true when the card was pulled out on purpose. */
static bool serve(struct sim_card *c, int fd)
{
	static __thread uint8_t in[0x10000];
	uint8_t out[258], hdr[2];
	size_t n, ol;

	for (;;) {
		if (!read_full(c, fd, hdr, 2))
			return false;
		n = ((size_t)hdr[0] << 8) | hdr[1];
		if (n == 0 || !read_full(c, fd, in, n))
			return false;
		if (n == 1) {
			if (in[0] == 0x04 && !send_msg(fd, card_atr, sizeof(card_atr)))
				return false;
			if (in[0] <= 0x02)
				reset_applet(c);
			continue;
		}
		if (c->o.remove_after && !c->removed_once && c->apdus >= c->o.remove_after) {
			c->removed_once = true;
			return true;
		}
		sim_card_apdu(c, in, n, out, &ol);
		if (!send_msg(fd, out, ol))
			return false;
	}
}

static void *card_main(void *arg)
{
	struct sim_card *c = arg;
	bool logged = false;

	while (!stopping(c->stop_fd, 0)) {
		int fd = dial(c);

		if (fd < 0) {
			if (!logged)
				IMP_DEBUG("card: waiting for vpcd at %s:%d", c->o.host, c->o.port);
			logged = true;
			if (stopping(c->stop_fd, 100))
				break;
			continue;
		}
		IMP_INFO("card: inserted into vpcd at %s:%d", c->o.host, c->o.port);
		reset_applet(c);
		if (serve(c, fd)) {
			close(fd);
			IMP_INFO("card: removed after %llu apdus; back in %.1f s",
				 (unsigned long long)c->apdus, c->o.back_after_s);
			if (stopping(c->stop_fd, (int)(c->o.back_after_s * 1000)))
				break;
			continue;
		}
		close(fd);
		IMP_INFO("card: vpcd closed the connection");
		if (stopping(c->stop_fd, 100))
			break;
	}
	reset_applet(c);
	return NULL;
}

struct sim_card *sim_card_start(const struct sim_card_opts *o, struct sim_se *se,
				struct sim_chip *chip, int stop_fd)
{
	struct sim_card *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->o = *o;
	c->se = se;
	c->chip = chip;
	c->stop_fd = stop_fd;
	if (stop_fd >= 0) {
		if (pthread_create(&c->tid, NULL, card_main, c) != 0) {
			IMP_ERROR("card: cannot start its thread");
			free(c);
			return NULL;
		}
		c->started = true;
	}
	return c;
}

void sim_card_free(struct sim_card *c)
{
	if (!c)
		return;
	if (c->started)
		pthread_join(c->tid, NULL);
	board_sm_close(&c->sm);
	free(c);
}
