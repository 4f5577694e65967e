/*
 * Trust anchors: where a board keeps its identity (keys, certificate,
 * identity record) and how it proves it. A thin driver table over the
 * carriers imprint knows:
 *
 *   agent   the MCU's secure element reached through the provisioning agent
 *           over UART (board/agent.h)
 *   pcsc    a UICC / secure element in a PC/SC reader running imprint's
 *           applet, opened with params.reader (board/pcsc.h, docs/PCSC.md)
 *
 * Picked by name from the NULL-terminated, alphabetical board_anchor_drivers[].
 * Callers use the board_anchor_* wrappers; a NULL optional member makes the
 * wrapper answer IMP_ERR_UNSUPPORTED.
 */
#ifndef BOARD_ANCHOR_H
#define BOARD_ANCHOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "board/agent.h"
#include "imprint/err.h"

/* What open() needs; each driver uses the fields it documents. */
struct board_anchor_params {
	struct board_link *link;    /* agent: the open link (borrowed) */
	const char *reader;         /* pcsc: reader name, name prefix or index */
};

/* One item to put into the anchor. */
enum board_anchor_item_kind {
	BOARD_ANCHOR_GENERATE = 1,  /* generate a key in slot; out: pub[65] */
	BOARD_ANCHOR_WRAPPED_KEY,   /* import wrapped; out: pub[65] or kcv[8] */
	BOARD_ANCHOR_CERT,          /* store a certificate (DER) for slot */
	BOARD_ANCHOR_IDENTITY,      /* store serial + identity record */
};

struct board_anchor_item {
	enum board_anchor_item_kind kind;
	uint8_t slot;
	bool reuse;                             /* GENERATE: return an existing key */
	const struct board_wrapped_key *wrapped; /* WRAPPED_KEY */
	const uint8_t *data;                    /* CERT: DER; IDENTITY: the record */
	size_t data_len;
	const char *serial;                     /* IDENTITY */
};

struct board_anchor_lock_state {
	uint8_t lifecycle;          /* enum wire_lifecycle */
	uint8_t fuses;              /* BOARD_FUSE_* as the anchor reports them */
	bool locked;                /* lifecycle LOCKED or slots locked */
};

struct board_anchor_driver {
	const char *name;

	/* Attach to the anchor described by params. close() is called if and
	 * only if open() succeeded. Errors: IMP_ERR_USAGE (missing param),
	 * IMP_ERR_NOMEM, the carrier's errors. */
	imp_err (*open)(const struct board_anchor_params *params, void **priv);
	void (*close)(void *priv);

	/*
	 * Put one item into the anchor. out/cap/out_len carry the item's result
	 * (see enum board_anchor_item_kind; cap >= WIRE_PUB_LEN is always
	 * enough; *out_len is 0 for items without a result). Errors:
	 * IMP_ERR_EXISTS for a wrapped key when the anchor answers that the slot
	 * already holds a key (decided from this anchor's own answer, so a repeat
	 * after a crash can be told from a refusal), IMP_ERR_BOARD (refused; the
	 * log names the reason), carrier errors.
	 */
	imp_err (*inject)(void *priv, const struct board_anchor_item *item, uint8_t *out,
			  size_t cap, size_t *out_len);

	/* Read back what slot holds; *out owns buffers (board_identity_release). */
	imp_err (*read_identity)(void *priv, uint8_t slot, struct board_identity *out);

	/* Sign a fresh nonce with slot's key (ECDSA DER or CMAC). */
	imp_err (*challenge)(void *priv, uint8_t slot, const uint8_t nonce[WIRE_NONCE_LEN],
			     uint8_t *sig, size_t cap, size_t *sig_len);

	/* Lock the anchor (BOARD_LOCK_* bits). Optional. */
	imp_err (*lock)(void *priv, uint8_t what);

	/* Report lifecycle and lock state. */
	imp_err (*lock_state)(void *priv, struct board_anchor_lock_state *out);

	/*
	 * Optional: the identity the anchor itself reports (uid, lifecycle,
	 * fuses, slots, transport_pub; the version fields are 0), for anchors
	 * reached over another carrier than the agent, so that the station can
	 * check both reach the same secure element.
	 */
	imp_err (*identify)(void *priv, struct board_agent_info *out);
};

extern const struct board_anchor_driver *const board_anchor_drivers[];
extern const struct board_anchor_driver board_anchor_agent;
extern const struct board_anchor_driver board_anchor_pcsc;

const struct board_anchor_driver *board_anchor_driver_find(const char *name);

struct board_anchor;

/* Hands over *out: release with board_anchor_close(). */
imp_err board_anchor_open(const char *driver, const struct board_anchor_params *params,
			  struct board_anchor **out);
void board_anchor_close(struct board_anchor *a);

imp_err board_anchor_inject(struct board_anchor *a, const struct board_anchor_item *item,
			    uint8_t *out, size_t cap, size_t *out_len);
imp_err board_anchor_read_identity(struct board_anchor *a, uint8_t slot,
				   struct board_identity *out);
imp_err board_anchor_challenge(struct board_anchor *a, uint8_t slot,
			       const uint8_t nonce[WIRE_NONCE_LEN], uint8_t *sig, size_t cap,
			       size_t *sig_len);
imp_err board_anchor_lock(struct board_anchor *a, uint8_t what);
imp_err board_anchor_lock_state(struct board_anchor *a, struct board_anchor_lock_state *out);
/* The agent anchor's lock state from an identify answer (seen) its agent
 * gave just now, without asking again; any other anchor, or seen NULL:
 * board_anchor_lock_state(). */
imp_err board_anchor_lock_state_seen(struct board_anchor *a, const struct board_agent_info *seen,
				     struct board_anchor_lock_state *out);
/* The agent anchor's lock state in an identify answer. */
void board_anchor_agent_state(const struct board_agent_info *info,
			      struct board_anchor_lock_state *out);
imp_err board_anchor_identify(struct board_anchor *a, struct board_agent_info *out);

#endif
