/* Private to board/: the wait-and-read step of every byte-stream driver
 * (the serial link, the RSP probe). */
#ifndef BOARD_IO_INT_H
#define BOARD_IO_INT_H

#include <stddef.h>
#include <stdint.h>

enum board_io {
	BOARD_IO_DATA,    /* *got > 0 bytes were read */
	BOARD_IO_AGAIN,   /* interrupted or nothing after all: call again */
	BOARD_IO_TIMEOUT, /* the deadline passed with nothing to read */
	BOARD_IO_EOF,     /* read returned 0 without a hang-up (a socket's end of
			   * stream; a pty between two writes) */
	BOARD_IO_HANGUP,  /* read returned 0 with a hang-up: the peer is gone */
	BOARD_IO_ERROR,   /* poll or read failed, or the descriptor did: errno says */
};

/*
 * Wait until fd is readable or deadline (CLOCK_MONOTONIC ns, imp_now_ns)
 * passes, then read what is there into buf (at most cap bytes).
 */
enum board_io board_io_read(int fd, uint64_t deadline, uint8_t *buf, size_t cap, size_t *got);

/*
 * A connected stream socket made for board_io_recv: blocking, with a
 * receive timeout of BOARD_IO_SLICE_MS (SO_RCVTIMEO). Once per connection;
 * senders then pass MSG_DONTWAIT to keep their own timeouts. 0, or -1 with
 * errno.
 */
#define BOARD_IO_SLICE_MS 250
int board_io_socket_setup(int fd);

/*
 * board_io_read for a socket set up so: while the deadline is at least a
 * slice away, one recv that sleeps until data comes (or the slice ends:
 * BOARD_IO_AGAIN) instead of a poll and a read; closer to the deadline,
 * board_io_read, so the deadline is kept as exactly as there.
 */
enum board_io board_io_recv(int fd, uint64_t deadline, uint8_t *buf, size_t cap, size_t *got);

#endif
