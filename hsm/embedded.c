/*
 * The embedded default: a SoftHSM2 token "imprint" in the station's data
 * directory, with its own softhsm2.conf (the system one is never touched)
 * and random PINs in a 0600 pins file. Layout and pins file format: hsm.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "embedded_guard.h"
#include "hsm_int.h"
#include "imprint/log.h"
#include "imprint/util.h"

#define PIN_BYTES 32                  /* persisted: 64 hex digits per PIN */
#define PINS_FILE_MAX 256

struct paths {
	char dir[PATH_MAX];
	char tokens[PATH_MAX];
	char conf[PATH_MAX];
	char pins[PATH_MAX];
	char copy[PATH_MAX];
};

static imp_err paths_make(const char *data_dir, struct paths *p)
{
	char abs[PATH_MAX];

	if (!data_dir || !*data_dir)
		return IMP_ERR_CONFIG;
	if (data_dir[0] == '/') {
		if (snprintf(abs, sizeof(abs), "%s", data_dir) >= (int)sizeof(abs))
			return IMP_ERR_CONFIG;
	} else {
		char cwd[PATH_MAX];

		/* SoftHSM resolves a relative tokendir against its own cwd. */
		if (!getcwd(cwd, sizeof(cwd)) ||
		    snprintf(abs, sizeof(abs), "%s/%s", cwd, data_dir) >= (int)sizeof(abs))
			return IMP_ERR_CONFIG;
	}
	if (snprintf(p->dir, sizeof(p->dir), "%s/hsm", abs) >= (int)sizeof(p->dir) ||
	    snprintf(p->tokens, sizeof(p->tokens), "%s/tokens", p->dir) >= (int)sizeof(p->tokens) ||
	    snprintf(p->conf, sizeof(p->conf), "%s/softhsm2.conf", p->dir) >= (int)sizeof(p->conf) ||
	    snprintf(p->pins, sizeof(p->pins), "%s/pins", p->dir) >= (int)sizeof(p->pins) ||
	    snprintf(p->copy, sizeof(p->copy), "%s/tokens.copy", p->dir) >= (int)sizeof(p->copy)) {
		IMP_ERROR("data directory path too long: %s", data_dir);
		return IMP_ERR_CONFIG;
	}
	return IMP_OK;
}

static const char *embedded_module;
static pthread_once_t embedded_once = PTHREAD_ONCE_INIT;

static void embedded_module_pick(void)
{
	char *path = NULL;

	/* Only the registration file is read: nothing is loaded here. */
	embedded_module = HSM_EMBEDDED_MODULE_PATH;
	if (hsm_p11kit_resolve(HSM_EMBEDDED_MODULE, &path, NULL) == IMP_OK)
		embedded_module = HSM_EMBEDDED_MODULE;
	free(path);
}

const char *hsm_embedded_module(void)
{
	pthread_once(&embedded_once, embedded_module_pick);
	return embedded_module;
}

bool hsm_embedded_exists(const char *data_dir)
{
	struct paths p;
	struct stat st;

	return paths_make(data_dir, &p) == IMP_OK && lstat(p.pins, &st) == 0;
}

/* The configuration the embedded token needs: its tokendir is this data
 * directory's. Returns the length, or -1 if it does not fit. */
static int conf_text(const struct paths *p, char *out, size_t cap)
{
	int len = snprintf(out, cap,
			   "# SoftHSM2 configuration of imprint's embedded hsm (generated)\n"
			   "directories.tokendir = %s\n"
			   "objectstore.backend = file\n"
			   "log.level = ERROR\n"
			   "slots.removable = false\n", p->tokens);

	return len < 0 || (size_t)len >= cap ? -1 : len;
}

/* x and y are the same directory (by device and inode). */
static bool same_dir(const char *x, const char *y)
{
	struct stat a, b;

	return stat(x, &a) == 0 && stat(y, &b) == 0 && a.st_dev == b.st_dev &&
	       a.st_ino == b.st_ino;
}

/*
 * softhsm2.conf is generated and names the token directory by its absolute
 * path: a data directory copied or moved keeps the old one, and SoftHSM
 * would open (and write) the other directory's token. Anything but the
 * text this directory needs (another directory, a damaged or missing file)
 * is written again, with a warning; the same directory by another spelling
 * (a trailing slash, a symlink) is left as it is. Under the guard lock.
 */
static imp_err conf_ensure(const struct paths *p)
{
	static const char key[] = "directories.tokendir = ";
	char want[3 * PATH_MAX], again[3 * PATH_MAX], named[PATH_MAX] = "";
	uint8_t *have = NULL;
	size_t n = 0;
	int len = conf_text(p, want, sizeof(want));
	const char *dir;
	imp_err rc;

	if (len < 0)
		return IMP_ERR_CONFIG;
	rc = imp_read_file(p->conf, &have, &n);
	if (rc == IMP_OK && n == (size_t)len && memcmp(have, want, n) == 0) {
		free(have);
		return IMP_OK;
	}
	dir = rc == IMP_OK ? strstr((const char *)have, key) : NULL;
	if (dir) {
		dir += sizeof(key) - 1;
		snprintf(named, sizeof(named), "%.*s", (int)strcspn(dir, "\n"), dir);
	}
	if (rc != IMP_OK) {
		IMP_WARN("%s was missing: written again for %s", p->conf, p->tokens);
	} else if (named[0] && same_dir(named, p->tokens)) {
		struct paths spelled = *p;
		int alen;

		snprintf(spelled.tokens, sizeof(spelled.tokens), "%s", named);
		alen = conf_text(&spelled, again, sizeof(again));
		if (alen >= 0 && n == (size_t)alen && memcmp(have, again, n) == 0) {
			free(have);
			return IMP_OK;
		}
		IMP_WARN("%s was damaged: written again for %s", p->conf, p->tokens);
	} else if (named[0]) {
		IMP_WARN("%s named the token directory %s (the data directory was copied or "
			 "moved): written again for %s, so that this station opens its own token",
			 p->conf, named, p->tokens);
	} else {
		IMP_WARN("%s was damaged: written again for %s", p->conf, p->tokens);
	}
	free(have);
	return imp_write_file_atomic(p->conf, want, (size_t)len, 0600);
}

static imp_err random_pin_hex(char out[2 * PIN_BYTES + 1])
{
	uint8_t raw[PIN_BYTES];

	if (RAND_priv_bytes(raw, sizeof(raw)) != 1) {
		IMP_ERROR("the openssl random generator failed");
		return IMP_ERR_CRYPTO;
	}
	imp_hex_encode(raw, sizeof(raw), out);
	imp_wipe(raw, sizeof(raw));
	return IMP_OK;
}

imp_err hsm_embedded_create(const char *data_dir)
{
	struct paths p;
	char conf[3 * PATH_MAX], so[2 * PIN_BYTES + 1], user[2 * PIN_BYTES + 1];
	char pins[PINS_FILE_MAX];
	struct hsm_pin_source so_src = { .kind = HSM_PIN_BUFFER, .buf = so, .len = 2 * PIN_BYTES };
	struct hsm_pin_source user_src = { .kind = HSM_PIN_BUFFER, .buf = user,
					   .len = 2 * PIN_BYTES };
	struct hsm_token_info *tokens = NULL;
	CK_FUNCTION_LIST *fl = NULL;
	const char *module = hsm_embedded_module();
	size_t n_tokens = 0, free_slot = SIZE_MAX;
	int pins_written = 0, len, lock_fd = -1;
	struct stat st;
	imp_err rc;

	rc = paths_make(data_dir, &p);
	if (rc != IMP_OK)
		return rc;
	if (lstat(p.pins, &st) == 0) {
		IMP_ERROR("an embedded hsm already exists in %s", p.dir);
		return IMP_ERR_EXISTS;
	}
	rc = imp_mkdir_p(p.tokens, 0700);
	if (rc != IMP_OK)
		return rc;
	if (chmod(p.dir, 0700) != 0 || chmod(p.tokens, 0700) != 0) {
		IMP_ERROR("cannot set mode 0700 on %s: %s", p.tokens, strerror(errno));
		return IMP_ERR_IO;
	}
	/* C_InitToken and the SO login rewrite token.object: inside the guard. */
	rc = hsm_guard_lock(p.dir, &lock_fd);
	if (rc != IMP_OK)
		return rc;
	len = conf_text(&p, conf, sizeof(conf));
	rc = len < 0 ? IMP_ERR_CONFIG : imp_write_file_atomic(p.conf, conf, (size_t)len, 0600);
	if (rc != IMP_OK)
		goto cleanup;
	if (setenv("SOFTHSM2_CONF", p.conf, 1) != 0) {
		rc = IMP_ERR_NOMEM;
		goto cleanup;
	}
	/* Held for the whole function, so that token_init below shares the
	 * same C_Initialize (and the same configuration). */
	rc = hsm_module_get(&(struct hsm_module){ module, NULL }, p.conf, &fl);
	if (rc != IMP_OK)
		goto cleanup;
	rc = hsm_token_list(module, &tokens, &n_tokens);
	if (rc != IMP_OK)
		goto cleanup;
	for (size_t i = 0; i < n_tokens; i++) {
		if (tokens[i].initialized && strcmp(tokens[i].label, HSM_EMBEDDED_TOKEN) == 0) {
			IMP_ERROR("%s already holds a token \"%s\" but no pins file (lost, or not "
				  "restored with the tokens): restore %s, pins and tokens together, "
				  "from its backup; remove it only if nothing was ever made with that "
				  "token (a new one starts a new organisation hierarchy, which "
				  "nothing made before chains to)", p.tokens, HSM_EMBEDDED_TOKEN,
				  p.dir);
			rc = IMP_ERR_EXISTS;
			goto cleanup;
		}
		if (!tokens[i].initialized && free_slot == SIZE_MAX)
			free_slot = i;
	}
	if (free_slot == SIZE_MAX) {
		IMP_ERROR("softhsm offers no free slot in %s", p.tokens);
		rc = IMP_ERR_HSM;
		goto cleanup;
	}
	rc = random_pin_hex(so);
	if (rc != IMP_OK)
		goto cleanup;
	rc = random_pin_hex(user);
	if (rc != IMP_OK)
		goto cleanup;
	len = snprintf(pins, sizeof(pins), "so=%s\nuser=%s\n", so, user);
	rc = imp_write_secret_file(p.pins, pins, (size_t)len);
	if (rc != IMP_OK)
		goto cleanup;
	pins_written = 1;
	rc = hsm_token_init(module, tokens[free_slot].slot_id, HSM_EMBEDDED_TOKEN, &so_src,
			    &user_src, NULL);
	if (rc != IMP_OK)
		goto cleanup;
	/* The first verified copy: from here on a stop during login is repaired. */
	rc = hsm_guard_sync(p.tokens, p.copy, NULL);
	if (rc != IMP_OK)
		goto cleanup;
	IMP_INFO("created the embedded hsm: token \"%s\" in %s", HSM_EMBEDDED_TOKEN, p.tokens);
cleanup:
	if (rc != IMP_OK && pins_written)
		unlink(p.pins);
	imp_wipe(so, sizeof(so));
	imp_wipe(user, sizeof(user));
	imp_wipe(pins, sizeof(pins));
	free(tokens);
	hsm_module_put(fl);
	hsm_guard_unlock(lock_fd);
	return rc;
}

/* Read and check the pins file; user PIN into user (wiped by the caller). */
static imp_err pins_read(const char *path, char *user, size_t cap, size_t *user_len)
{
	char buf[PINS_FILE_MAX];
	struct stat st;
	ssize_t got;
	char *line, *end;
	imp_err rc = IMP_OK;
	int fd;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT) {
			IMP_ERROR("no embedded hsm (%s missing)", path);
			return IMP_ERR_NOT_FOUND;
		}
		IMP_ERROR("cannot open %s: %s", path, strerror(errno));
		return errno == ELOOP ? IMP_ERR_INSECURE : IMP_ERR_IO;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 0177)) {
		IMP_ERROR("%s must be a regular file of mode 0600 or stricter: chmod 600 %s",
			  path, path);
		rc = IMP_ERR_INSECURE;
		goto cleanup;
	}
	got = read(fd, buf, sizeof(buf) - 1);
	if (got < 0) {
		rc = IMP_ERR_IO;
		goto cleanup;
	}
	buf[got] = '\0';
	if (got == 0) {
		IMP_ERROR("%s is empty: the embedded token cannot be opened without its pins "
			  "(a full disk or an interrupted copy loses them); restore the data "
			  "directory's hsm folder, pins and tokens together, from its backup", path);
		rc = IMP_ERR_CONFIG;
		goto cleanup;
	}
	line = strstr(buf, "\nuser=");
	if (strncmp(buf, "so=", 3) != 0 || !line) {
		IMP_ERROR("%s is not an imprint pins file (so=...\\nuser=...\\n)", path);
		rc = IMP_ERR_CONFIG;
		goto cleanup;
	}
	line += 6;
	end = strchr(line, '\n');
	if (!end || end == line || (size_t)(end - line) >= cap) {
		IMP_ERROR("%s has no valid user pin line", path);
		rc = IMP_ERR_CONFIG;
		goto cleanup;
	}
	*user_len = (size_t)(end - line);
	memcpy(user, line, *user_len);
	user[*user_len] = '\0';
cleanup:
	imp_wipe(buf, sizeof(buf));
	close(fd);
	return rc;
}

imp_err hsm_embedded_open(const char *data_dir, struct hsm **out)
{
	struct paths p;
	char user[HSM_PIN_MAX + 1];
	struct hsm_pin_source src = { .kind = HSM_PIN_BUFFER, .buf = user };
	const char *old_env = getenv("SOFTHSM2_CONF");
	char *old = old_env ? strdup(old_env) : NULL;
	int lock_fd = -1;
	imp_err rc;

	*out = NULL;
	rc = paths_make(data_dir, &p);
	if (rc != IMP_OK)
		goto cleanup;
	rc = pins_read(p.pins, user, sizeof(user), &src.len);
	if (rc != IMP_OK)
		goto cleanup;
	/*
	 * The protected window: no other imprint process initialises or logs in
	 * (so none reads token.object while SoftHSM rewrites it), and a file a
	 * stopped process left damaged is restored before SoftHSM reads it.
	 */
	rc = hsm_guard_lock(p.dir, &lock_fd);
	if (rc != IMP_OK)
		goto cleanup;
	rc = hsm_guard_sync(p.tokens, p.copy, NULL);
	if (rc == IMP_OK)
		rc = conf_ensure(&p);
	if (rc != IMP_OK)
		goto cleanup;
	/* SoftHSM answers a missing token directory with CKR_GENERAL_ERROR. */
	if (access(p.tokens, F_OK) != 0 && errno == ENOENT) {
		IMP_ERROR("the embedded token's directory %s is missing", p.tokens);
		rc = IMP_ERR_NOT_FOUND;
		goto cleanup;
	}
	if (setenv("SOFTHSM2_CONF", p.conf, 1) != 0) {
		rc = IMP_ERR_NOMEM;
		goto cleanup;
	}
	rc = hsm_open_conf(&(struct hsm_module){ hsm_embedded_module(), NULL }, p.conf,
			   HSM_EMBEDDED_TOKEN, &src, out);
	if (rc != IMP_OK) {
		if (old)
			setenv("SOFTHSM2_CONF", old, 1);
		else
			unsetenv("SOFTHSM2_CONF");
		goto cleanup;
	}
	/* The login rewrote token.object: keep the copy in step if it changed. */
	rc = hsm_guard_sync(p.tokens, p.copy, NULL);
	if (rc == IMP_OK) {
		(*out)->guard_dir = strdup(p.dir);
		if (!(*out)->guard_dir)
			rc = IMP_ERR_NOMEM;
	}
	if (rc != IMP_OK) {
		hsm_close(*out);
		*out = NULL;
	}
cleanup:
	hsm_guard_unlock(lock_fd);
	imp_wipe(user, sizeof(user));
	free(old);
	return rc;
}

imp_err hsm_embedded_use_conf(const char *data_dir)
{
	struct paths p;
	int lock_fd = -1;
	imp_err rc;

	rc = paths_make(data_dir, &p);
	if (rc != IMP_OK)
		return rc;
	if (hsm_embedded_exists(data_dir)) {
		rc = hsm_guard_lock(p.dir, &lock_fd);
		if (rc == IMP_OK)
			rc = conf_ensure(&p);
		hsm_guard_unlock(lock_fd);
		if (rc != IMP_OK)
			return rc;
	}
	return setenv("SOFTHSM2_CONF", p.conf, 1) == 0 ? IMP_OK : IMP_ERR_NOMEM;
}
