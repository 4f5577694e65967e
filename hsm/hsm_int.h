/*
 * hsm internals shared by the module's files; not installed, not included
 * outside hsm/.
 */
#ifndef HSM_INT_H
#define HSM_INT_H

#include <p11-kit/pkcs11.h>
#include <pthread.h>
#include <stdbool.h>

#include "hsm/hsm.h"
#include "imprint/err.h"

/* PKCS#11 3.0's unambiguous RFC 5649 key wrap; p11-kit 0.24's header
 * predates it. Value from the PKCS#11 3.0 specification. */
#ifndef CKM_AES_KEY_WRAP_KWP
#define CKM_AES_KEY_WRAP_KWP (0x210bUL)
#endif

/*
 * The mechanism that does RFC 5649 on this token: CKM_AES_KEY_WRAP_KWP if
 * offered for wrapping (NSS softoken, where CKM_AES_KEY_WRAP_PAD is RFC 3394
 * over PKCS#7-padded input), else CKM_AES_KEY_WRAP_PAD (SoftHSM2, which
 * implements RFC 5649 under that number; docs/HSM.md).
 */
CK_MECHANISM_TYPE hsm_kwp_mechanism(const struct hsm *h);

/* Mechanisms whose availability is cached at hsm_open (with key sizes, as
 * the token reports them: bits for EC, bytes for AES on most tokens). */
struct hsm_mech_cache {
	CK_MECHANISM_TYPE type;
	CK_FLAGS flags;
	CK_ULONG min_size, max_size;
};

struct hsm {
	CK_FUNCTION_LIST *fl;
	CK_SLOT_ID slot;
	CK_SESSION_HANDLE login_session; /* keeps the user login alive */
	char token_label[33];
	CK_FLAGS token_flags;            /* CKF_* of C_GetTokenInfo at open */
	struct hsm_mech_cache *mechs;
	size_t n_mechs;
	/* key-mode probes (hsm/caps.c): done bits, passed bits */
	unsigned probes_done, probes_ok;
	/* A signature's C_SignInit and C_Sign together (hsm_sign_digest), on
	 * a library that takes one call at a time (hsm_p11_one_at_a_time):
	 * tpm2-pkcs11 1.9 crashes in tpm_sign when sessions of one token sign
	 * at once. */
	pthread_mutex_t sign_lock;
	/* The embedded token's DATA/hsm (owned), else NULL: SoftHSM2 reads
	 * token.object again at C_GetTokenInfo once it changed, and another
	 * imprint process's C_Login rewrites it in place, so every such read
	 * holds that directory's guard lock (embedded_guard.h) as the login
	 * does. */
	char *guard_dir;
};

struct hsm_session {
	struct hsm *h;
	CK_FUNCTION_LIST *fl;
	CK_SESSION_HANDLE sh;
};

/*
 * The one wrapper every C_* call goes through: calls `fl->fn(...)`; a result
 * other than CKR_OK (or `ok2`, a second value accepted as success, 0 for
 * none) is logged as "C_Xxx failed: CKR_NAME (0x..)" and mapped to imp_err.
 */
#define P11(fl, fn, ...) hsm_p11_result(#fn, P11_CALL(fl, fn, __VA_ARGS__), CKR_OK)
#define P11_OK_IF(ok2, fl, fn, ...) hsm_p11_result(#fn, P11_CALL(fl, fn, __VA_ARGS__), (ok2))
/* Same, also storing the raw CK_RV in `rv` for callers that branch on it. */
#define P11_RV(rv, ok2, fl, fn, ...) \
	hsm_p11_result(#fn, ((rv) = P11_CALL(fl, fn, __VA_ARGS__)), (ok2))

/*
 * The call itself, its CK_RV as the value: under the library's lock when it
 * takes one call at a time (hsm_p11_enter; p11.c names the libraries), the
 * lock released as the call returns. Every call into a library goes
 * through it, through P11* or directly.
 */
#define P11_CALL(fl, fn, ...) (hsm_p11_enter(fl), hsm_p11_leave((fl), (fl)->fn(__VA_ARGS__)))
void hsm_p11_enter(CK_FUNCTION_LIST *fl);
CK_RV hsm_p11_leave(CK_FUNCTION_LIST *fl, CK_RV rv);
/* fl takes one call at a time (P11_CALL holds its lock). */
bool hsm_p11_one_at_a_time(const CK_FUNCTION_LIST *fl);

/* ok2 for C_GetAttributeValue: also accept a partial answer (some attributes
 * absent, sensitive, or too large; their ulValueLen is then
 * CK_UNAVAILABLE_INFORMATION). */
#define HSM_RV_ATTR_PARTIAL ((CK_RV)~0UL)

imp_err hsm_p11_result(const char *fn, CK_RV rv, CK_RV ok2);

/*
 * The same for calls that take a mechanism (C_GenerateKeyPair, C_SignInit,
 * C_DeriveKey, C_WrapKey, ...): the message also names the mechanism
 * ("... CKR_MECHANISM_INVALID (0x70) for CKM_EC_KEY_PAIR_GEN (0x1040)").
 */
#define P11M(mech, fl, fn, ...) \
	hsm_p11_result_mech(#fn, P11_CALL(fl, fn, __VA_ARGS__), (mech))
imp_err hsm_p11_result_mech(const char *fn, CK_RV rv, CK_MECHANISM_TYPE mech);
/* While on (calls nest), this thread's failing calls are logged at debug
 * level: for probes whose failure is an answer, not an error. */
void hsm_p11_quiet(bool on);
/* "CKM_ECDSA", or "a vendor mechanism" for one outside imprint's table. */
const char *hsm_ckm_name(CK_MECHANISM_TYPE type);
/* CKR_* name of rv ("CKR_PIN_INCORRECT"), or "CKR_VENDOR_DEFINED+0x.."-free
 * "unknown CKR" for values outside the table; never NULL. */
const char *hsm_ckr_name(CK_RV rv);
/* The imp_err a CKR maps to (no logging). */
imp_err hsm_ckr_to_err(CK_RV rv);

/*
 * Process-wide module registry: load `module` (path or p11-kit name) and
 * C_Initialize it once per process; hsm_module_put() drops a reference and
 * C_Finalize's on the last. `conf_env`: the SOFTHSM2_CONF value that must
 * have been in force at C_Initialize (NULL: don't care); if the module is
 * already initialised with another value, IMP_ERR_CONFIG.
 */
imp_err hsm_module_get(const struct hsm_module *m, const char *conf_env, CK_FUNCTION_LIST **fl);

/*
 * p11-kit registration files (hsm/modules.c). hsm_p11kit_resolve: the
 * library path of module `name` (*path malloc'ed) and its x-init-reserved
 * (*init_reserved malloc'ed or NULL; init_reserved may be NULL);
 * IMP_ERR_NOT_FOUND if no registration file has that name.
 */
imp_err hsm_p11kit_resolve(const char *name, char **path, char **init_reserved);
void hsm_module_put(CK_FUNCTION_LIST *fl);

/* Copy a blank-padded PKCS#11 string of n bytes into out (n+1 bytes). */
void hsm_unpad(const CK_UTF8CHAR *in, size_t n, char *out);

/* Fill a struct hsm_token_info for slot (C_GetTokenInfo). */
imp_err hsm_token_info_get(CK_FUNCTION_LIST *fl, CK_SLOT_ID slot, struct hsm_token_info *out);
/* C_GetTokenInfo of h's token, under h->guard_dir's lock when it has one. */
imp_err hsm_token_info_raw(struct hsm *h, CK_TOKEN_INFO *ti);

/* Log in on session sh as `user` with the PIN from src; the PIN is wiped. */
imp_err hsm_login(CK_FUNCTION_LIST *fl, CK_SESSION_HANDLE sh, CK_USER_TYPE user,
		  const struct hsm_pin_source *src, const char *token_label);

/* hsm_open, also requiring that the module was (or is now) initialised
 * with SOFTHSM2_CONF equal to conf (NULL: don't care). */
imp_err hsm_open_conf(const struct hsm_module *m, const char *conf, const char *token,
		      const struct hsm_pin_source *pin, struct hsm **out);

/* Attribute template under construction (no allocation). */
#define HSM_TMPL_MAX 24
struct hsm_tmpl {
	CK_ATTRIBUTE a[HSM_TMPL_MAX];
	CK_ULONG ul[HSM_TMPL_MAX];
	CK_ULONG n;
};
void hsm_tmpl_bool(struct hsm_tmpl *t, CK_ATTRIBUTE_TYPE type, int v);
void hsm_tmpl_ulong(struct hsm_tmpl *t, CK_ATTRIBUTE_TYPE type, CK_ULONG v);
/* Borrowed: p must outlive the template's use. Skipped if p is NULL. */
void hsm_tmpl_bytes(struct hsm_tmpl *t, CK_ATTRIBUTE_TYPE type, const void *p, size_t n);

/*
 * CKM_AES_GCM with imprint's parameters (HSM_GCM_IV_LEN-byte iv, aad of
 * aad_len bytes or none, HSM_GCM_TAG_LEN-byte tag) in *m, pointing at *gcm:
 * both must outlive the call that uses m.
 */
void hsm_gcm_mechanism(CK_MECHANISM *m, CK_GCM_PARAMS *gcm, const uint8_t *iv,
		       const uint8_t *aad, size_t aad_len);

/* o is the journal anchor's key form (anchor.c): a generic secret of no use
 * (every usage false, not extractable) whose CKA_ID names the anchor. Its
 * value is a digest of the anchor's public text, so it is not a key the
 * organisation must keep in the token. */
bool hsm_anchor_key_form(const struct hsm_obj_info *o);

#endif
