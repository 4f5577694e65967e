/*
 * imprint help [COMMAND [SUBCOMMAND]]: the help text comes from the command
 * table (usage, description, options), the one source of it.
 */
#include <stdio.h>
#include <string.h>

#include "docgen.h"
#include "imprint/log.h"
#include "station.h"

static struct {
	const char *man, *completion;
} opt;

static const struct st_option help_options[] = {
	{ "completion", 0, ST_OPT_STRING, &opt.completion, "SHELL",
	  "print the completion script for SHELL (bash), made from the command table" },
	{ "man", 0, ST_OPT_STRING, &opt.man, "TEMPLATE",
	  "print the man page: TEMPLATE (man/imprint.1.in) with the commands, options and exit "
	  "codes of the command table" },
	ST_OPTIONS_END,
};

static imp_err help_check(int argc, char **argv)
{
	(void)argv;
	if (opt.man && opt.completion) {
		IMP_ERROR("help: --man and --completion exclude each other; give one");
		return IMP_ERR_USAGE;
	}
	if ((opt.man || opt.completion) && argc > 1) {
		IMP_ERROR("help: --%s prints the whole page and takes no command; drop '%s'",
			  opt.man ? "man" : "completion", argv[1]);
		return IMP_ERR_USAGE;
	}
	return IMP_OK;
}

static void print_overview(void)
{
	printf("usage: imprint [GLOBAL OPTIONS] COMMAND [ARGS]\n\n"
	       "global options (before or after the command):\n");
	st_print_options(st_global_options);
	printf("  %-30s %s\n", "    --version", "print the version");
	printf("  %-30s %s\n", "-h, --help", "show this help");
	printf("\ncommands:\n");
	for (const struct st_command *const *c = st_commands; *c; c++)
		printf("  %-12s %s\n", (*c)->name, (*c)->summary);
	printf("\n'imprint help COMMAND' or 'imprint COMMAND --help' shows a command's options, "
	       "exit codes and an example\n");
}

static int help_run(struct station_ctx *ctx, int argc, char **argv)
{
	const struct st_command *c, *s;
	char prefix[64];

	(void)ctx;
	if (opt.man)
		return st_print_man(opt.man);
	if (opt.completion)
		return st_print_completion(opt.completion);
	if (argc < 2) {
		print_overview();
		return 0;
	}
	c = st_command_find(st_commands, argv[1]);
	if (!c) {
		st_unknown_command(st_commands, "imprint", argv[1]);
		return IMP_ERR_USAGE;
	}
	if (argc < 3) {
		st_print_command_help("imprint", c);
		return 0;
	}
	snprintf(prefix, sizeof(prefix), "imprint %s", c->name);
	s = c->subs ? st_command_find(c->subs, argv[2]) : NULL;
	if (!s) {
		if (c->subs)
			st_unknown_command(c->subs, prefix, argv[2]);
		else
			IMP_ERROR("'imprint %s' has no sub-commands", c->name);
		return IMP_ERR_USAGE;
	}
	st_print_command_help(prefix, s);
	return 0;
}

const struct st_command st_cmd_help = {
	.name = "help",
	.fn = help_run,
	.need = NEED_NOTHING,
	.summary = "list commands, or show one command's help",
	.usage = "imprint help [COMMAND [SUBCOMMAND]] | --man TEMPLATE | --completion SHELL",
	.opts = help_options,
	.max_args = 2,
	.check = help_check,
	.help = "Without a command, the global options and the list of commands; with one "
		"(and a sub-command), its usage, description, options, exit codes and an "
		"example: the same text as 'imprint COMMAND --help', from the same command "
		"table the man page is made from.",
	.example = "imprint help provision\nimprint help hsm init",
};
