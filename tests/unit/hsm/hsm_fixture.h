/*
 * The fixture of the hsm unit tests that run on a real SoftHSM2: a fresh
 * data directory under /tmp per test, with the embedded-default token
 * created in it, opened, and a session on it (hsm_fixture.c).
 */
#ifndef HSM_FIXTURE_H
#define HSM_FIXTURE_H

#include "hsm/hsm.h"

struct fx {
	char dir[64];
	struct hsm *h;
	struct hsm_session *s;
};

/* cmocka set-up and tear-down: *state is the struct fx. */
int fx_setup(void **state);
int fx_teardown(void **state);

/* Close the session and the hsm (the directory stays until tear-down). */
void fx_close(struct fx *f);

#endif
