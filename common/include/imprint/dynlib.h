#ifndef IMPRINT_DYNLIB_H
#define IMPRINT_DYNLIB_H

/*
 * A shared library that only some commands use, loaded at its first use
 * rather than at every start of the program (docs/ARCHITECTURE.md
 * "Libraries loaded on use"). libcurl, libpq, libmicrohttpd, libqrencode
 * and libpng, with what they pull in, were two thirds of the libraries
 * every `imprint` process mapped and relocated before main(); a start of
 * `imprint boards` or of a provisioning run needs none of them.
 *
 * Each user keeps the library's functions under their own names, in a file
 * of wrappers beside it (line/pq_dyn.c, ...): one row per function in an
 * X-macro table, so the call sites read as with the library linked, and
 * the prototypes are checked against the library's own header. The module
 * calls imp_dynlib_load() at its entry points, where a missing library is
 * an error with the package to install, before anything is spent.
 */
#include <stddef.h>

#include "imprint/err.h"

struct imp_dynlib {
	const char *soname;        /* what dlopen(3) loads: "libpq.so.5" */
	const char *package;       /* the Debian package that has it: "libpq5" */
	const char *const *names;  /* the functions taken from it */
	void **fns;                /* their addresses, in the order of names */
	size_t n;
	int state;                 /* 0 not tried, 1 loaded, 2 failed; imp_dynlib_load's */
	char why[480];             /* why it failed */
};

#define IMP_DYNLIB(soname, package, names, fns) \
	{ (soname), (package), (names), (fns), sizeof(names) / sizeof((names)[0]), 0, "" }

/*
 * Load the library and every function of it (once per process; safe from
 * any thread). IMP_ERR_NOT_FOUND, logged with the package to install, if
 * the library or one of its functions is missing; the same answer again
 * at every later call.
 */
imp_err imp_dynlib_load(struct imp_dynlib *lib);

/*
 * The address of function i of the library, loading it if that was not
 * done yet. A module checks its library with imp_dynlib_load() before it
 * calls any of its functions, so this cannot meet a missing library; if it
 * does (a module that skipped the check), the program stops with the
 * reason and exit code 9 rather than call through nothing.
 */
void *imp_dynlib_fn(struct imp_dynlib *lib, size_t i);

/*
 * The rows of a library's table: X(ret, name, params, args) for a function,
 * V(name, params, args) for one returning void. Expanded with the ROW
 * macros below, a table gives its enum of indexes (IMP_DL_name), its array
 * of names, and the wrappers, which call through the struct imp_dynlib
 * that IMP_DYNLIB_SELF names where they are expanded.
 */
#define IMP_DYNLIB_ROW_INDEX(ret, name, params, args) IMP_DL_##name,
#define IMP_DYNLIB_ROW_INDEX_V(name, params, args) IMP_DL_##name,
#define IMP_DYNLIB_ROW_NAME(ret, name, params, args) #name,
#define IMP_DYNLIB_ROW_NAME_V(name, params, args) #name,
#define IMP_DYNLIB_ROW_WRAP(ret, name, params, args) \
	IMP_DYNLIB_WRAP(IMP_DYNLIB_SELF, IMP_DL_##name, ret, name, params, args)
#define IMP_DYNLIB_ROW_WRAP_V(name, params, args) \
	IMP_DYNLIB_WRAP_VOID(IMP_DYNLIB_SELF, IMP_DL_##name, name, params, args)

/* A wrapper of one function, named and typed as the library's header has
 * it; idx is its row in the library's table. */
#define IMP_DYNLIB_WRAP(lib, idx, ret, name, params, args) \
	ret name params { return ((ret(*) params)imp_dynlib_fn(&(lib), (idx)))args; }
#define IMP_DYNLIB_WRAP_VOID(lib, idx, name, params, args) \
	void name params { ((void(*) params)imp_dynlib_fn(&(lib), (idx)))args; }

#endif
