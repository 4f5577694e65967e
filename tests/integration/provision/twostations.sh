#!/usr/bin/env bash
# Two station processes on one data directory at once (one journal, one
# token, one anchor file), started at random instants of each other, one of
# them killed (SIGKILL) at a random instant in some rounds, then each
# resumed: every board ends DONE with its record (or, not yet registered by
# the killed run, untouched), no serial or UID is issued twice, and the
# journal's chain, anchor and boards table verify.
# Usage: twostations.sh IMPRINT VBOARD [ROUNDS]
IMPRINT=${1:?usage: twostations.sh IMPRINT VBOARD [ROUNDS]}
VBOARD=${2:?usage: twostations.sh IMPRINT VBOARD [ROUNDS]}
ROUNDS=${3:-${TWOSTATIONS_ROUNDS:-12}}
. "$(dirname "$0")/lib.sh"

prepare || exit 1
PER=3 # boards per station and round
export LATENCY=${LATENCY:-0.2} # a run lasts long enough for the other to start inside it

# station_cfg FILE LETTER FIRST: fixtures LETTER1.. on boards FIRST.. of the
# round's endpoints.
station_cfg() { config_boards "$1" TW "$2" $(seq "$3" $(($3 + PER - 1))); }

boards=()
kills=0
untouched=0
for r in $(seq 1 "$ROUNDS"); do
	start_vboard "$T/r$r" $((2 * PER)) || { bad "vboard round $r"; break; }
	station_cfg "$T/a.json" A 0
	station_cfg "$T/b.json" B "$PER"
	"$IMPRINT" -q --data-dir "$DATA" --config "$T/a.json" provision >/dev/null 2>"$T/a$r.err" &
	pa=$!
	sleep "0.$(printf '%03d' $((RANDOM % 250)))"
	"$IMPRINT" -q --data-dir "$DATA" --config "$T/b.json" provision >/dev/null 2>"$T/b$r.err" &
	pb=$!
	# Every other round, one of them is killed at a random instant: during
	# the other's start-up, its HSM login, or its boards.
	killed=
	if [ $((r % 2)) = 0 ]; then
		sleep "0.$(printf '%03d' $((RANDOM % 400)))"
		if [ $((RANDOM % 2)) = 0 ]; then killed=a; else killed=b; fi
		if [ $killed = a ]; then kill -9 "$pa" 2>/dev/null; else kill -9 "$pb" 2>/dev/null; fi
		kills=$((kills + 1))
	fi
	wait "$pa"
	ra=$?
	wait "$pb"
	rb=$?
	# A run that was not killed ends 0, or (the other one was killed inside
	# the journal's or token's lock) with a clear error.
	for x in "a:$ra" "b:$rb"; do
		code=${x#*:}
		case $code in
		0 | 137) ok ;;
		*) if grep -q "error" "$T/${x%%:*}$r.err"; then ok; else bad "round $r: ${x%%:*} exit $code without an error line"; fi ;;
		esac
	done
	# Each station's resume finishes the boards of its own fixtures; the
	# first names (exit 9) the other's boards still in flight, which it
	# cannot reach. A second pass of both then has nothing left.
	for pn in 1 2; do
		for c in a b; do
			"$IMPRINT" --data-dir "$DATA" --config "$T/$c.json" resume >"$T/resume.out" \
				2>"$T/resume.err"
			code=$?
			cat "$T/resume.err" >>"$T/resume.log"
			if [ "$code" = 0 ] || { [ $pn = 1 ] && [ "$code" = 9 ] &&
				grep -q "was on fixture '[AB][0-9]', which is not configured" "$T/resume.err"; }; then
				ok
			else
				bad "round $r: resume $c (pass $pn) exit $code"
			fi
		done
	done
	# A board the killed run had not yet registered is untouched (resume
	# leaves a board new to the journal as it is): its fuses are not burnt,
	# and it is one of the killed station's.
	for i in $(seq 0 $((2 * PER - 1))); do
		d=$T/r$r/board-$i
		st=$(sql "select state from boards where uid = '$(board_uid "$d")'")
		if [ -z "$st" ]; then
			untouched=$((untouched + 1))
			check test "$(board_fuses "$d")" = 0
			if [ $i -lt $PER ]; then owner=a; else owner=b; fi
			check test "$killed" = "$owner"
			continue
		fi
		boards+=("$d")
		check test "$(board_fuses "$d")" = 3
		check test "$st" = DONE
	done
	stop_vboard
done
echo "twostations: $ROUNDS rounds of two stations, $kills with one killed, ${#boards[@]} boards" \
	"done, $untouched untouched"
check test $((${#boards[@]} + untouched)) = $((ROUNDS * 2 * PER))

# Global: no serial twice, no UID twice, one identity record per board.
check test "$(sql "select count(*) from (select serial from boards where serial is not null group by serial having count(*) > 1)")" = 0
check test "$(sql "select count(*) from (select uid from outbox where kind = 'identity' group by uid having count(*) > 1)")" = 0
check test "$(sql "select count(*) from boards where serial like 'TW%' and state = 'DONE'")" = "${#boards[@]}"
check test "$(sql "select count(*) from outbox o join boards b on b.uid = o.uid where o.kind = 'identity' and b.serial like 'TW%'")" = "${#boards[@]}"
"$IMPRINT" --data-dir "$DATA" status --verify >"$T/verify.out" 2>&1
check test $? = 0
check grep -q "journal chain: verified" "$T/verify.out"
[ "$fail" = 0 ] || tail -20 "$T/resume.log"
finish
