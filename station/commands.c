#include <string.h>

#include "station.h"

/* Sorted by name; st_command_find relies on it. */
const struct st_command st_commands[] = {
	{ "board", cmd_board, NEED_NOTHING, "talk to one board: info" },
	{ "help", cmd_help, NEED_NOTHING, "list commands, or show one command's help" },
	{ "hsm", cmd_hsm, NEED_DATA_DIR, "the organisation's keys: init, status, export-trust" },
	{ "version", cmd_version, NEED_NOTHING, "print the version" },
	{ NULL, NULL, 0, NULL },
};

const struct st_command *st_command_find(const char *name)
{
	for (const struct st_command *c = st_commands; c->name; c++) {
		int cmp = strcmp(name, c->name);

		if (cmp == 0)
			return c;
		if (cmp < 0)
			break;
	}
	return NULL;
}
