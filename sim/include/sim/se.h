/*
 * The virtual board's secure element: P-256 and PSK key slots, a transport
 * key pair for wrapped key import, and the store for certificates, serial
 * number and identity blob. The agent (sim/agent.c) is its only user on the
 * vboard; tests drive it directly.
 *
 * Every function that acts returns a status of enum wire_agent_status
 * (board/agent_proto.h), the byte the agent puts first in its response.
 * Storage writes go through sim_nv_write_point() (power-cut model) and are
 * atomic (temp + rename) files under opts->dir; see docs/VBOARD.md.
 */
#ifndef SIM_SE_H
#define SIM_SE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imprint/err.h"

#define SIM_SE_SLOTS 4

/* Latency model at scale 1.0, in milliseconds (--print-model). */
#define SIM_LAT_SE_KEYGEN_MS 115.0
#define SIM_LAT_SE_SIGN_MS 115.0
#define SIM_LAT_SE_ECDH_MS 60.0

struct sim_se;

struct sim_se_opts {
	const char *dir;          /* persistent storage directory, NULL: RAM only */
	const char *backdoor_dir; /* test only: write private keys here; NULL: never */
	double latency_scale;
};

/*
 * Create the SE, or re-open the one stored in opts->dir (the transport key
 * is generated and persisted on first use). Returns NULL on failure (logged).
 * Free with sim_se_free().
 */
struct sim_se *sim_se_new(const struct sim_se_opts *opts);

/* Sum of the delays the latency model charged this SE, in ns. */
uint64_t sim_se_modelled_ns(const struct sim_se *se);
void sim_se_free(struct sim_se *se);

/* 65-byte uncompressed transport public key. */
void sim_se_transport_pub(const struct sim_se *se, uint8_t pub[65]);
/* Bit k set when slot k holds a key. */
uint8_t sim_se_slot_mask(const struct sim_se *se);
/* 0 empty, else enum wire_key_kind; -1 for a bad slot number. */
int sim_se_slot_kind(const struct sim_se *se, unsigned slot);
bool sim_se_slots_locked(const struct sim_se *se);

/* GENERATE_KEY. pub receives 65 bytes. */
int sim_se_generate(struct sim_se *se, unsigned slot, bool return_existing, uint8_t pub[65]);

/* GET_CSR. subject in the "/O=Acme/CN=X" form. *der is malloc'ed, caller frees. */
int sim_se_csr(struct sim_se *se, unsigned slot, const char *subject, uint8_t **der, size_t *der_len);

/*
 * IMPORT_WRAPPED_KEY. out receives pub[65] (EC) or kcv[8] (PSK); out must
 * hold 65 bytes; *out_len is set.
 */
int sim_se_import(struct sim_se *se, unsigned slot, unsigned kind, unsigned alg,
		  const uint8_t station_pub[65], const uint8_t *iv, size_t iv_len,
		  const uint8_t *wrapped, size_t wrapped_len, uint8_t *out, size_t *out_len);

int sim_se_store_cert(struct sim_se *se, unsigned slot, const uint8_t *der, size_t len);
int sim_se_store_identity(struct sim_se *se, const uint8_t *serial, size_t serial_len,
			  const uint8_t *blob, size_t blob_len);

/*
 * SIGN_CHALLENGE over nonce[32]. sig must hold 80 bytes. With wrong_key the
 * signature is made with a throwaway key (EC) or a flipped MAC (PSK).
 */
int sim_se_sign(struct sim_se *se, unsigned slot, const uint8_t nonce[32], bool wrong_key,
		uint8_t *sig, size_t *sig_len);

/* Slot public key (65 bytes) when the slot holds an EC key, else false. */
bool sim_se_slot_pub(const struct sim_se *se, unsigned slot, uint8_t pub[65]);

/* Stored items; pointers stay valid until the next store. Length 0 if none. */
const uint8_t *sim_se_serial(const struct sim_se *se, size_t *len);
const uint8_t *sim_se_identity(const struct sim_se *se, size_t *len);
const uint8_t *sim_se_cert(const struct sim_se *se, unsigned slot, size_t *len);

/* ECDH of the transport key with peer_pub (the PC/SC applet's session keys). */
int sim_se_transport_ecdh(struct sim_se *se, const uint8_t peer_pub[65], uint8_t z[32]);

/* LOCK bit0: refuse every later key or certificate write to any slot. */
int sim_se_lock_slots(struct sim_se *se);

/* AES-256-CMAC helper (also used by tests): mac receives 16 bytes. */
imp_err sim_cmac_aes256(const uint8_t key[32], const uint8_t *msg, size_t n, uint8_t mac[16]);

#endif
