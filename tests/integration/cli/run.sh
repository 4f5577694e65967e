#!/usr/bin/env bash
# Runs the CLI cases in cases.txt (the format is described at its top)
# against the imprint binary $1, with the virtual board $2 for the fixtures
# that need one. Every case gets its own scratch directory and data
# directory; what is expensive to build (a demo data directory) is built
# once per run under $SHARED and copied by the fixtures.
# usage: run.sh PATH-TO-imprint PATH-TO-imprint-vboard [CASES-FILE]
# With CLI_CASES_TIMES set it prints how long each case took, with
# CLI_CASES_VERBOSE what every case wrote on stderr (to read the messages).
set -uo pipefail
imprint=$(realpath "$1")
vboard=${2:-}
here=$(cd "$(dirname "$0")" && pwd)
cases=${3:-$here/cases.txt}
fixtures=$here/fixtures
tmp=$(mktemp -d)
pass=0
fail=0
case_dir=

# running PID: true while PID runs (a zombie nobody reaped yet has stopped).
running() {
	[ -r "/proc/$1/stat" ] || return 1
	case "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" in Z | '') return 1 ;; esac
}
# stop_listed FILE: stop the processes listed in FILE (one PID a line) by
# PID, then forget them.
stop_listed() {
	local p
	[ -f "$1" ] || return 0
	while read -r p; do
		[ -n "$p" ] || continue
		kill "$p" 2>/dev/null || continue
		for _ in $(seq 1 250); do
			running "$p" || break
			sleep 0.02
		done
		running "$p" && kill -KILL "$p" 2>/dev/null
	done <"$1"
	rm -f "$1"
}
# Background processes a fixture started for its case are listed in
# $CASE/pids and stopped after the case; those a shared build started (and
# normally stops itself) in $SHARED/pids, stopped at the latest on exit.
stop_case_processes() {
	[ -n "$case_dir" ] && stop_listed "$case_dir/pids"
}
trap 'stop_case_processes; stop_listed "$SHARED/pids"; rm -rf "$tmp"' EXIT

# The environment of the cases: nothing from the caller's session decides
# which token, profile or data directory a case sees.
unset IMPRINT_DATA_DIR IMPRINT_PROFILE_PATH SOFTHSM2_CONF
export IMPRINT=$imprint VBOARD=$vboard SHARED=$tmp/shared FIXTURES=$fixtures
mkdir -p "$SHARED"

declare -A vars
order=()
set_var() {
	vars[$1]=$2
	# Longest names first, so $DATA2 is never read as $DATA followed by 2.
	mapfile -t order < <(for n in "${!vars[@]}"; do echo "${#n} $n"; done | sort -rn | cut -d' ' -f2)
}
# expand STRING: $NAME and ${NAME} of the case's variables; any other $ is
# left alone (a regex may end in $).
expand() {
	local s=$1 n v
	for n in "${order[@]}"; do
		v=${vars[$n]}
		s=${s//"\${$n}"/"$v"}
		s=${s//"\$$n"/"$v"}
	done
	REPLY=$s
}
trim() {
	local s=$1
	s=${s#"${s%%[![:space:]]*}"}
	s=${s%"${s##*[![:space:]]}"}
	REPLY=$s
}
report_fail() {
	fail=$((fail + 1))
	echo "FAIL: $cases:$1: $2"
	[ -f "$case_dir/out" ] && sed 's/^/  stdout: /' "$case_dir/out" | head -8
	[ -f "$case_dir/err" ] && sed 's/^/  stderr: /' "$case_dir/err" | head -12
	[ -f "$case_dir/fixture.err" ] && sed 's/^/  fixture: /' "$case_dir/fixture.err" | head -12
	[ -f "$case_dir/vboard.log" ] && grep -A8 Sanitizer "$case_dir/vboard.log" | sed 's/^/  vboard: /'
}

# run_fixture NAME ARGS...: fixtures/NAME.sh in the case's scratch
# directory; its NAME=VALUE lines on stdout become variables of the case.
run_fixture() {
	local name=$1 out line
	shift
	if [ ! -x "$fixtures/$name.sh" ]; then
		echo "no fixture $name (tests/integration/cli/fixtures/$name.sh)" >>"$case_dir/fixture.err"
		return 1
	fi
	out=$(cd "$case_dir" && env "${case_env[@]}" DATA="${vars[DATA]}" CASE="$case_dir" \
		"$fixtures/$name.sh" "$@" 2>>"$case_dir/fixture.err" </dev/null) || {
		echo "fixture $name $* failed" >>"$case_dir/fixture.err"
		return 1
	}
	while IFS= read -r line; do
		if [[ $line =~ ^([A-Z_][A-Z0-9_]*)=(.*)$ ]]; then
			set_var "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
		fi
	done <<<"$out"
	return 0
}

# run_case LINENO CASE-LINE: the directives collected before it apply.
run_case() {
	local lineno=$1 line=$2 want out_re err_re args d kind rest sig="" sig_re="" pid got ok f
	local -a argv refutes=() lead
	local cwd=""
	case_env=()
	lead=(--data-dir)
	case_dir=$tmp/case
	rm -rf "$case_dir"
	mkdir -p "$case_dir"
	vars=()
	set_var DATA "$case_dir/data"
	set_var CASE "$case_dir"
	set_var SHARED "$SHARED"
	set_var FIXTURES "$fixtures"
	for d in "${directives[@]}"; do
		kind=${d%% *}
		rest=${d#"$kind"}
		trim "$rest"
		expand "$REPLY"
		rest=$REPLY
		case "$kind" in
		@setup)
			read -ra argv <<<"$rest"
			if ! run_fixture "${argv[@]}"; then
				report_fail "$lineno" "set-up '$rest' failed"
				stop_case_processes
				return
			fi
			;;
		@env)
			case_env+=("$rest")
			;;
		@refute)
			refutes+=("$rest")
			;;
		@cwd)
			cwd=$rest
			;;
		@bare)
			lead=()
			;;
		@signal)
			sig=${rest%% *}
			sig_re=${rest#"$sig"}
			trim "$sig_re"
			sig_re=$REPLY
			;;
		*)
			report_fail "$lineno" "unknown directive $kind"
			stop_case_processes
			return
			;;
		esac
	done
	IFS='|' read -r want out_re err_re args <<<"$line"
	trim "$want"
	want=$REPLY
	trim "$out_re"
	expand "$REPLY"
	out_re=$REPLY
	trim "$err_re"
	expand "$REPLY"
	err_re=$REPLY
	trim "$args"
	expand "$REPLY"
	read -ra argv <<<"$REPLY"
	# No controlling terminal (setsid): a PIN prompt fails as it would
	# under a service manager instead of waiting for a key press; timeout
	# stops a case that hangs, and passes a signal on to imprint.
	[ ${#lead[@]} = 0 ] || lead=(--data-dir "${vars[DATA]}")
	(
		cd "${cwd:-.}" || exit 125
		exec env "${case_env[@]}" timeout -k 5 120 setsid "$imprint" "${lead[@]}" \
			"${argv[@]}"
	) >"$case_dir/out" 2>"$case_dir/err" </dev/null &
	pid=$!
	if [ -n "$sig" ]; then
		for _ in $(seq 1 1500); do
			grep -Eq -- "$sig_re" "$case_dir/err" && break
			running "$pid" || break
			sleep 0.02
		done
		kill -s "$sig" "$pid" 2>/dev/null
	fi
	wait "$pid"
	got=$?
	stop_case_processes
	ok=1
	[ "$got" = "$want" ] || ok=0
	if [ -n "$out_re" ] && ! grep -Eq -- "$out_re" "$case_dir/out"; then ok=0; fi
	if [ -n "$err_re" ] && ! grep -Eq -- "$err_re" "$case_dir/err"; then ok=0; fi
	for d in "${refutes[@]}"; do
		if grep -Eq -- "$d" "$case_dir/err"; then
			ok=0
			err_re="$err_re, and not /$d/"
		fi
	done
	# A sanitizer report is a failure whatever the exit code, from imprint
	# or from a virtual board the case ran.
	for f in "$case_dir/err" "$case_dir/vboard.log"; do
		if [ -f "$f" ] && grep -Eq 'ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:' "$f"
		then
			ok=0
			err_re="$err_re, and no sanitizer report in ${f##*/}"
		fi
	done
	if [ $ok = 1 ]; then
		pass=$((pass + 1))
		if [ -n "${CLI_CASES_VERBOSE:-}" ]; then
			echo "ok: $cases:$lineno: imprint ${argv[*]}: exit $got"
			sed 's/^/  stderr: /' "$case_dir/err"
		fi
	else
		report_fail "$lineno" "imprint ${argv[*]}: exit $got (want $want; stdout /$out_re/, stderr /$err_re/)"
	fi
}

directives=()
n=0
while IFS= read -r line || [ -n "$line" ]; do
	n=$((n + 1))
	case "$line" in
	'' | '#'*) continue ;;
	@*)
		directives+=("$line")
		continue
		;;
	esac
	t0=$EPOCHREALTIME
	run_case "$n" "$line"
	[ -n "${CLI_CASES_TIMES:-}" ] && printf 'time %s:%d %.2f s\n' "$cases" "$n" \
		"$(echo "$EPOCHREALTIME - $t0" | bc)"
	directives=()
done <"$cases"
[ ${#directives[@]} = 0 ] || {
	echo "FAIL: $cases: directives after the last case"
	fail=$((fail + 1))
}
echo "$pass passed, $fail failed"
[ "$fail" = 0 ] && [ "$pass" -gt 0 ]
