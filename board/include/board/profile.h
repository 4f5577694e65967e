/*
 * Target profiles: one JSON data file per chip family (docs/PROFILES.md),
 * and the interpreter that runs a profile's register sequences through a
 * probe. The virtual board's profile is board/profiles/imprint-vb1.json.
 *
 * Search path for board_profile_load(NAME) (NAME without '/' and ".json"):
 *   1. every directory in $IMPRINT_PROFILE_PATH (colon-separated)
 *   2. DATA_DIR/profiles (when a data directory is given)
 *   3. the shipped profiles (imprint/paths.h, imp_data_dir "profiles"):
 *      DATADIR/imprint/profiles beside the installed binary
 *      (BINDIR/../share/imprint/profiles), board/profiles of the source
 *      tree for a program in the build tree
 * and the file NAME.json in the first directory holding one wins. A NAME
 * with a '/' or ending in ".json" is a path and is loaded as is.
 */
#ifndef BOARD_PROFILE_H
#define BOARD_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "board/link.h"
#include "board/probe.h"
#include "imprint/err.h"

#define BOARD_PROFILE_FORMAT "imprint-profile/1" /* persisted */
#define BOARD_PROFILE_MAX_VARS 16u

/* A number in a step: a literal, or "$name" taken from the variables. */
struct board_profile_value {
	uint32_t num;
	char var[24];               /* "" for a literal */
};

enum board_profile_op {
	BOARD_OP_WRITE32 = 1,   /* write value to addr */
	BOARD_OP_READ32,        /* read addr into variable `var` */
	BOARD_OP_POLL32,        /* re-read addr until (v & mask) == value, or
	                           IMP_ERR_TIMEOUT after timeout_ms */
	BOARD_OP_CHECK32,       /* read addr once; (v & mask) != value is
	                           IMP_ERR_BOARD with the step's `error` text */
	BOARD_OP_RESET,         /* probe reset */
	BOARD_OP_HALT,          /* probe halt */
	BOARD_OP_DELAY,         /* sleep `us` microseconds */
	BOARD_OP_SELECT32,      /* read addr once; set `var` to the result of the
	                           case whose value equals (v & mask), else to
	                           `default`, else IMP_ERR_BOARD with `error` */
	BOARD_OP_MODIFY32,      /* read addr, write (v & ~mask) | (value & mask) */
};

#define BOARD_PROFILE_MAX_REQUIRES 4u

/* The op's name as profiles spell it ("write32"). */
const char *board_profile_op_name(enum board_profile_op op);

#define BOARD_PROFILE_MAX_CASES 16u

struct board_profile_step {
	enum board_profile_op op;
	struct board_profile_value addr, value, mask;
	int ap;                     /* >= 0: addr is a register of this access
	                               port (probe ap_read/ap_write), -1: memory */
	uint32_t timeout_ms;        /* POLL32 (default 1000) */
	uint32_t us;                /* DELAY */
	char var[24];               /* READ32, SELECT32 */
	char if_var[24];            /* run only when this variable is set and
	                               non-zero ("" = always) */
	char unless_var[24];        /* run only when this variable is unset or 0 */
	/* Write steps (write32, modify32) only: */
	char *irreversible;         /* what the write does that cannot be taken
	                               back (shown by fuse plans), or NULL */
	bool permanent;             /* can never be undone, not even by erasing
	                               the part (STM32 RDP level 2): needs the
	                               profile's permanent_lock opt-in and runs
	                               only under "if": "$permanent" */
	bool resets;                /* the write resets the chip and may drop the
	                               debug connection: an error from it is the
	                               expected outcome, not a failure */
	char fuse[24];              /* this write's name for companion rules */
	char requires[BOARD_PROFILE_MAX_REQUIRES][24]; /* fuses that must be
	                               written with it, in the same sequence
	                               under the same condition */
	size_t n_requires;
	char *error;                /* CHECK32/POLL32/SELECT32 message, may be NULL */
	size_t n_cases;             /* SELECT32 */
	struct {
		uint32_t value, result;
	} cases[BOARD_PROFILE_MAX_CASES];
	bool has_default;
	uint32_t dflt;
};

struct board_profile_seq {
	char *name;                 /* "flash_unlock", "fuse_burn", ... */
	struct board_profile_step *steps;
	size_t n_steps;
};

struct board_profile_region {
	char *name;                 /* "flash", "sram", "otp", ... */
	char *kind;                 /* "flash", "ram", "otp", "rom", "regs" */
	uint32_t base;
	uint32_t size;
	uint32_t page;              /* erase granule (flash), else 0 */
};

struct board_profile {
	char *name;
	char *description;
	char *note;                 /* caveats, e.g. "not tried on hardware" */
	bool hardware_tested;
	char *path;                 /* the file it was loaded from */

	uint32_t uid_addr;
	uint32_t uid_len;           /* 1..64 bytes */

	struct board_profile_region *regions;
	size_t n_regions;

	uint32_t program_unit;      /* bytes per programming write (4) */
	uint32_t program_chunk;     /* bytes written between program checks */

	uint32_t fuse_mask;         /* fuses this profile can burn (BOARD_FUSE_*) */
	bool fuses_readable;        /* a "fuse_read" sequence exists */

	/* Lock verification: after reset (if lock_reset), reading the UID must
	 * fail with IMP_ERR_TARGET_LOCKED; the agent must report lifecycle
	 * lock_lifecycle (0: not checked). */
	bool lock_reset;
	uint8_t lock_lifecycle;

	/* Lock verification of a part whose UID stays readable when locked
	 * (STM32 RDP level 1): lock_verify.uid_read "readable". The UID must
	 * read (and match the agent's), a read of refused_len bytes at
	 * refused_addr must fail, and lock_status must say locked. */
	bool lock_uid_readable;
	uint32_t lock_refused_addr, lock_refused_len;

	/* "permanent_lock": {"allowed": true}: the profile may burn a lock
	 * that can never be undone, once a supervisor confirms it at run time
	 * (the station then sets $permanent for fuse_burn). */
	bool permanent_lock_allowed;

	/* Connect: reset the target first (connect.reset, default true). A
	 * part whose reset can lock it (hardened APPROTECT) says false. */
	bool connect_reset;

	/* Provisioning agent. */
	uint32_t agent_baud;
	uint32_t agent_protocol;
	char *agent_image;          /* may be NULL */
	int slot_device;            /* SE slot for the device key, -1 if none */
	int slot_psk;               /* SE slot for a PSK, -1 if none */

	struct board_profile_seq *seqs;
	size_t n_seqs;
};

/* Variables read and written by sequences ($mask, $addr, $fuses, ...). */
struct board_profile_vars {
	size_t n;
	struct {
		char name[24];
		uint32_t value;
	} v[BOARD_PROFILE_MAX_VARS];
};

/* Set (or add) a variable; IMP_ERR_INTERNAL when full or name too long. */
imp_err board_profile_var_set(struct board_profile_vars *vars, const char *name, uint32_t value);
/* 0 and *value set when found, -1 otherwise. */
int board_profile_var_get(const struct board_profile_vars *vars, const char *name,
			  uint32_t *value);

/*
 * Find NAME.json on the search path (see above) and write its path to out.
 * data_dir may be NULL. IMP_ERR_NOT_FOUND lists the directories searched.
 */
imp_err board_profile_find(const char *name, const char *data_dir, char *out, size_t cap);

/*
 * Load and validate a profile, strictly: unknown keys, wrong types, missing
 * required fields and out-of-range numbers are IMP_ERR_CONFIG with the
 * field's path in the log ("sequences.fuse_burn[2].addr: expected ...").
 * Hands over *out: free with board_profile_free().
 */
imp_err board_profile_load(const char *name_or_path, const char *data_dir,
			   struct board_profile **out);
/* The same from a JSON text; source names it in messages. */
imp_err board_profile_parse(const char *json, size_t len, const char *source,
			    struct board_profile **out);
void board_profile_free(struct board_profile *p);

const struct board_profile_seq *board_profile_seq(const struct board_profile *p,
						  const char *name);
const struct board_profile_region *board_profile_region(const struct board_profile *p,
							const char *name);

/*
 * Run sequence `name` through probe. vars supplies inputs and receives
 * READ32 results (may be NULL when the sequence uses none). Errors:
 * IMP_ERR_UNSUPPORTED (no such sequence in this profile), IMP_ERR_CONFIG (a
 * variable is missing), IMP_ERR_BOARD (a CHECK32 failed), IMP_ERR_TIMEOUT
 * (a POLL32 timed out), the probe's errors.
 */
imp_err board_profile_run(const struct board_profile *p, const char *name,
			  struct board_probe *probe, struct board_profile_vars *vars);

/*
 * Read the unique ID (uid_len bytes, at most cap) through the probe. A UID
 * of all zeros or all ones is refused (IMP_ERR_PROBE): it is what a server
 * that hides failed reads answers (OpenOCD without data-abort reporting),
 * never a real UID. A failed read is IMP_ERR_TARGET_LOCKED only when the
 * probe says so positively or the profile's lock_status confirms it.
 */
imp_err board_profile_read_uid(const struct board_profile *p, struct board_probe *probe,
			       uint8_t *uid, size_t cap, size_t *uid_len);

/*
 * The chip's own lock status, when the profile has a "lock_status"
 * sequence (it must set $locked to 1 or 0): *locked is then 1 (locked) or
 * 0 (open) and IMP_OK. IMP_ERR_UNSUPPORTED without such a sequence; the
 * probe's errors when it cannot be read (inconclusive, never "locked").
 */
imp_err board_profile_lock_status(const struct board_profile *p, struct board_probe *probe,
				  int *locked);

/*
 * What the station does on connecting to a board, before anything else:
 * reset (if connect.reset), then "revision_check" (if the profile has it),
 * then, when lock_status says the part is open, "debug_open" (keeps a
 * hardened part open across resets). A locked part is left alone here.
 */
imp_err board_profile_connect(const struct board_profile *p, struct board_probe *probe);

/*
 * Recover a part for a reissue: the profile's "recover" sequence (nRF52:
 * CTRL-AP ERASEALL), then "debug_open". IMP_ERR_UNSUPPORTED when the
 * profile has none. Erases the whole chip: for failed boards only.
 */
imp_err board_profile_recover(const struct board_profile *p, struct board_probe *probe);

/*
 * Program image at addr. Where the probe offers the server's own flash
 * driver for the range (board_probe_flash_program: RSP vFlash), that is
 * used. Otherwise: erase the pages covering [addr, addr+n) of the "flash"
 * region and program image there (flash_unlock, flash_erase_page per page, flash_program_begin,
 * chunked writes each followed by flash_program_check, flash_program_end).
 * n is padded with 0xFF to program_unit. IMP_ERR_USAGE when the range is
 * not inside the flash region.
 */
imp_err board_profile_program_flash(const struct board_profile *p, struct board_probe *probe,
				    uint32_t addr, const uint8_t *image, size_t n);

/*
 * The same, calling progress(arg, done, total) as chunks are written: when
 * the whole percentage done has grown, and always at the end (bytes of the
 * padded image; once with done == total when the server's own flash driver
 * did it in one go). progress may be NULL; it must not touch the probe.
 */
typedef void (*board_flash_progress_fn)(void *arg, size_t done, size_t total);
imp_err board_profile_program_flash_progress(const struct board_profile *p,
					     struct board_probe *probe, uint32_t addr,
					     const uint8_t *image, size_t n,
					     board_flash_progress_fn progress, void *arg);

/* SHA-256 of n bytes read back at addr. */
imp_err board_probe_sha256(struct board_probe *probe, uint32_t addr, size_t n,
			   uint8_t digest[32]);

/* Whether [addr, addr+n) already holds image (same check as verify,
 * without logging a mismatch): *match set, IMP_OK. */
imp_err board_profile_flash_matches(const struct board_profile *p, struct board_probe *probe,
				    uint32_t addr, const uint8_t *image, size_t n, bool *match);

/* Read back [addr, addr+n) and compare it with the image: the server's
 * CRC-32 of the target's memory where the probe offers one (bypasses any
 * server cache), else the SHA-256 of the bytes read. IMP_ERR_VERIFY on a
 * mismatch. */
imp_err board_profile_verify_flash(const struct board_profile *p, struct board_probe *probe,
				   uint32_t addr, const uint8_t *image, size_t n);

/* Burn fuses (BOARD_FUSE_* mask, must be within p->fuse_mask) with the
 * "fuse_burn" sequence ($mask). Effective after the next reset. */
imp_err board_profile_burn_fuses(const struct board_profile *p, struct board_probe *probe,
				 uint32_t mask);
/*
 * The same; permanent: a supervisor confirmed the profile's permanent lock
 * for this run, so $permanent is set (only when the profile allows it:
 * IMP_ERR_CONFIG otherwise, nothing written).
 */
imp_err board_profile_burn_fuses_ex(const struct board_profile *p, struct board_probe *probe,
				    uint32_t mask, bool permanent);

/*
 * Fuse plans: what a sequence would do, step by step, without writing
 * anything. With probe NULL the plan is static (every read unknown, so a
 * conditional step shows its condition). With a probe, reads go to the
 * board as it is now, so conditions and read-modify-writes are resolved
 * against it (a check after a write the plan did not send keeps
 * check_ok -1: what it reads now says nothing); writes, resets and halts
 * are recorded, never sent.
 */
struct board_plan_entry {
	const char *seq;            /* the sequence's name (the profile's string) */
	size_t index;               /* the step's index in it */
	const struct board_profile_step *st;
	int runs;                   /* 1 runs, 0 skipped by its condition, -1 unknown */
	bool addr_known, value_known;
	uint32_t addr, value;       /* resolved (write: what would be written) */
	bool read_known;
	uint32_t read;              /* reads and checks: the word read now */
	int check_ok;               /* checks and polls: 1 holds now, 0 does not, -1 unknown */
};

struct board_plan {
	struct board_plan_entry *e;
	size_t n, cap;
};

void board_plan_release(struct board_plan *plan);

/*
 * Append sequence name's steps to plan (see above). vars: inputs ($mask,
 * $permanent; may be NULL). IMP_ERR_UNSUPPORTED without such a sequence;
 * a failing read through the probe is recorded as unknown, not an error.
 */
imp_err board_profile_plan(const struct board_profile *p, const char *name,
			   struct board_probe *probe, struct board_profile_vars *vars,
			   struct board_plan *plan);

/*
 * The fatal-combination rules a profile is checked against when it is
 * loaded (board_profile_load and _parse refuse it with IMP_ERR_CONFIG and
 * a message naming the rule): "lock-before-firmware" (an irreversible
 * write in a sequence the station runs before the firmware digest is
 * verified: anything but fuse_burn), "permanent-without-opt-in" (a
 * permanent write without "permanent_lock": {"allowed": true}, or not
 * under "if": "$permanent"), "missing-companion" (a write that requires a
 * companion or inverse fuse the same sequence does not write under the
 * same condition), "lock-unverified" (fuses without lock_verify).
 */
extern const char *const board_profile_rules[];

/* Burned fuse mask via the "fuse_read" sequence (which sets $fuses). */
imp_err board_profile_read_fuses(const struct board_profile *p, struct board_probe *probe,
				 uint32_t *mask);

/*
 * Verify the lock from outside: reset (if the profile says so), then a
 * probe read of the UID must fail with IMP_ERR_TARGET_LOCKED; when link is
 * not NULL and the profile names a lifecycle, the agent must report it.
 * IMP_ERR_VERIFY (logged: what was still open) when the board is not locked.
 */
imp_err board_profile_verify_lock(const struct board_profile *p, struct board_probe *probe,
				  struct board_link *link);
struct board_agent_info;
/* board_profile_verify_lock() that hands back the agent's answer it
 * checked (*have_seen: one was asked for; the last word on the board). */
imp_err board_profile_verify_lock_seen(const struct board_profile *p, struct board_probe *probe,
				       struct board_link *link, struct board_agent_info *seen,
				       bool *have_seen);

#endif
