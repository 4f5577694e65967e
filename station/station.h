/*
 * The imprint command-line station: shared context, the command table, option
 * parsing and output. Only station/ decides to exit; every module below it
 * returns an imp_err.
 */
#ifndef STATION_H
#define STATION_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <jansson.h>

#include "imprint/err.h"
#include "formats/config.h"
#include "hsm/hsm.h"
#include "journal/journal.h"

/* ---- options: one table row per option -------------------------------- */

enum st_opt_type {
	ST_OPT_FLAG,    /* bool *, no argument */
	ST_OPT_STRING,  /* const char **, required argument */
	ST_OPT_INT,     /* long *, required argument, decimal */
	ST_OPT_COUNT,   /* int *, no argument, incremented at each use (-vv) */
	ST_OPT_END = -1,
};

struct st_option {
	const char *long_name;
	char short_name;       /* 0 for none */
	enum st_opt_type type;
	void *dest;            /* where the value goes, by type (static storage) */
	const char *arg_name;  /* "FILE", "N"; NULL for flags */
	const char *help;
};

#define ST_OPTIONS_END { NULL, 0, ST_OPT_END, NULL, NULL, NULL }

/* ---- the run context (run.h) and the station context --------------------- */

/* What set-up a command needs before it runs: the command table's flags,
 * applied by st_setup() (dispatch.c) and nowhere else. Each includes what
 * it builds on. */
enum st_need {
	NEED_NOTHING = 0,
	ST_SETUP_DATA_DIR = 1 << 0, /* the data directory exists (created) */
	ST_SETUP_CONFIG = 1 << 1,   /* ctx->run->cfg loaded */
	ST_SETUP_JOURNAL = 1 << 2,  /* the journal, read-only */
	ST_SETUP_HSM = 1 << 3,      /* HSM, organisation keys, journal read-write, the line */
	ST_SETUP_BOARDS = 1 << 4,   /* target profile and verified firmware */
	/* What a command asks for: each includes what it builds on. */
	NEED_DATA_DIR = ST_SETUP_DATA_DIR,
	NEED_CONFIG = ST_SETUP_CONFIG | NEED_DATA_DIR,
	NEED_JOURNAL = ST_SETUP_JOURNAL | NEED_CONFIG,
	NEED_HSM = ST_SETUP_HSM | NEED_CONFIG,
	NEED_BOARDS = ST_SETUP_BOARDS | NEED_HSM,
};

struct st_run;

struct station_ctx {
	const char *prog;      /* argv[0] of the station */
	char data_dir[4096];   /* --data-dir, $IMPRINT_DATA_DIR, or the default */
	bool json;             /* --json: one JSON object per line on stdout */
	const char *config;    /* --config FILE, or NULL */
	const char *line_url;  /* --line URL (provision, resume, line, audit), or NULL */
	struct st_run *run;    /* what st_setup opened (never NULL inside a command) */
	const char *event;     /* the running command as an event name ("hsm_status"):
				* st_emit's "event" for an object without one */
};

/*
 * A command's body: called by the dispatcher after its options were parsed
 * (into the option table's static destinations) and the set-up its table
 * entry asks for was applied to ctx->run. argv[0] is the command's name,
 * argv[1..argc-1] its positional arguments, already counted against the
 * table's bounds.
 */
typedef int (*st_cmd_fn)(struct station_ctx *ctx, int argc, char **argv);

struct st_command {
	const char *name;
	st_cmd_fn fn;                  /* NULL for a command made of sub-commands */
	unsigned need;                 /* enum st_need bits */
	const char *summary;           /* one line for `imprint help` */
	const char *usage;             /* "imprint status [--failures N] [--verify]" */
	const struct st_option *opts;  /* the command's own options, or NULL */
	int min_args, max_args;        /* positional arguments (max -1: any number) */
	const struct st_command *const *subs; /* sorted, NULL-terminated, or NULL */
	const char *help;              /* the description `help CMD` prints, or NULL */
	/* Optional: checks the parsed options and arguments before any set-up
	 * (an IMP_ERR_USAGE here opens nothing); logs what is wrong. */
	imp_err (*check)(int argc, char **argv);
	/* The exit codes the command's own body returns, ending with IMP_OK,
	 * or NULL; those of its set-up flags and 0 and 2 are added by
	 * st_command_exit_codes(). */
	const imp_err *exits;
	/* Example command lines, one a line ("imprint boards --state FAILED"),
	 * or NULL. */
	const char *example;
};

/*
 * Every exit code command c can return, sorted, into out (capacity
 * IMP_ERR__COUNT): 0, 2 (usage), those of its set-up flags (enum st_need)
 * and c->exits; for a command with sub-commands, theirs as well. Returns
 * how many. help, the man page and the completion read the same list.
 */
size_t st_command_exit_codes(const struct st_command *c, imp_err out[IMP_ERR__COUNT]);

/* The sorted command table, NULL-terminated (commands.c). */
extern const struct st_command *const st_commands[];

/* The station context of this process (dispatch.c): option tables point
 * into it. */
extern struct station_ctx st_ctx;

/* The global options (dispatch.c), accepted before or after the verb. */
extern const struct st_option st_global_options[];

/* Find name in a sorted, NULL-terminated table; NULL if absent. */
const struct st_command *st_command_find(const struct st_command *const *table,
					 const char *name);

/*
 * Run the command argv[0] of table: parse its options and the global ones,
 * check the positional arguments, apply its set-up, call it, close what the
 * set-up opened. A command with sub-commands dispatches argv[1] the same
 * way. Returns the exit code.
 */
int st_dispatch(const struct st_command *const *table, const char *prefix, int argc,
		char **argv, struct station_ctx *ctx);

/*
 * Apply set-up flags (enum st_need) to ctx->run: the one place that does.
 * Flags already applied are not applied again, so a command whose needs
 * depend on its options (export --driver manifest) may ask for more.
 */
imp_err st_setup(struct station_ctx *ctx, unsigned need);

/* Report an unknown command name, with a suggestion when one is close. */
void st_unknown_command(const struct st_command *const *table, const char *prefix,
			const char *name);

/* Print a command's help (usage, description, options, sub-commands). */
void st_print_command_help(const char *prefix, const struct st_command *c);

/* The commands (cmd_NAME.c), one table entry each. */
extern const struct st_command st_cmd_audit, st_cmd_board, st_cmd_boards, st_cmd_demo,
	st_cmd_export, st_cmd_firmware, st_cmd_help, st_cmd_hsm, st_cmd_journal, st_cmd_label,
	st_cmd_line, st_cmd_provision, st_cmd_records, st_cmd_report, st_cmd_resume,
	st_cmd_revoke, st_cmd_serve, st_cmd_status, st_cmd_supervisor, st_cmd_version;

/*
 * Parse argv (argv[0] is the command name) against the option tables (a
 * NULL-terminated list of tables, each ending with ST_OPTIONS_END). With
 * stop_at_arg the first non-option ends the options (a sub-command follows);
 * otherwise options and arguments may be mixed. The arguments are moved, in
 * order, to argv[1..*new_argc-1]. --help / -h sets *help and stops.
 * IMP_ERR_USAGE for an unknown option or a missing or malformed value.
 */
imp_err st_parse_options(const struct st_option *const *tables, bool stop_at_arg, int argc,
			 char **argv, int *new_argc, bool *help);

/* Print the option tables as a help listing to stdout. */
void st_print_options(const struct st_option *opts);

/* s holds a character other than white space (a reason, a name): not
 * NULL, "" or blanks only. */
bool st_has_text(const char *s);
/* No control characters (a newline, an escape sequence): a text that goes
 * into a signed record or the journal, and is printed back to terminals. */
bool st_plain_text(const char *s);

/*
 * Edit distance of the la bytes at a and the string b, for "did you mean"
 * (both short: at most 30 characters), else 99.
 */
size_t st_edit_distance(const char *a, size_t la, const char *b);

/* ---- set-up (setup.c) ------------------------------------------------- */

/*
 * The configuration: --config FILE, else DATA/station.json if it exists,
 * else the defaults. Release cfg with fmt_config_release, also on failure.
 */
imp_err st_load_config(struct station_ctx *ctx, struct fmt_config *cfg);

/* True when no HSM module is configured: the embedded SoftHSM2 token. */
bool st_hsm_is_embedded(const struct fmt_config *cfg);

/* Open (and log in to) the configured HSM or the embedded token. */
imp_err st_open_hsm(struct station_ctx *ctx, const struct fmt_config *cfg, struct hsm **out);

/*
 * No embedded token, or one without the organisation's keys, on a station
 * that has a journal: the boards it made chain to the hierarchy that is
 * gone, so a new one must not be made (it would also replace DATA/trust).
 * Says so, with the backup as the next step, and returns true; false (and
 * silent) for a station that never made anything.
 */
bool st_hierarchy_lost(const struct station_ctx *ctx, const struct fmt_config *cfg,
		       bool token_missing);

/* The station's journal file exists (its path in jpath, cap bytes). */
bool st_has_journal(const struct station_ctx *ctx, const struct fmt_config *cfg, char *jpath,
		    size_t cap);
/* The hsm layer's name of a configured key mode (for hsm_org_ready). */
enum hsm_mode st_hsm_mode(enum fmt_key_mode mode);

/* Ask for the supervisor's PIN and check it (supervisor.c):
 * IMP_ERR_PIN if wrong or not set. */
imp_err st_supervisor_check(struct station_ctx *ctx, const struct fmt_config *cfg);
/* The same for another decision; what names it in the refusal ("the
 * permanent lock"). */
imp_err st_supervisor_confirm(struct station_ctx *ctx, const struct fmt_config *cfg,
			      const char *what);
/* Read a new supervisor PIN from its configured source and store it. */
imp_err st_supervisor_set(struct station_ctx *ctx, const struct fmt_config *cfg);

/*
 * Path of a program shipped with imprint (imprint-vboard, imprint-registry):
 * beside this binary in an installation (same directory), else where the
 * build tree has it (../BUILD_SUBDIR/NAME), else NAME alone, for $PATH.
 */
void st_find_program(const char *name, const char *build_subdir, char *out, size_t cap);

/* DATA/trust: where the organisation's certificates are written. */
void st_trust_dir(const struct station_ctx *ctx, char *out, size_t cap);

/* ---- output ------------------------------------------------------------ */

/*
 * Emit one result object. With --json it is printed compact on one line on
 * stdout; otherwise `human` (may be NULL) is called to print it for people.
 * Takes ownership of obj (json_decref'ed).
 */
void st_emit(struct station_ctx *ctx, json_t *obj,
	     void (*human)(const json_t *obj, void *arg), void *arg);

/*
 * The --json line st_emit would print for obj ("event" and "ts" added,
 * then "\n"), malloc'ed; NULL if obj is NULL or memory ran out. Takes
 * ownership of obj. For writers that build the line outside their lock.
 */
char *st_event_line(struct station_ctx *ctx, json_t *obj);

/*
 * The steps of a board as --json events count them: CONNECT is step 1 of
 * ST_STEPS, RECORD 10, DONE 11. st_step_number(FAILED or QUARANTINED) is 0
 * (not a step).
 */
#define ST_STEPS 11
int st_step_number(enum jnl_state s);

/*
 * Whether a board's recorded error, recorded while it stood at error_step
 * (a state name; NULL or unknown: not known), still describes it: true for a
 * FAILED or QUARANTINED board and for one in flight at or before that step;
 * false once the board has moved past it (a resume got it on) or is DONE.
 * The journal keeps the error in its history either way.
 */
bool st_error_current(enum jnl_state state, const char *error_step);

/* Report a failure: the error log line is the module's; this adds what to do. */
int st_fail(imp_err rc, const char *next_step);

/* ---- a local imprint-registry (registry.c; demo and tests) ------------ */

struct st_registry {
	pid_t pid;
	FILE *out;
	char url[128];
	char db[4300];
	char ca[4400], cert[4400], key[4400];
};

/*
 * Start imprint-registry (found beside this binary) on 127.0.0.1, an
 * ephemeral port, with its database and TLS material (made by init-tls if
 * missing) in dir and DATA/trust as trust. Stop it with st_registry_stop,
 * also after a failure.
 */
imp_err st_registry_start(struct station_ctx *ctx, const char *dir, struct st_registry *r);
void st_registry_stop(struct st_registry *r);
/* The configuration's "registry" section for r (new reference). */
json_t *st_registry_config(const struct st_registry *r);

#endif
