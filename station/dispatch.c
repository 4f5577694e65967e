/*
 * The dispatcher: global options, the command table, set-up applied in one
 * place (st_setup), help from the tables. Everything a command needs is
 * opened here before it runs and closed here after it returns.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "imprint/log.h"
#include "imprint/util.h"
#include "run.h"

struct station_ctx st_ctx;

static struct {
	const char *data_dir;
	int verbose;
	bool quiet;
} g;

const struct st_option st_global_options[] = {
	{ "config", 0, ST_OPT_STRING, &st_ctx.config, "FILE", "station configuration (JSON)" },
	{ "data-dir", 0, ST_OPT_STRING, &g.data_dir, "DIR",
	  "station data directory (default $IMPRINT_DATA_DIR, else /var/lib/imprint as root, "
	  "else ~/.local/share/imprint)" },
	{ "json", 0, ST_OPT_FLAG, &st_ctx.json, NULL, "one JSON object per line on stdout" },
	{ "quiet", 'q', ST_OPT_FLAG, &g.quiet, NULL, "errors only on stderr" },
	{ "verbose", 'v', ST_OPT_COUNT, &g.verbose, NULL,
	  "more log lines on stderr (repeat for trace)" },
	ST_OPTIONS_END,
};

static const struct st_option no_options[] = { ST_OPTIONS_END };

static imp_err resolve_data_dir(struct station_ctx *ctx)
{
	const char *env = getenv("IMPRINT_DATA_DIR");
	const char *home = getenv("HOME");
	const char *dir = g.data_dir && *g.data_dir ? g.data_dir : env && *env ? env : NULL;
	char cwd[4096];
	int n;

	/* An empty --data-dir (a script's unset variable) must not become the
	 * default, which on a station is the production data. */
	if (g.data_dir && !*g.data_dir) {
		IMP_ERROR("--data-dir is empty: give the station's data directory (or leave the "
			  "option out for the default)");
		return IMP_ERR_USAGE;
	}

	if (dir && dir[0] != '/') {
		/* Relative to where the command was started, once and for all. */
		if (!getcwd(cwd, sizeof(cwd))) {
			IMP_ERROR("cannot resolve the relative data directory '%s'", dir);
			return IMP_ERR_IO;
		}
		n = snprintf(ctx->data_dir, sizeof(ctx->data_dir), "%s/%s", cwd, dir);
	} else if (dir) {
		n = snprintf(ctx->data_dir, sizeof(ctx->data_dir), "%s", dir);
	} else if (geteuid() == 0 || !home) {
		n = snprintf(ctx->data_dir, sizeof(ctx->data_dir), "/var/lib/imprint");
	} else {
		n = snprintf(ctx->data_dir, sizeof(ctx->data_dir), "%s/.local/share/imprint", home);
	}
	if (n < 0 || (size_t)n >= sizeof(ctx->data_dir)) {
		IMP_ERROR("data directory path too long");
		return IMP_ERR_USAGE;
	}
	return IMP_OK;
}

/* The global options take effect once every level of the line is parsed. */
static imp_err apply_globals(struct station_ctx *ctx)
{
	int level = g.quiet ? IMP_LOG_ERROR : IMP_LOG_INFO + g.verbose;

	imp_log_set_level((enum imp_log_level)level);
	return resolve_data_dir(ctx);
}

/*
 * The data directory holds the journal, the token and the trust: another
 * user who can write it can replace any of them. World-writable is refused,
 * group-writable warned about; both name the fix.
 */
static imp_err data_dir_check(const char *dir)
{
	struct stat st;

	if (stat(dir, &st) != 0) {
		IMP_ERROR("cannot stat the data directory %s: %s", dir, strerror(errno));
		return IMP_ERR_IO;
	}
	if (!S_ISDIR(st.st_mode)) {
		IMP_ERROR("the data directory %s is not a directory: give --data-dir a directory",
			  dir);
		return IMP_ERR_CONFIG;
	}
	if (st.st_mode & S_IWOTH) {
		IMP_ERROR("the data directory %s is mode %04o: every user of this host could "
			  "replace its journal, token or trust; run chmod 700 %s", dir,
			  (unsigned)(st.st_mode & 07777), dir);
		return IMP_ERR_INSECURE;
	}
	if (st.st_mode & S_IWGRP)
		IMP_WARN("the data directory %s is group-writable (mode %04o): run chmod 700 %s "
			 "unless the whole group operates this station", dir,
			 (unsigned)(st.st_mode & 07777), dir);
	return IMP_OK;
}

imp_err st_setup(struct station_ctx *ctx, unsigned need)
{
	imp_err rc;

	struct st_run *run = ctx->run;

	if ((need & ST_SETUP_DATA_DIR) && !(run->opened & ST_SETUP_DATA_DIR)) {
		struct stat st;

		/* A command that only reads the journal does not create the data
		 * directory: its absence is told by the journal's open ("no
		 * journal at ... yet"). */
		if ((need & ST_SETUP_JOURNAL) && !(need & ST_SETUP_HSM) &&
		    stat(ctx->data_dir, &st) != 0 && errno == ENOENT)
			return st_run_open(ctx, run, need);
		rc = imp_mkdir_p(ctx->data_dir, 0700);
		if (rc != IMP_OK) {
			IMP_ERROR("cannot create the data directory %s; check --data-dir or "
				  "IMPRINT_DATA_DIR",
				  ctx->data_dir);
			return rc;
		}
		rc = data_dir_check(ctx->data_dir);
		if (rc != IMP_OK)
			return rc;
		run->opened |= ST_SETUP_DATA_DIR;
	}
	return st_run_open(ctx, run, need);
}

void st_unknown_command(const struct st_command *const *table, const char *prefix,
			    const char *name)
{
	const char *best = NULL;
	size_t bd = 3;

	for (const struct st_command *const *c = table; *c; c++) {
		size_t d = st_edit_distance(name, strlen(name), (*c)->name);

		if (d < bd || (strncmp(name, (*c)->name, strlen(name)) == 0 && strlen(name) >= 2 &&
			       bd > 1)) {
			bd = d < bd ? d : 1;
			best = (*c)->name;
		}
	}
	/* "imprint hsm" names the command as "hsm NAME", the top level as "NAME". */
	const char *within = strncmp(prefix, "imprint ", 8) == 0 ? prefix + 8 : "";

	if (best)
		IMP_ERROR("unknown command '%s%s%s'; did you mean '%s %s'?", within,
			  *within ? " " : "", name, prefix, best);
	else
		IMP_ERROR("unknown command '%s%s%s'; run '%s --help' for the list", within,
			  *within ? " " : "", name, prefix);
}

/* Text for people, wrapped at 78 columns after indent; "\n" starts a new
 * paragraph. */
static void print_wrapped(const char *text, int indent)
{
	const char *p = text;

	while (*p) {
		int col = indent;

		printf("%*s", indent, "");
		while (*p && *p != '\n') {
			size_t w = strcspn(p, " \n");

			if (col > indent && col + 1 + (int)w > 78) {
				printf("\n%*s", indent, "");
				col = indent;
			} else if (col > indent) {
				putchar(' ');
				col++;
			}
			printf("%.*s", (int)w, p);
			col += (int)w;
			p += w;
			while (*p == ' ')
				p++;
		}
		putchar('\n');
		if (*p == '\n')
			p++;
	}
}

void st_print_command_help(const char *prefix, const struct st_command *c)
{
	imp_err codes[IMP_ERR__COUNT];
	size_t n;

	printf("usage: %s\n", c->usage);
	printf("\n%s\n", c->summary);
	if (c->help) {
		printf("\n");
		print_wrapped(c->help, 0);
	}
	if (c->subs) {
		printf("\ncommands:\n");
		for (const struct st_command *const *s = c->subs; *s; s++)
			printf("  %-14s %s\n", (*s)->name, (*s)->summary);
		printf("\n'%s %s COMMAND --help' shows a command's options\n", prefix, c->name);
	}
	printf("\noptions:\n");
	if (c->opts && c->opts->long_name)
		st_print_options(c->opts);
	printf("  %-30s %s\n", "-h, --help", "show this help");
	printf("  global options (before or after the command): see 'imprint help'\n");
	n = st_command_exit_codes(c, codes);
	printf("\nexit codes:\n");
	for (size_t i = 0; i < n; i++)
		printf("  %2d  %-22s %s\n", (int)codes[i], imp_err_name(codes[i]),
		       imp_err_str(codes[i]));
	if (c->example) {
		printf("\nexample%s:\n", strchr(c->example, '\n') ? "s" : "");
		print_wrapped(c->example, 2);
	}
}

int st_dispatch(const struct st_command *const *table, const char *prefix, int argc,
		char **argv, struct station_ctx *ctx)
{
	const struct st_option *tables[3] = { NULL, st_global_options, NULL };
	const struct st_command *c;
	struct st_run *outer;
	const char *outer_event;
	char sub_prefix[128], event[128];
	bool help = false;
	int n = 0, code;
	imp_err rc;

	c = st_command_find(table, argv[0]);
	if (!c) {
		st_unknown_command(table, prefix, argv[0]);
		return IMP_ERR_USAGE;
	}
	tables[0] = c->subs ? no_options : c->opts ? c->opts : no_options;
	rc = st_parse_options(tables, c->subs != NULL, argc, argv, &n, &help);
	if (rc != IMP_OK) {
		IMP_ERROR("see '%s %s --help'", prefix, c->name);
		return (int)rc;
	}
	if (help) {
		st_print_command_help(prefix, c);
		return 0;
	}
	if (c->subs) {
		if (n < 2) {
			st_print_command_help(prefix, c);
			return IMP_ERR_USAGE;
		}
		snprintf(sub_prefix, sizeof(sub_prefix), "%s %s", prefix, c->name);
		return st_dispatch(c->subs, sub_prefix, n - 1, argv + 1, ctx);
	}
	rc = apply_globals(ctx);
	if (rc != IMP_OK)
		return (int)rc;
	if (n - 1 < c->min_args) {
		IMP_ERROR("%s %s: missing argument; usage: %s", prefix, c->name, c->usage);
		return IMP_ERR_USAGE;
	}
	if (c->max_args >= 0 && n - 1 > c->max_args) {
		IMP_ERROR("%s %s: unexpected argument '%s'; usage: %s", prefix, c->name,
			  argv[1 + c->max_args], c->usage);
		return IMP_ERR_USAGE;
	}
	rc = c->check ? c->check(n, argv) : IMP_OK;
	if (rc != IMP_OK)
		return (int)rc;
	/* "imprint hsm" + "status": events named "hsm_status". */
	outer_event = ctx->event;
	snprintf(event, sizeof(event), "%s%s%s", strncmp(prefix, "imprint ", 8) == 0 ? prefix + 8 : "",
		 strncmp(prefix, "imprint ", 8) == 0 ? "_" : "", c->name);
	for (char *p = event; *p; p++)
		if (*p == ' ' || *p == '-')
			*p = '_';
	ctx->event = event;
	/* Each command its own run context: the demo runs export and audit
	 * inside its own run. */
	outer = ctx->run;
	ctx->run = calloc(1, sizeof(*ctx->run));
	if (!ctx->run) {
		ctx->run = outer;
		ctx->event = outer_event;
		return st_fail(IMP_ERR_NOMEM, NULL);
	}
	rc = st_setup(ctx, c->need);
	if (rc == IMP_OK)
		code = c->fn(ctx, n, argv);
	else
		code = st_fail(rc, "nothing was done");
	st_run_close(ctx->run);
	free(ctx->run);
	ctx->run = outer;
	ctx->event = outer_event;
	return code;
}
