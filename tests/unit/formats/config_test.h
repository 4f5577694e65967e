/*
 * Shared by the station configuration's unit tests: a temporary folder
 * holding station.json for each test file, written and loaded from text.
 */
#ifndef CONFIG_TEST_H
#define CONFIG_TEST_H

#include <stdio.h>
#include <unistd.h>

#include "fmt_test.h"

#include "formats/config.h"

static char config_dir[] = "/tmp/fmt-config-XXXXXX";
static char config_file[64];

static inline int config_setup(void **state)
{
	(void)state;
	if (!mkdtemp(config_dir))
		return -1;
	snprintf(config_file, sizeof(config_file), "%s/station.json", config_dir);
	return 0;
}

static inline int config_teardown(void **state)
{
	(void)state;
	unlink(config_file);
	rmdir(config_dir);
	return 0;
}

/* Write text to the temporary station.json and load it. */
static inline imp_err load_text(const char *text, struct fmt_config *cfg,
				char err[FMT_CONFIG_ERR_MAX])
{
	FILE *f = fopen(config_file, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return fmt_config_load(config_file, cfg, err);
}

/* The text is refused with exactly this message. */
static inline void expect_error(const char *text, const char *message)
{
	struct fmt_config cfg;
	char err[FMT_CONFIG_ERR_MAX];

	assert_int_equal(load_text(text, &cfg, err), IMP_ERR_CONFIG);
	assert_string_equal(err, message);
	fmt_config_release(&cfg);
}

#endif
