#!/usr/bin/env bash
# bench/line: boards per hour for 1, 2 and 4 stations (separate processes,
# each with its own data directory, token copy and journal) against one
# PostgreSQL on this machine, with the zero-latency board model, beside one
# standalone station (no line) as the reference. Each station provisions
# ROUNDS runs of FIXTURES boards (new virtual boards each run). Also printed:
# PostgreSQL transactions per board. The point: the database is not the
# bottleneck (stations scale, and a line station is as fast as a standalone
# one). Never part of ctest.
# Usage: bench/line/run.sh [BUILD_DIR] (default: build); FIXTURES (16),
# ROUNDS (4), BLOCK (50) from the environment.
set -uo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$here/build}
IMPRINT=$build/station/imprint
VBOARD=$build/sim/imprint-vboard
FIXTURES=${FIXTURES:-16}
ROUNDS=${ROUNDS:-4}
BLOCK=${BLOCK:-50}
T=$(mktemp -d)
PIDS=()
. "$here/tests/integration/line/pg.sh"
bench_cleanup() {
	for p in "${PIDS[@]}" $(cat "$T/pids" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	pg_cleanup
	rm -rf "$T"
}
trap bench_cleanup EXIT

DATA=$T/data
"$IMPRINT" -q --data-dir "$DATA" demo --boards 1 --latency 0 >/dev/null 2>&1 || { echo "demo failed"; exit 1; }
pg_start || exit 1

# station_run DIR ROUND LINE_URL: FIXTURES new boards, one provision run.
station_run() {
	local d=$1 r=$2 url=$3 fx ep=$1/ep-$2 line=""
	"$VBOARD" --boards "$FIXTURES" --state-dir "$d/vb-$r" --latency 0 --endpoints "$ep" \
		>"$ep.ready" 2>/dev/null &
	local vb=$!
	echo "$vb" >>"$T/pids"
	for _ in $(seq 1 200); do grep -q '"ready"' "$ep.ready" 2>/dev/null && break; sleep 0.02; done
	fx=$(sed -n 's/.*"rsp":"\([^"]*\)".*"uart":"\([^"]*\)".*/{"name":"F","probe":"\1","uart":"\2"}/p' "$ep" |
		awk '{ sub(/"name":"F"/, "\"name\":\"F" NR "\""); print }' | paste -sd, -)
	[ -n "$url" ] && line=", \"line\": {\"url\": \"$url\", \"block\": $BLOCK, \"quota\": 1000000}"
	cat >"$d/c.json" <<EOC
{"version": 1, "station_id": "$(basename "$d")", "key_mode": "device",
 "serial": {"prefix": "BL", "width": 8},
 "firmware": {"image": "$DATA/demo/firmware.bin", "signature": "$DATA/demo/firmware.sig"},
 "fixtures": [$fx]$line}
EOC
	"$IMPRINT" -q --data-dir "$d" --config "$d/c.json" provision >>"$d/out" 2>>"$d/err"
	kill "$vb" 2>/dev/null
	wait "$vb" 2>/dev/null
}

station_loop() {
	local d=$1 url=$2
	for r in $(seq 1 "$ROUNDS"); do station_run "$d" "$r" "$url"; done
}

new_station() {
	local d=$T/$1
	mkdir -p "$d"
	cp -r "$DATA/hsm" "$DATA/trust" "$d/"
	sed -i "s|$DATA/hsm|$d/hsm|" "$d/hsm/softhsm2.conf"
	echo "$d"
}

xacts() { pg_sql "select xact_commit from pg_stat_database where datname = 'postgres'"; }

# CPU ticks of the PostgreSQL server: the postmaster and every live child,
# plus the reaped backends (cutime, cstime), since a station's backend
# exits with the station.
pg_ticks() {
	local pm t=0 f
	pm=$(head -1 "$PG_DIR/data/postmaster.pid")
	for f in /proc/[0-9]*/stat; do
		{ read -r -a a <"$f"; } 2>/dev/null || continue
		if [ "${a[0]}" = "$pm" ]; then
			t=$((t + a[13] + a[14] + a[15] + a[16]))
		elif [ "${a[3]}" = "$pm" ]; then
			t=$((t + a[13] + a[14]))
		fi
	done
	echo "$t"
}

printf '%-12s %8s %7s %8s %10s %16s %11s %15s %9s\n' setup stations boards "wall s" "boards/h" "boards/h/station" "pg tx/board" "pg cpu ms/board" "pg cpu %"
bench() {
	local label=$1 n=$2 url=$3 t0 t1 done=0 x0 x1 pids=()
	local dirs=()
	for s in $(seq 1 "$n"); do dirs+=("$(new_station "$label$n-$s")"); done
	x0=$(xacts)
	c0=$(pg_ticks)
	t0=$(date +%s.%N)
	for d in "${dirs[@]}"; do
		station_loop "$d" "$url" &
		pids+=($!)
	done
	PIDS+=("${pids[@]}")
	for p in "${pids[@]}"; do wait "$p"; done
	t1=$(date +%s.%N)
	c1=$(pg_ticks)
	x1=$(xacts)
	for d in "${dirs[@]}"; do
		done=$((done + $(sqlite3 "$d/journal.sqlite" "select count(*) from boards where state='DONE'")))
	done
	awk -v l="$label" -v n="$n" -v b="$done" -v t0="$t0" -v t1="$t1" -v x0="$x0" -v x1="$x1" \
		-v u="$url" -v c="$((c1 - c0))" -v hz="$(getconf CLK_TCK)" -v cpus="$(nproc)" \
		'BEGIN { w = t1 - t0; bph = b / w * 3600; cs = c / hz;
		  printf "%-12s %8d %7d %8.2f %10.0f %16.0f %11s %15s %9s\n", l, n, b, w, bph, bph / n,
		  (u == "" ? "-" : sprintf("%.1f", (x1 - x0) / b)),
		  (u == "" ? "-" : sprintf("%.2f", cs * 1000 / b)),
		  (u == "" ? "-" : sprintf("%.1f", 100 * cs / (w * cpus))) }'
}

bench standalone 1 ""
bench line 1 "$PG_URL"
bench line 2 "$PG_URL"
bench line 4 "$PG_URL"
echo
"$IMPRINT" -q --data-dir "$DATA" line status --line "$PG_URL" | head -2
echo "cpus: $(nproc); zero-latency boards; $FIXTURES fixtures x $ROUNDS runs per station; lease block $BLOCK"
