#!/usr/bin/env bash
# imprint demo --anchor pcsc: the demo starts its own pcscd with a vpcd
# reader (DATA/demo/pcscd/), gives both virtual boards a card in it, and
# provisions them through PC/SC. If pcscd cannot start the test FAILS.
# The demo runs in its own process group, killed at the end whatever happens.
IMPRINT=$1
VBOARD=$2
. "$(dirname "$0")/../provision/lib.sh"
PORT=${IMPRINT_VPCD_PORT:-31069} # below the ephemeral range (32768-60999): no client socket can hold it
DEMO_PID=

# One pcscd per host: serialise with pcsc.sh and other build directories.
exec 9>/tmp/imprint-pcscd.lock
flock -w 150 9 || { echo "FAIL: pcscd lock busy"; exit 1; }

demo_cleanup() {
	[ -n "$DEMO_PID" ] && kill -TERM -- "-$DEMO_PID" 2>/dev/null
	cleanup
}
trap demo_cleanup EXIT

setsid "$IMPRINT" --data-dir "$DATA" demo --boards 2 --anchor pcsc --latency 0 \
	--vpcd-port "$PORT" >"$T/demo.out" 2>"$T/demo.err" 9>&- &
DEMO_PID=$!
for _ in $(seq 1 1200); do
	kill -0 "$DEMO_PID" 2>/dev/null || break
	sleep 0.1
done
kill -0 "$DEMO_PID" 2>/dev/null && { echo "FAIL: the demo did not finish in 120 s"; exit 1; }
wait "$DEMO_PID"
rc=$?
DEMO_PID=

check test "$rc" = 0
check grep -q "started pcscd" "$T/demo.err"
check grep -q "boards: 2 done" "$T/demo.out"
check grep -q '"reader": "Imprint Demo 00 00"' "$DATA/demo/station-device.json"
check grep -q '"reader": "Imprint Demo 00 01"' "$DATA/demo/station-device.json"
check test "$(grep -c "card: inserted into vpcd at 127.0.0.1:$PORT" "$T/demo.err")" = 1
check test "$(grep -c "card: inserted into vpcd at 127.0.0.1:$((PORT + 1))" "$T/demo.err")" = 1
check test "$(sql "select count(*) from boards where state='DONE'")" = 2
n=0
for uid in $(sql "select uid from boards where state='DONE'"); do
	rec=$(sql "select jws from outbox where uid='$uid' and kind='identity' and delivered_at is not null")
	check test -n "$rec"
	verify_record_openssl "$rec" >/dev/null && n=$((n + 1))
done
check test "$n" = 2
check test "$(sqlite3 "$DATA/demo/registry/registry.sqlite" "select count(*) from identities")" = 2

# The demo stopped the pcscd it started (and its boards and registry).
pid=$(sed -n 's/.*started pcscd (pid \([0-9]*\).*/\1/p' "$T/demo.err")
check test -n "$pid"
[ -n "$pid" ] && check test ! -e "/proc/$pid/cmdline" -o "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -c "$DATA")" = 0
check test ! -S /run/pcscd/pcscd.comm -o ! -e /run/pcscd/pcscd.pid

[ "$fail" = 0 ] || { cat "$T/demo.err"; cat "$DATA/demo/pcscd/pcscd.log" 2>/dev/null; }
finish
