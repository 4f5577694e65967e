#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hsm_fixture.h"

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	strcpy(f->dir, "/tmp/imp-hsm-test-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(hsm_embedded_create(f->dir), IMP_OK);
	assert_int_equal(hsm_embedded_open(f->dir, &f->h), IMP_OK);
	assert_int_equal(hsm_session_open(f->h, &f->s), IMP_OK);
	*state = f;
	return 0;
}

void fx_close(struct fx *f)
{
	hsm_session_close(f->s);
	f->s = NULL;
	hsm_close(f->h);
	f->h = NULL;
}

int fx_teardown(void **state)
{
	struct fx *f = *state;

	fx_close(f);
	nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}
