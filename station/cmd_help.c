/*
 * imprint help [COMMAND [SUBCOMMAND]]: the help text comes from the command
 * table (usage, description, options), the one source of it.
 */
#include <stdio.h>
#include <string.h>

#include "imprint/log.h"
#include "station.h"

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
	.usage = "imprint help [COMMAND [SUBCOMMAND]]",
	.max_args = 2,
	.help = "Without a command, the global options and the list of commands; with one "
		"(and a sub-command), its usage, description, options, exit codes and an "
		"example: the same text as 'imprint COMMAND --help', from the same command "
		"table the man page is made from.",
	.example = "imprint help provision\nimprint help hsm init",
};
