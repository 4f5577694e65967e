/*
 * Link driver "serial": agent frames over a tty in raw mode.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <termios.h>
#include <unistd.h>

#include "board/agent.h"
#include "board/link.h"
#include "imprint/log.h"
#include "io_int.h"
#include "imprint/util.h"

#define RX_CAP (3 * WIRE_FRAME_MAX_LEN)
#define READ_SLICE_DS 2                          /* VTIME: 200 ms */
#define READ_SLICE_NS (READ_SLICE_DS * 100000000ull)

struct serial {
	int fd;                   /* non-blocking: writes, and reads near a deadline */
	/* The same tty opened again, blocking: with VMIN 0 / VTIME a slice, one
	 * read sleeps until bytes come or the slice ends, where fd needs a poll
	 * and a read. -1: not available (fd alone). */
	int rfd;
	bool poll_next;           /* the last slice ended empty: poll (sees a hang-up) */
	char path[256];
	uint16_t seq;
	size_t rx_len;
	/* buffers: not cleared (serial_open); rx is valid up to rx_len */
	uint8_t rx[RX_CAP];
	uint8_t tx[WIRE_FRAME_MAX_LEN];
	struct wire_frame f;      /* decode scratch */
};

static const struct {
	unsigned baud;
	speed_t code;
} bauds[] = {
	{ 9600, B9600 }, { 19200, B19200 }, { 38400, B38400 }, { 57600, B57600 },
	{ 115200, B115200 }, { 230400, B230400 }, { 460800, B460800 }, { 500000, B500000 },
	{ 576000, B576000 }, { 921600, B921600 }, { 1000000, B1000000 },
	{ 1500000, B1500000 }, { 2000000, B2000000 }, { 3000000, B3000000 },
	{ 4000000, B4000000 },
};

static imp_err serial_open(const char *path, unsigned baud, void **priv)
{
	struct termios tio;
	struct serial *s;
	speed_t code = 0;
	bool found = false;

	if (baud == 0)
		baud = BOARD_LINK_DEFAULT_BAUD;
	for (size_t i = 0; i < IMP_ARRAY_SIZE(bauds); i++)
		if (bauds[i].baud == baud) {
			code = bauds[i].code;
			found = true;
		}
	if (!found) {
		IMP_ERROR("serial link: unsupported baud rate %u (try 115200 or 921600)", baud);
		return IMP_ERR_USAGE;
	}
	/* Only the members before the buffers are cleared: clearing the
	 * 16 KiB of buffers would fault in every page of them for each board,
	 * where a session touches only what it receives. */
	s = malloc(sizeof(*s));
	if (!s)
		return IMP_ERR_NOMEM;
	memset(s, 0, offsetof(struct serial, rx));
	snprintf(s->path, sizeof(s->path), "%s", path);
	s->fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (s->fd < 0) {
		IMP_ERROR("serial link: cannot open %s: %s; check the UART path (and permissions, "
			  "group dialout)", path, strerror(errno));
		free(s);
		return IMP_ERR_LINK;
	}
	if (tcgetattr(s->fd, &tio) != 0) {
		IMP_ERROR("serial link: %s is not a terminal: %s", path, strerror(errno));
		goto fail;
	}
	cfmakeraw(&tio);
	tio.c_cflag |= CLOCAL | CREAD;
	tio.c_cflag &= ~(tcflag_t)CRTSCTS;
	tio.c_cc[VMIN] = 0;
	tio.c_cc[VTIME] = READ_SLICE_DS; /* for rfd; fd is non-blocking */
	if (cfsetispeed(&tio, code) != 0 || cfsetospeed(&tio, code) != 0 ||
	    tcsetattr(s->fd, TCSANOW, &tio) != 0) {
		IMP_ERROR("serial link: cannot set %s to %u baud raw mode: %s", path, baud,
			  strerror(errno));
		goto fail;
	}
	/* Stale input (boot banner, an earlier session's answers) is not ours. */
	tcflush(s->fd, TCIOFLUSH);
	for (;;) {
		uint8_t junk[256];

		if (read(s->fd, junk, sizeof(junk)) <= 0)
			break;
	}
	s->rfd = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
	/* A random first seq: the agent's replay cache may still hold the
	 * last seq of an earlier session. */
	if (getrandom(&s->seq, sizeof(s->seq), 0) != sizeof(s->seq))
		s->seq = (uint16_t)(imp_now_ns() & 0xFFFF);
	*priv = s;
	return IMP_OK;
fail:
	close(s->fd);
	free(s);
	return IMP_ERR_LINK;
}

static void serial_close(void *priv)
{
	struct serial *s = priv;

	if (s->rfd >= 0)
		close(s->rfd);
	close(s->fd);
	free(s);
}

static imp_err write_all(struct serial *s, const uint8_t *p, size_t n, uint64_t deadline)
{
	while (n > 0) {
		ssize_t w = write(s->fd, p, n);

		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			struct pollfd pfd = { .fd = s->fd, .events = POLLOUT };
			uint64_t now = imp_now_ns();

			if (now >= deadline || poll(&pfd, 1, (int)((deadline - now) / 1000000 + 1)) == 0)
				return IMP_ERR_TIMEOUT;
			continue;
		}
		IMP_ERROR("serial link: write to %s failed: %s; check the cable or that the "
			  "board is still attached", s->path, strerror(errno));
		return IMP_ERR_LINK;
	}
	return IMP_OK;
}

/* Read what is available, waiting until deadline. */
static imp_err fill(struct serial *s, uint64_t deadline)
{
	uint64_t now = imp_now_ns();
	size_t got = 0;
	enum board_io r;

	if (s->rx_len == RX_CAP)
		s->rx_len = 0; /* cannot happen with the decoder's bounds; be safe */
	if (s->rfd >= 0 && !s->poll_next && now < deadline && deadline - now >= READ_SLICE_NS) {
		ssize_t n = read(s->rfd, s->rx + s->rx_len, RX_CAP - s->rx_len);

		if (n > 0) {
			got = (size_t)n;
			r = BOARD_IO_DATA;
		} else if (n == 0 || errno == EINTR || errno == EAGAIN) {
			/* 0: the slice ended with nothing (or the tty hung up: the
			 * poll that follows tells). */
			s->poll_next = n == 0;
			r = BOARD_IO_AGAIN;
		} else {
			r = BOARD_IO_ERROR;
		}
	} else {
		r = board_io_read(s->fd, deadline, s->rx + s->rx_len, RX_CAP - s->rx_len, &got);
		s->poll_next = false;
	}
	switch (r) {
	case BOARD_IO_DATA:
		s->rx_len += got;
		return IMP_OK;
	case BOARD_IO_AGAIN:
	case BOARD_IO_EOF:
		return IMP_OK;
	case BOARD_IO_TIMEOUT:
		return IMP_ERR_TIMEOUT;
	case BOARD_IO_HANGUP:
		IMP_ERROR("serial link: %s went away (hang-up); check that the board (or "
			  "imprint-vboard) is still running", s->path);
		imp_sleep_us(1000); /* a pty without a master reports HUP at once */
		return IMP_ERR_LINK;
	case BOARD_IO_ERROR:
	default:
		IMP_ERROR("serial link: %s failed (%s); check that the board is still attached",
			  s->path, strerror(errno));
		return IMP_ERR_LINK;
	}
}

static void drop(struct serial *s, size_t n)
{
	memmove(s->rx, s->rx + n, s->rx_len - n);
	s->rx_len -= n;
}

enum wait_result { GOT_IT, RESEND, FATAL };

/* Wait for the answer to (type, seq) until deadline. */
static enum wait_result wait_answer(struct serial *s, uint8_t type, uint16_t seq,
				    struct wire_frame *rsp, uint64_t deadline,
				    struct board_link_stats *st, imp_err *why)
{
	bool timed_out = false;

	for (;;) {
		size_t consumed = 0;
		enum wire_frame_result r = wire_frame_decode(s->rx, s->rx_len, &s->f, &consumed);

		switch (r) {
		case WIRE_FRAME_OK:
			drop(s, consumed);
			if (s->f.seq == seq && s->f.type == (uint8_t)(type | WIRE_FRAME_RESPONSE)) {
				rsp->type = s->f.type;
				rsp->seq = s->f.seq;
				rsp->len = s->f.len;
				memcpy(rsp->payload, s->f.payload, s->f.len);
				return GOT_IT;
			}
			if (s->f.seq == seq && s->f.type == WIRE_FRAME_TYPE_NAK) {
				st->naks++;
				*why = IMP_ERR_PROTOCOL;
				return RESEND;
			}
			st->discarded++;
			continue;
		case WIRE_FRAME_BAD_CRC:
			drop(s, consumed);
			st->bad_crc++;
			*why = IMP_ERR_PROTOCOL;
			/* The header is untrusted, but if it names our exchange our
			 * answer was damaged: ask again now instead of waiting. */
			if (s->f.seq == seq &&
			    s->f.type == (uint8_t)(type | WIRE_FRAME_RESPONSE))
				return RESEND;
			continue;
		case WIRE_FRAME_BAD:
			drop(s, consumed);
			st->bad_frames++;
			*why = IMP_ERR_PROTOCOL;
			continue;
		case WIRE_FRAME_NEED_MORE: {
			imp_err rc;

			st->noise_bytes += consumed;
			drop(s, consumed);
			if (timed_out) {
				/* Nothing more came: a header still waiting for its
				 * payload had a damaged length. Skip its magic and look
				 * for a frame behind it before asking again. */
				if (s->rx_len == 0)
					return RESEND;
				drop(s, 1);
				st->bad_frames++;
				continue;
			}
			rc = fill(s, deadline);
			if (rc == IMP_ERR_TIMEOUT) {
				st->timeouts++;
				if (*why == IMP_OK)
					*why = IMP_ERR_TIMEOUT;
				timed_out = true;
				continue;
			}
			if (rc != IMP_OK) {
				*why = rc;
				return FATAL;
			}
			continue;
		}
		}
	}
}

static imp_err serial_transact(void *priv, const struct wire_frame *req,
			       struct wire_frame *rsp, unsigned timeout_ms, unsigned max_retries,
			       struct board_link_stats *st)
{
	struct serial *s = priv;
	struct wire_frame *f = &s->f;
	uint16_t seq = ++s->seq;
	imp_err why = IMP_OK;
	size_t n;

	f->type = req->type;
	f->seq = seq;
	f->len = req->len;
	memcpy(f->payload, req->payload, req->len);
	n = wire_frame_encode(f, s->tx, sizeof(s->tx));
	if (n == 0)
		return IMP_ERR_INTERNAL;
	for (unsigned attempt = 0; attempt <= max_retries; attempt++) {
		uint64_t deadline = imp_now_ns() + (uint64_t)timeout_ms * 1000000u;
		enum wait_result wr;
		imp_err rc;

		if (attempt > 0)
			st->retransmits++;
		why = IMP_OK;
		rc = write_all(s, s->tx, n, deadline);
		if (rc == IMP_ERR_LINK)
			return rc;
		wr = wait_answer(s, req->type, seq, rsp, deadline, st, &why);
		if (wr == GOT_IT)
			return IMP_OK;
		if (wr == FATAL)
			return why;
	}
	/* The wrapper (board_link_transact) says what went wrong, unless quiet. */
	return why == IMP_OK ? IMP_ERR_TIMEOUT : why;
}

const struct board_link_driver board_link_serial = {
	.name = "serial",
	.open = serial_open,
	.close = serial_close,
	.transact = serial_transact,
};
