#!/usr/bin/env bash
# tpm2-pkcs11 on a software TPM (swtpm on loopback, its state and the
# token store in the test's folder), by its p11-kit name "tpm2_pkcs11".
# A TPM holds three loaded objects; tpm2-pkcs11 leaves its objects loaded,
# so, as on a real station, it talks to the TPM through the access broker
# (tpm2-abrmd, on a private D-Bus session bus the test starts).
# It offers ECDSA, C_CreateObject and an RNG but no ECDH, no AES key wrap
# and no CMAC: device mode runs, hsm and psk are refused up front.
IMPRINT=$1
VBOARD=$2
. "$(dirname "$0")/tokens_lib.sh"
# Under AddressSanitizer: tpm2-pkcs11 has no frame pointers; unwind slowly so
# that tests/lsan.supp recognises its leaks (8 frames reach its own).
[ -n "${ASAN_OPTIONS:-}" ] && export ASAN_OPTIONS="$ASAN_OPTIONS:fast_unwind_on_malloc=0:malloc_context_size=8"
if [ -n "${LSAN_OPTIONS:-}" ]; then
	lsan_supp=$(mktemp)
	cat "$(dirname "$0")/../../lsan.supp" "$(dirname "$0")/lsan-tpm2.supp" >"$lsan_supp"
	export LSAN_OPTIONS="${LSAN_OPTIONS//suppressions=[^:]*/suppressions=$lsan_supp}"
fi

mkdir -p "$T/tpm" "$T/store"
# swtpm on a free loopback port (again with another one if it was taken
# between the look and the bind).
for attempt in 1 2 3; do
	port=$(free_port) || { bad "no free port"; finish; exit 1; }
	swtpm socket --tpm2 --tpmstate "dir=$T/tpm" \
		--server "type=tcp,port=$port,bindaddr=127.0.0.1" \
		--ctrl "type=tcp,port=$((port + 1)),bindaddr=127.0.0.1" \
		--flags not-need-init,startup-clear >>"$T/swtpm.log" 2>&1 &
	swtpm_pid=$!
	for _ in $(seq 1 400); do
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
		kill -0 "$swtpm_pid" 2>/dev/null || break
		sleep 0.05
	done
	kill -0 "$swtpm_pid" 2>/dev/null && break
done
PIDS+=($swtpm_pid)
check kill -0 "$swtpm_pid"
dbus-daemon --session --nofork --nopidfile --address="unix:path=$T/bus" >"$T/dbus.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 400); do
	[ -S "$T/bus" ] && break
	sleep 0.05
done
export DBUS_SESSION_BUS_ADDRESS="unix:path=$T/bus"
bus_name=com.intel.tss2.Tabrmd.t$$
tpm2-abrmd --session --allow-root --flush-all --dbus-name="$bus_name" \
	--tcti="swtpm:host=127.0.0.1,port=$port" >"$T/abrmd.log" 2>&1 &
PIDS+=($!)
export TPM2_PKCS11_TCTI="tabrmd:bus_type=session,bus_name=$bus_name"
export TPM2TOOLS_TCTI=$TPM2_PKCS11_TCTI
up=0
for _ in $(seq 1 400); do
	tpm2_getcap handles-persistent >/dev/null 2>&1 && { up=1; break; }
	sleep 0.05
done
check test "$up" = 1 # the broker answers, through the TPM
export TPM2_PKCS11_STORE=$T/store
export TPM2_PKCS11_LOG_LEVEL=0
MODULE=/usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so
so=so-$RANDOM$RANDOM
pin=user-$RANDOM$RANDOM
# The token, as an administrator makes it (C_InitToken, C_InitPIN; the
# library creates its primary key in the TPM).
pkcs11-tool --module "$MODULE" --init-token --label imprint --so-pin "$so" >"$T/inittoken.out" 2>&1
check test $? = 0
pkcs11-tool --module "$MODULE" --token-label imprint --login --login-type so --so-pin "$so" \
	--init-pin --pin "$pin" >"$T/initpin.out" 2>&1
check test $? = 0
export TEST_TPM_PIN=$pin
HSM_JSON='{"module": "tpm2_pkcs11", "token": "pkcs11:token=imprint", "pin": {"env": "TEST_TPM_PIN"}}'
P11TOOL=(pkcs11-tool --module "$MODULE" --token-label imprint --login --pin "$pin")

write_config "$T/list.json" device
"$IMPRINT" --data-dir "$DATA" --config "$T/list.json" hsm tokens --module tpm2_pkcs11 >"$T/tokens.out" 2>"$T/tokens.err"
check test $? = 0
check grep -q '^module tpm2_pkcs11: tpm2-software.github.io' "$T/tokens.out"
check grep -Eq '^      pkcs11:model=.*;manufacturer=.*;serial=.*;token=imprint$' "$T/tokens.out"

hsm_init_status device
check grep -q "device   yes" "$T/status.out"
check grep -q "hsm      no: lacks CKM_ECDH1_DERIVE (derive, P-256), CKM_AES_KEY_WRAP_KWP or CKM_AES_KEY_WRAP_PAD (wrap, AES-256)" "$T/status.out"
check grep -q "psk      no: lacks CKM_ECDH1_DERIVE (derive, P-256), CKM_AES_KEY_WRAP_KWP or CKM_AES_KEY_WRAP_PAD (wrap, AES-256), CKM_AES_ECB_ENCRYPT_DATA (derive), CKM_AES_CMAC (sign, AES-256)" "$T/status.out"
refuse_mode hsm "device" "CKM_ECDH1_DERIVE (derive, P-256)"
refuse_mode psk "device" "CKM_AES_ECB_ENCRYPT_DATA (derive)"
run_mode device 0
finish
