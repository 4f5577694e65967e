/*
 * Journal: board rows, serial allocation and quota, state transitions,
 * failures, quarantine, reissue, and the outbox.
 *
 * Each public write is one BEGIN IMMEDIATE transaction that changes the row
 * and appends its event together; the function returns after COMMIT.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "imprint/log.h"
#include "imprint/util.h"
#include "journal_int.h"

static const char *const state_names[JNL_ST__COUNT] = {
	[JNL_ST_CONNECT] = "CONNECT",
	[JNL_ST_IDENTIFY] = "IDENTIFY",
	[JNL_ST_ALLOCATE] = "ALLOCATE",
	[JNL_ST_KEYS] = "KEYS",
	[JNL_ST_CERTIFY] = "CERTIFY",
	[JNL_ST_INJECT] = "INJECT",
	[JNL_ST_FIRMWARE] = "FIRMWARE",
	[JNL_ST_CHALLENGE] = "CHALLENGE",
	[JNL_ST_LOCK] = "LOCK",
	[JNL_ST_RECORD] = "RECORD",
	[JNL_ST_DONE] = "DONE",
	[JNL_ST_FAILED] = "FAILED",
	[JNL_ST_QUARANTINED] = "QUARANTINED",
};

const char *jnl_state_name(enum jnl_state s)
{
	if ((unsigned)s >= JNL_ST__COUNT)
		return "?";
	return state_names[s];
}

imp_err jnl_state_parse(const char *name, enum jnl_state *out)
{
	for (int i = 0; name && i < JNL_ST__COUNT; i++) {
		if (strcmp(name, state_names[i]) == 0) {
			*out = (enum jnl_state)i;
			return IMP_OK;
		}
	}
	return IMP_ERR_NOT_FOUND;
}

void jnl_board_release(struct jnl_board *b)
{
	if (!b)
		return;
	free(b->data);
	memset(b, 0, sizeof(*b));
}

/* Lowercase a hex UID; IMP_ERR_USAGE unless 2..JNL_UID_HEX_MAX hex digits, even. */
static imp_err uid_norm(const char *in, char out[JNL_UID_HEX_MAX + 1])
{
	size_t n = in ? strlen(in) : 0;

	if (n < 2 || n > JNL_UID_HEX_MAX || n % 2) {
		jerr_set(IMP_ERR_USAGE, "chip uid must be 2 to %u hex digits, even", JNL_UID_HEX_MAX);
		return IMP_ERR_USAGE;
	}
	for (size_t i = 0; i < n; i++) {
		char c = in[i];

		if (c >= 'A' && c <= 'F')
			c = (char)(c - 'A' + 'a');
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
			jerr_set(IMP_ERR_USAGE, "chip uid is not hex: %.40s", in);
			return IMP_ERR_USAGE;
		}
		out[i] = c;
	}
	out[n] = '\0';
	return IMP_OK;
}

/* A text column into dst, cut to cap - 1 bytes (as snprintf would). */
static void copy_col(char *dst, size_t cap, sqlite3_stmt *st, int i)
{
	const char *s = (const char *)sqlite3_column_text(st, i);
	size_t n = s ? (size_t)sqlite3_column_bytes(st, i) : 0;

	if (n >= cap)
		n = cap - 1;
	if (n)
		memcpy(dst, s, n);
	dst[n] = '\0';
}

imp_err jboard_from_row(sqlite3_stmt *st, struct jnl_board *b, bool copy_data)
{
	const char *state = (const char *)sqlite3_column_text(st, 2);
	const char *data = (const char *)sqlite3_column_text(st, 11);

	memset(b, 0, sizeof(*b));
	copy_col(b->uid, sizeof(b->uid), st, 0);
	copy_col(b->serial, sizeof(b->serial), st, 1);
	if (jnl_state_parse(state, &b->state) != IMP_OK) {
		jerr_set(IMP_ERR_JOURNAL, "board %s has an unknown state %s", b->uid,
			 state ? state : "(null)");
		return IMP_ERR_JOURNAL;
	}
	copy_col(b->key_mode, sizeof(b->key_mode), st, 3);
	copy_col(b->fixture, sizeof(b->fixture), st, 4);
	b->attempts = (uint32_t)sqlite3_column_int64(st, 5);
	b->reissues = (uint32_t)sqlite3_column_int64(st, 6);
	b->last_error = (imp_err)sqlite3_column_int(st, 7);
	copy_col(b->last_error_msg, sizeof(b->last_error_msg), st, 8);
	copy_col(b->created, sizeof(b->created), st, 9);
	copy_col(b->updated, sizeof(b->updated), st, 10);
	if (!data)
		data = "{}";
	if (copy_data) {
		b->data = strdup(data);
		if (!b->data)
			return IMP_ERR_NOMEM;
	} else {
		b->data = (char *)data;
	}
	return IMP_OK;
}

/* Read a board by column ("uid" or "serial"); IMP_ERR_NOT_FOUND if absent. */
static imp_err load_board(sqlite3 *db, const char *col, const char *key, struct jnl_board *b)
{
	const char *sql = strcmp(col, "serial") == 0
				  ? "SELECT " BOARD_COLS " FROM boards WHERE serial = ?1"
				  : "SELECT " BOARD_COLS " FROM boards WHERE uid = ?1";
	sqlite3_stmt *st = NULL;
	imp_err rc;

	rc = jdb_stmt(db, sql, &st);
	if (rc == IMP_OK)
		rc = jdb_bind_text(db, st, 1, key);
	if (rc == IMP_OK)
		rc = jdb_step_row(db, st);
	if (rc == IMP_OK)
		rc = jboard_from_row(st, b, true);
	jdb_stmt_done(st);
	return rc;
}

/* The refusal a finished or rejected board gets, IMP_OK for one in flight. */
/* Into a board's transaction: uid normalised into u, then BEGIN. Nothing is
 * open when it fails; otherwise the caller ends with jdb_end(). */
static imp_err board_begin(struct jnl *j, const char *uid, char u[JNL_UID_HEX_MAX + 1])
{
	imp_err rc = uid_norm(uid, u);

	return rc ? rc : jdb_begin(j);
}

/* The board u inside the transaction; IMP_ERR_NOT_FOUND says so. */
static imp_err board_load(struct jnl *j, const char *u, struct jnl_board *b)
{
	imp_err rc = load_board(j->db, "uid", u, b);

	if (rc == IMP_ERR_NOT_FOUND)
		jerr_set(rc, "board %s is not in the journal", u);
	return rc;
}

static imp_err closed_board(const struct jnl_board *b)
{
	switch (b->state) {
	case JNL_ST_DONE:
		jerr_set(IMP_ERR_DUPLICATE, "board %s: identity complete (serial %s); a "
			 "supervisor reissue is needed to provision it again", b->uid, b->serial);
		return IMP_ERR_DUPLICATE;
	case JNL_ST_FAILED:
		jerr_set(IMP_ERR_BOARD, "board %s was rejected (%s: %s); a supervisor reissue is "
			 "needed to retry it", b->uid, imp_err_name(b->last_error),
			 b->last_error_msg);
		return IMP_ERR_BOARD;
	case JNL_ST_QUARANTINED:
		jerr_set(IMP_ERR_QUARANTINE, "board %s is quarantined (%s): set it aside",
			 b->uid, b->last_error_msg);
		return IMP_ERR_QUARANTINE;
	default:
		return IMP_OK;
	}
}

static const char *str_or_null(const char *s)
{
	return s && s[0] ? s : NULL;
}

void jdata_cache_free(struct jnl *j)
{
	for (unsigned i = 0; i < JDATA_CACHE; i++) {
		free(j->data_cache[i].text);
		json_decref(j->data_cache[i].obj);
	}
	memset(j->data_cache, 0, sizeof(j->data_cache));
}

/* Take board u's parsed data out of the cache if it is exactly stored
 * (NULL otherwise, or if absent). */
static json_t *data_take(struct jnl *j, const char *u, const char *stored)
{
	for (unsigned i = 0; i < JDATA_CACHE; i++) {
		struct jdata_cached *e = &j->data_cache[i];
		json_t *o;

		if (!e->text || strcmp(e->uid, u) != 0)
			continue;
		o = strcmp(e->text, stored) == 0 ? e->obj : (json_decref(e->obj), NULL);
		free(e->text);
		e->text = NULL;
		e->obj = NULL;
		return o;
	}
	return NULL;
}

/*
 * Remember obj (a reference is taken) as board u's data, text: in a free
 * entry (the one data_take just emptied for u, mostly), else in place of
 * the one kept longest ago. Evicting in turn instead took the entries of
 * boards still in flight once as many boards as entries ran (64 fixtures:
 * four state changes in ten parsed their board's data again).
 */
static void data_keep(struct jnl *j, const char *u, const char *text, json_t *obj)
{
	struct jdata_cached *e = &j->data_cache[0];

	for (unsigned i = 0; i < JDATA_CACHE; i++) {
		struct jdata_cached *c = &j->data_cache[i];

		if (!c->text) {
			e = c;
			break;
		}
		if (c->kept < e->kept)
			e = c;
	}
	e->kept = ++j->data_next;

	free(e->text);
	json_decref(e->obj);
	e->text = strdup(text);
	e->obj = e->text ? json_incref(obj) : NULL;
	snprintf(e->uid, sizeof(e->uid), "%s", u);
}

/* A data patch given as text, parsed: *out new, IMP_ERR_USAGE if it is not
 * one JSON object. */
static imp_err parse_patch(const char *patch, json_t **out)
{
	json_error_t err;
	json_t *p = json_loads(patch, JSON_REJECT_DUPLICATES, &err);

	*out = NULL;
	if (!p || !json_is_object(p)) {
		jerr_set(IMP_ERR_USAGE, "board data must be a JSON object: %s",
			 p ? "not an object" : err.text);
		json_decref(p);
		return IMP_ERR_USAGE;
	}
	*out = p;
	return IMP_OK;
}

/*
 * Merge p (a JSON object, borrowed) into stored, board u's data: members
 * replace, null members delete. *merged is malloc'ed. stored is parsed
 * only when it is not what this handle last wrote for u.
 */
static imp_err merge_data(struct jnl *j, const char *u, const char *stored, json_t *p,
			  char **merged)
{
	json_error_t err;
	json_t *base = NULL, *v;
	const char *key;
	imp_err rc = IMP_OK;

	if (!stored || !stored[0])
		stored = "{}";
	base = data_take(j, u, stored);
	if (!base)
		base = json_loads(stored, 0, &err);
	if (!base || !json_is_object(base)) {
		jerr_set(IMP_ERR_JOURNAL, "stored board data is not a JSON object");
		rc = IMP_ERR_JOURNAL;
		goto cleanup;
	}
	json_object_foreach(p, key, v) {
		int r = json_is_null(v) ? (json_object_del(base, key), 0)
					: json_object_set(base, key, v);

		if (r) {
			rc = IMP_ERR_NOMEM;
			goto cleanup;
		}
	}
	*merged = jcanon_dump(base);
	if (!*merged) {
		rc = IMP_ERR_NOMEM;
		goto cleanup;
	}
	/* Kept even if the transaction is rolled back: the row's text then
	 * differs from it, and the next merge parses the row. */
	data_keep(j, u, *merged, base);
cleanup:
	json_decref(base);
	return rc;
}

/* Build a detail, append it as an event of this board. */
static imp_err board_event(struct jnl *j, const char *uid, const char *serial,
			   const char *kind, json_t *detail)
{
	return jchain_append_json(j, uid, str_or_null(serial), kind, detail);
}

/* An event of this board whose detail is these members (jcanon_object:
 * the text json_pack and jjson_dump gave, without building a json_t). */
static imp_err board_event_m(struct jnl *j, const char *uid, const char *serial,
			     const char *kind, const struct jcanon_member *m, size_t n)
{
	char *text = jcanon_object(m, n);
	imp_err rc;

	if (!text) {
		jerr_set(IMP_ERR_NOMEM, "cannot build event detail");
		return IMP_ERR_NOMEM;
	}
	rc = jchain_append(j, uid, str_or_null(serial), kind, text);
	free(text);
	return rc;
}

static imp_err exec_bound(sqlite3 *db, const char *sql, int *sqlite_rc, int n, const char **texts)
{
	sqlite3_stmt *st = NULL;
	imp_err rc;

	rc = jdb_stmt(db, sql, &st);
	if (rc == IMP_OK && sqlite3_bind_parameter_count(st) < n)
		n = sqlite3_bind_parameter_count(st);
	for (int i = 0; rc == IMP_OK && i < n; i++)
		rc = jdb_bind_text(db, st, i + 1, texts[i]);
	if (rc == IMP_OK)
		rc = jdb_step_done(db, st, sqlite_rc);
	jdb_stmt_done(st);
	return rc;
}

/* ---------------------------------------------------------------- register */

imp_err jnl_register(struct jnl *j, const char *uid, const char *fixture,
			      const char *key_mode, struct jnl_board *out, bool *existing)
{
	char u[JNL_UID_HEX_MAX + 1], now[40];
	struct jnl_board b = { 0 };
	imp_err rc;

	if (out)
		memset(out, 0, sizeof(*out));
	if (existing)
		*existing = false;
	rc = board_begin(j, uid, u);
	if (rc)
		return rc;
	rc = load_board(j->db, "uid", u, &b);
	if (rc == IMP_OK) {
		if (existing)
			*existing = true;
		rc = closed_board(&b);
		goto cleanup;
	}
	if (rc != IMP_ERR_NOT_FOUND)
		goto cleanup;
	jtime_now(now);
	{
		const char *args[] = { u, str_or_null(key_mode), str_or_null(fixture), now };

		rc = exec_bound(j->db, "INSERT INTO boards(uid, state, key_mode, fixture, created, "
				"updated) VALUES (?1, 'IDENTIFY', ?2, ?3, ?4, ?4)", NULL, 4, args);
	}
	if (rc)
		goto cleanup;
	rc = board_event(j, u, NULL, "state",
			 json_pack("{s:n, s:s, s:s?, s:s?}", "from", "to", "IDENTIFY", "fixture",
				   str_or_null(fixture), "key_mode", str_or_null(key_mode)));
	if (rc)
		goto cleanup;
	rc = load_board(j->db, "uid", u, &b);
cleanup:
	rc = jdb_end(j, rc);
	if (out && (rc == IMP_OK || b.uid[0]))
		*out = b;
	else
		jnl_board_release(&b);
	return rc;
}

/* ---------------------------------------------------------------- allocate */

static imp_err default_serial(uint64_t counter, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%010" PRIu64, counter);

	return n > 0 && (size_t)n < cap ? IMP_OK : IMP_ERR_INTERNAL;
}

/*
 * Line mode: take the next counter of the oldest open lease, inside the
 * allocation's transaction. IMP_ERR_QUOTA when no leased counter is left.
 */
static imp_err lease_take(struct jnl *j, const char *uid, uint64_t *counter,
			  uint64_t *lease_id)
{
	sqlite3_stmt *st = NULL;
	imp_err rc;

	rc = jdb_prepare(j->db, "SELECT id, next_counter FROM leases WHERE closed IS NULL AND "
			 "next_counter <= last_counter ORDER BY first_counter LIMIT 1", &st);
	if (rc == IMP_OK)
		rc = jdb_step_row(j->db, st);
	if (rc == IMP_ERR_NOT_FOUND) {
		jerr_set(IMP_ERR_QUOTA, "no leased serial left for board %s: the line's quota is "
			 "used up, or the line database is unreachable and this station's leases "
			 "are spent; 'imprint line status' tells which", uid);
		rc = IMP_ERR_QUOTA;
	}
	if (rc == IMP_OK) {
		*lease_id = (uint64_t)sqlite3_column_int64(st, 0);
		*counter = (uint64_t)sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	if (rc)
		return rc;
	rc = jdb_prepare(j->db, "UPDATE leases SET next_counter = next_counter + 1 WHERE id = ?1",
			 &st);
	if (rc == IMP_OK)
		rc = jdb_bind_i64(j->db, st, 1, (int64_t)*lease_id);
	if (rc == IMP_OK)
		rc = jdb_step_done(j->db, st, NULL);
	sqlite3_finalize(st);
	return rc;
}

static imp_err update_state(struct jnl *j, const char *uid, const char *from_serial,
			    enum jnl_state from, enum jnl_state to, const char *stored_data,
			    const char *data_json, json_t *data, const char *kind);

imp_err jnl_allocate(struct jnl *j, const char *uid, const char *fixture,
			      char *serial_out, size_t cap, bool *existing)
{
	return jnl_allocate_to(j, uid, fixture, serial_out, cap, existing, JNL_ST_ALLOCATE, NULL);
}

imp_err jnl_allocate_to(struct jnl *j, const char *uid, const char *fixture, char *serial_out,
			size_t cap, bool *existing, enum jnl_state then, json_t *then_data)
{
	char u[JNL_UID_HEX_MAX + 1], now[40], serial[JNL_SERIAL_MAX], cbuf[24];
	struct jnl_board b = { 0 };
	uint64_t quota, counter, issued = 0, lease_id = 0;
	bool known = false, leased = false;
	int src = 0;
	imp_err rc;

	if (existing)
		*existing = false;
	if (cap)
		serial_out[0] = '\0';
	if ((unsigned)then >= JNL_ST__COUNT || then < JNL_ST_ALLOCATE || then == JNL_ST_DONE ||
	    then == JNL_ST_FAILED || then == JNL_ST_QUARANTINED ||
	    (then_data && !json_is_object(then_data))) {
		jerr_set(IMP_ERR_INTERNAL, "allocate cannot move board %s on to %s",
			 uid ? uid : "(null)", jnl_state_name(then));
		return IMP_ERR_INTERNAL;
	}
	rc = board_begin(j, uid, u);
	if (rc)
		return rc;
	rc = load_board(j->db, "uid", u, &b);
	if (rc == IMP_OK) {
		known = true;
		if (b.serial[0]) {
			/* The board already has its identity: hand it back (resume). */
			if (existing)
				*existing = true;
			if (strlen(b.serial) >= cap) {
				rc = IMP_ERR_INTERNAL;
				goto cleanup;
			}
			memcpy(serial_out, b.serial, strlen(b.serial) + 1);
			rc = closed_board(&b);
			goto cleanup;
		}
		rc = closed_board(&b);
		if (rc)
			goto cleanup;
	} else if (rc != IMP_ERR_NOT_FOUND) {
		goto cleanup;
	}

	rc = jdb_setting_get_u64(j->db, JS_QUOTA, &quota);
	if (rc == IMP_OK)
		rc = jdb_setting_get_u64(j->db, JS_SERIAL_COUNTER, &counter);
	if (rc == IMP_OK)
		rc = jdb_leased(j->db, &leased);
	if (rc)
		goto cleanup;
	if (leased) {
		/* Line mode: the line's counter, from the oldest open lease. */
		issued = counter + 1;
		rc = lease_take(j, u, &counter, &lease_id);
		if (rc)
			goto cleanup;
	} else if (counter >= quota) {
		jerr_set(IMP_ERR_QUOTA, "production quota of %" PRIu64 " serials exhausted (%" PRIu64
			 " issued): no new identity for board %s; raise the quota in the "
			 "configuration if more are authorised", quota, counter, u);
		rc = IMP_ERR_QUOTA;
		goto cleanup;
	}
	if (!leased) {
		counter++;
		issued = counter;
	}
	rc = j->format_serial ? j->format_serial(j->format_arg, counter, serial, sizeof(serial))
			      : default_serial(counter, serial, sizeof(serial));
	if (rc == IMP_OK && (!memchr(serial, '\0', sizeof(serial)) || !serial[0]))
		rc = IMP_ERR_INTERNAL;
	if (rc) {
		jerr_set(rc, "cannot format serial number %" PRIu64 ": %s", counter,
			 imp_err_str(rc));
		goto cleanup;
	}
	if (strlen(serial) >= cap) {
		jerr_set(IMP_ERR_INTERNAL, "serial buffer too small");
		rc = IMP_ERR_INTERNAL;
		goto cleanup;
	}
	/* The anchor outside the file knows of this serial before it exists. */
	rc = janchor_before_issue(j, issued);
	if (rc)
		goto cleanup;
	rc = jdb_setting_set_u64(j->db, JS_SERIAL_COUNTER, issued);
	if (rc)
		goto cleanup;
	jtime_now(now);
	snprintf(cbuf, sizeof(cbuf), "%" PRIu64, counter);
	{
		const char *args[] = { u, serial, cbuf, str_or_null(fixture), now };

		rc = exec_bound(j->db, known ?
				"UPDATE boards SET serial = ?2, counter = CAST(?3 AS INTEGER), "
				"state = 'ALLOCATE', fixture = coalesce(?4, fixture), updated = ?5 "
				"WHERE uid = ?1" :
				"INSERT INTO boards(uid, serial, counter, state, fixture, created, "
				"updated) VALUES (?1, ?2, CAST(?3 AS INTEGER), 'ALLOCATE', ?4, ?5, ?5)",
				&src, 5, args);
	}
	if (rc && (src & 0xff) == SQLITE_CONSTRAINT) {
		jerr_set(IMP_ERR_DUPLICATE, "serial %s (counter %" PRIu64 ") is already issued: "
			 "the serial scheme must give a different serial for every counter",
			 serial, counter);
		rc = IMP_ERR_DUPLICATE;
	}
	if (rc)
		goto cleanup;
	{
		const struct jcanon_member m[] = {
			{ "counter", JCM_INT, .i = (json_int_t)counter },
			{ "serial", JCM_STR, .s = serial },
			{ "fixture", JCM_STR_OR_NULL, .s = str_or_null(fixture) },
			{ "from", JCM_STR, .s = known ? jnl_state_name(b.state) : "NEW" },
			leased ? (struct jcanon_member){ "lease", JCM_INT, .i = (json_int_t)lease_id }
			       : (struct jcanon_member){ "quota", JCM_INT, .i = (json_int_t)quota },
		};

		rc = board_event_m(j, u, serial, "alloc", m, IMP_ARRAY_SIZE(m));
	}
	/* The state after ALLOCATE, when the caller knows it, in the same
	 * transaction: its own "state" event, as jnl_set_state_obj writes it. */
	if (rc == IMP_OK && then != JNL_ST_ALLOCATE)
		rc = update_state(j, u, serial, JNL_ST_ALLOCATE, then, known ? b.data : NULL, NULL,
				  then_data, "state");
	if (rc)
		goto cleanup;
	memcpy(serial_out, serial, strlen(serial) + 1);
cleanup:
	jnl_board_release(&b);
	rc = jdb_end(j, rc);
	if (rc && rc != IMP_ERR_DUPLICATE && cap)
		serial_out[0] = '\0';
	return rc;
}

/* ------------------------------------------------------------- set_state */

/* The data members to merge: data_json (text) if not NULL, else data (a
 * JSON object, borrowed; NULL or empty for none). */
static imp_err update_state(struct jnl *j, const char *uid, const char *from_serial,
			    enum jnl_state from, enum jnl_state to, const char *stored_data,
			    const char *data_json, json_t *data, const char *kind)
{
	char now[40], *merged = NULL;
	json_t *patch = NULL;
	imp_err rc = IMP_OK;

	if (data_json) {
		rc = parse_patch(data_json, &patch);
		if (rc)
			return rc;
	} else if (data && json_object_size(data)) {
		patch = json_incref(data);
	}
	if (patch) {
		rc = merge_data(j, uid, stored_data, patch, &merged);
		if (rc)
			goto cleanup;
	}
	jtime_now(now);
	{
		const char *args[] = { uid, jnl_state_name(to), now, merged };

		/* Without a patch, the data column (and its json_valid check) is
		 * left alone. */
		rc = exec_bound(j->db, merged ? "UPDATE boards SET state = ?2, updated = ?3, "
				"data = ?4 WHERE uid = ?1" : "UPDATE boards SET state = ?2, "
				"updated = ?3 WHERE uid = ?1", NULL, merged ? 4 : 3, args);
	}
	if (rc)
		goto cleanup;
	if (strcmp(kind, "data") == 0) {
		const struct jcanon_member m[] = {
			{ "state", JCM_STR, .s = jnl_state_name(to) },
			{ "data", JCM_JSON, .v = patch },
		};

		rc = board_event_m(j, uid, from_serial, kind, m, IMP_ARRAY_SIZE(m));
	} else {
		const struct jcanon_member m[] = {
			{ "from", JCM_STR, .s = jnl_state_name(from) },
			{ "to", JCM_STR, .s = jnl_state_name(to) },
			{ "data", JCM_JSON_OR_NULL, .v = patch },
		};

		rc = board_event_m(j, uid, from_serial, kind, m, IMP_ARRAY_SIZE(m));
	}
cleanup:
	json_decref(patch);
	free(merged);
	return rc;
}

imp_err jnl_set_state(struct jnl *j, const char *uid, enum jnl_state new_state,
			       const char *data_json)
{
	return jnl_set_state_ev(j, uid, new_state, data_json, NULL);
}

static imp_err set_state(struct jnl *j, const char *uid, enum jnl_state new_state,
			 const char *data_json, json_t *data, struct jnl_event_ref *wrote)
{
	char u[JNL_UID_HEX_MAX + 1];
	struct jnl_board b = { 0 };
	struct jnl_event_ref ev = { 0 };
	imp_err rc;

	if ((unsigned)new_state >= JNL_ST__COUNT || new_state == JNL_ST_DONE ||
	    new_state == JNL_ST_FAILED || new_state == JNL_ST_QUARANTINED) {
		jerr_set(IMP_ERR_INTERNAL, "set_state cannot move board %s to %s: use record_done, "
			 "reject or quarantine", uid ? uid : "(null)", jnl_state_name(new_state));
		return IMP_ERR_INTERNAL;
	}
	rc = board_begin(j, uid, u);
	if (rc)
		return rc;
	rc = board_load(j, u, &b);
	if (rc)
		goto cleanup;
	rc = closed_board(&b);
	if (rc)
		goto cleanup;
	if (new_state > JNL_ST_ALLOCATE && !b.serial[0]) {
		jerr_set(IMP_ERR_INTERNAL, "board %s has no serial: allocate before %s", u,
			 jnl_state_name(new_state));
		rc = IMP_ERR_INTERNAL;
		goto cleanup;
	}
	rc = update_state(j, u, b.serial, b.state, new_state, b.data, data_json, data, "state");
	/* The step before the fuses: the move proves the journal can take the
	 * board's record (written and rolled back with it; docs/JOURNAL.md
	 * "Before an irreversible step"), and its event's head goes to the
	 * anchor file after the commit, before the step runs, so a journal (or
	 * -wal) that loses it is found behind, not resumed as a board before
	 * LOCK. */
	if (rc == IMP_OK && new_state == JNL_ST_LOCK)
		rc = jintegrity_probe_in_txn(j, u);
	if (rc == IMP_OK && new_state == JNL_ST_LOCK)
		j->anchor_dirty = true;
	ev = j->appended; /* jdb_end() may append a checkpoint after it */
cleanup:
	jnl_board_release(&b);
	rc = jdb_end(j, rc);
	if (rc == IMP_OK && wrote)
		*wrote = ev;
	return rc;
}

imp_err jnl_set_state_ev(struct jnl *j, const char *uid, enum jnl_state new_state,
			 const char *data_json, struct jnl_event_ref *wrote)
{
	return set_state(j, uid, new_state, data_json, NULL, wrote);
}

imp_err jnl_set_state_obj(struct jnl *j, const char *uid, enum jnl_state new_state,
			  json_t *data, struct jnl_event_ref *wrote)
{
	if (data && !json_is_object(data)) {
		jerr_set(IMP_ERR_USAGE, "board data must be a JSON object: not an object");
		return IMP_ERR_USAGE;
	}
	return set_state(j, uid, new_state, NULL, data, wrote);
}

imp_err jnl_set_data(struct jnl *j, const char *uid, const char *data_json)
{
	char u[JNL_UID_HEX_MAX + 1];
	struct jnl_board b = { 0 };
	imp_err rc;

	if (!data_json) {
		jerr_set(IMP_ERR_USAGE, "no board data given");
		return IMP_ERR_USAGE;
	}
	rc = board_begin(j, uid, u);
	if (rc)
		return rc;
	rc = board_load(j, u, &b);
	if (rc == IMP_OK)
		rc = closed_board(&b);
	if (rc == IMP_OK)
		rc = update_state(j, u, b.serial, b.state, b.state, b.data, data_json, NULL, "data");
	jnl_board_release(&b);
	return jdb_end(j, rc);
}

/* ------------------------------------------------------------------ reads */

/*
 * A committed row: on the kept reader of a read-write handle (no wait for a
 * shared COMMIT, none forced), on db for a read-only one.
 */
static imp_err read_board(struct jnl *j, const char *col, const char *key,
			  struct jnl_board *out)
{
	sqlite3 *db = NULL;
	imp_err rc;

	if (j->read_only) {
		jdb_lock_read(j);
		rc = load_board(j->db, col, key, out);
		jdb_unlock_read(j);
	} else {
		pthread_mutex_lock(&j->rlock);
		rc = jdb_kept_reader(j, &db);
		if (rc == IMP_OK)
			rc = load_board(db, col, key, out);
		pthread_mutex_unlock(&j->rlock);
	}
	if (rc)
		jnl_board_release(out);
	return rc;
}

imp_err jnl_get_board(struct jnl *j, const char *uid, struct jnl_board *out)
{
	char u[JNL_UID_HEX_MAX + 1];
	imp_err rc;

	jerr_clear();
	memset(out, 0, sizeof(*out));
	rc = uid_norm(uid, u);
	if (rc)
		return rc;
	return read_board(j, "uid", u, out);
}

imp_err jnl_get_board_by_serial(struct jnl *j, const char *serial,
					 struct jnl_board *out)
{
	imp_err rc;

	jerr_clear();
	memset(out, 0, sizeof(*out));
	if (!serial || !serial[0])
		return IMP_ERR_NOT_FOUND;
	rc = read_board(j, "serial", serial, out);
	return rc;
}

/* ---------------------------------------------------------------- failures */

static json_t *error_detail(imp_err code, const char *message, const char *fixture,
			    const char *state)
{
	return json_pack("{s:i, s:s, s:s, s:s?, s:s?}", "code", (int)code, "name",
			 imp_err_name(code), "message", message ? message : "", "fixture",
			 str_or_null(fixture), "state", state);
}

/* Record the error on the row (attempts + 1) and optionally the state. */
static imp_err record_error(struct jnl *j, const struct jnl_board *b, imp_err code,
			    const char *message, bool reject)
{
	char now[40], msg[JNL_ERRMSG_MAX], cbuf[16];
	imp_err rc;

	snprintf(msg, sizeof(msg), "%s", message ? message : "");
	snprintf(cbuf, sizeof(cbuf), "%d", (int)code);
	jtime_now(now);
	{
		const char *args[] = { b->uid, cbuf, msg, now,
				       reject ? "FAILED" : jnl_state_name(b->state) };

		rc = exec_bound(j->db, "UPDATE boards SET last_error_code = CAST(?2 AS INTEGER), "
				"last_error = ?3, attempts = attempts + 1, updated = ?4, "
				"state = ?5 WHERE uid = ?1", NULL, 5, args);
	}
	if (rc)
		return rc;
	rc = board_event(j, b->uid, b->serial, "error",
			 error_detail(code, msg, b->fixture, jnl_state_name(b->state)));
	if (rc || !reject)
		return rc;
	return board_event(j, b->uid, b->serial, "state",
			   json_pack("{s:s, s:s, s:s}", "from", jnl_state_name(b->state), "to",
				     "FAILED", "cause", imp_err_name(code)));
}

imp_err jnl_fail(struct jnl *j, const char *uid, const char *fixture,
			  imp_err code, const char *message)
{
	char u[JNL_UID_HEX_MAX + 1];
	struct jnl_board b = { 0 };
	imp_err rc;

	if (code == IMP_OK || (unsigned)code >= IMP_ERR__COUNT) {
		jerr_set(IMP_ERR_INTERNAL, "fail() needs an error code");
		return IMP_ERR_INTERNAL;
	}
	if (uid) {
		rc = uid_norm(uid, u);
		if (rc)
			return rc;
	}
	rc = jdb_begin(j);
	if (rc)
		return rc;
	if (!uid) {
		rc = board_event(j, NULL, NULL, "error", error_detail(code, message, fixture, NULL));
		goto cleanup;
	}
	rc = load_board(j->db, "uid", u, &b);
	if (rc == IMP_ERR_NOT_FOUND)
		jerr_set(rc, "board %s is not in the journal", u);
	if (rc)
		goto cleanup;
	if (fixture && fixture[0])
		snprintf(b.fixture, sizeof(b.fixture), "%s", fixture);
	rc = record_error(j, &b, code, message, false);
cleanup:
	jnl_board_release(&b);
	return jdb_end(j, rc);
}

imp_err jnl_reject(struct jnl *j, const char *uid, imp_err code,
			    const char *message)
{
	char u[JNL_UID_HEX_MAX + 1];
	struct jnl_board b = { 0 };
	imp_err rc;

	if (code == IMP_OK || (unsigned)code >= IMP_ERR__COUNT) {
		jerr_set(IMP_ERR_INTERNAL, "reject() needs an error code");
		return IMP_ERR_INTERNAL;
	}
	rc = board_begin(j, uid, u);
	if (rc)
		return rc;
	rc = board_load(j, u, &b);
	if (rc)
		goto cleanup;
	if (b.state == JNL_ST_DONE || b.state == JNL_ST_QUARANTINED) {
		rc = closed_board(&b);
		goto cleanup;
	}
	rc = record_error(j, &b, code, message, true);
cleanup:
	jnl_board_release(&b);
	return jdb_end(j, rc);
}

static json_t *quarantine_detail(const char *reason, const char *fixture, const char *board_state,
				  const struct jnl_observed *seen)
{
	json_t *d = json_pack("{s:s, s:s?}", "reason", reason, "fixture", str_or_null(fixture));

	if (d && board_state)
		json_object_set_new(d, "board_state", json_string(board_state));
	if (d && seen) {
		json_object_set_new(d, "lifecycle", json_string(seen->lifecycle ? seen->lifecycle : "?"));
		json_object_set_new(d, "fuses", json_integer((json_int_t)seen->fuses));
		json_object_set_new(d, "debug_open", json_boolean(seen->debug_open));
	}
	return d;
}

/* jnl_quarantine_seen; done_ok false: a DONE board is refused (jnl_quarantine). */
static imp_err quarantine(struct jnl *j, const char *uid, const char *fixture,
			  const struct jnl_observed *seen, const char *reason, bool done_ok)
{
	char u[JNL_UID_HEX_MAX + 1], now[40], msg[JNL_ERRMSG_MAX], cbuf[16];
	struct jnl_board b = { 0 };
	imp_err rc;

	rc = board_begin(j, uid, u);
	if (rc)
		return rc;
	snprintf(msg, sizeof(msg), "%s", reason && reason[0] ? reason : "locked and unknown");
	rc = load_board(j->db, "uid", u, &b);
	if (rc == IMP_OK) {
		if (b.state == JNL_ST_DONE && done_ok)
			rc = board_event(j, u, b.serial, "quarantine",
					 quarantine_detail(msg, fixture, "DONE", seen));
		else if (b.state != JNL_ST_QUARANTINED) {
			jerr_set(IMP_ERR_EXISTS, "board %s is known to the journal (%s%s%s): resume "
				 "it instead of quarantining it", u, jnl_state_name(b.state),
				 b.serial[0] ? ", serial " : "", b.serial);
			rc = IMP_ERR_EXISTS;
		}
		goto cleanup;
	}
	if (rc != IMP_ERR_NOT_FOUND)
		goto cleanup;
	snprintf(cbuf, sizeof(cbuf), "%d", (int)IMP_ERR_QUARANTINE);
	jtime_now(now);
	{
		const char *args[] = { u, str_or_null(fixture), cbuf, msg, now };

		rc = exec_bound(j->db, "INSERT INTO boards(uid, state, fixture, last_error_code, "
				"last_error, created, updated) VALUES (?1, 'QUARANTINED', ?2, "
				"CAST(?3 AS INTEGER), ?4, ?5, ?5)", NULL, 5, args);
	}
	if (rc)
		goto cleanup;
	rc = board_event(j, u, NULL, "quarantine", quarantine_detail(msg, fixture, NULL, seen));
cleanup:
	jnl_board_release(&b);
	return jdb_end(j, rc);
}

imp_err jnl_quarantine_seen(struct jnl *j, const char *uid, const char *fixture,
			    const struct jnl_observed *seen, const char *reason)
{
	return quarantine(j, uid, fixture, seen, reason, true);
}

imp_err jnl_quarantine(struct jnl *j, const char *uid, const char *fixture,
				const char *reason)
{
	return quarantine(j, uid, fixture, NULL, reason, false);
}

imp_err jnl_quarantine_counts(struct jnl *j, uint64_t *events, uint64_t *of_done)
{
	sqlite3_stmt *st = NULL;
	sqlite3 *db = NULL;
	imp_err rc;

	jerr_clear();
	*events = *of_done = 0;
	rc = jdb_open_reader(j, &db);
	if (rc)
		return rc;
	rc = jdb_prepare(db, "SELECT count(*), coalesce(sum(json_extract(detail, '$.board_state') "
			 "= 'DONE'), 0) FROM events WHERE kind = 'quarantine'", &st);
	if (rc == IMP_OK)
		rc = jdb_step_row(db, st);
	if (rc == IMP_OK) {
		*events = (uint64_t)sqlite3_column_int64(st, 0);
		*of_done = (uint64_t)sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}

imp_err jnl_reissue(struct jnl *j, const char *uid, const char *reason,
			     const char *authorised_by)
{
	char u[JNL_UID_HEX_MAX + 1], now[40];
	struct jnl_board b = { 0 };
	imp_err rc;

	if (!reason || !reason[0] || !authorised_by || !authorised_by[0]) {
		jerr_set(IMP_ERR_USAGE, "a reissue needs a reason and who authorised it");
		return IMP_ERR_USAGE;
	}
	rc = board_begin(j, uid, u);
	if (rc)
		return rc;
	rc = board_load(j, u, &b);
	if (rc)
		goto cleanup;
	if (b.state == JNL_ST_QUARANTINED) {
		rc = closed_board(&b);
		goto cleanup;
	}
	if (!b.serial[0]) {
		jerr_set(IMP_ERR_NOT_FOUND, "board %s has no serial: nothing to reissue, provision "
			 "it normally", u);
		rc = IMP_ERR_NOT_FOUND;
		goto cleanup;
	}
	jtime_now(now);
	{
		const char *args[] = { u, now };

		rc = exec_bound(j->db, "UPDATE boards SET state = 'ALLOCATE', reissues = reissues + 1, "
				"attempts = 0, last_error_code = 0, last_error = NULL, updated = ?2 "
				"WHERE uid = ?1", NULL, 2, args);
	}
	if (rc)
		goto cleanup;
	rc = board_event(j, u, b.serial, "reissue",
			 json_pack("{s:s, s:s, s:s, s:s, s:i}", "reason", reason, "authorised_by",
				   authorised_by, "from", jnl_state_name(b.state), "to", "ALLOCATE",
				   "reissues", (int)b.reissues + 1));
cleanup:
	jnl_board_release(&b);
	return jdb_end(j, rc);
}

/* ------------------------------------------------------------------ outbox */

static const char *const outbox_kinds[] = { "identity", "revocation" };

imp_err jdb_sha256_hex(const char *s, char out[JNL_HASH_HEX_LEN + 1])
{
	uint8_t md[32];
	unsigned int n = 0;

	if (!EVP_Digest(s, strlen(s), md, &n, jsha256(), NULL) || n != 32)
		return IMP_ERR_CRYPTO;
	imp_hex_encode(md, sizeof(md), out);
	return IMP_OK;
}

/* Outbox row of record_id: IMP_OK and its uid, or IMP_ERR_NOT_FOUND. */
static imp_err outbox_uid(sqlite3 *db, const char *record_id, char uid[JNL_UID_HEX_MAX + 1])
{
	sqlite3_stmt *st = NULL;
	imp_err rc;

	rc = jdb_stmt(db, "SELECT uid FROM outbox WHERE record_id = ?1", &st);
	if (rc == IMP_OK)
		rc = jdb_bind_text(db, st, 1, record_id);
	if (rc == IMP_OK)
		rc = jdb_step_row(db, st);
	if (rc == IMP_OK)
		copy_col(uid, JNL_UID_HEX_MAX + 1, st, 0);
	jdb_stmt_done(st);
	return rc;
}

static imp_err outbox_insert(struct jnl *j, const struct jnl_board *b,
			     const char *record_id, enum jnl_outbox_kind kind, const char *jws,
			     char jws_hash[JNL_HASH_HEX_LEN + 1])
{
	char now[40];
	imp_err rc;

	rc = jdb_sha256_hex(jws, jws_hash);
	if (rc)
		return rc;
	jtime_now(now);
	{
		const char *args[] = { record_id, b->serial, b->uid, outbox_kinds[kind], jws, now };

		return exec_bound(j->db, "INSERT INTO outbox(record_id, serial, uid, kind, jws, "
				  "created) VALUES (?1, ?2, ?3, ?4, ?5, ?6)", NULL, 6, args);
	}
}

static imp_err check_record_args(const char *record_id, const char *jws)
{
	if (!record_id || !record_id[0] || !jws || !jws[0]) {
		jerr_set(IMP_ERR_USAGE, "an outbox record needs an id and a signed record");
		return IMP_ERR_USAGE;
	}
	return IMP_OK;
}

imp_err jnl_record_done(struct jnl *j, const char *uid, const char *record_id,
				 const char *jws)
{
	char u[JNL_UID_HEX_MAX + 1], owner[JNL_UID_HEX_MAX + 1], jh[JNL_HASH_HEX_LEN + 1];
	char now[40];
	struct jnl_board b = { 0 };
	imp_err rc;

	rc = check_record_args(record_id, jws);
	if (rc == IMP_OK)
		rc = board_begin(j, uid, u);
	if (rc)
		return rc;
	rc = board_load(j, u, &b);
	if (rc)
		goto cleanup;
	rc = outbox_uid(j->db, record_id, owner);
	if (rc == IMP_OK) {
		if (b.state == JNL_ST_DONE && strcmp(owner, u) == 0) {
			rc = IMP_OK; /* committed before: a resumed call */
			goto cleanup;
		}
		jerr_set(IMP_ERR_EXISTS, "record %s is already in the outbox", record_id);
		rc = IMP_ERR_EXISTS;
		goto cleanup;
	}
	if (rc != IMP_ERR_NOT_FOUND)
		goto cleanup;
	rc = closed_board(&b);
	if (rc)
		goto cleanup;
	if (b.state != JNL_ST_RECORD || !b.serial[0]) {
		jerr_set(IMP_ERR_INTERNAL, "board %s is in %s, not RECORD: cannot finish it", u,
			 jnl_state_name(b.state));
		rc = IMP_ERR_INTERNAL;
		goto cleanup;
	}
	rc = outbox_insert(j, &b, record_id, JNL_OUTBOX_IDENTITY, jws, jh);
	if (rc)
		goto cleanup;
	jtime_now(now);
	{
		const char *args[] = { u, now };

		rc = exec_bound(j->db, "UPDATE boards SET state = 'DONE', updated = ?2 WHERE uid = ?1",
				NULL, 2, args);
	}
	if (rc)
		goto cleanup;
	{
		const struct jcanon_member m[] = {
			{ "from", JCM_STR, .s = "RECORD" },
			{ "to", JCM_STR, .s = "DONE" },
			{ "record_id", JCM_STR, .s = record_id },
			{ "jws_sha256", JCM_STR, .s = jh },
		};

		rc = board_event_m(j, u, b.serial, "state", m, IMP_ARRAY_SIZE(m));
	}
	if (rc == IMP_OK)
		j->anchor_dirty = true; /* a record the journal must not lose */
cleanup:
	jnl_board_release(&b);
	return jdb_end(j, rc);
}

imp_err jnl_outbox_add_revocation(struct jnl *j, const char *uid,
					   const char *record_id, const char *jws)
{
	char u[JNL_UID_HEX_MAX + 1], owner[JNL_UID_HEX_MAX + 1], jh[JNL_HASH_HEX_LEN + 1];
	char revoked[JNL_RECORD_ID_MAX];
	struct jnl_board b = { 0 };
	imp_err rc;

	rc = check_record_args(record_id, jws);
	if (rc == IMP_OK)
		rc = board_begin(j, uid, u);
	if (rc)
		return rc;
	rc = load_board(j->db, "uid", u, &b);
	if (rc == IMP_OK && !b.serial[0])
		rc = IMP_ERR_NOT_FOUND;
	if (rc == IMP_ERR_NOT_FOUND)
		jerr_set(rc, "board %s has no identity to revoke", u);
	if (rc)
		goto cleanup;
	/* A serial is revoked once (docs/REGISTRY.md "Decommissioning"). */
	rc = jdb_revocation_record_id(j->db, u, revoked);
	if (rc == IMP_OK) {
		jerr_set(IMP_ERR_EXISTS, "serial %s is already revoked: revocation record %s is "
			 "in the outbox", b.serial, revoked);
		rc = IMP_ERR_EXISTS;
		goto cleanup;
	}
	if (rc != IMP_ERR_NOT_FOUND)
		goto cleanup;
	rc = outbox_uid(j->db, record_id, owner);
	if (rc == IMP_OK) {
		jerr_set(IMP_ERR_EXISTS, "record %s is already in the outbox", record_id);
		rc = IMP_ERR_EXISTS;
		goto cleanup;
	}
	if (rc != IMP_ERR_NOT_FOUND)
		goto cleanup;
	rc = outbox_insert(j, &b, record_id, JNL_OUTBOX_REVOCATION, jws, jh);
	if (rc == IMP_OK)
		rc = board_event(j, u, b.serial, "outbox",
				 json_pack("{s:s, s:s, s:s, s:s}", "action", "queued", "kind",
					   "revocation", "record_id", record_id, "jws_sha256", jh));
cleanup:
	jnl_board_release(&b);
	return jdb_end(j, rc);
}

/* Run an outbox update (?1 record_id, ?2 now, ?3 text); if it changed the
 * row and action is set, append an "outbox" event. */
/* One outbox row change and its event, inside the caller's transaction. */
static imp_err outbox_update_in_txn(struct jnl *j, const char *record_id,
				    const char *sql, const char *text, const char *action)
{
	char owner[JNL_UID_HEX_MAX + 1], now[40];
	sqlite3_stmt *st = NULL;
	char serial[JNL_SERIAL_MAX] = "";
	imp_err rc;

	if (!record_id || !record_id[0])
		return IMP_ERR_USAGE;
	rc = outbox_uid(j->db, record_id, owner);
	if (rc == IMP_ERR_NOT_FOUND)
		jerr_set(rc, "no record %s in the outbox", record_id);
	if (rc)
		goto cleanup;
	jtime_now(now);
	{
		const char *args[] = { record_id, now, text };

		rc = exec_bound(j->db, sql, NULL, 3, args);
	}
	if (rc || !action || sqlite3_changes(j->db) == 0)
		goto cleanup;
	rc = jdb_prepare(j->db, "SELECT serial FROM outbox WHERE record_id = ?1", &st);
	if (rc == IMP_OK)
		rc = jdb_bind_text(j->db, st, 1, record_id);
	if (rc == IMP_OK)
		rc = jdb_step_row(j->db, st);
	if (rc == IMP_OK)
		copy_col(serial, sizeof(serial), st, 0);
	if (rc)
		goto cleanup;
	rc = board_event(j, owner, serial, "outbox",
			 json_pack("{s:s, s:s, s:s?}", "action", action, "record_id", record_id,
				   "reason", text));
cleanup:
	sqlite3_finalize(st);
	return rc;
}

static imp_err outbox_update(struct jnl *j, const char *record_id, const char *sql,
			     const char *text, const char *action)
{
	imp_err rc;

	if (!record_id || !record_id[0])
		return IMP_ERR_USAGE;
	rc = jdb_begin(j);
	if (rc)
		return rc;
	rc = outbox_update_in_txn(j, record_id, sql, text, action);
	return jdb_end(j, rc);
}

#define SQL_DELIVERED "UPDATE outbox SET delivered_at = ?2 WHERE record_id = ?1 AND delivered_at IS NULL"

imp_err jnl_outbox_delivered(struct jnl *j, const char *record_id)
{
	return outbox_update(j, record_id, SQL_DELIVERED, NULL, "delivered");
}

imp_err jnl_outbox_delivered_many(struct jnl *j, const char *const *record_ids,
					   size_t n)
{
	imp_err rc;

	if (n == 0)
		return IMP_OK;
	rc = jdb_begin(j);
	if (rc)
		return rc;
	for (size_t i = 0; i < n && rc == IMP_OK; i++)
		rc = outbox_update_in_txn(j, record_ids[i], SQL_DELIVERED, NULL, "delivered");
	return jdb_end(j, rc);
}

imp_err jnl_outbox_attempt_failed(struct jnl *j, const char *record_id,
					   const char *error)
{
	return outbox_update(j, record_id, "UPDATE outbox SET attempts = attempts + 1, "
			     "last_error = ?3 WHERE record_id = ?1",
			     error ? error : "", NULL);
}

imp_err jnl_outbox_rejected(struct jnl *j, const char *record_id,
				     const char *reason)
{
	return outbox_update(j, record_id, "UPDATE outbox SET rejected_reason = ?3 "
			     "WHERE record_id = ?1 AND rejected_reason IS NULL",
			     reason && reason[0] ? reason : "rejected", "rejected");
}

imp_err jnl_line_delivered(struct jnl *j, const char *record_id,
				    const char *conflict)
{
	if (conflict)
		return outbox_update(j, record_id, "UPDATE outbox SET line_delivered_at = "
				     "coalesce(line_delivered_at, ?2), line_conflict = ?3 "
				     "WHERE record_id = ?1 AND line_conflict IS NULL",
				     conflict, "line_conflict");
	return outbox_update(j, record_id, "UPDATE outbox SET line_delivered_at = ?2 "
			     "WHERE record_id = ?1 AND line_delivered_at IS NULL AND ?3 IS NULL",
			     NULL, NULL);
}
