#!/usr/bin/env bash
# Every command and sub-command the table lists has a full help: usage,
# summary, description, options, exit codes (0 and 2 at least) and an
# example, through 'imprint help CMD [SUB]' and 'imprint CMD [SUB] --help'
# alike (one source: the command table).
# usage: help_all.sh PATH-TO-imprint
set -uo pipefail
imprint=$1
fail=0
n=0
# The names in a help's "commands:" list.
names() { sed -n '/^commands:$/,/^$/p' | sed -n 's/^  \([a-z][a-z0-9-]*\) .*/\1/p'; }
check() {
	local out want
	out=$("$imprint" help "$@" 2>&1) || { echo "FAIL: imprint help $*: exit $?"; fail=$((fail + 1)); return; }
	n=$((n + 1))
	for want in '^usage: imprint ' '^options:$' '^exit codes:$' '^   0  IMP_OK ' \
		'^   2  IMP_ERR_USAGE ' '^examples?:$' '^  imprint '; do
		grep -Eq -- "$want" <<<"$out" || { echo "FAIL: imprint help $*: no /$want/"; fail=$((fail + 1)); }
	done
	# A description: a paragraph after the usage and summary lines.
	[ "$(sed -n '/^options:$/q;p' <<<"$out" | grep -c .)" -ge 3 ] ||
		{ echo "FAIL: imprint help $*: no description"; fail=$((fail + 1)); }
	cmp -s <(printf '%s\n' "$out") <("$imprint" "$@" --help 2>&1) ||
		{ echo "FAIL: 'imprint help $*' and 'imprint $* --help' differ"; fail=$((fail + 1)); }
}
verbs=$("$imprint" help | names)
[ -n "$verbs" ] || { echo "FAIL: 'imprint help' lists no command"; exit 1; }
for v in $verbs; do
	check "$v"
	for s in $("$imprint" help "$v" | names); do
		check "$v" "$s"
	done
done
echo "$n helps checked, $fail failures"
[ "$fail" = 0 ]
