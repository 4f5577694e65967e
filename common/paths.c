#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "imprint/paths.h"

/* Set by common/CMakeLists.txt for this file alone. */
#ifndef IMPRINT_BIN_TO_DATA
#error "IMPRINT_BIN_TO_DATA (bindir to datadir/imprint, relative) is not defined"
#endif
#ifndef IMPRINT_BUILD_DIR
#error "IMPRINT_BUILD_DIR is not defined"
#endif
#ifndef IMPRINT_SOURCE_DIR
#error "IMPRINT_SOURCE_DIR is not defined"
#endif

imp_err imp_self_dir(char *out, size_t cap)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n <= 0)
		return IMP_ERR_IO;
	self[n] = '\0';
	slash = strrchr(self, '/');
	if (!slash)
		return IMP_ERR_IO;
	if (slash == self)
		slash++; /* a program in "/" */
	*slash = '\0';
	if ((size_t)snprintf(out, cap, "%s", self) >= cap)
		return IMP_ERR_USAGE;
	return IMP_OK;
}

static bool is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* dir is the build tree or below it (both resolved; a deleted build tree
 * is not one). */
static bool in_build_tree(const char *dir)
{
	char build[PATH_MAX];
	size_t n;

	if (!realpath(IMPRINT_BUILD_DIR, build))
		return false;
	n = strlen(build);
	return strncmp(dir, build, n) == 0 && (dir[n] == '\0' || dir[n] == '/');
}

imp_err imp_data_dir(const char *installed, const char *in_source, char *out, size_t cap)
{
	char self[PATH_MAX], data[PATH_MAX + 64];
	imp_err rc = imp_self_dir(self, sizeof(self));

	if (rc != IMP_OK) {
		snprintf(out, cap, "BINDIR/%s/%s", IMPRINT_BIN_TO_DATA, installed);
		return IMP_ERR_NOT_FOUND;
	}
	snprintf(data, sizeof(data), "%s/%s", self, IMPRINT_BIN_TO_DATA);
	if (!is_dir(data) && in_build_tree(self)) {
		if ((size_t)snprintf(out, cap, "%s/%s", IMPRINT_SOURCE_DIR, in_source) >= cap)
			return IMP_ERR_USAGE;
		return is_dir(out) ? IMP_OK : IMP_ERR_NOT_FOUND;
	}
	if ((size_t)snprintf(out, cap, "%s/%s", data, installed) >= cap)
		return IMP_ERR_USAGE;
	return is_dir(out) ? IMP_OK : IMP_ERR_NOT_FOUND;
}

bool imp_json_in_dir(const char *dir, size_t dlen, const char *name, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%.*s/%s.json", (int)dlen, dir, name);

	return n > 0 && (size_t)n < cap && access(out, R_OK) == 0;
}

bool imp_json_in_path(const char *list, const char *name, char *out, size_t cap)
{
	for (const char *p = list; p && *p;) {
		size_t len = strcspn(p, ":");

		if (len && imp_json_in_dir(p, len, name, out, cap))
			return true;
		p += len;
		if (*p == ':')
			p++;
	}
	return false;
}
