/*
 * The embedded token's guard. SoftHSM2 2.6.1 (file backend, the only one
 * Debian builds) rewrites token.object in place at every C_Login: it takes
 * an fcntl lock, ftruncate()s the file to 0, writes it through stdio,
 * releases the lock and only then fclose()s (which is when the bytes reach
 * the file), and never fsyncs. A process killed in that window leaves an
 * empty or cut file, and another process initialising at that moment reads
 * it empty. So: every imprint process holds an flock on DATA/hsm/token.lock
 * across C_Initialize..C_Login, and before C_Initialize it checks the
 * token's files against a verified copy and restores a damaged one.
 *
 * SoftHSM2 object file (persisted by SoftHSM, read only here), all integers
 * 8 bytes big-endian: generation, then until the end of the file
 * attributes: p11 type, kind, value; kind 1 boolean (1 byte), 2 ulong
 * (8 bytes), 3 byte string (length + bytes), 4 attribute map (length +
 * that many bytes of type, kind 1/2/3/5, value), 5 mechanism set (count +
 * count ulongs).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "embedded_guard.h"
#include "imprint/log.h"
#include "imprint/util.h"

#define GUARD_FILE_MAX (4u << 20) /* no SoftHSM object comes near this */
#define GUARD_TYPES_MAX 128
/*
 * An empty or cut object file younger than this may be one another imprint
 * process is creating right now (object creation is outside the guard's
 * lock), so it is left alone; older, it is what a full disk or a stop left
 * behind.
 */
#define GUARD_CUT_GRACE_S 60

enum { OF_BOOL = 1, OF_ULONG = 2, OF_BYTES = 3, OF_MAP = 4, OF_MECHS = 5 };

imp_err hsm_guard_lock(const char *hsm_dir, int *fd)
{
	char path[PATH_MAX];
	int f;

	*fd = -1;
	if ((size_t)snprintf(path, sizeof(path), "%s/token.lock", hsm_dir) >= sizeof(path))
		return IMP_ERR_CONFIG;
	f = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (f < 0 && (errno == EROFS || errno == EACCES))
		f = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (f < 0) {
		IMP_ERROR("cannot open the embedded token's lock %s: %s: check the data "
			  "directory's owner and mode", path, strerror(errno));
		return IMP_ERR_IO;
	}
	while (flock(f, LOCK_EX) != 0) {
		if (errno == EINTR)
			continue;
		IMP_ERROR("cannot lock %s: %s", path, strerror(errno));
		close(f);
		return IMP_ERR_IO;
	}
	*fd = f;
	return IMP_OK;
}

void hsm_guard_unlock(int fd)
{
	if (fd >= 0)
		close(fd); /* releases the flock */
}

static uint64_t be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* Take n bytes at *off of a buffer of len; false if they are not all there. */
static bool take(size_t *off, size_t len, uint64_t n)
{
	if (n > len - *off)
		return false;
	*off += (size_t)n;
	return true;
}

static bool take_u64(const uint8_t *b, size_t *off, size_t len, uint64_t *v)
{
	if (len - *off < 8)
		return false;
	*v = be64(b + *off);
	*off += 8;
	return true;
}

/*
 * One reader of the object file format for both questions the guard asks
 * (is it sound, is it cut): a file ends inside a record (CUT), holds a
 * record this code does not read (FOREIGN: another format, never a cut),
 * or is whole (SOUND). A map inside a map, or a map whose entries do not
 * fill it exactly, is FOREIGN.
 */
enum obj_scan { OBJ_SOUND, OBJ_CUT, OBJ_FOREIGN };

static enum obj_scan map_scan(const uint8_t *b, size_t off, size_t end);

/* The value of one record of the given kind at *off, end the limit. */
static enum obj_scan take_value(const uint8_t *b, size_t *off, size_t end, uint64_t kind,
				bool top)
{
	uint64_t len;
	size_t start;

	switch (kind) {
	case OF_BOOL:
		return take(off, end, 1) ? OBJ_SOUND : OBJ_CUT;
	case OF_ULONG:
		return take(off, end, 8) ? OBJ_SOUND : OBJ_CUT;
	case OF_BYTES:
		return take_u64(b, off, end, &len) && take(off, end, len) ? OBJ_SOUND : OBJ_CUT;
	case OF_MAP:
		if (!top)
			return OBJ_FOREIGN;
		if (!take_u64(b, off, end, &len))
			return OBJ_CUT;
		start = *off;
		if (!take(off, end, len))
			return OBJ_CUT;
		return map_scan(b, start, *off) == OBJ_SOUND ? OBJ_SOUND : OBJ_FOREIGN;
	case OF_MECHS:
		return take_u64(b, off, end, &len) && len <= (end - *off) / 8 &&
				       take(off, end, len * 8)
			       ? OBJ_SOUND
			       : OBJ_CUT;
	default:
		return OBJ_FOREIGN;
	}
}

static enum obj_scan map_scan(const uint8_t *b, size_t off, size_t end)
{
	while (off < end) {
		uint64_t type, kind;
		enum obj_scan r;

		if (!take_u64(b, &off, end, &type) || !take_u64(b, &off, end, &kind))
			return OBJ_CUT;
		r = take_value(b, &off, end, kind, false);
		if (r != OBJ_SOUND)
			return r;
	}
	return OBJ_SOUND;
}

static enum obj_scan object_scan(const uint8_t *b, size_t n, uint64_t *types, size_t cap,
				 size_t *ntypes)
{
	size_t off = 0, count = 0;
	uint64_t gen;

	if (ntypes)
		*ntypes = 0;
	if (!take_u64(b, &off, n, &gen))
		return OBJ_CUT;
	while (off < n) {
		uint64_t type, kind;
		enum obj_scan r;

		if (!take_u64(b, &off, n, &type) || !take_u64(b, &off, n, &kind))
			return OBJ_CUT;
		r = take_value(b, &off, n, kind, true);
		if (r != OBJ_SOUND)
			return r;
		if (types && count < cap)
			types[count] = type;
		count++;
	}
	if (ntypes)
		*ntypes = count < cap ? count : cap;
	return count > 0 ? OBJ_SOUND : OBJ_CUT; /* a bare generation is a cut file */
}

bool hsm_guard_object_sound(const uint8_t *b, size_t n, uint64_t *types, size_t cap,
			    size_t *ntypes)
{
	return object_scan(b, n, types, cap, ntypes) == OBJ_SOUND;
}

bool hsm_guard_object_cut(const uint8_t *b, size_t n)
{
	return object_scan(b, n, NULL, 0, NULL) == OBJ_CUT;
}

enum file_kind { FK_OTHER, FK_OBJECT, FK_GENERATION };

static enum file_kind kind_of(const char *name)
{
	size_t l = strlen(name);

	if (name[0] == '.')
		return FK_OTHER;
	if (strcmp(name, "generation") == 0)
		return FK_GENERATION;
	if (l > 7 && strcmp(name + l - 7, ".object") == 0)
		return FK_OBJECT;
	return FK_OTHER;
}

/* Read a file of at most GUARD_FILE_MAX; a missing one gives NULL, IMP_OK. */
static imp_err slurp(const char *path, uint8_t **out, size_t *n)
{
	struct stat st;
	imp_err rc;

	*out = NULL;
	*n = 0;
	if (lstat(path, &st) != 0)
		return errno == ENOENT ? IMP_OK : IMP_ERR_IO;
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > GUARD_FILE_MAX) {
		IMP_ERROR("%s is not a softhsm token file (not a regular file, or too large)",
			  path);
		return IMP_ERR_HSM;
	}
	rc = imp_read_file(path, out, n);
	if (rc == IMP_ERR_NOT_FOUND)
		rc = IMP_OK;
	if (rc != IMP_OK)
		IMP_ERROR("cannot read %s: %s", path, strerror(errno));
	return rc;
}

/* Sound, and holding every attribute type the copy (if any) holds. */
static bool file_sound(enum file_kind k, const uint8_t *live, size_t ln, const uint8_t *copy,
		       size_t cn)
{
	uint64_t lt[GUARD_TYPES_MAX], ct[GUARD_TYPES_MAX];
	size_t nl, nc;

	if (!live)
		return false;
	if (k == FK_GENERATION)
		return ln == 8;
	if (!hsm_guard_object_sound(live, ln, lt, GUARD_TYPES_MAX, &nl))
		return false;
	if (!copy || !hsm_guard_object_sound(copy, cn, ct, GUARD_TYPES_MAX, &nc))
		return true;
	for (size_t i = 0; i < nc; i++) {
		size_t j = 0;

		while (j < nl && lt[j] != ct[i])
			j++;
		if (j == nl)
			return false;
	}
	return true;
}

/* Equal apart from an object's leading generation counter. */
static bool same_content(enum file_kind k, const uint8_t *a, size_t an, const uint8_t *b,
			 size_t bn)
{
	size_t skip = k == FK_OBJECT ? 8 : 0;

	return an == bn && an >= skip && memcmp(a + skip, b + skip, an - skip) == 0;
}

static imp_err fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	imp_err rc = IMP_OK;

	if (fd < 0)
		return IMP_ERR_IO;
	if (fsync(fd) != 0 && errno != EINVAL)
		rc = IMP_ERR_IO;
	close(fd);
	return rc;
}

/* Write dir/name atomically (temp named so SoftHSM never indexes it). */
static imp_err put_file(const char *dir, const char *name, const uint8_t *b, size_t n)
{
	char path[PATH_MAX];
	imp_err rc;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
		return IMP_ERR_IO;
	rc = imp_write_file_atomic(path, b, n, 0600);
	if (rc == IMP_OK)
		rc = fsync_dir(dir);
	return rc;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void names_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* The entries of dir that keep(entry) accepts, their names sorted; a
 * missing dir lists nothing. */
static imp_err list_entries(const char *dir, bool (*keep)(const struct dirent *e), char ***out,
			    size_t *n)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL;
	size_t count = 0, cap = 0;

	*out = NULL;
	*n = 0;
	if (!d)
		return errno == ENOENT ? IMP_OK : IMP_ERR_IO;
	while ((e = readdir(d)) != NULL) {
		if (!keep(e))
			continue;
		if (count == cap) {
			char **nn = realloc(names, (cap ? cap * 2 : 16) * sizeof(*names));

			if (!nn)
				goto nomem;
			names = nn;
			cap = cap ? cap * 2 : 16;
		}
		names[count] = strdup(e->d_name);
		if (!names[count])
			goto nomem;
		count++;
	}
	closedir(d);
	if (count)
		qsort(names, count, sizeof(*names), name_cmp);
	*out = names;
	*n = count;
	return IMP_OK;
nomem:
	closedir(d);
	names_free(names, count);
	return IMP_ERR_NOMEM;
}

/* Token files (objects, generation). */
static bool is_token_file(const struct dirent *e)
{
	return kind_of(e->d_name) != FK_OTHER;
}

/* Subdirectories (token directories). */
static bool is_token_dir(const struct dirent *e)
{
	return e->d_name[0] != '.' && (e->d_type == DT_DIR || e->d_type == DT_UNKNOWN);
}


static bool names_has(char **names, size_t n, const char *name)
{
	return n && bsearch(&name, names, n, sizeof(*names), name_cmp) != NULL;
}

/*
 * Move the object file live_dir/name, empty or cut short, which has no
 * verified copy, into quarantine_dir (created 0700), once and with one
 * warning: softhsm ignores it or loads it as an object without attributes,
 * so it holds nothing the token can use; moved, not removed, a cut file
 * stays there for whoever looks into the stop (a private object's values
 * in it are encrypted under the token's key, as in every object file).
 */
static void quarantine_cut(const char *live_dir, const char *quarantine_dir, const char *name,
			   bool empty)
{
	const char *what = empty ? "empty" : "cut short";
	char from[PATH_MAX], to[PATH_MAX];

	if ((size_t)snprintf(from, sizeof(from), "%s/%s", live_dir, name) >= sizeof(from) ||
	    (size_t)snprintf(to, sizeof(to), "%s/%s", quarantine_dir, name) >= sizeof(to))
		return;
	if (imp_mkdir_p(quarantine_dir, 0700) != IMP_OK || rename(from, to) != 0) {
		IMP_WARN("%s is %s and has no verified copy (the disk was full, or a station "
			 "process stopped while softhsm created it); softhsm cannot use it, but "
			 "it cannot be moved to %s: %s: check the data directory's space and mode",
			 from, what, quarantine_dir, strerror(errno));
		return;
	}
	(void)fsync_dir(live_dir);
	(void)fsync_dir(quarantine_dir);
	IMP_WARN("%s was %s and had no verified copy (the disk was full, a station "
		 "process stopped while softhsm created it, or softhsm failed to create it): the "
		 "token could not use it, and it is moved to %s; if the disk is full, free space "
		 "in the data directory", from, what, to);
}

/*
 * Some process holds a lock on the object file live_dir/name or on its
 * transaction lock file (name with .lock for .object): softhsm locks them
 * while it writes the object, so a file that is locked is being written,
 * however old its modification time (a writer paused past the grace).
 */
static bool object_in_use(const char *live_dir, const char *name)
{
	char path[PATH_MAX];
	size_t n = strlen(name);

	for (int i = 0; i < 2; i++) {
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
		int fd;

		if (i == 0)
			snprintf(path, sizeof(path), "%s/%s", live_dir, name);
		else if (n > 7 && strcmp(name + n - 7, ".object") == 0)
			snprintf(path, sizeof(path), "%s/%.*s.lock", live_dir, (int)(n - 7), name);
		else
			break;
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			continue;
		if (fcntl(fd, F_OFD_GETLK, &fl) != 0 || fl.l_type != F_UNLCK) {
			close(fd);
			return true;
		}
		close(fd);
	}
	return false;
}

/* Old enough to be left over: modified GUARD_CUT_GRACE_S ago or more, and
 * not in the future (a clock stepped back says nothing of its age). */
static bool past_grace(const struct stat *st)
{
	time_t now = time(NULL);

	return st->st_mtime <= now && now - st->st_mtime >= GUARD_CUT_GRACE_S;
}

/* One token directory: live L against its copy C; Q for empty files. */
static imp_err sync_one(const char *live_dir, const char *copy_dir,
			const char *quarantine_dir, size_t *restored)
{
	char **ln = NULL, **cn = NULL;
	size_t nl = 0, nc = 0;
	uint8_t *live = NULL, *copy = NULL;
	size_t lsz = 0, csz = 0;
	char path[PATH_MAX];
	struct stat st;
	bool whole = lstat(live_dir, &st) != 0 && errno == ENOENT;
	imp_err rc;

	rc = list_entries(live_dir, is_token_file, &ln, &nl);
	if (rc == IMP_OK)
		rc = list_entries(copy_dir, is_token_file, &cn, &nc);
	if (rc != IMP_OK)
		goto cleanup;
	/* Every file of the copy: restore it where the live one is damaged. */
	for (size_t i = 0; i < nc; i++) {
		enum file_kind k = kind_of(cn[i]);
		bool present = names_has(ln, nl, cn[i]);

		free(live);
		free(copy);
		live = copy = NULL;
		snprintf(path, sizeof(path), "%s/%s", copy_dir, cn[i]);
		rc = slurp(path, &copy, &csz);
		if (rc != IMP_OK)
			goto cleanup;
		if (!whole && !present && k == FK_OBJECT && strcmp(cn[i], "token.object") != 0) {
			/* SoftHSM removes an object file only for C_DestroyObject. */
			unlink(path);
			continue;
		}
		snprintf(path, sizeof(path), "%s/%s", live_dir, cn[i]);
		rc = slurp(path, &live, &lsz);
		if (rc != IMP_OK)
			goto cleanup;
		if (file_sound(k, live, lsz, copy, csz)) {
			if (!same_content(k, live, lsz, copy, csz) &&
			    put_file(copy_dir, cn[i], live, lsz) != IMP_OK)
				IMP_WARN("cannot refresh the token copy in %s: the live token "
					 "still works; check the data directory", copy_dir);
			continue;
		}
		if (!file_sound(k, copy, csz, NULL, 0)) {
			IMP_ERROR("%s is damaged and so is its copy in %s: restore the data "
				  "directory's hsm folder from a backup", path, copy_dir);
			rc = IMP_ERR_HSM;
			goto cleanup;
		}
		IMP_WARN("%s was %s: restored from its verified copy", path,
			 !live ? "missing (removed, or a station process stopped while softhsm "
				 "rewrote it)"
			 : lsz == 0 ? "empty (a station process stopped while softhsm rewrote it, "
				      "or the disk was full)"
			 : lsz < csz ? "cut short (a station process stopped while softhsm "
				       "rewrote it)"
				     : "damaged (its content is not an object softhsm wrote)");
		rc = imp_mkdir_p(live_dir, 0700);
		if (rc == IMP_OK)
			rc = put_file(live_dir, cn[i], copy, csz);
		if (rc != IMP_OK)
			goto cleanup;
		if (restored)
			(*restored)++;
	}
	/* Live files the copy lacks: copy the sound ones. */
	for (size_t i = 0; i < nl; i++) {
		enum file_kind k = kind_of(ln[i]);

		if (names_has(cn, nc, ln[i]))
			continue;
		free(live);
		live = NULL;
		snprintf(path, sizeof(path), "%s/%s", live_dir, ln[i]);
		rc = slurp(path, &live, &lsz);
		if (rc != IMP_OK)
			goto cleanup;
		if (!file_sound(k, live, lsz, NULL, 0)) {
			if (strcmp(ln[i], "token.object") == 0) {
				IMP_ERROR("the embedded token's %s is damaged (%s) and has no "
					  "verified copy: the token was being created when the "
					  "station stopped; move %s aside and run `imprint hsm "
					  "init` again", path, lsz ? "cut short" : "empty",
					  live_dir);
				rc = IMP_ERR_HSM;
				goto cleanup;
			}
			/* Past the grace no process is still writing it: moved aside.
			 * Before it, an empty one is left alone (another process may
			 * be creating it this instant), a cut one said once. */
			if (k == FK_OBJECT && hsm_guard_object_cut(live, lsz) &&
			    lstat(path, &st) == 0 && past_grace(&st) &&
			    !object_in_use(live_dir, ln[i])) {
				quarantine_cut(live_dir, quarantine_dir, ln[i], lsz == 0);
				continue;
			}
			if (lsz == 0 && k == FK_OBJECT)
				continue;
			if (k == FK_OBJECT && !hsm_guard_object_cut(live, lsz)) {
				IMP_WARN("%s holds records this imprint does not read (written by "
					 "another softhsm version?): it is left where it is, without "
					 "a verified copy", path);
				continue;
			}
			IMP_WARN("%s is cut short and has no verified copy (the disk was full, or "
				 "a station process stopped while softhsm created it); softhsm "
				 "ignores it or loads it as an object without attributes, which "
				 "imprint leaves out; if no process writes it, the next start "
				 "after %d s moves it out of %s", path, GUARD_CUT_GRACE_S, live_dir);
			continue;
		}
		if (imp_mkdir_p(copy_dir, 0700) != IMP_OK ||
		    put_file(copy_dir, ln[i], live, lsz) != IMP_OK)
			IMP_WARN("cannot copy %s to %s: the token works, but is not yet "
				 "protected against a stop during login; check the data directory",
				 path, copy_dir);
	}
cleanup:
	free(live);
	free(copy);
	names_free(ln, nl);
	names_free(cn, nc);
	return rc;
}

imp_err hsm_guard_sync(const char *tokens_dir, const char *copy_dir, size_t *restored)
{
	char **ld = NULL, **cd = NULL;
	size_t nl = 0, nc = 0;
	char live[PATH_MAX], copy[PATH_MAX], quarantine[PATH_MAX];
	imp_err rc;

	if (restored)
		*restored = 0;
	rc = list_entries(tokens_dir, is_token_dir, &ld, &nl);
	if (rc == IMP_OK)
		rc = list_entries(copy_dir, is_token_dir, &cd, &nc);
	if (rc != IMP_OK) {
		IMP_ERROR("cannot list %s or %s: %s", tokens_dir, copy_dir, strerror(errno));
		goto cleanup;
	}
	for (size_t i = 0; i < nc && rc == IMP_OK; i++) {
		if ((size_t)snprintf(live, sizeof(live), "%s/%s", tokens_dir, cd[i]) >= sizeof(live) ||
		    (size_t)snprintf(copy, sizeof(copy), "%s/%s", copy_dir, cd[i]) >= sizeof(copy) ||
		    (size_t)snprintf(quarantine, sizeof(quarantine), "%s.quarantine/%s", tokens_dir,
				     cd[i]) >= sizeof(quarantine)) {
			rc = IMP_ERR_CONFIG;
			break;
		}
		rc = sync_one(live, copy, quarantine, restored);
	}
	for (size_t i = 0; i < nl && rc == IMP_OK; i++) {
		if (names_has(cd, nc, ld[i]))
			continue;
		if ((size_t)snprintf(live, sizeof(live), "%s/%s", tokens_dir, ld[i]) >= sizeof(live) ||
		    (size_t)snprintf(copy, sizeof(copy), "%s/%s", copy_dir, ld[i]) >= sizeof(copy) ||
		    (size_t)snprintf(quarantine, sizeof(quarantine), "%s.quarantine/%s", tokens_dir,
				     ld[i]) >= sizeof(quarantine)) {
			rc = IMP_ERR_CONFIG;
			break;
		}
		rc = sync_one(live, copy, quarantine, restored);
	}
cleanup:
	names_free(ld, nl);
	names_free(cd, nc);
	return rc;
}
