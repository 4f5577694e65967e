#!/usr/bin/env bash
# `imprint demo --cert-profile ieee-802.1ar-idevid`: each IDevID's
# hardwareModuleName holds the board's chip UID, notAfter is
# 99991231235959Z, the serialNumber attribute is the UID; openssl (strict)
# and GnuTLS certtool both verify the chain; the audit and the registry
# accept the records.
IMPRINT=$1
VBOARD=$2
. "$(dirname "$0")/lib.sh"

"$IMPRINT" --data-dir "$DATA" demo --boards 2 --latency 0 --cert-profile ieee-802.1ar-idevid \
	>"$T/demo.out" 2>"$T/demo.err"
check test $? = 0
check grep -q "boards: 2 done, 0 already done, 0 failed" "$T/demo.out"
check grep -q "export (https): 2 accepted, 0 already there, 0 rejected" "$T/demo.out"
check grep -q "audit: 2 records (2 identities, 0 revocations), 4 signatures verified, 0 bad" \
	"$T/demo.out"

ROOT=$DATA/trust/root-ca.pem
CA=$DATA/trust/device-ca.pem
n=$(record_certs "$T/c")
check test "$n" = 2
for i in $(seq 1 "$n"); do
	uid=$(cat "$T/c/$i.uid")
	check test ${#uid} = 32
	if "$PY" "$CHECK" idevid "$CA" "$T/c/$i.pem" "$uid" >"$T/fields.$i" 2>&1; then ok; else
		bad "idevid field checks $i: $(cat "$T/fields.$i")"
	fi
	check test "$(openssl x509 -in "$T/c/$i.pem" -noout -enddate)" = \
		"notAfter=Dec 31 23:59:59 9999 GMT"
	if openssl verify -x509_strict -CAfile "$ROOT" -untrusted "$CA" "$T/c/$i.pem" \
		>"$T/v.$i" 2>&1; then ok; else bad "openssl verify $i: $(cat "$T/v.$i")"; fi
	cat "$T/c/$i.pem" "$CA" >"$T/chain.$i"
	certtool --verify --load-ca-certificate "$ROOT" --infile "$T/chain.$i" >"$T/gnutls.$i" 2>&1
	check test $? = 0
	check grep -q "Chain verification output: Verified" "$T/gnutls.$i"
done
# Must fail: another board's UID is not this certificate's.
other=$(cat "$T/c/2.uid")
if "$PY" "$CHECK" idevid "$CA" "$T/c/1.pem" "$other" >/dev/null 2>&1; then
	bad "the field checks accepted another UID"
else ok; fi
# Must fail: certtool with another root (the default demo's would differ; a
# self-made one suffices).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=other \
	-keyout "$T/o.key" -out "$T/o.pem" -days 2 >/dev/null 2>&1
if certtool --verify --load-ca-certificate "$T/o.pem" --infile "$T/chain.1" >/dev/null 2>&1; then
	bad "certtool verified the chain with another root"
else ok; fi
# An unknown profile: exit 3 before anything runs, naming the key and the
# places looked in.
"$IMPRINT" --data-dir "$T/other" demo --boards 1 --latency 0 --cert-profile nosuch \
	>"$T/nosuch.out" 2>&1
check test $? = 3
check grep -q "certificate.profile: no certificate profile 'nosuch' (looked in" "$T/nosuch.out"
check test ! -e "$T/other/hsm"
finish
