#!/usr/bin/env bash
# provision delivers in the background when a registry is configured: the
# records reach imprint-registry without `imprint export`; with the registry
# down, provisioning still succeeds and the records stay in the outbox.
# Usage: background.sh IMPRINT VBOARD REGISTRY
IMPRINT=$1
VBOARD=$2
REGISTRY=$3
. "$(dirname "$0")/../provision/lib.sh"
REG_PID=
trap '[ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null && wait "$REG_PID" 2>/dev/null; cleanup' EXIT
prepare || exit 1
tls=$DATA/demo/registry/tls
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$REGISTRY" serve --db "$T/reg.sqlite" --trust-dir "$DATA/trust" --tls-dir "$tls" --port "$port" \
	>"$T/reg.out" 2>"$T/reg.err" &
REG_PID=$!
for _ in $(seq 50); do grep -q ready "$T/reg.out" 2>/dev/null && break; sleep 0.1; done
registry="\"registry\": {\"url\": \"https://127.0.0.1:$port\", \"ca\": \"$tls/ca.pem\", \"cert\": \"$tls/client.pem\", \"key\": \"$tls/client.key\"}"
pending() { sql "select count(*) from outbox where delivered_at is null"; }

start_vboard "$T/b1" 3 || exit 1
write_config "$T/st.json" device "$registry"
"$IMPRINT" --data-dir "$DATA" --config "$T/st.json" provision >"$T/p1.out" 2>"$T/p1.err"
check test $? = 0
check test "$(sqlite3 "$T/reg.sqlite" "select count(*) from identities")" = 3
check test "$(pending)" = 0
stop_vboard

# The registry down: the run succeeds, the records wait in the outbox.
kill "$REG_PID" && wait "$REG_PID" 2>/dev/null
REG_PID=
start_vboard "$T/b2" 2 || exit 1
write_config "$T/st.json" device "$registry"
"$IMPRINT" --data-dir "$DATA" --config "$T/st.json" provision >"$T/p2.out" 2>"$T/p2.err"
check test $? = 0
check test "$(pending)" = 2
check grep -q "background delivery" "$T/p2.err"
stop_vboard
finish
