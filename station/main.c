#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "imprint/log.h"
#include "imprint/util.h"
#include "station.h"

static imp_err resolve_data_dir(struct station_ctx *ctx, const char *opt)
{
	const char *env = getenv("IMPRINT_DATA_DIR");
	const char *home = getenv("HOME");
	int n;

	if (opt && *opt)
		n = snprintf(ctx->data_dir, sizeof(ctx->data_dir), "%s", opt);
	else if (env && *env)
		n = snprintf(ctx->data_dir, sizeof(ctx->data_dir), "%s", env);
	else if (geteuid() == 0 || !home)
		n = snprintf(ctx->data_dir, sizeof(ctx->data_dir), "/var/lib/imprint");
	else
		n = snprintf(ctx->data_dir, sizeof(ctx->data_dir), "%s/.local/share/imprint", home);
	if (n < 0 || (size_t)n >= sizeof(ctx->data_dir)) {
		IMP_ERROR("data directory path too long");
		return IMP_ERR_USAGE;
	}
	return IMP_OK;
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

int main(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "data-dir", required_argument, NULL, 'd' },
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct station_ctx ctx = { .prog = argv[0] };
	const char *data_dir = NULL;
	const struct st_command *cmd;
	int level = IMP_LOG_INFO;
	int c;
	imp_err rc;

	imp_log_set_prog("imprint");
	signal(SIGPIPE, SIG_IGN);
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+vqh", longs, NULL)) != -1) {
		switch (c) {
		case 'd':
			data_dir = optarg;
			break;
		case 'c':
			ctx.config = optarg;
			break;
		case 'j':
			ctx.json = true;
			break;
		case 'v':
			level++;
			break;
		case 'q':
			level = IMP_LOG_ERROR;
			break;
		case 'V':
			return cmd_version(0, NULL, &ctx);
		case 'h':
			return cmd_help(1, argv, &ctx);
		default:
			IMP_ERROR("unknown option '%s'; run 'imprint help'", argv[optind - 1]);
			return IMP_ERR_USAGE;
		}
	}
	imp_log_set_level(level > IMP_LOG_TRACE ? IMP_LOG_TRACE : (enum imp_log_level)level);
	if (optind >= argc) {
		cmd_help(1, argv, &ctx);
		return IMP_ERR_USAGE;
	}
	cmd = st_command_find(argv[optind]);
	if (!cmd) {
		IMP_ERROR("unknown command '%s'; run 'imprint help' for the list", argv[optind]);
		return IMP_ERR_USAGE;
	}
	rc = resolve_data_dir(&ctx, data_dir);
	if (rc != IMP_OK)
		return rc;
	if (cmd->need & NEED_DATA_DIR) {
		rc = imp_mkdir_p(ctx.data_dir, 0700);
		if (rc != IMP_OK)
			return st_fail(rc, "check --data-dir or IMPRINT_DATA_DIR");
		rc = data_dir_check(ctx.data_dir);
		if (rc != IMP_OK)
			return rc;
	}
	return cmd->fn(argc - optind, argv + optind, &ctx);
}
