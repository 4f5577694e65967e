# Shared by the provisioning tests: start virtual boards, write a station
# configuration for them, read a board's non-volatile state, and verify
# records with openssl only; the pass/fail counters. Source it after setting
# IMPRINT and VBOARD (the token tests' tokens_lib.sh builds on it).
set -uo pipefail

T=$(mktemp -d)
DATA=$T/data
VB_PID=
PIDS=() # other processes a test starts: stopped by PID at exit
pass=0
fail=0

cleanup() {
	[ -n "$VB_PID" ] && kill "$VB_PID" 2>/dev/null && wait "$VB_PID" 2>/dev/null
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	# KEEP=1 keeps the folder for a post-mortem.
	if [ -n "${KEEP:-}" ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT

ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
check() { if "$@"; then ok; else bad "$*"; fi; }
finish() {
	echo "$pass passed, $fail failed"
	[ "$fail" = 0 ]
}

# One-off set-up of the data directory: embedded HSM, hierarchy and a signed
# demo firmware image (DATA/demo/firmware.bin/.sig), through one demo board;
# then the psk master, which only key mode psk needs (docs/HSM.md).
prepare() {
	"$IMPRINT" -q --data-dir "$DATA" demo --boards 1 --latency 0 >/dev/null 2>"$T/prepare.err" &&
		"$IMPRINT" -q --data-dir "$DATA" hsm init --psk-master >/dev/null 2>>"$T/prepare.err" || {
		cat "$T/prepare.err"
		return 1
	}
}

# start_vboard STATE_DIR N [vboard options...]: endpoints in $T/endpoints
start_vboard() {
	local dir=$1 n=$2
	shift 2
	rm -f "$T/endpoints" "$T/vb.ready"
	"$VBOARD" --boards "$n" --state-dir "$dir" --latency "${LATENCY:-0}" \
		--endpoints "$T/endpoints" "$@" >"$T/vb.ready" 2>>"$T/vboard.log" &
	VB_PID=$!
	for _ in $(seq 1 200); do
		grep -q '"ready"' "$T/vb.ready" 2>/dev/null && return 0
		kill -0 "$VB_PID" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

stop_vboard() {
	[ -n "$VB_PID" ] && kill "$VB_PID" 2>/dev/null && wait "$VB_PID" 2>/dev/null
	VB_PID=
}

# endpoint_field NAME LINE: a string member of a line of $T/endpoints.
endpoint_field() { printf '%s' "$2" | sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }

# The board's RSP server, as a probe URI (a line of $T/endpoints).
rsp_probe() { endpoint_field rsp "$1"; }

# fixtures_json [PROBE_FN [ENDPOINTS]]: the fixtures of the boards in
# ENDPOINTS (default $T/endpoints), as the members of a configuration's
# "fixtures" array (F1, F2, ...), each probe made by PROBE_FN from the
# board's line (default rsp_probe: its RSP server); nothing without the file.
fixtures_json() {
	local probe_fn=${1:-rsp_probe} ep=${2:-$T/endpoints} fixtures="" i=0 probe line
	[ -f "$ep" ] || return 0
	while IFS= read -r line; do
		probe=$("$probe_fn" "$line")
		[ -n "$probe" ] || continue
		i=$((i + 1))
		fixtures="$fixtures${fixtures:+,}{\"name\":\"F$i\",\"probe\":\"$probe\",\"uart\":\"$(endpoint_field uart "$line")\"}"
	done <"$ep"
	printf '%s' "$fixtures"
}

# write_config FILE KEY_MODE [EXTRA_JSON_MEMBERS]: fixtures from $T/endpoints
write_config() {
	local file=$1 mode=$2 extra=${3:-}
	local fixtures
	fixtures=$(fixtures_json)
	cat >"$file" <<EOC
{"version": 1, "station_id": "demo-station", "key_mode": "$mode",
 "product": {"sku": "TEST-S1"}, "serial": {"prefix": "TST", "width": 6},
 "firmware": {"image": "$DATA/demo/firmware.bin", "signature": "$DATA/demo/firmware.sig"},
 "fixtures": [$fixtures]${extra:+, $extra}}
EOC
}

# config_boards FILE SERIAL_PREFIX LETTER I...: a configuration (key mode
# $MODE, device by default) with fixtures LETTER1, LETTER2... on boards I...
# (0-based lines) of $T/endpoints.
config_boards() {
	local file=$1 prefix=$2 letter=$3 fixtures="" k=0 line i
	shift 3
	for i in "$@"; do
		k=$((k + 1))
		line=$(sed -n "$((i + 1))p" "$T/endpoints")
		fixtures="$fixtures${fixtures:+,}{\"name\":\"$letter$k\",\"probe\":\"$(rsp_probe "$line")\",\"uart\":\"$(endpoint_field uart "$line")\"}"
	done
	cat >"$file" <<EOC
{"version": 1, "station_id": "demo-station", "key_mode": "${MODE:-device}",
 "serial": {"prefix": "$prefix", "width": 6},
 "firmware": {"image": "$DATA/demo/firmware.bin", "signature": "$DATA/demo/firmware.sig"},
 "fixtures": [$fixtures]}
EOC
}

# Non-volatile state of a virtual board (docs/VBOARD.md): UID and fuses.
board_uid() { od -An -tx1 -j16 -N16 "$1/nv.img" | tr -d ' \n'; }
board_fuses() { od -An -tu4 -j32 -N4 "$1/nv.img" | tr -d ' \n'; }

sql() { sqlite3 "$DATA/journal.sqlite" "$@"; }

# ctl COMMAND: one command to the vboard's control port $CTL, its answer on stdout
ctl() {
	exec 9<>"/dev/tcp/127.0.0.1/$CTL" || return 1
	printf '%s\n' "$1" >&9
	local reply
	IFS= read -r -t 5 reply <&9
	exec 9>&-
	printf '%s\n' "$reply"
}
# wait_done N [TENTHS]: until done_count (the test's own) says N, while
# $PROV_PID runs, at most TENTHS tenths of a second (default 200)
wait_done() {
	for _ in $(seq 1 "${2:-200}"); do
		[ "$(done_count)" = "$1" ] && return 0
		kill -0 "$PROV_PID" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

b64url_decode() {
	local s
	s=$(printf '%s' "$1" | tr '_-' '/+')
	case $((${#s} % 4)) in
	2) s="$s==" ;;
	3) s="$s=" ;;
	esac
	printf '%s' "$s" | openssl base64 -d -A
}

pem_from_b64() {
	echo "-----BEGIN CERTIFICATE-----"
	printf '%s' "$1" | fold -w 64
	echo
	echo "-----END CERTIFICATE-----"
}

# verify_record_openssl JWS: checks with the openssl command line only that
# the ES256 JWS is signed by the record-signing certificate in its x5c, that
# certificate chains to the root, and the device certificate in the payload
# chains to the root through the device CA. Prints the payload on success.
verify_record_openssl() {
	local jws=$1 d h p s r sv x5c0 cert
	d=$(mktemp -d "$T/jws.XXXXXX")
	IFS=. read -r h p s <<<"$jws"
	b64url_decode "$h" >"$d/header.json"
	b64url_decode "$p" >"$d/payload.json"
	b64url_decode "$s" >"$d/sig.raw"
	grep -q '"alg":"ES256"' "$d/header.json" || return 1
	[ "$(stat -c %s "$d/sig.raw")" = 64 ] || return 1
	printf '%s' "$h.$p" >"$d/input"
	x5c0=$(sed -n 's/.*"x5c":\["\([^"]*\)".*/\1/p' "$d/header.json")
	pem_from_b64 "$x5c0" >"$d/signer.pem"
	openssl verify -CAfile "$DATA/trust/root-ca.pem" "$d/signer.pem" >/dev/null 2>&1 || return 1
	cmp -s <(openssl x509 -in "$d/signer.pem" -outform DER) \
		<(openssl x509 -in "$DATA/trust/record-signing.pem" -outform DER) || return 1
	openssl x509 -in "$d/signer.pem" -pubkey -noout >"$d/pub.pem"
	r=$(od -An -tx1 -N32 "$d/sig.raw" | tr -d ' \n')
	sv=$(od -An -tx1 -j32 -N32 "$d/sig.raw" | tr -d ' \n')
	printf 'asn1=SEQUENCE:sig\n[sig]\nr=INTEGER:0x%s\ns=INTEGER:0x%s\n' "$r" "$sv" >"$d/sig.cnf"
	openssl asn1parse -genconf "$d/sig.cnf" -out "$d/sig.der" >/dev/null || return 1
	openssl dgst -sha256 -verify "$d/pub.pem" -signature "$d/sig.der" "$d/input" >/dev/null 2>&1 ||
		return 1
	cert=$(sed -n 's/.*"device_certificate":"\([^"]*\)".*/\1/p' "$d/payload.json")
	if [ -n "$cert" ]; then
		pem_from_b64 "$cert" >"$d/device.pem"
		openssl verify -CAfile "$DATA/trust/root-ca.pem" -untrusted "$DATA/trust/device-ca.pem" \
			-purpose sslclient "$d/device.pem" >/dev/null 2>&1 || return 1
	fi
	cat "$d/payload.json"
}
