/*
 * PC/SC trust anchors: a UICC or secure element in a reader, reached through
 * PCSC-lite with ISO 7816-4 APDUs, running imprint's personalisation applet.
 * WIRE FORMAT: the AID, every command, the secure-messaging scheme and the
 * status words are frozen and written up in docs/PCSC.md.
 *
 * Three layers:
 *   1. pure codecs (board/pcsc_apdu.c; no I/O, fuzzed): C-APDU encoding,
 *      R-APDU splitting, the secure-messaging MAC, and the applet's response
 *      payloads;
 *   2. the reader (board/pcsc.c): context, reader list, connect T=1 / T=0,
 *      transmit with command chaining and GET RESPONSE, card removal;
 *   3. the "pcsc" trust-anchor driver (board/anchor_pcsc.c, board/anchor.h).
 *
 * The virtual card (sim/card.c) uses layer 1 for its side of the protocol.
 */
#ifndef BOARD_PCSC_H
#define BOARD_PCSC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "board/agent.h"
#include "imprint/err.h"

/* The applet: proprietary AID F0 "IMPRINT" 01 (persisted). */
#define BOARD_PCSC_AID_LEN 9u
extern const uint8_t board_pcsc_aid[BOARD_PCSC_AID_LEN];

#define BOARD_PCSC_CLA 0x80u        /* proprietary, no secure messaging */
#define BOARD_PCSC_CLA_SM 0x84u     /* proprietary, with secure messaging */
#define BOARD_PCSC_CLA_CHAIN 0x10u  /* command chaining: more blocks follow */

/* Instructions (persisted; docs/PCSC.md). */
enum board_pcsc_ins {
	BOARD_PCSC_INS_SELECT = 0xA4,
	BOARD_PCSC_INS_GET_RESPONSE = 0xC0,
	BOARD_PCSC_INS_GET_DATA = 0xCA,       /* P1P2 0001 chip, 02ss slot ss */
	BOARD_PCSC_INS_OPEN_SESSION = 0x50,
	BOARD_PCSC_INS_GENERATE_KEY = 0x46,   /* P1 slot, P2 bit0 reuse */
	BOARD_PCSC_INS_PUT_KEY = 0xD8,        /* P1 slot */
	BOARD_PCSC_INS_STORE_DATA = 0xE2,     /* P1 1 cert / 2 identity, P2 slot */
	BOARD_PCSC_INS_INTERNAL_AUTH = 0x88,  /* P2 slot */
	BOARD_PCSC_INS_SET_STATUS = 0xF0,     /* P1 what (BOARD_LOCK_*) */
};

#define BOARD_PCSC_GET_DATA_CHIP 0x00u    /* P1 */
#define BOARD_PCSC_GET_DATA_SLOT 0x02u    /* P1; P2 = slot */
#define BOARD_PCSC_STORE_CERT 0x01u       /* P1 */
#define BOARD_PCSC_STORE_IDENTITY 0x02u   /* P1 */

/* Status words (persisted). */
#define BOARD_SW_OK 0x9000u
#define BOARD_SW_WRONG_LENGTH 0x6700u
#define BOARD_SW_SECURITY 0x6982u         /* no secure-messaging session */
#define BOARD_SW_CONDITIONS 0x6985u       /* locked, refused, wrong state */
#define BOARD_SW_SM_INCORRECT 0x6988u     /* command MAC did not verify */
#define BOARD_SW_WRONG_DATA 0x6A80u       /* malformed data, unwrap failed */
#define BOARD_SW_NOT_FOUND 0x6A82u        /* applet not found */
#define BOARD_SW_NO_SPACE 0x6A84u         /* storage full / write failed */
#define BOARD_SW_WRONG_P1P2 0x6A86u
#define BOARD_SW_NO_KEY 0x6A88u           /* the slot holds no key */
#define BOARD_SW_EXISTS 0x6A89u           /* the slot already holds a key */
#define BOARD_SW_INS 0x6D00u
#define BOARD_SW_CLA 0x6E00u

/* Limits of this implementation (docs/PCSC.md). */
#define BOARD_APDU_SHORT_MAX 255u         /* Lc of one short C-APDU */
#define BOARD_PCSC_INSERT_WAIT_MS 3000u    /* open() waits this long for a card */
#define BOARD_APDU_DATA_MAX 8192u         /* whole chained command / response */
#define BOARD_SM_MAC_LEN 8u               /* persisted */
#define BOARD_SM_NONCE_LEN 16u            /* persisted */
#define BOARD_SM_KEY_LEN 32u
#define BOARD_PCSC_CHIP_INFO_LEN (16u + 4u + 65u) /* GET DATA chip response */

/* ------------------------------------------------------ pure codecs */

/* One command, before chaining: data may be up to BOARD_APDU_DATA_MAX. */
struct board_apdu {
	uint8_t cla, ins, p1, p2;
	const uint8_t *data;
	size_t len;
};

/*
 * Encode one short case-3/4 C-APDU (Lc 1..255, Le 00) or case 2 (no data,
 * Le 00) into out. IMP_ERR_USAGE when len > 255 or cap is too small.
 */
imp_err board_apdu_encode(uint8_t cla, uint8_t ins, uint8_t p1, uint8_t p2, const uint8_t *data,
			  size_t len, uint8_t *out, size_t cap, size_t *out_len);

/*
 * Split an R-APDU into data (pointing into buf) and SW1SW2. IMP_ERR_PROTOCOL
 * when n < 2 or n > BOARD_APDU_DATA_MAX + 2.
 */
imp_err board_apdu_split(const uint8_t *buf, size_t n, const uint8_t **data, size_t *data_len,
			 uint16_t *sw);

/* "OK", "CONDITIONS NOT SATISFIED", ...; never NULL. */
const char *board_sw_str(uint16_t sw);
/* The imprint error of a status word (docs/PCSC.md has the table). */
imp_err board_sw_err(uint16_t sw);

/* Secure-messaging state of one session (docs/PCSC.md, "Secure messaging"). */
struct board_sm {
	uint8_t key[BOARD_SM_KEY_LEN];
	uint32_t ctr;           /* of the next command */
	bool open;
};

/*
 * Derive the session from the ECDH secret z (x coordinate of the transport
 * key times the station's ephemeral key) and both nonces; card_auth
 * receives the 8-byte cryptogram the card proves the key with.
 */
imp_err board_sm_derive(struct board_sm *sm, const uint8_t z[32],
			const uint8_t host_nonce[BOARD_SM_NONCE_LEN],
			const uint8_t card_nonce[BOARD_SM_NONCE_LEN], uint8_t card_auth[BOARD_SM_MAC_LEN]);
void board_sm_close(struct board_sm *sm);

/* MAC over a command: dir 1, or a response: dir 2 (hdr is CLA INS P1 P2 or SW1 SW2). */
imp_err board_sm_mac(const struct board_sm *sm, unsigned dir, const uint8_t *hdr, size_t hdr_len,
		     const uint8_t *data, size_t len, uint8_t mac[BOARD_SM_MAC_LEN]);

/*
 * Station side: protect a command (cla gets BOARD_PCSC_CLA_SM): out receives
 * data || mac, *out_len = len + 8. cap >= len + 8.
 */
imp_err board_sm_wrap(const struct board_sm *sm, uint8_t ins, uint8_t p1, uint8_t p2,
		      const uint8_t *data, size_t len, uint8_t *out, size_t cap, size_t *out_len);

/*
 * Station side: check the response to the command protected with the
 * current counter, then advance the counter. resp/n is the whole response
 * data (payload || mac). On success *data and *data_len is the payload (pointing
 * into resp). Errors: IMP_ERR_VERIFY (MAC wrong: something on the bus
 * changed the response; the session is closed), IMP_ERR_PROTOCOL (no MAC
 * on a response; session closed), or the SW's error for an unprotected
 * error status (a refusal cannot be forged into a success).
 */
imp_err board_sm_unwrap(struct board_sm *sm, const uint8_t *resp, size_t n, uint16_t sw,
			const uint8_t **data, size_t *data_len);

/* Payload of GET DATA chip: uid lifecycle fuses slots locked transport_pub. */
struct board_pcsc_chip {
	uint8_t uid[WIRE_UID_LEN];
	uint8_t lifecycle;
	uint8_t fuses;
	uint8_t slots;
	bool locked;            /* applet lifecycle LOCKED: personalisation refused */
	uint8_t transport_pub[WIRE_PUB_LEN];
};
imp_err board_pcsc_parse_chip(const uint8_t *p, size_t n, struct board_pcsc_chip *out);

/* Payload of GET DATA slot; *out owns buffers (board_identity_release()). */
imp_err board_pcsc_parse_slot(const uint8_t *p, size_t n, struct board_identity *out);

/* ----------------------------------------------------------- reader */

struct board_pcsc;

/*
 * Establish a context, find the reader and connect (T=1 or T=0, whichever
 * the card offers; shared). reader is a name (exact, or the prefix of one
 * name) or a decimal index into the reader list. Hands over *out: release
 * with board_pcsc_close(). Errors: IMP_ERR_NOT_FOUND (no pcscd, no such
 * reader, no card), IMP_ERR_IO.
 */
imp_err board_pcsc_open(const char *reader, struct board_pcsc **out);
void board_pcsc_close(struct board_pcsc *p);
/* Name of the connected reader. */
const char *board_pcsc_reader(const struct board_pcsc *p);

/*
 * Send one command (chained when its data exceeds 255 bytes) and collect
 * the whole response (GET RESPONSE while SW1 is 61, a resend with the right
 * Le on 6Cxx). resp receives at most cap bytes of data. The SW is returned
 * as is; only transport failures are errors: IMP_ERR_NOT_FOUND (card
 * removed, reader gone), IMP_ERR_IO, IMP_ERR_PROTOCOL (response too long or
 * malformed).
 */
imp_err board_pcsc_transmit(struct board_pcsc *p, const struct board_apdu *cmd, uint8_t *resp,
			    size_t cap, size_t *resp_len, uint16_t *sw);

#endif
