/*
 * The virtual board as a whole: a chip (sim/chip.h), a secure element
 * (sim/se.h), a provisioning agent on a pseudo-terminal, a GDB RSP server
 * on loopback TCP and optionally a remote_bitbang debug port (sim/dap.h),
 * each served by a thread of its own. The
 * `imprint-vboard` program (sim/main.c) hosts N of them; tests may too.
 */
#ifndef SIM_VBOARD_H
#define SIM_VBOARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imprint/err.h"

/* UART model: 921600 baud, 8N1 = 10 bit times per byte. */
#define SIM_LAT_UART_BAUD 921600.0
#define SIM_LAT_UART_BITS_PER_BYTE 10.0

struct sim_faults {
	double uart_corrupt;  /* fraction of UART bytes (both ways) with one bit flipped */
	double uart_drop;     /* fraction of UART bytes (both ways) lost */
	double rsp_nak;       /* fraction of good RSP packets answered '-' */
	double rsp_stall;     /* fraction of RSP packets swallowed (no ack, no reply) */
	bool fuse_fail;       /* the next fuse burn fails (SR.ERR, nothing burned) */
	bool bad_challenge;   /* SIGN_CHALLENGE signs with a wrong key / wrong MAC */
	bool tamper_pub;      /* GENERATE_KEY / IMPORT answer a public key not the slot's */
	bool tamper_readback; /* flash reads over SWD return one flipped bit */
	bool tamper_lock;     /* debug-lock fuse burns but never takes effect */
	uint8_t refuse[256];  /* refuse[cmd] != 0: the agent answers WIRE_ST_REFUSED */
};

struct sim_config {
	int boards;
	const char *state_dir;   /* NULL: RAM only */
	uint64_t seed;           /* 0: random UIDs */
	int rsp_port;            /* base port, board i listens on base+i; 0: ephemeral */
	/* remote_bitbang debug port: -1 none; 0 ephemeral; else board i on base+i */
	int bitbang_port;
	/* A second RSP server per board on a pseudo-terminal, speaking as a
	 * Black Magic Probe's GDB port does (monitor swd_scan, vAttach). */
	bool bmp_pty;
	/* The RSP servers offer no flash driver (qXfer:memory-map:read and
	 * vFlash*, sim/rsp_flash.c): clients program flash through the flash
	 * controller's registers, as with a server that has none. */
	bool no_flash_driver;
	/* A Bus Pirate probe per board on a pseudo-terminal (sim/buspirate.h),
	 * in front of the same debug port as remote_bitbang. */
	bool buspirate;
	const char *chip;        /* chip family (sim/chip.h); NULL: imprint-vb1 */
	/* nordic-nrf52840: comma-separated revisions, board i takes the i-th
	 * (the last one repeats); NULL: legacy */
	const char *revisions;
	bool fw_keeps_approtect; /* nordic-nrf52840: firmware never opens APPROTECT */
	double latency;          /* latency scale */
	struct sim_faults faults;
	bool backdoor;           /* test only: write slot keys to STATE/board-N/backdoor */
	const char *capture_dir; /* NULL: no capture */
	/* PC/SC card personality (sim/card.h): board i's card connects to vpcd
	 * at pcsc_host:pcsc_port+i; port 0: no card. */
	const char *pcsc_host;
	int pcsc_port;
	uint64_t card_remove_after; /* pull the card out after N APDUs (once); 0: never */
	double card_back_after_s;   /* ... and put it back this much later */
	uint64_t card_tamper;       /* flip a bit in the N-th secured response; 0: never */
};

struct sim_board;

/*
 * Create board `index` and start its agent and RSP threads. stop_fd becomes
 * readable when everything must stop. Hands over ownership: stop and free
 * with sim_board_free(). On failure *out is normally NULL; if it is not, a
 * thread already runs and the caller frees *out after signalling stop_fd.
 */
imp_err sim_board_start(const struct sim_config *cfg, int index, int stop_fd,
			struct sim_board **out);
/* Join the board's threads (stop_fd must be readable by now) and free it. */
void sim_board_free(struct sim_board *b);

/* One JSON object (no newline) describing the board's endpoints, malloc'ed:
 * board, uid, rsp, uart, state, and when present bitbang ("127.0.0.1:PORT"),
 * buspirate (the pty's path), bmp,
 * chip, revision, deviceid, vpcd_port. */
char *sim_board_endpoint_json(const struct sim_board *b);

/* Seconds of delay the latency model charged board b so far (SE, flash,
 * fuses, UART byte times): the physical floor of what the station did. */
double sim_board_modelled_s(const struct sim_board *b);
/* Whole-flash erases board b's chip did (sim_chip_mass_erases). */
uint64_t sim_board_mass_erases(const struct sim_board *b);

/*
 * Swapping the board on a fixture (the fixture's endpoints stay: RSP port,
 * remote_bitbang port, UART pty). remove: the board leaves; until the next
 * insert the agent never answers (a UART with nothing on it), the RSP
 * server answers E01 to every access that needs a target and the debug
 * port's TDO reads 1 (an empty JTAG chain). IMP_ERR_NOT_FOUND if there was
 * no board. insert: a new board (a new chip and secure element, a new UID:
 * derived from the seed, the fixture and the generation, else random), as
 * new from the factory; IMP_ERR_EXISTS if a board is there. Both wait for
 * the request being served to finish. Not with a PC/SC card
 * (IMP_ERR_UNSUPPORTED).
 */
imp_err sim_board_remove(struct sim_board *b);
imp_err sim_board_insert(struct sim_board *b);
bool sim_board_present(struct sim_board *b);

/* Derive board index's UID from a seed (--seed), 16 bytes. */
void sim_uid_from_seed(uint64_t seed, int index, uint8_t uid[16]);

#endif
