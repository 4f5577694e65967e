#!/usr/bin/env bash
# `imprint provision` with the st-stm32u5 profile through real OpenOCD
# (openocd:// fixtures, OpenOCD's stm32l4x flash driver): 4 boards DONE in
# device mode; the firmware went through vFlash and was verified; the lock
# is readout protection level 1, verified by the station after the option
# byte reload (FLASH_OPTR's RDP read back, a refused flash read) and here
# again from outside with a fresh OpenOCD; the UID read over SWD and over
# the UART agree before and after the lock. Then RDP level 2 is refused:
# a profile with a permanent write and no opt-in does not load, and a
# profile that opts in does not run without the supervisor's confirmation
# (no pin set, a wrong pin): no board is touched; with the pin it is
# burned, and the station, which cannot read a level-2 part, does not
# report it locked.
# usage: openocd_stm32u5.sh IMPRINT VBOARD
IMPRINT=$1
VBOARD=$2
OOCD_CFG=vboard-stm32u5.cfg
OOCD_SKU=TEST-U5
OOCD_PREFIX=TU5
. "$(dirname "$0")/openocd_lib.sh"
# oocd_outside PORT: a fresh OpenOCD's view of the board: RDP, UID, a flash read
oocd_outside() {
	timeout 30 "$OPENOCD" -c "set VBOARD_PORT $1" -f "$CFG" -c "gdb_port disabled; tcl_port disabled; telnet_port disabled" \
		-c init -c "echo RDP=[vboard_stm32u5_rdp]" -c "mdw 0x0BFA0700 3" \
		-c "catch {mdw 0x08000000} e; echo FLASH=\$e" -c shutdown 2>&1
}
uid_words() {
	local h=$1 w i out=""
	for i in 0 8 16; do
		w=${h:$i:8}
		out="$out ${w:6:2}${w:4:2}${w:2:2}${w:0:2}"
	done
	echo "$out"
}

start_vboard "$T/st" 4 --chip st-stm32u5 --bitbang 0 || bad "vboard did not start"
write_oocd_config "$T/c.json" device st-stm32u5
# Before: SWD and UART name the same board (imprint board info).
line=$(sed -n 1p "$T/endpoints")
out=$("$IMPRINT" --data-dir "$DATA" board info --profile st-stm32u5 \
	--probe "$(oocd_probe "$line")" --uart "$(endpoint_field uart "$line")" 2>&1)
check grep -q "uid match        yes" <<<"$out"
# A dry run reads each board and prints its plan; it spends nothing.
before=$(sql "select count(*) from boards")
"$IMPRINT" --data-dir "$DATA" --config "$T/c.json" provision --dry-run >"$T/dry.out" 2>"$T/dry.err"
check test $? = 0
check test "$(grep -c '^ 2\. fuse_burn\[14\] write32 0x40022028 <- 0x08000000' "$T/dry.out")" = 4
check test "$(grep -c '^    runs now: yes' "$T/dry.out")" = 8
check test "$(sql "select count(*) from boards")" = "$before"
out=$(oocd_outside "$(bitbang_port "$(sed -n 1p "$T/endpoints")")")
check grep -q "RDP=0xAA" <<<"$out"
"$IMPRINT" --data-dir "$DATA" --config "$T/c.json" provision >"$T/p.out" 2>"$T/p.err"
check test $? = 0
check grep -q "boards: 4 done, 0 already done, 0 failed" "$T/p.out"
grep -q "boards: 4 done" "$T/p.out" || tail -20 "$T/p.err"
while IFS= read -r line; do
	uid=$(endpoint_field uid "$line")
	uid96=$(endpoint_field uid96 "$line")
	uart=$(endpoint_field uart "$line")
	bb=$(bitbang_port "$line")
	[ -n "$uid" ] || continue
	check test "$(sql "select state from boards where uid='$uid'")" = DONE
	jws=$(sql "select o.jws from outbox o join boards b on b.serial=o.serial where b.uid='$uid' and o.kind='identity'")
	payload=$(verify_record_openssl "$jws") || bad "$uid: record does not verify"
	check grep -q '"debug_locked":true' <<<"$payload"
	# From outside: RDP level 1, UID readable (the vboard's), flash refused.
	out=$(oocd_outside "$bb")
	check grep -q "RDP=0xBB" <<<"$out"
	check grep -q "0x0bfa0700:$(uid_words "$uid96")" <<<"$out"
	if grep -q "FLASH=0x08000000: [0-9a-f]" <<<"$out"; then bad "$uid: flash readable after the lock"; else ok; fi
	# After: SWD and UART still agree, and the agent says LOCKED.
	out=$("$IMPRINT" --data-dir "$DATA" board info --profile st-stm32u5 \
		--probe "$(oocd_probe "$line")" --uart "$uart" 2>&1)
	check grep -q "uid match        yes" <<<"$out"
	check grep -q "lifecycle        locked" <<<"$out"
done <"$T/endpoints"
check grep -q "st-stm32u5: OBL_LAUNCH: option bytes loaded (RDP 0xBB)" "$T/vboard.log"
check test -z "$(our_openocds)"
stop_vboard

# A part whose option load never takes the RDP (--tamper-lock): the station
# reads FLASH_OPTR back as 0xAA after the reload and refuses to call it locked.
start_vboard "$T/st-t" 1 --chip st-stm32u5 --bitbang 0 --tamper-lock || bad "vboard did not start"
write_oocd_config "$T/ct.json" device st-stm32u5
"$IMPRINT" --data-dir "$DATA" --config "$T/ct.json" provision >"$T/pt.out" 2>"$T/pt.err"
check test $? = 12
check grep -q "the chip reports itself open (lock_status); the board is NOT locked" "$T/pt.err"
uid=$(endpoint_field uid "$(sed -n 1p "$T/endpoints")")
check test "$(sql "select state from boards where uid='$uid'")" != DONE
check test -z "$(sql "select o.jws from outbox o join boards b on b.serial=o.serial where b.uid='$uid' and o.kind='identity'")"
stop_vboard

# RDP level 2. The shipped profile with a permanent OPTSTRT of RDP 0xCC.
mkprofile() { # OUT OPT_IN(0|1) GUARDED(0|1)
	python3 - "$SRC/board/profiles/st-stm32u5.json" "$1" "$2" "$3" <<'PY'
import json, sys
src, out, opt_in, guarded = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4] == "1"
p = json.load(open(src))
p["name"] = "st-stm32u5-rdp2"
if opt_in:
    p["permanent_lock"] = {"allowed": True}
seq = p["sequences"]["fuse_burn"]
at = next(i for i, s in enumerate(seq) if s.get("fuse") == "rdp_program") + 1
cond = {"if": "$permanent"} if guarded else {}
seq[at:at] = [
    dict(op="modify32", addr="0x40022040", mask="0xFF", value="0xCC", **cond),
    dict(op="write32", addr="0x40022028", value="0x00020000", permanent=True, fuse="rdp_program",
         requires=["option_load"], irreversible="OPTSTRT: RDP level 2, debug closed for good", **cond),
]
json.dump(p, open(out, "w"), indent=1)
PY
}
mkprofile "$T/rdp2-noopt.json" 0 1
mkprofile "$T/rdp2-unguarded.json" 1 0
mkdir -p "$T/prof"
mkprofile "$T/prof/st-stm32u5-rdp2.json" 1 1
out=$("$IMPRINT" --data-dir "$DATA" board plan --profile "$T/rdp2-noopt.json" 2>&1)
check test $? = 3
check grep -q "refused by rule permanent-without-opt-in" <<<"$out"
out=$("$IMPRINT" --data-dir "$DATA" board plan --profile "$T/rdp2-unguarded.json" 2>&1)
check test $? = 3
check grep -q 'refused by rule permanent-without-opt-in.*not under "if": "\$permanent"' <<<"$out"
start_vboard "$T/st2" 1 --chip st-stm32u5 --bitbang 0 || bad "vboard did not start"
export IMPRINT_PROFILE_PATH=$T/prof
write_oocd_config "$T/c2.json" device st-stm32u5-rdp2 '"hsm": {"supervisor_pin": {"env": "TEST_SUP_PIN"}}'
D2=$T/data2
cp -a "$DATA" "$D2"
rm -f "$D2/supervisor"
TEST_SUP_PIN=s3cret-sup "$IMPRINT" --data-dir "$D2" --config "$T/c2.json" provision >"$T/p2.out" 2>"$T/p2.err"
rc=$?
[ "$rc" = 7 ] || cat "$T/p2.err"
check test "$rc" = 7
check grep -q "PERMANENT lock" "$T/p2.err"
check grep -q "no supervisor pin is set" "$T/p2.err"
TEST_SUP_PIN=s3cret-sup "$IMPRINT" --data-dir "$D2" --config "$T/c2.json" supervisor set >/dev/null 2>&1
TEST_SUP_PIN=wrong-pin "$IMPRINT" --data-dir "$D2" --config "$T/c2.json" provision >"$T/p2.out" 2>"$T/p2.err"
check test $? = 7
check grep -q "wrong supervisor pin: the permanent lock is not authorised" "$T/p2.err"
uid=$(endpoint_field uid "$(sed -n 1p "$T/endpoints")")
check test -z "$(sqlite3 "$D2/journal.sqlite" "select state from boards where uid='$uid'")"
out=$(oocd_outside "$(bitbang_port "$(sed -n 1p "$T/endpoints")")")
check grep -q "RDP=0xAA" <<<"$out"
# With the supervisor's pin the permanent lock is burned, and the station,
# which can no longer read the part, does not call it locked.
TEST_SUP_PIN=s3cret-sup "$IMPRINT" --data-dir "$D2" --config "$T/c2.json" provision >"$T/p3.out" 2>"$T/p3.err"
check test $? != 0
check grep -q "st-stm32u5: OBL_LAUNCH: option bytes loaded (RDP 0xCC)" "$T/vboard.log"
check grep -q "lock verification inconclusive" "$T/p3.err"
check test "$(sqlite3 "$D2/journal.sqlite" "select state from boards where uid='$uid'")" = LOCK
grep -q "lock verification inconclusive" "$T/p3.err" || tail -5 "$T/p3.err"
stop_vboard
finish
