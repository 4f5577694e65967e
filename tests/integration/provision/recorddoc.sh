#!/usr/bin/env bash
# docs/RECORD.md "Verifying with openssl only", run literally: the shell
# block is copied out of the document and run with sh -e in a directory
# holding the files it names (root.pem, record-signer.pem, device-ca.pem,
# record.jws), on a record the station made; then on a record whose
# payload was altered by one byte, which it must refuse.
IMPRINT=$1
VBOARD=$2
. "$(dirname "$0")/lib.sh"
doc=$(cd "$(dirname "$0")/../../.." && pwd)/docs/RECORD.md
prepare || exit 1

steps=$T/steps.sh
awk '/^## Verifying with openssl only/ { f = 1 } f && /^```sh$/ { c = 1; next }
	c && /^```$/ { exit } c' "$doc" >"$steps"
check test -s "$steps"
check grep -q "openssl dgst -sha256 -verify record-signer.pub" "$steps"

setup_dir() {
	mkdir -p "$1"
	cp "$DATA/trust/root-ca.pem" "$1/root.pem"
	cp "$DATA/trust/record-signing.pem" "$1/record-signer.pem"
	cp "$DATA/trust/device-ca.pem" "$1/device-ca.pem"
	cp "$steps" "$1/steps.sh"
}

# 1. A record the station made: every step passes.
setup_dir "$T/good"
# Taken out the documented way (docs/RECORD.md "Getting the records out"):
# the same bytes as the journal's outbox holds.
"$IMPRINT" -q --data-dir "$DATA" records --jws | head -1 >"$T/good/record.jws"
check cmp -s "$T/good/record.jws" <(sql "select jws from outbox where kind = 'identity' \
	order by created, rowid limit 1")
(cd "$T/good" && sh -e steps.sh) >"$T/good.out" 2>&1
check test $? = 0
check grep -q '"alg":"ES256"' "$T/good.out"
check grep -q '"typ":"imprint-record+jws"' "$T/good.out"
check grep -q "^record-signer.pem: OK" "$T/good.out"
check grep -q "^Verified OK" "$T/good.out"
check grep -q "^device.pem: OK" "$T/good.out"
check grep -q '"record_version":1' "$T/good/record.json"
check cmp -s <(openssl x509 -in "$T/good/x5c0.pem" -outform DER) \
	<(openssl x509 -in "$T/good/record-signer.pem" -outform DER)

# 2. One payload byte altered (re-encoded): step 4 refuses, sh -e stops.
setup_dir "$T/bad"
python3 - "$T/good/record.jws" >"$T/bad/record.jws" <<'PY'
import base64, sys
h, p, s = open(sys.argv[1]).read().strip().split(".")
raw = bytearray(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
raw[raw.index(b'"sku":"') + 7] ^= 0x01
print(h + "." + base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=") + "." + s)
PY
(cd "$T/bad" && sh -e steps.sh) >"$T/bad.out" 2>&1
check test $? != 0
check grep -q "Verification failure" "$T/bad.out"
check test ! -e "$T/bad/record.json"
[ "$fail" = 0 ] || { cat "$T/good.out"; cat "$T/bad.out"; }
finish
