# Shared by the token tests (tokens_*.sh): one PKCS#11 implementation, set
# up and torn down by the test itself, taken through hsm init, hsm status,
# a 4-board provisioning run in every key mode it supports and a refusal of
# every mode it does not, then audit and pkcs11-tool checks of the token.
#
# The caller sets IMPRINT, VBOARD, then sources this file, sets up its
# token and defines:
#   HSM_JSON      the "hsm" member of the station configuration ("" for the
#                 embedded default)
#   P11TOOL       pkcs11-tool command line reaching the same token, logged in
#                 (an array)
# and calls run_token "MODES-SUPPORTED" "MODES-REFUSED".
set -uo pipefail

# The counters, start_vboard/stop_vboard, b64url_decode, the fixtures of
# $T/endpoints and the clean-up at exit (the vboard, then every PID in PIDS).
. "$(dirname "${BASH_SOURCE[0]}")/../provision/lib.sh"

# A free TCP port on loopback (nothing listens on it now).
free_port() {
	local p
	for _ in $(seq 1 50); do
		p=$((20000 + RANDOM % 20000))
		if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null &&
			! (exec 3<>/dev/tcp/127.0.0.1/$((p + 1))) 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# write_config FILE MODE: the token's hsm section, fixtures from $T/endpoints
write_config() {
	local file=$1 mode=$2 fixtures
	fixtures=$(fixtures_json)
	cat >"$file" <<EOC
{"version": 1, "station_id": "token-test", "key_mode": "$mode",
 "product": {"sku": "TOK-1"}, "serial": {"prefix": "TOK", "width": 6}
 ${HSM_JSON:+, \"hsm\": $HSM_JSON}${fixtures:+, \"fixtures\": [$fixtures]}}
EOC
}

# pkcs11-tool's view of the token: only the organisation's objects are left
# (no device key, no ephemeral key), each private and secret key sensitive
# and never extractable. $1: whether the psk master should be there (0/1).
check_token_objects() {
	local want_psk=$1 objs=$T/objs.txt
	"${P11TOOL[@]}" --list-objects >"$T/objs-all.txt" 2>"$T/p11tool.err"
	check test $? = 0
	# The journal anchor's key form (a token without data objects: NSS) is
	# a generic secret of no use whose value is public; set apart, and
	# checked as such: never extractable by the token's flags, no usage.
	awk -v out="$T/objs-anchor.txt" '
		/^[A-Z][a-z]+ (Key )?Object/ { if (blk != "") print blk > (anc ? out : "/dev/stdout");
			blk = $0; anc = 0; next }
		{ blk = blk "\n" $0; if ($0 ~ /label: *imprint-journal-anchor v1 /) anc = 1 }
		END { if (blk != "") print blk > (anc ? out : "/dev/stdout") }' \
		"$T/objs-all.txt" | sed 's/\\n/\n/g' >"$objs"
	if [ -s "$T/objs-anchor.txt" ]; then
		check grep -q "Secret Key Object" "$T/objs-anchor.txt"
		if grep -E "^ *Usage:" "$T/objs-anchor.txt" | grep -qv "Usage: *none$" ||
			grep -E "^ *Access:" "$T/objs-anchor.txt" | sed 's/never extractable//' |
			grep -q extractable; then
			bad "the journal anchor's key form is extractable or has a usage"
			cat "$T/objs-anchor.txt"
		fi
	fi
	check test "$(grep -c '^Private Key Object; EC' "$objs")" = 5
	check test "$(grep -c '^Secret Key Object' "$objs")" = "$want_psk"
	check test "$(grep -c '^Certificate Object' "$objs")" = 5
	if grep -q -e imprint-device-key -e imprint-ephemeral -e imprint-probe "$objs"; then
		bad "a per-device or probe key is left on the token"
		grep -B1 -A3 -e imprint-device-key -e imprint-ephemeral -e imprint-probe "$objs"
	else
		ok
	fi
	# Every private/secret key: sensitive, always sensitive, never extractable.
	check test "$(grep -A8 -E '^(Private|Secret) Key Object' "$objs" |
		grep -E '^ *Access:' | grep -c 'sensitive, always sensitive, never extractable')" = \
		$((5 + want_psk))
	if grep -A8 -E '^(Private|Secret) Key Object' "$objs" | grep -E '^ *Access:' |
		grep -v 'never extractable' | grep -q .; then
		bad "an organisation key is extractable"
	else
		ok
	fi
	# The organisation's EC keys only sign (no token default added derive,
	# decrypt or unwrap).
	check test "$(grep -A4 '^Private Key Object; EC' "$objs" | grep -cE '^ *Usage: *sign$')" = 5
}

# One 4-board run in MODE; then the audit, and the token checked.
run_mode() {
	local mode=$1 want_psk=$2 cfg=$T/station-$1.json
	start_vboard "$T/boards-$mode" 4 || { bad "$mode: vboard did not start"; return; }
	write_config "$cfg" "$mode"
	"$IMPRINT" --data-dir "$DATA" --config "$cfg" provision >"$T/prov-$mode.out" 2>"$T/prov-$mode.err"
	local rc=$?
	check test $rc = 0
	# A sanitizer's report is shown whole (its access, free and allocation
	# stacks), anything else by its last lines.
	if [ $rc != 0 ]; then
		if grep -q '^==[0-9]*==ERROR:' "$T/prov-$mode.err"; then
			sed -n '/^==[0-9]*==ERROR:/,$p' "$T/prov-$mode.err" | head -120
		else
			tail -5 "$T/prov-$mode.err"
		fi
	fi
	check grep -q "boards: 4 done, 0 already done, 0 failed" "$T/prov-$mode.out"
	stop_vboard
	DONE_BOARDS=$((${DONE_BOARDS:-0} + 4))
	check test "$(sqlite3 "$DATA/journal.sqlite" "select count(*) from boards where state='DONE'")" = \
		"$DONE_BOARDS"
	# The run's 4 records say this key mode.
	check test "$(sqlite3 "$DATA/journal.sqlite" \
		"select jws from outbox where kind='identity' order by rowid desc limit 4" |
		while IFS=. read -r _ p _; do b64url_decode "$p"; echo; done |
		grep -c "\"key_mode\":\"$mode\"")" = 4
	"$IMPRINT" --data-dir "$DATA" --config "$cfg" audit >"$T/audit-$mode.out" 2>&1
	rc=$?
	check test $rc = 0
	[ $rc = 0 ] || tail -5 "$T/audit-$mode.out"
	check_token_objects "$want_psk"
	# The journal's anchor is on the token, with its reservation of serials
	# (docs/JOURNAL.md "Integrity"): the run's checkpoint, and the next 128
	# serials reserved at its end.
	"$IMPRINT" --data-dir "$DATA" --config "$cfg" hsm status >"$T/hsmst-$mode.out" 2>&1
	check grep -qE "^journal anchor of station [^:]+: event [1-9][0-9]*, serial counter \
$DONE_BOARDS, serials reserved up to $((DONE_BOARDS + 128))$" "$T/hsmst-$mode.out"
}

# The refusal of MODE, up front: exit 24, the message names what is missing
# and what works, and no board was touched and no serial allocated.
refuse_mode() {
	local mode=$1 can=$2 lacks=$3 cfg=$T/station-$1.json
	local boards_before
	start_vboard "$T/refused-$mode" 2 || { bad "$mode: vboard did not start"; return; }
	write_config "$cfg" "$mode"
	boards_before=$(sqlite3 "$DATA/journal.sqlite" "select count(*) from boards" 2>/dev/null || echo none)
	(cd "$T/refused-$mode" && find . -type f -exec sha256sum {} + | sort) >"$T/refused-$mode.before"
	"$IMPRINT" --data-dir "$DATA" --config "$cfg" provision >"$T/ref-$mode.out" 2>"$T/ref-$mode.err"
	check test $? = 24
	check grep -q "cannot do key mode $mode: it lacks .*$lacks" "$T/ref-$mode.err"
	check grep -q "key modes this token can do: $can" "$T/ref-$mode.err"
	check grep -q "nothing was touched" "$T/ref-$mode.err"
	# resume refuses the same way
	"$IMPRINT" --data-dir "$DATA" --config "$cfg" resume >/dev/null 2>"$T/res-$mode.err"
	check test $? = 24
	stop_vboard
	(cd "$T/refused-$mode" && find . -type f -exec sha256sum {} + | sort) >"$T/refused-$mode.after"
	check cmp -s "$T/refused-$mode.before" "$T/refused-$mode.after"
	check test "$(sqlite3 "$DATA/journal.sqlite" "select count(*) from boards" 2>/dev/null ||
		echo none)" = "$boards_before"
}

# run_token "SUPPORTED MODES" INIT_MODE: hsm init (in INIT_MODE, psk creates
# the master), hsm status, then each supported mode.
hsm_init_status() {
	local init_mode=$1 cfg=$T/station-init.json
	rm -f "$T/endpoints"
	write_config "$cfg" "$init_mode"
	"$IMPRINT" --data-dir "$DATA" --config "$cfg" hsm init >"$T/init.out" 2>"$T/init.err"
	local rc=$?
	check test $rc = 0
	[ $rc = 0 ] || tail -5 "$T/init.err"
	"$IMPRINT" --data-dir "$DATA" --config "$cfg" hsm status >"$T/status.out" 2>"$T/status.err"
	check test $? = 0
	check grep -q "status: ok" "$T/status.out"
	for c in device-ca record-signing code-signing revocation; do
		check openssl verify -CAfile "$DATA/trust/root-ca.pem" "$DATA/trust/$c.pem" >/dev/null
	done
}
