#!/usr/bin/env bash
# The file exports import as they are (docs/EXPORT.md), checked with the
# cloud formats' own rules and with openssl alone. Usage: formats.sh IMPRINT SRCDIR
#  - aws-iot: every line's parameters are declared by the shipped template,
#    which is well formed; the CA verification certificate verifies against
#    the device CA and carries the registration code as CN;
#  - azure-dps: every bulk body parses with <= 10 enrollments, registration ID
#    = certificate CN, the group document holds the device CA; a subject CN
#    that is not {serial} is refused before anything is written;
#  - microchip-manifest: every entry verifies with openssl dgst against the
#    record-signing certificate; a forged one does not;
#  - the same export twice gives the same bytes: ECDSA in the HSM draws a
#    fresh nonce per signature, so signatures are kept per digest and reused
#    once they verify; a damaged stored signature is signed afresh.
set -uo pipefail
imprint=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
data=$tmp/data
out=$tmp/out
mkdir -p "$out"
"$imprint" --data-dir "$data" demo --boards 12 --latency 0 >"$tmp/demo.out" 2>"$tmp/demo.err" ||
	{ cat "$tmp/demo.err"; fail "demo"; }
cfg=$data/demo/station-device.json
trust=$data/trust
I() { "$imprint" --data-dir "$data" --config "$cfg" "$@"; }
X() { # driver, out, more...
	local d=$1 o=$2; shift 2
	I export --driver "$d" --out "$o" "$@" >"$tmp/x.out" 2>"$tmp/x.err" ||
		{ cat "$tmp/x.err"; fail "export --driver $d --out $o"; }
}

# ---- aws-iot: lines + template -------------------------------------------
X aws-iot "$out/things.jsonl"
[ -f "$out/things.template.json" ] || fail "no template beside things.jsonl"
cmp -s "$out/things.template.json" "$src/backend-export/aws-iot-template.json" ||
	fail "the written template is not the shipped one"
python3 - "$out/things.jsonl" "$out/things.template.json" <<'PY' || fail "aws-iot lines vs template"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
t = json.load(open(sys.argv[2]))
assert set(t) == {"Parameters", "Resources"}, set(t)
params = t["Parameters"]
for name, p in params.items():
    assert set(p) <= {"Type", "Default"} and p["Type"] == "String", (name, p)
refs = []
def walk(v):
    if isinstance(v, dict):
        if set(v) == {"Ref"}:
            refs.append(v["Ref"])
        for x in v.values():
            walk(x)
    elif isinstance(v, list):
        for x in v:
            walk(x)
types = {"AWS::IoT::Thing", "AWS::IoT::Certificate", "AWS::IoT::Policy"}
for name, r in t["Resources"].items():
    assert r["Type"] in types, (name, r["Type"])
    walk(r["Properties"])
    if r["Type"] == "AWS::IoT::Thing":
        # without a thing type AWS IoT keeps at most three attributes
        assert len(r["Properties"].get("AttributePayload", {})) <= 3
assert sorted(r["Type"] for r in t["Resources"].values()) == sorted(types)
undeclared = set(refs) - set(params)
assert not undeclared, f"Refs to undeclared parameters: {undeclared}"
unused = set(params) - set(refs)
assert not unused, f"declared, never used: {unused}"
required = {n for n, p in params.items() if "Default" not in p}
assert len(lines) == 12, len(lines)
for l in lines:
    extra = set(l) - set(params)
    assert not extra, f"line uses undeclared parameters {extra}"
    assert required <= set(l), f"line lacks {required - set(l)}"
    assert all(isinstance(v, str) for v in l.values())
    assert l["CertificatePem"].startswith("-----BEGIN CERTIFICATE-----\n")
assert len({l["ThingName"] for l in lines}) == 12
print("aws-iot: %d lines, parameters %s all declared" % (len(lines), sorted(set(lines[0]))))
PY
# a line's certificate is the device's: it chains to the organisation's root
python3 -c "import json,sys; print(json.loads(open(sys.argv[1]).readline())['CertificatePem'], end='')" \
	"$out/things.jsonl" >"$tmp/line0.pem"
cat "$trust/root-ca.pem" "$trust/device-ca.pem" >"$tmp/chain.pem"
openssl verify -CAfile "$tmp/chain.pem" "$tmp/line0.pem" >/dev/null || fail "line 1's certificate"

# ---- the CA verification certificate ---------------------------------------
code=$(openssl rand -hex 32)
# nothing new on disk (the token guard's own copy of the token aside), no
# new object on the token: the key pair lived in memory only
files() { (cd "$data" && find . -type f -not -path './hsm/tokens.copy/*' | sort); }
files >"$tmp/files.before"
I hsm ca-verification-cert --code "$code" --out "$out/verification.pem" >"$tmp/vc.out" 2>"$tmp/vc.err" ||
	{ cat "$tmp/vc.err"; fail "hsm ca-verification-cert"; }
files >"$tmp/files.after"
diff "$tmp/files.before" "$tmp/files.after" || fail "ca-verification-cert wrote into the data dir"
openssl verify -CAfile "$tmp/chain.pem" "$out/verification.pem" || fail "verification cert vs device CA"
openssl verify -CAfile "$trust/root-ca.pem" "$out/verification.pem" >/dev/null 2>&1 &&
	fail "the verification cert verifies without the device CA: not signed by it"
cn=$(openssl x509 -in "$out/verification.pem" -noout -subject -nameopt sep_multiline,sname |
	sed -n 's/^ *CN=//p')
[ "$cn" = "$code" ] || fail "verification cert CN '$cn' is not the code '$code'"
[ "$(openssl x509 -in "$out/verification.pem" -noout -issuer)" = \
  "$(openssl x509 -in "$trust/device-ca.pem" -noout -subject | sed 's/^subject/issuer/')" ] ||
	fail "verification cert issuer is not the device CA"
grep -q "register-ca-certificate" "$tmp/vc.err" || fail "no next step named"
I hsm ca-verification-cert --code "not-hex" >/dev/null 2>"$tmp/vc.err"
[ $? = 2 ] && grep -q "not a registration code" "$tmp/vc.err" || fail "a bad code is not refused"

# ---- azure-dps: bulk bodies + enrollment group -----------------------------
X azure-dps "$out/dps"
openssl x509 -in "$trust/device-ca.pem" -outform DER | base64 -w0 >"$tmp/ca.b64"
python3 - "$out/dps" "$tmp/ca.b64" <<'PY' || fail "azure-dps bodies"
import base64, glob, json, os, subprocess, sys
d = sys.argv[1]
names = sorted(os.listdir(d))
bodies = sorted(glob.glob(os.path.join(d, "bulk-*.json")))
assert names == sorted([os.path.basename(b) for b in bodies] + ["enrollment-group.json"]), names
assert [os.path.basename(b) for b in bodies] == ["bulk-001.json", "bulk-002.json"], bodies
ids = []
for b in bodies:
    body = json.load(open(b))
    assert set(body) == {"mode", "enrollments"} and body["mode"] == "create", body.keys()
    assert 1 <= len(body["enrollments"]) <= 10, (b, len(body["enrollments"]))
    for e in body["enrollments"]:
        der = base64.b64decode(e["attestation"]["x509"]["clientCertificates"]["primary"]["certificate"])
        subj = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-subject",
                               "-nameopt", "sep_multiline,sname"], input=der,
                              capture_output=True, check=True).stdout.decode()
        cn = [l.strip()[3:] for l in subj.splitlines() if l.strip().startswith("CN=")]
        assert cn == [e["registrationId"]], (cn, e["registrationId"])
        assert e["attestation"]["type"] == "x509" and e["provisioningStatus"] == "enabled"
        ids.append(e["registrationId"])
assert len(ids) == 12 and len(set(ids)) == 12, ids
g = json.load(open(os.path.join(d, "enrollment-group.json")))
assert g["attestation"]["type"] == "x509"
assert g["attestation"]["x509"]["signingCertificates"]["primary"]["certificate"] == open(sys.argv[2]).read()
assert g["enrollmentGroupId"].startswith("imprint-device-ca-") and g["provisioningStatus"] == "enabled"
print("azure-dps: %d enrollments in %d bodies, group %s" % (len(ids), len(bodies), g["enrollmentGroupId"]))
PY
# a subject CN that is not the serial: refused, nothing written
python3 - "$cfg" "$tmp/cn.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c.setdefault("certificate", {})["subject"] = {"O": "Acme", "CN": "dev-{serial}"}
json.dump(c, open(sys.argv[2], "w"))
PY
"$imprint" --data-dir "$data" --config "$tmp/cn.json" export --driver azure-dps --out "$out/dps-cn" \
	>/dev/null 2>"$tmp/cn.err"
rc=$?
[ $rc = 3 ] || { cat "$tmp/cn.err"; fail "CN dev-{serial}: want exit 3, got $rc"; }
grep -q 'CN "dev-{serial}".*set its CN to "{serial}"' "$tmp/cn.err" || { cat "$tmp/cn.err"; fail "CN refusal message"; }
[ -z "$(ls -A "$out" | grep dps-cn)" ] || fail "the refused export wrote something"
# replaced only with --force, and then as a whole (nothing of the old one stays)
touch "$out/dps/stale.json"
I export --driver azure-dps --out "$out/dps" >/dev/null 2>"$tmp/x.err"
[ $? = 10 ] && grep -q "exists: give --force" "$tmp/x.err" || { cat "$tmp/x.err"; fail "azure-dps over an existing dir"; }
X azure-dps "$out/dps" --force
[ ! -e "$out/dps/stale.json" ] || fail "a file of the old directory survived --force"
ls "$out" | grep -q "dps\.\(tmp\|old\)" && fail "temporary directories left behind"

# ---- microchip-manifest: one signed entry per device ------------------------
X microchip-manifest "$out/mchp.json"
openssl x509 -in "$trust/record-signing.pem" -pubkey -noout >"$tmp/signer.pub"
openssl x509 -in "$trust/record-signing.pem" -outform DER | openssl dgst -sha256 -binary |
	basenc --base64url | tr -d '=\n' >"$tmp/x5t"
python3 - "$out/mchp.json" "$tmp" <<'PY' || fail "splitting the manifest"
import base64, json, os, sys
m = json.load(open(sys.argv[1]))
t = sys.argv[2]
assert isinstance(m, list) and len(m) == 12, len(m)
def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
for i, e in enumerate(m):
    assert set(e) == {"payload", "protected", "header", "signature"}, e.keys()
    h = json.loads(b64d(e["protected"]))
    assert h["alg"] == "ES256" and h["typ"] == "JWT" and "kid" in h, h
    p = json.loads(b64d(e["payload"]))
    assert e["header"]["uniqueId"] == p["uniqueId"] and p["version"] == 1
    k = p["publicKeySet"]["keys"][0]
    assert k["kty"] == "EC" and k["crv"] == "P-256" and len(k["x5c"]) == 2
    sig = b64d(e["signature"])
    assert len(sig) == 64
    # r and s for openssl asn1parse -genconf, which writes the DER signature
    open(f"{t}/e{i}.cnf", "w").write("asn1=SEQUENCE:sig\n[sig]\nr=INTEGER:0x%s\ns=INTEGER:0x%s\n"
                                     % (sig[:32].hex(), sig[32:].hex()))
    open(f"{t}/e{i}.input", "w").write(e["protected"] + "." + e["payload"])
    open(f"{t}/e{i}.x5t", "w").write(h["x5t#S256"])
    open(f"{t}/e{i}.cert.pem", "w").write("-----BEGIN CERTIFICATE-----\n" + k["x5c"][0] + "\n-----END CERTIFICATE-----\n")
# a forged entry: one byte of the payload changed, the signature kept
raw = bytearray(b64d(m[0]["payload"]))
raw[raw.index(b'"uniqueId":"') + 12] ^= 0x01
forged = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
open(f"{t}/forged.input", "w").write(m[0]["protected"] + "." + forged)
PY
for i in $(seq 0 11); do
	openssl asn1parse -genconf "$tmp/e$i.cnf" -out "$tmp/e$i.sig" -noout || fail "entry $i: r||s to DER"
	openssl dgst -sha256 -verify "$tmp/signer.pub" -signature "$tmp/e$i.sig" "$tmp/e$i.input" \
		>/dev/null || fail "manifest entry $i does not verify with openssl"
	cmp -s "$tmp/e$i.x5t" "$tmp/x5t" || fail "entry $i: x5t#S256 is not the record-signing cert's"
	openssl verify -CAfile "$tmp/chain.pem" "$tmp/e$i.cert.pem" >/dev/null || fail "entry $i: x5c[0]"
done
openssl dgst -sha256 -verify "$tmp/signer.pub" -signature "$tmp/e0.sig" "$tmp/forged.input" \
	>/dev/null 2>&1 && fail "a forged manifest entry verifies"

# ---- determinism: the same export twice ------------------------------------
mkdir "$out/2"
X aws-iot "$out/2/things.jsonl"
X azure-dps "$out/2/dps"
X csv "$out/csv1"; X csv "$out/2/csv1"
X manifest "$out/m.jws"; X manifest "$out/2/m.jws"
X microchip-manifest "$out/2/mchp.json"
cmp "$out/things.jsonl" "$out/2/things.jsonl" || fail "aws-iot lines differ"
cmp "$out/things.template.json" "$out/2/things.template.json" || fail "aws-iot templates differ"
diff -r "$out/dps" "$out/2/dps" >/dev/null || fail "azure-dps directories differ"
cmp "$out/csv1" "$out/2/csv1" || fail "csv files differ"
cmp "$out/m.jws" "$out/2/m.jws" || fail "batch manifests differ"
cmp "$out/mchp.json" "$out/2/mchp.json" || fail "microchip manifests differ"
# A damaged stored signature is never reused: the entry is signed afresh and
# the manifest still verifies.
sigs=$data/export/signatures
[ "$(find "$sigs" -name '*.sig' | wc -l)" -ge 2 ] || fail "no stored signatures in $sigs"
# Byte 10 is changed, never rewritten with the value it had.
for f in "$sigs"/*.sig; do
	b=$(dd if="$f" bs=1 skip=10 count=1 status=none)
	if [ "$b" = x ]; then b=y; else b=x; fi
	printf '%s' "$b" | dd of="$f" bs=1 seek=10 conv=notrunc status=none
done
X microchip-manifest "$out/3.json"
python3 - "$out/3.json" "$out/mchp.json" <<'PY' || fail "a damaged stored signature was reused"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
assert len(a) == len(b)
assert all(x["signature"] != y["signature"] for x, y in zip(a, b))
for x, y in zip(a, b):
    x.pop("signature"); y.pop("signature")
assert a == b
PY
i=0
python3 - "$out/3.json" "$tmp" <<'PY'
import json, sys, base64
for k, e in enumerate(json.load(open(sys.argv[1]))):
    open(f"{sys.argv[2]}/d{k}.input", "w").write(e["protected"] + "." + e["payload"])
    raw = base64.urlsafe_b64decode(e["signature"] + "=" * (-len(e["signature"]) % 4))
    r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
    def der_int(v):
        b = v.to_bytes((v.bit_length() + 8) // 8, "big")
        return b"\x02" + bytes([len(b)]) + b
    body = der_int(r) + der_int(s)
    open(f"{sys.argv[2]}/d{k}.sig", "wb").write(b"\x30" + bytes([len(body)]) + body)
PY
for f in "$tmp"/d*.input; do
	openssl dgst -sha256 -verify "$tmp/signer.pub" -signature "${f%.input}.sig" "$f" >/dev/null 2>&1 ||
		fail "a re-signed entry does not verify ($f)"
	i=$((i + 1))
done
[ "$i" -ge 1 ] || fail "no entries re-checked"

# ---- a revocation disables its device's enrollment -------------------------
serial=$(python3 -c "import json,sys; print(json.loads(open(sys.argv[1]).readline())['ThingName'])" "$out/things.jsonl")
I revoke "$serial" --reason decommissioned >/dev/null 2>&1 || fail "revoke"
X azure-dps "$out/dps" --force
python3 - "$out/dps" "$serial" <<'PY' || fail "revoked enrollment"
import glob, json, sys
es = [e for b in sorted(glob.glob(sys.argv[1] + "/bulk-*.json")) for e in json.load(open(b))["enrollments"]]
assert len(es) == 12
st = {e["registrationId"]: e["provisioningStatus"] for e in es}
assert st[sys.argv[2]] == "disabled" and sum(v == "disabled" for v in st.values()) == 1, st
PY
echo "export formats: all passed"
