#!/usr/bin/env bash
# bench/hsm/run.sh BUILD_DIR [SECS]: bench-hsm on every token imprint is
# tested on, each set up here in a temporary folder and torn down after:
#   softhsm2-embedded  the embedded default (fresh)
#   softhsm2           a SoftHSM2 token by module path (the one the RPC serves)
#   nss                NSS softoken, database through init_args
#   tpm2               tpm2-pkcs11 on swtpm (loopback) behind tpm2-abrmd
#   rpc-softhsm2       the same SoftHSM2 token through p11-kit server/client
# and the per-board HSM time the RPC path adds (rpc-softhsm2 - softhsm2).
set -uo pipefail
build=${1:?usage: run.sh BUILD_DIR [SECS]}
secs=${2:-0.3}
bench=$build/bench/hsm/bench-hsm
T=$(mktemp -d)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT

out=$T/rows.txt
run() { "$bench" --secs "$secs" "$@" | tee -a "$out" | grep -v '^board_ms'; }

# SoftHSM2 token (served directly and through the RPC).
mkdir -p "$T/sh/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
	"$T/sh/tokens" >"$T/sh/softhsm2.conf"
export BENCH_PIN=bench-$RANDOM$RANDOM
SOFTHSM2_CONF=$T/sh/softhsm2.conf softhsm2-util --init-token --free --label bench \
	--so-pin "so-$BENCH_PIN" --pin "$BENCH_PIN" >/dev/null

# NSS softoken
mkdir -p "$T/nss"
printf '%s\n' "$BENCH_PIN" >"$T/nss.pw"
certutil -N -d "sql:$T/nss" -f "$T/nss.pw" >/dev/null 2>&1

# tpm2-pkcs11 on swtpm behind tpm2-abrmd
port=$((20000 + RANDOM % 20000))
mkdir -p "$T/tpm" "$T/store"
swtpm socket --tpm2 --tpmstate "dir=$T/tpm" --server "type=tcp,port=$port,bindaddr=127.0.0.1" \
	--ctrl "type=tcp,port=$((port + 1)),bindaddr=127.0.0.1" --flags not-need-init,startup-clear \
	>"$T/swtpm.log" 2>&1 &
PIDS+=($!)
dbus-daemon --session --nofork --nopidfile --address="unix:path=$T/bus" >/dev/null 2>&1 &
PIDS+=($!)
sleep 0.3
export DBUS_SESSION_BUS_ADDRESS="unix:path=$T/bus"
bus=com.intel.tss2.Tabrmd.b$$
tpm2-abrmd --session --allow-root --flush-all --max-transients=100 --dbus-name="$bus" \
	--tcti="swtpm:host=127.0.0.1,port=$port" >"$T/abrmd.log" 2>&1 &
PIDS+=($!)
export TPM2_PKCS11_TCTI="tabrmd:bus_type=session,bus_name=$bus" TPM2_PKCS11_STORE=$T/store
export TPM2_PKCS11_LOG_LEVEL=0 TPM2TOOLS_TCTI="tabrmd:bus_type=session,bus_name=$bus"
for _ in $(seq 1 100); do tpm2_getcap handles-persistent >/dev/null 2>&1 && break; sleep 0.05; done
TPM=/usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so
pkcs11-tool --module "$TPM" --init-token --label bench --so-pin "so-$BENCH_PIN" >/dev/null 2>&1
pkcs11-tool --module "$TPM" --token-label bench --login --login-type so --so-pin "so-$BENCH_PIN" \
	--init-pin --pin "$BENCH_PIN" >/dev/null 2>&1

# p11-kit server exporting the SoftHSM2 token
SOFTHSM2_CONF=$T/sh/softhsm2.conf p11-kit server --foreground --name "$T/p11.sock" \
	--provider /usr/lib/softhsm/libsofthsm2.so "pkcs11:token=bench" >/dev/null 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do [ -S "$T/p11.sock" ] && break; sleep 0.05; done

echo "bench-hsm: $(nproc) cores, $secs s per side and row; ratio = imprint / bare, goal >= 0.95"
# In-process tokens are timed in CPU time (the machine may be shared);
# tpm2 and the RPC path do their work in other processes: wall time.
run --name softhsm2-embedded --clock cpu
SOFTHSM2_CONF=$T/sh/softhsm2.conf run --name softhsm2 --clock cpu --module /usr/lib/softhsm/libsofthsm2.so --token pkcs11:token=bench \
	--pin-env BENCH_PIN | grep -v '^#.*token\|^token'
run --name nss --clock cpu --module /usr/lib/x86_64-linux-gnu/libsoftokn3.so \
	--init-args "configdir='sql:$T/nss' certPrefix='' keyPrefix='' secmod='secmod.db' flags=" \
	--token "pkcs11:token=NSS%20Certificate%20DB" --pin-env BENCH_PIN | grep -v '^#.*token\|^token'
# tpm2-pkcs11 keeps the keys it generated loaded until the session ends,
# and tpm2-abrmd allows 100 per connection: a short round (about 40 key
# pairs a side at swtpm's speed).
"$bench" --secs 0.2 --name tpm2 --module tpm2_pkcs11 --token pkcs11:token=bench --pin-env BENCH_PIN |
	tee -a "$out" | grep -v '^board_ms' | grep -v '^#.*token\|^token'
P11_KIT_SERVER_ADDRESS="unix:path=$T/p11.sock" \
	run --name rpc-softhsm2 --module /usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so \
	--token pkcs11:token=bench --pin-env BENCH_PIN | grep -v '^#.*token\|^token'
# The RPC's added time: the same token directly, in wall time too.
SOFTHSM2_CONF=$T/sh/softhsm2.conf "$bench" --secs "$secs" --name softhsm2-wall \
	--module /usr/lib/softhsm/libsofthsm2.so --token pkcs11:token=bench --pin-env BENCH_PIN \
	>>"$out"
direct=$(awk '$1 == "board_ms" && $2 == "softhsm2-wall" { print $3 }' "$out")
rpc=$(awk '$1 == "board_ms" && $2 == "rpc-softhsm2" { print $3 }' "$out")
if [ -n "$direct" ] && [ -n "$rpc" ]; then
	awk -v d="$direct" -v r="$rpc" 'BEGIN { printf "p11-kit RPC: %.3f ms of HSM time per device-mode board (direct %.3f ms): +%.3f ms per board\n", r, d, r - d }'
fi
for t in softhsm2-embedded softhsm2 nss tpm2 rpc-softhsm2; do
	grep -q "^board_ms $t " "$out" || echo "$t: the bench did not complete (see the messages above)"
done
grep -v "softhsm2-wall" "$out" | grep -c "below 0.95" | awk '{ print ($1 == 0 ? "goal met on every row" : $1 " row(s) below 0.95") }'
