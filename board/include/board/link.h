/*
 * UART links: how the station exchanges agent frames (board/frame.h) with a
 * board's provisioning agent.
 *
 * A link driver is a const table picked by name from the NULL-terminated,
 * alphabetical list board_link_drivers[]. Today there is one driver:
 *
 *   serial   any tty (a real /dev/ttyUSB0, or imprint-vboard's pty slave),
 *            termios raw mode at the given baud, poll() for timeouts
 *
 * Reliability contract of transact (every driver): the request is sent
 * with the link's next seq; only a frame with that same seq and type
 * (request type | 0x80) is accepted as the answer. A response with another
 * seq or type is discarded; on a timeout, a bad CRC, a NAK for this seq or a
 * garbled frame the SAME frame (same seq) is sent again: the agent answers
 * a repeated seq from its cache, so nothing is done twice. After
 * max_retries retransmissions transact fails with a clear error naming the
 * command. Malformed input is never accepted as data.
 */
#ifndef BOARD_LINK_H
#define BOARD_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire/frame.h"
#include "imprint/err.h"

#define BOARD_LINK_DEFAULT_BAUD 921600u
#define BOARD_LINK_DEFAULT_RETRIES 5u

/* Counters of what the link met, for tests, benchmarks and logs. */
struct board_link_stats {
	uint64_t transactions;   /* transact() calls that succeeded */
	uint64_t retransmits;    /* frames sent again */
	uint64_t timeouts;       /* waits that ended without an answer */
	uint64_t bad_crc;        /* frames dropped for a CRC mismatch */
	uint64_t bad_frames;     /* malformed headers (noise with a magic) */
	uint64_t naks;           /* NAKs received for our seq */
	uint64_t discarded;      /* well-formed frames with a wrong seq or type */
	uint64_t noise_bytes;    /* bytes skipped outside any frame */
};

struct board_link_driver {
	/* "serial" */
	const char *name;

	/*
	 * Open the device at path at baud bits per second (0: the default,
	 * BOARD_LINK_DEFAULT_BAUD) and discard stale input. On failure nothing
	 * is left open. Errors: IMP_ERR_LINK (the log names the path and the
	 * reason), IMP_ERR_USAGE for a baud rate the driver cannot set,
	 * IMP_ERR_NOMEM.
	 */
	imp_err (*open)(const char *path, unsigned baud, void **priv);

	/* Release everything. Called if and only if open() succeeded, once. */
	void (*close)(void *priv);

	/*
	 * Send req (req->seq is ignored: the driver assigns the next seq) and
	 * wait up to timeout_ms per attempt for the matching response, with
	 * at most max_retries retransmissions (see the reliability contract
	 * above). On success *rsp holds the response (type req->type | 0x80,
	 * same seq). Errors: IMP_ERR_TIMEOUT (no valid answer in time),
	 * IMP_ERR_PROTOCOL (only garbled or NAKed answers), IMP_ERR_LINK (the
	 * device failed or went away). stats is updated in every case. The
	 * driver logs only IMP_ERR_LINK; board_link_transact reports a timeout
	 * or damaged answers (unless the link is quiet).
	 */
	imp_err (*transact)(void *priv, const struct wire_frame *req, struct wire_frame *rsp,
			    unsigned timeout_ms, unsigned max_retries,
			    struct board_link_stats *stats);
};

/* NULL-terminated, sorted by name. */
extern const struct board_link_driver *const board_link_drivers[];
extern const struct board_link_driver board_link_serial;

const struct board_link_driver *board_link_driver_find(const char *name);

struct board_link;

/*
 * Open a link with the named driver (NULL: "serial"). Hands over ownership
 * of *out: release it with board_link_close().
 */
imp_err board_link_open(const char *driver, const char *path, unsigned baud,
			struct board_link **out);
/* Close and free; NULL is a no-op. */
void board_link_close(struct board_link *l);

/* Retransmissions per transaction (default BOARD_LINK_DEFAULT_RETRIES). */
void board_link_set_retries(struct board_link *l, unsigned max_retries);
/*
 * Quiet: a timeout or damaged answers are returned without an error in the
 * log (default: logged, naming the command and the port). For polls that
 * expect silence: a fixture without a board.
 */
void board_link_set_quiet(struct board_link *l, bool quiet);
/*
 * Multiply every timeout given to board_link_transact (default 1.0); for
 * slow links or a board with a heavy latency model.
 */
void board_link_set_timeout_scale(struct board_link *l, double scale);

/*
 * One request/response exchange: command cmd with payload req[0..req_len)
 * (at most WIRE_FRAME_MAX_PAYLOAD). On success rsp holds the response frame;
 * its payload is not interpreted here. Errors as the driver's transact,
 * plus IMP_ERR_USAGE for an oversized request.
 */
imp_err board_link_transact(struct board_link *l, uint8_t cmd, const uint8_t *req,
			    size_t req_len, struct wire_frame *rsp, unsigned timeout_ms);

const struct board_link_stats *board_link_get_stats(const struct board_link *l);

#endif
