/*
 * Typed client of the provisioning agent (board/agent_proto.h), over a link
 * (board/link.h). One function per command. Every response payload is
 * parsed defensively: each length is checked against what remains, trailing
 * bytes are an error, and a status byte other than WIRE_ST_OK becomes
 * IMP_ERR_BOARD with the status name in the log (board_agent_status_name).
 *
 * Errors common to every function: the link's (IMP_ERR_TIMEOUT,
 * IMP_ERR_PROTOCOL, IMP_ERR_LINK), IMP_ERR_PROTOCOL for a malformed response
 * payload, IMP_ERR_BOARD when the agent refused (*last_status, if asked
 * for with board_agent_last_status, tells which), IMP_ERR_USAGE for
 * arguments that cannot be encoded (too long for one frame).
 */
#ifndef BOARD_AGENT_H
#define BOARD_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire/agent_proto.h"
#include "wire/factory.h"
#include "board/link.h"
#include "imprint/err.h"

/* Per-command timeouts, ms per attempt (generous for 921600 baud and the
 * vboard's realistic latency model: SE keygen ~115 ms, a 4 KiB frame ~45 ms
 * each way). board_link_set_timeout_scale() scales them all. */
#define BOARD_AGENT_TIMEOUT_FAST_MS 500u     /* identify, echo, lock, read */
#define BOARD_AGENT_TIMEOUT_STORE_MS 1500u   /* store_cert, store_identity */
#define BOARD_AGENT_TIMEOUT_CRYPTO_MS 2000u  /* generate_key, get_csr, import, sign */

/* Response of IDENTIFY. */
struct board_agent_info {
	uint8_t uid[WIRE_UID_LEN];
	uint8_t lifecycle;          /* enum wire_lifecycle */
	uint8_t proto_version;
	uint16_t agent_version;
	uint8_t fuses;              /* BOARD_FUSE_* burned */
	uint8_t slots;              /* bitmask of SE slots holding a key */
	uint8_t transport_pub[WIRE_PUB_LEN];
};

/* Response of READ_IDENTITY. Owns its buffers: board_identity_release(). */
struct board_identity {
	char *serial;               /* NUL-terminated; "" when none */
	uint8_t *identity;          /* may be NULL when identity_len is 0 */
	size_t identity_len;
	uint8_t *cert;              /* DER; may be NULL when cert_len is 0 */
	size_t cert_len;
	uint8_t pub[WIRE_PUB_LEN];
	bool has_pub;               /* false: PSK slot or empty slot */
	uint8_t lifecycle;
};

/* Request of IMPORT_WRAPPED_KEY. */
struct board_wrapped_key {
	uint8_t slot;
	uint8_t kind;               /* enum wire_key_kind */
	uint8_t alg;                /* enum wire_wrap_alg */
	uint8_t station_pub[WIRE_PUB_LEN];
	const uint8_t *iv;          /* 12 bytes for GCM, none (0) for KWP */
	size_t iv_len;
	const uint8_t *wrapped;
	size_t wrapped_len;
};

#define BOARD_KCV_LEN 8u
#define BOARD_SIG_MAX 80u           /* DER ECDSA P-256 <= 72; CMAC 16 */

/* "OK", "STATE", ...; "UNKNOWN" for numbers not in the enum. */
const char *board_agent_status_name(unsigned status);
/* "IDENTIFY", "ECHO", ...; "0xNN" style "UNKNOWN" for other codes. */
const char *board_agent_cmd_name(unsigned cmd);
/* "open", "personalised", "locked", or "unknown". */
const char *board_lifecycle_name(unsigned lc);

/* Status byte of the last response on this thread (WIRE_ST_OK, ...),
 * or -1 when the last call failed before a status was read. */
int board_agent_last_status(void);

imp_err board_agent_identify(struct board_link *l, struct board_agent_info *out);

/* reuse: if the slot already holds a key return its public key. */
imp_err board_agent_generate_key(struct board_link *l, uint8_t slot, bool reuse,
				 uint8_t pub[WIRE_PUB_LEN]);

/* Hands over *csr (malloc'ed DER, *csr_len bytes): the caller frees it. */
imp_err board_agent_get_csr(struct board_link *l, uint8_t slot, const char *subject,
			    uint8_t **csr, size_t *csr_len);

/*
 * For EC keys out receives pub[65], for PSKs the kcv[8]; *out_len says
 * which. cap must be at least WIRE_PUB_LEN.
 */
imp_err board_agent_import_wrapped_key(struct board_link *l, const struct board_wrapped_key *k,
				       uint8_t *out, size_t cap, size_t *out_len);

imp_err board_agent_store_cert(struct board_link *l, uint8_t slot, const uint8_t *der,
			       size_t der_len);

imp_err board_agent_store_identity(struct board_link *l, const char *serial,
				   const uint8_t *identity, size_t identity_len);

/* sig receives at most cap bytes (BOARD_SIG_MAX is always enough). */
imp_err board_agent_sign_challenge(struct board_link *l, uint8_t slot,
				   const uint8_t nonce[WIRE_NONCE_LEN], uint8_t *sig, size_t cap,
				   size_t *sig_len);

/* On success *out owns buffers: release with board_identity_release(). */
imp_err board_agent_read_identity(struct board_link *l, uint8_t slot, struct board_identity *out);
void board_identity_release(struct board_identity *id);

/* what: bit0 lock every SE slot, bit1 lifecycle -> PERSONALISED. */
#define BOARD_LOCK_SLOTS 0x1u
#define BOARD_LOCK_PERSONALISE 0x2u
imp_err board_agent_lock(struct board_link *l, uint8_t what);

/*
 * Store the Matter factory-data record (wire/factory.h) in the board's
 * factory-data area. IMP_ERR_USAGE (logged) for a field out of bounds,
 * before anything is sent; IMP_ERR_BOARD with STATE once the board is
 * personalised with another record, or locked.
 */
imp_err board_agent_store_factory_data(struct board_link *l, const struct wire_factory *f);

/*
 * The board's factory-data record as stored (encoded, wire/factory.h):
 * *rec malloc'ed (*rec_len bytes; the caller frees it), or NULL and 0 when
 * the board holds none.
 */
imp_err board_agent_read_factory_data(struct board_link *l, uint8_t **rec, size_t *rec_len);

/* The echoed bytes must equal data; a mismatch is IMP_ERR_PROTOCOL. */
imp_err board_agent_echo(struct board_link *l, const uint8_t *data, size_t n);

#endif
