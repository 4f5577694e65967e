/*
 * Debug probes: how the station reads and writes a board's memory over SWD.
 *
 * A probe driver is a const table of function pointers, picked by URI scheme
 * from the NULL-terminated, alphabetical list board_probe_drivers[]
 * (docs/PROBES.md has the keys, per server, and their hazards):
 *
 *   openocd://CONFIG[?set.VAR=VALUE&...&rsp keys]
 *        the station starts OpenOCD itself with the configuration file
 *        CONFIG (a path, or a name under board/openocd/), owns the process
 *        (its own process group, killed with the station: PR_SET_PDEATHSIG),
 *        picks its GDB and Tcl ports, and talks RSP to it with the
 *        "openocd" personality. set.VAR=VALUE becomes -c "set VAR VALUE"
 *        before the configuration is read.
 *   rsp://HOST:PORT[?server=NAME&timeout_ms=N&retries=N&monitor_timeout_ms=N
 *                  &flash_timeout_ms=N&reset=CMD&noack=0|1&dap=NAME&tcl=PORT
 *                  &data_abort=1&cache=off&auto_unlock=off]
 *        GDB Remote Serial Protocol over TCP to a server someone else runs
 *        (OpenOCD, pyOCD, J-Link GDB server, Black Magic Probe, QEMU,
 *        imprint-vboard). server= fixes the personality (openocd, pyocd,
 *        jlink, bmp, qemu, vboard); without it the driver asks the server
 *        (qSupported, "monitor version"). timeout_ms per packet (default
 *        3000) and retries (default 3) apply to idempotent packets only;
 *        monitor commands (monitor_timeout_ms, default 60000) and flash
 *        packets (flash_timeout_ms, default 120000) are sent once.
 *        reset: the monitor command for reset() ('+' for space, default
 *        "reset halt"), noack=0 keeps '+'/'-' acknowledgements.
 *   rsp+serial:///dev/ttyACM0[?same keys]
 *        the same protocol over a serial port: a Black Magic Probe's GDB
 *        port (server=bmp, or found by "monitor version"). A BMP is scanned
 *        ("monitor swd_scan" must list target 1) and attached ("vAttach;1")
 *        before any target access.
 *   sim:[?uid=32HEX&seed=N&latency=X]
 *        an in-process imprint-vb1 chip (imp_sim_chip); unit tests attach an
 *        existing chip with board_probe_attach_sim()
 *
 * A lock is never concluded from an error code alone: a driver answers
 * IMP_ERR_TARGET_LOCKED only where the server states it positively
 * (imprint-vboard's E51); everything else is IMP_ERR_PROBE, and the target
 * profile confirms a lock through the chip's own lock status (for the
 * nRF52, the CTRL-AP's APPROTECTSTATUS, read with ap_read()).
 *
 * Callers use the board_probe_* wrappers, never the table directly: they
 * check arguments, log, and answer IMP_ERR_UNSUPPORTED for members that are
 * NULL. Addresses are 32-bit target addresses; registers are read and
 * written little-endian (Cortex-M).
 */
#ifndef BOARD_PROBE_H
#define BOARD_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imprint/err.h"

struct sim_chip;

struct board_probe_driver {
	/* Driver name, also the URI scheme ("rsp", "sim"). */
	const char *name;

	/*
	 * Connect to the target named by uri (the whole URI, scheme included).
	 * On success *priv holds the driver's state. On failure nothing is
	 * left open and *priv is untouched. Errors: IMP_ERR_USAGE for a
	 * malformed URI, IMP_ERR_PROBE when the probe cannot be reached (the
	 * log says what to check), IMP_ERR_NOMEM.
	 */
	imp_err (*open)(const char *uri, void **priv);

	/* Release everything. Called if and only if open() succeeded, once. */
	void (*close)(void *priv);

	/*
	 * Read n bytes (any n >= 1, any alignment) at addr into buf. The driver
	 * splits large reads as its transport requires. Either all n bytes are
	 * read or an error is returned (buf contents then undefined).
	 * Errors: IMP_ERR_TARGET_LOCKED when the debug port refuses access,
	 * IMP_ERR_PROBE for an access error (unmapped memory) or a lost probe,
	 * IMP_ERR_TIMEOUT when the probe stops answering.
	 */
	imp_err (*read_mem)(void *priv, uint32_t addr, uint8_t *buf, size_t n);

	/* Write n bytes (any n >= 1) from buf at addr; errors as read_mem. */
	imp_err (*write_mem)(void *priv, uint32_t addr, const uint8_t *buf, size_t n);

	/* Reset the target (system reset) and leave the core halted if the
	 * probe can. Fuses burned since the last reset become effective. */
	imp_err (*reset)(void *priv);

	/* Halt the core. */
	imp_err (*halt)(void *priv);

	/*
	 * Optional (may be NULL): run a probe monitor command ("reset halt")
	 * and return its text output, NUL-terminated and truncated to cap-1
	 * bytes, in out (which may be NULL when cap is 0).
	 */
	imp_err (*monitor)(void *priv, const char *cmd, char *out, size_t cap);

	/*
	 * Optional: program n bytes at addr through the server's own flash
	 * driver (RSP vFlashErase/vFlashWrite/vFlashDone). The blocks covering
	 * the range are erased first; bytes of those blocks outside the range
	 * are lost. Each flash packet is sent once, never retried (a timeout
	 * leaves the connection out of step: every later call fails).
	 * IMP_ERR_UNSUPPORTED (nothing sent) when the server offers no flash
	 * region holding the whole range; the caller then programs the flash
	 * controller's registers itself.
	 */
	imp_err (*flash_program)(void *priv, uint32_t addr, const uint8_t *buf, size_t n);

	/*
	 * Optional: the CRC-32 of n bytes at addr as GDB defines it
	 * (polynomial 0x04C11DB7, MSB first, initial value 0xFFFFFFFF, no final
	 * inversion: board_rsp_crc32), computed by the server from the target's
	 * memory, not from any cache. IMP_ERR_UNSUPPORTED when the server does
	 * not compute it.
	 */
	imp_err (*crc32)(void *priv, uint32_t addr, size_t n, uint32_t *crc);

	/*
	 * Optional: read or write register reg (byte offset) of access port ap
	 * of the ADIv5 debug port: the way to a chip's control AP (nRF52
	 * CTRL-AP), which answers even when the MEM-AP is locked. Works
	 * without a usable GDB connection where the driver has another way in
	 * (OpenOCD's Tcl port). IMP_ERR_UNSUPPORTED when the server offers no
	 * AP access; IMP_ERR_PROBE when the access failed.
	 */
	imp_err (*ap_read)(void *priv, unsigned ap, uint32_t reg, uint32_t *v);
	imp_err (*ap_write)(void *priv, unsigned ap, uint32_t reg, uint32_t v);

	/*
	 * Optional, for drivers that start a debug server of their own
	 * (openocd:// starts OpenOCD): start the one uri needs now, in the
	 * background, and keep it; every later open() of the same uri
	 * attaches to it instead of starting another, until servers_stop().
	 * Returns without waiting for the server. Errors: those of open()
	 * for a malformed uri. Called from the thread that runs the whole
	 * run (never a fixture's worker).
	 */
	imp_err (*server_start)(const char *uri);

	/* Optional: wait until every server server_start() kept is ready to
	 * take a board, or has failed (its next open() says why and starts it
	 * again); called before the first open(). */
	void (*servers_wait)(void);

	/* Optional: stop every server server_start() kept; called once the
	 * probes on them are closed. */
	void (*servers_stop)(void);
};

/* NULL-terminated, sorted by name. */
extern const struct board_probe_driver *const board_probe_drivers[];
extern const struct board_probe_driver board_probe_openocd;
extern const struct board_probe_driver board_probe_rsp;
extern const struct board_probe_driver board_probe_rsp_serial;
extern const struct board_probe_driver board_probe_sim;

/* The driver called name, or NULL. */
const struct board_probe_driver *board_probe_driver_find(const char *name);

/* An open probe: a driver and its state. */
struct board_probe;

/*
 * Open the probe named by uri; the scheme picks the driver. Hands over
 * ownership of *out: release it with board_probe_close().
 */
imp_err board_probe_open(const char *uri, struct board_probe **out);

/*
 * Wrap an existing in-process chip as a probe (driver "sim"). The chip is
 * borrowed: it must outlive the probe and is not freed by close.
 */
imp_err board_probe_attach_sim(struct sim_chip *chip, struct board_probe **out);

/* Close and free; NULL is a no-op. */
void board_probe_close(struct board_probe *p);

/*
 * Servers kept for a run (the provisioning run starts them for its
 * fixtures as it opens, docs/PROBES.md "Lifetime"). A probe whose driver
 * starts a server of its own (openocd://: one OpenOCD) gets it started now,
 * in the background, and kept: every board_probe_open() of the same URI
 * attaches to it (a new session; the target examined again, the board
 * may be another) instead of starting one per board, and one found dead or
 * not answering is replaced for the board that finds it. The servers'
 * processes belong to a thread that lives until board_probe_servers_stop(),
 * so they die with the station, even SIGKILLed, never with the fixture
 * worker that used them. IMP_ERR_UNSUPPORTED (not logged): the driver
 * starts no server (rsp://, sim:); other errors as board_probe_open's for
 * the URI. Call both from the thread that runs the whole run;
 * board_probe_servers_stop() after every probe is closed.
 */
imp_err board_probe_server_start(const char *uri);
void board_probe_servers_stop(void);

/*
 * Wait until every kept server is ready to take a board (or has failed:
 * the board's open then says why and starts it again): the line is not
 * ready before its servers are, and a board's clock starts after this.
 */
void board_probe_servers_wait(void);

/* The driver's name ("rsp", "sim"). */
const char *board_probe_driver_name(const struct board_probe *p);

imp_err board_probe_read(struct board_probe *p, uint32_t addr, void *buf, size_t n);
imp_err board_probe_write(struct board_probe *p, uint32_t addr, const void *buf, size_t n);
imp_err board_probe_reset(struct board_probe *p);
imp_err board_probe_halt(struct board_probe *p);
/* IMP_ERR_UNSUPPORTED when the driver has no monitor. */
imp_err board_probe_monitor(struct board_probe *p, const char *cmd, char *out, size_t cap);

/* The optional members; IMP_ERR_UNSUPPORTED (not logged) when absent. */
imp_err board_probe_flash_program(struct board_probe *p, uint32_t addr, const void *buf,
				  size_t n);
imp_err board_probe_crc32(struct board_probe *p, uint32_t addr, size_t n, uint32_t *crc);
imp_err board_probe_ap_read(struct board_probe *p, unsigned ap, uint32_t reg, uint32_t *v);
imp_err board_probe_ap_write(struct board_probe *p, unsigned ap, uint32_t reg, uint32_t v);

/*
 * The wrappers log "target locked: ..." when a driver answers
 * IMP_ERR_TARGET_LOCKED, unless the caller expects it (lock verification,
 * `board info` on a locked board): then they only return the code.
 */
void board_probe_expect_locked(struct board_probe *p, bool expect);

/* 32-bit little-endian register access (addr should be 4-aligned). */
imp_err board_probe_read_u32(struct board_probe *p, uint32_t addr, uint32_t *v);
imp_err board_probe_write_u32(struct board_probe *p, uint32_t addr, uint32_t v);

#endif
