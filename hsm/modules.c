/*
 * p11-kit module names without loading every module: the registration
 * files (NAME.module, pkcs11.conf(5)) are read here and only the named
 * module is loaded, by its path.
 *
 * Where p11-kit 0.24 looks, highest precedence first (a file of the same
 * name further down is ignored):
 *   ~/.config/pkcs11/modules    unless /etc/pkcs11/pkcs11.conf says
 *                               "user-config: none", or the program runs
 *                               as root (or setuid): p11-kit skips it then
 *   /etc/pkcs11/modules
 *   /usr/share/p11-kit/modules  (packages)
 * A module whose file says "enable-in:" without "imprint", or names
 * "imprint" in "disable-in:", is still loadable by name: imprint names one
 * module explicitly, and those options are for programs that load them all.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hsm_int.h"
#include "imprint/log.h"
#include "imprint/util.h"

#define MODULE_SUFFIX ".module"
#define LINE_MAX_LEN 4096

/* Configuration directories, highest precedence first; "~/" is $HOME. */
static const char *const config_dirs[] = {
	"~/.config/pkcs11/modules",
	"/etc/pkcs11/modules",
	"/usr/share/p11-kit/modules",
};
static const char system_conf[] = "/etc/pkcs11/pkcs11.conf";

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/*
 * Value of `key` in a p11-kit configuration file ("key: value" lines, '#'
 * comments), malloc'ed; NULL if absent. IMP_ERR_NOT_FOUND if the file does
 * not exist.
 */
static imp_err conf_value(const char *path, const char *key, char **out)
{
	char line[LINE_MAX_LEN];
	size_t kl = strlen(key);
	imp_err rc = IMP_OK;
	FILE *f;

	*out = NULL;
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? IMP_ERR_NOT_FOUND : IMP_ERR_IO;
	while (fgets(line, sizeof(line), f)) {
		char *l = trim(line);

		if (*l == '#' || strncmp(l, key, kl) != 0 || l[kl] != ':')
			continue;
		free(*out);
		*out = strdup(trim(l + kl + 1));
		if (!*out) {
			rc = IMP_ERR_NOMEM;
			break;
		}
	}
	fclose(f);
	return rc;
}

static bool user_config_allowed(void)
{
	char *v = NULL;
	bool allowed;

	if (getuid() == 0 || geteuid() != getuid())
		return false; /* as p11-kit: "skipping user config in program running as root" */
	if (conf_value(system_conf, "user-config", &v) != IMP_OK || !v)
		return true; /* p11-kit's default is "merge" */
	allowed = strcmp(v, "none") != 0;
	free(v);
	return allowed;
}

/* Directory i of config_dirs, with ~ expanded; false if it does not apply. */
static bool config_dir(size_t i, char *out, size_t cap)
{
	const char *d = config_dirs[i];

	if (strncmp(d, "~/", 2) == 0) {
		const char *home = getenv("HOME");

		if (!home || !*home || !user_config_allowed())
			return false;
		return snprintf(out, cap, "%s/%s", home, d + 2) < (int)cap;
	}
	return snprintf(out, cap, "%s", d) < (int)cap;
}

static bool plain_name(const char *name)
{
	if (!*name || name[0] == '.')
		return false;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'))
			return false;
	return true;
}

imp_err hsm_p11kit_resolve(const char *name, char **path, char **init_reserved)
{
	char dir[4096], file[4200];
	imp_err rc;

	*path = NULL;
	if (init_reserved)
		*init_reserved = NULL;
	if (!plain_name(name))
		return IMP_ERR_NOT_FOUND;
	for (size_t i = 0; i < IMP_ARRAY_SIZE(config_dirs); i++) {
		char *remote = NULL;

		if (!config_dir(i, dir, sizeof(dir)))
			continue;
		snprintf(file, sizeof(file), "%s/%s%s", dir, name, MODULE_SUFFIX);
		rc = conf_value(file, "module", path);
		if (rc == IMP_ERR_NOT_FOUND)
			continue;
		if (rc == IMP_OK)
			rc = conf_value(file, "remote", &remote);
		if (rc == IMP_OK && !*path && remote) {
			IMP_ERROR("p11-kit module %s (%s) is a remote module (remote: %s): give "
				  "imprint the client module instead, p11-kit-client.so with "
				  "P11_KIT_SERVER_ADDRESS set (docs/HSM.md)", name, file, remote);
			rc = IMP_ERR_CONFIG;
		} else if (rc == IMP_OK && (!*path || !**path)) {
			IMP_ERROR("p11-kit module file %s has no 'module:' line", file);
			rc = IMP_ERR_CONFIG;
		}
		free(remote);
		if (rc == IMP_OK && init_reserved)
			rc = conf_value(file, "x-init-reserved", init_reserved);
		if (rc != IMP_OK) {
			free(*path);
			*path = NULL;
			if (init_reserved) {
				free(*init_reserved);
				*init_reserved = NULL;
			}
		}
		return rc;
	}
	return IMP_ERR_NOT_FOUND;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

imp_err hsm_module_names(char ***out, size_t *n_out)
{
	char **names = NULL;
	size_t n = 0, cap = 0;
	char dir[4096];
	imp_err rc = IMP_OK;

	*out = NULL;
	*n_out = 0;
	for (size_t i = 0; i < IMP_ARRAY_SIZE(config_dirs) && rc == IMP_OK; i++) {
		struct dirent *e;
		DIR *d;

		if (!config_dir(i, dir, sizeof(dir)))
			continue;
		d = opendir(dir);
		if (!d)
			continue;
		while ((e = readdir(d)) != NULL) {
			size_t l = strlen(e->d_name), sl = strlen(MODULE_SUFFIX);
			bool dup = false;
			char *nm;

			if (l <= sl || strcmp(e->d_name + l - sl, MODULE_SUFFIX) != 0)
				continue;
			nm = strndup(e->d_name, l - sl);
			if (!nm) {
				rc = IMP_ERR_NOMEM;
				break;
			}
			for (size_t k = 0; k < n && !dup; k++)
				dup = strcmp(names[k], nm) == 0;
			if (dup || !plain_name(nm)) {
				free(nm);
				continue;
			}
			if (n == cap) {
				char **nn = realloc(names, (cap + 16) * sizeof(*names));

				if (!nn) {
					free(nm);
					rc = IMP_ERR_NOMEM;
					break;
				}
				names = nn;
				cap += 16;
			}
			names[n++] = nm;
		}
		closedir(d);
	}
	if (rc != IMP_OK) {
		hsm_module_names_free(names, n);
		return rc;
	}
	if (n > 1)
		qsort(names, n, sizeof(*names), name_cmp);
	*out = names;
	*n_out = n;
	return IMP_OK;
}

void hsm_module_names_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}
