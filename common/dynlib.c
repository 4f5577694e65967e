/*
 * Libraries loaded at their first use (include/imprint/dynlib.h).
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "imprint/dynlib.h"
#include "imprint/log.h"

enum { DL_UNTRIED, DL_LOADED, DL_FAILED };

/* Loads are rare (one per library and process): one lock for all. */
static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;

static void load_locked(struct imp_dynlib *lib)
{
	void *h = dlopen(lib->soname, RTLD_NOW | RTLD_LOCAL);

	if (!h) {
		const char *e = dlerror();

		snprintf(lib->why, sizeof(lib->why), "%s cannot be loaded (%s): install the "
			 "package %s (apt-get install %s)", lib->soname, e ? e : "dlopen failed",
			 lib->package, lib->package);
		__atomic_store_n(&lib->state, DL_FAILED, __ATOMIC_RELEASE);
		return;
	}
	for (size_t i = 0; i < lib->n; i++) {
		lib->fns[i] = dlsym(h, lib->names[i]);
		if (!lib->fns[i]) {
			snprintf(lib->why, sizeof(lib->why), "%s has no %s: it is older than this "
				 "imprint needs; install the package %s of this release",
				 lib->soname, lib->names[i], lib->package);
			__atomic_store_n(&lib->state, DL_FAILED, __ATOMIC_RELEASE);
			/* Never unloaded: functions already taken stay valid. */
			return;
		}
	}
	__atomic_store_n(&lib->state, DL_LOADED, __ATOMIC_RELEASE);
}

imp_err imp_dynlib_load(struct imp_dynlib *lib)
{
	int state = __atomic_load_n(&lib->state, __ATOMIC_ACQUIRE);

	if (state == DL_LOADED)
		return IMP_OK;
	pthread_mutex_lock(&load_lock);
	if (lib->state == DL_UNTRIED)
		load_locked(lib);
	state = lib->state;
	pthread_mutex_unlock(&load_lock);
	if (state == DL_LOADED)
		return IMP_OK;
	IMP_ERROR("%s", lib->why);
	return IMP_ERR_NOT_FOUND;
}

void *imp_dynlib_fn(struct imp_dynlib *lib, size_t i)
{
	if (__atomic_load_n(&lib->state, __ATOMIC_ACQUIRE) != DL_LOADED &&
	    imp_dynlib_load(lib) != IMP_OK) {
		IMP_ERROR("stopping: %s was needed before it was checked", lib->soname);
		exit(IMP_ERR_NOT_FOUND);
	}
	return lib->fns[i];
}
