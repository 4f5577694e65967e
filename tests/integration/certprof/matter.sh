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
"$IMPRINT" --data-dir "$DATA" --json hsm status >"$T/status.json" 2>&1
check grep -q '"certificate_profile": *"matter-dac"' "$T/status.json"

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

# The DAC keys were made on the boards (key mode device): the only private
# keys on the station's disk, outside the virtual boards' own state, are the
# demo registry's TLS keys; the journal names the boards' public keys only.
keys=$(grep -rl "PRIVATE KEY" "$DATA" | grep -v "^$DATA/demo/boards\." | sort | tr '\n' ' ')
check test "$keys" = "$DATA/demo/registry/tls/ca.key $DATA/demo/registry/tls/client.key $DATA/demo/registry/tls/server.key "
check test "$(sql "select count(*) from events where detail like '%priv%' or detail like '%\"d\":%'")" = 0
for i in $(seq 1 "$n"); do
	pub=$(openssl x509 -in "$T/c/$i.pem" -noout -pubkey | openssl pkey -pubin -outform DER | tail -c 65 | od -An -tx1 | tr -d ' \n')
	check test "$(sql "select count(*) from events where detail like '%$pub%'")" -ge 1
done

# The hierarchy is Matter's: a demo with another device profile is refused.
"$IMPRINT" --data-dir "$DATA" demo --boards 1 --latency 0 >"$T/other.out" 2>"$T/other.err"
check test $? = 3
check grep -q "made for certificate profile 'matter-dac', not 'default'" "$T/other.err"
# The same through a station configuration: provisioning with the default
# profile against this hierarchy is refused before any board is touched.
/usr/bin/python3 - "$DATA/demo/station-device.json" "$T/plain.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
assert c["certificate"] == {"profile": "matter-dac"}, c.get("certificate")
assert c["matter"] == {"vendor_id": "FFF1", "product_id": "8000"}, c.get("matter")
del c["certificate"], c["matter"]
json.dump(c, open(sys.argv[2], "w"))
PY
check test $? = 0
"$IMPRINT" --data-dir "$DATA" --config "$T/plain.json" provision >"$T/plain.out" 2>&1
check test $? = 3
check grep -q "made for certificate profile 'matter-dac', and certificate.profile is 'default'" \
	"$T/plain.out"

# A profile of the configuration's own folder with a bad field: exit 3, the
# field named; and one that would outlive its issuer (matter-pai: 7300 days).
mkdir -p "$T/cfg/certprofiles"
sed 's/"name": "matter-dac"/"name": "mine"/; s/"ca": false/"ca": false, "path_len": 0/' \
	"$(dirname "$0")/../../../certprofiles/matter-dac.json" >"$T/cfg/certprofiles/mine.json"
sed 's/"profile": "matter-dac"/"profile": "mine"/' "$DATA/demo/station-device.json" >"$T/cfg/station.json"
"$IMPRINT" --data-dir "$DATA" --config "$T/cfg/station.json" provision >"$T/mine.out" 2>&1
check test $? = 3
check grep -q "certificate profile 'mine' ($T/cfg/certprofiles/mine.json): basic_constraints.path_len: not allowed when ca is false" "$T/mine.out"
sed 's/"name": "matter-dac"/"name": "mine"/; s/"serial_bytes": 16,/"serial_bytes": 16, "validity": {"days": 7301},/' \
	"$(dirname "$0")/../../../certprofiles/matter-dac.json" >"$T/cfg/certprofiles/mine.json"
"$IMPRINT" --data-dir "$DATA" --config "$T/cfg/station.json" provision >"$T/mine.out" 2>&1
check test $? = 3
check grep -q "validity.days: 7301 days would outlive the issuer 'matter-pai'" "$T/mine.out"
finish
