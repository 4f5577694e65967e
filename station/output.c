#include <stdio.h>
#include <stdlib.h>

#include "imprint/log.h"
#include "station.h"

void st_emit(struct station_ctx *ctx, json_t *obj,
	     void (*human)(const json_t *obj, void *arg), void *arg)
{
	if (!obj)
		return;
	if (ctx->json) {
		char *s = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);

		if (s) {
			fputs(s, stdout);
			fputc('\n', stdout);
			fflush(stdout);
			free(s);
		}
	} else if (human) {
		human(obj, arg);
		fflush(stdout);
	}
	json_decref(obj);
}

int st_fail(imp_err rc, const char *next_step)
{
	if (rc == IMP_OK)
		return 0;
	if (next_step)
		IMP_ERROR("%s (%s, exit %d); %s", imp_err_str(rc), imp_err_name(rc), (int)rc,
			  next_step);
	else
		IMP_ERROR("%s (%s, exit %d)", imp_err_str(rc), imp_err_name(rc), (int)rc);
	return (int)rc;
}
