#!/bin/bash
# provision --continuous: two fixtures, three boards swapped onto each
# through the virtual board's control port (docs/VBOARD.md "Swapping
# boards"), once by a swap (another UID answers at once) and once by a
# removal, a pause and an insertion (the fixture falls silent). Every board
# must end DONE and locked on the board itself, SIGINT must stop the run
# with exit 29, and 'imprint resume' must then find nothing in flight. An
# empty fixture answers nothing on its UART and E01 over RSP. A third
# fixture's board fails its challenge: the run says what became of its
# serial, which no other board gets.
# usage: continuous.sh IMPRINT VBOARD
IMPRINT=$1
VBOARD=$2
. "$(dirname "$0")/lib.sh"

PROV_PID=
BAD_PID=
cleanup_prov() {
	[ -n "$PROV_PID" ] && kill "$PROV_PID" 2>/dev/null && wait "$PROV_PID" 2>/dev/null
	[ -n "$BAD_PID" ] && kill "$BAD_PID" 2>/dev/null && wait "$BAD_PID" 2>/dev/null
}
trap 'cleanup_prov; cleanup' EXIT

prepare || exit 1
start_vboard "$T/vb" 2 --control 0 --seed 16 || { echo "vboard did not start"; exit 1; }
# a third fixture whose board fails its challenge: rejected, its serial kept
"$VBOARD" --boards 1 --state-dir "$T/vbbad" --latency 0 --seed 17 --bad-challenge \
	--endpoints "$T/ep-bad" >"$T/vbbad.ready" 2>>"$T/vboard.log" &
BAD_PID=$!
for _ in $(seq 1 100); do grep -q '"ready"' "$T/vbbad.ready" 2>/dev/null && break; sleep 0.05; done
cat "$T/ep-bad" >>"$T/endpoints"
write_config "$DATA/station.json" device
CTL=$(sed -n 's/.*"control":"127.0.0.1:\([0-9]*\)".*/\1/p' "$T/vb.ready")
[ -n "$CTL" ] || { echo "no control port in: $(cat "$T/vb.ready")"; exit 1; }

done_count() {
	"$IMPRINT" -q --data-dir "$DATA" status --json 2>/dev/null |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["boards"]["DONE"])'
}

base=$(done_count)
"$IMPRINT" --data-dir "$DATA" provision --continuous >"$T/prov.out" 2>"$T/prov.err" &
PROV_PID=$!
check wait_done $((base + 2))
# second boards: fixture 1 by a swap, fixture 2 by removal, a pause, insertion
r0=$(ctl "swap 0")
check grep -q '"generation":1' <<<"$r0"
r1=$(ctl "remove 1")
check grep -q '"uid":null' <<<"$r1"
sleep 1.2
check grep -q "waiting for a board" "$T/prov.err"
r1=$(ctl "insert 1")
check grep -q '"generation":1' <<<"$r1"
check wait_done $((base + 4))
# third boards: both by swaps
check grep -q '"generation":2' <<<"$(ctl "swap 0")"
check grep -q '"generation":2' <<<"$(ctl "swap 1")"
check wait_done $((base + 6))
sleep 0.5
kill -INT "$PROV_PID"
wait "$PROV_PID"
rc=$?
PROV_PID=
check test "$rc" = 29
[ "$rc" = 29 ] || { echo "exit $rc"; cat "$T/prov.err"; }
check grep -q "boards: 6 done, 0 already done, 1 failed, 0 quarantined" "$T/prov.out"
check grep -q "continuous: 7 boards taken on 3 fixtures, 1 of them rejected" "$T/prov.out"
# the rejected board: what became of its serial is said, and it is kept
check grep -q "F3: board .* was rejected (IMP_ERR_CHALLENGE): its serial TST[0-9]* stays bound to it" "$T/prov.err"
check grep -q "1 failed boards hold a serial" "$T/prov.err"
bad_serial=$(tail -c +3 "$T/vbbad/board-0/se/identity.bin" | head -c 9)
"$IMPRINT" -q --data-dir "$DATA" status --json >"$T/status.json"
check python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); f=[x for x in s["failures"] if x["serial"]==sys.argv[2]]; sys.exit(0 if f and f[0]["state"]=="FAILED" else 1)' "$T/status.json" "$bad_serial"
[ "$(done_count)" = $((base + 6)) ] && ok || bad "journal: $(done_count) done, want $((base + 6))"

# every board holds its identity and its lock fuses, on the board itself
serials=
for d in "$T/vb/board-0" "$T/vb/board-0.g1" "$T/vb/board-0.g2" \
	"$T/vb/board-1" "$T/vb/board-1.g1" "$T/vb/board-1.g2"; do
	check test -s "$d/se/identity.bin"
	check test "$(board_fuses "$d")" = 3
	serials="$serials $(tail -c +3 "$d/se/identity.bin" | head -c 9)"
done
n=$(printf '%s\n' $serials $bad_serial | sort -u | grep -c TST)
check test "$n" = 7 # the rejected board's serial was given to no other board

# an empty fixture, as the station's drivers see it: the probe reaches no
# target (E01), the agent never answers
check grep -q '"uid":null' <<<"$(ctl "remove 0")"
rsp0=$(sed -n '1s/.*"rsp":"\([^"]*\)".*/\1/p' "$T/endpoints")
uart0=$(sed -n '1s/.*"uart":"\([^"]*\)".*/\1/p' "$T/endpoints")
"$IMPRINT" --data-dir "$DATA" board info --probe "$rsp0" --uart "$uart0" >"$T/empty.out" 2>"$T/empty.err"
check test $? = 14
check grep -q "answered E01" "$T/empty.err"
check grep -q "agent command IDENTIFY: no answer" "$T/empty.err"

# nothing left in flight
"$IMPRINT" --data-dir "$DATA" resume >"$T/resume.out" 2>"$T/resume.err"
rc=$?
check test "$rc" = 0
check grep -q "nothing in flight" "$T/resume.out"
finish
