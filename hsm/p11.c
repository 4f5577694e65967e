/*
 * The PKCS#11 call wrapper (CKR names and mapping to imp_err) and the
 * process-wide module registry (load through p11-kit, C_Initialize once).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/p11-kit.h>

#include "hsm_int.h"
#include "imprint/log.h"
#include "imprint/util.h"

#define R(x) { x, #x }
static const struct {
	CK_RV rv;
	const char *name;
} ckr_names[] = {
	R(CKR_OK), R(CKR_CANCEL), R(CKR_HOST_MEMORY), R(CKR_SLOT_ID_INVALID),
	R(CKR_GENERAL_ERROR), R(CKR_FUNCTION_FAILED), R(CKR_ARGUMENTS_BAD),
	R(CKR_NO_EVENT), R(CKR_NEED_TO_CREATE_THREADS), R(CKR_CANT_LOCK),
	R(CKR_ATTRIBUTE_READ_ONLY), R(CKR_ATTRIBUTE_SENSITIVE),
	R(CKR_ATTRIBUTE_TYPE_INVALID), R(CKR_ATTRIBUTE_VALUE_INVALID),
	R(CKR_ACTION_PROHIBITED), R(CKR_DATA_INVALID), R(CKR_DATA_LEN_RANGE),
	R(CKR_DEVICE_ERROR), R(CKR_DEVICE_MEMORY), R(CKR_DEVICE_REMOVED),
	R(CKR_ENCRYPTED_DATA_INVALID), R(CKR_ENCRYPTED_DATA_LEN_RANGE),
	R(CKR_FUNCTION_CANCELED), R(CKR_FUNCTION_NOT_PARALLEL),
	R(CKR_FUNCTION_NOT_SUPPORTED), R(CKR_KEY_HANDLE_INVALID),
	R(CKR_KEY_SIZE_RANGE), R(CKR_KEY_TYPE_INCONSISTENT), R(CKR_KEY_NOT_NEEDED),
	R(CKR_KEY_CHANGED), R(CKR_KEY_NEEDED), R(CKR_KEY_INDIGESTIBLE),
	R(CKR_KEY_FUNCTION_NOT_PERMITTED), R(CKR_KEY_NOT_WRAPPABLE),
	R(CKR_KEY_UNEXTRACTABLE), R(CKR_MECHANISM_INVALID),
	R(CKR_MECHANISM_PARAM_INVALID), R(CKR_OBJECT_HANDLE_INVALID),
	R(CKR_OPERATION_ACTIVE), R(CKR_OPERATION_NOT_INITIALIZED),
	R(CKR_PIN_INCORRECT), R(CKR_PIN_INVALID), R(CKR_PIN_LEN_RANGE),
	R(CKR_PIN_EXPIRED), R(CKR_PIN_LOCKED), R(CKR_SESSION_CLOSED),
	R(CKR_SESSION_COUNT), R(CKR_SESSION_HANDLE_INVALID),
	R(CKR_SESSION_PARALLEL_NOT_SUPPORTED), R(CKR_SESSION_READ_ONLY),
	R(CKR_SESSION_EXISTS), R(CKR_SESSION_READ_ONLY_EXISTS),
	R(CKR_SESSION_READ_WRITE_SO_EXISTS), R(CKR_SIGNATURE_INVALID),
	R(CKR_SIGNATURE_LEN_RANGE), R(CKR_TEMPLATE_INCOMPLETE),
	R(CKR_TEMPLATE_INCONSISTENT), R(CKR_TOKEN_NOT_PRESENT),
	R(CKR_TOKEN_NOT_RECOGNIZED), R(CKR_TOKEN_WRITE_PROTECTED),
	R(CKR_UNWRAPPING_KEY_HANDLE_INVALID), R(CKR_UNWRAPPING_KEY_SIZE_RANGE),
	R(CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT), R(CKR_USER_ALREADY_LOGGED_IN),
	R(CKR_USER_NOT_LOGGED_IN), R(CKR_USER_PIN_NOT_INITIALIZED),
	R(CKR_USER_TYPE_INVALID), R(CKR_USER_ANOTHER_ALREADY_LOGGED_IN),
	R(CKR_USER_TOO_MANY_TYPES), R(CKR_WRAPPED_KEY_INVALID),
	R(CKR_WRAPPED_KEY_LEN_RANGE), R(CKR_WRAPPING_KEY_HANDLE_INVALID),
	R(CKR_WRAPPING_KEY_SIZE_RANGE), R(CKR_WRAPPING_KEY_TYPE_INCONSISTENT),
	R(CKR_RANDOM_SEED_NOT_SUPPORTED), R(CKR_RANDOM_NO_RNG),
	R(CKR_DOMAIN_PARAMS_INVALID), R(CKR_CURVE_NOT_SUPPORTED),
	R(CKR_BUFFER_TOO_SMALL), R(CKR_SAVED_STATE_INVALID),
	R(CKR_INFORMATION_SENSITIVE), R(CKR_STATE_UNSAVEABLE),
	R(CKR_CRYPTOKI_NOT_INITIALIZED), R(CKR_CRYPTOKI_ALREADY_INITIALIZED),
	R(CKR_MUTEX_BAD), R(CKR_MUTEX_NOT_LOCKED), R(CKR_NEW_PIN_MODE),
	R(CKR_NEXT_OTP), R(CKR_EXCEEDED_MAX_ITERATIONS),
	R(CKR_FIPS_SELF_TEST_FAILED), R(CKR_LIBRARY_LOAD_FAILED),
	R(CKR_PIN_TOO_WEAK), R(CKR_PUBLIC_KEY_INVALID), R(CKR_FUNCTION_REJECTED),
};
#undef R

const char *hsm_ckr_name(CK_RV rv)
{
	for (size_t i = 0; i < IMP_ARRAY_SIZE(ckr_names); i++)
		if (ckr_names[i].rv == rv)
			return ckr_names[i].name;
	if (rv & CKR_VENDOR_DEFINED)
		return "CKR_VENDOR_DEFINED";
	return "unknown CKR";
}

imp_err hsm_ckr_to_err(CK_RV rv)
{
	switch (rv) {
	case CKR_OK:
		return IMP_OK;
	case CKR_PIN_INCORRECT:
	case CKR_PIN_INVALID:
	case CKR_PIN_LEN_RANGE:
	case CKR_PIN_EXPIRED:
		return IMP_ERR_PIN;
	case CKR_PIN_LOCKED:
		return IMP_ERR_PIN_LOCKED;
	case CKR_MECHANISM_INVALID:
	case CKR_MECHANISM_PARAM_INVALID:
	case CKR_FUNCTION_NOT_SUPPORTED:
	case CKR_CURVE_NOT_SUPPORTED:
	case CKR_KEY_NOT_WRAPPABLE:
	case CKR_RANDOM_NO_RNG:
		return IMP_ERR_UNSUPPORTED;
	case CKR_SIGNATURE_INVALID:
	case CKR_SIGNATURE_LEN_RANGE:
		return IMP_ERR_VERIFY;
	case CKR_HOST_MEMORY:
	case CKR_DEVICE_MEMORY:
		return IMP_ERR_NOMEM;
	case CKR_TOKEN_NOT_PRESENT:
	case CKR_TOKEN_NOT_RECOGNIZED:
	case CKR_SLOT_ID_INVALID:
	case CKR_DEVICE_REMOVED:
		return IMP_ERR_NOT_FOUND;
	default:
		return IMP_ERR_HSM;
	}
}

#define M(x) { x, #x }
static const struct {
	CK_MECHANISM_TYPE type;
	const char *name;
} ckm_names[] = {
	M(CKM_EC_KEY_PAIR_GEN), M(CKM_ECDSA), M(CKM_ECDSA_SHA256), M(CKM_ECDH1_DERIVE),
	M(CKM_AES_KEY_GEN), M(CKM_AES_ECB), M(CKM_AES_CBC), M(CKM_AES_GCM), M(CKM_AES_CMAC),
	M(CKM_AES_KEY_WRAP), M(CKM_AES_KEY_WRAP_PAD), M(CKM_AES_KEY_WRAP_KWP), M(CKM_AES_ECB_ENCRYPT_DATA),
	M(CKM_AES_CBC_ENCRYPT_DATA), M(CKM_SHA256), M(CKM_RSA_PKCS_KEY_PAIR_GEN),
	M(CKM_GENERIC_SECRET_KEY_GEN),
};
#undef M

const char *hsm_ckm_name(CK_MECHANISM_TYPE type)
{
	for (size_t i = 0; i < IMP_ARRAY_SIZE(ckm_names); i++)
		if (ckm_names[i].type == type)
			return ckm_names[i].name;
	return "a vendor mechanism";
}

/* Per thread: failures expected by a probe are logged at debug level. */
static __thread int p11_quiet;

void hsm_p11_quiet(bool on)
{
	p11_quiet += on ? 1 : -1;
}

#define P11_LOG(...) imp_log(p11_quiet ? IMP_LOG_DEBUG : IMP_LOG_ERROR, __VA_ARGS__)

imp_err hsm_p11_result_mech(const char *fn, CK_RV rv, CK_MECHANISM_TYPE mech)
{
	if (rv == CKR_OK)
		return IMP_OK;
	P11_LOG("%s failed: %s (0x%lx) for %s (0x%lx)%s", fn, hsm_ckr_name(rv),
		  (unsigned long)rv, hsm_ckm_name(mech), (unsigned long)mech,
		  hsm_ckr_to_err(rv) == IMP_ERR_UNSUPPORTED ?
			  ": the token does not offer this mechanism as imprint uses it; "
			  "'imprint hsm status' shows which key modes it can do" : "");
	return hsm_ckr_to_err(rv);
}

imp_err hsm_p11_result(const char *fn, CK_RV rv, CK_RV ok2)
{
	if (rv == CKR_OK || (ok2 != CKR_OK && rv == ok2))
		return IMP_OK;
	if (ok2 == HSM_RV_ATTR_PARTIAL &&
	    (rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE ||
	     rv == CKR_BUFFER_TOO_SMALL))
		return IMP_OK;
	P11_LOG("%s failed: %s (0x%lx)", fn, hsm_ckr_name(rv), (unsigned long)rv);
	return hsm_ckr_to_err(rv);
}

void hsm_unpad(const CK_UTF8CHAR *in, size_t n, char *out)
{
	memcpy(out, in, n);
	while (n > 0 && (out[n - 1] == ' ' || out[n - 1] == '\0'))
		n--;
	out[n] = '\0';
}

/* ------------------------------------------------------ module registry */

#define MAX_MODULES 8

static struct {
	CK_FUNCTION_LIST *fl;
	unsigned refs;
	int we_initialised;
	char *conf;          /* SOFTHSM2_CONF at C_Initialize, or NULL */
	char *init_args;     /* pReserved given to C_Initialize, or NULL */
} registry[MAX_MODULES];

/*
 * Libraries that take one call at a time from this process: tpm2-pkcs11 1.9
 * runs every call that reaches the TPM on one ESAPI context per token, and
 * crashes in tpm_sign when another thread's call (a C_GenerateRandom, a
 * session opened or closed) uses that context meanwhile, although
 * C_Initialize was given CKF_OS_LOCKING_OK (seen under ASan with four
 * fixtures). serial_fl[i] is set at the library's C_Initialize, before any
 * other thread calls it, and cleared after its C_Finalize.
 */
static CK_FUNCTION_LIST *serial_fl[MAX_MODULES];
static pthread_mutex_t serial_lock[MAX_MODULES] = {
	PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER,
	PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER,
	PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER,
};

static int serial_index(const CK_FUNCTION_LIST *fl)
{
	for (int i = 0; i < MAX_MODULES; i++)
		if (__atomic_load_n(&serial_fl[i], __ATOMIC_ACQUIRE) == fl)
			return i;
	return -1;
}

bool hsm_p11_one_at_a_time(const CK_FUNCTION_LIST *fl)
{
	return serial_index(fl) >= 0;
}

void hsm_p11_enter(CK_FUNCTION_LIST *fl)
{
	int i = serial_index(fl);

	if (i >= 0)
		pthread_mutex_lock(&serial_lock[i]);
}

CK_RV hsm_p11_leave(CK_FUNCTION_LIST *fl, CK_RV rv)
{
	int i = serial_index(fl);

	if (i >= 0)
		pthread_mutex_unlock(&serial_lock[i]);
	return rv;
}

/* The library at registry slot i takes one call at a time if it says it
 * is tpm2-pkcs11 (its CK_INFO's manufacturer). */
static void serial_decide(size_t i, CK_FUNCTION_LIST *fl)
{
	CK_INFO li;
	char manuf[33];

	if (fl->C_GetInfo(&li) != CKR_OK)
		return;
	hsm_unpad(li.manufacturerID, sizeof(li.manufacturerID), manuf);
	if (strcmp(manuf, "tpm2-software.github.io") != 0)
		return;
	IMP_DEBUG("pkcs11: %s takes one call at a time", manuf);
	__atomic_store_n(&serial_fl[i], fl, __ATOMIC_RELEASE);
}
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;

static int same_str(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

/*
 * Load the one module named: a path as it is, a name through its p11-kit
 * registration file (hsm/modules.c), never every registered module.
 * *reserved receives the registration's x-init-reserved (malloc'ed) if
 * the module was named and the file has one.
 */
static imp_err module_load(const char *module, CK_FUNCTION_LIST **out, char **reserved)
{
	char *path = NULL;
	imp_err rc;

	*out = NULL;
	*reserved = NULL;
	if (strchr(module, '/')) {
		*out = p11_kit_module_load(module, P11_KIT_MODULE_UNMANAGED);
		if (!*out) {
			IMP_ERROR("cannot load pkcs11 module %s: %s: check the path", module,
				  p11_kit_message() ? p11_kit_message() : "not found");
			return IMP_ERR_NOT_FOUND;
		}
		return IMP_OK;
	}
	rc = hsm_p11kit_resolve(module, &path, reserved);
	if (rc == IMP_ERR_NOT_FOUND)
		IMP_ERROR("no p11-kit module named %s: 'imprint hsm tokens' lists the registered "
			  "modules; or give the module's path", module);
	if (rc != IMP_OK)
		return rc;
	*out = p11_kit_module_load(path, P11_KIT_MODULE_UNMANAGED);
	if (!*out) {
		IMP_ERROR("cannot load %s, the library of p11-kit module %s: %s", path, module,
			  p11_kit_message() ? p11_kit_message() : "not found");
		rc = IMP_ERR_NOT_FOUND;
		free(*reserved);
		*reserved = NULL;
	}
	free(path);
	return rc;
}

imp_err hsm_module_get(const struct hsm_module *m, const char *conf_env, CK_FUNCTION_LIST **out)
{
	CK_C_INITIALIZE_ARGS args = { .flags = CKF_OS_LOCKING_OK };
	CK_FUNCTION_LIST *fl = NULL;
	CK_RV rv;
	const char *env = getenv("SOFTHSM2_CONF");
	const char *init_args;
	char *reserved = NULL;
	size_t i, slot = MAX_MODULES;
	imp_err rc = IMP_OK;

	*out = NULL;
	if (!m || !m->name || !*m->name) {
		IMP_ERROR("no pkcs11 module given: give a module path or p11-kit module name");
		return IMP_ERR_CONFIG;
	}
	pthread_mutex_lock(&registry_lock);
	rc = module_load(m->name, &fl, &reserved);
	if (rc != IMP_OK)
		goto cleanup;
	init_args = m->init_args ? m->init_args : (reserved && *reserved ? reserved : NULL);
	for (i = 0; i < MAX_MODULES; i++) {
		if (registry[i].fl == fl && registry[i].refs > 0)
			break;
		if (!registry[i].refs && slot == MAX_MODULES)
			slot = i;
	}
	if (i < MAX_MODULES) {
		if (conf_env && !same_str(conf_env, registry[i].conf)) {
			IMP_ERROR("pkcs11 module %s is already in use in this process with another "
				  "configuration: close it before opening %s", m->name, conf_env);
			rc = IMP_ERR_CONFIG;
		} else if (init_args && !same_str(init_args, registry[i].init_args)) {
			IMP_ERROR("pkcs11 module %s is already initialised in this process with "
				  "other init_args: close it first", m->name);
			rc = IMP_ERR_CONFIG;
		}
		if (rc != IMP_OK) {
			p11_kit_module_release(fl);
			goto cleanup;
		}
		registry[i].refs++;
		*out = fl;
		goto cleanup;
	}
	if (slot == MAX_MODULES) {
		IMP_ERROR("too many pkcs11 modules open at once");
		p11_kit_module_release(fl);
		rc = IMP_ERR_INTERNAL;
		goto cleanup;
	}
	/* NSS softoken reads its parameters (configdir=...) from here. */
	args.pReserved = (void *)init_args;
	rc = P11_RV(rv, CKR_CRYPTOKI_ALREADY_INITIALIZED, fl, C_Initialize, &args);
	if (rc != IMP_OK) {
		if (rv == CKR_ARGUMENTS_BAD && init_args)
			IMP_ERROR("pkcs11 module %s refused its init_args: check hsm.init_args "
				  "(docs/HSM.md)", m->name);
		p11_kit_module_release(fl);
		goto cleanup;
	}
	registry[slot].fl = fl;
	registry[slot].refs = 1;
	serial_decide(slot, fl);
	/* Initialised by someone else in this process: not ours to finalise. */
	registry[slot].we_initialised = rv == CKR_OK;
	registry[slot].conf = env ? strdup(env) : NULL;
	registry[slot].init_args = init_args ? strdup(init_args) : NULL;
	*out = fl;
cleanup:
	free(reserved);
	pthread_mutex_unlock(&registry_lock);
	return rc;
}

void hsm_module_put(CK_FUNCTION_LIST *fl)
{
	if (!fl)
		return;
	pthread_mutex_lock(&registry_lock);
	for (size_t i = 0; i < MAX_MODULES; i++) {
		if (registry[i].fl != fl || registry[i].refs == 0)
			continue;
		if (--registry[i].refs == 0) {
			if (registry[i].we_initialised)
				P11(fl, C_Finalize, NULL);
			__atomic_store_n(&serial_fl[i], NULL, __ATOMIC_RELEASE);
			free(registry[i].conf);
			free(registry[i].init_args);
			registry[i].conf = NULL;
			registry[i].init_args = NULL;
			registry[i].fl = NULL;
		}
		break;
	}
	p11_kit_module_release(fl);
	pthread_mutex_unlock(&registry_lock);
}
