#!/usr/bin/env bash
# The fixture's OpenOCD lives as long as the run (docs/PROBES.md
# "Lifetime"): `imprint provision --continuous` on one openocd:// fixture,
# three nRF52840 boards swapped onto it through the virtual board's control
# port. The first two go through one and the same OpenOCD process (the
# second board attaches to it: its PID does not change); that OpenOCD is
# then SIGKILLed while the fixture waits for the next board, and the third
# board gets a fresh one and still ends DONE. Finally the station itself is
# SIGKILLed: no OpenOCD outlives it.
# usage: openocd_fixture.sh IMPRINT VBOARD
IMPRINT=$1
VBOARD=$2
OOCD_CFG=vboard-nrf52840.cfg
. "$(dirname "$0")/openocd_lib.sh"

PROV_PID=
trap '[ -n "$PROV_PID" ] && kill -9 "$PROV_PID" 2>/dev/null; for p in $(our_openocds); do kill -9 "$p"; done; cleanup' EXIT

start_vboard "$T/vb" 1 --chip nordic-nrf52840 --bitbang 0 --control 0 || { echo "FAIL: vboard did not start"; exit 1; }
write_oocd_config "$DATA/station.json" device nordic-nrf52840
CTL=$(sed -n 's/.*"control":"127.0.0.1:\([0-9]*\)".*/\1/p' "$T/vb.ready")
[ -n "$CTL" ] || { echo "FAIL: no control port in: $(cat "$T/vb.ready")"; exit 1; }

done_count() { sql "select count(*) from boards where state='DONE'"; }

base=$(done_count) # the demo board of the data directory's set-up
${WRAP:-} "$IMPRINT" --data-dir "$DATA" --config "$DATA/station.json" provision --continuous \
	>"$T/prov.out" 2>"$T/prov.err" &
PROV_PID=$!
check wait_done $((base + 1)) 300
pid1=$(our_openocds)
check test -n "$pid1"
check test "$(printf '%s\n' $pid1 | wc -l)" = 1
# The second board: the same OpenOCD process.
check grep -q '"generation":1' <<<"$(ctl "swap 0")"
check wait_done $((base + 2)) 300
pid2=$(our_openocds)
[ "$pid2" = "$pid1" ] && ok || bad "the second board had OpenOCD $pid2, the first $pid1: not the same process"
# The fixture's OpenOCD dies between boards: the third board gets a fresh one.
kill -9 $pid1
check grep -q '"generation":2' <<<"$(ctl "swap 0")"
check wait_done $((base + 3)) 300
pid3=$(our_openocds)
check test -n "$pid3"
[ "$pid3" != "$pid1" ] && ok || bad "OpenOCD $pid1 was killed and still serves the fixture"
check grep -q "the fixture's OpenOCD exited" "$T/prov.err"
# Every board DONE, each with a verified debug lock in its record.
check test "$(sql "select count(*) from boards where state='DONE' and data like '%\"debug_locked\":true%'")" = $((base + 3))
# SIGKILL of the station: its OpenOCD goes with it (PR_SET_PDEATHSIG of the
# thread that forked it, which lives as long as the run).
kill -9 "$PROV_PID"
wait "$PROV_PID" 2>/dev/null
PROV_PID=
for _ in $(seq 1 20); do
	[ -z "$(our_openocds)" ] && break
	sleep 0.05
done
left=$(our_openocds)
[ -z "$left" ] && ok || bad "OpenOCD outlived the SIGKILLed station: $left"
[ "$fail" = 0 ] || { echo "--- station log:"; tail -20 "$T/prov.err"; }
stop_vboard
finish
