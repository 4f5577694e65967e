#ifndef IMPRINT_STATION_DYNLIBS_H
#define IMPRINT_STATION_DYNLIBS_H

#include <stdbool.h>

#include "imprint/err.h"

/*
 * The station's libraries that only one command uses, loaded at its first
 * use (imprint/dynlib.h): IMP_ERR_NOT_FOUND, logged with the package to
 * install, if one is missing. Called before any of their functions.
 */
imp_err st_mhd_load(void);    /* libmicrohttpd: serve (mhd_dyn.c) */
/* libqrencode, and libpng if with_png: labels (label_dyn.c) */
imp_err st_label_load(bool with_png);

#endif
