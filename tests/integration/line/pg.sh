# A throw-away PostgreSQL for the line tests and benches: initdb and pg_ctl
# from Debian's postgresql package, in a temporary directory, on 127.0.0.1
# and a free port, trust authentication for loopback only. Source it; it
# sets PG_URL and defines pg_start, pg_stop, pg_restart and pg_cleanup (call
# pg_cleanup from the caller's EXIT trap); PG_OPTS adds server options
# (-c name=value ...). As root the server runs as the
# `postgres` user (initdb refuses root).
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
PG_DIR=
PG_PORT=
PG_URL=

pg_as() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

pg_free_port() {
	local p
	for _ in $(seq 1 50); do
		p=$((20000 + RANDOM % 30000))
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return 0; }
	done
	return 1
}

pg_start() {
	[ -x "$PG_BIN/initdb" ] || { echo "pg: no initdb in $PG_BIN (install postgresql: scripts/setup)"; return 1; }
	if [ -z "$PG_DIR" ]; then
		PG_DIR=$(mktemp -d /tmp/imprint-pg.XXXXXX) || return 1
		chmod 755 "$PG_DIR"
		[ "$(id -u)" = 0 ] && chown postgres: "$PG_DIR"
		pg_as "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U imprint --no-sync \
			>"$PG_DIR/initdb.log" 2>&1 || { cat "$PG_DIR/initdb.log"; return 1; }
		PG_PORT=$(pg_free_port) || return 1
		PG_URL="postgresql://imprint@127.0.0.1:$PG_PORT/postgres"
	fi
	pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 30 \
		-o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR -c max_connections=60 ${PG_OPTS:-}" \
		start >/dev/null || { tail -20 "$PG_DIR/server.log"; return 1; }
}

pg_stop() {
	[ -n "$PG_DIR" ] && [ -f "$PG_DIR/data/postmaster.pid" ] &&
		pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1
	return 0
}

pg_cleanup() {
	pg_stop
	[ -n "$PG_DIR" ] && rm -rf "$PG_DIR"
	PG_DIR=
}

# pg_sql SQL: run SQL on the line database, unaligned, tuples only.
pg_sql() {
	"$PG_BIN/psql" -X -q -A -t "$PG_URL" -c "$1"
}
