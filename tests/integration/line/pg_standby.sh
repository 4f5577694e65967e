# A streaming standby of pg.sh's server, for the failover test: a base
# backup of the running primary (pg_basebackup), standby.signal and
# primary_conninfo written by hand (application_name names it for the
# primary's synchronous_standby_names), started on 127.0.0.1 and its own free
# port; promoted with pg_ctl promote. Source after pg.sh; call
# pg_standby_cleanup before pg_cleanup (the standby lives in PG_DIR).
PG_SB_DIR=
PG_SB_PORT=
PG_SB_STARTED=
PG_SB_NAME=standby1

# pg_standby_create: base backup of the running primary into PG_DIR/standby.
pg_standby_create() {
	PG_SB_DIR=$PG_DIR/standby
	PG_SB_STARTED=
	PG_SB_PORT=$(pg_free_port) || return 1
	pg_as "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$PG_PORT" -U imprint -D "$PG_SB_DIR/data" \
		-X stream --no-sync >"$PG_DIR/basebackup.log" 2>&1 || { cat "$PG_DIR/basebackup.log"; return 1; }
	pg_as sh -c "touch '$PG_SB_DIR/data/standby.signal' &&
		echo \"primary_conninfo = 'host=127.0.0.1 port=$PG_PORT user=imprint application_name=$PG_SB_NAME'\" \
			>>'$PG_SB_DIR/data/postgresql.auto.conf'"
}

# pg_standby_start: start (or restart) the standby; it answers read-only
# until promoted. Its own synchronous_standby_names is empty (after a
# promotion nothing would acknowledge its commits).
pg_standby_start() {
	local tries=1
	# Before its first start nothing names the port yet: one another test
	# took since pg_free_port is given up for a fresh one.
	[ -n "$PG_SB_STARTED" ] || tries=5
	for _ in $(seq 1 "$tries"); do
		if pg_as "$PG_BIN/pg_ctl" -D "$PG_SB_DIR/data" -l "$PG_SB_DIR/server.log" -w -t 30 \
			-o "-c listen_addresses=127.0.0.1 -p $PG_SB_PORT -k $PG_SB_DIR -c max_connections=60 -c synchronous_standby_names=" \
			start >/dev/null; then
			PG_SB_STARTED=1
			return 0
		fi
		[ -z "$PG_SB_STARTED" ] && grep -q "Address already in use" "$PG_SB_DIR/server.log" || break
		PG_SB_PORT=$(pg_free_port) || break
	done
	tail -20 "$PG_SB_DIR/server.log"
	return 1
}

pg_standby_stop() {
	[ -n "$PG_SB_DIR" ] && [ -f "$PG_SB_DIR/data/postmaster.pid" ] &&
		pg_as "$PG_BIN/pg_ctl" -D "$PG_SB_DIR/data" -m fast -w stop >/dev/null 2>&1
	return 0
}

# pg_crash: the primary stops at once, as in a crash (immediate shutdown:
# no checkpoint, every backend killed).
pg_crash() {
	pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1
}

# pg_promote: the standby becomes the primary (waits until it accepts writes).
pg_promote() {
	pg_as "$PG_BIN/pg_ctl" -D "$PG_SB_DIR/data" -w -t 30 promote >/dev/null
}

# pg_sb_sql SQL: run SQL on the standby (or the promoted standby).
pg_sb_sql() {
	"$PG_BIN/psql" -X -q -A -t "postgresql://imprint@127.0.0.1:$PG_SB_PORT/postgres" -c "$1"
}

pg_standby_cleanup() {
	pg_standby_stop
	PG_SB_DIR=
}
