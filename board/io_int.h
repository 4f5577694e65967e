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

#endif
