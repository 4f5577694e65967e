/*
 * libcurl, loaded when the https exporter opens (imprint/dynlib.h): the
 * functions https.c calls, under their own names, their prototypes checked
 * against curl.h's. curl_easy_setopt and curl_easy_getinfo take one
 * argument after the option, of the type its number range says (curl.h
 * CURLOPTTYPE_*; every CURLINFO takes a pointer): read back and passed on
 * as that type.
 */
#include <stdarg.h>

#define CURL_DISABLE_TYPECHECK /* the wrappers below define the real functions */
#include <curl/curl.h>

#include "https.h"
#include "imprint/dynlib.h"

#define CURL_FUNCTIONS(X, V) \
	X(CURLcode, curl_global_init, (long flags), (flags)) \
	V(curl_global_cleanup, (void), ()) \
	X(struct curl_slist *, curl_slist_append, (struct curl_slist *list, const char *data), \
	  (list, data)) \
	V(curl_slist_free_all, (struct curl_slist *list), (list)) \
	X(const char *, curl_easy_strerror, (CURLcode code), (code)) \
	X(CURL *, curl_easy_init, (void), ()) \
	X(CURLcode, curl_easy_perform, (CURL *curl), (curl)) \
	V(curl_easy_cleanup, (CURL *curl), (curl))

enum { CURL_FUNCTIONS(IMP_DYNLIB_ROW_INDEX, IMP_DYNLIB_ROW_INDEX_V) IMP_DL_curl_easy_setopt,
       IMP_DL_curl_easy_getinfo, IMP_DL__COUNT };
static const char *const curl_names[] = { CURL_FUNCTIONS(IMP_DYNLIB_ROW_NAME, IMP_DYNLIB_ROW_NAME_V)
					  "curl_easy_setopt", "curl_easy_getinfo" };
static void *curl_fns[IMP_DL__COUNT];
static struct imp_dynlib curl_lib = IMP_DYNLIB("libcurl.so.4", "libcurl4", curl_names, curl_fns);

#define IMP_DYNLIB_SELF curl_lib
CURL_FUNCTIONS(IMP_DYNLIB_ROW_WRAP, IMP_DYNLIB_ROW_WRAP_V)

CURLcode curl_easy_setopt(CURL *c, CURLoption option, ...)
{
	CURLcode (*fn)(CURL *, CURLoption, ...) =
		(CURLcode(*)(CURL *, CURLoption, ...))imp_dynlib_fn(&curl_lib, IMP_DL_curl_easy_setopt);
	CURLcode rc;
	va_list ap;

	va_start(ap, option);
	if (option < CURLOPTTYPE_OBJECTPOINT)
		rc = fn(c, option, va_arg(ap, long));
	else if (option >= CURLOPTTYPE_OFF_T && option < CURLOPTTYPE_BLOB)
		rc = fn(c, option, va_arg(ap, curl_off_t));
	else /* an object, a string, a function or a blob: a pointer */
		rc = fn(c, option, va_arg(ap, void *));
	va_end(ap);
	return rc;
}

CURLcode curl_easy_getinfo(CURL *c, CURLINFO info, ...)
{
	CURLcode (*fn)(CURL *, CURLINFO, ...) =
		(CURLcode(*)(CURL *, CURLINFO, ...))imp_dynlib_fn(&curl_lib, IMP_DL_curl_easy_getinfo);
	CURLcode rc;
	va_list ap;

	va_start(ap, info);
	rc = fn(c, info, va_arg(ap, void *));
	va_end(ap);
	return rc;
}

imp_err exp_curl_load(void)
{
	return imp_dynlib_load(&curl_lib);
}
