/*
 * The per-board state machine:
 *
 *   CONNECT -> IDENTIFY -> ALLOCATE -> KEYS -> CERTIFY -> INJECT -> FIRMWARE
 *           -> CHALLENGE -> LOCK -> RECORD -> DONE
 *
 * Every state is written to the journal (provisioner/journal.h) before the
 * step it names acts, so a crash at any instant leaves the board resumable
 * from the state the journal holds. Every step is idempotent or reads the
 * board back to see whether it already happened; no irreversible step (the
 * fuses) runs unless every earlier check passed. docs/PROVISIONING.md says
 * what each step does, checks, and leaves after a crash.
 *
 * Threads: one struct prov_station is shared read-only by every fixture
 * worker; each worker opens its own HSM session, probe and link.
 */
#ifndef PROVISIONER_PROVISION_H
#define PROVISIONER_PROVISION_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "board/profile.h"
#include "formats/config.h"
#include "hsm/org.h"
#include "journal/journal.h"
#include "line/line.h"

/* What a progress report is about. */
enum prov_activity {
	PROV_ACT_BOARD = 0,    /* a board entered `state` (or failed in it) */
	PROV_ACT_FLASH,        /* FIRMWARE: fw_done of fw_total bytes programmed */
	PROV_ACT_WAIT_BOARD,   /* continuous: the fixture waits for a board */
	PROV_ACT_WAIT_REMOVAL, /* continuous: its board is finished; waiting for it to leave */
};

/* One progress report: a board entered `state` on `fixture`. */
struct prov_progress {
	const char *fixture;
	const char *uid;      /* "" before IDENTIFY */
	const char *serial;   /* "" before ALLOCATE */
	enum jnl_state state;
	imp_err rc;           /* IMP_OK, or the error that stopped the board */
	enum jnl_state failed_step; /* rc != IMP_OK: the step that failed (state may
				     * already be FAILED) */
	const char *message;  /* what happened, lowercase; never a secret */
	double elapsed_s;     /* since the board's run started */
	enum prov_activity activity;
	size_t fw_done, fw_total; /* PROV_ACT_FLASH only */
	unsigned boards;      /* continuous: boards this fixture has taken so far */
};

typedef void (*prov_progress_fn)(void *arg, const struct prov_progress *p);

/* Everything the workers share; filled by the caller, read-only while running. */
struct prov_station {
	const struct fmt_config *cfg;
	struct hsm *hsm;
	struct jnl *journal;
	const struct board_profile *profile;
	struct hsm_org org;               /* handles valid in every session */
	/* The JWS header of this run's identity records (record-signing key,
	 * chain record + root), made once at set-up; NULL: made per record. */
	struct fmt_jws_header *record_header;
	const uint8_t *firmware;          /* verified image, or NULL */
	size_t firmware_len;
	uint8_t firmware_sha256[32];
	uint32_t firmware_addr;           /* start of the profile's flash region */
	const char *operator_name;
	prov_progress_fn progress;        /* may be NULL */
	void *progress_arg;
	volatile sig_atomic_t *stop;      /* set by a signal: stop between steps */
	uint64_t max_new_boards;          /* 0: no limit (--count) */
	/* resume: only boards the journal knows are taken up; a board new to
	 * it on a fixture is left as it is (not_taken), no serial given. */
	bool only_known;
	uint64_t new_boards;              /* boards allocated in this run (atomic) */
	/* --reissue: a supervisor authorised boards DONE or FAILED (and not
	 * locked) to go through again with their serial; NULL: refused. */
	const char *reissue_reason;
	const char *reissue_by;
	/* A supervisor confirmed, for this run, the permanent lock the
	 * profile allows (permanent_lock.allowed): fuse_burn gets $permanent. */
	bool permanent_lock_confirmed;
	/* Line mode (provisioner/line.h): serials from leases, UIDs claimed
	 * in the line database; NULL: a standalone station. */
	struct line *line;
	/* Matter factory data (provisioner/matter.h), set by prov_matter_open
	 * when the configuration has "matter": the passcode sealing key and
	 * the certification declaration (owned; NULL = none) with its digest. */
	hsm_obj matter_seal;
	uint8_t *matter_cd;
	size_t matter_cd_len;
	uint8_t matter_cd_sha256[32];
	/* Continuous mode (prov_run_fixtures): each fixture waits for a board,
	 * provisions it, waits for it to leave and takes the next, until *stop
	 * is set (or the quota or max_new_boards ends it). */
	bool continuous;
};

/* Continuous mode: what one fixture's boards came to. */
struct prov_tally {
	unsigned boards;        /* boards taken */
	unsigned done;          /* provisioned in this run */
	unsigned already_done;  /* DONE before: nothing to do */
	unsigned failed;        /* stopped by an error (in flight, or rejected) */
	unsigned rejected;      /* ... of them rejected (FAILED: never locked, never reissued) */
	unsigned quarantined;
	unsigned serials_held;  /* failed boards that hold a serial (counted in the quota) */
};

/* The outcome of one fixture's board. */
struct prov_result {
	imp_err rc;                       /* IMP_OK when DONE */
	enum jnl_state state;            /* where the board stands */
	enum jnl_state failed_step;      /* rc != IMP_OK: the step that failed */
	char uid[JNL_UID_HEX_MAX + 1];
	char serial[JNL_SERIAL_MAX];
	bool already_done;                /* DONE before this run: nothing done */
	bool quarantined;
	/* ... as a board presenting the uid of a finished one (the DONE row
	 * stays the genuine board's; a "quarantine" event says so). */
	bool cloned_uid;
	/* The run took no new board (its --count was reached, or a resume
	 * takes only boards in flight): identified only, left as it was,
	 * nothing journaled (rc IMP_OK, state IDENTIFY). */
	bool not_taken;
	/* The identity record this run signed and journaled for the board
	 * (jnl_record_done); "" when it made none (a board DONE before, or
	 * stopped short of it): the journal then knows (jnl_identity_record_id). */
	char record_id[JNL_RECORD_ID_MAX];
	double seconds;
	struct prov_tally tally; /* continuous mode: every board of the fixture */
};

/*
 * Verify a firmware image's signature (DER ECDSA over SHA-256 of the image)
 * with the code-signing certificate, which must chain to the root.
 * IMP_ERR_FIRMWARE (logged with the reason) if it does not verify.
 */
imp_err prov_firmware_check(const struct hsm_org *org, const uint8_t *image, size_t n,
			    const uint8_t *sig, size_t sig_len);

/* Run the board on one fixture from wherever the journal has it to DONE. */
imp_err prov_run_board(struct prov_station *st, const struct fmt_fixture *fx,
		       struct prov_result *res);

/*
 * Run n fixtures in parallel (a thread each, its own HSM session); results
 * has n entries. Returns IMP_OK if every board ended DONE (or was already),
 * else the first error met. With st->continuous each fixture loops
 * (prov_run_continuous) and results[i] is its last board, with the tally
 * of all of them; the return is then IMP_ERR_INTERRUPTED after a stop.
 */
imp_err prov_run_fixtures(struct prov_station *st, const struct fmt_fixture *fx, size_t n,
			  struct prov_result *results);

/*
 * Continuous mode on one fixture: wait for a board (an agent answers
 * IDENTIFY on the fixture's UART), run it (prov_run_board), wait until it
 * has left (the UART stays silent) or another board (another UID) answers,
 * and take the next, until *st->stop is set. A failed board is reported
 * with what became of its serial. Returns IMP_ERR_INTERRUPTED after a
 * stop, IMP_ERR_QUOTA when no serial is left, IMP_ERR_CONFIG for a fixture
 * that cannot run, or the error of a UART that went away. res: the last
 * board, res->tally: all of them.
 */
imp_err prov_run_continuous(struct prov_station *st, const struct fmt_fixture *fx,
			    struct prov_result *res);

/*
 * The fixtures' debug servers, kept for the run: for every openocd://
 * fixture among the first n of cfg (the ones the run uses) its OpenOCD is
 * started now, in the background (all at once), and each
 * board's connect attaches to it instead of starting one on the board's
 * clock (board/probe.h, board_probe_server_start). Call from the thread
 * that runs the whole run, before the fixtures; prov_fixtures_stop() once
 * they are done (every probe closed). A fixture whose server cannot be
 * kept starts one per board, as without this.
 */
void prov_fixtures_start(const struct fmt_config *cfg, size_t n);
void prov_fixtures_stop(void);

/* Until the servers prov_fixtures_start started are ready (or failed: a
 * board's connect starts its fixture's again); prov_run_fixtures calls it
 * before the first board's clock starts. */
void prov_fixtures_wait(void);

/*
 * Finish, without the board, every journaled board that stands in RECORD
 * (its lock is verified; only the signed record is missing). *finished
 * counts them.
 */
imp_err prov_finish_records(struct prov_station *st, unsigned *finished);

#endif
