/*
 * Fuse plans (board_plan.c): what a profile's fuse_burn would write, shown
 * before anything irreversible is done. Used by `imprint board plan` and
 * `imprint provision --dry-run`.
 */
#ifndef ST_BOARD_PLAN_H
#define ST_BOARD_PLAN_H

#include <stdbool.h>

#include <jansson.h>

#include "board/profile.h"
#include "imprint/err.h"

/*
 * The plan of profile p as one JSON object (docs/PROFILES.md, "Fuse
 * plans"). probe_uri NULL: static, from the profile alone. Otherwise the
 * probe is opened and only read (the UID, the lock status, the fuses, and
 * the reads of fuse_burn itself); uart (may be NULL) is asked IDENTIFY.
 * permanent: plan as if a supervisor confirmed the profile's permanent lock
 * (IMP_ERR_USAGE when the profile allows none). firmware: 1 the station
 * has a firmware image to verify before LOCK, 0 it has none (the plan says
 * that nothing is verified), -1 not known (no configuration). Hands over
 * *out.
 */
imp_err st_board_plan(const struct board_profile *p, const char *probe_uri, const char *uart,
		      unsigned baud, bool permanent, int firmware, json_t **out);

/* st_emit's human printer for a plan object. */
void st_board_plan_print(const json_t *o, void *arg);

#endif
