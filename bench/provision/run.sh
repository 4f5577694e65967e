#!/usr/bin/env bash
# bench/provision: per-board wall time with the realistic latency model
# (imprint-vboard --latency 1) beside the physical floor (the time the
# board model itself charged that board: secure-element operations, flash
# programming, erases, fuse burns and UART byte times at 921600 baud), for
# 1, 4 and 16 fixtures, and the station's CPU time per board.
# Then the same with --latency 0 (the board answers at once) on 1 and 64
# fixtures: there the station's own CPU per board is what is measured,
# beside a machine reference (sha256sum's CPU over 256 MiB, before and after).
# Goals: one fixture within 1.10x the floor; N fixtures give at least
# 0.9 x N times one fixture's throughput; at most 3 ms of station CPU per
# board over 64 boards at zero latency.
# Usage: bench/provision/run.sh [BUILD_DIR] (default: build)
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
. "$here/bench/lib.sh"
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
# row N LATENCY [ROUND]: N fixtures, one fresh board on each, in one provision run
row() {
	local n=$1 lat=$2 tag=$1-$2-${3:-0}
	"$vboard" --boards "$n" --state-dir "$T/b$tag" --latency "$lat" --endpoints "$T/ep$tag" \
		--stats "$T/stats$tag" >/dev/null 2>&1 &
	VB=$!
	for _ in $(seq 1 200); do grep -q ready "$T/ep$tag" 2>/dev/null && break; sleep 0.05; done
	rsp_station_config "$T/ep$tag" "$data" "$T/c$tag.json"
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
	cpu=$(awk -v u="$user" -v s="$sys" -v n="$done" 'BEGIN { printf "%.2f", (u + s) * 1000 / n }')
	cpu_last=$cpu
	printf "$fmt" "$n" "$lat" "$done/$n" "$wall" "$floor" "$ratio" "$tp" "$scale" "$cpu"
}
for n in 1 4 16; do
	row "$n" 1
done
one_tp=
row 1 0
# The machine's own speed beside it, before and after the rounds: the CPU
# seconds sha256sum takes over 256 MiB (the same work each time), so a
# reader can tell a slow period of a shared machine from a slower station.
calib() { # [MIB]: 256 unless told
	local t TIMEFORMAT='%U %S'
	t=$( { time head -c $((${1:-256} * 1048576)) /dev/zero | sha256sum >/dev/null; } 2>&1)
	echo "$t" | awk '{ printf "%.2f", $1 + $2 }'
}
calib_before=$(calib)
# The 64-fixture row BENCH_ZERO_ROUNDS times (default 5), each a run of its
# own with fresh boards: on a machine shared with other work one run's CPU
# figure is noise, their median is the measurement. After each run, the
# reference over 64 MiB: beside the run's figure it shows whether that run
# fell in a slow moment of the machine.
cpus=
refs=
for r in $(seq 1 "${BENCH_ZERO_ROUNDS:-5}"); do
	row 64 0 "$r"
	cpus="$cpus $cpu_last"
	refs="$refs $(calib 64)"
done
echo "cpu/board ms at latency 0 over 64 boards, ${BENCH_ZERO_ROUNDS:-5} runs:$cpus; median" \
	"$(echo $cpus | tr ' ' '\n' | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')" \
	"(goal: at most 3)"
echo "machine reference after each of those runs (sha256sum of 64 MiB, s of CPU):$refs"
echo "machine reference: sha256sum of 256 MiB took $calib_before s of CPU before these runs," \
	"$(calib) s after"
echo "(cpu/board: the station's user+sys time over the run divided by the boards it finished,"
echo " start-up included: HSM login, journal, profile; throughput counts the whole run;"
echo " at latency 0, 'vs N x one' compares with the one-fixture latency-0 row)"

# OpenOCD rows: the nRF52840 and STM32U5 models behind real OpenOCD (openocd:// fixtures:
# one OpenOCD per fixture, started by the station as the run opens and kept
# for it, so a board's clock starts on a running OpenOCD), per-board wall against
# the model's floor for 1 and 16 fixtures; then, on the same model and
# image, what a shell script around OpenOCD does: `program IMAGE ADDR verify`
# (erase, write through the nrf5 or stm32l4x driver, verify) with nothing else,
# through the same adapter. Each chip twice: OpenOCD's remote_bitbang driver
# (one syscall per TDO bit), then its buspirate driver on the vboard's
# emulated Bus Pirate (up to 8192 bits per command; docs/PROBES.md).
# Goals: imprint's whole provisioning of a board at most 1.2x that.
# The last column runs that `program` on N boards at once (N OpenOCD
# processes) against N times one: the scaling OpenOCD itself reaches here,
# the ceiling for any tool that drives it (the N-fixture goal is 0.90).
openocd=$(command -v openocd || true)
if [ -z "$openocd" ]; then
	echo "openocd not installed: no OpenOCD rows"
	exit 0
fi
fw=$data/demo/firmware.bin
# oocd_rows CHIP CFG TARGET ADDR ADAPTER: the rows of one chip model
# through one adapter (bitbang: remote_bitbang; pirate: buspirate)
oocd_rows() {
	local chip=$1 cfg=$2 target=$3 addr=$4 adapter=$5 n prog= one_tp= vbflag key var tag name
	case $adapter in
	bitbang) vbflag="--bitbang 0" key=bitbang var=VBOARD_PORT name="remote_bitbang (TCP)" ;;
	pirate) vbflag="--buspirate" key=buspirate var=VBOARD_PIRATE name="buspirate (emulated Bus Pirate on a pty)" ;;
	*) echo "bench/provision: no OpenOCD adapter '$adapter' (BENCH_OPENOCD_ADAPTERS takes bitbang and pirate)" >&2
	   exit 2 ;;
	esac
	tag=$chip$adapter
echo
echo "OpenOCD $($openocd --version 2>&1 | head -1 | sed 's/.*Debugger //'), $chip model, adapter $name, $(stat -c %s "$fw") byte image"
printf '%-9s %-7s %-14s %-14s %-8s %-16s %-14s %-26s %s\n' fixtures boards "wall/board s" "floor/board s" ratio "throughput b/h" "vs N x one" "vs openocd program" "program: N at once vs N x one"
# prog_batch N: N OpenOCD `program IMAGE ADDR verify exit` at once, one per
# board of a fresh vboard; sets pwall (the batch's wall, s) and pok (how
# many printed "Verified OK")
prog_batch() {
	local k=0 ep pids= t0 t1
	# shellcheck disable=SC2086
	"$vboard" --boards "$1" --chip "$chip" $vbflag --state-dir "$T/p$1$tag" --latency 1 \
		--endpoints "$T/pep$1$tag" >/dev/null 2>&1 &
	VB=$!
	for _ in $(seq 1 200); do grep -q ready "$T/pep$1$tag" 2>/dev/null && break; sleep 0.05; done
	t0=$(date +%s.%N)
	for ep in $(sed -n "s/.*\"$key\":\"\(127.0.0.1:\)\{0,1\}\([^\"]*\)\".*/\2/p" "$T/pep$1$tag"); do
		k=$((k + 1))
		"$openocd" -c "set $var $ep" -f "$cfg" -c "gdb_port disabled; tcl_port disabled; telnet_port disabled" \
			-c "program $fw $addr verify exit" >"$T/prog$1.$k.out" 2>&1 &
		pids="$pids $!"
	done
	# shellcheck disable=SC2086
	wait $pids || true
	t1=$(date +%s.%N)
	pwall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
	pok=$(grep -l "Verified OK" "$T"/prog"$1".*.out 2>/dev/null | wc -l)
	kill "$VB"
	wait "$VB" 2>/dev/null || true
	VB=
}
for n in 1 16; do
	# OpenOCD's own `program ... verify` of the same image on boards of
	# the same model: alone, then N at once (N OpenOCD processes, one
	# board each), the ceiling this machine gives any tool around OpenOCD.
	prog_batch "$n"
	if [ "$n" = 1 ]; then
		prog=$pwall
		[ "$pok" = 1 ] || prog="failed"
	fi
	# shellcheck disable=SC2086
	"$vboard" --boards "$n" --chip "$chip" $vbflag --state-dir "$T/o$n$tag" --latency 1 \
		--endpoints "$T/oep$n$tag" --stats "$T/ostats$n$tag" >/dev/null 2>&1 &
	VB=$!
	for _ in $(seq 1 200); do grep -q ready "$T/oep$n$tag" 2>/dev/null && break; sleep 0.05; done
	fixtures=$(awk -v cfg="$cfg" -v key="$key" -v var="$var" '
		match($0, "\"" key "\":\"[^\"]*\"") {
			ep = substr($0, RSTART + length(key) + 4, RLENGTH - length(key) - 5)
			sub(/^127\.0\.0\.1:/, "", ep)
			match($0, /"uart":"[^"]*"/)
			uart = substr($0, RSTART + 8, RLENGTH - 9)
			printf "%s{\"name\":\"F%d\",\"probe\":\"openocd://%s?set.%s=%s\",\"uart\":\"%s\"}", sep, ++k, cfg, var, ep, uart
			sep = ","
		}' "$T/oep$n$tag")
	cat >"$T/oc$n$tag.json" <<EOC
{"version":1,"station_id":"demo-station","target":"$target","firmware":{"image":"$fw",
 "signature":"$data/demo/firmware.sig"},"fixtures":[$fixtures]}
EOC
	TIMEFORMAT='%R %U %S'
	{ time "$imprint" --json --data-dir "$data" --config "$T/oc$n$tag.json" provision >"$T/oout$n$tag" 2>"$T/oerr$n$tag" || true; } 2>"$T/otime$n$tag"
	kill "$VB"
	wait "$VB" 2>/dev/null || true
	VB=
	read -r real user sys <"$T/otime$n$tag"
	wall=$(grep '"event":"result"' "$T/oout$n$tag" | sed -n 's/.*"seconds":\([0-9.e+-]*\).*/\1/p' |
		awk '{ s += $1 } END { if (NR) printf "%.3f", s / NR; else print "nan" }')
	floor=$(sed -n 's/.*"modelled_s":\([0-9.]*\).*/\1/p' "$T/ostats$n$tag" | awk '{ s += $1 } END { if (NR) printf "%.3f", s / NR; else print "nan" }')
	done=$(grep -c '"state":"DONE"' <(grep '"event":"result"' "$T/oout$n$tag") || true)
	tp=$(awk -v n="$done" -v r="$real" 'BEGIN { printf "%.0f", n * 3600 / r }')
	[ -n "$one_tp" ] || one_tp=$tp
	scale=$(awk -v tp="$tp" -v one="$one_tp" -v n="$n" 'BEGIN { if (one) printf "%.2f", tp / (one * n); else print "nan" }')
	ratio=$(awk -v w="$wall" -v f="$floor" 'BEGIN { if (f) printf "%.3f", w / f; else print "nan" }')
	vsprog=$(awk -v w="$wall" -v p="$prog" 'BEGIN { if (p + 0) printf "%.2f (program %.2f s)", w / p, p; else print "n/a" }')
	pscale=$(awk -v one="$prog" -v w="$pwall" -v ok="$pok" -v n="$n" 'BEGIN { if (ok == n && one + 0 && w + 0) printf "%.2f (%d in %.2f s)", one / w, n, w; else printf "n/a (%d of %d verified)", ok, n }')
	printf '%-9s %-7s %-14s %-14s %-8s %-16s %-14s %-26s %s\n' "$n" "$done/$n" "$wall" "$floor" "$ratio" "$tp" "$scale" "$vsprog" "$pscale"
	[ "$done" = "$n" ] || { echo "  (failures:)"; grep error "$T/oerr$n$tag" | sort | uniq -c | head -5; }
done
}
# BENCH_OPENOCD_ADAPTERS: the adapters' blocks, in order (default both; empty: none)
for adapter in ${BENCH_OPENOCD_ADAPTERS-bitbang pirate}; do
	oocd_rows nordic-nrf52840 "$here/board/openocd/vboard-nrf52840.cfg" nordic-nrf52840 0 "$adapter"
	oocd_rows st-stm32u5 "$here/board/openocd/vboard-stm32u5.cfg" st-stm32u5 0x08000000 "$adapter"
done
echo "(the floor is the model's charged time; the adapter's costs come on top of it, in both columns)"
