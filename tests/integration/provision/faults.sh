#!/usr/bin/env bash
# What must never happen on a line, each provoked on virtual boards:
# a board whose challenge fails is never locked; a locked board unknown to
# the journal is quarantined and not touched; a second run over the same
# boards issues no new serial; the quota stops production cleanly; a
# firmware image with a bad signature is never programmed; a failed fuse
# burn leaves the board resumable.
IMPRINT=$1
VBOARD=$2
. "$(dirname "$0")/lib.sh"
prepare || exit 1
issued() { sql "select count(*) from boards where serial is not null"; }
flash_blank() { test "$(od -v -An -tx1 -j4096 -N64 "$1/nv.img" | tr -d ' \n' | tr -d f)" = ""; }

# 1. The challenge fails: rejected (FAILED), never locked.
start_vboard "$T/b1" 1 --bad-challenge
write_config "$T/c1.json" device
"$IMPRINT" --data-dir "$DATA" --config "$T/c1.json" provision >"$T/p1.out" 2>"$T/p1.err"
check test $? = 26
check grep -q "failed the identity challenge" "$T/p1.err"
uid=$(board_uid "$T/b1/board-0")
check test "$(sql "select state from boards where uid='$uid'")" = FAILED
check test "$(board_fuses "$T/b1/board-0")" = 0
check test ! -e "$T/b1/board-0/se/locked"
check test "$(sql "select count(*) from outbox where uid='$uid'")" = 0
stop_vboard

# 1b. The rejected board again: refused without a reissue; a reissue needs
#     the supervisor's pin and a reason, keeps the serial and is recorded.
start_vboard "$T/b1" 1
write_config "$T/c1.json" device '"hsm": {"supervisor_pin": {"env": "TEST_SUPERVISOR_PIN"}}'
serial=$(sql "select serial from boards where uid='$uid'")
issued_before=$(issued)
"$IMPRINT" --data-dir "$DATA" --config "$T/c1.json" provision >/dev/null 2>"$T/p1b.err"
check test $? = 19
check grep -q "supervisor reissue" "$T/p1b.err"
TEST_SUPERVISOR_PIN=s3cret-supervisor "$IMPRINT" --data-dir "$DATA" --config "$T/c1.json" supervisor set >/dev/null
check test "$(stat -c %a "$DATA/supervisor")" = 600
TEST_SUPERVISOR_PIN=wrong-pin "$IMPRINT" --data-dir "$DATA" --config "$T/c1.json" provision \
	--reissue --reason "bad challenge: fixture contact" >/dev/null 2>"$T/p1c.err"
check test $? = 7
check grep -q "wrong supervisor pin" "$T/p1c.err"
check test "$(sql "select state from boards where uid='$uid'")" = FAILED
TEST_SUPERVISOR_PIN=s3cret-supervisor "$IMPRINT" --data-dir "$DATA" --config "$T/c1.json" provision \
	--reissue --reason "bad challenge: fixture contact" >/dev/null 2>"$T/p1d.err"
check test $? = 0
check test "$(sql "select state || ',' || serial || ',' || reissues from boards where uid='$uid'")" = "DONE,$serial,1"
check test "$(issued)" = "$issued_before"
check test "$(sql "select count(*) from events where uid='$uid' and kind='reissue' and detail like '%fixture contact%'")" = 1
check test "$(board_fuses "$T/b1/board-0")" = 3
# A locked board cannot be reissued: its anchor refuses; revoke it instead.
TEST_SUPERVISOR_PIN=s3cret-supervisor "$IMPRINT" --data-dir "$DATA" --config "$T/c1.json" provision \
	--reissue --reason "again" >/dev/null 2>"$T/p1e.err"
check test $? = 23
check grep -q "revoke" "$T/p1e.err"
check grep -vq "s3cret" "$T/p1d.err"
stop_vboard

# 2. A failed fuse burn: the board stays at LOCK, resumable, then finishes.
start_vboard "$T/b2" 1 --fuse-fail
write_config "$T/c2.json" device
"$IMPRINT" --data-dir "$DATA" --config "$T/c2.json" provision >"$T/p2.out" 2>"$T/p2.err"
check test $? != 0
uid=$(board_uid "$T/b2/board-0")
check test "$(sql "select state from boards where uid='$uid'")" = LOCK
check test "$(sql "select count(*) from outbox where uid='$uid'")" = 0
stop_vboard
start_vboard "$T/b2" 1
write_config "$T/c2.json" device
"$IMPRINT" --data-dir "$DATA" --config "$T/c2.json" resume >"$T/r2.out" 2>"$T/r2.err"
check test $? = 0
check test "$(sql "select state from boards where uid='$uid'")" = DONE
check test "$(board_fuses "$T/b2/board-0")" = 3

# 3. A second run over the same (finished) board: no new serial.
before=$(issued)
"$IMPRINT" --data-dir "$DATA" --config "$T/c2.json" provision >"$T/p3.out" 2>"$T/p3.err"
check test $? = 0
check grep -q "1 already done" "$T/p3.out"
check test "$(issued)" = "$before"
stop_vboard

# 3b. A blank board (lifecycle open, no fuses) presenting the UID of that
#     finished board: not "already done" but quarantined, not touched; the
#     finished board's row and record stay as they are.
done_uid=$(board_uid "$T/b2/board-0")
done_row=$(sql "select state || ',' || serial || ',' || updated from boards where uid='$done_uid'")
start_vboard "$T/b3b" 1 && stop_vboard
printf '%s' "$done_uid" | xxd -r -p | dd of="$T/b3b/board-0/nv.img" bs=1 seek=16 conv=notrunc 2>/dev/null
check test "$(board_uid "$T/b3b/board-0")" = "$done_uid"
check test "$(board_fuses "$T/b3b/board-0")" = 0
start_vboard "$T/b3b" 1
write_config "$T/c3b.json" device
snap=$(sha256sum <"$T/b3b/board-0/nv.img")
"$IMPRINT" --data-dir "$DATA" --config "$T/c3b.json" provision >"$T/p3b.out" 2>"$T/p3b.err"
check test $? = 22
check grep -q "presents the uid of finished board .* lifecycle is open, not locked.*quarantined" "$T/p3b.err"
# The run's last word names it as what it is (its DONE row stays the
# genuine board's, so no QUARANTINED row lists it).
check grep -q "1 board presenting the uid of a finished board (a cloned uid or a replaced chip), not touched: 'imprint audit' lists it (cloned-uid)" "$T/p3b.err"
if grep -q "locked and unknown to this journal" "$T/p3b.err"; then bad "a clone called locked and unknown"; else ok; fi
check test "$(sha256sum <"$T/b3b/board-0/nv.img")" = "$snap"
check test "$(sql "select state || ',' || serial || ',' || updated from boards where uid='$done_uid'")" = "$done_row"
check test "$(sql "select count(*) from outbox where uid='$done_uid'")" = 1
# The quarantine is a journal event on that uid and serial, in the hash
# chain, with the fixture and what was seen; status counts it, the audit
# reports it.
qev=$(sql "select serial || '|' || json_extract(detail, '$.board_state') || '|' || json_extract(detail, '$.fixture') || '|' || json_extract(detail, '$.lifecycle') || '|' || json_extract(detail, '$.fuses') || '|' || json_extract(detail, '$.reason') from events where kind = 'quarantine' and uid = '$done_uid'")
check test "$qev" = "$(sql "select serial from boards where uid='$done_uid'")|DONE|F1|open|0|its lifecycle is open, not locked"
check test "$(sql "select e.prev_hash = p.hash from events e join events p on p.seq = e.seq - 1 where e.kind = 'quarantine' and e.uid = '$done_uid'")" = 1
"$IMPRINT" --data-dir "$DATA" --json status --verify >"$T/s3b.json" 2>"$T/s3b.err"
check test $? = 0
check test "$(jq -c '[.quarantines.events, .quarantines.done_uid, .chain.ok]' "$T/s3b.json")" = "[1,1,true]"
"$IMPRINT" --data-dir "$DATA" status >"$T/s3b.out" 2>&1
check grep -q "^quarantined: 1 (1 presenting the uid of a finished board" "$T/s3b.out"
"$IMPRINT" --data-dir "$DATA" audit >"$T/a3b.out" 2>&1
check test $? = 28
check grep -q "^FINDING cloned-uid .*presented the uid of finished board .*lifecycle open, fuses 0x0, debug port open" "$T/a3b.out"
stop_vboard

# 4. A locked board unknown to this journal: quarantined, not touched.
DATA2=$T/data2
"$IMPRINT" -q --data-dir "$DATA2" hsm init >/dev/null
start_vboard "$T/b2" 1
write_config "$T/c4.json" device
sed -i "s|\"firmware\": {[^}]*},||" "$T/c4.json"
snap=$(sha256sum <"$T/b2/board-0/nv.img")
"$IMPRINT" --data-dir "$DATA2" --config "$T/c4.json" provision >"$T/p4.out" 2>"$T/p4.err"
check test $? = 22
check grep -q "quarantined" "$T/p4.err"
check test "$(sqlite3 "$DATA2/journal.sqlite" "select state || ',' || ifnull(serial,'-') from boards")" = "QUARANTINED,-"
# ... by an event with what was seen: locked, its fuses, the debug port shut.
check test "$(sqlite3 "$DATA2/journal.sqlite" "select json_extract(detail, '$.lifecycle') || ',' || (json_extract(detail, '$.fuses') > 0) || ',' || json_extract(detail, '$.debug_open') || ',' || ifnull(json_extract(detail, '$.board_state'), '-') from events where kind = 'quarantine'")" = "locked,1,0,-"
check test "$(sha256sum <"$T/b2/board-0/nv.img")" = "$snap"
stop_vboard

# 5. The quota: 2 more boards allowed, 3 on the fixtures.
before=$(issued)
start_vboard "$T/b5" 3
write_config "$T/c5.json" device "\"quota\": $((before + 2))"
"$IMPRINT" --data-dir "$DATA" --config "$T/c5.json" provision >"$T/p5.out" 2>"$T/p5.err"
check test $? = 21
check grep -q "quota" "$T/p5.err"
check grep -q "boards: 2 done" "$T/p5.out"
check test "$(issued)" = "$((before + 2))"
stop_vboard

# 6. A firmware image whose signature does not verify: nothing is programmed.
cp "$DATA/demo/firmware.bin" "$T/fw.bin"
printf '\x01' | dd of="$T/fw.bin" bs=1 seek=100 conv=notrunc 2>/dev/null
start_vboard "$T/b6" 1
write_config "$T/c6.json" device
sed -i "s|$DATA/demo/firmware.bin|$T/fw.bin|" "$T/c6.json"
before=$(issued)
"$IMPRINT" --data-dir "$DATA" --config "$T/c6.json" provision >"$T/p6.out" 2>"$T/p6.err"
check test $? = 25
check grep -q "signature does not verify" "$T/p6.err"
check test "$(issued)" = "$before"
check flash_blank "$T/b6/board-0"
stop_vboard

# 7. A lock that never takes effect (--tamper-lock): the board is rejected
#    at LOCK with its fuse burnt and no identity record; the audit lists it
#    (not a finding: the line's outcome) with its serial and cause.
start_vboard "$T/b7" 1 --tamper-lock
write_config "$T/c7.json" device
"$IMPRINT" --data-dir "$DATA" --config "$T/c7.json" provision >"$T/p7.out" 2>"$T/p7.err"
check test $? = 12
uid=$(board_uid "$T/b7/board-0")
serial7=$(sql "select serial from boards where uid='$uid'")
check test "$(sql "select state from boards where uid='$uid'")" = FAILED
check test "$(sql "select count(*) from outbox where uid='$uid'")" = 0
# (the journal's one finding is 3b's cloned uid)
"$IMPRINT" --data-dir "$DATA" --config "$T/c7.json" audit >"$T/a7.out" 2>&1
check test $? = 28
check test "$(grep -c '^FINDING' "$T/a7.out")" = 1
check grep -q "^FINDING cloned-uid" "$T/a7.out"
check grep -Eq "^REJECTED AT LOCK +$serial7 +board $uid, .* \(IMP_ERR_VERIFY\): its fuses may be burnt and it carries no identity record" "$T/a7.out"
check grep -q "^journal: 1 boards rejected at or after their lock step" "$T/a7.out"
"$IMPRINT" --json --data-dir "$DATA" --config "$T/c7.json" audit >"$T/a7.json" 2>/dev/null
check test "$(jq -c 'select(.event == "rejected_locked") | [.serial, .at, .cause]' "$T/a7.json")" = \
	"[\"$serial7\",\"LOCK\",\"IMP_ERR_VERIFY\"]"
check test "$(jq 'select(.event == "summary") | .rejected_locked' "$T/a7.json")" = 1
# Nothing was exported for it: revoking it is refused and says why.
"$IMPRINT" --data-dir "$DATA" --config "$T/c7.json" revoke "$serial7" --reason scrapped \
	>/dev/null 2>"$T/rv7.err"
check test $? = 9
check grep -q "serial $serial7 has no identity record in this station's journal (its board is FAILED)" "$T/rv7.err"
check test "$(sql "select count(*) from outbox where uid='$uid'")" = 0
[ "$fail" = 0 ] || cat "$T/a7.out"
stop_vboard
finish
