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

/* What set-up a command needs before it runs (command table flags). */
enum st_need {
	NEED_NOTHING = 0,
	NEED_DATA_DIR = 1 << 0, /* the data directory must exist (created if not) */
};

struct station_ctx {
	const char *prog;      /* argv[0] of the station */
	char data_dir[4096];   /* --data-dir, $IMPRINT_DATA_DIR, or the default */
	bool json;             /* --json: one JSON object per line on stdout */
	const char *config;    /* --config FILE, or NULL */
	const char *line_url;  /* --line URL (provision, resume, line), or NULL */
};

typedef int (*st_cmd_fn)(int argc, char **argv, struct station_ctx *ctx);

struct st_command {
	const char *name;
	st_cmd_fn fn;
	unsigned need;        /* enum st_need bits */
	const char *summary;  /* one line for `imprint help` */
};

/* The sorted command table, NULL-terminated (commands.c). */
extern const struct st_command st_commands[];
const struct st_command *st_command_find(const char *name);

/* Subcommands, one file each (cmd_NAME.c). */
int cmd_audit(int argc, char **argv, struct station_ctx *ctx);
int cmd_board(int argc, char **argv, struct station_ctx *ctx);
int cmd_demo(int argc, char **argv, struct station_ctx *ctx);
int cmd_export(int argc, char **argv, struct station_ctx *ctx);
int cmd_help(int argc, char **argv, struct station_ctx *ctx);
int cmd_hsm(int argc, char **argv, struct station_ctx *ctx);
int cmd_journal(int argc, char **argv, struct station_ctx *ctx);
int cmd_line(int argc, char **argv, struct station_ctx *ctx);
int cmd_provision(int argc, char **argv, struct station_ctx *ctx);
int cmd_revoke(int argc, char **argv, struct station_ctx *ctx);
int cmd_resume(int argc, char **argv, struct station_ctx *ctx);
int cmd_status(int argc, char **argv, struct station_ctx *ctx);
int cmd_supervisor(int argc, char **argv, struct station_ctx *ctx);
int cmd_version(int argc, char **argv, struct station_ctx *ctx);

/* ---- options: one table row per option -------------------------------- */

enum st_opt_type {
	ST_OPT_FLAG,    /* bool *, no argument */
	ST_OPT_STRING,  /* const char **, required argument */
	ST_OPT_INT,     /* long *, required argument, decimal */
	ST_OPT_END = -1,
};

struct st_option {
	const char *long_name;
	char short_name;       /* 0 for none */
	enum st_opt_type type;
	void *dest;            /* where the value goes, by type */
	const char *arg_name;  /* "FILE", "N"; NULL for flags */
	const char *help;
};

#define ST_OPTIONS_END { NULL, 0, ST_OPT_END, NULL, NULL, NULL }

/*
 * Parse argv (argv[0] is the command name) against the table, which is
 * terminated by ST_OPTIONS_END. --help / -h prints the usage built from
 * `usage` and the table and returns IMP_OK with *help_shown set. On success
 * *first_arg is the index of the first non-option argument.
 */
imp_err st_parse_options(const struct st_option *opts, const char *usage,
			 int argc, char **argv, int *first_arg, bool *help_shown);

/* Print "usage: ..." and the option table to stdout. */
void st_print_usage(const char *usage, const struct st_option *opts);

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

/* Ask for the supervisor's PIN and check it (cmd_supervisor.c):
 * IMP_ERR_PIN if wrong or not set. */
imp_err st_supervisor_check(struct station_ctx *ctx, const struct fmt_config *cfg);

/*
 * Path of a program shipped with imprint (imprint-vboard, imprint-registry):
 * beside this binary in the build tree (../BUILD_SUBDIR/NAME) or in an
 * installation (same directory), else NAME alone, for $PATH.
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

/* Report a failure: the error log line is the module's; this adds what to do. */
int st_fail(imp_err rc, const char *next_step);

/* ---- a local imprint-registry (cmd_export.c; demo and tests) ---------- */

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
