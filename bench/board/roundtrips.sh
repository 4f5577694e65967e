#!/usr/bin/env bash
# bench/board/roundtrips.sh: the device traffic of provisioning one board at
# zero latency, from the virtual board's capture (--capture): RSP packets
# (both ways: every packet the station sends and every reply) and UART
# frames (both ways), once with the vboard's flash driver (vFlash, the
# default) and once without (--no-flash-driver: the profile's register
# sequences). Then, with strace installed, the station's system calls per
# board over N fixtures (N boards minus one board, divided by N - 1; the
# start-up cancels out), by call. Each round trip is a send, a wait and a
# receive, and a sleep and a wake of the fixture's thread: fewer is less
# station CPU per board (bench/provision's zero-latency row).
# Usage: bench/board/roundtrips.sh [BUILD_DIR] [N] (default: build, 16)
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
. "$here/bench/lib.sh"
build=${1:-$here/build}
n=${2:-16}
imprint=$build/station/imprint
vboard=$build/sim/imprint-vboard
T=$(mktemp -d)
VB=
trap '[ -n "$VB" ] && kill $VB 2>/dev/null; rm -rf "$T"' EXIT
data=$T/data
"$imprint" -q --data-dir "$data" demo --boards 1 --latency 0 >/dev/null

# provision TAG BOARDS [WRAPPER...] -- [VBOARD FLAGS...]: one run, one fresh
# board per fixture; the capture in $T/cap$TAG
provision() {
	local tag=$1 boards=$2 wrap=() flags=()
	shift 2
	while [ $# -gt 0 ] && [ "$1" != -- ]; do wrap+=("$1"); shift; done
	[ $# -gt 0 ] && shift
	flags=("$@")
	mkdir -p "$T/cap$tag"
	"$vboard" --boards "$boards" --latency 0 --endpoints "$T/ep$tag" --capture "$T/cap$tag" \
		"${flags[@]}" >/dev/null 2>&1 &
	VB=$!
	for _ in $(seq 1 200); do grep -q ready "$T/ep$tag" 2>/dev/null && break; sleep 0.05; done
	rsp_station_config "$T/ep$tag" "$data" "$T/c$tag.json"
	"${wrap[@]}" "$imprint" -q --data-dir "$data" --config "$T/c$tag.json" provision >/dev/null 2>&1 ||
		echo "roundtrips: the provisioning run '$tag' failed" >&2
	kill "$VB"
	wait "$VB" 2>/dev/null || true
	VB=
}

# RSP packets: "$...#xx" in the capture; UART frames: the frame magic A5 5A.
count() {
	local cap=$1/board-0
	printf '%s %s\n' "$(LC_ALL=C grep -ao '\$[^#]*#' "$cap.rsp.bin" | wc -l)" \
		"$(LC_ALL=C grep -aoP '\xa5\x5a' "$cap.uart.bin" | wc -l)"
}

fmt='%-34s %-22s %-22s\n'
printf "$fmt" "one board, latency 0" "RSP packets (both ways)" "UART frames (both ways)"
provision drv 1 --
read -r rsp uart < <(count "$T/capdrv")
printf "$fmt" "vboard flash driver (vFlash)" "$rsp" "$uart"
provision reg 1 -- --no-flash-driver
read -r rsp uart < <(count "$T/capreg")
printf "$fmt" "--no-flash-driver (registers)" "$rsp" "$uart"

if ! command -v strace >/dev/null; then
	echo "strace not installed: no system-call table"
	exit 0
fi
provision s1 1 strace -f -c -o "$T/strace1" --
provision sn "$n" strace -f -c -o "$T/straceN" --
echo
echo "station system calls per board over $n fixtures (vFlash), by call"
awk -v n="$n" '
FNR == 1 { file++ }
$NF != "total" && $4 ~ /^[0-9]+$/ { c[file, $NF] = $4; names[$NF] = 1 }
$NF == "total" { t[file] = $4 }
END {
	for (k in names) {
		d = (c[2, k] - c[1, k]) / (n - 1)
		if (d >= 0.5) printf "  %-16s %6.1f\n", k, d
	}
	printf "  %-16s %6.1f\n", "all", (t[2] - t[1]) / (n - 1)
}' "$T/strace1" "$T/straceN" | sort -k2 -rn
