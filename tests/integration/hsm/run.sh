#!/usr/bin/env bash
# imprint hsm init / status / export-trust on the embedded default, checked
# with tools that are not imprint's: openssl verify and pkcs11-tool.
set -uo pipefail
imprint=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
data=$tmp/data
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
check() { if "$@"; then ok; else bad "$*"; fi; }

"$imprint" -vv --data-dir "$data" hsm init >"$tmp/init.out" 2>"$tmp/init.err"
check test $? = 0
pin=$(sed -n 's/^user=//p' "$data/hsm/pins")
so=$(sed -n 's/^so=//p' "$data/hsm/pins")
check test -n "$pin"
check test "$(stat -c %a "$data/hsm/pins")" = 600

# Every issued certificate chains to the root, checked by openssl.
for c in device-ca record-signing code-signing revocation; do
	check openssl verify -CAfile "$data/trust/root-ca.pem" "$data/trust/$c.pem"
done
# Extensions: CA pathlen, key usage, EKU, SKI/AKI.
openssl x509 -in "$data/trust/root-ca.pem" -noout -text >"$tmp/root.txt"
check grep -q "CA:TRUE, pathlen:1" "$tmp/root.txt"
openssl x509 -in "$data/trust/device-ca.pem" -noout -text >"$tmp/dca.txt"
check grep -q "CA:TRUE, pathlen:0" "$tmp/dca.txt"
check grep -q "Authority Key Identifier" "$tmp/dca.txt"
check grep -q "Subject Key Identifier" "$tmp/dca.txt"
openssl x509 -in "$data/trust/code-signing.pem" -noout -text >"$tmp/code.txt"
check grep -q "Code Signing" "$tmp/code.txt"
check grep -q "CA:FALSE" "$tmp/code.txt"

# pkcs11-tool, pointed at the token's own softhsm2.conf: every private key
# and the secret key are sensitive and never extractable.
SOFTHSM2_CONF=$data/hsm/softhsm2.conf pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so \
	--token-label imprint --login --pin "$pin" --list-objects >"$tmp/objs.txt" 2>&1
# The default key mode is device: no psk master unless asked for.
check test "$(grep -c '^Private Key Object; EC' "$tmp/objs.txt")" = 5
check test "$(grep -c '^Secret Key Object; AES' "$tmp/objs.txt")" = 0
check test "$(grep -A5 -E '^(Private|Secret) Key Object' "$tmp/objs.txt" | grep -c 'Access: *sensitive, always sensitive, never extractable')" = 5
check test "$(grep -c '^Certificate Object' "$tmp/objs.txt")" = 5
check grep -q "psk      no: lacks the psk master" "$tmp/init.out"
# --psk-master adds only the psk master to the existing hierarchy.
"$imprint" --data-dir "$data" hsm init --psk-master >"$tmp/psk.out" 2>"$tmp/psk.err"
check test $? = 0
check grep -q "added the psk master 'imprint-psk-master' to the existing hierarchy" "$tmp/psk.err"
check grep -q "psk      yes" "$tmp/psk.out"
SOFTHSM2_CONF=$data/hsm/softhsm2.conf pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so \
	--token-label imprint --login --pin "$pin" --list-objects >"$tmp/objs.txt" 2>&1
check test "$(grep -c '^Private Key Object; EC' "$tmp/objs.txt")" = 5
check test "$(grep -c '^Secret Key Object; AES' "$tmp/objs.txt")" = 1
check test "$(grep -A5 -E '^(Private|Secret) Key Object' "$tmp/objs.txt" | grep -c 'Access: *sensitive, always sensitive, never extractable')" = 6
check test "$(grep -c '^Certificate Object' "$tmp/objs.txt")" = 5

# A second init without --force changes nothing, and says so.
# token.object is SoftHSM's token metadata, rewritten on every login; the
# objects are the other files, and pkcs11-tool lists them independently.
# tokens.copy is the guard's copy of the token files, which takes up the
# objects the first init created at the next open.
snap() {
	(cd "$data" && find hsm trust -type f ! -name token.object ! -path 'hsm/tokens.copy/*' \
		-exec sha256sum {} + | sort)
	SOFTHSM2_CONF=$data/hsm/softhsm2.conf pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so \
		--token-label imprint --login --pin "$pin" --list-objects 2>/dev/null
}
snap >"$tmp/before"
"$imprint" --data-dir "$data" hsm init >/dev/null 2>"$tmp/init2.err"
check test $? = 10
check grep -q "nothing was changed" "$tmp/init2.err"
snap >"$tmp/after"
check cmp -s "$tmp/before" "$tmp/after"

# status: ok, exit 0; export-trust writes the 5 certificates.
"$imprint" -vv --data-dir "$data" --json hsm status >"$tmp/status.json" 2>"$tmp/status.err"
check test $? = 0
check grep -q '"ok":true' "$tmp/status.json"
"$imprint" --data-dir "$data" hsm export-trust --out "$tmp/bundle.pem" >/dev/null
check test "$(grep -c 'BEGIN CERTIFICATE' "$tmp/bundle.pem")" = 5

# A configured HSM with a PIN from the environment; a wrong PIN gives a
# clear message and exit 7 (IMP_ERR_PIN).
cat >"$tmp/station.json" <<EOC
{"version": 1, "hsm": {"module": "/usr/lib/softhsm/libsofthsm2.so",
 "token": "pkcs11:token=imprint", "pin": {"env": "TEST_HSM_PIN"}}}
EOC
SOFTHSM2_CONF=$data/hsm/softhsm2.conf TEST_HSM_PIN=$pin \
	"$imprint" -vv --data-dir "$data" --config "$tmp/station.json" hsm status >/dev/null 2>"$tmp/good.err"
check test $? = 0
SOFTHSM2_CONF=$data/hsm/softhsm2.conf TEST_HSM_PIN=0000wrong \
	"$imprint" --data-dir "$data" --config "$tmp/station.json" hsm status >/dev/null 2>"$tmp/wrong.err"
check test $? = 7
check grep -q "wrong user pin" "$tmp/wrong.err"
check grep -q "environment variable TEST_HSM_PIN" "$tmp/wrong.err"
check grep -vq "0000wrong" "$tmp/wrong.err"
# A PIN file readable by others is refused (exit 13).
echo "$pin" >"$tmp/pin.txt"
chmod 644 "$tmp/pin.txt"
sed "s|{\"env\": \"TEST_HSM_PIN\"}|{\"file\": \"$tmp/pin.txt\"}|" "$tmp/station.json" >"$tmp/station-file.json"
SOFTHSM2_CONF=$data/hsm/softhsm2.conf \
	"$imprint" --data-dir "$data" --config "$tmp/station-file.json" hsm status >/dev/null 2>"$tmp/perm.err"
check test $? = 13
chmod 600 "$tmp/pin.txt"
SOFTHSM2_CONF=$data/hsm/softhsm2.conf \
	"$imprint" --data-dir "$data" --config "$tmp/station-file.json" hsm status >/dev/null 2>&1
check test $? = 0
# No PIN option exists on the command line.
"$imprint" --data-dir "$data" hsm status --pin "$pin" >/dev/null 2>&1
check test $? = 2

# A configured hsm whose token is missing: imprint says what the module shows
# and never creates one (an empty token directory, then the embedded token's
# directory, which holds "imprint" but not the configured token).
mkdir -p "$tmp/empty-tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
	"$tmp/empty-tokens" >"$tmp/empty.conf"
printf '{"version":1,"station_id":"s1","hsm":{"module":"/usr/lib/softhsm/libsofthsm2.so",
 "token":"pkcs11:token=nosuch","pin":{"env":"CFG_PIN"}}}\n' >"$tmp/configured.json"
CFG_PIN=1234 SOFTHSM2_CONF=$tmp/empty.conf "$imprint" --data-dir "$tmp/other" \
	--config "$tmp/configured.json" hsm status >/dev/null 2>"$tmp/cfg1.err"
check test $? = 9
check grep -q "shows no initialised token.*never creates a token on a configured hsm" "$tmp/cfg1.err"
check test -z "$(ls "$tmp/empty-tokens")"
CFG_PIN=1234 SOFTHSM2_CONF=$data/hsm/softhsm2.conf "$imprint" --data-dir "$tmp/other" \
	--config "$tmp/configured.json" hsm status >/dev/null 2>"$tmp/cfg2.err"
check test $? = 9
check grep -q 'shows "imprint" but not pkcs11:token=nosuch: correct hsm.token' "$tmp/cfg2.err"

# The embedded token keeps a verified copy; a token.object emptied (as a
# kill inside C_Login leaves it) or cut short is restored before softhsm
# reads it, and the token opens.
tobj=$(ls "$data"/hsm/tokens/*/token.object)
check test -s "$(ls "$data"/hsm/tokens.copy/*/token.object)"
: >"$tobj"
"$imprint" --data-dir "$data" hsm status >/dev/null 2>"$tmp/restore1.err"
check test $? = 0
check grep -q "token.object was empty.*restored from its verified copy" "$tmp/restore1.err"
head -c 100 "$tobj" >"$tmp/cut" && cat "$tmp/cut" >"$tobj"
"$imprint" --data-dir "$data" hsm status >/dev/null 2>"$tmp/restore2.err"
check test $? = 0
check grep -q "token.object was cut short" "$tmp/restore2.err"

# The PINs appear in no output or log, and in no file but the pins file
# (the token files are SoftHSM's own, encrypted under the PIN-derived key).
for f in "$tmp"/*.out "$tmp"/*.err "$tmp"/*.json "$tmp"/*.txt; do
	[ "$f" = "$tmp/pin.txt" ] && continue
	if grep -q -e "$pin" -e "$so" "$f"; then bad "pin found in $f"; else ok; fi
done
if grep -rlq -e "$pin" -e "$so" --exclude=pins "$data"; then bad "pin found in a data file"; else ok; fi

# A plain init that fails half-way rolls back, and says so (not "--force"):
# the trust directory cannot be created, after the keys were.
data2=$tmp/data2
mkdir -p "$data2"
: >"$data2/trust"
"$imprint" --data-dir "$data2" hsm init >/dev/null 2>"$tmp/rollback.err"
check test $? != 0
check grep -q "destroyed private object 'imprint-root-ca' (rolling back the failed init)" "$tmp/rollback.err"
if grep -q -- "--force)" "$tmp/rollback.err"; then bad "rollback logged as --force"; else ok; fi
rm "$data2/trust"
"$imprint" --data-dir "$data2" hsm init >/dev/null 2>"$tmp/retry.err"
check test $? = 0

# hsm tokens: the embedded token with its RFC 7512 uri; one module only.
"$imprint" --data-dir "$data" hsm tokens --module softhsm2 >"$tmp/tokens.out" 2>"$tmp/tokens.err"
check test $? = 0
check grep -q '^module softhsm2: SoftHSM' "$tmp/tokens.out"
check grep -q "pkcs11:library-description=Implementation%20of%20PKCS11;library-manufacturer=SoftHSM" "$tmp/tokens.out"
check grep -Eq '^    token "imprint" \(SoftHSM project SoftHSM v2, serial [0-9a-f]+\)$' "$tmp/tokens.out"
check grep -Eq '^      pkcs11:model=SoftHSM%20v2;manufacturer=SoftHSM%20project;serial=[0-9a-f]+;token=imprint$' "$tmp/tokens.out"
check grep -q 'pkcs11:slot-description=SoftHSM%20slot%20ID%200x' "$tmp/tokens.out"
"$imprint" --data-dir "$data" --json hsm tokens --module softhsm2 >"$tmp/tokens.json" 2>/dev/null
check grep -q '"label":"imprint"' "$tmp/tokens.json"
check test "$(wc -l <"$tmp/tokens.json")" = 1

# Modules by any p11-kit name, loading only that one: Debian registers
# softhsm2, opensc-pkcs11, p11-kit-trust and tpm2_pkcs11; naming softhsm2
# must load SoftHSM's library and no other registered module's (the dynamic
# loader's record shows every library loaded).
sed 's|"module": "/usr/lib/softhsm/libsofthsm2.so"|"module": "softhsm2"|' "$tmp/station.json" >"$tmp/station-name.json"
check grep -q '"softhsm2"' "$tmp/station-name.json"
SOFTHSM2_CONF=$data/hsm/softhsm2.conf TEST_HSM_PIN=$pin \
	"$imprint" --data-dir "$data" --config "$tmp/station-name.json" hsm status >"$tmp/name.out" 2>"$tmp/name.err"
check test $? = 0
check grep -q "status: ok" "$tmp/name.out"
SOFTHSM2_CONF=$data/hsm/softhsm2.conf TEST_HSM_PIN=$pin LD_DEBUG=files \
	"$imprint" --data-dir "$data" --config "$tmp/station-name.json" hsm status >/dev/null 2>"$tmp/ld.err"
check grep -q "file=/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so .*dynamically loaded" "$tmp/ld.err"
if grep "dynamically loaded" "$tmp/ld.err" | grep -v libsofthsm2.so | grep -q -e pkcs11 -e p11-kit-trust; then
	bad "another pkcs11 module was loaded"
else
	ok
fi
# hsm tokens lists every registered module (tpm2_pkcs11, without a TPM,
# as an error) and goes on with the others.
SOFTHSM2_CONF=$data/hsm/softhsm2.conf \
	"$imprint" --data-dir "$data" --config "$tmp/station-name.json" hsm tokens >"$tmp/all.out" 2>"$tmp/all.err"
check test $? = 0
check grep -q '^module softhsm2: SoftHSM' "$tmp/all.out"
check grep -q '^module p11-kit-trust: PKCS#11 Kit' "$tmp/all.out"
check grep -q '^module opensc-pkcs11: OpenSC Project' "$tmp/all.out"
check test "$(grep -c '^module softhsm2' "$tmp/all.out")" = 1
# An unknown name, and an unknown token, say where to look (exit 9).
sed 's|"softhsm2"|"no-such-module"|' "$tmp/station-name.json" >"$tmp/station-bad.json"
TEST_HSM_PIN=$pin "$imprint" --data-dir "$data" --config "$tmp/station-bad.json" \
	hsm status >/dev/null 2>"$tmp/badmod.err"
check test $? = 9
check grep -q "no p11-kit module named no-such-module: 'imprint hsm tokens' lists the registered modules" "$tmp/badmod.err"
sed 's|pkcs11:token=imprint|pkcs11:token=elsewhere|' "$tmp/station.json" >"$tmp/station-tok.json"
SOFTHSM2_CONF=$data/hsm/softhsm2.conf TEST_HSM_PIN=$pin \
	"$imprint" --data-dir "$data" --config "$tmp/station-tok.json" hsm status >/dev/null 2>"$tmp/badtok.err"
check test $? = 9
check grep -q "no initialised token pkcs11:token=elsewhere on this pkcs11 module: 'imprint hsm tokens' lists" "$tmp/badtok.err"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
