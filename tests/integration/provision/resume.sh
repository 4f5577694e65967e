#!/bin/bash
# imprint resume takes up only the boards in flight. A board killed in
# flight whose fixture now holds another, blank board: the other board is
# left as it is (no serial, nothing journaled, "not taken"), the one in
# flight is named with what to do, exit 9. Put back on its fixture, it is
# finished by the next resume.
# usage: resume.sh IMPRINT VBOARD
IMPRINT=$1
VBOARD=$2
. "$(dirname "$0")/lib.sh"

PROV_PID=
trap '[ -n "$PROV_PID" ] && kill -9 "$PROV_PID" 2>/dev/null; stop_vboard; cleanup' EXIT

prepare || exit 1
LATENCY=1 start_vboard "$T/vb1" 1 --seed 41 || { echo "vboard did not start"; exit 1; }
write_config "$DATA/station.json" device
"$IMPRINT" -q --data-dir "$DATA" provision >"$T/prov.out" 2>"$T/prov.err" &
PROV_PID=$!
# Killed once the board has its serial and keys (journaled at FIRMWARE or
# later; about half way at latency 1).
for _ in $(seq 1 500); do
	case "$(sql "select state from boards where serial like 'TST%'" 2>/dev/null)" in
	FIRMWARE | CHALLENGE | LOCK) break ;;
	esac
	sleep 0.01
done
kill -KILL "$PROV_PID"
wait "$PROV_PID" 2>/dev/null
PROV_PID=
stop_vboard
row=$(sql "select uid || ' ' || state from boards where serial like 'TST%'")
uid1=${row%% *}
echo "resume: killed with board $uid1 at ${row#* }"
check test -n "$uid1"
serials=$(sql "select count(*) from boards where serial is not null")

# Another, blank board on fixture F1.
start_vboard "$T/vb2" 1 --seed 42 || bad "second vboard"
write_config "$DATA/station.json" device
"$IMPRINT" --data-dir "$DATA" resume >"$T/r1.out" 2>"$T/r1.err"
rc=$?
check test "$rc" = 9
check grep -q "^boards: 1 not taken (new to the journal; a resume takes only boards in flight)" "$T/r1.out"
check grep -q "board $uid1 (TST[0-9]*, in flight at [A-Z]*) was not on fixture F1: it is not finished; put it back on F1 and run 'imprint resume'" "$T/r1.err"
check test "$(sql "select count(*) from boards where serial is not null")" = "$serials"
check test "$(sql "select count(*) from boards where uid = '$(board_uid "$T/vb2/board-0")'")" = 0
check test "$(board_fuses "$T/vb2/board-0")" = 0
[ "$rc" = 9 ] || { cat "$T/r1.out"; tail -5 "$T/r1.err"; }
stop_vboard

# The board in flight back on F1: finished.
start_vboard "$T/vb1" 1 --seed 41 || bad "first vboard again"
write_config "$DATA/station.json" device
"$IMPRINT" --data-dir "$DATA" resume >"$T/r2.out" 2>"$T/r2.err"
rc=$?
check test "$rc" = 0
check test "$(sql "select state from boards where uid = '$uid1'")" = DONE
check test "$(sql "select count(*) from boards where serial is not null")" = "$serials"
[ "$rc" = 0 ] || { cat "$T/r2.out"; tail -5 "$T/r2.err"; }
stop_vboard

# A board stopped in flight comes back erased, with its UID (the same chip
# wiped, or a clone): the steps journaled before it were checked on the
# board as it was. Stopped at LOCK, the resume proves the identity again
# before the fuses: the board is rejected (exit 26), its fuses untouched,
# no record. Stopped before the challenge, the board that holds no key is
# rejected at CHALLENGE (it was left in flight, exit 19, at every resume).
for at in 6 3; do
	start_vboard "$T/vw$at" 1 --seed 5$at || bad "vboard (wiped, $at)"
	write_config "$DATA/station.json" device
	IMPRINT_TEST_KILL_AFTER=$at "$IMPRINT" -q --data-dir "$DATA" provision >/dev/null 2>&1
	stop_vboard
	uidw=$(board_uid "$T/vw$at/board-0")
	want=$([ $at = 6 ] && echo LOCK || echo INJECT)
	check test "$(sql "select state from boards where uid = '$uidw'")" = "$want"
	rm -rf "$T/vw$at"
	start_vboard "$T/vw$at" 1 --seed 5$at || bad "vboard (wiped again, $at)"
	check test "$(board_uid "$T/vw$at/board-0")" = "$uidw"
	write_config "$DATA/station.json" device
	"$IMPRINT" --data-dir "$DATA" resume >"$T/w$at.out" 2>"$T/w$at.err"
	rc=$?
	check test "$rc" = 26
	check grep -q "board $uidw holds no key in slot [0-9]* for the identity challenge: it no longer has the key certified for it" "$T/w$at.err"
	check test "$(sql "select state from boards where uid = '$uidw'")" = FAILED
	check test "$(board_fuses "$T/vw$at/board-0")" = 0
	check test "$(sql "select count(*) from outbox where uid = '$uidw'")" = 0
	[ "$rc" = 26 ] || { cat "$T/w$at.out"; tail -5 "$T/w$at.err"; }
	stop_vboard
done
finish
