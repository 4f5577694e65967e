#!/usr/bin/env bash
# `imprint provision` with the nordic-nrf52840 profile through real OpenOCD
# (openocd:// fixtures: the station starts one OpenOCD per fixture against
# the virtual board's remote_bitbang port). In each key mode (device, hsm,
# psk) 4 boards, 2 of each APPROTECT revision, end DONE; the firmware went
# through OpenOCD's flash driver (vFlash) and was verified (qCRC); after the
# lock OpenOCD can no longer read flash or UICR, the CTRL-AP reports the
# port protected, and each record's lock_state says debug_locked. Then the
# station is SIGKILLed at random instants while it drives OpenOCD: no
# OpenOCD outlives it and every board resumes to DONE.
# usage: openocd.sh IMPRINT VBOARD [provision|kill] (default: both)
IMPRINT=$1
VBOARD=$2
PART=${3:-all}
OOCD_CFG=vboard-nrf52840.cfg
. "$(dirname "$0")/openocd_lib.sh"
KILLS=${KILLS:-50}
RANDOM=${KILL_SEED:-1212}

# oocd_read PORT ADDR: what OpenOCD reads there now ("mdw"), or its error.
oocd_read() {
	timeout 20 "$OPENOCD" -c "set VBOARD_PORT $1" -f "$CFG" -c "gdb_port disabled; tcl_port disabled; telnet_port disabled" \
		-c init -c "echo APPROTECTSTATUS=[nrf52.dap apreg 1 0xc]" -c "catch {mdw $2} e; echo READ=\$e" -c shutdown 2>&1
}

modes="device hsm psk"
[ "$PART" = kill ] && modes=
for mode in $modes; do
	start_vboard "$T/st-$mode" 4 --chip nordic-nrf52840 --revision legacy,hardened,legacy,hardened \
		--bitbang 0 || { bad "$mode: vboard did not start"; continue; }
	write_oocd_config "$T/c-$mode.json" "$mode" nordic-nrf52840
	"$IMPRINT" --data-dir "$DATA" --config "$T/c-$mode.json" provision >"$T/p-$mode.out" 2>"$T/p-$mode.err"
	check test $? = 0
	check grep -q "boards: 4 done, 0 already done, 0 failed" "$T/p-$mode.out"
	# Every uid of this vboard DONE, its record claims a verified debug lock.
	while IFS= read -r line; do
		uid=$(printf '%s' "$line" | sed -n 's/.*"uid":"\([^"]*\)".*/\1/p')
		bb=$(bitbang_port "$line")
		rev=$(printf '%s' "$line" | sed -n 's/.*"revision":"\([^"]*\)".*/\1/p')
		[ -n "$uid" ] || continue
		check test "$(sql "select state from boards where uid='$uid'")" = DONE
		jws=$(sql "select o.jws from outbox o join boards b on b.serial=o.serial where b.uid='$uid' and o.kind='identity'")
		payload=$(verify_record_openssl "$jws") || bad "$mode $uid: record does not verify"
		check grep -q '"debug_locked":true' <<<"$payload"
		# vFlash: the firmware went through OpenOCD's flash driver, verified by qCRC.
		# From outside, a fresh OpenOCD: flash and UICR unreadable, CTRL-AP protected.
		out=$(oocd_read "$bb" 0x0)
		check grep -q "APPROTECTSTATUS=0x00000000" <<<"$out"
		if grep -q "READ=0x00000000: [0-9a-f]" <<<"$out"; then bad "$mode $rev: flash readable after the lock"; else ok; fi
		out=$(oocd_read "$bb" 0x10001208)
		if grep -q "READ=0x10001208: [0-9a-f]" <<<"$out"; then bad "$mode $rev: UICR readable after the lock"; else ok; fi
	done <"$T/endpoints"
	check test -z "$(our_openocds)"
	stop_vboard
done

# SIGKILL of the station at random instants while it drives OpenOCD.
if [ "$PART" = provision ]; then
	finish
	exit
fi
start_vboard "$T/st-kill" 2 --chip nordic-nrf52840 --revision legacy,hardened --bitbang 0 ||
	bad "kill: vboard did not start"
write_oocd_config "$T/c-kill.json" device nordic-nrf52840
orphans=0
for i in $(seq 1 "$KILLS"); do
	"$IMPRINT" --data-dir "$DATA" --config "$T/c-kill.json" provision >/dev/null 2>>"$T/kill.err" &
	pid=$!
	# Up to 1.2 s: OpenOCD's start, CTRL-AP recovery, identify, the start
	# of vFlash programming (the firmware takes ~7 s; a later trial that
	# outlives it reaches the lock).
	sleep "$(awk -v r="$RANDOM" 'BEGIN { printf "%.3f", r / 32768 * 1.2 }')"
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	# OpenOCD dies with the station (PR_SET_PDEATHSIG): allow the kernel a moment.
	for _ in $(seq 1 20); do
		[ -z "$(our_openocds)" ] && break
		sleep 0.05
	done
	left=$(our_openocds)
	if [ -n "$left" ]; then
		orphans=$((orphans + 1))
		echo "FAIL: trial $i: OpenOCD outlived the station: $left"
		for p in $left; do kill -9 "$p"; done
	fi
done
echo "openocd: $KILLS kills, $orphans orphans"
check test "$orphans" = 0
"$IMPRINT" --data-dir "$DATA" --config "$T/c-kill.json" resume >"$T/kill.out" 2>>"$T/kill.err"
"$IMPRINT" --data-dir "$DATA" --config "$T/c-kill.json" provision >"$T/kill.out" 2>>"$T/kill.err"
check grep -q " 0 failed" "$T/kill.out"
while IFS= read -r line; do
	uid=$(printf '%s' "$line" | sed -n 's/.*"uid":"\([^"]*\)".*/\1/p')
	[ -n "$uid" ] || continue
	check test "$(sql "select state from boards where uid='$uid'")" = DONE
done <"$T/endpoints"
check test -z "$(our_openocds)"
stop_vboard
finish
