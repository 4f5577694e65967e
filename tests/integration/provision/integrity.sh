#!/usr/bin/env bash
# The station's own files under faults: the data directory's mode; a
# missing, rolled-back, damaged journal; a stale or foreign -wal beside it;
# an outbox that cannot take a record. After each, no board is locked
# without its record and nothing good is overwritten.
IMPRINT=$1
VBOARD=$2
. "$(dirname "$0")/lib.sh"
prepare || exit 1

# 1. A world-writable data directory is refused with the fix; group-writable
#    is warned about.
chmod 0777 "$DATA"
"$IMPRINT" --data-dir "$DATA" status >"$T/m1.out" 2>"$T/m1.err"
check test $? = 13
check grep -q "is mode 0777: every user of this host could replace.*chmod 700" "$T/m1.err"
chmod 0770 "$DATA"
"$IMPRINT" --data-dir "$DATA" status >"$T/m2.out" 2>"$T/m2.err"
check test $? = 0
check grep -q "group-writable (mode 0770)" "$T/m2.err"
chmod 0700 "$DATA"

POOL=64
start_vboard "$T/pool" "$POOL" || { bad "vboard"; finish; exit 1; }
next=0
# board_cfg FILE: a configuration with the next unused board as fixture F1.
board_cfg() {
	local line rsp uart
	line=$(sed -n "$((next + 1))p" "$T/endpoints")
	rsp=$(printf '%s' "$line" | sed -n 's/.*"rsp":"\([^"]*\)".*/\1/p')
	uart=$(printf '%s' "$line" | sed -n 's/.*"uart":"\([^"]*\)".*/\1/p')
	B=$T/pool/board-$next
	next=$((next + 1))
	cat >"$1" <<EOC
{"version": 1, "station_id": "demo-station", "key_mode": "device",
 "serial": {"prefix": "IT", "width": 6},
 "firmware": {"image": "$DATA/demo/firmware.bin", "signature": "$DATA/demo/firmware.sig"},
 "fixtures": [{"name": "F1", "probe": "$rsp", "uart": "$uart"}]}
EOC
}
# provision_in DATADIR: the next board, on a journal in DATADIR.
provision_in() {
	board_cfg "$T/c.json"
	"$IMPRINT" --data-dir "$1" --config "$T/c.json" provision >"$T/p.out" 2>"$T/p.err"
}
jsum() { sha256sum <"$1/journal.sqlite"; }
# clone SRC DST: a copy of a data directory with its own token (softhsm2.conf
# names its token directory by absolute path).
clone() {
	rm -rf "$2"
	cp -a "$1" "$2"
	sed -i "s|$1/hsm/tokens|$2/hsm/tokens|" "$2/hsm/softhsm2.conf"
}

# The reference station: two more boards done.
provision_in "$DATA"
check test $? = 0
sqlite3 "$DATA/journal.sqlite" ".backup '$T/old.sqlite'"
cp "$DATA/journal.sqlite-anchor" "$T/old.anchor"
provision_in "$DATA"
check test $? = 0
check test "$(sql "select value from settings where key = 'serial_counter'")" = 3
check grep -q "^serial_counter 3$" "$DATA/journal.sqlite-anchor"

# 2. A journal missing or emptied where its anchor says one existed: never
#    created again (serials would restart at 1); the board is not touched.
for how in missing empty; do
	clone "$DATA" "$T/d2"
	rm -f "$T/d2/journal.sqlite" "$T/d2/journal.sqlite-wal" "$T/d2/journal.sqlite-shm"
	[ $how = empty ] && : >"$T/d2/journal.sqlite"
	provision_in "$T/d2"
	check test $? = 20
	check grep -Eq "a journal is never created where one existed|but the hsm.s anchor says" "$T/p.err"
	check test "$(board_fuses "$B")" = 0
	if [ $how = missing ]; then check test ! -e "$T/d2/journal.sqlite"; fi
done

# 3. The journal rolled back (an older copy put back): provision refuses to
#    allocate, status --verify and the audit report it.
clone "$DATA" "$T/d3"
rm -f "$T/d3"/journal.sqlite*-shm "$T/d3"/journal.sqlite-wal
cp "$T/old.sqlite" "$T/d3/journal.sqlite"
provision_in "$T/d3"
check test $? = 20
check grep -q "the journal is behind what this station already did.*counter 3" "$T/p.err"
check test "$(board_fuses "$B")" = 0
"$IMPRINT" --data-dir "$T/d3" status --verify >"$T/s3.out" 2>"$T/s3.err"
check test $? = 28
check grep -q "journal is behind" "$T/s3.err"
"$IMPRINT" --data-dir "$T/d3" audit >"$T/a3.out" 2>&1
check test $? = 28
check grep -q "FINDING journal-rollback" "$T/a3.out"

# 3a. The same in a data directory of a long path: the whole message, path
#     and next step, reaches provision, status --verify (text and --json)
#     and the audit's finding, not cut at a fixed buffer.
#     (About 450 bytes: SQLite's unix files take paths up to 512.)
long=$T/$(printf 'd%.0s' $(seq 1 200))/$(printf 'e%.0s' $(seq 1 200))/d3a
mkdir -p "$(dirname "$long")"
clone "$T/d3" "$long"
provision_in "$long"
check test $? = 20
check grep -q "$long/journal.sqlite-anchor records .*or have the line's supervisor decide$" "$T/p.err"
"$IMPRINT" --data-dir "$long" status --verify >"$T/s3a.out" 2>"$T/s3a.err"
check test $? = 28
check grep -q "journal chain broken at event .*$long/journal.sqlite-anchor .*or have the line's supervisor decide$" "$T/s3a.err"
"$IMPRINT" --json --data-dir "$long" status --verify >"$T/s3a.out" 2>/dev/null
check python3 -c "
import json, sys
o = [json.loads(l) for l in open(sys.argv[1]) if l.startswith('{')]
r = [x['chain']['reason'] for x in o if isinstance(x.get('chain'), dict)]
assert r and r[0].endswith(\"or have the line's supervisor decide\") and sys.argv[2] in r[0], r
" "$T/s3a.out" "$long"
"$IMPRINT" --data-dir "$long" audit >"$T/a3a.out" 2>&1
check test $? = 28
check grep -q "FINDING journal-rollback .*$long/journal.sqlite-anchor .*or have the line's supervisor decide$" "$T/a3a.out"
rm -rf "$T/$(printf 'd%.0s' $(seq 1 200))"

# 3b. The journal and its anchor file both put back from the older copy:
#     the HSM's anchor (the signed head at the last checkpoint) still knows.
clone "$DATA" "$T/d3b"
rm -f "$T/d3b"/journal.sqlite-shm "$T/d3b"/journal.sqlite-wal
cp "$T/old.sqlite" "$T/d3b/journal.sqlite"
cp "$T/old.anchor" "$T/d3b/journal.sqlite-anchor"
provision_in "$T/d3b"
check test $? = 20
check grep -q "the journal is behind the hsm's journal anchor" "$T/p.err"
check test "$(board_fuses "$B")" = 0
# ... and with the journal and its anchor file gone, no new journal either.
rm -f "$T/d3b"/journal.sqlite*
provision_in "$T/d3b"
check test $? = 20
check grep -q "but the hsm's anchor says station demo-station signed its journal" "$T/p.err"
check test ! -e "$T/d3b/journal.sqlite"
check test "$(board_fuses "$B")" = 0

# 4. A stale -wal put back: saved after a crash, provisioning went on, then
#    the old -wal returned. Refused; the journal file is not overwritten by
#    it, and with the stale -wal moved aside everything is there.
clone "$DATA" "$T/d4"
board_cfg "$T/c4.json"
IMPRINT_TEST_KILL_AFTER=4 "$IMPRINT" --data-dir "$T/d4" --config "$T/c4.json" provision \
	>/dev/null 2>&1
check test -s "$T/d4/journal.sqlite-wal"
cp "$T/d4/journal.sqlite-wal" "$T/stale-wal"
"$IMPRINT" -q --data-dir "$T/d4" --config "$T/c4.json" resume >/dev/null 2>&1
provision_in "$T/d4"
check test $? = 0
check test ! -e "$T/d4/journal.sqlite-wal"
before=$(jsum "$T/d4")
cp "$T/stale-wal" "$T/d4/journal.sqlite-wal"
provision_in "$T/d4"
check test $? = 20
check grep -Eq "journal is behind|its -wal may be stale" "$T/p.err"
check test "$(board_fuses "$B")" = 0
"$IMPRINT" --data-dir "$T/d4" status --verify >/dev/null 2>&1
check test $? != 0
"$IMPRINT" --data-dir "$T/d4" audit >"$T/a4.out" 2>&1
check test $? != 0
check test "$(jsum "$T/d4")" = "$before"
mv "$T/d4/journal.sqlite-wal" "$T/stale-wal.aside"
rm -f "$T/d4/journal.sqlite-shm"
"$IMPRINT" --data-dir "$T/d4" status --verify >/dev/null 2>&1
check test $? = 0
check test "$(sqlite3 "$T/d4/journal.sqlite" "select count(*) from boards where state = 'DONE'")" = 5

# 5. A foreign -wal beside the journal (another database's): refused, and
#    the journal is not merged with it.
clone "$DATA" "$T/d5"
python3 - "$T/foreign.sqlite" <<'PY'
import os, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("pragma journal_mode=wal")
db.execute("create table t(x)")
db.execute("insert into t values (zeroblob(10000))")
db.commit()
os._exit(0)  # no checkpoint: the -wal stays
PY
for ps in same other; do
	rm -f "$T/d5/journal.sqlite-shm"
	cp "$T/foreign.sqlite-wal" "$T/d5/journal.sqlite-wal"
	# "other": the same -wal claiming another page size
	[ $ps = other ] && printf '\000\000\040\000' | dd of="$T/d5/journal.sqlite-wal" bs=1 seek=8 conv=notrunc 2>/dev/null
	before=$(jsum "$T/d5")
	provision_in "$T/d5"
	check test $? = 20
	check test "$(board_fuses "$B")" = 0
	check test "$(jsum "$T/d5")" = "$before"
done
check grep -q "does not belong to the journal" "$T/p.err"
mv "$T/d5/journal.sqlite-wal" "$T/foreign.aside"
rm -f "$T/d5/journal.sqlite-shm"
check test "$(sqlite3 "$T/d5/journal.sqlite" "select count(*) from boards where state = 'DONE'")" = 3

# 6. A damaged page in each table and index in turn: status --verify and
#    the audit fail, and provision stops before any fuse is burnt.
sqlite3 "$DATA/journal.sqlite" "pragma wal_checkpoint(truncate)" >/dev/null
pages=$(sqlite3 "$DATA/journal.sqlite" "select name || ':' || rootpage from sqlite_schema where rootpage > 1")
psize=$(sqlite3 "$DATA/journal.sqlite" "pragma page_size")
ncase=0
for np in $pages; do
	name=${np%%:*} root=${np##*:}
	clone "$DATA" "$T/d6"
	rm -f "$T/d6/journal.sqlite-wal" "$T/d6/journal.sqlite-shm"
	head -c "$psize" /dev/urandom | dd of="$T/d6/journal.sqlite" bs="$psize" seek=$((root - 1)) \
		conv=notrunc 2>/dev/null
	ok6=1
	"$IMPRINT" --data-dir "$T/d6" status --verify >/dev/null 2>&1 && ok6=0
	"$IMPRINT" --data-dir "$T/d6" audit >/dev/null 2>&1 && ok6=0
	provision_in "$T/d6" && ok6=0
	[ "$(board_fuses "$B")" = 0 ] || ok6=0
	if [ $ok6 = 1 ]; then ok; else bad "a damaged $name (page $root) went unnoticed"; fi
	ncase=$((ncase + 1))
done
echo "integrity: $ncase tables and indexes damaged in turn"
check test "$ncase" -ge 15

# 6b. The page check is left out only on the file this station closed
#     cleanly after one: journal.sqlite-checked holds the file's
#     fingerprint (device, inode, size, modification and status-change
#     times). A copy in its place is checked again; so is a page damaged in
#     place with its modification time put back (the status-change time
#     moved).
clone "$DATA" "$T/d6b"
"$IMPRINT" -v --data-dir "$T/d6b" status >/dev/null 2>"$T/s6b.err"
check test $? = 0
if grep -q "not checked again" "$T/s6b.err"; then bad "a copied journal went unchecked"; else ok; fi
board_cfg "$T/c.json"
"$IMPRINT" --data-dir "$T/d6b" --config "$T/c.json" journal checkpoint >/dev/null 2>&1
check test $? = 0
check test -s "$T/d6b/journal.sqlite-checked"
"$IMPRINT" -v --data-dir "$T/d6b" status >/dev/null 2>"$T/s6b.err"
check grep -q "journal.sqlite is as this station closed it after a page check: not checked again" \
	"$T/s6b.err"
"$IMPRINT" -v --data-dir "$T/d6b" status --verify >/dev/null 2>&1
check test $? = 0
# A page damaged with every field of the fingerprint kept cannot be made
# from user space here; a mark made by hand to match the damaged file
# stands for one (bit rot): the read that meets the damaged page names it,
# and the mark is gone, so the next open checks every page.
touch -r "$T/d6b/journal.sqlite" "$T/d6b.mtime"
root=$(sqlite3 "file:$T/d6b/journal.sqlite?immutable=1" \
	"select rootpage from sqlite_schema where name = 'boards'")
head -c "$psize" /dev/urandom | dd of="$T/d6b/journal.sqlite" bs="$psize" seek=$((root - 1)) \
	conv=notrunc 2>/dev/null
touch -r "$T/d6b.mtime" "$T/d6b/journal.sqlite"
"$IMPRINT" --data-dir "$T/d6b" status >/dev/null 2>"$T/s6b.err"
check test $? = 20
check grep -q "is damaged" "$T/s6b.err"
printf 'imprint-journal-checked v1\n%s\n' "$(stat -c '%d %i %s %.9Y %.9Z' "$T/d6b/journal.sqlite")" \
	>"$T/d6b/journal.sqlite-checked"
"$IMPRINT" -v --data-dir "$T/d6b" status --verify >/dev/null 2>"$T/s6b.err"
check test $? = 20
check grep -q "not checked again" "$T/s6b.err"
check grep -q "is damaged .*restore the journal from backup" "$T/s6b.err"
check test ! -e "$T/d6b/journal.sqlite-checked"
# The same with a page no read of status touches (the events' hash index):
# status --verify checks every page whatever the mark says.
clone "$DATA" "$T/d6c"
"$IMPRINT" --data-dir "$T/d6c" --config "$T/c.json" journal checkpoint >/dev/null 2>&1
check test -s "$T/d6c/journal.sqlite-checked"
root=$(sqlite3 "file:$T/d6c/journal.sqlite?immutable=1" "select rootpage from sqlite_schema
	where type = 'index' and tbl_name = 'events' and sql is null")
touch -r "$T/d6c/journal.sqlite" "$T/d6c.mtime"
head -c "$psize" /dev/urandom | dd of="$T/d6c/journal.sqlite" bs="$psize" seek=$((root - 1)) \
	conv=notrunc 2>/dev/null
touch -r "$T/d6c.mtime" "$T/d6c/journal.sqlite"
printf 'imprint-journal-checked v1\n%s\n' "$(stat -c '%d %i %s %.9Y %.9Z' "$T/d6c/journal.sqlite")" \
	>"$T/d6c/journal.sqlite-checked"
"$IMPRINT" -v --data-dir "$T/d6c" status --verify >/dev/null 2>"$T/s6c.err"
check test $? = 20
check grep -q "not checked again" "$T/s6c.err"
check grep -q "is damaged (page check" "$T/s6c.err"
"$IMPRINT" -v --data-dir "$T/d6c" audit >/dev/null 2>"$T/a6c.err"
check test $? = 20
check grep -q "is damaged (page check" "$T/a6c.err"

# 7. An outbox that cannot take the record: the move to LOCK fails with it,
#    before the fuses; the board stays resumable (at CHALLENGE), and
#    finishes once the outbox works.
clone "$DATA" "$T/d7"
sqlite3 "$T/d7/journal.sqlite" "create trigger refuse before insert on outbox begin select raise(abort, 'outbox refuses'); end;"
board_cfg "$T/c7.json"
"$IMPRINT" --data-dir "$T/d7" --config "$T/c7.json" provision >/dev/null 2>"$T/p7.err"
check test $? = 20
check grep -q "cannot store the record of board.*fuses are not burnt" "$T/p7.err"
check test "$(board_fuses "$B")" = 0
uid=$(board_uid "$B")
check test "$(sqlite3 "$T/d7/journal.sqlite" "select state from boards where uid = '$uid'")" = CHALLENGE
sqlite3 "$T/d7/journal.sqlite" "drop trigger refuse"
"$IMPRINT" --data-dir "$T/d7" --config "$T/c7.json" resume >/dev/null 2>"$T/r7.err"
check test $? = 0
check test "$(board_fuses "$B")" = 3
check test "$(sqlite3 "$T/d7/journal.sqlite" "select state from boards where uid = '$uid'")" = DONE

# 8. A read-only data directory (a read-only bind mount in a private mount
#    namespace): status --verify and the audit still work.
clone "$DATA" "$T/d8"
unshare -m sh -c "mount --bind '$T/d8' '$T/d8' && mount -o remount,bind,ro '$T/d8' &&
	'$IMPRINT' --data-dir '$T/d8' status --verify >'$T/s8.out' 2>'$T/s8.err'; echo \$? >'$T/s8.rc';
	'$IMPRINT' --data-dir '$T/d8' audit >'$T/a8.out' 2>&1; echo \$? >'$T/a8.rc'"
check test "$(cat "$T/s8.rc")" = 0
check grep -q "journal chain: verified" "$T/s8.out"
check test "$(cat "$T/a8.rc")" = 0
check grep -q "OK: 0 findings" "$T/a8.out"

# 9. A full disk (a small tmpfs, filled up to 8 KiB): named as such, and the
#    board is not touched.
mkdir -p "$T/d9"
board_cfg "$T/c9.json"
unshare -m sh -c "mount -t tmpfs -o size=4m tmpfs '$T/d9' && cp -a '$DATA'/. '$T/d9'/ &&
	rm -f '$T/d9/journal.sqlite-wal' '$T/d9/journal.sqlite-shm' &&
	{ dd if=/dev/zero of='$T/d9/filler' bs=4k 2>/dev/null; truncate -s -8K '$T/d9/filler'; } &&
	'$IMPRINT' --data-dir '$T/d9' --config '$T/c9.json' provision >'$T/p9.out' 2>'$T/p9.err';
	echo \$? >'$T/p9.rc'"
check test "$(cat "$T/p9.rc")" = 20
check grep -q "full (SQLITE_FULL, ENOSPC)\|disk is full (ENOSPC)" "$T/p9.err"
check test "$(board_fuses "$B")" = 0
[ "$fail" = 0 ] || cat "$T/p9.err"

# 10. A run killed after its board was locked, before its end (the HSM's
#     anchor has not seen its checkpoint): the smallest N for which
#     IMPRINT_TEST_KILL_AFTER=N leaves the board's fuses burnt.
kill_locked() { # DIR: a clone of $DATA with one board locked by a killed run
	local n
	for n in $(seq 6 16); do
		clone "$DATA" "$1"
		sqlite3 "$1/journal.sqlite" ".backup '$1.before'"
		board_cfg "$1.json"
		IMPRINT_TEST_KILL_AFTER=$n "$IMPRINT" --data-dir "$1" --config "$1.json" \
			provision >/dev/null 2>&1
		[ "$(board_fuses "$B")" = 3 ] && return 0
	done
	return 1
}
#     The journal file without the run's -wal and without its anchor file
#     (both lost): the serial the locked board carries is never issued
#     again; the counter moves past the HSM's reservation of serials.
check kill_locked "$T/d10"
lost_uid=$(board_uid "$B")
lost_serial=$(sqlite3 "$T/d10/journal.sqlite" "select serial from boards where uid = '$lost_uid'")
check test -n "$lost_serial"
reserved=$("$IMPRINT" --data-dir "$T/d10" --config "$T/d10.json" hsm status |
	sed -n 's/.*serials reserved up to \([0-9]*\)$/\1/p')
check test -n "$reserved"
cp "$T/d10.before" "$T/d10/journal.sqlite"
rm -f "$T/d10"/journal.sqlite-wal "$T/d10"/journal.sqlite-shm "$T/d10"/journal.sqlite-anchor
provision_in "$T/d10"
check test $? = 0
check grep -q "journal.sqlite-anchor was missing: serials up to counter $reserved were reserved" "$T/p.err"
new_serial=$(sqlite3 "$T/d10/journal.sqlite" "select serial from boards where uid = '$(board_uid "$B")'")
check test "$new_serial" = "$(printf 'IT%06d' $((reserved + 1)))"
check test "$new_serial" != "$lost_serial"
check test "$(sqlite3 "$T/d10/journal.sqlite" "select count(*) from events where kind = 'setting' and
	json_extract(detail, '\$.key') = 'serial_counter' and json_extract(detail, '\$.new') = '$reserved'")" = 1
#     With the HSM's anchor gone too, nothing bounds what was issued: refused
#     (exit 20) until `journal checkpoint --serials-after N` says from where.
SOFTHSM2_CONF="$T/d10/hsm/softhsm2.conf" pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so \
	--login --pin "$(sed -n 's/^user=//p' "$T/d10/hsm/pins")" --delete-object --type data \
	--label imprint-journal-anchor:demo-station >/dev/null 2>"$T/del.err"
check test $? = 0
"$IMPRINT" --data-dir "$T/d10" --config "$T/d10.json" hsm status >"$T/h10.out" 2>&1
check grep -q "^journal anchor: none on this token yet$" "$T/h10.out"
rm -f "$T/d10"/journal.sqlite-anchor
provision_in "$T/d10"
check test $? = 20
check grep -q "journal.sqlite-anchor is missing and no reservation of serials is known" "$T/p.err"
check grep -q "imprint journal checkpoint --serials-after N" "$T/p.err"
check test "$(board_fuses "$B")" = 0
"$IMPRINT" --data-dir "$T/d10" --config "$T/d10.json" journal checkpoint --serials-after 500 \
	>/dev/null 2>"$T/cp10.err"
check test $? = 0
check grep -q "serial counters [0-9]* to 500 are never issued (--serials-after); the next serial is counter 501" "$T/cp10.err"
check test -s "$T/d10/journal.sqlite-anchor"
provision_in "$T/d10"
check test $? = 0
check test "$(sqlite3 "$T/d10/journal.sqlite" "select serial from boards where uid = '$(board_uid "$B")'")" = IT000501
[ "$fail" = 0 ] || cat "$T/p.err"

# 11. The same killed run, with its -wal cut short before the board's LOCK
#     (a damaged or truncated -wal drops the commits after the cut): the
#     anchor file saw the LOCK event, so the journal is behind it, refused
#     (exit 20), not resumed as a board before LOCK; status --verify and
#     the audit fail on it.
check kill_locked "$T/d11"
uid11=$(board_uid "$B")
wal=$T/d11/journal.sqlite-wal
frames=$(( ($(stat -c %s "$wal") - 32) / 4120 ))
cut=
for k in $(seq "$frames" -1 1); do
	rm -rf "$T/w11" && mkdir "$T/w11"
	cp "$T/d11/journal.sqlite" "$T/w11/j.sqlite"
	head -c $((32 + k * 4120)) "$wal" >"$T/w11/j.sqlite-wal"
	st=$(sqlite3 "$T/w11/j.sqlite" "select coalesce((select state from boards where uid = '$uid11'), 'none')")
	case $st in LOCK|RECORD|DONE) ;; *) cut=$k; break ;; esac
done
check test -n "$cut"
truncate -s $((32 + ${cut:-0} * 4120)) "$wal"
"$IMPRINT" --data-dir "$T/d11" --config "$T/d11.json" resume >"$T/r11.out" 2>"$T/r11.err"
check test $? = 20
check grep -q "the journal is behind what this station already did" "$T/r11.err"
"$IMPRINT" --data-dir "$T/d11" status --verify >/dev/null 2>&1
check test $? = 28
"$IMPRINT" --data-dir "$T/d11" audit >"$T/a11.out" 2>&1
check test $? = 28
check grep -q "FINDING journal-rollback" "$T/a11.out"

# 12. The outbox edited beside its events: each edit is found by status
#     --verify (exit 28, named) and by the audit (an outbox-table finding);
#     the untouched journal says how many rows it compared and what it
#     does not compare.
"$IMPRINT" --data-dir "$DATA" status --verify >"$T/s12.out" 2>"$T/s12.err"
check test $? = 0
check grep -qE "boards rows and [1-9][0-9]* outbox rows compared with their events" "$T/s12.out"
check grep -q "not compared, as no event holds them: the boards' data" "$T/s12.out"
i=0
while IFS='#' read -r edit want; do
	i=$((i + 1))
	clone "$DATA" "$T/d12-$i"
	sqlite3 "$T/d12-$i/journal.sqlite" "$edit"
	"$IMPRINT" --data-dir "$T/d12-$i" status --verify >/dev/null 2>"$T/s12-$i.err"
	check test $? = 28
	check grep -q "$want" "$T/s12-$i.err"
	"$IMPRINT" --data-dir "$T/d12-$i" audit >"$T/a12-$i.out" 2>&1
	check test $? = 28
	check grep -q "FINDING outbox-table .*$want" "$T/a12-$i.out"
done <<'EOS'
delete from outbox where rowid = 1#has no outbox row (deleted)
update outbox set jws = jws || 'x' where rowid = 1#holds another signed record than event
update outbox set serial = 'IT999999' where rowid = 1#says serial IT999999
update outbox set delivered_at = '2026-01-01T00:00:00Z' where rowid = (select min(rowid) from outbox where delivered_at is null)#is marked delivered, and no event says it was delivered
update outbox set rejected_reason = 'r' where rowid = 1#is marked rejected, and no event says
insert into outbox(record_id, serial, uid, kind, jws, created) select record_id || 'ff', serial, uid, kind, jws, created from outbox where rowid = 1#was put there by no event
EOS

# 13. A damaged anchor file (cut short, a line lost or repeated, another
#     station's), or one whose head event has another hash than the
#     journal's (a journal or -wal of a copy that went on apart), is never
#     read as zeros nor taken as current: provision refuses (exit 20) and
#     names it, status --verify fails on it; moved aside, the next run takes
#     the journal as having lost its anchor (the counter past the HSM's
#     reservation).
clone "$DATA" "$T/d13"
good=$T/d13.anchor
cp "$T/d13/journal.sqlite-anchor" "$good"
i=0
while IFS='#' read -r how want; do
	i=$((i + 1))
	cp "$good" "$T/d13/journal.sqlite-anchor"
	eval "$how"
	provision_in "$T/d13"
	check test $? = 20
	check grep -q "journal.sqlite-anchor $want" "$T/p.err"
	check test "$(board_fuses "$B")" = 0
	"$IMPRINT" --data-dir "$T/d13" status --verify >/dev/null 2>&1
	check test $? = 28
done <<'EOS'
truncate -s 60 "$T/d13/journal.sqlite-anchor"#is damaged (60 bytes, an anchor is 256)
truncate -s 266 "$T/d13/journal.sqlite-anchor"#is damaged (266 bytes, an anchor is 256)
sed -i '/^intent /d' "$T/d13/journal.sqlite-anchor"#is damaged
python3 -c 'import sys; p=sys.argv[1]; d=open(p,"rb").read().rstrip(b"\0"); d=d.replace(b"\nintent", b"\nserial_counter 1\nintent"); open(p,"wb").write(d.ljust(256, b"\0"))' "$T/d13/journal.sqlite-anchor"#is damaged (no intent line where it belongs)
python3 -c 'import sys; p=sys.argv[1]; d=open(p,"rb").read().rstrip(b"\0"); d=d.replace(b"\nstation_id demo-station\n", b"\nstation_id other-station\n"); open(p,"wb").write(d.ljust(256, b"\0"))' "$T/d13/journal.sqlite-anchor"#is the anchor of station other-station's journal
sed -i "s/^head_hash [0-9a-f]*$/head_hash $(printf 'a%.0s' $(seq 64))/" "$T/d13/journal.sqlite-anchor"#saw (hash .*, the anchor's aaaaaaaaaaaaaaaa...): the journal or its -wal comes from another copy
EOS
mv "$T/d13/journal.sqlite-anchor" "$T/d13.aside"
provision_in "$T/d13"
check test $? = 0
check grep -q "journal.sqlite-anchor was missing: serials up to counter" "$T/p.err"
check test "$(board_fuses "$B")" = 3
[ "$next" -le "$POOL" ] || bad "the test used $next boards of a pool of $POOL"

stop_vboard
finish
