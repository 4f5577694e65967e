/*
 * Journal: the SQLite VFS of a handle's write connection ("imprint-walbuf",
 * docs/JOURNAL.md "SQLite settings"). It is the default VFS with one
 * difference: consecutive writes to a -wal file are gathered in memory and
 * reach the file as one write, at the latest when SQLite syncs it. SQLite
 * writes each frame of a COMMIT as two writes (its header, then the page):
 * a COMMIT of twenty pages was forty pwrite calls, now one.
 *
 * Nothing about durability or visibility changes: the journal runs with
 * synchronous = FULL, so SQLite syncs the -wal before it publishes a
 * COMMIT in the -shm index (which is what other connections read), and the
 * sync writes out what was gathered first, then syncs. Anything that could
 * look at the file's bytes or size (a read, its size, a truncation, a write
 * elsewhere, a file control, a close) writes it out first as well. A
 * failed write is reported by the call that wrote it out, which then fails
 * as the write would have (the COMMIT fails). The database file and every
 * other file are passed through untouched, but for one thing: when the
 * connection gives up the WAL write lock (xShmLock on the database file),
 * its -wal's gathered writes go out first. Writes that are not synced
 * before that are a transaction's spilled frames it then rolled back (or
 * rolled back to a savepoint): written later they would land on the
 * frames another connection has committed there since.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "journal_int.h"

#define WALBUF_VFS "imprint-walbuf"
/* Gathered at most: 29 frames of 4 KiB pages. The default VFS writes at
 * most 128 KiB - 1 in one call (it masks the length with 0x1ffff), so more
 * would be cut short. */
#define WALBUF_CAP (120u * 1024u)
_Static_assert(WALBUF_CAP <= 0x1ffffu, "within one write of the default VFS");

struct walbuf_file {
	sqlite3_file base;   /* pMethods = &walbuf_io */
	sqlite3_file *real;  /* the default VFS's file, right after this struct */
	bool gather;         /* a -wal: writes are gathered */
	unsigned char *buf;
	size_t n;
	sqlite3_int64 off;   /* file offset of buf[0] */
	struct walbuf_file *wal; /* a database file: its open -wal, if ours */
	struct walbuf_file *db;  /* a -wal: its database file, if ours */
};

#define WF(p) ((struct walbuf_file *)(p))
#define REAL(p) (WF(p)->real)
#define RM(p) (REAL(p)->pMethods)

static int flush(struct walbuf_file *f)
{
	int rc;

	if (!f->n)
		return SQLITE_OK;
	rc = f->real->pMethods->xWrite(f->real, f->buf, (int)f->n, f->off);
	f->n = 0;
	return rc;
}

static int w_close(sqlite3_file *p)
{
	int rc = flush(WF(p)), crc;

	if (WF(p)->db && WF(p)->db->wal == WF(p))
		WF(p)->db->wal = NULL;
	if (WF(p)->wal && WF(p)->wal->db == WF(p))
		WF(p)->wal->db = NULL;

	crc = RM(p)->xClose(REAL(p));
	sqlite3_free(WF(p)->buf);
	WF(p)->buf = NULL;
	return rc != SQLITE_OK ? rc : crc;
}

static int w_read(sqlite3_file *p, void *out, int amt, sqlite3_int64 off)
{
	int rc = flush(WF(p));

	return rc != SQLITE_OK ? rc : RM(p)->xRead(REAL(p), out, amt, off);
}

static int w_write(sqlite3_file *p, const void *data, int amt, sqlite3_int64 off)
{
	struct walbuf_file *f = WF(p);
	int rc;

	if (!f->gather || amt <= 0)
		return RM(p)->xWrite(REAL(p), data, amt, off);
	if (f->n && (off != f->off + (sqlite3_int64)f->n || f->n + (size_t)amt > WALBUF_CAP)) {
		rc = flush(f);
		if (rc != SQLITE_OK)
			return rc;
	}
	if ((size_t)amt > WALBUF_CAP)
		return RM(p)->xWrite(REAL(p), data, amt, off);
	if (!f->n)
		f->off = off;
	memcpy(f->buf + f->n, data, (size_t)amt);
	f->n += (size_t)amt;
	return SQLITE_OK;
}

static int w_truncate(sqlite3_file *p, sqlite3_int64 size)
{
	int rc = flush(WF(p));

	return rc != SQLITE_OK ? rc : RM(p)->xTruncate(REAL(p), size);
}

static int w_sync(sqlite3_file *p, int flags)
{
	int rc = flush(WF(p));

	return rc != SQLITE_OK ? rc : RM(p)->xSync(REAL(p), flags);
}

static int w_file_size(sqlite3_file *p, sqlite3_int64 *size)
{
	int rc = flush(WF(p));

	return rc != SQLITE_OK ? rc : RM(p)->xFileSize(REAL(p), size);
}

static int w_lock(sqlite3_file *p, int level)
{
	return RM(p)->xLock(REAL(p), level);
}

static int w_unlock(sqlite3_file *p, int level)
{
	return RM(p)->xUnlock(REAL(p), level);
}

static int w_check_reserved(sqlite3_file *p, int *out)
{
	return RM(p)->xCheckReservedLock(REAL(p), out);
}

static int w_file_control(sqlite3_file *p, int op, void *arg)
{
	int rc = flush(WF(p));

	return rc != SQLITE_OK ? rc : RM(p)->xFileControl(REAL(p), op, arg);
}

static int w_sector_size(sqlite3_file *p)
{
	return RM(p)->xSectorSize(REAL(p));
}

static int w_device_characteristics(sqlite3_file *p)
{
	return RM(p)->xDeviceCharacteristics(REAL(p));
}

static int w_shm_map(sqlite3_file *p, int pg, int pgsz, int extend, void volatile **out)
{
	if (RM(p)->iVersion < 2)
		return SQLITE_IOERR_SHMMAP;
	return RM(p)->xShmMap(REAL(p), pg, pgsz, extend, out);
}

/* The WAL write lock is slot 0 of the -shm's locks (wal.c, WAL_WRITE_LOCK). */
#define WALBUF_WRITE_LOCK 0

static int w_shm_lock(sqlite3_file *p, int offset, int n, int flags)
{
	if (RM(p)->iVersion < 2)
		return SQLITE_IOERR_SHMLOCK;
	/* Before another connection may write the -wal: what this one still
	 * holds is never a commit (synchronous = FULL syncs each one), so a
	 * failed write loses nothing committed; the frames are written as the
	 * default VFS would have, while the lock is held. */
	if ((flags & SQLITE_SHM_UNLOCK) && offset == WALBUF_WRITE_LOCK && WF(p)->wal)
		(void)flush(WF(p)->wal);
	return RM(p)->xShmLock(REAL(p), offset, n, flags);
}

static void w_shm_barrier(sqlite3_file *p)
{
	if (RM(p)->iVersion >= 2)
		RM(p)->xShmBarrier(REAL(p));
}

static int w_shm_unmap(sqlite3_file *p, int del)
{
	if (RM(p)->iVersion < 2)
		return SQLITE_OK;
	return RM(p)->xShmUnmap(REAL(p), del);
}

static int w_fetch(sqlite3_file *p, sqlite3_int64 off, int amt, void **out)
{
	int rc = flush(WF(p));

	*out = NULL;
	if (rc != SQLITE_OK || RM(p)->iVersion < 3)
		return rc;
	return RM(p)->xFetch(REAL(p), off, amt, out);
}

static int w_unfetch(sqlite3_file *p, sqlite3_int64 off, void *ptr)
{
	if (RM(p)->iVersion < 3)
		return SQLITE_OK;
	return RM(p)->xUnfetch(REAL(p), off, ptr);
}

static const sqlite3_io_methods walbuf_io = {
	3,
	w_close, w_read, w_write, w_truncate, w_sync, w_file_size, w_lock, w_unlock,
	w_check_reserved, w_file_control, w_sector_size, w_device_characteristics,
	w_shm_map, w_shm_lock, w_shm_barrier, w_shm_unmap, w_fetch, w_unfetch,
};

/* ------------------------------------------------------------------ vfs */

static sqlite3_vfs walbuf_vfs;

static sqlite3_vfs *real_vfs(void)
{
	return walbuf_vfs.pAppData;
}

static int v_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *p, int flags, int *out_flags)
{
	struct walbuf_file *f = WF(p);
	int rc;

	(void)vfs;
	memset(f, 0, sizeof(*f));
	f->real = (sqlite3_file *)(f + 1);
	rc = real_vfs()->xOpen(real_vfs(), name, f->real, flags, out_flags);
	if (rc != SQLITE_OK) {
		if (f->real->pMethods)
			f->real->pMethods->xClose(f->real);
		p->pMethods = NULL;
		return rc;
	}
	if (flags & SQLITE_OPEN_WAL) {
		/* Gathered only with its database file ours, which flushes it
		 * when the write lock goes. */
		sqlite3_file *db = sqlite3_database_file_object(name);

		if (db && db->pMethods == &walbuf_io && !WF(db)->wal) {
			f->buf = sqlite3_malloc((int)WALBUF_CAP);
			if (f->buf) {
				f->db = WF(db);
				WF(db)->wal = f;
			}
		}
		f->gather = f->buf != NULL; /* without memory: written as they come */
	}
	p->pMethods = &walbuf_io;
	return SQLITE_OK;
}

static int v_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
	(void)vfs;
	return real_vfs()->xDelete(real_vfs(), name, sync_dir);
}

static int v_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
	(void)vfs;
	return real_vfs()->xAccess(real_vfs(), name, flags, out);
}

static int v_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
	(void)vfs;
	return real_vfs()->xFullPathname(real_vfs(), name, n, out);
}

static void *v_dl_open(sqlite3_vfs *vfs, const char *name)
{
	(void)vfs;
	return real_vfs()->xDlOpen(real_vfs(), name);
}

static void v_dl_error(sqlite3_vfs *vfs, int n, char *out)
{
	(void)vfs;
	real_vfs()->xDlError(real_vfs(), n, out);
}

static void (*v_dl_sym(sqlite3_vfs *vfs, void *h, const char *sym))(void)
{
	(void)vfs;
	return real_vfs()->xDlSym(real_vfs(), h, sym);
}

static void v_dl_close(sqlite3_vfs *vfs, void *h)
{
	(void)vfs;
	real_vfs()->xDlClose(real_vfs(), h);
}

static int v_randomness(sqlite3_vfs *vfs, int n, char *out)
{
	(void)vfs;
	return real_vfs()->xRandomness(real_vfs(), n, out);
}

static int v_sleep(sqlite3_vfs *vfs, int us)
{
	(void)vfs;
	return real_vfs()->xSleep(real_vfs(), us);
}

static int v_current_time(sqlite3_vfs *vfs, double *out)
{
	(void)vfs;
	return real_vfs()->xCurrentTime(real_vfs(), out);
}

static int v_last_error(sqlite3_vfs *vfs, int n, char *out)
{
	(void)vfs;
	return real_vfs()->xGetLastError ? real_vfs()->xGetLastError(real_vfs(), n, out) : 0;
}

static int v_current_time64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
	(void)vfs;
	return real_vfs()->xCurrentTimeInt64(real_vfs(), out);
}

static pthread_once_t walbuf_once = PTHREAD_ONCE_INIT;
static int walbuf_rc = SQLITE_ERROR;

static void walbuf_register(void)
{
	sqlite3_vfs *real = sqlite3_vfs_find(NULL);

	if (!real || real->iVersion < 2 || !real->xCurrentTimeInt64)
		return;
	walbuf_vfs.iVersion = 2;
	walbuf_vfs.szOsFile = (int)sizeof(struct walbuf_file) + real->szOsFile;
	walbuf_vfs.mxPathname = real->mxPathname;
	walbuf_vfs.zName = WALBUF_VFS;
	walbuf_vfs.pAppData = real;
	walbuf_vfs.xOpen = v_open;
	walbuf_vfs.xDelete = v_delete;
	walbuf_vfs.xAccess = v_access;
	walbuf_vfs.xFullPathname = v_full_pathname;
	walbuf_vfs.xDlOpen = v_dl_open;
	walbuf_vfs.xDlError = v_dl_error;
	walbuf_vfs.xDlSym = v_dl_sym;
	walbuf_vfs.xDlClose = v_dl_close;
	walbuf_vfs.xRandomness = v_randomness;
	walbuf_vfs.xSleep = v_sleep;
	walbuf_vfs.xCurrentTime = v_current_time;
	walbuf_vfs.xGetLastError = v_last_error;
	walbuf_vfs.xCurrentTimeInt64 = v_current_time64;
	walbuf_rc = sqlite3_vfs_register(&walbuf_vfs, 0);
}

const char *jwalbuf_vfs(void)
{
	_Static_assert(sizeof(struct walbuf_file) % 8 == 0, "the real file follows, aligned");
	pthread_once(&walbuf_once, walbuf_register);
	return walbuf_rc == SQLITE_OK ? WALBUF_VFS : NULL;
}
