#!/usr/bin/env bash
# The embedded token survives a stop at any instant of start-up: SoftHSM2
# rewrites token.object in place at every C_Login, so station processes
# (provision, resume, hsm status) are killed with SIGKILL at uniform instants
# over their first 50 ms, and pairs of processes are started together.
# After every kill the token must still open (`imprint hsm status` exits 0),
# both processes of every pair must succeed, and at the end every board is
# finished (DONE, fuses burnt, one record). KILLS (default 400; TOKEN_KILLS
# when KILLS is unset, which scripts/test sets for the sanitizer build) and PAIRS
# (default 50) set the counts; TOKEN_KILL_SEED the instants.
IMPRINT=$1
VBOARD=$2
. "$(dirname "$0")/../provision/lib.sh"
prepare || exit 1
KILLS=${KILLS:-${TOKEN_KILLS:-400}}
PAIRS=${PAIRS:-50}
RANDOM=${TOKEN_KILL_SEED:-1109}
BOARDS=4
echo "tokenkill: seed ${TOKEN_KILL_SEED:-1109}, $KILLS kills, $PAIRS pairs"

start_vboard "$T/boards" "$BOARDS" || { bad "vboard did not start"; finish; exit 1; }
write_config "$T/c.json" device

hsm_ok() { "$IMPRINT" --data-dir "$DATA" hsm status >/dev/null 2>>"$T/check.log"; }

# An object file cut right after its header (a stop while SoftHSM2 created
# it) has no verified copy: SoftHSM2 loads it as an object without
# attributes. Listing the token must leave it out, not fail on it.
tokdir=$(find "$DATA/hsm/tokens" -mindepth 1 -maxdepth 1 -type d | head -1)
src=$(find "$tokdir" -name '*.object' ! -name token.object | head -1)
cut=$tokdir/00000000-0000-0000-0000-0000000000c7.object
head -c 8 "$src" >"$cut"
: >"${cut%.object}.lock"
"$IMPRINT" --data-dir "$DATA" hsm status >"$T/cut.out" 2>"$T/cut.err"
check test $? = 0
check grep -q "cut short and has no verified copy" "$T/cut.err"
check grep -q "^status: ok" "$T/cut.out"
rm -f "$cut" "${cut%.object}.lock"

cmds=(provision resume "hsm status")
lost=0
restored_before=$(grep -c "restored from its verified copy" "$T/check.log" 2>/dev/null)
for i in $(seq 0 $((KILLS - 1))); do
	cmd=${cmds[$((i % 3))]}
	us=$(((RANDOM * 32768 + RANDOM) % 50000))
	# shellcheck disable=SC2086 # "hsm status" is two words
	"$IMPRINT" -q --data-dir "$DATA" --config "$T/c.json" $cmd >/dev/null 2>>"$T/killed.log" &
	pid=$!
	sleep "$(printf '0.%06d' "$us")"
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	if ! hsm_ok; then
		lost=$((lost + 1))
		bad "kill $i ($cmd after ${us} us): the token no longer opens"
		tail -3 "$T/check.log"
		break
	fi
done
echo "tokenkill: $KILLS kills, $lost tokens lost, $(grep -c "restored from its verified copy" "$T/check.log" "$T/killed.log" | awk -F: '{ s += $2 } END { print s }') files restored"
check test "$lost" = 0

# Two processes started at the same instant (a login of one overlapping the
# start of the other).
pair_fail=0
for i in $(seq 1 "$PAIRS"); do
	"$IMPRINT" -q --data-dir "$DATA" hsm status >/dev/null 2>>"$T/pair.log" &
	a=$!
	"$IMPRINT" -q --data-dir "$DATA" hsm status >/dev/null 2>>"$T/pair.log" &
	b=$!
	wait "$a" || pair_fail=$((pair_fail + 1))
	wait "$b" || pair_fail=$((pair_fail + 1))
done
echo "tokenkill: $PAIRS pairs, $pair_fail processes failed"
[ "$pair_fail" = 0 ] || tail -5 "$T/pair.log"
check test "$pair_fail" = 0

# Every board finished afterwards.
"$IMPRINT" -q --data-dir "$DATA" --config "$T/c.json" resume >"$T/final.log" 2>&1
"$IMPRINT" -q --data-dir "$DATA" --config "$T/c.json" provision >>"$T/final.log" 2>&1
check test $? = 0
for k in $(seq 0 $((BOARDS - 1))); do
	d=$T/boards/board-$k
	uid=$(board_uid "$d")
	check test "$(sql "select state from boards where uid='$uid'")" = DONE
	check test "$(board_fuses "$d")" = 3
	check test "$(sql "select count(*) from outbox where uid='$uid' and kind='identity'")" = 1
done
"$IMPRINT" --data-dir "$DATA" status --verify >"$T/verify.out" 2>&1
check test $? = 0
[ "$fail" = 0 ] || tail -20 "$T/final.log"
stop_vboard
finish
