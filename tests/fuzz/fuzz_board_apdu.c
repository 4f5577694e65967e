/*
 * libFuzzer target: the station's parsers of what a card answers
 * (board/pcsc_apdu.c): R-APDU split, secure-messaging unwrap (with a fixed
 * session key), and the applet's GET DATA payloads. Any crash, leak or UB
 * aborts. The first input byte picks the session counter's low bits, so
 * the MAC path is exercised with inputs that happen to verify (the seed
 * corpus has such responses) and ones that do not.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "board/pcsc.h"

/* board/agent.c is not linked here. */
void board_identity_release(struct board_identity *id)
{
	free(id->serial);
	free(id->identity);
	free(id->cert);
	memset(id, 0, sizeof(*id));
}

int LLVMFuzzerTestOneInput(const uint8_t *buf, size_t n)
{
	static const uint8_t z[32] = { 1, 2, 3 }, hn[16] = { 4 }, cn[16] = { 5 };
	struct board_sm sm;
	struct board_pcsc_chip chip;
	struct board_identity id;
	uint8_t auth[BOARD_SM_MAC_LEN];
	const uint8_t *d, *pl;
	size_t dl, pll;
	uint16_t sw;

	if (n < 1)
		return 0;
	if (board_apdu_split(buf + 1, n - 1, &d, &dl, &sw) != IMP_OK)
		return 0;
	if (dl > n - 1 - 2)
		abort();
	(void)board_sw_str(sw);
	(void)board_sw_err(sw);
	if (board_pcsc_parse_chip(d, dl, &chip) == IMP_OK && chip.transport_pub[0] != 0x04)
		abort();
	if (board_pcsc_parse_slot(d, dl, &id) == IMP_OK) {
		if (id.identity_len > dl || id.cert_len > dl || !id.serial)
			abort();
		board_identity_release(&id);
	}
	if (board_sm_derive(&sm, z, hn, cn, auth) != IMP_OK)
		abort();
	sm.ctr = buf[0] & 3;
	if (board_sm_unwrap(&sm, d, dl, sw, &pl, &pll) == IMP_OK) {
		if (pll + BOARD_SM_MAC_LEN != dl || pl != d)
			abort();
		if (board_pcsc_parse_slot(pl, pll, &id) == IMP_OK)
			board_identity_release(&id);
	}
	board_sm_close(&sm);
	return 0;
}
