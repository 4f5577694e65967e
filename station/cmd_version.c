#include <stdio.h>

#include "station.h"

static int version_run(struct station_ctx *ctx, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	if (ctx->json)
		st_emit(ctx, json_pack("{s:s, s:s}", "program", "imprint", "version", IMPRINT_VERSION),
			NULL, NULL);
	else
		printf("imprint %s\n", IMPRINT_VERSION);
	return 0;
}

const struct st_command st_cmd_version = {
	.name = "version",
	.fn = version_run,
	.need = NEED_NOTHING,
	.summary = "print the version",
	.usage = "imprint version",
	.help = "Prints the program's version; with --json, {\"event\": \"version\", \"program\": "
		"\"imprint\", \"version\": ...}. 'imprint --version' is the same.",
	.example = "imprint version --json",
};
