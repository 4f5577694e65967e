/*
 * The vboard's control port: swap the board on a fixture on command, for
 * tests of a station that waits for boards (docs/VBOARD.md "Swapping
 * boards"). Loopback TCP, line commands, JSON answers.
 */
#ifndef SIM_CONTROL_H
#define SIM_CONTROL_H

#include <stddef.h>

#include "sim/vboard.h"

struct sim_control {
	int listen_fd;                 /* bound and listening on 127.0.0.1 */
	int port;                      /* its port, named in the ready line */
	int stop_fd;                   /* readable: the thread returns */
	struct sim_board *const *boards;
	int n;
	const char *endpoints;         /* rewritten after every change; may be NULL */
};

/* The thread's body (arg: struct sim_control, which must outlive it). */
void *sim_control_main(void *arg);

/*
 * The endpoint lines (one per board, then the ready line, naming the
 * control port when control_port > 0), malloc'ed, *len bytes. NULL when
 * out of memory.
 */
char *sim_endpoint_lines(struct sim_board *const *boards, int n, int control_port,
			 size_t *len);

#endif
