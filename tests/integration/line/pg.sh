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

# A port nothing listens on, below the kernel's ephemeral range (where
# the other tests' servers and every outgoing connection take theirs), so
# nothing is given it between this probe and the server's bind.
pg_free_port() {
	local p lo=32768 range
	read -r lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
	range=$((lo - 10000))
	[ "$range" -ge 1000 ] || range=20000
	for _ in $(seq 1 50); do
		p=$((10000 + RANDOM % range))
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
		# A port another test took between the probe and the bind is
		# given up for a fresh one (only here: a restart keeps its port).
		for _ in 1 2 3 4 5; do
			PG_PORT=$(pg_free_port) || return 1
			PG_URL="postgresql://imprint@127.0.0.1:$PG_PORT/postgres"
			pg_ctl_start && return 0
			grep -q "Address already in use" "$PG_DIR/server.log" || break
		done
		tail -20 "$PG_DIR/server.log"
		return 1
	fi
	pg_ctl_start || { tail -20 "$PG_DIR/server.log"; return 1; }
}

pg_ctl_start() {
	pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 30 \
		-o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR -c max_connections=60 ${PG_OPTS:-}" \
		start >/dev/null
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
