#!/usr/bin/env bash
# `imprint demo --cert-profile matter-dac`: every board's DAC verifies
# PAA -> PAI -> DAC with openssl's strict X.509 checks, and every field
# the Matter specification fixes for DAC, PAI and PAA holds
# (check_certs.py); the audit and the registry accept the records; a
# PAI offered as a DAC fails the field checks (they can fail); a
# hierarchy made for Matter refuses a demo with another profile.
IMPRINT=$1
VBOARD=$2
. "$(dirname "$0")/lib.sh"

"$IMPRINT" --data-dir "$DATA" demo --boards 3 --latency 0 --cert-profile matter-dac \
	>"$T/demo.out" 2>"$T/demo.err"
check test $? = 0
check grep -q "boards: 3 done, 0 already done, 0 failed" "$T/demo.out"
check grep -q "export (https): 3 accepted, 0 already there, 0 rejected" "$T/demo.out"
check grep -q "audit: 3 records (3 identities, 0 revocations), 6 signatures verified, 0 bad" \
	"$T/demo.out"
check grep -q '"profile":"matter-dac"' "$DATA/trust/certprofile.json"

PAA=$DATA/trust/root-ca.pem
PAI=$DATA/trust/device-ca.pem
n=$(record_certs "$T/c")
check test "$n" = 3
dacs=()
for i in $(seq 1 "$n"); do
	if openssl verify -x509_strict -CAfile "$PAA" -untrusted "$PAI" "$T/c/$i.pem" \
		>"$T/verify.$i" 2>&1; then ok; else bad "openssl verify DAC $i: $(cat "$T/verify.$i")"; fi
	dacs+=("$T/c/$i.pem")
done
if "$PY" "$CHECK" matter "$PAA" "$PAI" FFF1 8000 "${dacs[@]}" >"$T/fields.out" 2>&1; then
	ok
else
	bad "matter field checks: $(cat "$T/fields.out")"
fi
# Must fail: the PAI offered as a DAC (cA true, pathLen 0, keyCertSign).
if "$PY" "$CHECK" matter "$PAA" "$PAI" FFF1 8000 "$PAI" >"$T/neg.out" 2>&1; then
	bad "the field checks accepted a PAI as a DAC"
else
	check grep -q "DAC 1: cA true or pathLen present" "$T/neg.out"
	check grep -q "DAC 1: keyUsage is not exactly digitalSignature" "$T/neg.out"
fi
# Must fail: another PID than the DACs carry.
if "$PY" "$CHECK" matter "$PAA" "$PAI" FFF1 8001 "${dacs[0]}" >/dev/null 2>&1; then
	bad "the field checks accepted a wrong PID"
else ok; fi

# The hierarchy is Matter's: a demo with another device profile is refused.
"$IMPRINT" --data-dir "$DATA" demo --boards 1 --latency 0 >"$T/other.out" 2>"$T/other.err"
check test $? = 3
check grep -q "made for certificate profile 'matter-dac', not 'default'" "$T/other.err"
finish
