/*
 * Where imprint's own data files are (target profiles, OpenOCD
 * configurations, certificate profiles): found from the running binary,
 * never from where the sources were.
 *
 * An installed program finds its data in BINDIR/IMPRINT_BIN_TO_DATA, the
 * path from GNUInstallDirs' bindir to datadir/imprint ("../share/imprint"
 * for the default layout), with BINDIR the directory of /proc/self/exe. So
 * a prefix may be moved as a whole, and the source and build trees may be
 * deleted: nothing below looks at them for an installed program.
 *
 * Only a program that runs from inside its build tree (IMPRINT_BUILD_DIR,
 * where there is no installed data beside it) takes the data from the
 * source tree (IMPRINT_SOURCE_DIR), so that tests and developers need no
 * install step.
 */
#ifndef IMPRINT_PATHS_H
#define IMPRINT_PATHS_H

#include <stdbool.h>
#include <stddef.h>

#include "imprint/err.h"

/* The directory of the running program's executable, without a trailing
 * '/'. IMP_ERR_IO if /proc/self/exe cannot be read, IMP_ERR_USAGE if the
 * path does not fit in cap. */
imp_err imp_self_dir(char *out, size_t cap);

/*
 * The directory of one kind of data file into out:
 *   - installed: BINDIR/IMPRINT_BIN_TO_DATA/installed, whenever
 *     BINDIR/IMPRINT_BIN_TO_DATA is a directory;
 *   - else, for a program inside the build tree only:
 *     IMPRINT_SOURCE_DIR/in_source (e.g. "board/profiles").
 * IMP_ERR_NOT_FOUND when neither applies or the directory does not exist;
 * out then holds the directory an installation would have used (for the
 * caller's message). Logs nothing.
 */
imp_err imp_data_dir(const char *installed, const char *in_source, char *out, size_t cap);

/*
 * NAME.json in the directory dir (its first dlen bytes): true, with its
 * path in out, when it is there and readable. imp_json_in_path does the
 * same for each directory of a colon-separated list (an environment
 * variable's search path; NULL or "" is none) and stops at the first.
 */
bool imp_json_in_dir(const char *dir, size_t dlen, const char *name, char *out, size_t cap);
bool imp_json_in_path(const char *list, const char *name, char *out, size_t cap);

#endif
