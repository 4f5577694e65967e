#include <stdio.h>

#include "station.h"

int cmd_version(int argc, char **argv, struct station_ctx *ctx)
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
