#!/usr/bin/env bash
# The network-HSM pattern: the token lives in another process and imprint
# reaches it through p11-kit's RPC (p11-kit server exporting a SoftHSM2
# token; imprint loads p11-kit-client.so with P11_KIT_SERVER_ADDRESS).
# p11-kit 0.24's RPC forwards only the mechanisms whose parameters it can
# marshal: ECDSA and EC key generation pass, CKM_ECDH1_DERIVE, the AES key
# wraps, CKM_AES_CMAC and CKM_AES_ECB_ENCRYPT_DATA do not (the token behind
# it offers them all). So device mode runs, 4 boards, and hsm and psk are
# refused up front, naming what the RPC path lacks.
IMPRINT=$1
VBOARD=$2
. "$(dirname "$0")/tokens_lib.sh"

SOFTHSM=/usr/lib/softhsm/libsofthsm2.so
CLIENT=/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so
mkdir -p "$T/server/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
	"$T/server/tokens" >"$T/server/softhsm2.conf"
so=so-$RANDOM$RANDOM
pin=user-$RANDOM$RANDOM
SOFTHSM2_CONF=$T/server/softhsm2.conf softhsm2-util --init-token --free --label imprint-rpc \
	--so-pin "$so" --pin "$pin" >"$T/server/init.out" 2>&1
check test $? = 0
# The server: its own environment (the client never sees SOFTHSM2_CONF).
SOFTHSM2_CONF=$T/server/softhsm2.conf p11-kit server --foreground --name "$T/server/p11.sock" \
	--provider "$SOFTHSM" "pkcs11:token=imprint-rpc" >"$T/server/server.out" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 400); do
	[ -S "$T/server/p11.sock" ] && break
	sleep 0.05
done
check test -S "$T/server/p11.sock"
export P11_KIT_SERVER_ADDRESS="unix:path=$T/server/p11.sock"
export TEST_RPC_PIN=$pin
HSM_JSON="{\"module\": \"$CLIENT\", \"token\": \"pkcs11:token=imprint-rpc\", \"pin\": {\"env\": \"TEST_RPC_PIN\"}}"
P11TOOL=(pkcs11-tool --module "$CLIENT" --token-label imprint-rpc --login --pin "$pin")

write_config "$T/list.json" device
"$IMPRINT" --data-dir "$DATA" --config "$T/list.json" hsm tokens --module "$CLIENT" >"$T/tokens.out" 2>"$T/tokens.err"
check test $? = 0
check grep -Eq '^      pkcs11:model=SoftHSM%20v2;manufacturer=SoftHSM%20project;serial=[0-9a-f]+;token=imprint-rpc$' "$T/tokens.out"

# What the server side offers, for the record: everything.
SOFTHSM2_CONF=$T/server/softhsm2.conf pkcs11-tool --module "$SOFTHSM" --token-label imprint-rpc \
	-M >"$T/server/mechs.txt" 2>&1
check grep -q "ECDH1-DERIVE" "$T/server/mechs.txt"
check grep -q "AES-CMAC" "$T/server/mechs.txt"

hsm_init_status device
check grep -q "device   yes" "$T/status.out"
check grep -q "hsm      no: lacks CKM_ECDH1_DERIVE (derive, P-256), CKM_AES_KEY_WRAP_KWP or CKM_AES_KEY_WRAP_PAD (wrap, AES-256)$" "$T/status.out"
refuse_mode hsm "device" "CKM_ECDH1_DERIVE (derive, P-256), CKM_AES_KEY_WRAP_KWP or CKM_AES_KEY_WRAP_PAD"
refuse_mode psk "device" "CKM_AES_CMAC (sign, AES-256)"
run_mode device 0
finish
