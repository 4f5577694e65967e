#!/usr/bin/env bash
# bench/provision: per-board wall time with the realistic latency model
# (imprint-vboard --latency 1) beside the physical floor (the time the
# board model itself charged that board: secure-element operations, flash
# programming, erases, fuse burns and UART byte times at 921600 baud), for
# 1, 4 and 16 fixtures, and the station's CPU time per board.
# Then the same with --latency 0 (the board answers at once) on 1 and 64
# fixtures: there the station's own CPU per board is what is measured.
# Goals: one fixture within 1.10x the floor; N fixtures give at least
# 0.9 x N times one fixture's throughput; at most 3 ms of station CPU per
# board over 64 boards at zero latency.
# Usage: bench/provision/run.sh [BUILD_DIR] (default: build)
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

fmt='%-9s %-8s %-7s %-14s %-14s %-8s %-16s %-14s %-10s\n'
printf "$fmt" fixtures latency boards "wall/board s" "floor/board s" ratio "throughput b/h" "vs N x one" "cpu/board ms"
one_tp=
# row N LATENCY: N fixtures, one fresh board on each, in one provision run
row() {
	local n=$1 lat=$2 tag=$1-$2
	"$vboard" --boards "$n" --state-dir "$T/b$tag" --latency "$lat" --endpoints "$T/ep$tag" \
		--stats "$T/stats$tag" >/dev/null 2>&1 &
	VB=$!
	for _ in $(seq 1 200); do grep -q ready "$T/ep$tag" 2>/dev/null && break; sleep 0.05; done
	fixtures=$(sed -n 's/.*"rsp":"\([^"]*\)".*"uart":"\([^"]*\)".*/{"name":"F\1","probe":"\1","uart":"\2"}/p' "$T/ep$tag" |
		awk '{ sub(/"name":"F[^"]*"/, "\"name\":\"F" NR "\""); print }' | paste -sd, -)
	cat >"$T/c$tag.json" <<EOC
{"version":1,"station_id":"demo-station","firmware":{"image":"$data/demo/firmware.bin",
 "signature":"$data/demo/firmware.sig"},"fixtures":[$fixtures]}
EOC
	TIMEFORMAT='%R %U %S'
	{ time "$imprint" --json --data-dir "$data" --config "$T/c$tag.json" provision >"$T/out$tag" 2>/dev/null; } 2>"$T/time$tag"
	kill "$VB"
	wait "$VB" 2>/dev/null || true
	VB=
	read -r real user sys <"$T/time$tag"
	wall=$(grep '"event":"result"' "$T/out$tag" | sed -n 's/.*"seconds":\([0-9.e+-]*\).*/\1/p' |
		awk '{ s += $1 } END { printf "%.3f", s / NR }')
	floor=$(sed -n 's/.*"modelled_s":\([0-9.]*\).*/\1/p' "$T/stats$tag" | awk '{ s += $1 } END { printf "%.3f", s / NR }')
	done=$(grep -c '"state":"DONE"' <(grep '"event":"result"' "$T/out$tag") || true)
	tp=$(awk -v n="$done" -v r="$real" 'BEGIN { printf "%.0f", n * 3600 / r }')
	[ -n "$one_tp" ] || one_tp=$tp
	scale=$(awk -v tp="$tp" -v one="$one_tp" -v n="$n" 'BEGIN { printf "%.2f", tp / (one * n) }')
	ratio=$(awk -v w="$wall" -v f="$floor" 'BEGIN { if (f > 0) printf "%.3f", w / f; else print "-" }')
	cpu=$(awk -v u="$user" -v s="$sys" -v n="$done" 'BEGIN { printf "%.1f", (u + s) * 1000 / n }')
	printf "$fmt" "$n" "$lat" "$done/$n" "$wall" "$floor" "$ratio" "$tp" "$scale" "$cpu"
}
for n in 1 4 16; do
	row "$n" 1
done
one_tp=
for n in 1 64; do
	row "$n" 0
done
echo "(cpu/board: the station's user+sys time over the run divided by the boards it finished,"
echo " start-up included: HSM login, journal, profile; throughput counts the whole run;"
echo " at latency 0, 'vs N x one' compares with the one-fixture latency-0 row)"
