#include "imprint/log.h"
#include "station.h"

int cmd_board(int argc, char **argv, struct station_ctx *ctx)
{
	(void)argc;
	(void)argv;
	(void)ctx;
	IMP_ERROR("board: not built yet");
	return IMP_ERR_UNSUPPORTED;
}
