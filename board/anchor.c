#include <stdlib.h>
#include <string.h>

#include "board/anchor.h"
#include "imprint/log.h"

const struct board_anchor_driver *const board_anchor_drivers[] = {
	&board_anchor_agent,
	&board_anchor_pcsc,
	NULL,
};

struct board_anchor {
	const struct board_anchor_driver *drv;
	void *priv;
};

const struct board_anchor_driver *board_anchor_driver_find(const char *name)
{
	for (size_t i = 0; board_anchor_drivers[i]; i++)
		if (strcmp(board_anchor_drivers[i]->name, name) == 0)
			return board_anchor_drivers[i];
	return NULL;
}

imp_err board_anchor_open(const char *driver, const struct board_anchor_params *params,
			  struct board_anchor **out)
{
	const struct board_anchor_driver *drv = board_anchor_driver_find(driver);
	struct board_anchor *a;
	imp_err rc;

	*out = NULL;
	if (!drv) {
		IMP_ERROR("unknown trust anchor driver '%s' (known: agent, pcsc)", driver);
		return IMP_ERR_USAGE;
	}
	a = calloc(1, sizeof(*a));
	if (!a)
		return IMP_ERR_NOMEM;
	a->drv = drv;
	rc = drv->open(params, &a->priv);
	if (rc != IMP_OK) {
		free(a);
		return rc;
	}
	*out = a;
	return IMP_OK;
}

void board_anchor_close(struct board_anchor *a)
{
	if (!a)
		return;
	a->drv->close(a->priv);
	free(a);
}

static imp_err unsupported(const struct board_anchor *a, const char *what)
{
	IMP_ERROR("trust anchor '%s' does not support %s", a->drv->name, what);
	return IMP_ERR_UNSUPPORTED;
}

imp_err board_anchor_inject(struct board_anchor *a, const struct board_anchor_item *item,
			    uint8_t *out, size_t cap, size_t *out_len)
{
	*out_len = 0;
	if (!a->drv->inject)
		return unsupported(a, "inject");
	return a->drv->inject(a->priv, item, out, cap, out_len);
}

imp_err board_anchor_read_identity(struct board_anchor *a, uint8_t slot,
				   struct board_identity *out)
{
	if (!a->drv->read_identity)
		return unsupported(a, "read_identity");
	return a->drv->read_identity(a->priv, slot, out);
}

imp_err board_anchor_challenge(struct board_anchor *a, uint8_t slot,
			       const uint8_t nonce[WIRE_NONCE_LEN], uint8_t *sig, size_t cap,
			       size_t *sig_len)
{
	*sig_len = 0;
	if (!a->drv->challenge)
		return unsupported(a, "challenge");
	return a->drv->challenge(a->priv, slot, nonce, sig, cap, sig_len);
}

imp_err board_anchor_lock(struct board_anchor *a, uint8_t what)
{
	if (!a->drv->lock)
		return unsupported(a, "lock");
	return a->drv->lock(a->priv, what);
}

imp_err board_anchor_lock_state(struct board_anchor *a, struct board_anchor_lock_state *out)
{
	if (!a->drv->lock_state)
		return unsupported(a, "lock_state");
	return a->drv->lock_state(a->priv, out);
}

imp_err board_anchor_lock_state_seen(struct board_anchor *a, const struct board_agent_info *seen,
				     struct board_anchor_lock_state *out)
{
	if (seen && a->drv == &board_anchor_agent) {
		board_anchor_agent_state(seen, out);
		return IMP_OK;
	}
	return board_anchor_lock_state(a, out);
}

imp_err board_anchor_identify(struct board_anchor *a, struct board_agent_info *out)
{
	if (!a->drv->identify)
		return unsupported(a, "identify");
	return a->drv->identify(a->priv, out);
}
