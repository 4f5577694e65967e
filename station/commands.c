#include <string.h>

#include "station.h"

/* Sorted by name; st_command_find relies on it. Each entry is defined,
 * with its options and set-up flags, in its cmd_NAME.c. */
const struct st_command *const st_commands[] = {
	&st_cmd_audit,
	&st_cmd_board,
	&st_cmd_boards,
	&st_cmd_demo,
	&st_cmd_export,
	&st_cmd_firmware,
	&st_cmd_help,
	&st_cmd_hsm,
	&st_cmd_journal,
	&st_cmd_label,
	&st_cmd_line,
	&st_cmd_provision,
	&st_cmd_records,
	&st_cmd_report,
	&st_cmd_resume,
	&st_cmd_revoke,
	&st_cmd_serve,
	&st_cmd_status,
	&st_cmd_supervisor,
	&st_cmd_version,
	NULL,
};

const struct st_command *st_command_find(const struct st_command *const *table,
					 const char *name)
{
	for (const struct st_command *const *c = table; *c; c++) {
		int cmp = strcmp(name, (*c)->name);

		if (cmp == 0)
			return *c;
		if (cmp < 0)
			break;
	}
	return NULL;
}
