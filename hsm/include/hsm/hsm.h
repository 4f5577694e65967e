/*
 * hsm: the one place in imprint that talks PKCS#11.
 *
 * Objects
 *   struct hsm          a loaded, initialised PKCS#11 module, one token on it
 *                       (chosen by RFC 7512 URI or label) and the user login.
 *                       Opened once per process (or per station command) and
 *                       shared read-only by every thread.
 *   struct hsm_session  one PKCS#11 session on that token. NOT thread-safe:
 *                       each thread (each fixture worker) opens its own.
 *   hsm_obj             an object handle (CK_OBJECT_HANDLE), valid in every
 *                       session of the same struct hsm; HSM_OBJ_NONE is never
 *                       a valid handle.
 *
 * Errors
 *   Every function returns IMP_OK or an imp_err. A failing C_* call has
 *   already been logged as "C_Xxx failed: CKR_NAME (0x..)" and mapped:
 *   wrong PIN -> IMP_ERR_PIN, locked PIN -> IMP_ERR_PIN_LOCKED, mechanism
 *   not offered -> IMP_ERR_UNSUPPORTED, bad signature -> IMP_ERR_VERIFY,
 *   no memory -> IMP_ERR_NOMEM, token or slot gone -> IMP_ERR_NOT_FOUND,
 *   anything else -> IMP_ERR_HSM. Output parameters are only valid on IMP_OK.
 *
 * Module loading
 *   `module` arguments are either a path (anything containing a '/') to a
 *   PKCS#11 library, or the name of any module registered with p11-kit
 *   ("softhsm2", "opensc-pkcs11", a NAME.module of the station's own). A
 *   name is resolved by reading p11-kit's registration files and only that
 *   one module is loaded (never every registered module: one broken module
 *   elsewhere on the station cannot block imprint). C_Initialize (with
 *   CKF_OS_LOCKING_OK, and pReserved = the module's init arguments if any)
 *   is called once per process and module; C_Finalize when the last struct
 *   hsm on that module is closed.
 *
 * Secrets
 *   PINs are read from an environment variable, a file (mode 0600 or
 *   stricter) or the TTY, never from the command line; they are wiped right
 *   after C_Login / C_InitToken / C_InitPIN and never logged.
 */
#ifndef HSM_HSM_H
#define HSM_HSM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "imprint/err.h"

struct hsm;
struct hsm_session;

typedef unsigned long hsm_obj;
#define HSM_OBJ_NONE ((hsm_obj)0)

#define HSM_EC_POINT_LEN 65u  /* P-256 uncompressed point 04||X||Y */
#define HSM_ECDSA_RAW_LEN 64u /* r||s, same as FMT_ECDSA_RAW_LEN */
#define HSM_AES256_LEN 32u
#define HSM_CMAC_LEN 16u
#define HSM_GCM_IV_LEN 12u
#define HSM_GCM_TAG_LEN 16u
#define HSM_PSK_DIVERSIFIER_LEN 32u
#define HSM_PIN_MAX 256u      /* longest PIN accepted, without the NUL */
#define HSM_LABEL_MAX 64u     /* longest object label kept, without the NUL */
#define HSM_ID_MAX 64u        /* longest CKA_ID kept */

/* ------------------------------------------------------------------ PINs */

enum hsm_pin_kind {
	HSM_PIN_ENV = 1,    /* name: environment variable holding the PIN */
	HSM_PIN_FILE = 2,   /* name: path of a regular file, mode 0600 or stricter;
			     * one trailing newline is stripped */
	HSM_PIN_PROMPT = 3, /* name: prompt text, read on /dev/tty without echo */
	HSM_PIN_BUFFER = 4, /* buf/len: PIN in memory (the embedded default reads
			     * its pins file into one); borrowed, the caller
			     * wipes it */
};

struct hsm_pin_source {
	enum hsm_pin_kind kind;
	const char *name;  /* ENV, FILE, PROMPT */
	const char *buf;   /* BUFFER */
	size_t len;        /* BUFFER */
};

/*
 * Read the PIN into pin (capacity cap, NUL-terminated, *len without the NUL).
 * The caller wipes pin with imp_wipe() as soon as it is used.
 * IMP_ERR_PIN: variable unset, file missing or not readable by this user,
 * empty PIN, no TTY, too long; IMP_ERR_INSECURE: the file is a symbolic
 * link, not a regular file, or group/world accessible; IMP_ERR_IO: another
 * failure to open or read the file. Never IMP_ERR_NOT_FOUND: that is a
 * module's or token's.
 */
imp_err hsm_pin_read(const struct hsm_pin_source *src, char *pin, size_t cap,
		     size_t *len);

/* "environment variable X", "file X", "prompt", "embedded pins file": for
 * messages; never contains the PIN. Returns a static or src-owned string. */
const char *hsm_pin_source_describe(const struct hsm_pin_source *src);

/* ------------------------------------------------------- tokens, module */

/*
 * A module as configured. init_args, if not NULL, is passed to C_Initialize
 * as CK_C_INITIALIZE_ARGS.pReserved (what NSS softoken reads its database
 * parameters from: "configdir='sql:DIR' certPrefix='' keyPrefix=''
 * secmod='secmod.db' flags=..."); NULL: the x-init-reserved of the module's
 * p11-kit registration if it has one, else none.
 */
struct hsm_module {
	const char *name;      /* path or p11-kit module name */
	const char *init_args;
};

/* Names of the modules registered with p11-kit (sorted, no duplicates);
 * *names malloc'ed: hsm_module_names_free(). Nothing is loaded. */
imp_err hsm_module_names(char ***names, size_t *n);
void hsm_module_names_free(char **names, size_t n);

/*
 * Describe one module for `imprint hsm tokens`: *report is a new JSON object
 *   {"module": NAME, "library": {"manufacturer","description","version"},
 *    "uri": "pkcs11:library-...", "slots": [{"id", "description",
 *    "manufacturer", "uri", "token": null | {"label","manufacturer",
 *    "model","serial","initialized","user_pin_initialized","uri"}}]}
 * where every uri is RFC 7512 (module, slot, token). On failure *report
 * still says {"module": NAME, "error": "IMP_ERR_..."} and the error is
 * returned (and was logged).
 */
imp_err hsm_module_report(const struct hsm_module *m, json_t **report);

struct hsm_token_info {
	unsigned long slot_id;   /* random on SoftHSM: never persist it */
	char label[33];          /* blank padding removed */
	char manufacturer[33];
	char model[17];
	char serial[17];
	unsigned long flags;     /* CKF_* token flags, raw */
	bool initialized;        /* CKF_TOKEN_INITIALIZED */
	bool user_pin_initialized;
	bool user_pin_locked;    /* CKF_USER_PIN_LOCKED */
	bool so_pin_locked;
};

/*
 * List the tokens present on a module. *out is malloc'ed (the caller frees
 * it with free()), *n entries; uninitialised tokens (SoftHSM's free slot)
 * are included with initialized false.
 */
imp_err hsm_token_list(const char *module, struct hsm_token_info **out, size_t *n);

/*
 * Initialise the token in `slot` (C_InitToken with the SO PIN, then log in
 * as SO and C_InitPIN the user PIN). Destroys everything on that token.
 * SoftHSM moves an initialised token to a new random slot id: *new_slot
 * (may be NULL) receives it. Both PINs are wiped after use.
 */
imp_err hsm_token_init(const char *module, unsigned long slot, const char *label,
		       const struct hsm_pin_source *so_pin,
		       const struct hsm_pin_source *user_pin,
		       unsigned long *new_slot);

/* -------------------------------------------------------- open / close */

/*
 * Load `module`, find the one token matching `token` (an RFC 7512 URI
 * "pkcs11:token=imprint;serial=..." or a plain token label), open a session
 * and log in as CKU_USER with the PIN from `pin` (wiped after use). That
 * first session is kept open for the life of the struct hsm, so that the
 * login stays valid for every session opened later.
 * IMP_ERR_NOT_FOUND: no such module / token; IMP_ERR_CONFIG: several tokens
 * match; IMP_ERR_PIN / IMP_ERR_PIN_LOCKED: login refused (already logged).
 * PKCS#11 shares one login per process and token: while another struct
 * hsm on the same token is open, C_Login answers "already logged in" and
 * the PIN is not checked again.
 * On success *out is owned by the caller: hsm_close() it.
 */
imp_err hsm_open(const char *module, const char *token,
		 const struct hsm_pin_source *pin, struct hsm **out);

/* The same with init arguments for the module (struct hsm_module). */
imp_err hsm_open_module(const struct hsm_module *m, const char *token,
			const struct hsm_pin_source *pin, struct hsm **out);

/* Close every resource of h (sessions opened from h must be closed first),
 * C_Finalize if it was the last user of its module. NULL is a no-op. */
void hsm_close(struct hsm *h);

/* Token info of the opened token (fresh C_GetTokenInfo). */
imp_err hsm_info(struct hsm *h, struct hsm_token_info *out);

/* True if the token offers mechanism `mech` (CKM_*) with all the CKF_*
 * bits in `flags` (e.g. CKF_WRAP); cached at hsm_open. */
bool hsm_has_mechanism(const struct hsm *h, unsigned long mech, unsigned long flags);

/* ------------------------------------------------------- key modes */

/*
 * What the token must offer for each of imprint's key modes (docs/HSM.md,
 * docs/PROVISIONING.md). Every mode needs the organisation hierarchy:
 *   all     CKM_EC_KEY_PAIR_GEN (generate key pair, 256-bit keys),
 *           CKM_ECDSA (sign), an RNG (CKF_RNG: C_GenerateRandom for the
 *           challenge nonces), a writable token (C_CreateObject of the
 *           certificates)
 *   hsm     + CKM_ECDH1_DERIVE (derive), RFC 5649 key wrap: CKM_AES_KEY_WRAP_KWP
 *           or else CKM_AES_KEY_WRAP_PAD (wrap, 32-byte keys), and session EC private keys that are sensitive AND
 *           extractable (the device key leaves the HSM only wrapped):
 *           probed by generating one
 *   psk     + CKM_ECDH1_DERIVE and the key wrap as for hsm,
 *           CKM_AES_KEY_GEN (generate, 32-byte keys: the PSK master),
 *           CKM_AES_ECB_ENCRYPT_DATA (derive), CKM_AES_CMAC (sign), and
 *           sensitive extractable AES session keys: probed
 * A mechanism offered only with other flags (CKM_AES_GCM without CKF_WRAP)
 * or key sizes outside what the token reports counts as missing.
 */
enum hsm_mode {
	HSM_MODE_DEVICE = 1u << 0,
	HSM_MODE_HSM = 1u << 1,
	HSM_MODE_PSK = 1u << 2,
};
#define HSM_MODES_ALL (HSM_MODE_DEVICE | HSM_MODE_HSM | HSM_MODE_PSK)

/* "device", "hsm", "psk". */
const char *hsm_mode_name(enum hsm_mode mode);

/*
 * Which modes h's token can do (bits of enum hsm_mode); runs the probes of
 * the modes whose mechanisms are offered, once per struct hsm. If missing
 * is not NULL, missing[i] (cap bytes each, for i = 0 device, 1 hsm, 2 psk)
 * receives "" or what that mode lacks ("CKM_ECDH1_DERIVE (derive), ...").
 */
unsigned hsm_modes(struct hsm *h, char missing[3][512]);

/*
 * Refuse a mode the token cannot do: IMP_ERR_UNSUPPORTED (exit 24) after
 * logging which mode, what is missing and which modes would work. Called
 * at open by every command that provisions, before any board is touched.
 */
imp_err hsm_mode_check(struct hsm *h, enum hsm_mode mode);

/*
 * Open a read-write session on h's token (already logged in through h).
 * One per thread; *out owned by the caller: hsm_session_close() it, in the
 * same thread. Closing a session destroys its session objects.
 */
imp_err hsm_session_open(struct hsm *h, struct hsm_session **out);
void hsm_session_close(struct hsm_session *s);

/* ------------------------------------------------------------- keys */

enum hsm_key_flag {
	HSM_KEY_TOKEN = 1u << 0,     /* token object (persistent); default:
				      * session object, gone with the session */
	HSM_KEY_WRAPPABLE = 1u << 1, /* CKA_EXTRACTABLE true (still sensitive:
				      * can leave the HSM only wrapped). Used for
				      * `hsm`-mode device keys. Default false. */
	HSM_KEY_SIGN = 1u << 2,      /* CKA_SIGN (EC: ECDSA; AES: CMAC) */
	HSM_KEY_DERIVE = 1u << 3,    /* CKA_DERIVE (EC: ECDH; AES: PSK derive) */
	HSM_KEY_WRAP = 1u << 4,      /* AES: CKA_WRAP and CKA_UNWRAP */
	HSM_KEY_ENCRYPT = 1u << 5,   /* AES: CKA_ENCRYPT and CKA_DECRYPT */
};

/* Attributes of a new key. label and id may be NULL / 0. All keys are
 * CKA_PRIVATE and CKA_SENSITIVE; extractable only with HSM_KEY_WRAPPABLE. */
struct hsm_key_opts {
	unsigned flags;          /* enum hsm_key_flag bits */
	const char *label;       /* CKA_LABEL, on both halves of a pair */
	const uint8_t *id;       /* CKA_ID, on both halves of a pair */
	size_t id_len;
};

/* Generate an EC P-256 key pair. *pub and *priv receive the handles (the
 * public key carries CKA_EC_POINT; the templates state only what imprint
 * needs: docs/HSM.md). */
imp_err hsm_ec_keygen(struct hsm_session *s, const struct hsm_key_opts *o,
		      hsm_obj *pub, hsm_obj *priv);

/*
 * Uncompressed P-256 point of `key` (a public key, or a private key whose
 * public half has the same CKA_ID, or a private key that carries
 * CKA_EC_POINT).
 */
imp_err hsm_ec_point(struct hsm_session *s, hsm_obj key,
		     uint8_t point[HSM_EC_POINT_LEN]);

/* The same as an OpenSSL key; *out owned by the caller (EVP_PKEY_free). */
imp_err hsm_ec_pkey(struct hsm_session *s, hsm_obj key, EVP_PKEY **out);

/* Generate an AES-256 secret key (e.g. the PSK master: HSM_KEY_TOKEN |
 * HSM_KEY_DERIVE, never extractable). */
imp_err hsm_aes_keygen(struct hsm_session *s, const struct hsm_key_opts *o,
		       hsm_obj *key);

/* ------------------------------------------------------------ signing */

/*
 * ECDSA P-256 over a SHA-256 digest computed by the caller: C_Sign with
 * CKM_ECDSA, raw r||s. No allocation: this is the hot path.
 */
imp_err hsm_sign_digest(struct hsm_session *s, hsm_obj priv,
			const uint8_t digest[32], uint8_t raw[HSM_ECDSA_RAW_LEN]);

/* SHA-256 of data on the host, then hsm_sign_digest (SoftHSM 2.6.1 has no
 * CKM_ECDSA_SHA256). */
imp_err hsm_sign_sha256(struct hsm_session *s, hsm_obj priv, const void *data,
			size_t n, uint8_t raw[HSM_ECDSA_RAW_LEN]);

/* Same, DER SEQUENCE{r,s} into der (cap >= FMT_ECDSA_DER_MAX). */
imp_err hsm_sign_sha256_der(struct hsm_session *s, hsm_obj priv,
			    const void *data, size_t n, uint8_t *der, size_t cap,
			    size_t *der_len);

/* ---------------------------------------------------- derive, wrap, MAC */

/*
 * ECDH (CKM_ECDH1_DERIVE, CKD_NULL: the only KDF SoftHSM offers) of `priv`
 * with the peer's uncompressed point. The result is an AES-256 session key
 * whose value is the raw shared X coordinate (32 bytes; no KDF), usable for
 * wrap/unwrap and encrypt/decrypt; sensitive, not extractable unless
 * HSM_KEY_WRAPPABLE is in flags. The peer must use the same raw secret.
 */
imp_err hsm_ecdh_derive_aes(struct hsm_session *s, hsm_obj priv,
			    const uint8_t peer[HSM_EC_POINT_LEN], unsigned flags,
			    hsm_obj *aes);

/*
 * Diversify a per-device PSK inside the HSM: PSK = AES-256-ECB(master,
 * diversifier) (CKM_AES_ECB_ENCRYPT_DATA), kept as an AES-256 session key
 * with CKA_SIGN (CMAC) so it never exists in clear on the host. `flags`
 * may add HSM_KEY_WRAPPABLE (to wrap it to the board) and HSM_KEY_WRAP /
 * HSM_KEY_ENCRYPT.
 */
imp_err hsm_psk_derive(struct hsm_session *s, hsm_obj master,
		       const uint8_t diversifier[HSM_PSK_DIVERSIFIER_LEN],
		       unsigned flags, hsm_obj *psk);

/* AES-CMAC (CKM_AES_CMAC, full 16-byte tag) of data with `key`. */
imp_err hsm_cmac(struct hsm_session *s, hsm_obj key, const void *data, size_t n,
		 uint8_t mac[HSM_CMAC_LEN]);

enum hsm_wrap_mech {
	/*
	 * RFC 5649 AES key wrap with padding: CKM_AES_KEY_WRAP_KWP where the
	 * token offers it (NSS softoken's CKM_AES_KEY_WRAP_PAD is another
	 * scheme), else CKM_AES_KEY_WRAP_PAD (SoftHSM's RFC 5649). SoftHSM
	 * 2.6.1 first zero-pads the key bytes to a multiple of 8 and wraps
	 * that, so the unwrapped length is rounded up: a P-256 private key is
	 * wrapped as its PKCS#8 DER (138 bytes -> 144 with 6 zero bytes); the
	 * receiver must take the DER length from the DER header.
	 */
	HSM_WRAP_AES_KWP = 1,
	/* AES-GCM wrap (CKM_AES_GCM with CKF_WRAP): ciphertext||tag, 12-byte IV.
	 * SoftHSM 2.6.1 offers GCM for encrypt only: IMP_ERR_UNSUPPORTED. */
	HSM_WRAP_AES_GCM = 2,
};

/*
 * Wrap `key` (an EC private key -> PKCS#8 DER, or a secret key -> its value)
 * under the AES key `kek`. iv: HSM_GCM_IV_LEN bytes for GCM (NULL for KWP);
 * aad may be NULL. out has capacity *out_len; on success *out_len is the
 * wrapped length. With out NULL, *out_len receives the length needed.
 * The key must be CKA_EXTRACTABLE (HSM_KEY_WRAPPABLE).
 */
imp_err hsm_wrap(struct hsm_session *s, enum hsm_wrap_mech mech, hsm_obj kek,
		 hsm_obj key, const uint8_t *iv, const uint8_t *aad,
		 size_t aad_len, uint8_t *out, size_t *out_len);

/*
 * AES-GCM encryption with `key` (CKA_ENCRYPT): out receives ciphertext||tag,
 * n + HSM_GCM_TAG_LEN bytes. The IV must never repeat under one key.
 * IMP_ERR_UNSUPPORTED if the token has no CKM_AES_GCM.
 */
imp_err hsm_gcm_encrypt(struct hsm_session *s, hsm_obj key,
			const uint8_t iv[HSM_GCM_IV_LEN], const uint8_t *aad,
			size_t aad_len, const void *in, size_t n, uint8_t *out);

/* n bytes from the token's RNG (C_GenerateRandom). */
imp_err hsm_random(struct hsm_session *s, void *buf, size_t n);

/*
 * AES-GCM decryption with `key` (CKA_DECRYPT) of in = ciphertext||tag (n
 * bytes, at most HSM_SEAL_MAX + HSM_GCM_TAG_LEN); out receives
 * n - HSM_GCM_TAG_LEN bytes. IMP_ERR_VERIFY if the
 * tag does not verify (wrong key, IV, AAD or a changed ciphertext);
 * IMP_ERR_UNSUPPORTED if the token has no CKM_AES_GCM.
 */
imp_err hsm_gcm_decrypt(struct hsm_session *s, hsm_obj key,
			const uint8_t iv[HSM_GCM_IV_LEN], const uint8_t *aad,
			size_t aad_len, const uint8_t *in, size_t n, uint8_t *out);

/* ------------------------------------------------------------ sealing */

/*
 * Small secrets the station must keep but never hold in clear at rest (a
 * Matter setup passcode for its label, docs/MATTER.md) are sealed under an
 * AES-256 token key that never leaves the HSM: IV[12] || AES-GCM
 * ciphertext || tag[16], the IV from the token's RNG, `aad` binding the
 * sealed value to its owner (a board's UID and serial).
 */
#define HSM_SEAL_OVERHEAD (HSM_GCM_IV_LEN + HSM_GCM_TAG_LEN)
#define HSM_SEAL_MAX 256u /* longest plaintext hsm_gcm_decrypt and hsm_unseal take */

/* The sealing key labelled `label` (a token secret key, CKA_ENCRYPT and
 * CKA_DECRYPT, sensitive, never extractable); with create, generated
 * when the token has none (IMP_ERR_NOT_FOUND otherwise). */
imp_err hsm_seal_key(struct hsm_session *s, const char *label, bool create, hsm_obj *out);

/* out receives n + HSM_SEAL_OVERHEAD bytes. */
imp_err hsm_seal(struct hsm_session *s, hsm_obj key, const uint8_t *aad, size_t aad_len,
		 const void *in, size_t n, uint8_t *out);

/* out receives n - HSM_SEAL_OVERHEAD bytes; IMP_ERR_VERIFY when in was
 * not sealed under key with this aad. The caller wipes out after use. */
imp_err hsm_unseal(struct hsm_session *s, hsm_obj key, const uint8_t *aad, size_t aad_len,
		   const uint8_t *in, size_t n, uint8_t *out);

/* ------------------------------------------------------------ objects */

enum hsm_class {
	HSM_CLASS_ANY = 0,
	HSM_CLASS_PRIVATE_KEY,
	HSM_CLASS_PUBLIC_KEY,
	HSM_CLASS_SECRET_KEY,
	HSM_CLASS_CERTIFICATE,
	HSM_CLASS_DATA,
	HSM_CLASS_OTHER,        /* reported only */
};

/* Name for messages: "private", "public", "secret-key", "cert", "data". */
const char *hsm_class_name(enum hsm_class c);

struct hsm_obj_info {
	hsm_obj handle;
	enum hsm_class cls;
	unsigned long key_type;          /* CKK_* (keys), ~0UL otherwise */
	char label[HSM_LABEL_MAX + 1];   /* truncated if longer */
	uint8_t id[HSM_ID_MAX];
	size_t id_len;
	bool token, private_, modifiable;
	/* keys only; false on other objects */
	bool sensitive, extractable, always_sensitive, never_extractable;
	bool sign, verify, derive, wrap, unwrap, encrypt, decrypt;
};

/* Read the attributes of one object. */
imp_err hsm_object_info(struct hsm_session *s, hsm_obj o, struct hsm_obj_info *out);

/*
 * Find exactly one object of class `cls` (HSM_CLASS_ANY: any) with the
 * given label (NULL: any) and id (NULL: any). IMP_ERR_NOT_FOUND if none,
 * IMP_ERR_CONFIG if several match (message says to give an id).
 */
imp_err hsm_find(struct hsm_session *s, enum hsm_class cls, const char *label,
		 const uint8_t *id, size_t id_len, hsm_obj *out);

/*
 * The same with an RFC 7512 URI ("pkcs11:object=device-ca;type=private",
 * id=%01%02, token=...). Token attributes in the URI must match the open
 * token (IMP_ERR_NOT_FOUND otherwise); IMP_ERR_USAGE if it does not parse.
 */
imp_err hsm_find_uri(struct hsm_session *s, const char *uri, hsm_obj *out);

/* All objects of class cls (HSM_CLASS_ANY: all) visible to the session.
 * *out malloc'ed, freed by the caller with free(); *n entries. */
imp_err hsm_list(struct hsm_session *s, enum hsm_class cls,
		 struct hsm_obj_info **out, size_t *n);

/* C_DestroyObject. */
imp_err hsm_destroy(struct hsm_session *s, hsm_obj o);

/*
 * A session copy of the token key `key` (a private or secret key):
 * C_CopyObject with CKA_TOKEN false, every other attribute kept, so a
 * sensitive, non-extractable key stays one (a copy may only raise
 * CKA_SENSITIVE and lower CKA_EXTRACTABLE; the copy's attributes are read
 * back and a weaker copy is destroyed). It is used exactly as the token
 * object and spares the token's object store at every use (SoftHSM2
 * re-reads a token object's file at each C_SignInit). The copy lives until
 * hsm_destroy() or until session s closes; its handle is valid in every
 * session of s's struct hsm. IMP_ERR_UNSUPPORTED (logged at debug level)
 * when the token does not copy it (no C_CopyObject, CKA_COPYABLE false,
 * tpm2-pkcs11): the caller goes on with the token object.
 */
imp_err hsm_key_session_copy(struct hsm_session *s, hsm_obj key, hsm_obj *copy);

/*
 * Store an X.509 certificate (DER) as a token object: CKO_CERTIFICATE,
 * CKC_X_509, CKA_VALUE, CKA_SUBJECT / CKA_ISSUER / CKA_SERIAL_NUMBER taken
 * from the certificate, CKA_LABEL, CKA_ID. IMP_ERR_CRYPTO if der is not a
 * certificate.
 */
imp_err hsm_cert_store(struct hsm_session *s, const uint8_t *der, size_t n,
		       const char *label, const uint8_t *id, size_t id_len,
		       hsm_obj *out);

/* CKA_VALUE of a certificate or data object: *der malloc'ed, the caller
 * frees it; IMP_ERR_HSM for a sensitive key. */
imp_err hsm_object_value(struct hsm_session *s, hsm_obj o, uint8_t **der,
			 size_t *n);

/* ------------------------------------------------- embedded default */

/*
 * The embedded default: a SoftHSM2 token labelled "imprint" under the
 * station data directory DATA:
 *   DATA/hsm/softhsm2.conf   tokendir DATA/hsm/tokens, file backend
 *   DATA/hsm/tokens/         mode 0700
 *   DATA/hsm/pins            mode 0600; exactly two lines, persisted format:
 *                              "so=<64 lowercase hex>\nuser=<64 lowercase hex>\n"
 * SOFTHSM2_CONF is set (setenv) to DATA/hsm/softhsm2.conf before
 * C_Initialize; the system SoftHSM configuration is never touched. Because
 * SoftHSM reads its configuration at C_Initialize, no other SoftHSM user may
 * be open in the process when the embedded default is opened
 * (IMP_ERR_CONFIG otherwise).
 */
#define HSM_EMBEDDED_TOKEN "imprint"
#define HSM_EMBEDDED_MODULE "softhsm2"
#define HSM_EMBEDDED_MODULE_PATH "/usr/lib/softhsm/libsofthsm2.so"

/* True if DATA/hsm/pins exists. */
bool hsm_embedded_exists(const char *data_dir);

/*
 * Create the embedded default (directories, configuration, token "imprint"
 * with random SO and user PINs written to the pins file).
 * IMP_ERR_EXISTS if the pins file already exists.
 */
imp_err hsm_embedded_create(const char *data_dir);

/*
 * Open the embedded default as a struct hsm (logged in as user).
 * IMP_ERR_NOT_FOUND if it was never created, IMP_ERR_INSECURE if the pins
 * file is not a regular file of mode 0600 or stricter.
 */
imp_err hsm_embedded_open(const char *data_dir, struct hsm **out);

/* Point SOFTHSM2_CONF at the embedded default's configuration, so that the
 * next C_Initialize of SoftHSM in this process sees its token (hsm tokens). */
imp_err hsm_embedded_use_conf(const char *data_dir);

/* Path of the module the embedded default uses: "softhsm2" if p11-kit knows
 * that name, else HSM_EMBEDDED_MODULE_PATH. Static string. */
const char *hsm_embedded_module(void);

#endif
