#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "board/agent.h"
#include "board/link.h"
#include "imprint/log.h"
#include "imprint/util.h"

const struct board_link_driver *const board_link_drivers[] = {
	&board_link_serial,
	NULL,
};

struct board_link {
	const struct board_link_driver *drv;
	void *priv;
	unsigned retries;
	double scale;
	bool quiet;
	char path[256];
	struct board_link_stats stats;
	/* The request frame of board_link_transact, kept with the link (its
	 * driver's buffers are per link too: one transaction at a time). */
	struct wire_frame req;
};

const struct board_link_driver *board_link_driver_find(const char *name)
{
	for (size_t i = 0; board_link_drivers[i]; i++)
		if (strcmp(board_link_drivers[i]->name, name) == 0)
			return board_link_drivers[i];
	return NULL;
}

imp_err board_link_open(const char *driver, const char *path, unsigned baud,
			struct board_link **out)
{
	const struct board_link_driver *drv;
	struct board_link *l;
	imp_err rc;

	*out = NULL;
	drv = board_link_driver_find(driver ? driver : "serial");
	if (!drv) {
		IMP_ERROR("unknown link driver '%s' (known: serial)", driver);
		return IMP_ERR_USAGE;
	}
	l = calloc(1, sizeof(*l));
	if (!l)
		return IMP_ERR_NOMEM;
	l->drv = drv;
	l->retries = BOARD_LINK_DEFAULT_RETRIES;
	l->scale = 1.0;
	snprintf(l->path, sizeof(l->path), "%s", path ? path : "");
	rc = drv->open(path, baud, &l->priv);
	if (rc != IMP_OK) {
		free(l);
		return rc;
	}
	*out = l;
	return IMP_OK;
}

void board_link_close(struct board_link *l)
{
	if (!l)
		return;
	l->drv->close(l->priv);
	free(l);
}

void board_link_set_retries(struct board_link *l, unsigned max_retries)
{
	l->retries = max_retries;
}

void board_link_set_quiet(struct board_link *l, bool quiet)
{
	l->quiet = quiet;
}

void board_link_set_timeout_scale(struct board_link *l, double scale)
{
	if (scale > 0)
		l->scale = scale;
}

imp_err board_link_transact(struct board_link *l, uint8_t cmd, const uint8_t *req,
			    size_t req_len, struct wire_frame *rsp, unsigned timeout_ms)
{
	struct wire_frame *fp;
	double t = (double)timeout_ms * l->scale;
	imp_err rc;

	if (req_len > WIRE_FRAME_MAX_PAYLOAD) {
		IMP_ERROR("agent command 0x%02x: request of %zu bytes exceeds one frame (%u)", cmd,
			  req_len, WIRE_FRAME_MAX_PAYLOAD);
		return IMP_ERR_USAGE;
	}
	fp = &l->req;
	fp->type = cmd;
	fp->seq = 0;
	fp->len = (uint16_t)req_len;
	if (req_len)
		memcpy(fp->payload, req, req_len);
	rc = l->drv->transact(l->priv, fp, rsp, t < 1 ? 1 : (unsigned)t, l->retries, &l->stats);
	imp_wipe(fp->payload, req_len); /* requests may carry wrapped keys */
	if (rc == IMP_OK)
		l->stats.transactions++;
	else if (rc == IMP_ERR_TIMEOUT && !l->quiet)
		IMP_ERROR("agent command %s: no answer on %s after %u attempts of %u ms; check "
			  "that the agent runs and the baud rate matches",
			  board_agent_cmd_name(cmd), l->path, l->retries + 1,
			  t < 1 ? 1 : (unsigned)t);
	else if (rc == IMP_ERR_PROTOCOL && !l->quiet)
		IMP_ERROR("agent command %s: only damaged or refused answers on %s after %u "
			  "attempts; check the cable, the baud rate and line noise",
			  board_agent_cmd_name(cmd), l->path, l->retries + 1);
	return rc;
}

const struct board_link_stats *board_link_get_stats(const struct board_link *l)
{
	return &l->stats;
}
