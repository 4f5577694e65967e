/*
 * Commands of the provisioning agent (protocol version 1), carried in the
 * frames of board/frame.h. WIRE FORMAT: codes and layouts are frozen and
 * written up in docs/PROTOCOL.md. Integers are big-endian. "str" is a u16
 * length followed by that many bytes (UTF-8, no NUL). "blob" is the same for
 * binary data. "pub" is a 65-byte uncompressed P-256 point (0x04 || X || Y).
 *
 * Every response payload starts with a status byte (enum wire_agent_status);
 * the fields listed after "resp:" follow only when the status is OK.
 * The agent answers a repeated request (same seq as the last one it answered)
 * with its cached response, without acting again, so a retransmission after a
 * lost response is harmless.
 */
#ifndef WIRE_AGENT_PROTO_H
#define WIRE_AGENT_PROTO_H

#define WIRE_AGENT_PROTO_VERSION 1u /* persisted */
#define WIRE_UID_LEN 16u            /* persisted */
#define WIRE_PUB_LEN 65u            /* persisted */
#define WIRE_NONCE_LEN 32u          /* persisted */

enum wire_agent_cmd {
	/* req: -
	 * resp: uid[16] lifecycle:u8 proto_version:u8 agent_version:u16
	 *       fuses:u8 (bit0 debug-lock, bit1 boot-lock, as burned)
	 *       slots:u8 (bitmask of SE key slots holding a key)
	 *       transport_pub[65] */
	WIRE_CMD_IDENTIFY = 0x01,
	/* req: slot:u8 flags:u8 (bit0: if the slot already holds a key, return
	 *      its public key instead of failing)
	 * resp: pub[65] */
	WIRE_CMD_GENERATE_KEY = 0x02,
	/* req: slot:u8 subject:str (OpenSSL one-line form, "/O=Acme/CN=ABC-000001")
	 * resp: csr:blob (PKCS#10 DER, signed by the slot's key, ECDSA-SHA256) */
	WIRE_CMD_GET_CSR = 0x03,
	/* req: slot:u8 kind:u8 (enum wire_key_kind) alg:u8 (enum wire_wrap_alg)
	 *      station_pub[65] (ephemeral key of the station)
	 *      iv:blob (empty for KWP; 12 bytes for GCM)
	 *      wrapped:blob (KWP: the key wrapped with AES-256-KWP; GCM: ciphertext||tag[16])
	 *      The KEK is the 32-byte ECDH shared secret (x coordinate) of the
	 *      SE transport key and station_pub (PKCS#11 CKD_NULL).
	 *      EC keys are wrapped as PKCS#8 DER (trailing zero padding allowed);
	 *      PSKs as 32 raw bytes.
	 * resp: for EC: pub[65]; for PSK: kcv[8] = first 8 bytes of
	 *       AES-256-CMAC(psk, 16 zero bytes) */
	WIRE_CMD_IMPORT_WRAPPED_KEY = 0x04,
	/* req: slot:u8 cert:blob (X.509 DER)
	 * resp: - */
	WIRE_CMD_STORE_CERT = 0x05,
	/* req: serial:str identity:blob (opaque; imprint stores a JSON object)
	 * resp: - */
	WIRE_CMD_STORE_IDENTITY = 0x06,
	/* req: slot:u8 nonce[32]
	 * resp: sig:blob. EC slot: ECDSA-SHA256 over the nonce, DER.
	 *       PSK slot: AES-256-CMAC(psk, nonce), 16 bytes. */
	WIRE_CMD_SIGN_CHALLENGE = 0x07,
	/* req: slot:u8
	 * resp: serial:str identity:blob cert:blob pub:blob (65 bytes, or empty
	 *       when the slot holds a PSK or nothing) lifecycle:u8 */
	WIRE_CMD_READ_IDENTITY = 0x08,
	/* req: what:u8 (bit0: lock every SE slot; bit1: move lifecycle to
	 *      PERSONALISED)
	 * resp: - */
	WIRE_CMD_LOCK = 0x09,
	/* req: any bytes; resp: the same bytes (link tests and benchmarks) */
	WIRE_CMD_ECHO = 0x0A,
	/* req: the Matter factory-data record (wire/factory.h)
	 * resp: -. Replaces the board's factory-data area while the lifecycle
	 * is OPEN; the same record again is a no-op in every lifecycle but
	 * LOCKED (a retry); another one once PERSONALISED: STATE. */
	WIRE_CMD_STORE_FACTORY_DATA = 0x0B,
	/* req: -
	 * resp: record:blob (the stored record, wire/factory.h; empty when the
	 *       board holds none) */
	WIRE_CMD_READ_FACTORY_DATA = 0x0C,
};

enum wire_agent_status {
	WIRE_ST_OK = 0,
	WIRE_ST_UNKNOWN_CMD = 1,
	WIRE_ST_BAD_REQUEST = 2,  /* malformed payload */
	WIRE_ST_STATE = 3,        /* not allowed now (slot locked, board locked, ...) */
	WIRE_ST_CRYPTO = 4,       /* unwrap / ECDH / signature failed */
	WIRE_ST_NO_KEY = 5,       /* the slot holds no key */
	WIRE_ST_REFUSED = 6,      /* the board refused (fault injection, policy) */
	WIRE_ST_STORAGE = 7,      /* secure storage full or write failed */
	WIRE_ST_EXISTS = 8,       /* the slot already holds a key */
};

enum wire_lifecycle {
	WIRE_LC_OPEN = 1,         /* persisted */
	WIRE_LC_PERSONALISED = 2, /* persisted */
	WIRE_LC_LOCKED = 3,       /* persisted */
};

enum wire_key_kind {
	WIRE_KEY_EC_P256 = 1,     /* persisted */
	WIRE_KEY_PSK = 2,         /* persisted */
};

enum wire_wrap_alg {
	WIRE_WRAP_AES_KWP = 1,    /* persisted: RFC 5649 */
	WIRE_WRAP_AES_GCM = 2,    /* persisted */
};

#define WIRE_FUSE_DEBUG_LOCK 0x1u /* persisted */
#define WIRE_FUSE_BOOT_LOCK 0x2u  /* persisted */

#endif
