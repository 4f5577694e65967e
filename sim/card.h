/*
 * The virtual board's card personality: its secure element (the same
 * struct sim_se the UART agent reaches, same UID) presented as a smart card
 * running imprint's applet (docs/PCSC.md), inserted into pcscd's vpcd
 * reader. vsmartcard's vpcd listens; the card is the TCP client. Framing:
 * u16 big-endian length, then the payload; a 1-byte payload is a control
 * message (0 power off, 1 power on, 2 reset, 4 get ATR), else a C-APDU that
 * the card answers with an R-APDU.
 */
#ifndef SIM_CARD_H
#define SIM_CARD_H

#include <stdint.h>

#include "sim/chip.h"
#include "sim/se.h"

struct sim_card_opts {
	const char *host;        /* vpcd address, "127.0.0.1" */
	int port;                /* vpcd port of this board's reader slot */
	uint64_t remove_after;   /* 0: never; else pull the card out after N APDUs (once) */
	double back_after_s;     /* ... and insert it again this much later */
	uint64_t tamper;         /* 0: never; else flip a bit in the N-th secured response */
};

struct sim_card;

/*
 * Start the card's thread; it (re)connects to vpcd until stop_fd is
 * readable. se and chip are borrowed and must outlive the card. NULL on
 * failure (logged). Stop with stop_fd, then sim_card_free().
 */
struct sim_card *sim_card_start(const struct sim_card_opts *o, struct sim_se *se,
				struct sim_chip *chip, int stop_fd);
void sim_card_free(struct sim_card *c);

/* Handle one C-APDU (exposed for tests): out receives the R-APDU. */
void sim_card_apdu(struct sim_card *c, const uint8_t *in, size_t n, uint8_t *out, size_t *out_len);

#endif
