#include <stdio.h>
#include <string.h>

#include "imprint/log.h"
#include "station.h"

static void print_overview(void)
{
	printf("usage: imprint [--data-dir DIR] [--config FILE] [--json] [-v|-q] COMMAND [ARGS]\n\n"
	       "global options:\n"
	       "  --data-dir DIR   station data directory (default $IMPRINT_DATA_DIR,\n"
	       "                   else /var/lib/imprint as root, else ~/.local/share/imprint)\n"
	       "  --config FILE    station configuration (JSON)\n"
	       "  --json           one JSON object per line on stdout\n"
	       "  -v, --verbose    more log lines on stderr (repeat for trace)\n"
	       "  -q, --quiet      errors only on stderr\n"
	       "  --version        print the version\n\n"
	       "commands:\n");
	for (const struct st_command *c = st_commands; c->name; c++)
		printf("  %-12s %s\n", c->name, c->summary);
	printf("\n'imprint COMMAND --help' shows a command's options; 'man imprint' lists exit codes\n");
}

int cmd_help(int argc, char **argv, struct station_ctx *ctx)
{
	const struct st_command *c;
	char *sub[] = { NULL, "--help", NULL };

	if (argc < 2) {
		print_overview();
		return 0;
	}
	c = st_command_find(argv[1]);
	if (!c) {
		IMP_ERROR("unknown command '%s'; run 'imprint help' for the list", argv[1]);
		return IMP_ERR_USAGE;
	}
	sub[0] = argv[1];
	return c->fn(2, sub, ctx);
}
