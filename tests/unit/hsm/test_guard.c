/*
 * The embedded token's guard (hsm/embedded_guard.c) on token files it has no
 * verified copy of, as a full disk or a stop during object creation leaves
 * them: an old empty or cut object file is moved to tokens.quarantine once,
 * with one warning; a young one (another process may be creating it) stays,
 * and so does one whose records this code does not read (never taken for a
 * cut file).
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "embedded_guard.h"
#include "imprint/log.h"

struct gx {
	char root[64], tokens[128], copy[128], quarantine[128], dir[192];
};

static int warnings;
static char last_warning[1024];

static void sink(void *arg, enum imp_log_level level, const char *prog,
		 const char *level_name, const char *msg)
{
	(void)arg;
	(void)prog;
	(void)level_name;
	if (level <= IMP_LOG_WARN) {
		warnings++;
		snprintf(last_warning, sizeof(last_warning), "%s", msg);
	}
}

static void put(const struct gx *g, const char *name, const char *bytes, size_t n,
		time_t age)
{
	char path[320];
	struct timeval tv[2];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", g->dir, name);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(bytes, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
	gettimeofday(&tv[0], NULL);
	tv[0].tv_sec -= age;
	tv[1] = tv[0];
	assert_int_equal(utimes(path, tv), 0);
}

static bool exists(const char *dir, const char *name)
{
	char path[320];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return lstat(path, &st) == 0;
}

static int gx_setup(void **state)
{
	struct gx *g = calloc(1, sizeof(*g));

	if (!g)
		return -1;
	snprintf(g->root, sizeof(g->root), "/tmp/imprint-guard-XXXXXX");
	if (!mkdtemp(g->root))
		return -1;
	snprintf(g->tokens, sizeof(g->tokens), "%s/tokens", g->root);
	snprintf(g->copy, sizeof(g->copy), "%s/tokens.copy", g->root);
	snprintf(g->quarantine, sizeof(g->quarantine), "%s/tokens.quarantine/u1", g->root);
	snprintf(g->dir, sizeof(g->dir), "%s/u1", g->tokens);
	if (mkdir(g->tokens, 0700) != 0 || mkdir(g->dir, 0700) != 0)
		return -1;
	*state = g;
	return 0;
}

static int gx_teardown(void **state)
{
	struct gx *g = *state;
	char cmd[128];

	imp_log_set_sink(NULL, NULL);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g->root);
	if (system(cmd) != 0)
		return -1;
	free(g);
	return 0;
}

static void test_empty_object_quarantined_once(void **state)
{
	struct gx *g = *state;

	put(g, "old.object", "", 0, 3600);
	warnings = 0;
	imp_log_set_sink(sink, NULL);
	assert_int_equal(hsm_guard_sync(g->tokens, g->copy, NULL), IMP_OK);
	assert_int_equal(warnings, 1);
	assert_non_null(strstr(last_warning, "old.object"));
	assert_non_null(strstr(last_warning, "the disk was full"));
	assert_non_null(strstr(last_warning, "tokens.quarantine/u1/old.object"));
	assert_false(exists(g->dir, "old.object"));
	assert_true(exists(g->quarantine, "old.object"));
	/* Once: the next start finds nothing to say. */
	assert_int_equal(hsm_guard_sync(g->tokens, g->copy, NULL), IMP_OK);
	assert_int_equal(warnings, 1);
	assert_true(exists(g->quarantine, "old.object"));
}

static void test_young_empty_object_left_alone(void **state)
{
	struct gx *g = *state;

	put(g, "new.object", "", 0, 0);
	warnings = 0;
	imp_log_set_sink(sink, NULL);
	assert_int_equal(hsm_guard_sync(g->tokens, g->copy, NULL), IMP_OK);
	assert_int_equal(warnings, 0);
	assert_true(exists(g->dir, "new.object"));
	assert_false(exists(g->quarantine, "new.object"));
}

/* Big-endian u64 at p. */
static void be64_put(char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (char)(v & 0xff);
}

static void test_cut_objects_moved_after_grace(void **state)
{
	struct gx *g = *state;
	char header[8], mid[8 + 8 + 8 + 8 + 10];

	be64_put(header, 3);
	/* generation, then a byte-string attribute of 100 bytes cut after 10 */
	memset(mid, 'k', sizeof(mid));
	be64_put(mid, 3);
	be64_put(mid + 8, 0x11);
	be64_put(mid + 16, 3);
	be64_put(mid + 24, 100);
	put(g, "gen.object", "\0\0\0\0\0", 5, 3600);
	put(g, "header.object", header, sizeof(header), 3600);
	put(g, "mid.object", mid, sizeof(mid), 3600);
	warnings = 0;
	imp_log_set_sink(sink, NULL);
	assert_int_equal(hsm_guard_sync(g->tokens, g->copy, NULL), IMP_OK);
	assert_int_equal(warnings, 3);
	assert_non_null(strstr(last_warning, "was cut short and had no verified copy"));
	assert_non_null(strstr(last_warning, "tokens.quarantine/u1/"));
	assert_false(exists(g->dir, "gen.object"));
	assert_false(exists(g->dir, "header.object"));
	assert_false(exists(g->dir, "mid.object"));
	assert_true(exists(g->quarantine, "gen.object"));
	assert_true(exists(g->quarantine, "header.object"));
	assert_true(exists(g->quarantine, "mid.object"));
	/* Once: the next start finds nothing to say. */
	assert_int_equal(hsm_guard_sync(g->tokens, g->copy, NULL), IMP_OK);
	assert_int_equal(warnings, 3);
}

static void test_young_cut_object_left_alone(void **state)
{
	struct gx *g = *state;
	char header[8];

	be64_put(header, 1);
	put(g, "cut.object", header, sizeof(header), 0);
	warnings = 0;
	imp_log_set_sink(sink, NULL);
	assert_int_equal(hsm_guard_sync(g->tokens, g->copy, NULL), IMP_OK);
	assert_int_equal(warnings, 1);
	assert_non_null(strstr(last_warning, "cut.object is cut short"));
	assert_non_null(strstr(last_warning, "moves it out of"));
	assert_true(exists(g->dir, "cut.object"));
	assert_false(exists(g->quarantine, "cut.object"));
}

/* A cut file that is locked (softhsm writing it, however long paused) or
 * whose time is in the future (a clock stepped back) is not moved. */
static void test_cut_object_in_use_or_future_left_alone(void **state)
{
	struct gx *g = *state;
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	char header[8], path[320];
	int fd;

	be64_put(header, 1);
	put(g, "held.object", header, sizeof(header), 3600);
	put(g, "held.lock", "", 0, 3600);
	put(g, "future.object", header, sizeof(header), -3600);
	snprintf(path, sizeof(path), "%s/held.lock", g->dir);
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(fcntl(fd, F_OFD_SETLK, &fl), 0);
	imp_log_set_sink(sink, NULL);
	assert_int_equal(hsm_guard_sync(g->tokens, g->copy, NULL), IMP_OK);
	assert_true(exists(g->dir, "held.object"));
	assert_true(exists(g->dir, "future.object"));
	assert_false(exists(g->quarantine, "held.object"));
	assert_false(exists(g->quarantine, "future.object"));
	/* the lock gone, the held one is what a stop left: moved */
	close(fd);
	assert_int_equal(hsm_guard_sync(g->tokens, g->copy, NULL), IMP_OK);
	assert_false(exists(g->dir, "held.object"));
	assert_true(exists(g->quarantine, "held.object"));
	assert_true(exists(g->dir, "future.object"));
}

/* A record kind this code does not read is another format, not a cut. */
static void test_unknown_record_kind_never_moved(void **state)
{
	struct gx *g = *state;
	char other[8 + 8 + 8 + 4];

	memset(other, 0, sizeof(other));
	be64_put(other, 2);
	be64_put(other + 8, 0x100);
	be64_put(other + 16, 9);
	put(g, "other.object", other, sizeof(other), 3600);
	assert_false(hsm_guard_object_cut((const uint8_t *)other, sizeof(other)));
	assert_false(hsm_guard_object_sound((const uint8_t *)other, sizeof(other), NULL, 0, NULL));
	warnings = 0;
	imp_log_set_sink(sink, NULL);
	assert_int_equal(hsm_guard_sync(g->tokens, g->copy, NULL), IMP_OK);
	assert_int_equal(warnings, 1);
	assert_non_null(strstr(last_warning, "does not read"));
	assert_true(exists(g->dir, "other.object"));
	assert_false(exists(g->quarantine, "other.object"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_empty_object_quarantined_once, gx_setup,
						gx_teardown),
		cmocka_unit_test_setup_teardown(test_young_empty_object_left_alone, gx_setup,
						gx_teardown),
		cmocka_unit_test_setup_teardown(test_cut_objects_moved_after_grace, gx_setup,
						gx_teardown),
		cmocka_unit_test_setup_teardown(test_young_cut_object_left_alone, gx_setup,
						gx_teardown),
		cmocka_unit_test_setup_teardown(test_cut_object_in_use_or_future_left_alone,
						gx_setup, gx_teardown),
		cmocka_unit_test_setup_teardown(test_unknown_record_kind_never_moved, gx_setup,
						gx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
