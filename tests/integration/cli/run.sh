#!/usr/bin/env bash
# Runs the CLI cases in cases.txt against the imprint binary given as $1.
set -uo pipefail
imprint=$1
cases=$(dirname "$0")/cases.txt
pass=0
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
while IFS= read -r line; do
	case "$line" in ''|'#'*) continue ;; esac
	IFS='|' read -r want out_re err_re args <<<"$line"
	want=$(echo "$want" | xargs)
	out_re=$(echo "$out_re" | sed 's/^ //; s/ $//')
	err_re=$(echo "$err_re" | sed 's/^ //; s/ $//')
	args=$(echo "$args" | sed 's/^ //; s/ $//')
	rm -rf "$tmp/data"
	# shellcheck disable=SC2086
	"$imprint" --data-dir "$tmp/data" $args >"$tmp/out" 2>"$tmp/err" </dev/null
	got=$?
	ok=1
	[ "$got" = "$want" ] || ok=0
	if [ -n "$out_re" ] && ! grep -Eq -- "$out_re" "$tmp/out"; then ok=0; fi
	if [ -n "$err_re" ] && ! grep -Eq -- "$err_re" "$tmp/err"; then ok=0; fi
	if [ $ok = 1 ]; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1))
		echo "FAIL: imprint $args: exit $got (want $want)"
		sed 's/^/  stdout: /' "$tmp/out" | head -5
		sed 's/^/  stderr: /' "$tmp/err" | head -5
	fi
done <"$cases"
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
