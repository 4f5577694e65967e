#!/usr/bin/env bash
# A board whose trust anchor is a card reached through the real pcscd and
# vsmartcard's vpcd reader: provisioned end to end; pulled out mid-way and
# resumed; a tampered response rejected by secure messaging, board unlocked.
# pcscd is started here with a private reader configuration (vpcd on a
# private port) and killed at the end; if it cannot start the test FAILS.
IMPRINT=$1
VBOARD=$2
. "$(dirname "$0")/../provision/lib.sh"
PORT=${IMPRINT_VPCD_PORT:-31059} # below the ephemeral range (32768-60999): no client socket can hold it
READER="Imprint Test 00 00"
PCSCD_PID=

# One pcscd per host: serialise with other build directories.
exec 9>/tmp/imprint-pcscd.lock
flock -w 150 9 || { echo "FAIL: pcscd lock busy"; exit 1; }

pcsc_cleanup() {
	[ -n "$PCSCD_PID" ] && kill "$PCSCD_PID" 2>/dev/null && wait "$PCSCD_PID" 2>/dev/null
	cleanup
}
trap pcsc_cleanup EXIT

start_pcscd() {
	mkdir -p "$T/reader.conf.d"
	printf 'FRIENDLYNAME "Imprint Test"\nDEVICENAME /dev/null:%d\nLIBPATH /usr/lib/pcsc/drivers/serial/libifdvpcd.so\nCHANNELID %d\n' \
		"$PORT" "$PORT" >"$T/reader.conf.d/vpcd"
	pcscd -f -a -c "$T/reader.conf.d" >"$T/pcscd.log" 2>&1 9>&- &
	PCSCD_PID=$!
	for _ in $(seq 1 100); do
		ss -ltn 2>/dev/null | grep -q ":$PORT " && [ -S /run/pcscd/pcscd.comm ] && return 0
		kill -0 "$PCSCD_PID" 2>/dev/null || break
		sleep 0.05
	done
	echo "FAIL: pcscd did not start:"
	cat "$T/pcscd.log"
	return 1
}

# Wait until the vboard's card has been inserted COUNT times.
wait_card() {
	for _ in $(seq 1 100); do
		[ "$(grep -c "card: inserted" "$T/vboard.log" 2>/dev/null)" -ge "$1" ] && { sleep 0.3; return 0; }
		sleep 0.05
	done
	return 1
}

with_reader() { sed -i "s|\(\"uart\":\"[^\"]*\"\)}|\1,\"reader\":\"$READER\"}|" "$1"; }
state_of() { sql "select state from boards where uid='$1'"; }

prepare || exit 1
start_pcscd || exit 1

# 1. End to end through pcscd.
: >"$T/vboard.log"
start_vboard "$T/b1" 1 --pcsc "127.0.0.1:$PORT" || { echo "FAIL: vboard"; exit 1; }
check wait_card 1
write_config "$T/c1.json" device
with_reader "$T/c1.json"
"$IMPRINT" --data-dir "$DATA" --config "$T/c1.json" provision >"$T/p1.out" 2>"$T/p1.err"
check test $? = 0
uid=$(board_uid "$T/b1/board-0")
check test "$(state_of "$uid")" = DONE
check test "$(board_fuses "$T/b1/board-0")" = 3
check test -e "$T/b1/board-0/se/locked"
check grep -q "00 A4 04 00 09 F0 49 4D 50 52 49 4E 54 01" "$T/pcscd.log"
check grep -q "84 88 00 " "$T/pcscd.log"
rec=$(sql "select record from records where uid='$uid'" 2>/dev/null || true)
[ -n "$rec" ] && check verify_record_openssl "$rec" >/dev/null
stop_vboard
[ "$fail" = 0 ] || { cat "$T/p1.err"; tail -20 "$T/vboard.log"; }

# 2. The card is pulled out mid-personalisation (inside STORE DATA): the
#    board stays resumable, and resume completes it once the card is back.
: >"$T/vboard.log"
start_vboard "$T/b2" 1 --pcsc "127.0.0.1:$PORT" --card-remove-after 7 --card-back-after 1 ||
	{ echo "FAIL: vboard"; exit 1; }
check wait_card 1
write_config "$T/c2.json" device
with_reader "$T/c2.json"
"$IMPRINT" --data-dir "$DATA" --config "$T/c2.json" provision >"$T/p2.out" 2>"$T/p2.err"
rc=$?
check test "$rc" != 0
check grep -q "card was removed" "$T/p2.err"
uid=$(board_uid "$T/b2/board-0")
st=$(state_of "$uid")
check test "$st" != DONE
check test "$st" != FAILED
check test "$(board_fuses "$T/b2/board-0")" = 0
check wait_card 2
"$IMPRINT" --data-dir "$DATA" --config "$T/c2.json" resume >"$T/r2.out" 2>"$T/r2.err"
check test $? = 0
check test "$(state_of "$uid")" = DONE
check test "$(board_fuses "$T/b2/board-0")" = 3
stop_vboard
[ "$fail" = 0 ] || { echo "state $st rc $rc"; cat "$T/p2.err" "$T/r2.err"; tail -20 "$T/vboard.log"; }

# 3. One flipped bit in the 5th secured response (INTERNAL AUTHENTICATE):
#    rejected by secure messaging, the board is not locked, and resumable.
: >"$T/vboard.log"
start_vboard "$T/b3" 1 --pcsc "127.0.0.1:$PORT" --card-tamper 5 || { echo "FAIL: vboard"; exit 1; }
check wait_card 1
write_config "$T/c3.json" device
with_reader "$T/c3.json"
"$IMPRINT" --data-dir "$DATA" --config "$T/c3.json" provision >"$T/p3.out" 2>"$T/p3.err"
check test $? = 17
check grep -q "failed secure messaging (wrong mac)" "$T/p3.err"
uid=$(board_uid "$T/b3/board-0")
check test "$(state_of "$uid")" = CHALLENGE
check test "$(board_fuses "$T/b3/board-0")" = 0
check test ! -e "$T/b3/board-0/se/locked"
"$IMPRINT" --data-dir "$DATA" --config "$T/c3.json" resume >"$T/r3.out" 2>"$T/r3.err"
check test $? = 0
check test "$(state_of "$uid")" = DONE
stop_vboard
[ "$fail" = 0 ] || { cat "$T/p3.err" "$T/r3.err"; tail -20 "$T/vboard.log"; }

# 4. psk keys: the station is killed right after the card answered PUT KEY
#    (crash point 2: after the allocation with its move to KEYS, the
#    import), so the journal says KEYS and the card holds the PSK. On
#    resume the card answers "slot already holds a key" (6A89): the station
#    takes that from the card's own answer and lets the challenge prove it
#    is the same PSK.
: >"$T/vboard.log"
start_vboard "$T/b4" 1 --pcsc "127.0.0.1:$PORT" || { echo "FAIL: vboard"; exit 1; }
check wait_card 1
write_config "$T/c4.json" psk
with_reader "$T/c4.json"
IMPRINT_TEST_KILL_AFTER=2 "$IMPRINT" --data-dir "$DATA" --config "$T/c4.json" provision \
	>"$T/p4.out" 2>"$T/p4.err"
check test $? = 137
uid=$(board_uid "$T/b4/board-0")
check test "$(state_of "$uid")" = KEYS
check test "$(board_fuses "$T/b4/board-0")" = 0
check grep -q "84 D8 " "$T/pcscd.log"
"$IMPRINT" --data-dir "$DATA" --config "$T/c4.json" resume >"$T/r4.out" 2>"$T/r4.err"
check test $? = 0
check grep -q "already holds its psk" "$T/r4.err"
check test "$(state_of "$uid")" = DONE
check test "$(board_fuses "$T/b4/board-0")" = 3
stop_vboard
[ "$fail" = 0 ] || { cat "$T/p4.err" "$T/r4.err"; tail -20 "$T/vboard.log"; }

finish
