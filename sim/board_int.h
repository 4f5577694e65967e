/* Private to imp_sim: one virtual board's runtime state. */
#ifndef SIM_BOARD_INT_H
#define SIM_BOARD_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "wire/frame.h"
#include "sim/chip.h"
#include "sim/se.h"
#include "sim/vboard.h"

struct sim_board {
	int index;
	const struct sim_config *cfg;
	const struct sim_faults *faults;
	char *state_dir;          /* STATE/board-N, or NULL */
	struct sim_chip *chip;
	struct sim_se *se;
	struct sim_card *card;    /* PC/SC card personality, or NULL */
	/* The board on the fixture (chip, se) can be removed and a new one
	 * inserted (sim_board_remove/insert): every server thread handles a
	 * request, packet or batch under the read lock and treats chip == NULL
	 * as "no board"; the swap holds the write lock. */
	pthread_rwlock_t slot_lock;
	unsigned generation;      /* boards inserted after the first */
	uint64_t retired_ns;      /* modelled time of removed boards */
	uint64_t retired_erases;  /* mass erases of removed boards */
	int stop_fd;
	uint64_t uart_modelled_ns; /* modelled UART byte times (atomic) */

	/* RSP server */
	int listen_fd;
	uint16_t rsp_port;
	uint64_t rsp_rng;
	int cap_rsp_fd;
	pthread_t rsp_thread;
	bool rsp_started;

	/* remote_bitbang debug port (sim/bitbang.c); bb_listen_fd < 0: none */
	int bb_listen_fd;
	uint16_t bb_port;
	int cap_jtag_fd;
	pthread_t bb_thread;
	bool bb_started;

	/* the RSP server as a Black Magic Probe on a pty (sim/rsp.c); bmp_master < 0: none */
	int bmp_master;
	int bmp_slave;            /* held open, as the UART's */
	char bmp_path[128];
	pthread_t bmp_thread;
	bool bmp_started;

	/* the Bus Pirate probe on a pty, master only (sim/buspirate.c); < 0: none */
	int pirate_master;
	char pirate_path[128];
	int cap_pirate_fd;
	pthread_t pirate_thread, pirate_hup_thread;
	bool pirate_started, pirate_hup_started;
	unsigned pirate_closes;   /* the host's closes (atomic; sim_pirate_hup_main) */

	/* agent */
	int pty_master;
	int pty_slave;            /* held open: the station may close and re-open */
	int pty_watch;            /* inotify on the slave path: sees the station close it */
	bool session_closed;
	char pty_path[128];
	uint64_t uart_rng;
	int cap_uart_fd;
	pthread_t agent_thread;
	bool agent_started;
	/* last answered request (seq, type, payload CRC) and its encoded response */
	bool cache_valid;
	uint16_t cache_seq;
	uint8_t cache_type;
	uint32_t cache_crc;
	uint8_t cache_resp[WIRE_FRAME_MAX_LEN];
	size_t cache_len;

	/* The factory-data area (STORE_FACTORY_DATA): the stored record,
	 * persisted as STATE/board-N/factory.bin (docs/VBOARD.md). Loaded at
	 * the agent's first use; only the agent thread touches it. */
	bool factory_loaded;
	uint8_t *factory;
	size_t factory_len;
};

void *sim_agent_main(void *arg);
void *sim_rsp_main(void *arg);
void *sim_rsp_bmp_main(void *arg);
/* The accept loop of a board's TCP servers (RSP, remote_bitbang): one client
 * at a time on listen_fd (TCP_NODELAY), each handed to serve, until the
 * board's stop_fd is readable. what names the server in debug logs. */
void sim_serve_clients(struct sim_board *b, int listen_fd, const char *what,
		       void (*serve)(struct sim_board *b, int fd));
void *sim_bitbang_main(void *arg);
void *sim_pirate_main(void *arg);
void *sim_pirate_hup_main(void *arg);

/*
 * Handle one agent request and build the response frame (not encoded).
 * Exposed for the unit tests.
 */
void sim_agent_handle(struct sim_board *b, const struct wire_frame *req, struct wire_frame *resp);

/*
 * The RSP server's flash driver (sim/rsp_flash.c), through the chip's flash
 * controller. memory_map: GDB's memory-map XML of the chip, or NULL when
 * the server has no flash driver for its family (then none of the others
 * is offered). erase: whole blocks of the map's flash region. write:
 * buffered in f, programmed by done (or by a write that does not continue
 * the run). Errors: IMP_ERR_TARGET_LOCKED (debug-locked), IMP_ERR_NOT_FOUND
 * (not flash), IMP_ERR_USAGE (not whole blocks), IMP_ERR_PROBE (the
 * controller refused: write protection, a word not erased), IMP_ERR_NOMEM.
 */
struct sim_rsp_flash {
	uint32_t addr;            /* start of the buffered run */
	uint8_t *buf;
	size_t len, cap;
};
const char *sim_rsp_flash_memory_map(const struct sim_chip *c);
imp_err sim_rsp_flash_erase(struct sim_chip *c, uint32_t addr, uint32_t len);
imp_err sim_rsp_flash_write(struct sim_rsp_flash *f, struct sim_chip *c, uint32_t addr,
			    const uint8_t *data, size_t n);
imp_err sim_rsp_flash_done(struct sim_rsp_flash *f, struct sim_chip *c);
void sim_rsp_flash_free(struct sim_rsp_flash *f);

/* xorshift64* in [0,1): fault dice. */
double sim_rand01(uint64_t *state);
uint64_t sim_rand64(uint64_t *state);

/* Append to a capture file (fd < 0: nothing). */
void sim_capture(int fd, const void *p, size_t n);

#endif
