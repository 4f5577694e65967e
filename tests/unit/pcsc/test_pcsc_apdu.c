/* APDU codecs and secure messaging of the PC/SC anchor (board/pcsc.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "board/pcsc.h"

static const uint8_t z[32] = { 9, 8, 7 }, hn[16] = { 1 }, cn[16] = { 2 };

static void test_encode(void **state)
{
	uint8_t out[300], data[255];
	size_t n;

	(void)state;
	assert_int_equal(board_apdu_encode(0x80, 0xCA, 0, 1, NULL, 0, out, sizeof(out), &n), IMP_OK);
	assert_int_equal(n, 5);
	assert_memory_equal(out, "\x80\xCA\x00\x01\x00", 5);
	memset(data, 0xAB, sizeof(data));
	assert_int_equal(board_apdu_encode(0x84, 0xE2, 1, 0, data, 255, out, sizeof(out), &n), IMP_OK);
	assert_int_equal(n, 4 + 1 + 255 + 1);
	assert_int_equal(out[4], 255);
	assert_int_equal(board_apdu_encode(0x84, 0xE2, 1, 0, data, 256, out, sizeof(out), &n),
			 IMP_ERR_USAGE);
	assert_int_equal(board_apdu_encode(0x84, 0xE2, 1, 0, data, 10, out, 10, &n), IMP_ERR_USAGE);
}

static void test_split_and_sw(void **state)
{
	const uint8_t r[] = { 1, 2, 0x90, 0x00 };
	const uint8_t *d;
	size_t dl;
	uint16_t sw;

	(void)state;
	assert_int_equal(board_apdu_split(r, 4, &d, &dl, &sw), IMP_OK);
	assert_int_equal(dl, 2);
	assert_int_equal(sw, 0x9000);
	assert_int_equal(board_apdu_split(r, 1, &d, &dl, &sw), IMP_ERR_PROTOCOL);
	assert_int_equal(board_sw_err(BOARD_SW_CONDITIONS), IMP_ERR_BOARD);
	assert_int_equal(board_sw_err(BOARD_SW_NOT_FOUND), IMP_ERR_NOT_FOUND);
	assert_int_equal(board_sw_err(0x6F00), IMP_ERR_PROTOCOL);
	assert_string_equal(board_sw_str(0x6985), "CONDITIONS NOT SATISFIED");
	assert_string_equal(board_sw_str(0x6110), "MORE DATA");
}

/* The card's side: MAC a response like sim/card.c does. */
static size_t card_answer(struct board_sm *card, const uint8_t *p, size_t n, uint16_t sw,
			  uint8_t *out)
{
	uint8_t swb[2] = { (uint8_t)(sw >> 8), (uint8_t)sw };

	if (n)
		memcpy(out, p, n);
	assert_int_equal(board_sm_mac(card, 2, swb, 2, out, n, out + n), IMP_OK);
	card->ctr++;
	return n + BOARD_SM_MAC_LEN;
}

static void test_sm_round_trip(void **state)
{
	struct board_sm st, card;
	uint8_t a1[8], a2[8], cmd[64], resp[64], mac[8];
	const uint8_t hdr[4] = { BOARD_PCSC_CLA_SM, 0x88, 0, 1 }, nonce[32] = { 7 };
	const uint8_t *d;
	size_t n, dl;

	(void)state;
	assert_int_equal(board_sm_derive(&st, z, hn, cn, a1), IMP_OK);
	assert_int_equal(board_sm_derive(&card, z, hn, cn, a2), IMP_OK);
	assert_memory_equal(a1, a2, 8);
	/* command: the card verifies the station's MAC */
	assert_int_equal(board_sm_wrap(&st, 0x88, 0, 1, nonce, 32, cmd, sizeof(cmd), &n), IMP_OK);
	assert_int_equal(n, 40);
	assert_int_equal(board_sm_mac(&card, 1, hdr, 4, cmd, 32, mac), IMP_OK);
	assert_memory_equal(mac, cmd + 32, 8);
	/* response: accepted, counter advances */
	n = card_answer(&card, (const uint8_t *)"signature", 9, 0x9000, resp);
	assert_int_equal(board_sm_unwrap(&st, resp, n, 0x9000, &d, &dl), IMP_OK);
	assert_int_equal(dl, 9);
	assert_memory_equal(d, "signature", 9);
	assert_int_equal(st.ctr, 2);
	/* a replayed response (old counter) is refused */
	assert_int_equal(board_sm_unwrap(&st, resp, n, 0x9000, &d, &dl), IMP_ERR_VERIFY);
	assert_false(st.open);
}

static void test_sm_tamper(void **state)
{
	struct board_sm st, card;
	uint8_t a[8], resp[64];
	const uint8_t *d;
	size_t n, dl;

	(void)state;
	/* one flipped bit anywhere: data, mac, or status word */
	for (unsigned where = 0; where < 3; where++) {
		assert_int_equal(board_sm_derive(&st, z, hn, cn, a), IMP_OK);
		assert_int_equal(board_sm_derive(&card, z, hn, cn, a), IMP_OK);
		n = card_answer(&card, (const uint8_t *)"\x04pub", 4, 0x9000, resp);
		if (where == 0)
			resp[1] ^= 0x10;
		if (where == 1)
			resp[n - 1] ^= 0x01;
		assert_int_equal(board_sm_unwrap(&st, resp, n, where == 2 ? 0x9001 : 0x9000, &d, &dl),
				 IMP_ERR_VERIFY);
		assert_false(st.open);
	}
	/* a refusal turned into 9000 without a MAC: protocol error, never success */
	assert_int_equal(board_sm_derive(&st, z, hn, cn, a), IMP_OK);
	assert_int_equal(board_sm_unwrap(&st, resp, 0, 0x9000, &d, &dl), IMP_ERR_PROTOCOL);
	/* an unprotected refusal stays a refusal */
	assert_int_equal(board_sm_derive(&st, z, hn, cn, a), IMP_OK);
	assert_int_equal(board_sm_unwrap(&st, resp, 0, 0x6985, &d, &dl), IMP_ERR_BOARD);
	/* a MAC'd refusal is a refusal */
	assert_int_equal(board_sm_derive(&st, z, hn, cn, a), IMP_OK);
	assert_int_equal(board_sm_derive(&card, z, hn, cn, a), IMP_OK);
	n = card_answer(&card, NULL, 0, 0x6985, resp);
	assert_int_equal(board_sm_unwrap(&st, resp, n, 0x6985, &d, &dl), IMP_OK);
	assert_int_equal(board_sw_err(0x6985), IMP_ERR_BOARD);
}

static void test_parse(void **state)
{
	uint8_t chip[BOARD_PCSC_CHIP_INFO_LEN] = { 0 }, slot[64];
	struct board_pcsc_chip c;
	struct board_identity id;
	size_t n = 0;

	(void)state;
	chip[16] = 2;
	chip[19] = 1;
	chip[20] = 0x04;
	assert_int_equal(board_pcsc_parse_chip(chip, sizeof(chip), &c), IMP_OK);
	assert_true(c.locked);
	assert_int_equal(c.lifecycle, 2);
	assert_int_equal(board_pcsc_parse_chip(chip, sizeof(chip) - 1, &c), IMP_ERR_PROTOCOL);
	chip[19] = 2;
	assert_int_equal(board_pcsc_parse_chip(chip, sizeof(chip), &c), IMP_ERR_PROTOCOL);

	memcpy(slot + n, "\x00\x03" "ABC" "\x00\x02" "{}" "\x00\x00" "\x00\x00" "\x01", 14);
	n = 14;
	assert_int_equal(board_pcsc_parse_slot(slot, n, &id), IMP_OK);
	assert_string_equal(id.serial, "ABC");
	assert_int_equal(id.identity_len, 2);
	assert_false(id.has_pub);
	assert_int_equal(id.lifecycle, 1);
	board_identity_release(&id);
	assert_int_equal(board_pcsc_parse_slot(slot, n - 1, &id), IMP_ERR_PROTOCOL);
	slot[1] = 0xFF; /* serial longer than the payload */
	assert_int_equal(board_pcsc_parse_slot(slot, n, &id), IMP_ERR_PROTOCOL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encode),
		cmocka_unit_test(test_split_and_sw),
		cmocka_unit_test(test_sm_round_trip),
		cmocka_unit_test(test_sm_tamper),
		cmocka_unit_test(test_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
