/*
 * Outputs of the file exporters: complete or absent (files_int.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files_int.h"
#include "formats/jws.h"
#include "imprint/log.h"

static bool exists(const char *path)
{
	struct stat sb;

	return lstat(path, &sb) == 0;
}

/* The first bytes of an SQLite database (the journal, a registry). */
static bool is_database(const char *path)
{
	static const char magic[16] = "SQLite format 3";
	char head[16];
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	bool db = false;

	if (fd >= 0) {
		db = read(fd, head, sizeof(head)) == (ssize_t)sizeof(head) &&
		     memcmp(head, magic, sizeof(magic)) == 0;
		close(fd);
	}
	return db;
}

static imp_err refuse_existing(const char *path, bool replace, bool dir)
{
	struct stat sb;

	if (lstat(path, &sb) != 0)
		return IMP_OK;
	/* --force replaces an export's own output, nothing else (a directory
	 * for the exporters that write one, checked by exp_outdir_open). */
	if (!S_ISREG(sb.st_mode) && !(dir && S_ISDIR(sb.st_mode))) {
		IMP_ERROR("%s exists and is not a regular file: --force replaces only a file an "
			  "export wrote; give another --out", path);
		return IMP_ERR_EXISTS;
	}
	if (is_database(path)) {
		IMP_ERROR("%s is an SQLite database (the journal, or a registry's): an export "
			  "never replaces it, also with --force; give another --out", path);
		return IMP_ERR_EXISTS;
	}
	if (replace)
		return IMP_OK;
	IMP_ERROR("%s exists: give --force to replace it, or another --out", path);
	return IMP_ERR_EXISTS;
}

imp_err exp_out_open(struct exp_out *out, const char *path, bool replace)
{
	imp_err rc;
	int fd;

	memset(out, 0, sizeof(*out));
	rc = refuse_existing(path, replace, false);
	if (rc != IMP_OK)
		return rc;
	out->path = strdup(path);
	if (!out->path || asprintf(&out->tmp, "%s.tmp.XXXXXX", path) < 0) {
		free(out->path);
		memset(out, 0, sizeof(*out));
		return IMP_ERR_NOMEM;
	}
	fd = mkstemp(out->tmp);
	if (fd < 0 || fchmod(fd, 0644) != 0 || !(out->f = fdopen(fd, "w"))) {
		IMP_ERROR("cannot create %s: %s", out->tmp, strerror(errno));
		if (fd >= 0) {
			close(fd);
			unlink(out->tmp);
		}
		free(out->tmp);
		free(out->path);
		memset(out, 0, sizeof(*out));
		return IMP_ERR_IO;
	}
	return IMP_OK;
}

static void out_release(struct exp_out *out)
{
	free(out->tmp);
	free(out->path);
	memset(out, 0, sizeof(*out));
}

imp_err exp_out_commit(struct exp_out *out)
{
	imp_err rc = IMP_OK;

	if (fflush(out->f) != 0 || fsync(fileno(out->f)) != 0 || ferror(out->f)) {
		IMP_ERROR("writing %s failed: %s", out->tmp, strerror(errno));
		rc = IMP_ERR_IO;
	}
	if (fclose(out->f) != 0 && rc == IMP_OK)
		rc = IMP_ERR_IO;
	out->f = NULL;
	if (rc == IMP_OK && rename(out->tmp, out->path) != 0) {
		IMP_ERROR("cannot rename %s to %s: %s", out->tmp, out->path, strerror(errno));
		rc = IMP_ERR_IO;
	}
	if (rc != IMP_OK)
		unlink(out->tmp);
	out_release(out);
	return rc;
}

void exp_out_abort(struct exp_out *out)
{
	if (out->f) {
		fclose(out->f);
		unlink(out->tmp);
	}
	out_release(out);
}

/* Remove the regular files of dir (one level: the exporters write no
 * sub-directories), then dir itself. */
static void remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (d) {
		while ((e = readdir(d))) {
			char *p;

			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			if (asprintf(&p, "%s/%s", dir, e->d_name) >= 0) {
				unlink(p);
				free(p);
			}
		}
		closedir(d);
	}
	rmdir(dir);
}

imp_err exp_outdir_open(struct exp_outdir *d, const char *path, bool replace)
{
	struct stat sb;
	imp_err rc;

	memset(d, 0, sizeof(*d));
	rc = refuse_existing(path, replace, true);
	if (rc != IMP_OK)
		return rc;
	if (lstat(path, &sb) == 0 && !S_ISDIR(sb.st_mode)) {
		IMP_ERROR("%s is not a directory: this exporter writes a directory of files; "
			  "give another --out", path);
		return IMP_ERR_EXISTS;
	}
	d->path = strdup(path);
	/* "dps/" is the directory dps: its temporary sibling is dps.tmp.XXXXXX */
	for (size_t n = d->path ? strlen(d->path) : 0; n > 1 && d->path[n - 1] == '/'; n--)
		d->path[n - 1] = '\0';
	if (!d->path || asprintf(&d->tmp, "%s.tmp.XXXXXX", d->path) < 0) {
		free(d->path);
		memset(d, 0, sizeof(*d));
		return IMP_ERR_NOMEM;
	}
	if (!mkdtemp(d->tmp) || chmod(d->tmp, 0755) != 0) {
		IMP_ERROR("cannot create %s: %s", d->tmp, strerror(errno));
		rmdir(d->tmp);
		free(d->tmp);
		free(d->path);
		memset(d, 0, sizeof(*d));
		return IMP_ERR_IO;
	}
	return IMP_OK;
}

imp_err exp_outdir_write(struct exp_outdir *d, const char *name, const char *text)
{
	size_t n = strlen(text);
	char *p = NULL;
	imp_err rc = IMP_OK;
	int fd = -1;

	if (strchr(name, '/') || asprintf(&p, "%s/%s", d->tmp, name) < 0)
		return strchr(name, '/') ? IMP_ERR_INTERNAL : IMP_ERR_NOMEM;
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, text, n) != (ssize_t)n || fsync(fd) != 0) {
		IMP_ERROR("cannot write %s: %s", p, strerror(errno));
		rc = IMP_ERR_IO;
	}
	if (fd >= 0 && close(fd) != 0 && rc == IMP_OK)
		rc = IMP_ERR_IO;
	free(p);
	return rc;
}

static void release_dir(struct exp_outdir *d)
{
	free(d->tmp);
	free(d->path);
	memset(d, 0, sizeof(*d));
}

imp_err exp_outdir_commit(struct exp_outdir *d)
{
	char *old = NULL;
	imp_err rc = IMP_OK;
	int fd = open(d->tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || fsync(fd) != 0) {
		IMP_ERROR("cannot sync %s: %s", d->tmp, strerror(errno));
		rc = IMP_ERR_IO;
	}
	if (fd >= 0)
		close(fd);
	if (rc == IMP_OK && exists(d->path)) {
		/* rename() replaces an empty directory: move the old one aside. */
		if (asprintf(&old, "%s.old.XXXXXX", d->path) < 0) {
			old = NULL;
			rc = IMP_ERR_NOMEM;
		} else if (!mkdtemp(old) || rename(d->path, old) != 0) {
			IMP_ERROR("cannot move %s aside: %s", d->path, strerror(errno));
			rmdir(old);
			free(old);
			old = NULL;
			rc = IMP_ERR_IO;
		}
	}
	if (rc == IMP_OK && rename(d->tmp, d->path) != 0) {
		IMP_ERROR("cannot rename %s to %s: %s", d->tmp, d->path, strerror(errno));
		rc = IMP_ERR_IO;
		if (old && rename(old, d->path) == 0) {
			free(old);
			old = NULL;
		}
	}
	if (old) {
		remove_dir(old);
		free(old);
	}
	if (rc != IMP_OK)
		remove_dir(d->tmp);
	release_dir(d);
	return rc;
}

void exp_outdir_abort(struct exp_outdir *d)
{
	if (d->tmp)
		remove_dir(d->tmp);
	release_dir(d);
}

char *exp_out_sibling(const char *path, const char *suffix)
{
	static const char *const exts[] = { ".jsonl", ".json", ".jws" };
	size_t n = strlen(path);
	char *out;

	for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
		size_t k = strlen(exts[i]);
		const char *slash = strrchr(path, '/');
		const char *base = slash ? slash + 1 : path;

		/* "dir/.json" keeps its name: there is no stem to take */
		if (n > k && (size_t)(path + n - base) > k && strcmp(path + n - k, exts[i]) == 0) {
			n -= k;
			break;
		}
	}
	if (asprintf(&out, "%.*s%s", (int)n, path, suffix) < 0)
		return NULL;
	return out;
}

const char *exp_str(const json_t *o, const char *k)
{
	const char *v = json_string_value(json_object_get(o, k));

	return v ? v : "";
}

char *exp_pem_of(const char *b64)
{
	size_t n = strlen(b64);
	char *out = malloc(n + n / 64 + 128);
	char *p = out;

	if (!out)
		return NULL;
	p += sprintf(p, "-----BEGIN CERTIFICATE-----\n");
	for (size_t i = 0; i < n; i += 64) {
		size_t k = n - i < 64 ? n - i : 64;

		memcpy(p, b64 + i, k);
		p += k;
		*p++ = '\n';
	}
	sprintf(p, "-----END CERTIFICATE-----\n");
	return out;
}

char *exp_json_text(const json_t *v, bool indent)
{
	char *body = json_dumps(v, (indent ? JSON_INDENT(2) : JSON_COMPACT) | JSON_PRESERVE_ORDER);
	char *out = NULL;

	if (body && asprintf(&out, "%s\n", body) < 0)
		out = NULL;
	free(body);
	return out;
}

imp_err exp_push_each(void *state, const struct exp_record *recs, size_t n,
		      struct exp_result *res, exp_push_one_fn one)
{
	for (size_t i = 0; i < n; i++) {
		json_t *payload = NULL;
		imp_err rc = fmt_jws_peek_payload(recs[i].jws, &payload);

		if (rc != IMP_OK) {
			res[i].status = EXP_REJECTED;
			snprintf(res[i].reason, sizeof(res[i].reason), "malformed JWS");
			continue;
		}
		rc = one(state, &recs[i], payload, &res[i]);
		json_decref(payload);
		if (rc != IMP_OK)
			return rc;
	}
	return IMP_OK;
}
