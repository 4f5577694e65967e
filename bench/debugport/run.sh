#!/usr/bin/env bash
# bench/debugport: real OpenOCD's `program IMAGE 0 verify` through
# imprint-vboard's remote_bitbang debug port into the nRF52840 model, with
# the shipped configuration (board/openocd/vboard-nrf52840.cfg), at the
# realistic latency model (--latency 1): wall time beside the physical
# floor the model charged (NVMC page erases and word writes), for images of
# 16, 64 and 256 KiB, with the work area (the nrf5 driver's loader and the
# CRC routine run on the model's core) and without it (word by word through
# the NVMC, read-back verify), and 16 boards programmed by 16 OpenOCD
# processes at once. Prints a table; never part of the test run.
# Usage: bench/debugport/run.sh [BUILD_DIR] (default: build)
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$here/build}
vboard=$build/sim/imprint-vboard
cfg=$here/board/openocd/vboard-nrf52840.cfg
openocd=${OPENOCD:-openocd}
T=$(mktemp -d)
VB=
trap '[ -n "$VB" ] && kill $VB 2>/dev/null; rm -rf "$T"' EXIT

start_vboard() { # boards tag
	"$vboard" --chip nordic-nrf52840 --boards "$1" --bitbang 0 --latency 1 --seed 7 \
		--endpoints "$T/ep$2" --stats "$T/stats$2" -q >/dev/null 2>&1 &
	VB=$!
	for _ in $(seq 1 200); do grep -q ready "$T/ep$2" 2>/dev/null && break; sleep 0.05; done
}
stop_vboard() {
	kill "$VB"
	wait "$VB" 2>/dev/null || true
	VB=
}
program() { # port workarea image log
	"$openocd" -c "set VBOARD_PORT $1" -c "set VBOARD_WORKAREASIZE $2" -f "$cfg" \
		-c "gdb_port disabled" -c "tcl_port disabled" -c "telnet_port disabled" \
		-c init -c "program $3 0 verify" -c shutdown >"$4" 2>&1
}
ports() { sed -n 's/.*"bitbang":"127.0.0.1:\([0-9]*\)".*/\1/p' "$T/ep$1"; }
floor_of() { sed -n 's/.*"modelled_s":\([0-9.]*\).*/\1/p' "$T/stats$1" | awk '{ s += $1 } END { printf "%.3f", s / NR }'; }

printf '%-7s %-9s %-10s %-10s %-8s %-8s %-9s\n' boards "image KiB" "work area" "wall s" "floor s" ratio "KiB/s"
for kib in 16 64 256; do
	head -c $((kib * 1024)) /dev/urandom >"$T/img$kib.bin"
	for wa in 0x4000 0; do
		tag=$kib-$wa
		start_vboard 1 "$tag"
		t0=$(date +%s.%N)
		program "$(ports "$tag")" "$wa" "$T/img$kib.bin" "$T/log$tag" || { echo "program failed:"; cat "$T/log$tag"; exit 1; }
		t1=$(date +%s.%N)
		grep -q "Verified OK" "$T/log$tag" || { echo "not verified:"; cat "$T/log$tag"; exit 1; }
		stop_vboard
		wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
		floor=$(floor_of "$tag")
		printf '%-7s %-9s %-10s %-10s %-8s %-8s %-9s\n' 1 "$kib" "$wa" "$wall" "$floor" \
			"$(awk -v w="$wall" -v f="$floor" 'BEGIN { printf "%.2f", w / f }')" \
			"$(awk -v w="$wall" -v k="$kib" 'BEGIN { printf "%.1f", k / w }')"
	done
done
# 16 boards, 16 OpenOCD processes at once, 64 KiB each, with the work area.
start_vboard 16 par
t0=$(date +%s.%N)
pids=()
i=0
for p in $(ports par); do
	program "$p" 0x4000 "$T/img64.bin" "$T/logpar$i" &
	pids+=($!)
	i=$((i + 1))
done
ok=0
for pid in "${pids[@]}"; do wait "$pid" && ok=$((ok + 1)); done
t1=$(date +%s.%N)
stop_vboard
wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
floor=$(floor_of par)
printf '%-7s %-9s %-10s %-10s %-8s %-8s %-9s\n' "$ok/16" 64 0x4000 "$wall" "$floor" \
	"$(awk -v w="$wall" -v f="$floor" 'BEGIN { printf "%.2f", w / f }')" \
	"$(awk -v w="$wall" 'BEGIN { printf "%.1f", 16 * 64 / w }')"
echo "(wall: the whole openocd run, start-up included; floor: the model's NVMC time per board; the 16-board row: all boards, KiB/s in total)"
