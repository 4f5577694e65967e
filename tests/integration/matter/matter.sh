#!/usr/bin/env bash
# Matter factory data end to end (docs/MATTER.md), against virtual boards:
# - two boards provisioned with a "matter" object (one with a random
#   discriminator, one with a configured one) and a certification
#   declaration; each board's factory-data area holds VID/PID, the
#   discriminator, salt, iterations, the declaration and a verifier;
# - `imprint label` renders PNG, SVG and ZPL; zbarimg decodes the PNG (and
#   the SVG, rasterised here) back to one MT: payload, whose passcode gives,
#   through the library, the board's verifier; the manual code on the ZPL
#   label is the library's for that payload;
# - the signed record carries VID, PID, discriminator and the verifier's
#   SHA-256; the audit passes;
# - killed right after each transition around the factory data and resumed,
#   a board still ends with a label whose passcode gives its verifier;
# - the passcode, as decimal, 4 bytes little-endian and hex, is nowhere in
#   the data directory (journal, records, HSM token), the boards' state or
#   any captured stderr;
# - refusals: a board without factory data, an unknown serial, an unknown
#   format, a sealed passcode changed in the journal.
IMPRINT=$1
VBOARD=$2
MCHECK=$3
. "$(dirname "$0")/../provision/lib.sh"

prepare || exit 1
start_vboard "$T/vb" 2 || { echo "vboard did not start"; exit 1; }
head -c 300 /dev/urandom >"$T/cd.der"
cd_sha=$(openssl dgst -sha256 -r "$T/cd.der" | cut -d' ' -f1)
write_config "$T/a.json" device '"matter": {"vendor_id": "FFF1", "product_id": "8000",
 "spake2p_iterations": 1000, "salt_length": 24, "discovery": ["ble", "on-network"],
 "certification_declaration": "'"$T/cd.der"'"}'
write_config "$T/b.json" device '"matter": {"vendor_id": "FFF1", "product_id": "8000",
 "spake2p_iterations": 2000, "discriminator": 3840,
 "certification_declaration": "'"$T/cd.der"'"}'

# Board 1 (F1) with a random discriminator, then board 2 (F2) with 3840.
"$IMPRINT" --data-dir "$DATA" --config "$T/a.json" provision --fixtures 1 >"$T/p1.out" 2>"$T/p1.err"
rc=$?
check test $rc = 0
[ "$rc" = 0 ] || cat "$T/p1.err"
"$IMPRINT" --data-dir "$DATA" --config "$T/b.json" provision --all >"$T/p2.out" 2>"$T/p2.err"
rc=$?
check test $rc = 0
[ "$rc" = 0 ] || cat "$T/p2.err"
check grep -q "1 done, 1 already done, 0 failed" "$T/p2.out"

passcodes=()
nboards=0
for n in 0 1; do
	dir=$T/vb/board-$n
	uid=$(board_uid "$dir")
	serial=$(sql "select serial from boards where uid='$uid' and state='DONE'")
	[ -n "$serial" ] || { bad "board-$n ($uid) is not done"; continue; }
	nboards=$((nboards + 1))
	read -r f_vid f_pid f_disc f_iter f_salt f_ver f_cd < <("$MCHECK" factory "$dir/factory.bin") ||
		{ bad "board-$n: no readable factory data"; continue; }
	check test "$f_vid" = 65521
	check test "$f_pid" = 32768
	check test "$f_cd" = "$cd_sha"
	if [ "$n" = 0 ]; then
		check test "$f_iter" = 1000
		check test "${#f_salt}" = 48
	else
		check test "$f_iter" = 2000
		check test "${#f_salt}" = 64
		check test "$f_disc" = 3840
	fi

	# The labels: PNG decoded by zbarimg; SVG rasterised to PGM and decoded.
	"$IMPRINT" --data-dir "$DATA" --config "$T/b.json" label "$serial" --format png \
		-o "$T/$serial.png" >"$T/label.out" 2>>"$T/label.err"
	check test $? = 0
	check test "$(stat -c %a "$T/$serial.png")" = 600
	qr=$(zbarimg -q --raw "$T/$serial.png" 2>>"$T/zbar.err")
	check test "${qr:0:3}" = "MT:"
	"$IMPRINT" --data-dir "$DATA" --config "$T/b.json" label "$serial" --format svg \
		-o "$T/$serial.svg" 2>>"$T/label.err" >/dev/null
	check test $? = 0
	python3 - "$T/$serial.svg" "$T/$serial.pgm" <<'EOF'
import re, sys
svg = open(sys.argv[1]).read()
w, h = map(int, re.search(r'viewBox="0 0 (\d+) (\d+)"', svg).groups())
s = 8
img = bytearray(b'\xff' * (w * s * h * s))
for x, y in re.findall(r'M(\d+) (\d+)h1v1h-1z', svg):
    x, y = int(x), int(y)
    for dy in range(s):
        row = (y * s + dy) * w * s
        img[row + x * s:row + x * s + s] = b'\x00' * s
open(sys.argv[2], 'wb').write(b'P5\n%d %d\n255\n' % (w * s, h * s) + bytes(img))
EOF
	check test "$(zbarimg -q --raw "$T/$serial.pgm" 2>>"$T/zbar.err")" = "$qr"
	zpl=$("$IMPRINT" --data-dir "$DATA" --config "$T/b.json" label "$serial" --format zpl \
		2>>"$T/label.err")
	check test $? = 0
	check grep -qF "^BQN,2,6^FDMA,$qr^FS" <<<"$zpl"

	read -r q_vid q_pid q_flow q_disc_caps q_disc q_pc q_manual < <("$MCHECK" qr "$qr") ||
		{ bad "board-$n: $qr does not parse"; continue; }
	passcodes+=("$q_pc")
	check test "$q_vid" = 65521
	check test "$q_pid" = 32768
	check test "$q_flow" = 0
	check test "$q_disc" = "$f_disc"
	if [ "$n" = 0 ]; then check test "$q_disc_caps" = 6; else check test "$q_disc_caps" = 2; fi
	# The manual code on the ZPL label (4-3-4 digits) is the library's.
	check grep -qF "^FD${q_manual:0:4}-${q_manual:4:3}-${q_manual:7:4}^FS" <<<"$zpl"
	# The label's passcode gives the board's verifier.
	check test "$("$MCHECK" verifier "$q_pc" "$f_salt" "$f_iter")" = "$f_ver"

	# The record: VID, PID, discriminator, SHA-256 of the verifier.
	jws=$(sql "select jws from outbox where kind='identity' and serial='$serial'")
	payload=$(verify_record_openssl "$jws") || { bad "record of $serial does not verify"; continue; }
	ver_sha=$(python3 -c 'import hashlib,sys; print(hashlib.sha256(bytes.fromhex(sys.argv[1])).hexdigest())' "$f_ver")
	check grep -qF "\"matter\":{\"discriminator\":$f_disc,\"product_id\":32768,\"vendor_id\":65521,\"verifier_sha256\":\"$ver_sha\"}" <<<"$payload"
done
check test "$nboards" = 2
check test "${#passcodes[@]}" = 2
check test "${passcodes[0]}" != "${passcodes[1]}"

"$IMPRINT" --data-dir "$DATA" --config "$T/b.json" audit >"$T/audit.out" 2>"$T/audit.err"
check test $? = 0
# The file exporters take records with Matter factory data as they are.
"$IMPRINT" --data-dir "$DATA" --config "$T/b.json" export --driver csv --out "$T/records.csv" \
	>/dev/null 2>>"$T/audit.err"
check test $? = 0
check test "$(grep -c TST "$T/records.csv")" = 2


# The Matter demo (certificate profile matter-dac) gives its boards factory
# data too: a label of one of them decodes to the demo's VID/PID.
"$IMPRINT" --data-dir "$T/mdemo" demo --boards 1 --latency 0 --cert-profile matter-dac \
	>"$T/mdemo.out" 2>"$T/mdemo.err"
check test $? = 0
"$IMPRINT" --data-dir "$T/mdemo" --config "$T/mdemo/demo/station-device.json" label DEMO000001 \
	--format png -o "$T/mdemo.png" >/dev/null 2>>"$T/label.err"
check test $? = 0
read -r q_vid q_pid _ < <("$MCHECK" qr "$(zbarimg -q --raw "$T/mdemo.png" 2>>"$T/zbar.err")")
check test "$q_vid:$q_pid" = "65521:32768"

# Refusals: a board provisioned without "matter"; an unknown serial; an
# unknown format.
"$IMPRINT" --data-dir "$DATA" --config "$T/b.json" label DEMO000001 --format png -o "$T/x.png" \
	2>"$T/e0.err"
check test $? = 9
check grep -q "board DEMO000001 has no matter factory data" "$T/e0.err"
"$IMPRINT" --data-dir "$DATA" --config "$T/b.json" label NOSUCH --format png -o "$T/x.png" \
	2>"$T/e1.err"
check test $? = 9
check grep -q "serial NOSUCH is not in this station's journal" "$T/e1.err"
"$IMPRINT" --data-dir "$DATA" --config "$T/b.json" label TST000001 --format bmp 2>"$T/e2.err"
check test $? = 2

# Crash safety: the station killed (SIGKILL) right after each of the
# transitions around the factory data (3: CERTIFY journaled, 4: INJECT
# journaled with the factory data, before any of it reached the board, 5:
# delivered, FIRMWARE journaled), then resumed: the board ends DONE, and
# its label's passcode gives the verifier the board holds.
stop_vboard
start_vboard "$T/crash" 3 || bad "vboard for the crash trials did not start"
k=0
for kill_after in 3 4 5; do
	line=$(sed -n "$((k + 1))p" "$T/endpoints")
	rsp=$(printf '%s' "$line" | sed -n 's/.*"rsp":"\([^"]*\)".*/\1/p')
	uart=$(printf '%s' "$line" | sed -n 's/.*"uart":"\([^"]*\)".*/\1/p')
	sed "s|\"fixtures\": \[.*\]|\"fixtures\": [{\"name\":\"C$k\",\"probe\":\"$rsp\",\"uart\":\"$uart\"}]|" \
		"$T/a.json" >"$T/c$k.json"
	IMPRINT_TEST_KILL_AFTER=$kill_after "$IMPRINT" --data-dir "$DATA" --config "$T/c$k.json" \
		provision --all >/dev/null 2>>"$T/crash.err"
	check test $? = 137
	"$IMPRINT" --data-dir "$DATA" --config "$T/c$k.json" resume >/dev/null 2>>"$T/crash.err"
	"$IMPRINT" --data-dir "$DATA" --config "$T/c$k.json" provision --all >/dev/null \
		2>>"$T/crash.err"
	check test $? = 0
	dir=$T/crash/board-$k
	uid=$(board_uid "$dir")
	serial=$(sql "select serial from boards where uid='$uid' and state='DONE'")
	check test -n "$serial"
	read -r f_vid f_pid f_disc f_iter f_salt f_ver f_cd < <("$MCHECK" factory "$dir/factory.bin")
	"$IMPRINT" --data-dir "$DATA" --config "$T/c$k.json" label "$serial" --format png \
		-o "$T/crash-$k.png" >/dev/null 2>>"$T/crash.err"
	qr=$(zbarimg -q --raw "$T/crash-$k.png" 2>>"$T/zbar.err")
	read -r q_vid q_pid q_flow q_disc_caps q_disc q_pc q_manual < <("$MCHECK" qr "$qr")
	check test "$q_disc" = "$f_disc"
	check test "$("$MCHECK" verifier "$q_pc" "$f_salt" "$f_iter")" = "$f_ver"
	passcodes+=("$q_pc")
	k=$((k + 1))
done
check test "${#passcodes[@]}" = 5

# No passcode anywhere: decimal (also zero-padded), 4 bytes little-endian,
# and hex of both byte orders, in every file of the data directory, the
# boards' state and the captured stderr of every command.
python3 - "$DATA" "$T/vb" "$T/crash" "$T/p1.err" "$T/p2.err" "$T/label.err" "$T/label.out" \
	"$T/crash.err" "$T/audit.err" "$T/records.csv" "$T/p1.out" "$T/p2.out" -- "${passcodes[@]}" <<'EOF' >"$T/grep.out"
import os, struct, sys
args = sys.argv[1:]
cut = args.index('--')
paths, codes = args[:cut], [int(c) for c in args[cut + 1:]]
pats = []
for c in codes:
    le, be = struct.pack('<I', c), struct.pack('>I', c)
    pats += [str(c).encode(), b'%08d' % c, le, le.hex().encode(), be.hex().encode(),
             le.hex().upper().encode(), be.hex().upper().encode()]
files = []
for p in paths:
    if os.path.isdir(p):
        for d, _, fs in os.walk(p):
            files += [os.path.join(d, f) for f in fs]
    elif os.path.exists(p):
        files.append(p)
hits = 0
for f in files:
    try:
        data = open(f, 'rb').read()
    except OSError:
        continue
    for pat in pats:
        if pat in data:
            hits += 1
            print('passcode form %r found in %s' % (pat, f))
print('%d files searched, %d hits' % (len(files), hits))
EOF
cat "$T/grep.out"
check grep -q " 0 hits" "$T/grep.out"
check grep -qE "^[1-9][0-9]* files searched" "$T/grep.out"

# Must fail: a sealed passcode changed in the journal (one hex digit) no
# longer opens in the HSM, and no label is made from it.
s1=$(sql "select serial from boards where state='DONE' and serial like 'TST%' order by serial limit 1")
python3 - "$DATA/journal.sqlite" "$s1" <<'EOF'
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
(data,) = db.execute("select data from boards where serial=?", (sys.argv[2],)).fetchone()
d = json.loads(data)
h = d["matter"]["passcode_sealed"]
d["matter"]["passcode_sealed"] = h[:30] + "%x" % (int(h[30], 16) ^ 1) + h[31:]
db.execute("update boards set data=? where serial=?", (json.dumps(d), sys.argv[2]))
db.commit()
EOF
"$IMPRINT" --data-dir "$DATA" --config "$T/b.json" label "$s1" --format png -o "$T/forged.png" \
	2>"$T/e3.err"
check test $? = 12
check grep -q "does not open with this hsm's sealing key" "$T/e3.err"
check test ! -e "$T/forged.png"

finish
