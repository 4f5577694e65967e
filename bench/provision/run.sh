#!/usr/bin/env bash
# bench/provision: per-board wall time with the realistic latency model
# (imprint-vboard --latency 1) beside the physical floor (the time the
# board model itself charged that board: secure-element operations, flash
# programming, erases, fuse burns and UART byte times at 921600 baud), for
# 1, 4 and 16 fixtures, and the station's CPU time per board.
# Goals: one fixture within 1.10x the floor; N fixtures give at least
# 0.9 x N times one fixture's throughput.
# Usage: bench/provision/run.sh [BUILD_DIR] (default: build); LATENCY=0 runs the
# boards without their latency model, so cpu/board is the station's own cost; FIXTURES="16 64"
# picks the fixture counts
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$here/build}
imprint=$build/station/imprint
vboard=$build/sim/imprint-vboard
T=$(mktemp -d)
VB=
trap '[ -n "$VB" ] && kill $VB 2>/dev/null; rm -rf "$T"' EXIT
data=$T/data
"$imprint" -q --data-dir "$data" demo --boards 1 --latency 0 >/dev/null

printf '%-9s %-7s %-14s %-14s %-8s %-16s %-14s %-10s\n' fixtures boards "wall/board s" "floor/board s" ratio "throughput b/h" "vs N x one" "cpu/board ms"
one_tp=
for n in ${FIXTURES:-1 4 16}; do
	"$vboard" --boards "$n" --state-dir "$T/b$n" --latency "${LATENCY:-1}" --endpoints "$T/ep$n" \
		--stats "$T/stats$n" >/dev/null 2>&1 &
	VB=$!
	for _ in $(seq 1 200); do grep -q ready "$T/ep$n" 2>/dev/null && break; sleep 0.05; done
	fixtures=$(sed -n 's/.*"rsp":"\([^"]*\)".*"uart":"\([^"]*\)".*/{"name":"F\1","probe":"\1","uart":"\2"}/p' "$T/ep$n" |
		awk '{ sub(/"name":"F[^"]*"/, "\"name\":\"F" NR "\""); print }' | paste -sd, -)
	cat >"$T/c$n.json" <<EOC
{"version":1,"station_id":"demo-station","firmware":{"image":"$data/demo/firmware.bin",
 "signature":"$data/demo/firmware.sig"},"fixtures":[$fixtures]}
EOC
	TIMEFORMAT='%R %U %S'
	{ time "$imprint" --json --data-dir "$data" --config "$T/c$n.json" provision >"$T/out$n" 2>/dev/null; } 2>"$T/time$n"
	kill "$VB"
	wait "$VB" 2>/dev/null || true
	VB=
	read -r real user sys <"$T/time$n"
	wall=$(grep '"event":"result"' "$T/out$n" | sed -n 's/.*"seconds":\([0-9.e+-]*\).*/\1/p' |
		awk '{ s += $1 } END { printf "%.3f", s / NR }')
	floor=$(sed -n 's/.*"modelled_s":\([0-9.]*\).*/\1/p' "$T/stats$n" | awk '{ s += $1 } END { printf "%.3f", s / NR }')
	done=$(grep -c '"state":"DONE"' <(grep '"event":"result"' "$T/out$n") || true)
	tp=$(awk -v n="$done" -v r="$real" 'BEGIN { printf "%.0f", n * 3600 / r }')
	[ -n "$one_tp" ] || one_tp=$tp
	scale=$(awk -v tp="$tp" -v one="$one_tp" -v n="$n" 'BEGIN { printf "%.2f", tp / (one * n) }')
	ratio=$(awk -v w="$wall" -v f="$floor" 'BEGIN { printf "%.3f", w / f }')
	cpu=$(awk -v u="$user" -v s="$sys" -v n="$done" 'BEGIN { printf "%.1f", (u + s) * 1000 / n }')
	printf '%-9s %-7s %-14s %-14s %-8s %-16s %-14s %-10s\n' "$n" "$done/$n" "$wall" "$floor" "$ratio" "$tp" "$scale" "$cpu"
done
echo "(cpu/board includes the station's start-up: HSM login, journal, profile; throughput counts the whole run)"
