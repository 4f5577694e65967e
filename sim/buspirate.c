/*
 * The Bus Pirate probe of the virtual board (sim/buspirate.h): the decoder,
 * and its server on a pseudo-terminal, one per board.
 *
 * The pty: the board holds only the master, so the master reads POLLHUP
 * while no host has the slave open, which is how the host's close is seen
 * without an inotify instance per board (the per-user limit is 128 by
 * default, and each board's UART already holds one). The slave path
 * ("buspirate" in the endpoint line) stays valid for as long as the master
 * is open, across any number of OpenOCDs opening and closing it; OpenOCD
 * sets the line itself (8N1, no echo, no CR/LF or flow-control mapping).
 * At a close the answers the host left unread are dropped, so is the
 * answer to a batch that was still running (a stalled flash access), the
 * decoder goes back to the console and the chip's debug session ends
 * (sim_chip_debug_detach), as the remote_bitbang server does when its
 * client disconnects. A second thread counts the closes, so one that
 * happened while a batch stalled is seen even when the next host has
 * opened the port by then. While no host is there the threads look every
 * SIM_PIRATE_REOPEN_POLL_MS for the next. Each batch of bytes read from the
 * master is decoded under the slot lock and answered with one write.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "board_int.h"
#include "imprint/log.h"
#include "sim/buspirate.h"

/* How often a port no host holds open is looked at for the next one. */
#define SIM_PIRATE_REOPEN_POLL_MS 20

enum {
	OCD_EXIT = 0x00,
	OCD_PORT_MODE = 0x01,
	OCD_FEATURE = 0x02,
	OCD_READ_ADCS = 0x03,
	OCD_TAP_SHIFT = 0x05,
	OCD_ENTER = 0x06,
	OCD_UART_SPEED = 0x07,
	OCD_JTAG_SPEED = 0x08,
};

enum { FEAT_TRST = 0x04, FEAT_SRST = 0x08 };

/* ADC counts (the firmware's 10-bit readings through its divider, 155.15
 * counts per volt as OpenOCD converts them): probe, pull-up, 3.3 V, 5 V. */
static const uint16_t adc_counts[4] = { 0, 0, 512, 776 };

void sim_pirate_init(struct sim_pirate *p, bool srst_wired)
{
	memset(p, 0, sizeof(*p));
	p->srst_wired = srst_wired;
}

void sim_pirate_hangup(struct sim_pirate *p)
{
	p->mode = SIM_PIRATE_CONSOLE;
	p->zeros = 0;
	p->cmd = 0;
	p->have = 0;
	p->shift_left = 0;
	p->shift_half = false;
}

void sim_pirate_idle(struct sim_pirate *p)
{
	p->cmd = 0;
	p->have = 0;
	p->shift_left = 0;
	p->shift_half = false;
}

static size_t put(uint8_t *out, const char *s)
{
	size_t n = strlen(s);

	memcpy(out, s, n);
	return n;
}

static void set_trst(struct sim_pirate *p, bool low)
{
	if (low && p->dap)
		sim_dap_trst(p->dap);
	p->trst_low = low;
}

static void set_srst(struct sim_pirate *p, bool low)
{
	if (p->srst_low && !low && p->srst_wired && p->chip) {
		IMP_DEBUG("bus pirate: nRESET released: reset");
		sim_chip_reset(p->chip);
	}
	p->srst_low = low;
}

/* Shift up to 8 bits of one (TDI, TMS) pair; returns the TDO byte. */
static uint8_t shift_pair(struct sim_pirate *p, uint8_t tdi, uint8_t tms)
{
	unsigned bits = p->shift_left < 8 ? p->shift_left : 8;
	uint8_t tdo = 0;

	for (unsigned i = 0; i < bits; i++) {
		/* nothing drives TDO without a board: the pull-up reads 1 */
		int level = p->dap ? sim_dap_tdo(p->dap) : 1;

		tdo |= (uint8_t)(level << i);
		if (p->pin_mode == 0 || !p->dap)
			continue; /* TCK not driven, or nothing to clock */
		if (p->trst_low)
			sim_dap_trst(p->dap);
		else
			sim_dap_clock(p->dap, (tms >> i) & 1, (tdi >> i) & 1);
	}
	p->shift_left -= bits;
	p->shifted_bits += bits;
	return tdo;
}

/* One byte in OpenOCD mode: collect a command's arguments, then act. */
static size_t ocd_byte(struct sim_pirate *p, uint8_t ch, uint8_t *out)
{
	size_t o = 0;

	if (p->cmd == OCD_TAP_SHIFT && p->have == 2) {
		/* the data pairs */
		if (!p->shift_half) {
			p->shift_tdi = ch;
			p->shift_half = true;
			return 0;
		}
		p->shift_half = false;
		out[o++] = shift_pair(p, p->shift_tdi, ch);
		if (p->shift_left == 0)
			p->cmd = 0;
		return o;
	}
	if (p->cmd == 0) {
		switch (ch) {
		case OCD_EXIT:
			p->mode = SIM_PIRATE_BBIO;
			return put(out, "BBIO1");
		case OCD_READ_ADCS:
			out[o++] = OCD_READ_ADCS;
			out[o++] = 8;
			for (int i = 0; i < 4; i++) {
				out[o++] = (uint8_t)(adc_counts[i] >> 8);
				out[o++] = (uint8_t)adc_counts[i];
			}
			return o;
		case OCD_ENTER:
			return put(out, "OCD1");
		case OCD_PORT_MODE:
		case OCD_FEATURE:
		case OCD_TAP_SHIFT:
		case OCD_UART_SPEED:
		case OCD_JTAG_SPEED:
			p->cmd = ch;
			p->have = 0;
			return 0;
		default:
			out[o++] = 0x00; /* unknown command */
			return o;
		}
	}
	p->arg[p->have++] = ch;
	switch (p->cmd) {
	case OCD_PORT_MODE:
		p->pin_mode = ch <= 2 ? ch : 0;
		if (p->pin_mode != 0) {
			/* the firmware drives every output low first */
			set_trst(p, true);
			set_srst(p, true);
		} else {
			/* nothing driven: the board's pull-ups release both */
			set_trst(p, false);
			set_srst(p, false);
		}
		p->cmd = 0;
		break;
	case OCD_FEATURE:
		if (p->have < 2)
			break;
		if (p->arg[0] == FEAT_TRST && p->pin_mode != 0)
			set_trst(p, p->arg[1] == 0);
		else if (p->arg[0] == FEAT_SRST && p->pin_mode != 0)
			set_srst(p, p->arg[1] == 0);
		p->cmd = 0;
		break;
	case OCD_JTAG_SPEED:
		if (p->have == 2)
			p->cmd = 0;
		break;
	case OCD_UART_SPEED:
		if (p->have < 3)
			break;
		out[o++] = OCD_UART_SPEED;
		out[o++] = p->arg[1] == 0xAA && p->arg[2] == 0x55 ? p->arg[0] : 0x00;
		p->cmd = 0;
		break;
	case OCD_TAP_SHIFT:
		if (p->have < 2)
			break;
		p->shift_left = (unsigned)p->arg[0] << 8 | p->arg[1];
		if (p->shift_left > SIM_PIRATE_MAX_SHIFT_BITS)
			p->shift_left = SIM_PIRATE_MAX_SHIFT_BITS;
		p->shift_half = false;
		out[o++] = OCD_TAP_SHIFT;
		out[o++] = p->arg[0];
		out[o++] = p->arg[1];
		if (p->shift_left == 0)
			p->cmd = 0;
		break;
	default:
		p->cmd = 0;
		break;
	}
	return o;
}

size_t sim_pirate_feed(struct sim_pirate *p, const uint8_t *in, size_t n, uint8_t *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		uint8_t ch = in[i];

		switch (p->mode) {
		case SIM_PIRATE_CONSOLE:
			if (ch != 0x00) {
				p->zeros = 0;
				break;
			}
			if (++p->zeros == SIM_PIRATE_ZEROS_TO_BBIO) {
				p->zeros = 0;
				p->mode = SIM_PIRATE_BBIO;
				o += put(out + o, "BBIO1");
			}
			break;
		case SIM_PIRATE_BBIO:
			if (ch == 0x00) {
				o += put(out + o, "BBIO1");
			} else if (ch == OCD_ENTER) {
				p->mode = SIM_PIRATE_OCD;
				p->cmd = 0;
				o += put(out + o, "OCD1");
			} else if (ch == 0x0F) {
				p->mode = SIM_PIRATE_CONSOLE;
				p->zeros = 0;
				out[o++] = 0x01;
			}
			break;
		case SIM_PIRATE_OCD:
			o += ocd_byte(p, ch, out + o);
			break;
		}
	}
	return o;
}

/* ---- the server on the board's pty ---- */

/* Answers the host never read: gone with it (a new host discards what it
 * finds, but only for its first 100 ms). On a pty master, TCOFLUSH drops
 * what waits in the slave's input. */
static void on_close(struct sim_board *b, struct sim_pirate *pir)
{
	IMP_DEBUG("board %d: bus pirate: the host closed the port (mode %d, command 0x%02x)",
		  b->index, (int)pir->mode, pir->cmd);
	tcflush(b->pirate_master, TCOFLUSH);
	sim_pirate_hangup(pir);
	pthread_rwlock_rdlock(&b->slot_lock);
	if (b->chip)
		sim_chip_debug_detach(b->chip);
	pthread_rwlock_unlock(&b->slot_lock);
}

/* No slave descriptor is open: the master reads POLLHUP. */
static bool hung_up(const struct sim_board *b)
{
	struct pollfd q = { b->pirate_master, 0, 0 };

	return poll(&q, 1, 0) == 1 && (q.revents & POLLHUP);
}

/*
 * Counts the host's closes (b->pirate_closes), also while the server is
 * stalled in a batch and a new host opened the port meanwhile: a poll for
 * no event at all still reports POLLHUP, and wakes when the slave closes.
 */
void *sim_pirate_hup_main(void *arg)
{
	struct sim_board *b = arg;

	for (;;) {
		struct pollfd p[2] = { { b->pirate_master, 0, 0 }, { b->stop_fd, POLLIN, 0 } };

		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (!(p[0].revents & POLLHUP))
			continue;
		__atomic_add_fetch(&b->pirate_closes, 1, __ATOMIC_SEQ_CST);
		/* closed: wait for the next host to open it */
		while (hung_up(b)) {
			if (poll(&p[1], 1, SIM_PIRATE_REOPEN_POLL_MS) != 0)
				return NULL;
		}
	}
	return NULL;
}

static unsigned closes(const struct sim_board *b)
{
	return __atomic_load_n(&b->pirate_closes, __ATOMIC_SEQ_CST);
}

static void send_answer(struct sim_board *b, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(b->pirate_master, p, n);

		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			/* The host does not read: its queue is full. Wait a
			 * little; a host that never reads loses the answer. */
			struct pollfd q = { b->pirate_master, POLLOUT, 0 };

			if (poll(&q, 1, 1000) > 0)
				continue;
		}
		IMP_DEBUG("board %d: bus pirate: %zu answer bytes dropped", b->index, n);
		return;
	}
}

void *sim_pirate_main(void *arg)
{
	struct sim_board *b = arg;
	struct sim_pirate pir;
	uint8_t in[4096];
	uint8_t *out = malloc(sizeof(in) * SIM_PIRATE_MAX_OUT_PER_BYTE);
	struct sim_dap *dap = NULL;
	bool closed = true; /* no host yet */
	unsigned gen, seen = closes(b);

	if (!out)
		return NULL;
	sim_pirate_init(&pir, false);
	pthread_rwlock_rdlock(&b->slot_lock);
	gen = b->generation;
	dap = b->chip ? sim_dap_new(b->chip) : NULL;
	pthread_rwlock_unlock(&b->slot_lock);
	for (;;) {
		struct pollfd p[2] = { { b->pirate_master, POLLIN, 0 }, { b->stop_fd, POLLIN, 0 } };
		int pr = poll(p, 2, pir.cmd ? SIM_PIRATE_IDLE_MS : -1);
		ssize_t got;
		size_t o;

		if (pr < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			break;
		if (pr == 0) {
			IMP_DEBUG("board %d: bus pirate: command 0x%02x left incomplete: dropped",
				  b->index, pir.cmd);
			sim_pirate_idle(&pir);
			continue;
		}
		if (seen != closes(b)) {
			seen = closes(b);
			on_close(b, &pir);
			closed = true;
		}
		if (!(p[0].revents & POLLIN)) {
			/* No host has the port open: wait for the next one, which
			 * says nothing for its first 100 ms anyway. */
			if (!closed)
				on_close(b, &pir);
			closed = true;
			poll(&p[1], 1, SIM_PIRATE_REOPEN_POLL_MS);
			continue;
		}
		got = read(b->pirate_master, in, sizeof(in));
		if (got <= 0)
			continue;
		closed = false;
		sim_capture(b->cap_pirate_fd, in, (size_t)got);
		pthread_rwlock_rdlock(&b->slot_lock);
		if (gen != b->generation || (dap && !b->chip)) {
			/* The board was swapped: this is another chain. */
			sim_dap_free(dap);
			dap = b->chip ? sim_dap_new(b->chip) : NULL;
			gen = b->generation;
		}
		pir.dap = dap;
		pir.chip = b->chip;
		o = sim_pirate_feed(&pir, in, (size_t)got, out);
		pir.dap = NULL;
		pir.chip = NULL;
		pthread_rwlock_unlock(&b->slot_lock);
		if (seen != closes(b)) {
			/* the host went away while the batch ran (a stalled
			 * flash access can take long): nobody wants its answer */
			seen = closes(b);
			on_close(b, &pir);
			closed = true;
			continue;
		}
		if (o)
			send_answer(b, out, o);
	}
	pthread_rwlock_rdlock(&b->slot_lock);
	sim_dap_free(dap);
	pthread_rwlock_unlock(&b->slot_lock);
	free(out);
	return NULL;
}
