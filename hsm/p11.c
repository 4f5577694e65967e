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

imp_err hsm_p11_result(const char *fn, CK_RV rv, CK_RV ok2)
{
	if (rv == CKR_OK || (ok2 != CKR_OK && rv == ok2))
		return IMP_OK;
	if (ok2 == HSM_RV_ATTR_PARTIAL &&
	    (rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE ||
	     rv == CKR_BUFFER_TOO_SMALL))
		return IMP_OK;
	IMP_ERROR("%s failed: %s (0x%lx)", fn, hsm_ckr_name(rv), (unsigned long)rv);
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
} registry[MAX_MODULES];
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;

/* Load by p11-kit name: p11-kit loads every configured module; keep ours. */
static CK_FUNCTION_LIST *load_by_name(const char *name)
{
	CK_FUNCTION_LIST **all = p11_kit_modules_load(NULL, P11_KIT_MODULE_UNMANAGED);
	CK_FUNCTION_LIST *found = NULL;

	if (!all)
		return NULL;
	found = p11_kit_module_for_name(all, name);
	for (size_t i = 0; all[i]; i++)
		if (all[i] != found)
			p11_kit_module_release(all[i]);
	free(all);
	return found;
}

static int same_conf(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

imp_err hsm_module_get(const char *module, const char *conf_env, CK_FUNCTION_LIST **out)
{
	CK_C_INITIALIZE_ARGS args = { .flags = CKF_OS_LOCKING_OK };
	CK_FUNCTION_LIST *fl;
	CK_RV rv;
	const char *env = getenv("SOFTHSM2_CONF");
	size_t i, slot = MAX_MODULES;
	imp_err rc = IMP_OK;

	*out = NULL;
	if (!module || !*module) {
		IMP_ERROR("no pkcs11 module given: give a module path or p11-kit module name");
		return IMP_ERR_CONFIG;
	}
	pthread_mutex_lock(&registry_lock);
	if (strchr(module, '/'))
		fl = p11_kit_module_load(module, P11_KIT_MODULE_UNMANAGED);
	else
		fl = load_by_name(module);
	if (!fl) {
		if (strchr(module, '/'))
			IMP_ERROR("cannot load pkcs11 module %s: %s: check the path", module,
				  p11_kit_message() ? p11_kit_message() : "not found");
		else
			IMP_ERROR("no p11-kit module named %s: give the module path instead "
				  "or see p11-kit list-modules", module);
		rc = IMP_ERR_NOT_FOUND;
		goto cleanup;
	}
	for (i = 0; i < MAX_MODULES; i++) {
		if (registry[i].fl == fl && registry[i].refs > 0)
			break;
		if (!registry[i].refs && slot == MAX_MODULES)
			slot = i;
	}
	if (i < MAX_MODULES) {
		if (conf_env && !same_conf(conf_env, registry[i].conf)) {
			IMP_ERROR("pkcs11 module %s is already in use in this process with another "
				  "configuration: close it before opening %s", module, conf_env);
			p11_kit_module_release(fl);
			rc = IMP_ERR_CONFIG;
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
	rc = P11_RV(rv, CKR_CRYPTOKI_ALREADY_INITIALIZED, fl, C_Initialize, &args);
	if (rc != IMP_OK) {
		p11_kit_module_release(fl);
		goto cleanup;
	}
	registry[slot].fl = fl;
	registry[slot].refs = 1;
	/* Initialised by someone else in this process: not ours to finalise. */
	registry[slot].we_initialised = rv == CKR_OK;
	registry[slot].conf = env ? strdup(env) : NULL;
	*out = fl;
cleanup:
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
			free(registry[i].conf);
			registry[i].conf = NULL;
			registry[i].fl = NULL;
		}
		break;
	}
	p11_kit_module_release(fl);
	pthread_mutex_unlock(&registry_lock);
}
