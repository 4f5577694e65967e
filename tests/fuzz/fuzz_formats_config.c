/*
 * libFuzzer target: the station configuration (formats/config.c) through
 * the table-driven JSON reader (formats/jsonread.c) on arbitrary bytes,
 * given to fmt_config_load as a file (a memfd). Checks: no crash, no leak
 * (fmt_config_release frees all, also after a refusal); a refusal is
 * IMP_ERR_CONFIG with a message; an accepted file has 1..64
 * fixtures, each with a name and a probe, and the subject template.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "formats/config.h"
#include "imprint/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	struct fmt_config cfg;
	char err[FMT_CONFIG_ERR_MAX];
	char path[64];
	imp_err rc;

	if (fd < 0) {
		imp_log_set_level(IMP_LOG_QUIET);
		fd = memfd_create("station.json", 0);
		if (fd < 0)
			abort();
	}
	if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	rc = fmt_config_load(path, &cfg, err);
	if (rc == IMP_OK) {
		if (cfg.fixture_count < 1 || cfg.fixture_count > 64 || !cfg.certificate.subject_count)
			abort();
		for (size_t i = 0; i < cfg.fixture_count; i++)
			if (!cfg.fixtures[i].name || !cfg.fixtures[i].probe)
				abort();
	} else if (rc == IMP_ERR_CONFIG) {
		if (!err[0])
			abort();
	} else if (rc != IMP_ERR_NOMEM) {
		abort();
	}
	fmt_config_release(&cfg);
	return 0;
}
