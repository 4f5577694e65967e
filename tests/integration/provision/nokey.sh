#!/usr/bin/env bash
# Mode hsm (and psk): the device key is generated in the HSM and injected
# wrapped. Every byte on the UART and on the SWD (RSP) link is captured by
# the virtual board; the key, read through the board's test back door,
# appears in none of them (raw or as hex text), nor in the journal or the
# logs. Positive control: the public key, which does cross the bus, is found.
IMPRINT=$1
VBOARD=$2
. "$(dirname "$0")/lib.sh"
prepare || exit 1

hexdump_of() { od -v -An -tx1 "$1" | tr -d ' \n'; }
# found HEX FILE: the bytes as raw binary anywhere in FILE, or as hex text.
found() {
	hexdump_of "$2" | grep -q "$1" && return 0
	grep -aqi "$1" "$2" && return 0
	return 1
}

for mode in hsm psk; do
	stop_vboard
	rm -rf "$T/cap" "$T/b-$mode"
	mkdir -p "$T/cap"
	start_vboard "$T/b-$mode" 2 --backdoor --capture "$T/cap"
	write_config "$T/$mode.json" "$mode"
	"$IMPRINT" -vv --data-dir "$DATA" --config "$T/$mode.json" provision >"$T/$mode.out" 2>"$T/$mode.log"
	check test $? = 0
	stop_vboard
	for b in 0 1; do
		dir=$T/b-$mode/board-$b
		if [ "$mode" = hsm ]; then
			check test -s "$dir/backdoor/slot0.pem"
			key=$(openssl pkey -in "$dir/backdoor/slot0.pem" -text -noout 2>/dev/null |
				sed -n '/^priv:/,/^pub:/p' | grep -v -e priv: -e pub: | tr -d ' :\n')
			key=${key: -64}
			pub=$(openssl pkey -in "$dir/backdoor/slot0.pem" -text -noout 2>/dev/null |
				sed -n '/^pub:/,/^ASN1/p' | grep -v -e pub: -e ASN1 | tr -d ' :\n')
			# Positive control: the public key crossed the UART in clear.
			check found "$pub" "$T/cap/board-$b.uart.bin"
		else
			psk_file=$(ls "$dir"/backdoor/*.psk 2>/dev/null | head -1)
			check test -n "$psk_file"
			key=$(tr -d ' \n' <"${psk_file:-/dev/null}")
		fi
		check test "${#key}" = 64
		for f in "$T/cap/board-$b.uart.bin" "$T/cap/board-$b.rsp.bin"; do
			check test -s "$f"
			if found "$key" "$f"; then bad "$mode key of board $b found in $f"; else ok; fi
			# Not even half of it (a key split across frames).
			if found "${key:0:32}" "$f" || found "${key:32:32}" "$f"; then
				bad "$mode key half of board $b found in $f"
			else
				ok
			fi
		done
		if found "$key" "$DATA/journal.sqlite"; then bad "key in the journal"; else ok; fi
		if found "$key" "$T/$mode.log" || found "$key" "$T/$mode.out"; then
			bad "key in the logs"
		else
			ok
		fi
	done
done
finish
