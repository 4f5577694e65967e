/*
 * Line mode on PostgreSQL (docs/LINE.md): leases of the line's serial
 * counter, UID claims, the central copy of records and journal heads, the
 * line status and the line audit. The only file that calls libpq.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "formats/jws.h"
#include "imprint/log.h"
#include "imprint/util.h"
#include "line/line.h"
#include "line_int.h"

#define LINE_LOCK_KEY "7262617269" /* advisory lock of the schema migration */
#define LINE_RETRY_S 1.0           /* back-off after a failed connect */
#define LINE_FEED_BATCH 200u
#define LINE_OFFLINE_WAIT_S 15.0   /* a board without a serial waits this long for the line */

struct line {
	pthread_mutex_t lock;    /* one libpq call at a time */
	PGconn *conn;
	char *conninfo;
	char *station;
	char *cert;
	uint32_t block;
	uint64_t quota;
	int timeout_s;
	struct jnl *j;
	bool ready;              /* schema checked, station registered (this connection) */
	bool quota_stored;
	double retry_at;         /* no connect attempt before this (imp_now_s) */
	bool warned;             /* "unreachable" logged since the last success */
	bool ro_warned;          /* "a read-only standby" logged since the last success */
	bool async_warned;       /* "asynchronous standby only" logged once */
	/* The line lost a lease of this station and has leased its counters
	 * again: no serial is issued from this line any more (docs/LINE.md,
	 * "Failover"). Set under lock. */
	bool refused;
	uint64_t demand;         /* boards this run may start; 0: unknown */
	bool provisioning;       /* line_set_demand called: the feed leases ahead */
	uint64_t allocated;      /* new serials this run */
	/* failures by step, from the journal's error events */
	uint64_t err_scan_seq;
	json_t *failures;
	/* feed thread */
	pthread_t feed;
	bool feed_running;
	pthread_mutex_t feed_lock;
	pthread_cond_t feed_cond;
	bool feed_stop;
	unsigned feed_ms;
};

/*
 * Schema migrations: migrations[v] brings the line database from version v
 * to v + 1, in one transaction with its schema_migrations row. PERSISTED:
 * never edit a shipped step, append one (docs/LINE.md).
 */
static const char *const migrations[] = {
	/* 0 -> 1 */
	"CREATE TABLE line_counter ("
	"  id           integer PRIMARY KEY CHECK (id = 1),"
	"  quota        bigint NOT NULL CHECK (quota >= 0),"
	"  next_counter bigint NOT NULL DEFAULT 1 CHECK (next_counter >= 1),"
	"  leased       bigint NOT NULL DEFAULT 0 CHECK (leased >= 0),"
	"  created_at   timestamptz NOT NULL DEFAULT now()"
	");"
	"CREATE TABLE stations ("
	"  id            text PRIMARY KEY,"
	"  certificate   text,"
	"  registered_at timestamptz NOT NULL DEFAULT now(),"
	"  last_seen     timestamptz NOT NULL DEFAULT now(),"
	"  head_seq      bigint,"
	"  head_hash     text,"
	"  head_at       timestamptz,"
	"  issued        bigint NOT NULL DEFAULT 0,"
	"  stats         jsonb NOT NULL DEFAULT '{}'"
	");"
	"CREATE TABLE leases ("
	"  id            bigserial PRIMARY KEY,"
	"  station       text NOT NULL REFERENCES stations(id),"
	"  first_counter bigint NOT NULL UNIQUE,"
	"  last_counter  bigint NOT NULL UNIQUE,"
	"  used          bigint NOT NULL DEFAULT 0,"
	"  granted_at    timestamptz NOT NULL DEFAULT now(),"
	"  released_at   timestamptz,"
	"  released_from bigint,"
	"  CHECK (last_counter >= first_counter),"
	"  CHECK (released_from IS NULL OR released_from BETWEEN first_counter AND last_counter + 1)"
	");"
	"CREATE TABLE uid_claims ("
	"  uid        text PRIMARY KEY,"
	"  station    text NOT NULL REFERENCES stations(id),"
	"  claimed_at timestamptz NOT NULL DEFAULT now()"
	");"
	"CREATE TABLE records ("
	"  record_id   text PRIMARY KEY,"
	"  station     text NOT NULL REFERENCES stations(id),"
	"  kind        text NOT NULL CHECK (kind IN ('identity', 'revocation')),"
	"  serial      text NOT NULL,"
	"  uid         text NOT NULL,"
	"  counter     bigint,"
	"  public_key  text,"
	"  jws         text NOT NULL,"
	"  created     timestamptz NOT NULL,"
	"  received_at timestamptz NOT NULL DEFAULT now(),"
	"  conflict    text"
	");"
	"CREATE INDEX records_station ON records(station, created);"
	"CREATE TABLE identities ("
	"  uid       text PRIMARY KEY,"
	"  serial    text NOT NULL UNIQUE,"
	"  station   text NOT NULL REFERENCES stations(id),"
	"  record_id text NOT NULL REFERENCES records(record_id)"
	");"
	"CREATE TABLE public_keys ("
	"  public_key text PRIMARY KEY,"
	"  uid        text NOT NULL,"
	"  record_id  text NOT NULL REFERENCES records(record_id)"
	");",
};
_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == LINE_SCHEMA_VERSION,
	       "one migration step per schema version");

/* ----------------------------------------------------------- libpq glue */

static void drop_conn(struct line *l)
{
	if (l->conn)
		PQfinish(l->conn);
	l->conn = NULL;
	l->ready = false;
	l->retry_at = imp_now_s() + LINE_RETRY_S;
}

/* Why this thread's last connect_db failed (libpq's first line). */
static __thread char connect_why[256];

static PGconn *connect_db(const char *conninfo, int timeout_s, bool quiet)
{
	char tmo[16];
	/* A primary that vanishes without closing its connections (power lost,
	 * network cut) is noticed within about 10 s rather than the kernel's
	 * minutes: TCP keepalives and a TCP user timeout, unless the URL sets
	 * its own (it comes after them, so it wins). */
	const char *keys[] = { "keepalives", "keepalives_idle", "keepalives_interval",
			       "keepalives_count", "tcp_user_timeout", "dbname", "connect_timeout",
			       "application_name", NULL };
	const char *vals[] = { "1", "5", "2", "3", "10000", conninfo, tmo, "imprint", NULL };
	PGconn *c;

	connect_why[0] = '\0';
	snprintf(tmo, sizeof(tmo), "%d", timeout_s > 0 ? timeout_s : LINE_CONNECT_TIMEOUT_DEFAULT);
	c = PQconnectdbParams(keys, vals, 1);
	if (!c)
		return NULL;
	if (PQstatus(c) != CONNECTION_OK) {
		char msg[256];

		snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c));
		msg[strcspn(msg, "\n")] = '\0';
		snprintf(connect_why, sizeof(connect_why), "%s", msg);
		if (quiet)
			IMP_DEBUG("line: PQconnectdbParams: %s", msg);
		else
			IMP_WARN("line: the line database is unreachable (PQconnectdbParams: %s): "
				 "provisioning goes on from the leased serials", msg);
		PQfinish(c);
		return NULL;
	}
	PQsetNoticeProcessor(c, NULL, NULL);
	return c;
}

/*
 * Run one statement with text parameters. IMP_OK with *res (PQclear it) if
 * it succeeded (res may be NULL); IMP_ERR_TIMEOUT if the connection is gone
 * (the handle goes offline); IMP_ERR_JOURNAL for an SQL error (logged,
 * with the SQLSTATE in *state if given).
 */
static imp_err pq_run(struct line *l, PGconn *c, PGresult **res, char state[6],
		      const char *sql, int n, const char *const *params)
{
	PGresult *r;
	ExecStatusType s;

	if (res)
		*res = NULL;
	if (state)
		state[0] = '\0';
	/* Without parameters PQexec, which also runs a multi-statement migration. */
	r = n ? PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0) : PQexec(c, sql);
	s = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) {
		if (res)
			*res = r;
		else
			PQclear(r);
		return IMP_OK;
	}
	if (PQstatus(c) != CONNECTION_OK) {
		PQclear(r);
		if (l) {
			if (!l->warned)
				IMP_WARN("line: lost the line database: provisioning goes on from "
					 "the leased serials; records are fed when it is back");
			l->warned = true;
			drop_conn(l);
		}
		return IMP_ERR_TIMEOUT;
	}
	{
		const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
		char msg[256];

		if (state && st)
			snprintf(state, 6, "%s", st);
		snprintf(msg, sizeof(msg), "%s", r ? PQresultErrorMessage(r) : PQerrorMessage(c));
		msg[strcspn(msg, "\n")] = '\0';
		IMP_ERROR("line: PQexecParams failed: %s (SQLSTATE %s)", msg, st ? st : "?");
	}
	PQclear(r);
	if (PQtransactionStatus(c) != PQTRANS_IDLE) {
		PGresult *rb = PQexec(c, "ROLLBACK");

		PQclear(rb);
	}
	return IMP_ERR_JOURNAL;
}

static imp_err pq_exec(struct line *l, PGconn *c, const char *sql)
{
	return pq_run(l, c, NULL, NULL, sql, 0, NULL);
}

static void rollback(PGconn *c)
{
	if (c && PQstatus(c) == CONNECTION_OK && PQtransactionStatus(c) != PQTRANS_IDLE)
		PQclear(PQexec(c, "ROLLBACK"));
}

static uint64_t val_u64(PGresult *r, int row, int col)
{
	if (PQgetisnull(r, row, col))
		return 0;
	return strtoull(PQgetvalue(r, row, col), NULL, 10);
}

/* Create or migrate the schema (serialised by an advisory lock). */
static imp_err migrate(struct line *l, PGconn *c)
{
	PGresult *r = NULL;
	int version;
	imp_err rc;

	rc = pq_exec(l, c, "BEGIN");
	if (rc == IMP_OK)
		rc = pq_exec(l, c, "SELECT pg_advisory_xact_lock(" LINE_LOCK_KEY ")");
	if (rc == IMP_OK)
		rc = pq_exec(l, c, "SET LOCAL client_min_messages = warning");
	if (rc == IMP_OK)
		rc = pq_exec(l, c, "CREATE TABLE IF NOT EXISTS schema_migrations ("
			     "  version     integer PRIMARY KEY,"
			     "  description text NOT NULL,"
			     "  applied_at  timestamptz NOT NULL DEFAULT now())");
	if (rc == IMP_OK)
		rc = pq_run(l, c, &r, NULL, "SELECT coalesce(max(version), 0) FROM schema_migrations",
			    0, NULL);
	if (rc)
		goto cleanup;
	version = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	if (version > LINE_SCHEMA_VERSION) {
		IMP_ERROR("line: the line database has schema version %d, newer than this imprint "
			  "(%d): update imprint on this station", version, LINE_SCHEMA_VERSION);
		rc = IMP_ERR_CONFIG;
		goto cleanup;
	}
	for (int v = version; v < LINE_SCHEMA_VERSION; v++) {
		char vs[16], desc[64];
		const char *p[] = { vs, desc };

		snprintf(vs, sizeof(vs), "%d", v + 1);
		snprintf(desc, sizeof(desc), "imprint line schema v%d", v + 1);
		rc = pq_exec(l, c, migrations[v]);
		if (rc == IMP_OK)
			rc = pq_run(l, c, NULL, NULL, "INSERT INTO schema_migrations(version, "
				    "description) VALUES ($1::integer, $2)", 2, p);
		if (rc)
			goto cleanup;
		IMP_INFO("line: schema migrated to version %d", v + 1);
	}
	rc = pq_exec(l, c, "COMMIT");
cleanup:
	if (rc)
		rollback(c);
	return rc;
}

/* ------------------------------------------------------------- leases */

struct lease_vec {
	struct jnl_lease *v;
	size_t n, cap;
};

static int collect_lease(void *arg, const struct jnl_lease *le)
{
	struct lease_vec *lv = arg;

	if (lv->n == lv->cap) {
		size_t cap = lv->cap ? lv->cap * 2 : 16;
		struct jnl_lease *v = realloc(lv->v, cap * sizeof(*v));

		if (!v)
			return 1;
		lv->v = v;
		lv->cap = cap;
	}
	lv->v[lv->n++] = *le;
	return 0;
}

/* Give back a closed lease's unused units (idempotent on released leases). */
static imp_err release_in_line(struct line *l, uint64_t id, uint64_t next)
{
	char ids[24], nexts[24];
	const char *p[] = { ids, l->station, nexts };
	PGresult *r = NULL;
	imp_err rc;

	snprintf(ids, sizeof(ids), "%" PRIu64, id);
	snprintf(nexts, sizeof(nexts), "%" PRIu64, next);
	rc = pq_exec(l, l->conn, "BEGIN");
	if (rc == IMP_OK)
		rc = pq_exec(l, l->conn, "SELECT 1 FROM line_counter WHERE id = 1 FOR UPDATE");
	if (rc == IMP_OK)
		rc = pq_run(l, l->conn, &r, NULL,
			    "UPDATE leases SET released_at = now(), released_from = $3::bigint, "
			    "used = $3::bigint - first_counter WHERE id = $1::bigint AND "
			    "station = $2 AND released_at IS NULL "
			    "RETURNING last_counter + 1 - $3::bigint", 3, p);
	if (rc == IMP_OK && PQntuples(r) == 1) {
		const char *q[] = { PQgetvalue(r, 0, 0) };

		rc = pq_run(l, l->conn, NULL, NULL, "UPDATE line_counter SET leased = leased - "
			    "$1::bigint WHERE id = 1", 1, q);
	}
	PQclear(r);
	if (rc == IMP_OK)
		rc = pq_exec(l, l->conn, "COMMIT");
	if (rc)
		rollback(l->conn);
	return rc;
}

static imp_err restore_lease(struct line *l, const struct jnl_lease *le);

/*
 * Bring journal and line into agreement about this station's leases, at
 * every connection: a lease in the journal that the line does not hold
 * (the line lost it: restore_lease) is put back or refused; a lease granted
 * in the line but absent from the journal (a crash between the grant and
 * the journal write) is journaled; a lease closed in the journal but not
 * released in the line is released.
 */
static imp_err reconcile_leases(struct line *l)
{
	struct lease_vec lv = { 0 };
	PGresult *r = NULL;
	const char *p[] = { l->station };
	imp_err rc;

	rc = jnl_lease_list(l->j, false, collect_lease, &lv);
	if (rc == IMP_OK)
		rc = pq_run(l, l->conn, &r, NULL, "SELECT id, first_counter, last_counter, "
			    "released_at IS NULL FROM leases WHERE station = $1 ORDER BY "
			    "first_counter", 1, p);
	for (size_t i = 0; rc == IMP_OK && i < lv.n; i++) {
		bool held = false;

		for (int k = 0; !held && k < PQntuples(r); k++)
			held = val_u64(r, k, 0) == lv.v[i].id && val_u64(r, k, 1) == lv.v[i].first &&
			       val_u64(r, k, 2) == lv.v[i].last;
		if (!held)
			rc = restore_lease(l, &lv.v[i]);
	}
	for (int i = 0; rc == IMP_OK && i < PQntuples(r); i++) {
		if (strcmp(PQgetvalue(r, i, 3), "t") != 0)
			continue;
		rc = jnl_lease_add(l->j, val_u64(r, i, 0), val_u64(r, i, 1),
					    val_u64(r, i, 2));
		if (rc == IMP_ERR_DUPLICATE && l->refused) {
			/* The line's new lease over counters of the lost one: not taken. */
			IMP_DEBUG("line: lease %s: %s", PQgetvalue(r, i, 0), jnl_last_error());
			rc = IMP_OK;
		} else if (rc) {
			IMP_ERROR("line: lease %s: %s", PQgetvalue(r, i, 0),
				  jnl_last_error());
		}
	}
	PQclear(r);
	for (size_t i = 0; rc == IMP_OK && i < lv.n; i++)
		if (lv.v[i].closed)
			rc = release_in_line(l, lv.v[i].id, lv.v[i].next);
	free(lv.v);
	return rc;
}

/*
 * The line must hold every record the journal marked delivered; fewer (it
 * lost committed transactions, though perhaps no lease): every record is
 * fed again (jnl_line_refeed). Lock held.
 */
static imp_err reconcile_records(struct line *l)
{
	const char *p[] = { l->station };
	PGresult *r = NULL;
	uint64_t delivered = 0, held;
	char why[200];
	imp_err rc;

	rc = jnl_line_count_delivered(l->j, &delivered);
	if (rc == IMP_OK)
		rc = pq_run(l, l->conn, &r, NULL, "SELECT count(*) FROM records WHERE station = $1",
			    1, p);
	if (rc)
		goto cleanup;
	held = val_u64(r, 0, 0);
	if (held >= delivered)
		goto cleanup;
	snprintf(why, sizeof(why), "the line holds %" PRIu64 " records of this station, the "
		 "journal marked %" PRIu64 " delivered", held, delivered);
	rc = jnl_line_refeed(l->j, why);
	if (rc)
		IMP_ERROR("line: %s", jnl_last_error());
	else
		IMP_WARN("line: %s (a failover to a standby that had not received them, or a "
			 "restore from a backup): every record is fed again", why);
cleanup:
	PQclear(r);
	return rc;
}

/* "host:port" of the server c reached, for messages. */
static void server_name(PGconn *c, char *out, size_t cap)
{
	const char *h = PQhost(c), *p = PQport(c);

	snprintf(out, cap, "%s:%s", h && h[0] ? h : "?", p && p[0] ? p : "?");
}

/*
 * The server just reached must be a primary: a standby in recovery is
 * read-only (a URL that names it alone, or without target_session_attrs=
 * read-write): IMP_ERR_TIMEOUT, as if unreachable, and retried. This
 * session commits with synchronous_commit at least "on", whatever the
 * server's default, so that with a synchronous standby every commit the
 * station saw is on the standby too; a primary that streams to
 * asynchronous standbys only is named once (docs/LINE.md, "Failover").
 */
static imp_err check_server(struct line *l, PGconn *c)
{
	PGresult *r = NULL;
	char name[300];
	const char *sc;
	imp_err rc;

	rc = pq_run(l, c, &r, NULL, "SELECT pg_is_in_recovery(), current_setting("
		    "'synchronous_commit'), current_setting('synchronous_standby_names'), "
		    "(SELECT count(*) FROM pg_stat_replication)", 0, NULL);
	if (rc)
		return rc;
	server_name(c, name, sizeof(name));
	if (strcmp(PQgetvalue(r, 0, 0), "t") == 0) {
		if (!l->ro_warned)
			IMP_WARN("line: the line database at %s is a read-only standby: list the "
				 "primary and its standbys in line.url with "
				 "target_session_attrs=read-write (docs/LINE.md), or promote the "
				 "standby; provisioning goes on from the leased serials", name);
		l->ro_warned = true;
		rc = IMP_ERR_TIMEOUT;
		goto cleanup;
	}
	sc = PQgetvalue(r, 0, 1);
	if (strcmp(sc, "off") == 0 || strcmp(sc, "local") == 0 || strcmp(sc, "remote_write") == 0)
		rc = pq_exec(l, c, "SET synchronous_commit = on");
	if (rc == IMP_OK && !PQgetvalue(r, 0, 2)[0] && atoi(PQgetvalue(r, 0, 3)) > 0 &&
	    !l->async_warned) {
		IMP_WARN("line: the line database at %s streams to asynchronous standbys only "
			 "(synchronous_standby_names is empty): a failover to one can lose the last "
			 "leases; name the standby in synchronous_standby_names on the primary "
			 "(docs/LINE.md, failover)", name);
		l->async_warned = true;
	}
cleanup:
	PQclear(r);
	return rc;
}

/*
 * Lease le is in the journal but not in the line database: the line lost
 * committed transactions (a failover to a standby that had not received
 * them, a restore from a backup). Journaled first (jnl_line_lost, which also
 * has every record fed again). Then, in one transaction under the line
 * counter's lock: if no lease of the line holds any of its counters, nobody
 * can have issued them, and the lease is put back as the journal has it
 * (same id, station and range; released where the journal closed it) with
 * its quota units, the line's counter moved past it. Otherwise the line has
 * leased counters this station may have issued to someone again: the
 * station refuses to issue any more serials (l->refused) and says why.
 * Lock held.
 */
static imp_err restore_lease(struct line *l, const struct jnl_lease *le)
{
	char id[24], first[24], last[24], used[24], next[24], units[24], found[300] = "";
	PGresult *r = NULL;
	imp_err rc;

	snprintf(id, sizeof(id), "%" PRIu64, le->id);
	snprintf(first, sizeof(first), "%" PRIu64, le->first);
	snprintf(last, sizeof(last), "%" PRIu64, le->last);
	snprintf(used, sizeof(used), "%" PRIu64, le->next - le->first);
	snprintf(next, sizeof(next), "%" PRIu64, le->next);
	snprintf(units, sizeof(units), "%" PRIu64, (le->closed ? le->next : le->last + 1) - le->first);
	rc = pq_exec(l, l->conn, "BEGIN");
	if (rc == IMP_OK)
		rc = pq_run(l, l->conn, &r, NULL, "SELECT 1 FROM line_counter WHERE id = 1 FOR UPDATE",
			    0, NULL);
	if (rc)
		goto cleanup;
	if (PQntuples(r) != 1)
		snprintf(found, sizeof(found), "no line counter at all");
	PQclear(r);
	r = NULL;
	if (!found[0]) {
		const char *p[] = { id, first, last };

		rc = pq_run(l, l->conn, &r, NULL, "SELECT id, station, first_counter, last_counter "
			    "FROM leases WHERE id = $1::bigint OR (first_counter <= $3::bigint AND "
			    "last_counter >= $2::bigint) ORDER BY first_counter LIMIT 1", 3, p);
		if (rc)
			goto cleanup;
		if (PQntuples(r) == 1)
			snprintf(found, sizeof(found), "lease %s of station %s, counters %s..%s",
				 PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2),
				 PQgetvalue(r, 0, 3));
		PQclear(r);
		r = NULL;
	}
	rc = jnl_line_lost(l->j, le->id, found[0] ? found : "nothing");
	if (rc) {
		IMP_ERROR("line: %s", jnl_last_error());
		goto cleanup;
	}
	if (found[0]) {
		IMP_ERROR("line: the line database lost lease %s (counters %s..%s, %s issued) of "
			  "this station, and holds %s instead: serials this station issued may be "
			  "issued again; this station issues no more serials from the line: stop the "
			  "other stations, run 'imprint audit --line' and see docs/LINE.md (failover)",
			  id, first, last, used, found);
		l->refused = true;
		goto cleanup;
	}
	{
		const char *p[] = { id, l->station, first, last, used, le->closed ? "t" : "f", next };

		rc = pq_run(l, l->conn, NULL, NULL, "INSERT INTO leases(id, station, first_counter, "
			    "last_counter, used, released_at, released_from) VALUES ($1::bigint, $2, "
			    "$3::bigint, $4::bigint, $5::bigint, CASE WHEN $6::boolean THEN now() END, "
			    "CASE WHEN $6::boolean THEN $7::bigint END)", 7, p);
	}
	if (rc == IMP_OK) {
		const char *p[] = { last, units };

		rc = pq_run(l, l->conn, NULL, NULL, "UPDATE line_counter SET next_counter = "
			    "greatest(next_counter, $1::bigint + 1), leased = leased + $2::bigint "
			    "WHERE id = 1", 2, p);
	}
	if (rc == IMP_OK)
		rc = pq_exec(l, l->conn, "SELECT setval(pg_get_serial_sequence('leases', 'id'), "
			     "(SELECT max(id) FROM leases))");
	if (rc == IMP_OK)
		rc = pq_exec(l, l->conn, "COMMIT");
	if (rc == IMP_OK)
		IMP_WARN("line: the line database had lost lease %s (counters %s..%s) of this "
			 "station (a failover to a standby that had not received it, or a restore "
			 "from a backup): restored from the journal, records fed again", id, first,
			 last);
cleanup:
	PQclear(r);
	rollback(l->conn);
	return rc;
}

/* Connect if needed (respecting the back-off); lock held. */
static imp_err ensure_conn(struct line *l)
{
	imp_err rc;

	if (l->conn && l->ready)
		return IMP_OK;
	if (!l->conn) {
		if (imp_now_s() < l->retry_at)
			return IMP_ERR_TIMEOUT;
		l->conn = connect_db(l->conninfo, l->timeout_s, l->warned);
		if (!l->conn) {
			l->warned = true;
			l->retry_at = imp_now_s() + LINE_RETRY_S;
			return IMP_ERR_TIMEOUT;
		}
	}
	rc = check_server(l, l->conn);
	if (rc == IMP_OK)
		rc = migrate(l, l->conn);
	if (rc == IMP_OK) {
		const char *p[] = { l->station, l->cert };

		rc = pq_run(l, l->conn, NULL, NULL,
			    "INSERT INTO stations(id, certificate) VALUES ($1, $2) ON CONFLICT (id) "
			    "DO UPDATE SET certificate = coalesce(EXCLUDED.certificate, "
			    "stations.certificate), last_seen = now()", 2, p);
	}
	if (rc == IMP_OK && l->quota && !l->quota_stored) {
		char q[24];
		const char *p[] = { q };

		snprintf(q, sizeof(q), "%" PRIu64, l->quota);
		rc = pq_run(l, l->conn, NULL, NULL,
			    "INSERT INTO line_counter(id, quota) VALUES (1, $1::bigint) "
			    "ON CONFLICT (id) DO UPDATE SET quota = EXCLUDED.quota", 1, p);
		if (rc == IMP_OK)
			l->quota_stored = true;
	}
	if (rc == IMP_OK)
		rc = reconcile_leases(l);
	if (rc == IMP_OK)
		rc = reconcile_records(l);
	if (rc) {
		if (l->conn)
			drop_conn(l);
		return rc == IMP_ERR_CONFIG ? rc : IMP_ERR_TIMEOUT;
	}
	if (l->warned || l->ro_warned)
		IMP_INFO("line: the line database is reachable again");
	l->warned = false;
	l->ro_warned = false;
	l->ready = true;
	return IMP_OK;
}

static int lease_high(void *arg, const struct jnl_lease *le)
{
	uint64_t *high = arg;

	if (le->last > *high)
		*high = le->last;
	return 0;
}

/* The highest counter of any lease in the journal (0: none; UINT64_MAX if
 * the journal cannot be read, so that nothing is leased). */
static uint64_t journal_high(struct line *l)
{
	uint64_t high = 0;

	if (jnl_lease_list(l->j, false, lease_high, &high) != IMP_OK)
		return UINT64_MAX;
	return high;
}

static uint64_t lease_left(struct line *l)
{
	struct jnl_info info;

	if (jnl_info(l->j, &info) != IMP_OK)
		return 0;
	return info.lease_left;
}

/*
 * Take a lease of up to `want` counters, and as many quota units, in one
 * transaction; then journal it. Lock held. IMP_ERR_QUOTA if the line's quota
 * is all leased.
 */
static imp_err take_lease(struct line *l, uint64_t want)
{
	PGresult *r = NULL;
	uint64_t quota, next, leased, units, id;
	char a[24], b[24], u[24];
	imp_err rc;

	if (l->refused)
		return IMP_ERR_DUPLICATE;
	rc = ensure_conn(l);
	if (rc == IMP_OK && l->refused)
		rc = IMP_ERR_DUPLICATE;
	if (rc)
		return rc;
	rc = pq_exec(l, l->conn, "BEGIN");
	if (rc == IMP_OK)
		rc = pq_run(l, l->conn, &r, NULL, "SELECT quota, next_counter, leased FROM "
			    "line_counter WHERE id = 1 FOR UPDATE", 0, NULL);
	if (rc)
		goto cleanup;
	if (PQntuples(r) != 1) {
		IMP_ERROR("line: the line has no quota yet: set line.quota in the configuration");
		rc = IMP_ERR_QUOTA;
		goto cleanup;
	}
	quota = val_u64(r, 0, 0);
	next = val_u64(r, 0, 1);
	leased = val_u64(r, 0, 2);
	PQclear(r);
	r = NULL;
	units = leased < quota ? quota - leased : 0;
	if (units > want)
		units = want;
	if (units == 0) {
		rc = IMP_ERR_QUOTA;
		goto cleanup;
	}
	snprintf(a, sizeof(a), "%" PRIu64, next);
	snprintf(b, sizeof(b), "%" PRIu64, next + units - 1);
	snprintf(u, sizeof(u), "%" PRIu64, units);
	{
		const char *p[] = { u };

		rc = pq_run(l, l->conn, NULL, NULL, "UPDATE line_counter SET next_counter = "
			    "next_counter + $1::bigint, leased = leased + $1::bigint WHERE id = 1",
			    1, p);
	}
	if (rc == IMP_OK) {
		const char *p[] = { l->station, a, b };

		rc = pq_run(l, l->conn, &r, NULL, "INSERT INTO leases(station, first_counter, "
			    "last_counter) VALUES ($1, $2::bigint, $3::bigint) RETURNING id", 3, p);
	}
	if (rc)
		goto cleanup;
	id = val_u64(r, 0, 0);
	PQclear(r);
	r = NULL;
	/* Never a lease at or below a counter this station's journal already
	 * holds: the line would be behind what this station issued. */
	{
		uint64_t high = journal_high(l);

		if (next <= high) {
			IMP_ERROR("line: the line database offers counters %" PRIu64 "..%" PRIu64
				  " but this station's journal already holds leases up to counter %"
				  PRIu64 ": the line lost committed leases (failover to an "
				  "asynchronous standby, or a restore); refused: see docs/LINE.md "
				  "(failover)", next, next + units - 1, high);
			l->refused = true;
			rc = IMP_ERR_DUPLICATE;
			goto cleanup;
		}
	}
	rc = pq_exec(l, l->conn, "COMMIT");
	if (rc)
		goto cleanup;
	/* A crash here leaves the lease in the line only: reconcile_leases
	 * journals it on the next connection. */
	rc = jnl_lease_add(l->j, id, next, next + units - 1);
	if (rc)
		IMP_ERROR("line: %s", jnl_last_error());
	else
		IMP_DEBUG("line: lease %" PRIu64 ": counters %" PRIu64 "..%" PRIu64, id, next,
			  next + units - 1);
cleanup:
	PQclear(r);
	if (rc)
		rollback(l->conn);
	return rc;
}

/* How many counters to lease now (0: none needed). Lock held. */
static uint64_t lease_want(struct line *l, uint64_t left, bool need_one)
{
	uint64_t want = l->block;

	if (l->demand) {
		uint64_t alloc = __atomic_load_n(&l->allocated, __ATOMIC_SEQ_CST);
		uint64_t remaining = l->demand > alloc ? l->demand - alloc : 0;

		remaining = remaining > left ? remaining - left : 0;
		if (remaining < want)
			want = remaining;
	}
	if (want == 0 && need_one)
		want = 1;
	return want;
}

/* ------------------------------------------------------------ public */

imp_err line_open(const struct line_opts *o, struct jnl *j,
		       struct line **out)
{
	struct line *l;
	struct jnl_info info;
	imp_err rc;

	*out = NULL;
	if (!o || !o->conninfo || !o->conninfo[0] || !o->station_id || !j) {
		IMP_ERROR("line: a line needs a database URL and a station id");
		return IMP_ERR_CONFIG;
	}
	rc = line_pq_load();
	if (rc)
		return rc;
	rc = jnl_info(j, &info);
	if (rc)
		return rc;
	if (!info.leased_serials) {
		IMP_ERROR("line: the journal is not in line mode (open it with leased_serials)");
		return IMP_ERR_INTERNAL;
	}
	l = calloc(1, sizeof(*l));
	if (!l)
		return IMP_ERR_NOMEM;
	pthread_mutex_init(&l->lock, NULL);
	pthread_mutex_init(&l->feed_lock, NULL);
	pthread_cond_init(&l->feed_cond, NULL);
	l->conninfo = strdup(o->conninfo);
	l->station = strdup(o->station_id);
	l->cert = o->certificate_pem ? strdup(o->certificate_pem) : NULL;
	l->failures = json_object();
	if (!l->conninfo || !l->station || (o->certificate_pem && !l->cert) || !l->failures) {
		line_close(l);
		return IMP_ERR_NOMEM;
	}
	l->block = o->block ? o->block : LINE_BLOCK_DEFAULT;
	l->quota = o->quota;
	l->timeout_s = o->connect_timeout_s;
	l->j = j;
	pthread_mutex_lock(&l->lock);
	rc = ensure_conn(l);
	pthread_mutex_unlock(&l->lock);
	if (rc == IMP_ERR_CONFIG) {
		line_close(l);
		return rc;
	}
	*out = l;
	return IMP_OK;
}

void line_close(struct line *l)
{
	if (!l)
		return;
	line_stop_feed(l);
	if (l->conn)
		PQfinish(l->conn);
	json_decref(l->failures);
	pthread_cond_destroy(&l->feed_cond);
	pthread_mutex_destroy(&l->feed_lock);
	pthread_mutex_destroy(&l->lock);
	free(l->conninfo);
	free(l->station);
	free(l->cert);
	free(l);
}

void line_set_demand(struct line *l, uint64_t boards)
{
	pthread_mutex_lock(&l->lock);
	l->demand = boards;
	__atomic_store_n(&l->allocated, 0, __ATOMIC_SEQ_CST);
	l->provisioning = true;
	pthread_mutex_unlock(&l->lock);
}

/* Claim uid for this station. IMP_ERR_DUPLICATE if another holds it. Lock held. */
static imp_err claim_uid(struct line *l, const char *uid)
{
	char u[JNL_UID_HEX_MAX + 1];
	const char *p[] = { u, l->station };
	PGresult *r = NULL;
	imp_err rc;
	size_t n = strlen(uid);

	if (n > JNL_UID_HEX_MAX)
		return IMP_ERR_USAGE;
	for (size_t i = 0; i <= n; i++)
		u[i] = (char)(uid[i] >= 'A' && uid[i] <= 'F' ? uid[i] + 32 : uid[i]);
	rc = pq_run(l, l->conn, NULL, NULL, "INSERT INTO uid_claims(uid, station) VALUES ($1, $2) "
		    "ON CONFLICT (uid) DO NOTHING", 2, p);
	if (rc == IMP_OK)
		rc = pq_run(l, l->conn, &r, NULL, "SELECT station FROM uid_claims WHERE uid = $1",
			    1, p);
	if (rc == IMP_OK && PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), l->station) != 0) {
		IMP_ERROR("line: board %s is already claimed by station %s: the same chip uid on "
			  "two stations; set the board aside for inspection", u,
			  PQgetvalue(r, 0, 0));
		rc = IMP_ERR_DUPLICATE;
	}
	PQclear(r);
	return rc;
}

imp_err line_allocate(struct line *l, const char *uid, const char *fixture,
			   char *serial_out, size_t cap, bool *existing)
{
	bool ex = false;
	imp_err rc;

	pthread_mutex_lock(&l->lock);
	rc = ensure_conn(l);
	if (l->refused) {
		IMP_ERROR("line: no serial for board %s: the line database lost leases of this "
			  "station and leased their counters again, so this station issues no more "
			  "serials (docs/LINE.md, failover)", uid);
		rc = IMP_ERR_DUPLICATE;
	} else if (rc == IMP_OK) {
		rc = claim_uid(l, uid);
	}
	pthread_mutex_unlock(&l->lock);
	if (rc == IMP_ERR_DUPLICATE)
		return rc;
	/*
	 * Offline or an SQL error: go on from the leases; the feed finds a
	 * clash. Each turn either allocates, or finds a lease another worker
	 * just took, or takes one: it ends when the line has no unit left.
	 */
	for (double until = 0;;) {
		uint64_t left;

		rc = jnl_allocate(l->j, uid, fixture, serial_out, cap, &ex);
		if (rc != IMP_ERR_QUOTA)
			break;
		pthread_mutex_lock(&l->lock);
		left = lease_left(l);
		/* Counters at hand: another worker leased meanwhile; try again. */
		rc = left ? IMP_OK : take_lease(l, lease_want(l, 0, true));
		pthread_mutex_unlock(&l->lock);
		if (rc == IMP_ERR_TIMEOUT) {
			/* Offline with no counter at hand: a failover takes seconds,
			 * so the board waits a while for the line rather than fail. */
			if (until == 0)
				until = imp_now_s() + LINE_OFFLINE_WAIT_S;
			if (imp_now_s() < until) {
				imp_sleep_us(250000);
				continue;
			}
		}
		if (rc == IMP_ERR_TIMEOUT || rc == IMP_ERR_QUOTA || rc == IMP_ERR_JOURNAL) {
			rc = jnl_allocate(l->j, uid, fixture, serial_out, cap, &ex);
			break;
		}
		if (rc)
			break;
	}
	if (rc == IMP_OK && !ex)
		__atomic_add_fetch(&l->allocated, 1, __ATOMIC_SEQ_CST);
	if (existing)
		*existing = ex;
	return rc;
}

/* ---------------------------------------------------------------- feed */

/* The record's public key (its JWK, canonical JSON), or NULL. malloc'ed. */
static char *record_public_key(const char *jws)
{
	json_t *o = NULL;
	json_t *k;
	char *out = NULL;

	if (fmt_jws_peek_payload(jws, &o) != IMP_OK)
		return NULL;
	k = json_object_get(o, "public_key");
	if (k)
		out = json_dumps(k, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	return out;
}

struct feed_ctx {
	struct line *l;
	unsigned sent;
	imp_err rc;
};

/*
 * Put one record in the line database, exactly once by record_id, and check
 * its identity against the line's: *conflict (malloc'ed, or NULL) says why it
 * was flagged. Lock held.
 */
static imp_err feed_record(struct line *l, const struct jnl_outbox_entry *e,
			   uint64_t counter, char **conflict)
{
	char cnt[24], *pub = NULL, *why = NULL;
	const char *kind = e->kind == JNL_OUTBOX_REVOCATION ? "revocation" : "identity";
	PGresult *r = NULL;
	imp_err rc;

	*conflict = NULL;
	snprintf(cnt, sizeof(cnt), "%" PRIu64, counter);
	if (e->kind == JNL_OUTBOX_IDENTITY)
		pub = record_public_key(e->jws);
	rc = pq_exec(l, l->conn, "BEGIN");
	if (rc == IMP_OK) {
		const char *p[] = { e->record_id, l->station, kind, e->serial, e->uid,
				    counter ? cnt : NULL, pub, e->jws, e->created };

		rc = pq_run(l, l->conn, &r, NULL, "INSERT INTO records(record_id, station, kind, "
			    "serial, uid, counter, public_key, jws, created) VALUES ($1, $2, $3, $4, "
			    "$5, $6::bigint, $7, $8, $9::timestamptz) ON CONFLICT (record_id) DO "
			    "NOTHING RETURNING 1", 9, p);
	}
	if (rc)
		goto cleanup;
	if (PQntuples(r) == 0) {
		/* Already there: a repeat of a delivery whose mark was lost. */
		const char *p[] = { e->record_id };

		PQclear(r);
		rc = pq_run(l, l->conn, &r, NULL, "SELECT record_id, conflict, jws FROM records "
			    "WHERE record_id = $1", 1, p);
		if (rc)
			goto cleanup;
		if (strcmp(PQgetvalue(r, 0, 2), e->jws) != 0)
			why = strdup("another record with this record id is in the line");
		else if (!PQgetisnull(r, 0, 1))
			why = strdup(PQgetvalue(r, 0, 1));
		goto commit;
	}
	PQclear(r);
	r = NULL;
	if (e->kind != JNL_OUTBOX_IDENTITY)
		goto commit;
	{
		const char *p[] = { e->uid, e->serial, l->station, e->record_id };

		const char *pc[] = { e->uid, l->station };

		rc = pq_run(l, l->conn, NULL, NULL, "INSERT INTO uid_claims(uid, station) VALUES "
			    "($1, $2) ON CONFLICT (uid) DO NOTHING", 2, pc);
		if (rc == IMP_OK)
			rc = pq_run(l, l->conn, NULL, NULL, "INSERT INTO identities(uid, serial, "
				    "station, record_id) VALUES ($1, $2, $3, $4) ON CONFLICT DO "
				    "NOTHING", 4, p);
		if (rc == IMP_OK)
			rc = pq_run(l, l->conn, &r, NULL, "SELECT (SELECT station FROM uid_claims "
				    "WHERE uid = $1), i.serial, i.station, (SELECT uid FROM "
				    "identities WHERE serial = $2) FROM (SELECT 1) x LEFT JOIN "
				    "identities i ON i.uid = $1", 2, p);
		if (rc)
			goto cleanup;
		if (strcmp(PQgetvalue(r, 0, 0), l->station) != 0) {
			if (asprintf(&why, "uid %s was claimed by station %s", e->uid,
				     PQgetvalue(r, 0, 0)) < 0)
				why = NULL;
		} else if (PQgetisnull(r, 0, 1)) {
			if (asprintf(&why, "serial %s is already the identity of uid %s", e->serial,
				     PQgetvalue(r, 0, 3)) < 0)
				why = NULL;
		} else if (strcmp(PQgetvalue(r, 0, 1), e->serial) != 0 ||
			   strcmp(PQgetvalue(r, 0, 2), l->station) != 0) {
			if (asprintf(&why, "uid %s already has serial %s from station %s", e->uid,
				     PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2)) < 0)
				why = NULL;
		}
		PQclear(r);
		r = NULL;
	}
	if (!why && pub) {
		const char *p[] = { pub, e->uid, e->record_id };

		rc = pq_run(l, l->conn, NULL, NULL, "INSERT INTO public_keys(public_key, uid, "
			    "record_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", 3, p);
		if (rc == IMP_OK)
			rc = pq_run(l, l->conn, &r, NULL, "SELECT uid FROM public_keys WHERE "
				    "public_key = $1", 1, p);
		if (rc)
			goto cleanup;
		if (strcmp(PQgetvalue(r, 0, 0), e->uid) != 0 &&
		    asprintf(&why, "its public key is already the key of uid %s",
			     PQgetvalue(r, 0, 0)) < 0)
			why = NULL;
	}
	if (why) {
		const char *p[] = { e->record_id, why };

		rc = pq_run(l, l->conn, NULL, NULL, "UPDATE records SET conflict = $2 WHERE "
			    "record_id = $1", 2, p);
		if (rc)
			goto cleanup;
	}
commit:
	rc = pq_exec(l, l->conn, "COMMIT");
cleanup:
	PQclear(r);
	free(pub);
	if (rc) {
		rollback(l->conn);
		free(why);
		why = NULL;
	}
	*conflict = why;
	return rc;
}

static int feed_one(void *arg, const struct jnl_outbox_entry *e, uint64_t counter)
{
	struct feed_ctx *f = arg;
	char *conflict = NULL;

	f->rc = feed_record(f->l, e, counter, &conflict);
	if (f->rc)
		return 1;
	if (conflict)
		IMP_ERROR("line: record %s (serial %s) flagged for a person: %s", e->record_id,
			  e->serial, conflict);
	/* Marked only after the line committed: a crash in between feeds it
	 * again, and the line answers "already there". */
	f->rc = jnl_line_delivered(f->l->j, e->record_id, conflict);
	free(conflict);
	if (f->rc)
		return 1;
	f->sent++;
	return 0;
}

static int count_error_event(void *arg, const struct jnl_event *ev)
{
	struct line *l = arg;

	l->err_scan_seq = ev->seq;
	if (strcmp(ev->kind, "error") == 0) {
		json_t *d = json_loads(ev->detail, 0, NULL);
		const char *st = json_string_value(json_object_get(d, "state"));
		json_t *n;

		if (!st)
			st = "IDENTIFY"; /* no board row yet: failed before its serial */
		n = json_object_get(l->failures, st);
		json_object_set_new(l->failures, st, json_integer(n ? json_integer_value(n) + 1 : 1));
		json_decref(d);
	}
	return 0;
}

/* Journal head, counters, lease progress and failures by step. Lock held. */
static imp_err feed_head(struct line *l)
{
	struct jnl_info info;
	uint64_t counts[JNL_ST__COUNT];
	struct lease_vec lv = { 0 };
	char seq[24], issued[24], *stats = NULL;
	json_t *o;
	imp_err rc;

	rc = jnl_info(l->j, &info);
	if (rc == IMP_OK)
		rc = jnl_counts(l->j, counts);
	if (rc == IMP_OK)
		rc = jnl_iterate_events(l->j, l->err_scan_seq + 1, NULL, count_error_event,
						 l);
	if (rc == IMP_OK)
		rc = jnl_lease_list(l->j, true, collect_lease, &lv);
	if (rc)
		goto cleanup;
	o = json_object();
	for (int s = 0; s < JNL_ST__COUNT; s++)
		if (counts[s])
			json_object_set_new(o, jnl_state_name((enum jnl_state)s),
					    json_integer((json_int_t)counts[s]));
	o = json_pack("{s:o, s:O, s:I}", "states", o, "failures", l->failures, "lease_left",
		      (json_int_t)info.lease_left);
	stats = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(o);
	if (!stats) {
		rc = IMP_ERR_NOMEM;
		goto cleanup;
	}
	snprintf(seq, sizeof(seq), "%" PRIu64, info.head_seq);
	snprintf(issued, sizeof(issued), "%" PRIu64, info.issued);
	rc = pq_exec(l, l->conn, "BEGIN");
	if (rc == IMP_OK) {
		const char *p[] = { l->station, seq, info.head_hash, issued, stats };

		rc = pq_run(l, l->conn, NULL, NULL, "UPDATE stations SET head_seq = $2::bigint, "
			    "head_hash = $3, head_at = now(), last_seen = now(), issued = "
			    "$4::bigint, stats = $5::jsonb WHERE id = $1", 5, p);
	}
	for (size_t i = 0; rc == IMP_OK && i < lv.n; i++) {
		char id[24], used[24];
		const char *p[] = { id, used, l->station };

		snprintf(id, sizeof(id), "%" PRIu64, lv.v[i].id);
		snprintf(used, sizeof(used), "%" PRIu64, lv.v[i].next - lv.v[i].first);
		rc = pq_run(l, l->conn, NULL, NULL, "UPDATE leases SET used = $2::bigint WHERE id "
			    "= $1::bigint AND station = $3 AND released_at IS NULL", 3, p);
	}
	if (rc == IMP_OK)
		rc = pq_exec(l, l->conn, "COMMIT");
	if (rc)
		rollback(l->conn);
cleanup:
	free(lv.v);
	free(stats);
	return rc;
}

imp_err line_sync(struct line *l, unsigned *sent)
{
	struct feed_ctx f = { .l = l };
	imp_err rc;

	if (sent)
		*sent = 0;
	pthread_mutex_lock(&l->lock);
	rc = ensure_conn(l);
	if (rc)
		goto cleanup;
	for (;;) {
		unsigned before = f.sent;

		rc = jnl_line_pending(l->j, LINE_FEED_BATCH, feed_one, &f);
		if (rc == IMP_OK)
			rc = f.rc;
		if (rc || f.sent - before < LINE_FEED_BATCH)
			break;
	}
	if (rc == IMP_OK)
		rc = feed_head(l);
cleanup:
	pthread_mutex_unlock(&l->lock);
	if (sent)
		*sent = f.sent;
	return rc;
}

/* Keep a lease ahead while provisioning, so that a database outage finds
 * counters at hand: half a block left is the low-water mark. Not before the
 * run says it provisions (line_set_demand): a lease spends quota units. */
static void lease_ahead(struct line *l)
{
	uint64_t left;

	pthread_mutex_lock(&l->lock);
	left = lease_left(l);
	if (l->provisioning && left * 2 <= l->block) {
		uint64_t want = lease_want(l, left, false);

		if (want)
			take_lease(l, want);
	}
	pthread_mutex_unlock(&l->lock);
}

static void *feed_main(void *arg)
{
	struct line *l = arg;

	pthread_mutex_lock(&l->feed_lock);
	while (!l->feed_stop) {
		struct timespec ts;

		pthread_mutex_unlock(&l->feed_lock);
		if (line_sync(l, NULL) == IMP_OK)
			lease_ahead(l);
		pthread_mutex_lock(&l->feed_lock);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)(l->feed_ms % 1000u) * 1000000L;
		ts.tv_sec += l->feed_ms / 1000u + ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		if (!l->feed_stop)
			pthread_cond_timedwait(&l->feed_cond, &l->feed_lock, &ts);
	}
	pthread_mutex_unlock(&l->feed_lock);
	return NULL;
}

imp_err line_start_feed(struct line *l, unsigned interval_ms)
{
	if (l->feed_running)
		return IMP_OK;
	l->feed_ms = interval_ms ? interval_ms : 250;
	l->feed_stop = false;
	if (pthread_create(&l->feed, NULL, feed_main, l) != 0)
		return IMP_ERR_INTERNAL;
	l->feed_running = true;
	return IMP_OK;
}

void line_stop_feed(struct line *l)
{
	if (!l->feed_running)
		return;
	pthread_mutex_lock(&l->feed_lock);
	l->feed_stop = true;
	pthread_cond_signal(&l->feed_cond);
	pthread_mutex_unlock(&l->feed_lock);
	pthread_join(l->feed, NULL);
	l->feed_running = false;
}

imp_err line_release(struct line *l)
{
	struct lease_vec lv = { 0 };
	imp_err rc;

	rc = jnl_lease_list(l->j, true, collect_lease, &lv);
	for (size_t i = 0; rc == IMP_OK && i < lv.n; i++) {
		uint64_t next;

		rc = jnl_lease_close(l->j, lv.v[i].id, &next);
		if (rc)
			IMP_ERROR("line: %s", jnl_last_error());
	}
	free(lv.v);
	if (rc)
		return rc;
	/* reconcile_leases gives back every closed lease's unused units. */
	pthread_mutex_lock(&l->lock);
	rc = ensure_conn(l);
	if (rc == IMP_OK && l->ready)
		rc = reconcile_leases(l);
	pthread_mutex_unlock(&l->lock);
	return rc;
}

/* -------------------------------------------------------- status, audit */

/*
 * For status and the audit, which only read: a primary is migrated as a
 * station would; a standby (read-only) is read as it is, if its schema is
 * this code's.
 */
static PGconn *connect_admin(const struct line_opts *o)
{
	/* Quiet: the caller's error names the cause (connect_why); nothing
	 * provisions here, so nothing "goes on from the leased serials". */
	PGconn *c = connect_db(o->conninfo, o->connect_timeout_s, true);
	PGresult *r = NULL;
	bool standby, schema;
	int version = 0;

	if (!c)
		return NULL;
	if (pq_run(NULL, c, &r, NULL, "SELECT pg_is_in_recovery(), to_regclass("
		   "'schema_migrations') IS NOT NULL", 0, NULL) != IMP_OK)
		goto fail;
	standby = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	schema = strcmp(PQgetvalue(r, 0, 1), "t") == 0;
	PQclear(r);
	r = NULL;
	if (!standby) {
		if (migrate(NULL, c) != IMP_OK)
			goto fail;
		return c;
	}
	if (schema) {
		if (pq_run(NULL, c, &r, NULL, "SELECT coalesce(max(version), 0) FROM "
			   "schema_migrations", 0, NULL) != IMP_OK)
			goto fail;
		version = atoi(PQgetvalue(r, 0, 0));
	}
	if (version != LINE_SCHEMA_VERSION) {
		char name[300];

		server_name(c, name, sizeof(name));
		IMP_ERROR("line: the line database at %s is a read-only standby with schema version "
			  "%d, not %d: run this against the primary", name, version,
			  LINE_SCHEMA_VERSION);
		goto fail;
	}
	PQclear(r);
	return c;
fail:
	/* Reached, but not usable: said above; not "cannot reach". */
	snprintf(connect_why, sizeof(connect_why), "it answered, but could not be used (above)");
	PQclear(r);
	PQfinish(c);
	return NULL;
}

/* Rows of r as an array of objects; columns named by PQfname. Integers for
 * int8/int4 columns (oids 20, 23), numbers for numeric (1700) and float8
 * (701), JSON for jsonb (3802), strings otherwise. */
static json_t *rows_json(PGresult *r)
{
	json_t *a = json_array();

	for (int i = 0; a && i < PQntuples(r); i++) {
		json_t *o = json_object();

		for (int c = 0; o && c < PQnfields(r); c++) {
			const char *v = PQgetvalue(r, i, c);
			Oid t = PQftype(r, c);
			json_t *jv;

			if (PQgetisnull(r, i, c))
				jv = json_null();
			else if (t == 20 || t == 23)
				jv = json_integer(strtoll(v, NULL, 10));
			else if (t == 701 || t == 1700)
				jv = json_real(strtod(v, NULL));
			else if (t == 3802)
				jv = json_loads(v, 0, NULL);
			else
				jv = json_string(v);
			json_object_set_new(o, PQfname(r, c), jv ? jv : json_null());
		}
		json_array_append_new(a, o);
	}
	return a;
}

imp_err line_status(const struct line_opts *o, json_t **out)
{
	PGconn *c;
	PGresult *r = NULL;
	json_t *res = NULL;
	imp_err rc;

	*out = NULL;
	rc = line_pq_load();
	if (rc)
		return rc;
	c = connect_admin(o);
	if (!c) {
		IMP_ERROR("line: cannot reach the line database (%s): check line.url and that "
			  "PostgreSQL is running", connect_why[0] ? connect_why : "no answer");
		return IMP_ERR_TIMEOUT;
	}
	rc = pq_exec(NULL, c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
	if (rc == IMP_OK)
		rc = pq_run(NULL, c, &r, NULL,
			    "SELECT coalesce((SELECT quota FROM line_counter), 0) AS quota, "
			    "coalesce((SELECT leased FROM line_counter), 0) AS leased, "
			    "coalesce((SELECT next_counter - 1 FROM line_counter), 0) AS counters_leased, "
			    "(SELECT coalesce(sum(used), 0) FROM leases)::bigint AS issued, "
			    "(SELECT coalesce(sum(last_counter + 1 - first_counter - used), 0) FROM leases "
			    " WHERE released_at IS NULL)::bigint AS leased_unused, "
			    "(SELECT coalesce(sum(last_counter + 1 - released_from), 0) FROM leases "
			    " WHERE released_at IS NOT NULL)::bigint AS released_unused, "
			    "(SELECT count(*) FROM records)::bigint AS records, "
			    "(SELECT count(*) FROM records WHERE kind = 'identity')::bigint AS identities, "
			    "(SELECT count(*) FROM records WHERE conflict IS NOT NULL)::bigint AS conflicts, "
			    "(SELECT max(version) FROM schema_migrations) AS schema_version", 0, NULL);
	if (rc)
		goto cleanup;
	{
		json_t *rows = rows_json(r);

		res = json_incref(json_array_get(rows, 0));
		json_decref(rows);
	}
	PQclear(r);
	r = NULL;
	if (!res) {
		rc = IMP_ERR_NOMEM;
		goto cleanup;
	}
	{
		json_int_t q = json_integer_value(json_object_get(res, "quota"));
		json_int_t le = json_integer_value(json_object_get(res, "leased"));
		json_int_t iss = json_integer_value(json_object_get(res, "issued"));

		json_object_set_new(res, "quota_left", json_integer(q > iss ? q - iss : 0));
		json_object_set_new(res, "unleased", json_integer(q > le ? q - le : 0));
	}
	rc = pq_run(NULL, c, &r, NULL,
		    "SELECT s.id AS station, s.issued, "
		    " (SELECT count(*) FROM records r WHERE r.station = s.id AND r.kind = 'identity')"
		    "   ::bigint AS records, "
		    " (SELECT count(*) FROM records r WHERE r.station = s.id AND r.conflict IS NOT NULL)"
		    "   ::bigint AS conflicts, "
		    " (SELECT count(*) FROM records r WHERE r.station = s.id AND r.kind = 'identity' "
		    "   AND r.created > now() - interval '1 hour')::bigint AS last_hour, "
		    " (SELECT round((count(*) * 3600.0 / greatest(extract(epoch FROM "
		    "   max(r.created) - min(r.created)), 1))::numeric, 1) FROM records r "
		    "   WHERE r.station = s.id AND r.kind = 'identity') AS boards_per_hour, "
		    " coalesce((s.stats->'states'->>'DONE')::bigint, 0) AS done, "
		    " coalesce((s.stats->'states'->>'FAILED')::bigint, 0) AS failed, "
		    " coalesce((s.stats->'states'->>'QUARANTINED')::bigint, 0) AS quarantined, "
		    " CASE WHEN coalesce((s.stats->'states'->>'DONE')::bigint, 0) + "
		    "  coalesce((s.stats->'states'->>'FAILED')::bigint, 0) = 0 THEN NULL ELSE "
		    "  round(100.0 * coalesce((s.stats->'states'->>'DONE')::bigint, 0) / "
		    "  (coalesce((s.stats->'states'->>'DONE')::bigint, 0) + "
		    "   coalesce((s.stats->'states'->>'FAILED')::bigint, 0)), 1) END AS yield_pct, "
		    " coalesce(s.stats->'failures', '{}'::jsonb) AS failures_by_step, "
		    " (SELECT coalesce(sum(last_counter + 1 - first_counter - used), 0) FROM leases l "
		    "   WHERE l.station = s.id AND l.released_at IS NULL)::bigint AS leased_unused, "
		    " s.head_seq, s.head_hash, to_char(s.last_seen AT TIME ZONE 'UTC', "
		    "   'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS last_seen "
		    "FROM stations s ORDER BY s.id", 0, NULL);
	if (rc)
		goto cleanup;
	json_object_set_new(res, "stations", rows_json(r));
	rc = pq_exec(NULL, c, "COMMIT");
cleanup:
	PQclear(r);
	if (rc)
		rollback(c);
	PQfinish(c);
	if (rc)
		json_decref(res);
	else
		*out = res;
	return rc;
}

static void finding(line_finding_fn cb, void *arg, uint64_t *n, const char *check,
		    const char *record_id, const char *serial, const char *message)
{
	struct line_finding f = { check, record_id ? record_id : "", serial ? serial : "",
				       message };

	(*n)++;
	if (cb)
		cb(arg, &f);
}

imp_err line_audit(const struct line_opts *o, line_record_fn record, void *record_arg,
		   line_finding_fn cb, void *arg, uint64_t *findings, uint64_t *records)
{
	static const struct {
		const char *check;
		const char *sql; /* columns: record_id, serial, message */
	} checks[] = {
		{ "line_conflict",
		  "SELECT record_id, serial, 'flagged for a person: ' || conflict FROM records "
		  "WHERE conflict IS NOT NULL ORDER BY created" },
		{ "serial_twice",
		  "SELECT min(record_id), serial, 'serial issued to ' || count(DISTINCT uid) || "
		  "' uids' FROM records WHERE kind = 'identity' GROUP BY serial "
		  "HAVING count(DISTINCT uid) > 1" },
		{ "uid_two_serials",
		  "SELECT min(record_id), min(serial), 'uid ' || uid || ' has ' || "
		  "count(DISTINCT serial) || ' serials' FROM records WHERE kind = 'identity' "
		  "GROUP BY uid HAVING count(DISTINCT serial) > 1" },
		{ "counter_twice",
		  "SELECT min(record_id), min(serial), 'line counter ' || counter || ' on ' || "
		  "count(DISTINCT serial) || ' serials' FROM records WHERE kind = 'identity' AND "
		  "counter IS NOT NULL GROUP BY counter HAVING count(DISTINCT serial) > 1" },
		{ "counter_outside_lease",
		  "SELECT r.record_id, r.serial, 'counter ' || coalesce(r.counter::text, 'unknown') "
		  "|| ' is in no lease of station ' || r.station FROM records r "
		  "WHERE r.kind = 'identity' AND NOT EXISTS (SELECT 1 FROM leases l WHERE "
		  "l.station = r.station AND r.counter BETWEEN l.first_counter AND l.last_counter)" },
		{ "issued_after_release",
		  "SELECT r.record_id, r.serial, 'counter ' || r.counter || ' was issued after lease "
		  "' || l.id || ' was released at ' || l.released_from FROM records r JOIN leases l "
		  "ON r.counter BETWEEN l.first_counter AND l.last_counter WHERE r.kind = 'identity' "
		  "AND l.released_from IS NOT NULL AND r.counter >= l.released_from" },
		{ "over_quota",
		  "SELECT '', '', 'the line issued ' || (SELECT count(DISTINCT serial) FROM records "
		  "WHERE kind = 'identity') || ' serials, leased ' || leased || ', over its quota of "
		  "' || quota FROM line_counter WHERE leased > quota OR (SELECT count(DISTINCT serial) "
		  "FROM records WHERE kind = 'identity') > quota" },
		{ "lease_accounting",
		  "SELECT '', '', 'leases hold ' || (SELECT coalesce(sum(coalesce(released_from, "
		  "last_counter + 1) - first_counter), 0) FROM leases) || ' quota units, the line "
		  "counts ' || leased FROM line_counter WHERE leased <> (SELECT coalesce(sum("
		  "coalesce(released_from, last_counter + 1) - first_counter), 0) FROM leases)" },
		{ "records_not_delivered",
		  "SELECT '', '', 'station ' || s.id || ' has issued ' || s.issued || ' serials, "
		  "the line holds ' || (SELECT count(DISTINCT serial) FROM records r WHERE "
		  "r.station = s.id AND r.kind = 'identity') || ' of its identities (feed pending "
		  "or boards in flight)' FROM stations s WHERE s.issued > (SELECT count(DISTINCT "
		  "serial) FROM records r WHERE r.station = s.id AND r.kind = 'identity') AND "
		  "coalesce((s.stats->'states'->>'DONE')::bigint, 0) > (SELECT count(DISTINCT "
		  "serial) FROM records r WHERE r.station = s.id AND r.kind = 'identity')" },
	};
	uint64_t nf = 0, nr = 0;
	PGresult *r = NULL;
	PGconn *c;
	imp_err rc;

	rc = line_pq_load();
	if (rc)
		return rc;
	c = connect_admin(o);
	if (!c) {
		IMP_ERROR("line: cannot reach the line database (%s): check the URL and that "
			  "PostgreSQL is running", connect_why[0] ? connect_why : "no answer");
		return IMP_ERR_TIMEOUT;
	}
	rc = pq_exec(NULL, c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
	if (rc == IMP_OK && record)
		rc = pq_run(NULL, c, &r, NULL, "SELECT record_id, jws FROM records ORDER BY created, "
			    "record_id", 0, NULL);
	for (int i = 0; rc == IMP_OK && r && i < PQntuples(r); i++) {
		rc = record(record_arg, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
		nr++;
	}
	PQclear(r);
	r = NULL;
	for (size_t k = 0; rc == IMP_OK && k < sizeof(checks) / sizeof(checks[0]); k++) {
		rc = pq_run(NULL, c, &r, NULL, checks[k].sql, 0, NULL);
		for (int i = 0; rc == IMP_OK && i < PQntuples(r); i++)
			finding(cb, arg, &nf, checks[k].check, PQgetvalue(r, i, 0),
				PQgetvalue(r, i, 1), PQgetvalue(r, i, 2));
		PQclear(r);
		r = NULL;
	}
	if (rc == IMP_OK)
		rc = pq_exec(NULL, c, "COMMIT");
	if (rc)
		rollback(c);
	PQfinish(c);
	if (findings)
		*findings = nf;
	if (records)
		*records = nr;
	return rc;
}
