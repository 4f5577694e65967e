#!/usr/bin/env bash
# `imprint provision` through real OpenOCD's buspirate driver, on the
# virtual board's emulated Bus Pirate (imprint-vboard --buspirate: one pty
# per board, the same TAP/DAP model as remote_bitbang). 4 nordic-nrf52840
# boards (2 of each APPROTECT revision) and 4 st-stm32u5 boards end DONE in
# device mode, the firmware through vFlash and qCRC; the lock is verified by
# the station and here again from outside with a fresh OpenOCD on the same
# pty (nRF52: CTRL-AP APPROTECTSTATUS 0, flash and UICR refused; STM32U5:
# RDP level 1, the UID still readable, flash refused); each record says
# debug_locked. The pty path stays the same while OpenOCD closes and
# reopens it, also after an OpenOCD SIGKILLed in the middle of a flash
# write: the next one connects and reads the board.
# usage: openocd_pirate.sh IMPRINT VBOARD
IMPRINT=$1
VBOARD=$2
OPENOCD=${OPENOCD:-$(command -v openocd)}
. "$(dirname "$0")/lib.sh"
SRC=$(cd "$(dirname "$0")/../../.." && pwd)
# Copies under this run's directory: their paths name this run's OpenOCDs.
cp "$SRC/board/openocd/vboard-nrf52840.cfg" "$SRC/board/openocd/vboard-stm32u5.cfg" "$T/"
if [ -z "$OPENOCD" ]; then
	echo "FAIL: openocd not installed (scripts/setup installs it)"
	exit 1
fi
prepare || exit 1

our_openocds() { pgrep -f -- "-f $T/vboard-" || true; }

# The openocd:// probe of a board's Bus Pirate with configuration $PIRATE_CFG.
pirate_probe() {
	local tty
	tty=$(endpoint_field buspirate "$1")
	[ -n "$tty" ] && printf 'openocd://%s?set.VBOARD_PIRATE=%s&exe=%s' "$PIRATE_CFG" "$tty" "$OPENOCD"
}

# write_pirate_config FILE TARGET CFG: openocd:// fixtures on each board's Bus Pirate
write_pirate_config() {
	local file=$1 target=$2 fixtures
	PIRATE_CFG=$3
	fixtures=$(fixtures_json pirate_probe)
	cat >"$file" <<EOC
{"version": 1, "station_id": "demo-station", "key_mode": "device", "target": "$target",
 "product": {"sku": "TEST-BP"}, "serial": {"prefix": "TBP", "width": 6},
 "firmware": {"image": "$DATA/demo/firmware.bin", "signature": "$DATA/demo/firmware.sig"},
 "fixtures": [$fixtures]}
EOC
}

# oocd CFG TTY COMMANDS...: a fresh OpenOCD on the Bus Pirate, its output
oocd() {
	local cfg=$1 tty=$2
	shift 2
	timeout 30 "$OPENOCD" -c "set VBOARD_PIRATE $tty" -f "$cfg" \
		-c "gdb_port disabled; tcl_port disabled; telnet_port disabled" -c init "$@" -c shutdown 2>&1
}

record_locked() { # UID: the board is DONE and its record claims a verified lock
	local jws payload
	check test "$(sql "select state from boards where uid='$1'")" = DONE
	jws=$(sql "select o.jws from outbox o join boards b on b.serial=o.serial where b.uid='$1' and o.kind='identity'")
	payload=$(verify_record_openssl "$jws") || bad "$1: record does not verify"
	check grep -q '"debug_locked":true' <<<"$payload"
}

# ---- nRF52840, both APPROTECT revisions ----
NCFG=$T/vboard-nrf52840.cfg
start_vboard "$T/st-n" 4 --chip nordic-nrf52840 --revision legacy,hardened,legacy,hardened \
	--buspirate || bad "nrf52840: vboard did not start"
check grep -q '"buspirate":"/dev/pts/' "$T/endpoints"
write_pirate_config "$T/c-n.json" nordic-nrf52840 "$NCFG"
"$IMPRINT" --data-dir "$DATA" --config "$T/c-n.json" provision >"$T/p-n.out" 2>"$T/p-n.err"
check test $? = 0
check grep -q "boards: 4 done, 0 already done, 0 failed" "$T/p-n.out"
grep -q "boards: 4 done" "$T/p-n.out" || tail -20 "$T/p-n.err"
while IFS= read -r line; do
	uid=$(endpoint_field uid "$line")
	tty=$(endpoint_field buspirate "$line")
	rev=$(endpoint_field revision "$line")
	[ -n "$uid" ] || continue
	record_locked "$uid"
	out=$(oocd "$NCFG" "$tty" -c "echo APPROTECTSTATUS=[nrf52.dap apreg 1 0xc]" \
		-c "catch {mdw 0x0} e; echo READ=\$e" -c "catch {mdw 0x10001208} e; echo UICR=\$e")
	check grep -q "Buspirate JTAG Interface ready" <<<"$out"
	check grep -q "APPROTECTSTATUS=0x00000000" <<<"$out"
	if grep -q "READ=0x00000000: [0-9a-f]" <<<"$out"; then bad "$rev: flash readable after the lock"; else ok; fi
	if grep -q "UICR=0x10001208: [0-9a-f]" <<<"$out"; then bad "$rev: UICR readable after the lock"; else ok; fi
done <"$T/endpoints"
check test -z "$(our_openocds)"
stop_vboard

# ---- an OpenOCD killed in the middle of a flash write ----
start_vboard "$T/st-k" 1 --chip nordic-nrf52840 --buspirate || bad "kill: vboard did not start"
tty=$(endpoint_field buspirate "$(sed -n 1p "$T/endpoints")")
for delay in 0.05 0.2 0.35 0.5 0.65; do
	# (not under timeout(1): the kill must reach OpenOCD itself)
	"$OPENOCD" -c "set VBOARD_PIRATE $tty" -f "$NCFG" \
		-c "gdb_port disabled; tcl_port disabled; telnet_port disabled" \
		-c "program $DATA/demo/firmware.bin 0 exit" >/dev/null 2>&1 &
	pid=$!
	sleep "$delay"
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	out=$(oocd "$NCFG" "$tty" -c "mdw 0x10000100 1")
	check grep -q "0x10000100: 00052840" <<<"$out"
done
stop_vboard

# ---- STM32U5 ----
UCFG=$T/vboard-stm32u5.cfg
start_vboard "$T/st-u" 4 --chip st-stm32u5 --buspirate || bad "stm32u5: vboard did not start"
write_pirate_config "$T/c-u.json" st-stm32u5 "$UCFG"
"$IMPRINT" --data-dir "$DATA" --config "$T/c-u.json" provision >"$T/p-u.out" 2>"$T/p-u.err"
check test $? = 0
check grep -q "boards: 4 done, 0 already done, 0 failed" "$T/p-u.out"
grep -q "boards: 4 done" "$T/p-u.out" || tail -20 "$T/p-u.err"
while IFS= read -r line; do
	uid=$(endpoint_field uid "$line")
	uid96=$(endpoint_field uid96 "$line")
	tty=$(endpoint_field buspirate "$line")
	[ -n "$uid" ] || continue
	record_locked "$uid"
	out=$(oocd "$UCFG" "$tty" -c "echo RDP=[vboard_stm32u5_rdp]" -c "mdw 0x0BFA0700 3" \
		-c "catch {mdw 0x08000000} e; echo FLASH=\$e")
	check grep -q "RDP=0xBB" <<<"$out"
	w=""
	for i in 0 8 16; do
		x=${uid96:$i:8}
		w="$w ${x:6:2}${x:4:2}${x:2:2}${x:0:2}"
	done
	check grep -q "0x0bfa0700:$w" <<<"$out"
	if grep -q "FLASH=0x08000000: [0-9a-f]" <<<"$out"; then bad "$uid: flash readable after the lock"; else ok; fi
done <"$T/endpoints"
check grep -q "st-stm32u5: OBL_LAUNCH: option bytes loaded (RDP 0xBB)" "$T/vboard.log"
check test -z "$(our_openocds)"
stop_vboard
finish
