/*
 * Trust anchor "agent": the board's secure element behind the provisioning
 * agent, reached over an open link. Thin: each member is one agent call.
 */
#include <stdlib.h>

#include "board/anchor.h"
#include "imprint/log.h"

struct agent_anchor {
	struct board_link *link;
};

static imp_err ag_open(const struct board_anchor_params *params, void **priv)
{
	struct agent_anchor *a;

	if (!params || !params->link) {
		IMP_ERROR("trust anchor 'agent' needs an open UART link");
		return IMP_ERR_USAGE;
	}
	a = calloc(1, sizeof(*a));
	if (!a)
		return IMP_ERR_NOMEM;
	a->link = params->link;
	*priv = a;
	return IMP_OK;
}

static void ag_close(void *priv)
{
	free(priv);
}

static imp_err ag_inject(void *priv, const struct board_anchor_item *it, uint8_t *out, size_t cap,
			 size_t *out_len)
{
	struct agent_anchor *a = priv;
	imp_err rc;

	*out_len = 0;
	switch (it->kind) {
	case BOARD_ANCHOR_GENERATE:
		if (cap < WIRE_PUB_LEN)
			return IMP_ERR_USAGE;
		rc = board_agent_generate_key(a->link, it->slot, it->reuse, out);
		if (rc == IMP_OK)
			*out_len = WIRE_PUB_LEN;
		return rc;
	case BOARD_ANCHOR_WRAPPED_KEY:
		if (!it->wrapped)
			return IMP_ERR_USAGE;
		rc = board_agent_import_wrapped_key(a->link, it->wrapped, out, cap, out_len);
		/* The agent's answer on this thread's link, just received. */
		if (rc == IMP_ERR_BOARD && board_agent_last_status() == WIRE_ST_EXISTS)
			rc = IMP_ERR_EXISTS;
		return rc;
	case BOARD_ANCHOR_CERT:
		return board_agent_store_cert(a->link, it->slot, it->data, it->data_len);
	case BOARD_ANCHOR_IDENTITY:
		if (!it->serial)
			return IMP_ERR_USAGE;
		return board_agent_store_identity(a->link, it->serial, it->data, it->data_len);
	}
	IMP_ERROR("trust anchor 'agent': unknown item kind %d", (int)it->kind);
	return IMP_ERR_USAGE;
}

static imp_err ag_read_identity(void *priv, uint8_t slot, struct board_identity *out)
{
	struct agent_anchor *a = priv;

	return board_agent_read_identity(a->link, slot, out);
}

static imp_err ag_challenge(void *priv, uint8_t slot, const uint8_t nonce[WIRE_NONCE_LEN],
			    uint8_t *sig, size_t cap, size_t *sig_len)
{
	struct agent_anchor *a = priv;

	return board_agent_sign_challenge(a->link, slot, nonce, sig, cap, sig_len);
}

static imp_err ag_lock(void *priv, uint8_t what)
{
	struct agent_anchor *a = priv;

	return board_agent_lock(a->link, what);
}

static imp_err ag_lock_state(void *priv, struct board_anchor_lock_state *out)
{
	struct agent_anchor *a = priv;
	struct board_agent_info info;
	imp_err rc;

	rc = board_agent_identify(a->link, &info);
	if (rc == IMP_OK)
		board_anchor_agent_state(&info, out);
	return rc;
}

void board_anchor_agent_state(const struct board_agent_info *info,
			      struct board_anchor_lock_state *out)
{
	out->lifecycle = info->lifecycle;
	out->fuses = info->fuses;
	out->locked = info->lifecycle == WIRE_LC_LOCKED;
}

const struct board_anchor_driver board_anchor_agent = {
	.name = "agent",
	.open = ag_open,
	.close = ag_close,
	.inject = ag_inject,
	.read_identity = ag_read_identity,
	.challenge = ag_challenge,
	.lock = ag_lock,
	.lock_state = ag_lock_state,
};
