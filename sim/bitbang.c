/*
 * OpenOCD's remote_bitbang protocol on loopback TCP, one client at a time:
 * each byte is a command. '0'..'7' set TCK (4), TMS (2) and TDI (1); a
 * rising TCK edge clocks the TAP (sim/dap.h). 'R' asks for TDO: the answer
 * is '0' or '1'. 'r'..'u' set TRST (2) and SRST (1): TRST resets the TAP,
 * releasing SRST after asserting it resets the chip (the nRESET pin).
 * 'B'/'b' (the LED) are ignored, 'Q' ends the session. Anything else is
 * ignored. Answers are sent when the bytes received so far are processed,
 * which is when OpenOCD waits for them.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "board_int.h"
#include "imprint/log.h"
#include "imprint/util.h"
#include "sim/dap.h"

struct bb_conn {
	struct sim_board *b;
	struct sim_dap *dap;
	int tck;
	int srst;
	bool quit;
};

static int send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Process n command bytes; answers go to out (at most n of them). */
static size_t feed(struct bb_conn *c, const uint8_t *in, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n && !c->quit; i++) {
		uint8_t ch = in[i];

		if (ch >= '0' && ch <= '7') {
			int bits = ch - '0', tck = (bits >> 2) & 1;

			if (tck && !c->tck && c->dap)
				sim_dap_clock(c->dap, (bits >> 1) & 1, bits & 1);
			c->tck = tck;
		} else if (ch == 'R') {
			/* No board: nothing drives TDO, the pull-up reads 1. */
			out[o++] = !c->dap || sim_dap_tdo(c->dap) ? '1' : '0';
		} else if (ch >= 'r' && ch <= 'u') {
			int bits = ch - 'r', srst = bits & 1;

			if ((bits & 2) && c->dap)
				sim_dap_trst(c->dap);
			if (c->srst && !srst && c->b->chip) {
				IMP_DEBUG("board %d: nRESET released: reset", c->b->index);
				sim_chip_reset(c->b->chip);
			}
			c->srst = srst;
		} else if (ch == 'Q') {
			c->quit = true;
		}
	}
	return o;
}

static void serve(struct sim_board *b, int fd)
{
	struct bb_conn c = { .b = b };
	uint8_t in[16384];
	char out[sizeof(in)];

	unsigned gen;

	pthread_rwlock_rdlock(&b->slot_lock);
	gen = b->generation;
	c.dap = b->chip ? sim_dap_new(b->chip) : NULL;
	pthread_rwlock_unlock(&b->slot_lock);
	while (!c.quit) {
		ssize_t got;
		size_t o;

		if (!imp_wait_readable(fd, b->stop_fd))
			break;
		got = recv(fd, in, sizeof(in), 0);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		sim_capture(b->cap_jtag_fd, in, (size_t)got);
		pthread_rwlock_rdlock(&b->slot_lock);
		if (gen != b->generation || (c.dap && !b->chip)) {
			/* The board was swapped: this is another chain. */
			sim_dap_free(c.dap);
			c.dap = b->chip ? sim_dap_new(b->chip) : NULL;
			gen = b->generation;
		}
		o = feed(&c, in, (size_t)got, out);
		pthread_rwlock_unlock(&b->slot_lock);
		if (o && send_all(fd, out, o) != 0)
			break;
	}
	pthread_rwlock_rdlock(&b->slot_lock);
	sim_dap_free(c.dap);
	if (b->chip)
		sim_chip_debug_detach(b->chip);
	pthread_rwlock_unlock(&b->slot_lock);
}

void *sim_bitbang_main(void *arg)
{
	sim_serve_clients(arg, ((struct sim_board *)arg)->bb_listen_fd, "remote_bitbang", serve);
	return NULL;
}
