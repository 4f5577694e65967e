#!/usr/bin/env bash
# NSS softoken (libsoftokn3 from libnss3): its database directory given
# through hsm.init_args (C_Initialize's pReserved). Its key database slot
# offers ECDH and AES key wrap but not CKM_AES_ECB_ENCRYPT_DATA: device and
# hsm modes run, psk is refused up front.
IMPRINT=$1
VBOARD=$2
. "$(dirname "$0")/tokens_lib.sh"

SOFTOKN=/usr/lib/x86_64-linux-gnu/libsoftokn3.so
nssdb=$T/nssdb
mkdir -p "$nssdb"
pin=nss-test-pin-$RANDOM$RANDOM
printf '%s\n' "$pin" >"$T/nss.pw"
certutil -N -d "sql:$nssdb" -f "$T/nss.pw" >/dev/null 2>&1
check test -f "$nssdb/key4.db"
args="configdir='sql:$nssdb' certPrefix='' keyPrefix='' secmod='secmod.db' flags="
export TEST_NSS_PIN=$pin
HSM_JSON="{\"module\": \"$SOFTOKN\", \"init_args\": \"$args\",
 \"token\": \"pkcs11:token=NSS%20Certificate%20DB\", \"pin\": {\"env\": \"TEST_NSS_PIN\"}}"

# The token is seen through init_args; without them NSS has no database.
write_config "$T/list.json" device
"$IMPRINT" --data-dir "$DATA" --config "$T/list.json" hsm tokens --module "$SOFTOKN" >"$T/tokens.out" 2>"$T/tokens.err"
check test $? = 0
check grep -q 'token "NSS Certificate DB"' "$T/tokens.out"
check grep -q 'pkcs11:model=NSS%203;manufacturer=Mozilla%20Foundation;serial=0000000000000000;token=NSS%20Certificate%20DB' "$T/tokens.out"

# pkcs11-tool cannot pass pReserved: it goes through p11-kit's proxy, which
# passes a registration's x-init-reserved, from a user registration (HOME is
# the test's). p11-kit ignores user registrations for root, so as root the
# tool runs as nobody, on the database opened read-only.
home=$T/home
mkdir -p "$home/.config/pkcs11/modules"
printf 'module: %s\nx-init-reserved: %s\n' "$SOFTOKN" "${args}readOnly" \
	>"$home/.config/pkcs11/modules/imprint-test-nss.module"
P11TOOL=(env HOME="$home" pkcs11-tool --module /usr/lib/x86_64-linux-gnu/p11-kit-proxy.so
	--token-label "NSS Certificate DB" --login --pin "$pin")
if [ "$(id -u)" = 0 ]; then
	chmod 755 "$T" "$home" "$home/.config" "$home/.config/pkcs11" "$home/.config/pkcs11/modules"
	chmod 755 "$nssdb"
	chmod 644 "$nssdb"/*
	P11TOOL=(setpriv --reuid=nobody --regid=nogroup --clear-groups "${P11TOOL[@]}")
fi

hsm_init_status hsm
check grep -q "device   yes" "$T/status.out"
check grep -q "hsm      yes" "$T/status.out"
check grep -q "psk      no: lacks CKM_AES_ECB_ENCRYPT_DATA (derive)" "$T/status.out"
# psk refused before any board: init cannot create a psk master either.
write_config "$T/psk-init.json" psk
"$IMPRINT" --data-dir "$DATA" --config "$T/psk-init.json" hsm init >/dev/null 2>"$T/psk-init.err"
check test $? = 24
check grep -q "cannot do key mode psk: it lacks CKM_AES_ECB_ENCRYPT_DATA (derive)" "$T/psk-init.err"
refuse_mode psk "device, hsm" "CKM_AES_ECB_ENCRYPT_DATA (derive)"
for mode in device hsm; do
	run_mode "$mode" 0
done
# The same token by a p11-kit name: imprint reads the registration and passes
# its x-init-reserved to C_Initialize (as the unprivileged user, for whom
# p11-kit and imprint read user registrations).
HSM_JSON="{\"module\": \"imprint-test-nss\", \"token\": \"pkcs11:token=NSS%20Certificate%20DB\",
 \"pin\": {\"env\": \"TEST_NSS_PIN\"}}"
mkdir -p "$T/byname"
write_config "$T/byname/station.json" device
RUN_AS=()
if [ "$(id -u)" = 0 ]; then
	chown -R nobody "$T/byname"
	RUN_AS=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
fi
"${RUN_AS[@]}" env HOME="$home" "$IMPRINT" --data-dir "$T/byname/data" \
	--config "$T/byname/station.json" hsm status >"$T/byname.out" 2>"$T/byname.err"
check test $? = 0
check grep -q "status: ok" "$T/byname.out"
check grep -q "hsm      yes" "$T/byname.out"
finish
