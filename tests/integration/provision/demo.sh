#!/usr/bin/env bash
# `imprint demo --boards 8` ends with 8 boards DONE and 8 records; every
# device certificate and every record's JWS verifies with openssl alone;
# one altered payload byte does not. The other key modes run end to end.
IMPRINT=$1
VBOARD=$2
. "$(dirname "$0")/lib.sh"

"$IMPRINT" --data-dir "$DATA" demo --boards 8 --latency 0 >"$T/demo.out" 2>"$T/demo.err"
check test $? = 0
check grep -q "boards: 8 done, 0 already done, 0 failed" "$T/demo.out"
check test "$(sql "select count(*) from boards where state='DONE'")" = 8
check test "$(sql "select count(*) from outbox where kind='identity'")" = 8

n=0
while IFS= read -r jws; do
	if payload=$(verify_record_openssl "$jws"); then
		ok
		n=$((n + 1))
		# The record names a board the journal has DONE with the same serial.
		serial=$(printf '%s' "$payload" | sed -n 's/.*"serial":"\([^"]*\)".*/\1/p')
		check test "$(sql "select state from boards where serial='$serial'")" = DONE
	else
		bad "record does not verify with openssl: ${jws:0:40}..."
	fi
done < <(sql "select jws from outbox where kind='identity'")
check test "$n" = 8

# Must fail: one byte of one record's payload altered.
jws=$(sql "select jws from outbox limit 1")
IFS=. read -r h p s <<<"$jws"
payload=$(b64url_decode "$p" | sed 's/"sku":"DEMO-S1"/"sku":"DEMO-S2"/')
p2=$(printf '%s' "$payload" | openssl base64 -A | tr '/+' '_-' | tr -d '=')
check test "$p2" != "$p"
if verify_record_openssl "$h.$p2.$s" >/dev/null; then bad "altered record verified"; else ok; fi

# The journal's chain and checkpoints verify.
"$IMPRINT" --data-dir "$DATA" status --verify >"$T/status.out" 2>&1
check test $? = 0
check grep -q "journal chain: verified" "$T/status.out"

# The other key modes, end to end.
for mode in hsm psk; do
	"$IMPRINT" --data-dir "$DATA" demo --boards 3 --latency 0 --key-mode "$mode" >"$T/$mode.out" 2>&1
	check test $? = 0
	check grep -q "boards: 3 done, 0 already done, 0 failed" "$T/$mode.out"
done
check test "$(sql "select count(*) from outbox where jws is not null")" = 14
# hsm-mode records carry a certificate that chains; psk records carry a kcv.
while IFS= read -r jws; do
	if verify_record_openssl "$jws" >>"$T/p.json"; then ok; else bad "hsm/psk record"; fi
	echo >>"$T/p.json"
done < <(sql "select jws from outbox order by created desc limit 6")
check test "$(grep -c '"key_mode":"hsm"' "$T/p.json")" = 3
check test "$(grep -c '"key_mode":"psk"' "$T/p.json")" = 3
check test "$(grep '"key_mode":"psk"' "$T/p.json" | grep -c '"kcv"')" = 3
finish
