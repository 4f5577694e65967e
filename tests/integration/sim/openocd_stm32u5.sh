#!/usr/bin/env bash
# Real OpenOCD (Debian's 0.12, its stock cortex_m target and stm32l4x flash
# driver) against the virtual board's STM32U5 model over remote_bitbang:
# the driver identifies the part, programs and verifies an image with its
# loader and without one, reads and writes the option bytes; RDP level 1
# after OBL_LAUNCH (which drops the debug connection) refuses flash and
# SRAM reads while the UID and FLASH_OPTR stay readable; the regression to
# level 0 mass-erases the flash; a non-erased quad-word is a programming
# error; a state directory keeps the option bytes.
# usage: openocd_stm32u5.sh VBOARD OPENOCD CFG
VBOARD=$1
OPENOCD=$2
CFG=$3
set -uo pipefail
T=$(mktemp -d)
VB_PID=
pass=0
fail=0
cleanup() {
	[ -n "$VB_PID" ] && kill "$VB_PID" 2>/dev/null && wait "$VB_PID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
check() { if "$@"; then ok; else bad "$*"; fi; }

start() {
	rm -f "$T/ep"
	"$VBOARD" --chip st-stm32u5 --boards 1 --bitbang 0 --seed 5 --state-dir "$T/st" \
		--latency "${LATENCY:-0.2}" --endpoints "$T/ep" >"$T/ready" 2>>"$T/vb.log" &
	VB_PID=$!
	# Up to 30 s: a sanitizer build on a loaded machine starts slowly.
	for _ in $(seq 1 600); do
		grep -q ready "$T/ready" 2>/dev/null && break
		sleep 0.05
	done
	grep -q ready "$T/ready" 2>/dev/null ||
		{ echo "imprint-vboard did not start:"; tail -20 "$T/vb.log"; }
	PORT=$(sed -n 's/.*"bitbang":"127.0.0.1:\([0-9]*\)".*/\1/p' "$T/ep")
	UID96=$(sed -n 's/.*"uid96":"\([0-9a-f]*\)".*/\1/p' "$T/ep")
}
stop() { kill "$VB_PID"; wait "$VB_PID"; VB_PID=; }
oocd() {
	timeout 60 "$OPENOCD" -c "set VBOARD_PORT $PORT" "$@" -f "$CFG" \
		-c "gdb_port disabled; tcl_port disabled; telnet_port disabled" -c init \
		-c "reset halt" "${CMDS[@]}" -c shutdown 2>&1
}
# the UID as mdw prints it: three little-endian words
uid_words() {
	local h=$1 w i out=""
	for i in 0 8 16; do
		w=${h:$i:8}
		out="$out ${w:6:2}${w:4:2}${w:2:2}${w:0:2}"
	done
	echo "$out"
}

start
head -c 40000 /dev/urandom >"$T/img.bin"
CMDS=(-c "flash probe 0" -c "stm32l4x option_read 0 0x40" -c "program $T/img.bin 0x08000000 verify"
	-c "mdw 0x0BFA0700 3")
out=$(oocd)
check grep -q "device idcode = 0x20000482 (STM32U57/U58xx - Rev B" <<<"$out"
check grep -q "Cortex-M33 r0p4 processor detected" <<<"$out"
check grep -q "flash size = 1024 KiB" <<<"$out"
check grep -q "flash mode : dual-bank" <<<"$out"
check grep -q "Option Register: <0x40022040> = 0x1feff8aa" <<<"$out"
check grep -q "Verified OK" <<<"$out"
check grep -q "0x0bfa0700:$(uid_words "$UID96")" <<<"$out"
grep -q "Verified OK" <<<"$out" || echo "$out"

# Without a work area: quad-word by quad-word through the MEM-AP; a second
# image over the first without an erase is refused by the controller.
head -c 20000 /dev/urandom >"$T/img2.bin"
CMDS=(-c "program $T/img2.bin 0x08040000 verify")
out=$(oocd -c "set VBOARD_WORKAREASIZE 0")
check grep -q "falling back to programming without a flash loader" <<<"$out"
check grep -q "Verified OK" <<<"$out"
CMDS=(-c "flash write_image $T/img.bin 0x08040000")
out=$(oocd)
check grep -q "flash write failed = 00000008" <<<"$out" # NSSR.PROGERR: not erased

# RDP level 1: written through the option registers, reloaded by OBL_LAUNCH.
CMDS=(-c "stm32l4x option_write 0 0x40 0xBB 0xFF" -c "stm32l4x option_load 0" -c "sleep 200"
	-c "echo RDP=[vboard_stm32u5_rdp]" -c "mdw 0x0BFA0700 3"
	-c "catch {mdw 0x08000000} e; echo FLASH=\$e" -c "catch {mdw 0x20000000} e; echo SRAM=\$e")
out=$(oocd)
check grep -q "Debug regions are unpowered, an unexpected reset might have happened" <<<"$out"
check grep -q "RDP=0xBB" <<<"$out"
check grep -q "0x0bfa0700:$(uid_words "$UID96")" <<<"$out"
if grep -q "FLASH=0x08000000: [0-9a-f]" <<<"$out"; then bad "flash readable at RDP 1"; else ok; fi
if grep -q "SRAM=0x20000000: [0-9a-f]" <<<"$out"; then bad "SRAM readable at RDP 1"; else ok; fi
check grep -q "st-stm32u5: OBL_LAUNCH: option bytes loaded (RDP 0xBB)" "$T/vb.log"

# A power cycle keeps RDP level 1 (the option bytes are non-volatile).
stop
start
check grep -q '"rdp":"0xBB"' "$T/ep"
CMDS=(-c "flash probe 0" -c "catch {mdw 0x08000000} e; echo FLASH=\$e")
out=$(oocd)
check grep -q "RDP level 1" <<<"$out"
if grep -q "FLASH=0x08000000: [0-9a-f]" <<<"$out"; then bad "flash readable after power-up at RDP 1"; else ok; fi

# Regression to level 0: the stm32l4x driver's unlock, then the option load:
# the flash comes back erased.
CMDS=(-c "stm32l4x unlock 0" -c "stm32l4x option_load 0" -c "sleep 200" -c "echo RDP=[vboard_stm32u5_rdp]"
	-c "mdw 0x08000000 2")
out=$(oocd)
check grep -q "RDP=0xAA" <<<"$out"
check grep -q "0x08000000: ffffffff ffffffff" <<<"$out"
check grep -q "RDP regression 1 -> 0: flash mass-erased" "$T/vb.log"
stop
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
