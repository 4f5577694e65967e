#!/bin/sh
# `imprint board info` against a fresh imprint-vboard: the UID read through
# SWD (rsp probe) and through the agent (UART) must both equal the vboard's,
# in human and --json output; a bad probe URI is a clean usage error; a
# locked board reports "locked" for SWD.
# usage: board_info.sh PATH-TO-imprint PATH-TO-imprint-vboard
set -u
IMPRINT=$1
VBOARD=$2
TMP=$(mktemp -d)
VB_PID=
cleanup() {
	if [ -n "$VB_PID" ]; then
		kill "$VB_PID" 2>/dev/null
		wait "$VB_PID" 2>/dev/null
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
fail() { echo "FAIL: $*" >&2; exit 1; }

"$VBOARD" --quiet --latency 0 >"$TMP/endpoints" 2>"$TMP/vboard.err" &
VB_PID=$!
i=0
while ! grep -q '"ready":true' "$TMP/endpoints" 2>/dev/null; do
	i=$((i + 1))
	[ $i -gt 100 ] && fail "imprint-vboard not ready: $(cat "$TMP/vboard.err")"
	sleep 0.1
done
LINE=$(grep '"board":0' "$TMP/endpoints")
field() { printf '%s\n' "$LINE" | sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }
UID_=$(field uid)
RSP=$(field rsp)
UART=$(field uart)
[ -n "$UID_" ] && [ -n "$RSP" ] && [ -n "$UART" ] || fail "bad endpoint line: $LINE"
export IMPRINT_DATA_DIR="$TMP/data"

# JSON: one object, both UIDs equal to the vboard's, and a match.
"$IMPRINT" board info --probe "$RSP" --uart "$UART" --json >"$TMP/out.json" 2>"$TMP/err" ||
	fail "board info --json exited $?: $(cat "$TMP/err")"
[ "$(wc -l <"$TMP/out.json")" -eq 1 ] || fail "expected one JSON line: $(cat "$TMP/out.json")"
grep -q "\"uid_swd\":\"$UID_\"" "$TMP/out.json" || fail "uid_swd: $(cat "$TMP/out.json")"
grep -q "\"uid_agent\":\"$UID_\"" "$TMP/out.json" || fail "uid_agent: $(cat "$TMP/out.json")"
grep -q '"uid_match":true' "$TMP/out.json" || fail "uid_match: $(cat "$TMP/out.json")"
grep -q '"lifecycle":"open"' "$TMP/out.json" || fail "lifecycle: $(cat "$TMP/out.json")"
grep -q '"fuses_source":"swd"' "$TMP/out.json" || fail "fuses via swd: $(cat "$TMP/out.json")"
grep -q '"protocol_version":1' "$TMP/out.json" || fail "protocol: $(cat "$TMP/out.json")"

# Global --json works the same.
"$IMPRINT" --json board info --probe "$RSP" --uart "$UART" | grep -q '"uid_match":true' ||
	fail "imprint --json board info"

# Human output.
"$IMPRINT" board info --probe "$RSP" --uart "$UART" >"$TMP/out.txt" 2>"$TMP/err" ||
	fail "board info exited $?: $(cat "$TMP/err")"
grep -q "uid (swd) *$UID_" "$TMP/out.txt" || fail "human swd uid: $(cat "$TMP/out.txt")"
grep -q "uid (agent) *$UID_" "$TMP/out.txt" || fail "human agent uid: $(cat "$TMP/out.txt")"
grep -q "uid match *yes" "$TMP/out.txt" || fail "human match: $(cat "$TMP/out.txt")"

# Only the agent, only the probe.
"$IMPRINT" board info --uart "$UART" --json | grep -q "\"uid_agent\":\"$UID_\"" || fail "uart only"
"$IMPRINT" board info --probe "$RSP" --json | grep -q "\"uid_swd\":\"$UID_\"" || fail "probe only"

# Errors: exit codes from the frozen enum.
"$IMPRINT" board info --probe "bogus" --uart "$UART" 2>"$TMP/err" >/dev/null
[ $? -eq 2 ] || fail "bad URI should exit 2 (usage)"
"$IMPRINT" board info --probe "rsp://127.0.0.1:1" 2>"$TMP/err" >/dev/null
[ $? -eq 14 ] || fail "refused connection should exit 14 (probe)"
grep -q "cannot connect" "$TMP/err" || fail "refused message: $(cat "$TMP/err")"
"$IMPRINT" board info --probe "$RSP" --profile nosuch 2>"$TMP/err" >/dev/null
[ $? -eq 9 ] || fail "unknown profile should exit 9 (not found)"
"$IMPRINT" board info 2>/dev/null >/dev/null
[ $? -eq 2 ] || fail "no --probe/--uart should exit 2"
"$IMPRINT" board frob 2>/dev/null >/dev/null
[ $? -eq 2 ] || fail "unknown subcommand should exit 2"
"$IMPRINT" board --help | grep -q "usage: imprint board info" || fail "help"
echo "ok: imprint board info reads UID $UID_ through SWD and UART"
