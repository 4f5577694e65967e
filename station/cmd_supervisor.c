/*
 * imprint supervisor set: store the supervisor PIN that authorises reissues
 * (supervisor.c holds the PIN file and its check).
 */
#include "station.h"
#include "run.h"

static int supervisor_set(struct station_ctx *ctx, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return st_fail(st_supervisor_set(ctx, &ctx->run->cfg), NULL);
}

static const struct st_command supervisor_set_cmd = {
	.name = "set",
	.fn = supervisor_set,
	.need = NEED_CONFIG,
	.summary = "store a new supervisor pin (read from hsm.supervisor_pin, else a prompt)",
	.usage = "imprint supervisor set",
	.help = "Reads a new supervisor pin from hsm.supervisor_pin (an environment "
		"variable or a file of mode 0600), else asks on the terminal, and stores it "
		"as a salted PBKDF2-HMAC-SHA256 in DATA/supervisor (mode 0600). At least 6 "
		"characters. Exits 7 if no pin can be read, 13 if the pin file is not "
		"private.",
	.exits = (const imp_err[]){ IMP_ERR_IO, IMP_ERR_PIN, IMP_ERR_INSECURE, IMP_OK },
	.example = "imprint supervisor set",
};

static const struct st_command *const supervisor_subs[] = { &supervisor_set_cmd, NULL };

const struct st_command st_cmd_supervisor = {
	.name = "supervisor",
	.need = NEED_DATA_DIR,
	.summary = "set the supervisor pin that authorises reissues",
	.usage = "imprint supervisor set",
	.subs = supervisor_subs,
	.help = "The supervisor pin is a second pin, held by a supervisor and distinct from the "
		"hsm's, that 'imprint provision --reissue' asks for. It is stored as a salted "
		"PBKDF2-HMAC-SHA256 in DATA/supervisor (mode 0600).",
	.example = "imprint supervisor set",
};
