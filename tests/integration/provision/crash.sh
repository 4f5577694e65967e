#!/usr/bin/env bash
# Crash safety: the station is killed (SIGKILL) at every state transition
# and at random instants inside steps, and the virtual board loses power at
# random non-volatile writes; each time `imprint resume` (then `provision`,
# as an operator would) finishes the boards; in a quarter of the
# random-instant trials the resume is killed at a random instant too. After every trial
# and at the end: no serial issued twice, no UID with two identities, no locked board
# without a record, no record without a locked board, and the journal's hash
# chain verifies. TRIALS (default 210; CRASH_TRIALS when TRIALS is unset,
# which scripts/test sets for the sanitizer build) sets how many.
IMPRINT=$1
VBOARD=$2
. "$(dirname "$0")/lib.sh"
prepare || exit 1
TRIALS=${TRIALS:-${CRASH_TRIALS:-210}}
RANDOM=${CRASH_SEED:-4242}
echo "crash: seed ${CRASH_SEED:-4242}, $TRIALS trials"

POOL=40          # boards per virtual board process
next_board=$POOL # forces a new pool on the first trial
pool=0
used=()          # every board directory used

new_pool() {
	stop_vboard
	pool=$((pool + 1))
	start_vboard "$T/pool-$pool" "$POOL" "$@" || { bad "vboard did not start"; return 1; }
	next_board=0
}

# config_for FILE I [J]: fixtures F1 (and F2) on boards I (and J) of the pool.
config_for() {
	local file=$1
	shift
	config_boards "$file" CR F "$@"
}

recover() {
	"$IMPRINT" -q --data-dir "$DATA" --config "$1" resume >>"$T/recover.log" 2>&1
	"$IMPRINT" -q --data-dir "$DATA" --config "$1" provision >>"$T/recover.log" 2>&1
}

# Invariants for one board directory: its journal row, record and lock agree.
check_board() {
	local dir=$1 uid fuses state serial records se_serial
	uid=$(board_uid "$dir")
	fuses=$(board_fuses "$dir")
	state=$(sql "select state from boards where uid='$uid'")
	serial=$(sql "select serial from boards where uid='$uid'")
	records=$(sql "select count(*) from outbox where uid='$uid' and kind='identity'")
	if [ "$state" != DONE ] || [ "$fuses" != 3 ] || [ "$records" != 1 ]; then
		bad "board $uid ($dir): state '$state' fuses $fuses records $records"
		return
	fi
	# The identity stored on the board is the journal's: one identity per UID.
	se_serial=$(tail -c +3 "$dir/se/identity.bin" | head -c "${#serial}")
	if [ "$se_serial" != "$serial" ]; then
		bad "board $uid holds serial '$se_serial', journal says '$serial'"
		return
	fi
	ok
}

trial=0
resume_kills=0
# A. Killed right after each state transition (1 fixture: 8 commit points:
#    the allocation with the move to KEYS, six more moves, the record).
MODE=device
while [ $trial -lt $((TRIALS * 45 / 100)) ]; do
	[ $((next_board + 1)) -le $POOL ] || new_pool || break
	b=$next_board
	next_board=$((next_board + 1))
	config_for "$T/c.json" "$b"
	(IMPRINT_TEST_KILL_AFTER=$((trial % 8 + 1)) \
		"$IMPRINT" -q --data-dir "$DATA" --config "$T/c.json" provision) >/dev/null 2>&1
	recover "$T/c.json"
	used+=("$T/pool-$pool/board-$b")
	check_board "$T/pool-$pool/board-$b"
	trial=$((trial + 1))
done

# B. Killed at a random instant (2 fixtures in parallel, slow boards so the
#    kill lands inside steps: flash programming, key generation, fuses).
stop_vboard
next_board=$POOL
export LATENCY=0.03
modes=(device hsm psk)
while [ $trial -lt $((TRIALS * 85 / 100)) ]; do
	[ $((next_board + 2)) -le $POOL ] || new_pool || break
	b=$next_board
	next_board=$((next_board + 2))
	MODE=${modes[$((trial % 3))]}
	config_for "$T/c.json" "$b" "$((b + 1))"
	"$IMPRINT" -q --data-dir "$DATA" --config "$T/c.json" provision >/dev/null 2>&1 &
	pid=$!
	sleep "0.$(printf '%03d' $((RANDOM % 700)))"
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	# Every fourth trial, the resume is killed too, at a random instant.
	if [ $((trial % 4)) = 0 ]; then
		"$IMPRINT" -q --data-dir "$DATA" --config "$T/c.json" resume >/dev/null 2>&1 &
		pid=$!
		sleep "0.$(printf '%03d' $((RANDOM % 300)))"
		kill -9 "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		resume_kills=$((resume_kills + 1))
	fi
	recover "$T/c.json"
	for k in 0 1; do
		used+=("$T/pool-$pool/board-$((b + k))")
		check_board "$T/pool-$pool/board-$((b + k))"
	done
	trial=$((trial + 1))
done
unset LATENCY

# C. The board loses power at a random non-volatile write (flash word, fuse,
#    secure-element store); it comes back with what was persisted.
MODE=device
while [ $trial -lt "$TRIALS" ]; do
	stop_vboard
	dir=$T/power-$trial
	cut=$((RANDOM % 6300 + 1))
	start_vboard "$dir" 1 --power-cut "$cut" || { bad "vboard"; break; }
	config_for "$T/c.json" 0
	"$IMPRINT" -q --data-dir "$DATA" --config "$T/c.json" provision >/dev/null 2>&1
	wait "$VB_PID" 2>/dev/null
	VB_PID=
	start_vboard "$dir" 1 || { bad "vboard restart"; break; }
	config_for "$T/c.json" 0
	recover "$T/c.json"
	used+=("$dir/board-0")
	check_board "$dir/board-0"
	trial=$((trial + 1))
done
stop_vboard
echo "crash: $trial trials, $resume_kills of them also killed during resume"
check test "$trial" -ge "$TRIALS"
check test "$resume_kills" -ge $((TRIALS * 40 / 100 / 4))

# Global: no serial twice, no UID twice, every record has a locked board.
check test "$(sql "select count(*) from (select serial from boards where serial is not null group by serial having count(*) > 1)")" = 0
check test "$(sql "select count(*) from (select uid from boards group by uid having count(*) > 1)")" = 0
check test "$(sql "select count(*) from (select uid from outbox where kind='identity' group by uid having count(*) > 1)")" = 0
locked=0
for d in "${used[@]}"; do
	[ "$(board_fuses "$d")" = 3 ] && locked=$((locked + 1))
done
check test "$locked" = "${#used[@]}"
check test "$(sql "select count(*) from outbox o join boards b on b.uid = o.uid where o.kind='identity' and b.serial like 'CR%'")" = "${#used[@]}"
"$IMPRINT" --data-dir "$DATA" status --verify >"$T/verify.out" 2>&1
check test $? = 0
check grep -q "journal chain: verified" "$T/verify.out"
[ "$fail" = 0 ] || tail -20 "$T/recover.log"
finish
