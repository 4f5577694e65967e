#include <string.h>

#include "station.h"

/* Sorted by name; st_command_find relies on it. */
const struct st_command st_commands[] = {
	{ "audit", cmd_audit, NEED_DATA_DIR,
	  "verify offline: records, certificate chains, uniqueness, completeness, journal" },
	{ "board", cmd_board, NEED_NOTHING, "talk to one board: info" },
	{ "demo", cmd_demo, NEED_DATA_DIR,
	  "the whole virtual line: start boards, init the hsm, provision, summarise" },
	{ "export", cmd_export, NEED_DATA_DIR,
	  "deliver signed records to the registry, or write them for a bulk import" },
	{ "help", cmd_help, NEED_NOTHING, "list commands, or show one command's help" },
	{ "hsm", cmd_hsm, NEED_DATA_DIR, "the organisation's keys: init, status, export-trust" },
	{ "journal", cmd_journal, NEED_DATA_DIR,
	  "sign the journal's head now: checkpoint [--interval N]" },
	{ "line", cmd_line, NEED_DATA_DIR,
	  "the whole line on one PostgreSQL: status, sync, release (docs/LINE.md)" },
	{ "provision", cmd_provision, NEED_DATA_DIR,
	  "take the boards on the fixtures from blank to locked and recorded" },
	{ "resume", cmd_resume, NEED_DATA_DIR, "finish every board the journal has in flight" },
	{ "revoke", cmd_revoke, NEED_DATA_DIR,
	  "decommission a device: a signed revocation record into the outbox" },
	{ "status", cmd_status, NEED_DATA_DIR, "boards per state, quota left, recent failures" },
	{ "supervisor", cmd_supervisor, NEED_DATA_DIR,
	  "set the supervisor pin that authorises reissues" },
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
