/*
 * What the journal proves about itself beyond its hash chain
 * (docs/JOURNAL.md "Integrity"): the anchor file beside it (a high-water
 * mark of the serials issued and of the head, written and synced before a
 * serial is allocated), a bounded page check at open, a probe of the outbox
 * insert path before a board's fuses are burnt, and the check of a -wal file
 * before SQLite reads it.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "imprint/log.h"
#include "imprint/util.h"
#include "journal_int.h"

#define ANCHOR_MAGIC "imprint-journal-anchor v1" /* PERSISTED */
#define ANCHOR_MAX 1024
#define QUICK_CHECK_MS 5000
#define JOURNAL_PAGE_SIZE 4096u /* SQLite's default, which every journal has */

/* ------------------------------------------------------------- anchor */

void jnl_anchor_path(const char *journal, char *out, size_t cap)
{
	snprintf(out, cap, "%s-anchor", journal);
}

#define ANCHOR_SIZE 256 /* PERSISTED: one fixed-size record, rewritten in place */

/* A decimal field: digits only, no sign, no overflow. */
static bool anchor_number(const char *s, uint64_t *out)
{
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno == 0 && *end == '\0';
}

/* Set while an anchor file an audit names (--anchor) is read: the advice
 * is then about that file, not about the station's data directory. */
static __thread bool reading_named;

static imp_err anchor_damaged(const char *path, const char *why)
{
	if (reading_named)
		jerr_set(IMP_ERR_JOURNAL, "%s is not an anchor file as the station writes it (%s): "
			 "nothing can be compared with it; audit with a copy of the station's own "
			 "DATA/journal.sqlite-anchor", path, why);
	else
		jerr_set(IMP_ERR_JOURNAL, "%s is damaged (%s): it cannot say what this station "
			 "already did, and no serial is issued against it; restore it from backup, "
			 "or move it aside: the next writable run then takes the journal as having "
			 "lost its anchor (docs/JOURNAL.md \"A lost anchor file\")", path, why);
	return IMP_ERR_JOURNAL;
}

/*
 * The record as anchor_store writes it, and nothing else: ANCHOR_SIZE bytes,
 * its lines in their order (head_hash absent from older imprints' anchors),
 * each number plain decimal, NULs after. Anything short of that is
 * damaged, never read as zeros.
 */
static imp_err anchor_parse(const char *path, char *buf, size_t got, struct janchor *a)
{
	static const char *const keys[] = { "station_id", "serial_counter", "intent",
					    "head_seq" };
	uint64_t *nums[] = { NULL, &a->serial_counter, &a->intent, &a->head_seq };
	size_t n;
	char *line, *save = NULL;

	memset(a, 0, sizeof(*a));
	if (got == 0)
		return IMP_OK; /* created, never written: no anchor yet */
	if (got != ANCHOR_SIZE) {
		char why[64];

		snprintf(why, sizeof(why), "%zu bytes, an anchor is %d", got, ANCHOR_SIZE);
		return anchor_damaged(path, why);
	}
	buf[got] = '\0';
	n = strlen(buf);
	for (size_t i = n; i < got; i++)
		if (buf[i] != '\0')
			return anchor_damaged(path, "bytes after its record");
	if (n == 0 || buf[n - 1] != '\n')
		return anchor_damaged(path, "its record is cut short");
	line = strtok_r(buf, "\n", &save);
	if (!line || strcmp(line, ANCHOR_MAGIC) != 0) {
		jerr_set(IMP_ERR_JOURNAL, "%s is not a journal anchor (its first line is not "
			 "\"%s\"): move "
			 "it aside only if you know where it came from", path, ANCHOR_MAGIC);
		return IMP_ERR_JOURNAL;
	}
	for (size_t k = 0; k < IMP_ARRAY_SIZE(keys); k++) {
		char *sp;

		line = strtok_r(NULL, "\n", &save);
		sp = line ? strchr(line, ' ') : NULL;
		if (!sp || (size_t)(sp - line) != strlen(keys[k]) ||
		    strncmp(line, keys[k], strlen(keys[k])) != 0) {
			char why[64];

			snprintf(why, sizeof(why), "no %s line where it belongs", keys[k]);
			return anchor_damaged(path, why);
		}
		sp++;
		if (nums[k] ? !anchor_number(sp, nums[k]) : strlen(sp) >= sizeof(a->station_id)) {
			char why[64];

			snprintf(why, sizeof(why), "its %s is not readable", keys[k]);
			return anchor_damaged(path, why);
		}
		if (!nums[k])
			snprintf(a->station_id, sizeof(a->station_id), "%s", sp);
	}
	/* head_hash: absent from the anchors of older imprints. */
	line = strtok_r(NULL, "\n", &save);
	if (line) {
		const char *v = strncmp(line, "head_hash ", 10) == 0 ? line + 10 : NULL;
		bool ok = v && (strcmp(v, "-") == 0 || strlen(v) == JNL_HASH_HEX_LEN);

		for (const char *c = v; ok && strcmp(v, "-") != 0 && *c; c++)
			ok = (*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f');
		if (!ok)
			return anchor_damaged(path, "its head_hash is not readable");
		if (strcmp(v, "-") != 0)
			memcpy(a->head_hash, v, JNL_HASH_HEX_LEN + 1);
		line = strtok_r(NULL, "\n", &save);
	}
	if (line)
		return anchor_damaged(path, "lines after its record");
	a->present = true;
	return IMP_OK;
}

/*
 * Open the anchor (creating it if asked) and lock it against every other
 * writer, thread or process; *fd is -1 (IMP_OK) if it does not exist.
 */
/* The open anchor is what anchor_store writes into: a regular file of at
 * most ANCHOR_SIZE bytes (one fstat for both). */
static imp_err anchor_file_check(int fd, const char *path)
{
	struct stat st;

	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		return anchor_damaged(path, "not a regular file");
	if (st.st_size > ANCHOR_SIZE) {
		char why[64];

		snprintf(why, sizeof(why), "%lld bytes, an anchor is %d", (long long)st.st_size,
			 ANCHOR_SIZE);
		return anchor_damaged(path, why);
	}
	return IMP_OK;
}

static imp_err anchor_lock(const char *journal, bool create, int *fd, char *path, size_t cap)
{
	int f;

	*fd = -1;
	jnl_anchor_path(journal, path, cap);
	/* O_NONBLOCK: a FIFO put in its place must not hang the open. */
	f = open(path, (create ? O_RDWR | O_CREAT : O_RDONLY) | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK,
		 0600);
	if (f < 0 && !create && errno == ENOENT)
		return IMP_OK;
	if (f < 0) {
		jerr_set(IMP_ERR_JOURNAL, "cannot open the journal's anchor %s: %s", path,
			 errno == ENOSPC ? "the disk is full (ENOSPC): free space on it"
					 : strerror(errno));
		return IMP_ERR_JOURNAL;
	}
	if (anchor_file_check(f, path) != IMP_OK) {
		close(f);
		return IMP_ERR_JOURNAL;
	}
	while (flock(f, create ? LOCK_EX : LOCK_SH) != 0) {
		if (errno == EINTR)
			continue;
		jerr_set(IMP_ERR_JOURNAL, "cannot lock %s: %s", path, strerror(errno));
		close(f);
		return IMP_ERR_JOURNAL;
	}
	*fd = f;
	return IMP_OK;
}

static imp_err anchor_load(int fd, const char *path, struct janchor *a)
{
	char buf[ANCHOR_SIZE + 1];
	ssize_t got;

	memset(a, 0, sizeof(*a));
	if (fd < 0)
		return IMP_OK;
	got = pread(fd, buf, ANCHOR_SIZE, 0);
	if (got < 0) {
		jerr_set(IMP_ERR_JOURNAL, "cannot read %s: %s", path, strerror(errno));
		return IMP_ERR_JOURNAL;
	}
	return anchor_parse(path, buf, (size_t)got, a);
}

/* sync: the intent must be durable before the allocation commits; the
 * committed marks only sharpen the check and may lag after a power cut. */
static imp_err anchor_store(int fd, const char *path, const struct janchor *a, bool sync)
{
	char body[ANCHOR_SIZE];
	int n;

	memset(body, 0, sizeof(body));
	n = snprintf(body, sizeof(body), "%s\nstation_id %s\nserial_counter %" PRIu64
		     "\nintent %" PRIu64 "\nhead_seq %" PRIu64 "\nhead_hash %s\n", ANCHOR_MAGIC,
		     a->station_id, a->serial_counter, a->intent, a->head_seq,
		     a->head_hash[0] ? a->head_hash : "-");
	if (n < 0 || n >= (int)sizeof(body))
		return IMP_ERR_INTERNAL;
	/* One write of one small record, then synced: no rename, no torn state. */
	if (pwrite(fd, body, sizeof(body), 0) != (ssize_t)sizeof(body) ||
	    (sync && fdatasync(fd) != 0)) {
		jerr_set(IMP_ERR_JOURNAL, "cannot write the journal's anchor %s: %s", path,
			 errno == ENOSPC ? "the disk is full (ENOSPC): free space on it"
					 : strerror(errno));
		return IMP_ERR_JOURNAL;
	}
	return IMP_OK;
}

imp_err janchor_read(const char *journal, struct janchor *a)
{
	char path[4200];
	int fd;
	imp_err rc;

	rc = anchor_lock(journal, false, &fd, path, sizeof(path));
	if (rc == IMP_OK)
		rc = anchor_load(fd, path, a);
	if (fd >= 0)
		close(fd);
	return rc;
}

imp_err jnl_anchor_named_usable(const char *path)
{
	struct stat st;
	imp_err rc;

	if (stat(path, &st) != 0) {
		int e = errno;

		rc = e == ENOENT ? IMP_ERR_NOT_FOUND : IMP_ERR_IO;
		jerr_set(rc, "cannot read the anchor %s: %s; give the station's "
			 "journal.sqlite-anchor (DATA/journal.sqlite-anchor)", path, strerror(e));
		return rc;
	}
	if (!S_ISREG(st.st_mode)) {
		jerr_set(IMP_ERR_IO, "the anchor %s is not a regular file (a pipe, a device or a "
			 "directory cannot be read as one): give a copy of the station's "
			 "DATA/journal.sqlite-anchor", path);
		return IMP_ERR_IO;
	}
	if (access(path, R_OK) != 0) {
		jerr_set(IMP_ERR_IO, "cannot read the anchor %s: %s; check its permissions", path,
			 strerror(errno));
		return IMP_ERR_IO;
	}
	return IMP_OK;
}

/* An anchor file the caller names (an audit of a journal copied away from
 * it): it must exist; a symbolic link is followed, as the user named it. */
static imp_err anchor_read_named(const char *path, struct janchor *a)
{
	imp_err rc = jnl_anchor_named_usable(path);
	int fd;

	memset(a, 0, sizeof(*a));
	if (rc != IMP_OK)
		return rc;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		jerr_set(IMP_ERR_IO, "cannot read the anchor %s: %s", path, strerror(errno));
		return IMP_ERR_IO;
	}
	reading_named = true;
	rc = anchor_file_check(fd, path);
	while (rc == IMP_OK && flock(fd, LOCK_SH) != 0 && errno == EINTR)
		;
	if (rc == IMP_OK)
		rc = anchor_load(fd, path, a);
	if (rc == IMP_OK && !a->present)
		rc = anchor_damaged(path, "empty");
	reading_named = false;
	close(fd);
	return rc;
}

/* The journal's station id, read once per handle (set at its creation,
 * never changed): after a commit, a read would be a transaction of its own. */
static void station_of(struct jnl *j, struct janchor *a)
{
	if (!j->station_id[0] &&
	    jdb_setting_get(j->db, JS_STATION_ID, j->station_id, sizeof(j->station_id)) != IMP_OK)
		j->station_id[0] = '\0';
	snprintf(a->station_id, sizeof(a->station_id), "%s", j->station_id);
}

/* An anchor of another station's journal (copied in from another data
 * directory) says nothing of this one. */
static imp_err anchor_station_check(const char *path, const struct janchor *a,
				    const char *station)
{
	if (!a->present || !a->station_id[0] || !station[0] || strcmp(a->station_id, station) == 0)
		return IMP_OK;
	if (reading_named) {
		jerr_set(IMP_ERR_JOURNAL, "%s is the anchor of station %s's journal, not of this "
			 "one (station %s): audit with this station's own anchor", path,
			 a->station_id, station);
		return IMP_ERR_JOURNAL;
	}
	jerr_set(IMP_ERR_JOURNAL, "%s is the anchor of station %s's journal, not of this one "
		 "(station %s): restore this station's own anchor, or move that one aside (the "
		 "next writable run then takes the journal as having lost its anchor)", path,
		 a->station_id, station);
	return IMP_ERR_JOURNAL;
}

/* The journal's counter and head, inside a transaction or snapshot. */
static imp_err journal_marks(sqlite3 *db, uint64_t *counter, uint64_t *head)
{
	imp_err rc = jdb_setting_get_u64(db, JS_SERIAL_COUNTER, counter);

	if (rc == IMP_ERR_NOT_FOUND) {
		*counter = 0;
		rc = IMP_OK;
	}
	if (rc == IMP_OK)
		rc = jdb_setting_get_u64(db, JS_HEAD_SEQ, head);
	if (rc == IMP_ERR_NOT_FOUND) {
		*head = 0;
		rc = IMP_OK;
	}
	return rc;
}

/* The journal's head hash (its settings), inside a transaction or snapshot. */
static void journal_head_hash(sqlite3 *db, char out[JNL_HASH_HEX_LEN + 1])
{
	if (jdb_setting_get(db, JS_HEAD_HASH, out, JNL_HASH_HEX_LEN + 1) != IMP_OK ||
	    strlen(out) != JNL_HASH_HEX_LEN)
		out[0] = '\0';
}

/*
 * The journal holds the anchor's head event, but another one (its file or
 * its -wal comes from a copy of the data directory that went on apart):
 * IMP_ERR_AUDIT with the message in msg.
 */
static imp_err anchor_diverged(sqlite3 *db, const char *anchor, const struct janchor *a,
			       uint64_t head, char *msg, size_t cap)
{
	char hash[JNL_HASH_HEX_LEN + 1] = "";
	sqlite3_stmt *st = NULL;
	imp_err rc;

	if (!a->present || !a->head_hash[0] || a->head_seq == 0 || head < a->head_seq)
		return IMP_OK;
	rc = jdb_prepare(db, "SELECT hash FROM events WHERE seq = ?1", &st);
	if (rc == IMP_OK)
		rc = jdb_bind_i64(db, st, 1, (int64_t)a->head_seq);
	if (rc == IMP_OK) {
		rc = jdb_step_row(db, st);
		if (rc == IMP_OK && sqlite3_column_text(st, 0))
			snprintf(hash, sizeof(hash), "%s", (const char *)sqlite3_column_text(st, 0));
		if (rc == IMP_ERR_NOT_FOUND)
			rc = IMP_OK;
	}
	sqlite3_finalize(st);
	if (rc || strcmp(hash, a->head_hash) == 0)
		return rc;
	snprintf(msg, cap, "the journal's event %" PRIu64 " is not the one %s saw (hash "
		 "%.16s..., the anchor's %.16s...): the journal or its -wal comes from another "
		 "copy of this data directory that went on apart; no serial is issued from it: "
		 "restore this station's own journal and -wal", a->head_seq, anchor,
		 hash[0] ? hash : "(none)", a->head_hash);
	return IMP_ERR_AUDIT;
}

/*
 * The journal (counter c, head h) is behind its anchor if c is below the
 * counter the anchor saw committed, or below an allocation's intent - 1
 * (the intent is written before the allocation commits, so intent = c + 1
 * is one a crash cut short, never given to a board), or h is below the head
 * the anchor saw committed.
 */
static bool behind(const struct janchor *a, uint64_t counter, uint64_t head)
{
	return a->present && (a->serial_counter > counter || a->intent > counter + 1 ||
			      a->head_seq > head);
}

static void behind_message(const char *anchor, const struct janchor *a, uint64_t counter,
			   uint64_t head, char *out, size_t cap)
{
	snprintf(out, cap, "the journal is behind what this station already did: %s "
		 "records serial counter %" PRIu64 " and event %" PRIu64 ", the journal has "
		 "counter %" PRIu64 " and event %" PRIu64 " (an older copy of the journal or of "
		 "its -wal was put back); no serial is issued from it: restore the newest "
		 "journal from backup, or have the line's supervisor decide",
		 anchor, a->serial_counter > a->intent ? a->serial_counter : a->intent,
		 a->head_seq, counter, head);
}

imp_err jnl_anchor_check_at(struct jnl *j, const char *anchor, char *msg, size_t cap,
			   enum jnl_anchor_seen *seen)
{
	struct janchor a;
	uint64_t counter, head;
	char path[4200];
	sqlite3 *db = NULL;
	imp_err rc;

	if (msg && cap)
		msg[0] = '\0';
	if (seen)
		*seen = JNL_ANCHOR_NONE;
	if (anchor)
		snprintf(path, sizeof(path), "%s", anchor);
	else
		jnl_anchor_path(j->path, path, sizeof(path));
	rc = anchor ? anchor_read_named(path, &a) : janchor_read(j->path, &a);
	if (rc == IMP_ERR_JOURNAL) {
		/* A damaged anchor proves nothing: a finding, as one behind. */
		if (msg && cap)
			snprintf(msg, cap, "%s", jnl_last_error());
		if (seen)
			*seen = JNL_ANCHOR_DAMAGED;
		return IMP_ERR_AUDIT;
	}
	if (rc)
		return rc;
	if (seen)
		*seen = a.present ? JNL_ANCHOR_COMPARED : JNL_ANCHOR_NONE;
	rc = jdb_open_reader(j, &db);
	if (rc == IMP_OK)
		rc = jdb_exec(db, "BEGIN");
	if (rc == IMP_OK)
		rc = journal_marks(db, &counter, &head);
	if (rc == IMP_OK && a.present && a.station_id[0]) {
		char station[JNL_STATION_ID_MAX + 1] = "";

		if (jdb_setting_get(db, JS_STATION_ID, station, sizeof(station)) != IMP_OK)
			station[0] = '\0';
		reading_named = anchor != NULL;
		rc = anchor_station_check(path, &a, station);
		reading_named = false;
		if (rc != IMP_OK) {
			if (msg && cap)
				snprintf(msg, cap, "%s", jnl_last_error());
			rc = IMP_ERR_AUDIT;
		}
	}
	if (rc == IMP_OK && !behind(&a, counter, head)) {
		char dmsg[JNL_MSG_MAX];

		rc = anchor_diverged(db, path, &a, head, dmsg, sizeof(dmsg));
		if (rc == IMP_ERR_AUDIT && msg && cap)
			snprintf(msg, cap, "%s", dmsg);
	}
	if (db) {
		sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
		sqlite3_close(db);
	}
	if (rc)
		return rc;
	if (behind(&a, counter, head)) {
		if (msg && cap)
			behind_message(path, &a, counter, head, msg, cap);
		return IMP_ERR_AUDIT;
	}
	return IMP_OK;
}

imp_err jnl_anchor_check(struct jnl *j, char *msg, size_t cap, bool *found)
{
	enum jnl_anchor_seen seen;
	imp_err rc = jnl_anchor_check_at(j, NULL, msg, cap, &seen);

	if (found)
		*found = seen != JNL_ANCHOR_NONE;
	return rc;
}

/* Read-modify-write of the anchor under its lock. */
enum anchor_op { AO_OPEN, AO_INTENT, AO_COMMITTED };

static imp_err anchor_update(struct jnl *j, enum anchor_op op, uint64_t issued,
			     uint64_t committed_head)
{
	struct janchor a;
	uint64_t counter, head;
	char path[4200], msg[JNL_MSG_MAX], hash[JNL_HASH_HEX_LEN + 1];
	bool write = false;
	int fd = -1;
	imp_err rc;

	if (op == AO_COMMITTED) {
		/* What the transaction itself committed, not a fresh read. */
		counter = issued;
		head = committed_head;
	} else {
		/* the head of this transaction's appends, as a read of it sees */
		rc = jchain_head_flush(j);
		if (rc == IMP_OK)
			rc = journal_marks(j->db, &counter, &head);
		if (rc)
			return rc;
	}
	if (op == AO_OPEN && counter == 0 && head == 0) {
		/* a journal that did nothing yet: no anchor needed */
		rc = anchor_lock(j->path, false, &fd, path, sizeof(path));
	} else {
		rc = anchor_lock(j->path, true, &fd, path, sizeof(path));
	}
	/* The journal's marks again, now under the anchor's lock: another
	 * handle may have committed and moved the anchor since the first read,
	 * and a mark read before its anchor update would look "behind". */
	if (rc == IMP_OK && op != AO_COMMITTED)
		rc = journal_marks(j->db, &counter, &head);
	if (rc == IMP_OK)
		rc = anchor_load(fd, path, &a);
	if (rc == IMP_OK && op != AO_COMMITTED) {
		struct janchor mine;

		station_of(j, &mine);
		rc = anchor_station_check(path, &a, mine.station_id);
	}
	if (rc)
		goto cleanup;
	if (op != AO_COMMITTED && behind(&a, counter, head)) {
		behind_message(path, &a, counter, head, msg, sizeof(msg));
		jerr_set(IMP_ERR_JOURNAL, "%s", msg);
		rc = IMP_ERR_JOURNAL;
		goto cleanup;
	}
	if (op == AO_OPEN && anchor_diverged(j->db, path, &a, head, msg, sizeof(msg)) != IMP_OK) {
		jerr_set(IMP_ERR_JOURNAL, "%s", msg);
		rc = IMP_ERR_JOURNAL;
		goto cleanup;
	}
	/* The head's hash: the transaction's own when it committed it, else
	 * the journal's settings (read with the marks). */
	if (op == AO_COMMITTED)
		snprintf(hash, sizeof(hash), "%s", j->head.seq == head ? j->head.hash : "");
	else
		journal_head_hash(j->db, hash);
	if (fd < 0)
		goto cleanup;
	if (op == AO_OPEN && !a.present && counter > 0 && !j->reserve)
		IMP_WARN("journal: %s was missing: started from the journal (counter %" PRIu64
			 ", event %" PRIu64 "); if it was removed, check the journal against a "
			 "backup", path, counter, head);
	if (op == AO_INTENT && issued > a.intent) {
		a.intent = issued;
		write = true;
	}
	if (op != AO_INTENT) {
		if (counter > a.serial_counter) {
			a.serial_counter = counter;
			write = true;
		}
		if (counter > a.intent) {
			a.intent = counter;
			write = true;
		}
		if (head > a.head_seq) {
			a.head_seq = head;
			snprintf(a.head_hash, sizeof(a.head_hash), "%s", hash);
			write = true;
		}
	}
	if (write) {
		station_of(j, &a);
		rc = anchor_store(fd, path, &a, op != AO_COMMITTED);
	}
cleanup:
	if (fd >= 0)
		close(fd);
	return rc;
}

/*
 * No anchor file beside a journal that issued serials: the file alone
 * cannot show that it holds every serial this station issued (a -wal lost
 * with the anchor takes allocations with it). The reservation kept outside
 * (the HSM's) bounds what can have been issued: the counter moves past it.
 * With none known, nothing bounds it: refused.
 */
static imp_err anchor_lost(struct jnl *j)
{
	struct janchor a;
	uint64_t counter, head, to;
	bool leased = false;
	char path[4200];
	imp_err rc;

	if (!j->reserve)
		return IMP_OK;
	rc = janchor_read(j->path, &a);
	if (rc == IMP_OK)
		rc = journal_marks(j->db, &counter, &head);
	if (rc || a.present || counter == 0)
		return rc;
	jnl_anchor_path(j->path, path, sizeof(path));
	rc = jdb_leased(j->db, &leased);
	if (rc)
		return rc;
	if (leased) {
		jerr_set(IMP_ERR_JOURNAL, "%s is missing: nothing shows that the journal (%" PRIu64
			 " serials issued from the line's leases, event %" PRIu64 ") holds every "
			 "serial this station issued, and a line-mode journal's serials come from "
			 "its leases, which cannot be skipped here; none is issued from it: restore "
			 "%s and the journal's -wal from backup, or give the station a new data "
			 "directory and leave its open leases with the line's supervisor (docs/"
			 "LINE.md)", path, counter, head, path);
		return IMP_ERR_JOURNAL;
	}
	if (j->serials_after_given)
		return IMP_OK; /* the operator said where serials go on (open_skip) */
	if (j->reserved == 0) {
		jerr_set(IMP_ERR_JOURNAL, "%s is missing and no reservation of serials is known "
			 "outside the journal (the hsm's journal anchor has none): nothing shows "
			 "that the journal (serial counter %" PRIu64 ", event %" PRIu64 ") holds "
			 "every serial this station issued, so none is issued from it: restore %s "
			 "from backup; if it is lost, `imprint journal checkpoint --serials-after N` "
			 "goes on after counter N (at least the highest counter any board of this "
			 "station may carry)", path, counter, head, path);
		return IMP_ERR_JOURNAL;
	}
	to = j->reserved;
	if (to <= counter) {
		IMP_WARN("journal: %s was missing: the journal holds every serial reserved "
			 "(counter %" PRIu64 ", reserved up to %" PRIu64 "): started from it",
			 path, counter, j->reserved);
		return IMP_OK;
	}
	rc = jdb_counter_skip(j, &to, true);
	if (rc) {
		char keep[JNL_MSG_MAX];

		snprintf(keep, sizeof(keep), "%s", jnl_last_error());
		jerr_set(IMP_ERR_JOURNAL, "%s is missing and serials up to counter %" PRIu64 " were "
			 "reserved, beyond the journal's %" PRIu64 ": some may be on boards the "
			 "journal lost (%s); no serial is issued from it: restore %s and the "
			 "journal's -wal from backup", path, j->reserved, counter, keep, path);
		return IMP_ERR_JOURNAL;
	}
	if (to > counter)
		IMP_WARN("journal: %s was missing: serials up to counter %" PRIu64 " were "
			 "reserved and the journal holds %" PRIu64 ": counters %" PRIu64 " to %" PRIu64
			 " may be on boards the journal lost and are never issued%s; the next serial "
			 "is counter %" PRIu64 "; check the journal against a backup", path,
			 j->reserved, counter, counter + 1, to,
			 to < j->reserved ? " (the quota ends before the reservation)" : "",
			 to + 1);
	return IMP_OK;
}

/* `journal checkpoint --serials-after N`: the operator's word on where the
 * serials go on. */
static imp_err open_skip(struct jnl *j)
{
	uint64_t counter, head, to = j->serials_after;
	imp_err rc;

	if (!j->serials_after_given)
		return IMP_OK;
	rc = journal_marks(j->db, &counter, &head);
	if (rc)
		return rc;
	if (to < counter) {
		jerr_set(IMP_ERR_USAGE, "--serials-after %" PRIu64 " is below the serials this "
			 "journal already issued (counter %" PRIu64 "): give the highest counter any "
			 "board of this station may carry, at least %" PRIu64, to, counter, counter);
		return IMP_ERR_USAGE;
	}
	if (to == counter) {
		IMP_INFO("journal: --serials-after %" PRIu64 " is the journal's own counter: "
			 "nothing skipped", to);
		return IMP_OK;
	}
	rc = jdb_counter_skip(j, &to, false);
	if (rc == IMP_OK)
		IMP_WARN("journal: serial counters %" PRIu64 " to %" PRIu64 " are never issued "
			 "(--serials-after); the next serial is counter %" PRIu64, counter + 1, to,
			 to + 1);
	return rc;
}

imp_err janchor_open_check(struct jnl *j)
{
	imp_err rc = anchor_lost(j);

	if (rc == IMP_OK)
		rc = open_skip(j);
	return rc ? rc : anchor_update(j, AO_OPEN, 0, 0);
}

imp_err janchor_before_issue(struct jnl *j, uint64_t issued)
{
	imp_err rc = IMP_OK;

	/* One intent per transaction: its first allocation's, counter c + 1
	 * at BEGIN, synced. No other connection commits while the transaction
	 * is open, so that intent stays true for every allocation after it;
	 * a crash before the COMMIT leaves the journal at c, which the open
	 * check accepts (intent = c + 1), however many it held. */
	if (j->reserve && issued > j->reserved) {
		/* The reservation outside first: what it bounds includes this. */
		uint64_t upto = issued + JNL_RESERVE_BLOCK - 1;

		rc = j->reserve(j->reserve_arg, upto);
		if (rc) {
			jerr_set(rc, "serial counter %" PRIu64 " could not be reserved outside the "
				 "journal (%s): no serial is issued; check the hsm, then retry",
				 issued, imp_err_str(rc));
			return rc;
		}
		j->reserved = upto;
	}
	if (!j->intent_synced) {
		rc = anchor_update(j, AO_INTENT, issued, 0);
		j->intent_synced = rc == IMP_OK;
	}
	if (rc == IMP_OK) {
		j->anchor_dirty = true; /* the commit's counter and head follow */
		if (issued > j->anchor_counter) /* a shared commit: the highest */
			j->anchor_counter = issued;
	}
	return rc;
}

void janchor_after_commit(struct jnl *j, uint64_t head)
{
	j->anchor_dirty = false;
	if (anchor_update(j, AO_COMMITTED, j->anchor_counter, head) != IMP_OK)
		IMP_WARN("journal: the anchor did not take the last commit: %s", jnl_last_error());
}

imp_err janchor_refuse_new(const char *journal)
{
	struct janchor a;
	imp_err rc = janchor_read(journal, &a);

	if (rc)
		return rc;
	if (a.present && (a.serial_counter > 0 || a.intent > 0 || a.head_seq > 0)) {
		jerr_set(IMP_ERR_JOURNAL, "no journal at %s (missing or empty), but %s-anchor says "
			 "this station issued %" PRIu64 " serials up to event %" PRIu64 ": a new "
			 "journal would issue them again; restore the journal from backup (a "
			 "journal is never created where one existed)", journal, journal,
			 a.intent > a.serial_counter ? a.intent : a.serial_counter, a.head_seq);
		return IMP_ERR_JOURNAL;
	}
	return IMP_OK;
}

/* ---------------------------------------------------------------- -wal */

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

bool jintegrity_wal_present(const char *path)
{
	char wal[4200];
	struct stat st;

	snprintf(wal, sizeof(wal), "%s-wal", path);
	return stat(wal, &st) == 0 && st.st_size > 0;
}

imp_err jintegrity_wal_precheck(const char *path)
{
	char wal[4200];
	uint8_t wh[32];
	uint32_t wps;
	ssize_t got;
	int fd;

	/*
	 * Only the -wal is opened here, never the journal itself: closing any
	 * descriptor of a file drops every POSIX lock this process holds on it,
	 * including SQLite's on another handle (SQLite holds its locks on the
	 * journal and its -shm, not on the -wal).
	 */
	snprintf(wal, sizeof(wal), "%s-wal", path);
	fd = open(wal, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return IMP_OK; /* none (or unreadable: SQLite says so) */
	got = read(fd, wh, sizeof(wh));
	close(fd);
	/* Cut short or without the magic: SQLite ignores it and starts afresh. */
	if (got < (ssize_t)sizeof(wh) || (be32(wh) & 0xFFFFFFFEu) != 0x377f0682u)
		return IMP_OK;
	wps = be32(wh + 8);
	if (be32(wh + 4) != 3007000u || wps != JOURNAL_PAGE_SIZE) {
		jerr_set(IMP_ERR_JOURNAL, "%s does not belong to the journal %s (%s): it was "
			 "left by another database; nothing was read from it: move it aside and "
			 "retry", wal, path,
			 wps != JOURNAL_PAGE_SIZE ? "another page size" : "another WAL version");
		return IMP_ERR_JOURNAL;
	}
	return IMP_OK;
}

/* ------------------------------------------------ read-only directory */

imp_err jintegrity_ro_name(const char *path, char *out, size_t cap, int *flags)
{
	char dir[4200], wal[4200], shm[4200];
	char *slash;
	struct stat st;
	size_t o = 0;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	if (access(slash ? dir : ".", W_OK) == 0) {
		snprintf(out, cap, "%s", path);
		return IMP_OK;
	}
	snprintf(wal, sizeof(wal), "%s-wal", path);
	snprintf(shm, sizeof(shm), "%s-shm", path);
	if (stat(wal, &st) == 0 && st.st_size > 0) {
		if (access(shm, R_OK) == 0) { /* SQLite reads a -wal through a read-only -shm */
			snprintf(out, cap, "%s", path);
			return IMP_OK;
		}
		jerr_set(IMP_ERR_JOURNAL, "the journal's directory is read-only and its -wal holds "
			 "commits not yet in %s (a station stopped without closing it): copy the "
			 "data directory to a writable place and run this there", path);
		return IMP_ERR_JOURNAL;
	}
	/* Nothing can change it and there is no -wal: read it as immutable (no
	 * -shm, no locks), with the path escaped for a URI. */
	o = (size_t)snprintf(out, cap, "file:");
	for (const char *p = path; *p && o + 4 < cap; p++) {
		if (*p == '?' || *p == '#' || *p == '%')
			o += (size_t)snprintf(out + o, cap - o, "%%%02X", (unsigned char)*p);
		else
			out[o++] = *p;
	}
	if (o + 16 >= cap)
		return IMP_ERR_CONFIG;
	snprintf(out + o, cap - o, "?immutable=1");
	*flags |= SQLITE_OPEN_URI;
	return IMP_OK;
}

/* --------------------------------------------------------- quick check */

/*
 * The journal file as stat(2) sees it: which file (device, inode) and its
 * last change (size, modification and status-change times to the
 * nanosecond). A write, a copy or restore in its place, a rename over it
 * each change one of them; the status-change time cannot be set back from
 * user space. stat only: a descriptor of the journal, once closed, would
 * drop SQLite's POSIX locks.
 */
static bool fingerprint(const char *path, char *out, size_t cap)
{
	struct stat st;
	int n;

	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
		return false;
	n = snprintf(out, cap, "imprint-journal-checked v1\n%ju %ju %jd %jd.%09ld %jd.%09ld\n",
		     (uintmax_t)st.st_dev, (uintmax_t)st.st_ino, (intmax_t)st.st_size,
		     (intmax_t)st.st_mtim.tv_sec, (long)st.st_mtim.tv_nsec,
		     (intmax_t)st.st_ctim.tv_sec, (long)st.st_ctim.tv_nsec);
	return n > 0 && (size_t)n < cap;
}

/* The file is the one this station closed cleanly after its pages were
 * checked (docs/JOURNAL.md "At open"): PATH-checked holds its fingerprint
 * and there is no -wal. Anything else, a missing, stale or damaged mark
 * included, says no. */
static bool unchanged_since_checked(const char *path)
{
	char want[256], mark[4200];
	uint8_t *got = NULL;
	size_t n = 0;
	bool same;

	if (jintegrity_wal_present(path) || !fingerprint(path, want, sizeof(want)))
		return false;
	snprintf(mark, sizeof(mark), "%s-checked", path);
	if (imp_read_file(mark, &got, &n) != IMP_OK)
		return false;
	same = n == strlen(want) && memcmp(got, want, n) == 0;
	free(got);
	return same;
}

void jintegrity_mark_checked(const char *path)
{
	char fp[256], mark[4200];

	if (jintegrity_wal_present(path) || !fingerprint(path, fp, sizeof(fp)))
		return;
	snprintf(mark, sizeof(mark), "%s-checked", path);
	if (imp_write_file_atomic(mark, fp, strlen(fp), 0600) != IMP_OK)
		IMP_DEBUG("journal: cannot write %s: the next open checks every page", mark);
}

static int qc_deadline(void *arg)
{
	return imp_now_ns() > *(uint64_t *)arg;
}

static imp_err page_check(struct jnl *j)
{
	uint64_t deadline = imp_now_ns() + (uint64_t)QUICK_CHECK_MS * 1000000u;
	sqlite3_stmt *st = NULL;
	const char *first = NULL;
	int src;
	imp_err rc;

	sqlite3_progress_handler(j->db, 10000, qc_deadline, &deadline);
	rc = jdb_prepare(j->db, "PRAGMA quick_check(1)", &st);
	if (rc) {
		sqlite3_progress_handler(j->db, 0, NULL, NULL);
		return rc;
	}
	src = sqlite3_step(st);
	if (src == SQLITE_ROW)
		first = (const char *)sqlite3_column_text(st, 0);
	if (src == SQLITE_INTERRUPT) {
		IMP_WARN("journal: the page check of %s stopped after %d s (a large journal): "
			 "it goes on unchecked; run `imprint status --verify` at a quiet moment",
			 j->path, QUICK_CHECK_MS / 1000);
		rc = IMP_OK;
	} else if (src != SQLITE_ROW || !first || strcmp(first, "ok") != 0) {
		char what[200];

		snprintf(what, sizeof(what), "%s", src != SQLITE_ROW ? sqlite3_errmsg(j->db)
						   : first ? first : "(no answer)");
		for (char *p = what; *p; p++)
			if (*p == '\n')
				*p = ' ';
		jerr_set(IMP_ERR_JOURNAL, "the journal %s is damaged (page check: %s); nothing is "
			 "written to it: %s", j->path, what,
			 jintegrity_wal_present(j->path)
				 ? "its -wal may be stale or foreign (put back from elsewhere): move "
				   "it aside and retry, else restore the journal from backup"
				 : "restore it from backup");
		rc = IMP_ERR_JOURNAL;
	} else {
		j->pages_ok = true;
		j->pages_checked = true;
	}
	sqlite3_finalize(st);
	sqlite3_progress_handler(j->db, 0, NULL, NULL);
	return rc;
}

imp_err jintegrity_quick_check(struct jnl *j)
{
	if (unchanged_since_checked(j->path)) {
		IMP_DEBUG("journal: %s is as this station closed it after a page check: not "
			  "checked again", j->path);
		j->pages_ok = true;
		return IMP_OK;
	}
	return page_check(j);
}

imp_err jnl_verify_pages(struct jnl *j)
{
	imp_err rc;

	jerr_clear();
	if (j->pages_checked)
		return IMP_OK; /* by this handle's open, a moment ago */
	jdb_lock_read(j);
	rc = page_check(j);
	jdb_unlock_read(j);
	return rc;
}

/* ------------------------------------------- boards table from events */

/*
 * What a board's events say of its row (docs/JOURNAL.md "The boards table
 * from the events"): "alloc" sets serial, counter, fixture (if it names one)
 * and state ALLOCATE; "state" and "reissue" set the state they name in "to";
 * the register event ("state" from null to IDENTIFY) sets fixture and key
 * mode; a "quarantine" of a board the journal did not know (no
 * "board_state") makes it QUARANTINED with its fixture. Other kinds leave
 * the row alone.
 */
struct replay {
	char uid[JNL_UID_HEX_MAX + 1];
	char state[16], serial[JNL_SERIAL_MAX], fixture[JNL_ERRMSG_MAX], key_mode[32];
	int64_t counter;
	bool has_counter;
	uint64_t last_seq;
};

static void copy_col(char *dst, size_t cap, sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	snprintf(dst, cap, "%s", t ? (const char *)t : "");
}

static void replay_event(struct replay *r, sqlite3_stmt *st)
{
	const char *kind = (const char *)sqlite3_column_text(st, 2);
	bool from_null = sqlite3_column_int(st, 4) != 0;
	bool unknown_board = sqlite3_column_int(st, 9) != 0;

	r->last_seq = (uint64_t)sqlite3_column_int64(st, 1);
	if (!kind)
		return;
	if (strcmp(kind, "alloc") == 0) {
		snprintf(r->state, sizeof(r->state), "ALLOCATE");
		copy_col(r->serial, sizeof(r->serial), st, 5);
		r->has_counter = sqlite3_column_type(st, 6) == SQLITE_INTEGER;
		r->counter = sqlite3_column_int64(st, 6);
		if (sqlite3_column_type(st, 7) != SQLITE_NULL)
			copy_col(r->fixture, sizeof(r->fixture), st, 7);
	} else if (strcmp(kind, "quarantine") == 0) {
		if (!unknown_board)
			return;
		snprintf(r->state, sizeof(r->state), "QUARANTINED");
		copy_col(r->fixture, sizeof(r->fixture), st, 7);
	} else if (sqlite3_column_type(st, 3) != SQLITE_NULL) { /* state, reissue */
		copy_col(r->state, sizeof(r->state), st, 3);
		if (strcmp(kind, "state") == 0 && from_null && strcmp(r->state, "IDENTIFY") == 0) {
			copy_col(r->fixture, sizeof(r->fixture), st, 7);
			copy_col(r->key_mode, sizeof(r->key_mode), st, 8);
		}
	}
}

static void add_diff(char *out, size_t cap, const char *what, const char *table, const char *events)
{
	size_t n = strlen(out);

	if (strcmp(table, events) == 0 || n >= cap)
		return;
	snprintf(out + n, cap - n, "%s%s '%s' (its events: '%s')", n ? ", " : "", what, table,
		 events);
}

/* Compare one row (row: the boards row's statement, or NULL if the board
 * has none) with its replay (r: NULL if it has no event); *bad if not. */
static void compare_board(sqlite3_stmt *row, const struct replay *r, jnl_board_mismatch_fn cb,
			  void *arg, bool *bad)
{
	char what[JNL_MSG_MAX], diffs[3072] = "", t[JNL_ERRMSG_MAX], c1[32], c2[32];
	const char *uid = row ? (const char *)sqlite3_column_text(row, 0) : r->uid;

	if (!uid)
		uid = "";
	if (!row) {
		snprintf(what, sizeof(what), "board %s has events (the newest is event %" PRIu64
			 ") but no row in the boards table: the row was removed outside imprint; "
			 "the events are what the station did: restore the journal from backup",
			 r->uid, r->last_seq);
	} else if (!r) {
		copy_col(t, sizeof(t), row, 1);
		snprintf(what, sizeof(what), "board %s has a row in the boards table (state %s) but "
			 "no event: the row was added outside imprint; restore the journal from "
			 "backup", uid, t);
	} else {
		copy_col(t, sizeof(t), row, 1);
		add_diff(diffs, sizeof(diffs), "state", t, r->state);
		copy_col(t, sizeof(t), row, 2);
		add_diff(diffs, sizeof(diffs), "serial", t, r->serial);
		copy_col(c1, sizeof(c1), row, 3);
		c2[0] = '\0';
		if (r->has_counter)
			snprintf(c2, sizeof(c2), "%" PRId64, r->counter);
		add_diff(diffs, sizeof(diffs), "counter", c1, c2);
		copy_col(t, sizeof(t), row, 4);
		add_diff(diffs, sizeof(diffs), "fixture", t, r->fixture);
		copy_col(t, sizeof(t), row, 5);
		add_diff(diffs, sizeof(diffs), "key mode", t, r->key_mode);
		if (!diffs[0])
			return;
		snprintf(what, sizeof(what), "board %s: the boards table has %s, up to event %" PRIu64
			 ": the table was edited outside imprint; the events are what the station "
			 "did: restore the journal from backup", uid, diffs, r->last_seq);
	}
	*bad = true;
	if (cb)
		cb(arg, uid, r ? r->last_seq : 0, what);
}

imp_err jnl_verify_boards(struct jnl *j, jnl_board_mismatch_fn cb, void *arg, uint64_t *boards)
{
	sqlite3_stmt *ev = NULL, *row = NULL;
	struct replay r;
	sqlite3 *db = NULL;
	bool have_ev = false, have_row = false, bad = false;
	uint64_t n = 0;
	imp_err rc;

	jerr_clear();
	if (boards)
		*boards = 0;
	rc = jdb_open_reader(j, &db);
	if (rc)
		return rc;
	rc = jdb_exec(db, "BEGIN");
	/* Both in uid order (boards' UNIQUE index, events_uid): a merge. */
	if (rc == IMP_OK)
		/* A detail that is not JSON (only an edit the chain reports makes
		 * one) reads as {}: the replay never fails on what it compares. */
		rc = jdb_prepare(db, "SELECT uid, seq, kind, json_extract(d, '$.to'), json_type(d, "
				 "'$.from') IS 'null', json_extract(d, '$.serial'), json_extract(d, "
				 "'$.counter'), json_extract(d, '$.fixture'), json_extract(d, "
				 "'$.key_mode'), json_type(d, '$.board_state') IS NULL FROM (SELECT uid, "
				 "seq, kind, CASE WHEN json_valid(detail) THEN detail ELSE '{}' END AS d "
				 "FROM events WHERE uid IS NOT NULL AND kind IN ('state', 'alloc', "
				 "'reissue', 'quarantine')) ORDER BY uid, seq", &ev);
	if (rc == IMP_OK)
		rc = jdb_prepare(db, "SELECT uid, state, serial, counter, fixture, key_mode FROM "
				 "boards ORDER BY uid", &row);
	if (rc)
		goto cleanup;
	rc = jdb_step_row(db, ev);
	have_ev = rc == IMP_OK;
	if (rc == IMP_ERR_NOT_FOUND)
		rc = IMP_OK;
	if (rc == IMP_OK) {
		rc = jdb_step_row(db, row);
		have_row = rc == IMP_OK;
		if (rc == IMP_ERR_NOT_FOUND)
			rc = IMP_OK;
	}
	while (rc == IMP_OK && (have_ev || have_row)) {
		const char *eu = have_ev ? (const char *)sqlite3_column_text(ev, 0) : NULL;
		const char *ru = have_row ? (const char *)sqlite3_column_text(row, 0) : NULL;
		int order = !eu ? 1 : !ru ? -1 : strcmp(eu, ru);

		if (order <= 0) {
			/* The group's uid whole (an edited one may be longer than
			 * r.uid holds, which only names it in messages). */
			char *group = strdup(eu);

			if (!group) {
				rc = IMP_ERR_NOMEM;
				break;
			}
			memset(&r, 0, sizeof(r));
			snprintf(r.uid, sizeof(r.uid), "%s", eu);
			while (have_ev && rc == IMP_OK) {
				const char *u = (const char *)sqlite3_column_text(ev, 0);

				if (!u || strcmp(u, group) != 0)
					break;
				replay_event(&r, ev);
				rc = jdb_step_row(db, ev);
				have_ev = rc == IMP_OK;
				if (rc == IMP_ERR_NOT_FOUND)
					rc = IMP_OK;
			}
			free(group);
			if (rc)
				break;
		}
		compare_board(order >= 0 ? row : NULL, order <= 0 ? &r : NULL, cb, arg, &bad);
		if (order >= 0) {
			n++;
			rc = jdb_step_row(db, row);
			have_row = rc == IMP_OK;
			if (rc == IMP_ERR_NOT_FOUND)
				rc = IMP_OK;
		}
	}
cleanup:
	sqlite3_finalize(ev);
	sqlite3_finalize(row);
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(db);
	if (boards)
		*boards = n;
	if (rc == IMP_OK && bad) {
		jerr_set(IMP_ERR_AUDIT, "the boards table differs from the journal's events");
		rc = IMP_ERR_AUDIT;
	}
	return rc;
}

/* ------------------------------------------------------- outbox probe */

imp_err jintegrity_probe_in_txn(struct jnl *j, const char *uid)
{
	struct jnl_event_ref appended = j->appended;
	uint64_t appended_seq = j->appended_seq;
	char now[40], why[JNL_MSG_MAX];
	sqlite3_stmt *st = NULL;
	imp_err rc;

	/* The chain's head in memory goes back with the rows. */
	memcpy(&j->probe_head, &j->head, sizeof(j->probe_head));
	rc = jdb_exec_kept(j->db, "SAVEPOINT jdb_probe");
	if (rc)
		return rc;
	jtime_now(now);
	/* The shape record_done writes: the board row, an outbox row on its
	 * indexes, an event; all rolled back. */
	rc = jdb_stmt(j->db, "UPDATE boards SET updated = updated WHERE uid = ?1", &st);
	if (rc == IMP_OK)
		rc = jdb_bind_text(j->db, st, 1, uid);
	if (rc == IMP_OK)
		rc = jdb_step_done(j->db, st, NULL);
	jdb_stmt_done(st);
	st = NULL;
	if (rc == IMP_OK)
		rc = jdb_stmt(j->db, "INSERT INTO outbox(record_id, serial, uid, kind, jws, "
			      "created) SELECT 'imprint-probe-' || uid, serial, uid, "
			      "'identity', 'probe', ?2 FROM boards WHERE uid = ?1", &st);
	if (rc == IMP_OK)
		rc = jdb_bind_text(j->db, st, 1, uid);
	if (rc == IMP_OK)
		rc = jdb_bind_text(j->db, st, 2, now);
	if (rc == IMP_OK)
		rc = jdb_step_done(j->db, st, NULL);
	jdb_stmt_done(st);
	if (rc == IMP_OK)
		rc = jchain_append(j, uid, NULL, "state", "{\"probe\":true}");
	snprintf(why, sizeof(why), "%s", jnl_last_error());
	if (!sqlite3_get_autocommit(j->db)) {
		(void)jdb_exec_kept(j->db, "ROLLBACK TO jdb_probe");
		(void)jdb_exec_kept(j->db, "RELEASE jdb_probe");
	}
	memcpy(&j->head, &j->probe_head, sizeof(j->head));
	j->appended = appended;
	j->appended_seq = appended_seq;
	if (rc != IMP_OK) {
		jerr_set(IMP_ERR_JOURNAL, "the journal cannot store the record of board %s (%s): "
			 "its fuses are not burnt; check the journal with `imprint status "
			 "--verify`, then resume", uid, why);
		return IMP_ERR_JOURNAL;
	}
	return IMP_OK;
}

imp_err jnl_outbox_probe(struct jnl *j, const char *uid)
{
	imp_err rc = jdb_begin(j);

	if (rc)
		return rc;
	rc = jintegrity_probe_in_txn(j, uid);
	return jdb_end(j, rc);
}

/* ------------------------------------------------------------- outbox */

/* The events that put a record in the outbox, with its row (NULLs: none). */
#define OUTBOX_PUT_EVENTS \
	"SELECT e.seq, e.uid, e.serial, e.rid, e.jh, e.k, o.record_id, o.jws, o.serial, " \
	"o.uid, o.kind FROM (SELECT seq, uid, serial, json_extract(d, '$.record_id') AS rid, " \
	"json_extract(d, '$.jws_sha256') AS jh, CASE kind WHEN 'state' THEN 'identity' ELSE " \
	"'revocation' END AS k FROM (SELECT seq, uid, serial, kind, CASE WHEN " \
	"json_valid(detail) THEN detail ELSE '{}' END AS d FROM events WHERE kind IN " \
	"('state', 'outbox')) WHERE (kind = 'state' AND json_extract(d, '$.to') = 'DONE' AND " \
	"json_extract(d, '$.record_id') IS NOT NULL) OR (kind = 'outbox' AND " \
	"json_extract(d, '$.action') = 'queued')) AS e LEFT JOIN outbox o ON o.record_id = " \
	"e.rid ORDER BY e.seq"

/* Each row with what its board's outbox events say of it: put there by an
 * event, delivered, rejected. */
#define OUTBOX_ROWS \
	"SELECT o.record_id, o.uid, o.delivered_at IS NOT NULL, o.rejected_reason IS NOT " \
	"NULL, (SELECT max(seq) FROM events e WHERE e.uid = o.uid), " \
	"(SELECT count(*) FROM events e WHERE e.uid = o.uid AND json_valid(e.detail) AND " \
	"json_extract(e.detail, '$.record_id') = o.record_id AND ((e.kind = 'state' AND " \
	"json_extract(e.detail, '$.to') = 'DONE') OR (e.kind = 'outbox' AND " \
	"json_extract(e.detail, '$.action') = 'queued'))), " \
	"(SELECT count(*) FROM events e WHERE e.uid = o.uid AND e.kind = 'outbox' AND " \
	"json_valid(e.detail) AND json_extract(e.detail, '$.record_id') = o.record_id AND " \
	"json_extract(e.detail, '$.action') = 'delivered'), " \
	"(SELECT count(*) FROM events e WHERE e.uid = o.uid AND e.kind = 'outbox' AND " \
	"json_valid(e.detail) AND json_extract(e.detail, '$.record_id') = o.record_id AND " \
	"json_extract(e.detail, '$.action') = 'rejected') FROM outbox o ORDER BY o.rowid"

static const char *col(sqlite3_stmt *st, int i)
{
	const char *v = (const char *)sqlite3_column_text(st, i);

	return v ? v : "";
}

static bool outbox_put_check(sqlite3_stmt *st, jnl_board_mismatch_fn cb, void *arg)
{
	const char *uid = col(st, 1), *rid = col(st, 3);
	uint64_t seq = (uint64_t)sqlite3_column_int64(st, 0);
	char what[512], jh[JNL_HASH_HEX_LEN + 1] = "";

	what[0] = '\0';
	if (sqlite3_column_type(st, 6) == SQLITE_NULL)
		snprintf(what, sizeof(what), "record %s that event %" PRIu64 " put in the outbox "
			 "has no outbox row (deleted)", rid, seq);
	else if (jdb_sha256_hex(col(st, 7), jh) != IMP_OK || strcmp(jh, col(st, 4)) != 0)
		snprintf(what, sizeof(what), "outbox row %s holds another signed record than "
			 "event %" PRIu64 " put there (its SHA-256 %.16s..., the event's %.16s...)",
			 rid, seq, jh, col(st, 4));
	else if (strcmp(col(st, 8), col(st, 2)) != 0 || strcmp(col(st, 9), uid) != 0 ||
		 strcmp(col(st, 10), col(st, 5)) != 0)
		snprintf(what, sizeof(what), "outbox row %s says serial %s, board %s, kind %s; "
			 "event %" PRIu64 " put it there for serial %s, board %s, kind %s", rid,
			 col(st, 8), col(st, 9), col(st, 10), seq, col(st, 2), uid, col(st, 5));
	if (!what[0])
		return true;
	if (cb)
		cb(arg, uid, seq, what);
	return false;
}

static bool outbox_row_check(sqlite3_stmt *st, jnl_board_mismatch_fn cb, void *arg)
{
	const char *rid = col(st, 0);
	bool delivered = sqlite3_column_int(st, 2), rejected = sqlite3_column_int(st, 3);
	int64_t put = sqlite3_column_int64(st, 5), ev_delivered = sqlite3_column_int64(st, 6);
	int64_t ev_rejected = sqlite3_column_int64(st, 7);
	char what[512];

	what[0] = '\0';
	if (put == 0)
		snprintf(what, sizeof(what), "outbox row %s was put there by no event (added "
			 "outside imprint)", rid);
	/* Marked delivered or rejected without the event: a record kept from
	 * its delivery. The other way (a row pending again) only delivers it
	 * once more, which the registry answers as a duplicate. */
	else if (delivered && ev_delivered == 0)
		snprintf(what, sizeof(what), "outbox row %s is marked delivered, and no event "
			 "says it was delivered (the record would never be sent)", rid);
	else if (rejected && ev_rejected == 0)
		snprintf(what, sizeof(what), "outbox row %s is marked rejected, and no event says "
			 "it was rejected (the record would never be sent)", rid);
	if (!what[0])
		return true;
	if (cb)
		cb(arg, col(st, 1), (uint64_t)sqlite3_column_int64(st, 4), what);
	return false;
}

imp_err jnl_verify_outbox(struct jnl *j, jnl_board_mismatch_fn cb, void *arg, uint64_t *rows)
{
	sqlite3_stmt *st = NULL;
	sqlite3 *db = NULL;
	bool bad = false;
	uint64_t n = 0;
	imp_err rc;

	jerr_clear();
	if (rows)
		*rows = 0;
	rc = jdb_open_reader(j, &db);
	if (rc)
		return rc;
	rc = jdb_exec(db, "BEGIN");
	if (rc == IMP_OK)
		rc = jdb_prepare(db, OUTBOX_PUT_EVENTS, &st);
	while (rc == IMP_OK && (rc = jdb_step_row(db, st)) == IMP_OK)
		bad |= !outbox_put_check(st, cb, arg);
	if (rc == IMP_ERR_NOT_FOUND)
		rc = IMP_OK;
	sqlite3_finalize(st);
	st = NULL;
	if (rc == IMP_OK)
		rc = jdb_prepare(db, OUTBOX_ROWS, &st);
	while (rc == IMP_OK && (rc = jdb_step_row(db, st)) == IMP_OK) {
		n++;
		bad |= !outbox_row_check(st, cb, arg);
	}
	if (rc == IMP_ERR_NOT_FOUND)
		rc = IMP_OK;
	sqlite3_finalize(st);
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(db);
	if (rows)
		*rows = n;
	return rc ? rc : bad ? IMP_ERR_AUDIT : IMP_OK;
}

/* ------------------------------------------------------ other anchors */

imp_err jnl_checkpoint_head(struct jnl *j, uint64_t *seq, char head[JNL_HASH_HEX_LEN + 1],
			    uint64_t *serial_counter)
{
	sqlite3_stmt *st = NULL;
	uint64_t h;
	sqlite3 *db = NULL;
	imp_err rc;

	*seq = 0;
	head[0] = '\0';
	rc = jdb_open_reader(j, &db);
	if (rc)
		return rc;
	rc = jdb_exec(db, "BEGIN");
	if (rc == IMP_OK)
		rc = journal_marks(db, serial_counter, &h);
	if (rc == IMP_OK)
		rc = jdb_prepare(db, "SELECT seq, head_hash FROM checkpoints ORDER BY seq DESC "
				 "LIMIT 1", &st);
	if (rc == IMP_OK) {
		rc = jdb_step_row(db, st);
		if (rc == IMP_OK) {
			*seq = (uint64_t)sqlite3_column_int64(st, 0);
			snprintf(head, JNL_HASH_HEX_LEN + 1, "%s",
				 (const char *)sqlite3_column_text(st, 1));
		} else if (rc == IMP_ERR_NOT_FOUND) {
			rc = IMP_OK;
		}
	}
	sqlite3_finalize(st);
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(db);
	return rc;
}

imp_err jnl_check_external(struct jnl *j, const char *where, uint64_t serial_counter,
			   uint64_t seq, const char *head, char *msg, size_t cap)
{
	sqlite3_stmt *st = NULL;
	uint64_t counter, h;
	sqlite3 *db = NULL;
	char hash[JNL_HASH_HEX_LEN + 1] = "";
	imp_err rc;

	if (msg && cap)
		msg[0] = '\0';
	rc = jdb_open_reader(j, &db);
	if (rc)
		return rc;
	rc = jdb_exec(db, "BEGIN");
	if (rc == IMP_OK)
		rc = journal_marks(db, &counter, &h);
	if (rc == IMP_OK && seq > 0 && seq <= h) {
		rc = jdb_prepare(db, "SELECT hash FROM events WHERE seq = ?1", &st);
		if (rc == IMP_OK)
			rc = jdb_bind_i64(db, st, 1, (int64_t)seq);
		if (rc == IMP_OK && jdb_step_row(db, st) == IMP_OK)
			snprintf(hash, sizeof(hash), "%s", (const char *)sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
	}
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(db);
	if (rc)
		return rc;
	if (counter < serial_counter || h < seq) {
		snprintf(msg, cap, "the journal is behind %s: it holds serial counter %" PRIu64
			 " and event %" PRIu64 ", the anchor %" PRIu64 " and event %" PRIu64 " (the "
			 "journal, or the whole data directory, was put back from an older copy); no "
			 "serial is issued from it: restore the newest journal", where, counter, h,
			 serial_counter, seq);
		return IMP_ERR_AUDIT;
	}
	if (seq > 0 && strcmp(hash, head) != 0) {
		snprintf(msg, cap, "the journal's event %" PRIu64 " is not the one %s signed (hash "
			 "%.16s..., the anchor %.16s...): the chain was rewritten; restore the newest "
			 "journal", seq, where, hash[0] ? hash : "(none)", head);
		return IMP_ERR_AUDIT;
	}
	return IMP_OK;
}
