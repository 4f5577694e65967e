#ifndef IMPRINT_LINE_INT_H
#define IMPRINT_LINE_INT_H

#include "imprint/err.h"

/* libpq, loaded on first use (pq_dyn.c): IMP_ERR_NOT_FOUND, logged with
 * the package to install, if it is missing. Every entry point of the line
 * calls it before any libpq function. */
imp_err line_pq_load(void);

#endif
