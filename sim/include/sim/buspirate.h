/*
 * The virtual board's Bus Pirate: the probe's binary modes as OpenOCD's
 * `buspirate` adapter driver (src/jtag/drivers/buspirate.c, 0.12) speaks
 * them over a serial port, in front of the board's TAP (sim/dap.h).
 * sim/buspirate.c carries it on a pseudo-terminal (docs/VBOARD.md).
 *
 * Modes, as Dangerous Prototypes document the binary interface:
 *   console   after power-up and after 0x0F. 20 consecutive 0x00 bytes
 *             enter bitbang mode and answer "BBIO1"; any other byte
 *             restarts the count (the model has no text console).
 *   BBIO1     0x00 answers "BBIO1"; 0x06 enters OpenOCD mode and answers
 *             "OCD1"; 0x0F answers 0x01 and returns to the console. The
 *             other modes (SPI, I2C, UART, 1-Wire, raw-wire, pin control)
 *             are not modelled: those bytes are ignored, unanswered.
 *   OCD1      (the Bus Pirate firmware's binOpenOCD):
 *     0x00                 back to BBIO1, answers "BBIO1"
 *     0x01 MODE            pin mode: 0 HiZ (nothing driven), 1 push-pull,
 *                          2 open-drain; 1 and 2 first drive every output
 *                          low (TCK, TMS, TDI, TRST and SRST); no answer
 *     0x02 FEAT ACTION     FEAT 0x04 TRST, 0x08 SRST: ACTION is the pin
 *                          level (0 low = asserted); 0x01 LED, 0x02 VREG,
 *                          0x10 PULLUP are accepted; no answer
 *     0x03                 answers 0x03 0x08 and four ADC readings (16-bit
 *                          big-endian: probe 0 V, pull-up 0 V, 3.3 V, 5 V)
 *     0x05 HI LO DATA      CMD_TAP_SHIFT of N = HI<<8|LO bits (at most
 *                          0x2000 are shifted, as the firmware limits it),
 *                          DATA = ceil(N/8) pairs of bytes (TDI, TMS), bit
 *                          i of the sequence in bit i%8 of pair i/8. The
 *                          header 0x05 HI LO is echoed at once, then one
 *                          TDO byte per pair as the pair arrives: TDO is
 *                          sampled for each bit before its rising TCK edge
 *                          (LSB first, unused high bits 0)
 *     0x06                 answers "OCD1"
 *     0x07 SPEED 0xAA 0x55 serial speed change: answers 0x07 SPEED (0x07
 *                          0x00 when the two check bytes are wrong); the
 *                          baud rate itself is not modelled
 *     0x08 HI LO           JTAG delay: accepted, no answer
 *     anything else        answers 0x00
 *
 * Pins: TRST low holds the TAP in Test-Logic-Reset (sim_dap_trst); in
 * HiZ mode TCK is not driven and a shift clocks nothing (TDO still reads
 * back). SRST reaches the chip's nRESET only when the fixture wires it
 * (srst_wired): releasing it then resets the chip (sim_chip_reset).
 * Unwired, as the vboard's fixtures are by default, since the pin-mode
 * command drives SRST low at every OpenOCD start: wired, each connect
 * would reset the chip.
 *
 * The decoder is a byte-at-a-time state machine: any byte sequence,
 * truncated or malformed, only moves it between the states above; it
 * allocates nothing and never reads past what it is given.
 */
#ifndef SIM_BUSPIRATE_H
#define SIM_BUSPIRATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim/chip.h"
#include "sim/dap.h"

#define SIM_PIRATE_ZEROS_TO_BBIO 20
#define SIM_PIRATE_MAX_SHIFT_BITS 0x2000u
/* A command left incomplete this long is dropped (sim_pirate_idle): less
 * than the 100 ms OpenOCD's driver spends discarding stale input after it
 * opens the port and before its first byte, far more than the gap between
 * the pieces of one write(). */
#define SIM_PIRATE_IDLE_MS 50
/* The most a single input byte can make the decoder answer ("BBIO1"). */
#define SIM_PIRATE_MAX_OUT_PER_BYTE 10u

enum sim_pirate_mode {
	SIM_PIRATE_CONSOLE = 0,
	SIM_PIRATE_BBIO,
	SIM_PIRATE_OCD,
};

struct sim_pirate {
	/* The caller's, set before each sim_pirate_feed; NULL: no board on
	 * the fixture (TDO reads 1, the pull-up). */
	struct sim_dap *dap;
	struct sim_chip *chip;
	bool srst_wired;

	/* the decoder's own state; read-only for callers and tests */
	enum sim_pirate_mode mode;
	unsigned zeros;           /* consecutive 0x00 in the console */
	uint8_t cmd;              /* OCD command being collected; 0: none */
	uint8_t arg[3];
	unsigned have;            /* argument bytes collected */
	unsigned shift_left;      /* CMD_TAP_SHIFT: bits still to shift */
	uint8_t shift_tdi;        /* the pair's TDI byte, once it arrived */
	bool shift_half;          /* TDI byte of the current pair received */
	unsigned pin_mode;        /* 0 HiZ, 1 push-pull, 2 open-drain */
	bool trst_low, srst_low;
	uint64_t shifted_bits;    /* statistics: bits clocked since init */
};

/* A Bus Pirate after power-up: console, pins HiZ. */
void sim_pirate_init(struct sim_pirate *p, bool srst_wired);

/*
 * Decode n received bytes, acting on p->dap and p->chip. The answers go to
 * out, which must hold at least n * SIM_PIRATE_MAX_OUT_PER_BYTE bytes;
 * returns how many were written.
 */
size_t sim_pirate_feed(struct sim_pirate *p, const uint8_t *in, size_t n, uint8_t *out);

/* No byte for SIM_PIRATE_IDLE_MS while a command is incomplete: the host
 * died in the middle of it (a write cut short by SIGKILL). The rest is
 * dropped, the mode kept, so the next host's handshake (20 x 0x00) is not
 * taken for shift data. A real Bus Pirate has no such timeout: it would
 * wait for the bytes, and the fixture would replug it. */
void sim_pirate_idle(struct sim_pirate *p);

/* The host closed the serial port: a half-received command is dropped and
 * the probe is back in the console, pins kept (the model's choice: a real
 * one keeps its mode until replugged or sent 0x00s). */
void sim_pirate_hangup(struct sim_pirate *p);

#endif
