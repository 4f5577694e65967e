#!/bin/bash
# The vboard's control port (docs/VBOARD.md "Swapping boards"), seen from
# outside: an empty fixture's debug port is an empty JTAG chain to real
# OpenOCD ("all ones"), its RSP server answers E01 to a memory read, its
# agent is silent; a board inserted again is found by OpenOCD with a new
# UID; wrong commands get an error answer, not a crash.
# usage: swap.sh VBOARD OPENOCD CFG
VBOARD=$1
OPENOCD=$2
CFG=$3
T=$(mktemp -d)
VB_PID=
pass=0
fail=0
trap '[ -n "$VB_PID" ] && kill "$VB_PID" 2>/dev/null && wait "$VB_PID" 2>/dev/null; rm -rf "$T"' EXIT
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
check() { if "$@"; then ok; else bad "$*"; fi; }

"$VBOARD" --boards 2 --latency 0 --chip nordic-nrf52840 --bitbang 0 --control 0 --seed 5 \
	>"$T/ready" 2>"$T/vb.log" &
VB_PID=$!
for _ in $(seq 1 100); do grep -q '"ready"' "$T/ready" 2>/dev/null && break; sleep 0.05; done
CTL=$(sed -n 's/.*"control":"127.0.0.1:\([0-9]*\)".*/\1/p' "$T/ready")
BB=$(sed -n '1s/.*"bitbang":"127.0.0.1:\([0-9]*\)".*/\1/p' "$T/ready")
RSP=$(sed -n '1s/.*"rsp":"rsp:\/\/127.0.0.1:\([0-9]*\)".*/\1/p' "$T/ready")
UID0=$(sed -n '1s/.*"uid":"\([0-9a-f]*\)".*/\1/p' "$T/ready")
[ -n "$CTL" ] && [ -n "$BB" ] && [ -n "$RSP" ] || { echo "FAIL: no endpoints: $(cat "$T/ready")"; exit 1; }

exec 3<>"/dev/tcp/127.0.0.1/$CTL"
ctl() { printf '%s\n' "$1" >&3; IFS= read -r -t 5 REPLY <&3; }
openocd_init() {
	timeout 30 "$OPENOCD" -c "set VBOARD_PORT $BB" -f "$CFG" -c "gdb_port disabled" \
		-c "tcl_port disabled" -c "telnet_port disabled" -c init -c shutdown >"$T/$1.log" 2>&1
}
# one RSP packet, its reply (the vboard acks until QStartNoAckMode)
rsp_m() {
	local body=$1 sum=0 c reply
	for ((i = 0; i < ${#body}; i++)); do
		printf -v c '%d' "'${body:i:1}"
		sum=$(((sum + c) % 256))
	done
	exec 4<>"/dev/tcp/127.0.0.1/$RSP"
	printf '$%s#%02x' "$body" "$sum" >&4
	IFS= read -r -t 5 -d '#' reply <&4
	exec 4>&-
	printf '%s\n' "${reply#*\$}"
}

check test "$(rsp_m m10000060,8)" = "${UID0:0:16}"
ctl "remove 0"
check grep -q '"board":0,"uid":null' <<<"$REPLY"
openocd_init empty
check test $? != 0
check grep -q "JTAG scan chain interrogation failed: all ones" "$T/empty.log"
check test "$(rsp_m m10000060,8)" = E01
ctl "remove 0"
check grep -q '"error":"remove: no board on that fixture"' <<<"$REPLY"
ctl "insert 0"
check grep -q '"generation":1' <<<"$REPLY"
UID1=$(sed -n 's/.*"uid":"\([0-9a-f]*\)".*/\1/p' <<<"$REPLY")
check test -n "$UID1"
check test "$UID1" != "$UID0"
openocd_init back
check test $? = 0
check grep -q "tap/device found: 0x2ba01477" "$T/back.log"
check test "$(rsp_m m10000060,8)" = "${UID1:0:16}"
ctl "insert 0"
check grep -q '"error":"insert: a board is on that fixture already' <<<"$REPLY"
ctl "swap 7"
check grep -q '"error":"swap needs a board index' <<<"$REPLY"
ctl "dance 0"
check grep -q '"error":"unknown command' <<<"$REPLY"
ctl "swap 1"
check grep -q '"board":1,.*"generation":1' <<<"$REPLY"
exec 3>&-
kill "$VB_PID"
wait "$VB_PID"
check test $? = 0
VB_PID=
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
