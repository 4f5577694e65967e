#!/usr/bin/env bash
# SoftHSM2 as the embedded default: every key mode, 4 boards each.
IMPRINT=$1
VBOARD=$2
. "$(dirname "$0")/tokens_lib.sh"

HSM_JSON=""
hsm_init_status psk
check grep -q "psk      yes" "$T/status.out"
pin=$(sed -n 's/^user=//p' "$DATA/hsm/pins")
P11TOOL=(env SOFTHSM2_CONF="$DATA/hsm/softhsm2.conf" pkcs11-tool
	--module /usr/lib/softhsm/libsofthsm2.so --token-label imprint --login --pin "$pin")
for mode in device hsm psk; do
	run_mode "$mode" 1
done
finish
