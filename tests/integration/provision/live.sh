#!/bin/bash
# The live station board on real terminals: imprint provision runs inside
# tmux at 80x24 and at 200x50 (resized to 60x12 and back), on 24 fixtures
# of which 4 hold boards that fail the identity challenge. The screens are
# captured repeatedly while it runs (live_check.py): no line wider than the
# terminal, every fixture in a row or in the summary line, the failures
# region kept once a failure was shown; after the run the final board's
# totals must equal 'imprint status --json' and its failures name the four
# fixtures. Then continuous mode on two fixtures with a board swapped and
# ctrl-c typed into the terminal: exit 29, the same checks.
# usage: live.sh IMPRINT VBOARD
IMPRINT=$1
VBOARD=$2
. "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
command -v tmux >/dev/null || { echo "FAIL: tmux is not installed (scripts/setup installs it)"; exit 1; }
SOCK=$T/tmux.sock
VB2_PID=
cleanup_live() {
	tmux -S "$SOCK" kill-server 2>/dev/null
	[ -n "$VB2_PID" ] && kill "$VB2_PID" 2>/dev/null && wait "$VB2_PID" 2>/dev/null
}
trap 'cleanup_live; cleanup' EXIT
LATENCY=${LATENCY:-1}

prepare || exit 1

# run_size COLS ROWS SEED [SMALL]: 20 good boards and 4 with a bad
# challenge; with SMALL (COLSxROWS) the terminal is resized to it after the
# 4th screen and back after the 12th (SIGWINCH both times), so a screen too
# small for 24 fixtures needs the summary line.
run_size() {
	local cols=$1 rows=$2 seed=$3 small=${4:-} dir=$T/run-$1x$2 i=0 n=0
	local lat=$LATENCY
	mkdir -p "$dir"
	[ -n "$small" ] && lat=$((LATENCY * 2)) # long enough for three sizes
	LATENCY=$lat start_vboard "$dir/vb1" 20 --seed "$seed" || { bad "vboard did not start"; return; }
	"$VBOARD" --boards 4 --state-dir "$dir/vb2" --latency "$lat" --seed $((seed + 1)) \
		--bad-challenge --endpoints "$dir/ep2" >"$dir/vb2.ready" 2>>"$T/vboard.log" &
	VB2_PID=$!
	for _ in $(seq 1 100); do grep -q '"ready"' "$dir/vb2.ready" 2>/dev/null && break; sleep 0.05; done
	cat "$dir/ep2" >>"$T/endpoints"
	write_config "$DATA/station.json" device
	rm -f "$dir/rc"
	tmux -S "$SOCK" new-session -d -s live -x "$cols" -y "$rows" \
		"'$IMPRINT' --data-dir '$DATA' provision; echo \$? >'$dir/rc'; sleep 60" ||
		{ bad "tmux did not start"; return; }
	while [ ! -s "$dir/rc" ] && [ "$n" -lt 400 ]; do
		n=$((n + 1))
		tmux -S "$SOCK" capture-pane -p -J -t live >"$dir/cap.$n" 2>/dev/null
		if [ -n "$small" ] && [ "$n" = 4 ]; then
			tmux -S "$SOCK" resize-window -t live -x "${small%x*}" -y "${small#*x}"
			sleep 0.2
		elif [ -n "$small" ] && [ "$n" = 12 ]; then
			tmux -S "$SOCK" resize-window -t live -x "$cols" -y "$rows"
			sleep 0.2
		fi
		sleep 0.1
	done
	check test -s "$dir/rc"
	check test "$(cat "$dir/rc" 2>/dev/null)" = 26 # IMP_ERR_CHALLENGE: the four rejected
	tmux -S "$SOCK" capture-pane -p -J -S - -t live >"$dir/final"
	"$IMPRINT" -q --data-dir "$DATA" status --json >"$dir/status.json"
	local full=() little=()
	for f in $(ls "$dir"/cap.* | sort -V); do
		i=${f##*.}
		if [ -n "$small" ] && [ "$i" -gt 4 ] && [ "$i" -le 12 ]; then little+=("$f"); else full+=("$f"); fi
	done
	check env FAILED_FIXTURES=F21,F22,F23,F24 python3 "$HERE/live_check.py" \
		"$cols" 24 "$dir/status.json" "$dir/final" "${full[@]}"
	if [ -n "$small" ]; then
		check test "${#little[@]}" -ge 4
		check env EXPECT_MORE=1 python3 "$HERE/live_check.py" "${small%x*}" 24 \
			"$dir/status.json" - "${little[@]}"
	fi
	tmux -S "$SOCK" kill-server 2>/dev/null
	stop_vboard
	kill "$VB2_PID" 2>/dev/null && wait "$VB2_PID" 2>/dev/null
	VB2_PID=
}

# Continuous mode on the board: two fixtures, a swap, ctrl-c typed into the
# terminal; the rows say what each fixture waits for, the exit code is 29.
run_continuous() {
	local dir=$T/run-continuous n=0 ctlport
	mkdir -p "$dir"
	start_vboard "$dir/vb" 2 --seed 301 --control 0 || { bad "vboard did not start"; return; }
	ctlport=$(sed -n 's/.*"control":"127.0.0.1:\([0-9]*\)".*/\1/p' "$T/vb.ready")
	write_config "$DATA/station.json" device
	rm -f "$dir/rc"
	local swapped= base
	base=$("$IMPRINT" -q --data-dir "$DATA" status --json |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["boards"]["DONE"])')
	tmux -S "$SOCK" new-session -d -s live -x 80 -y 24 \
		"'$IMPRINT' --data-dir '$DATA' provision --continuous; echo \$? >'$dir/rc'; sleep 60" ||
		{ bad "tmux did not start"; return; }
	while [ ! -s "$dir/rc" ] && [ "$n" -lt 300 ]; do
		n=$((n + 1))
		tmux -S "$SOCK" capture-pane -p -J -t live >"$dir/cap.$n" 2>/dev/null
		if [ -z "$swapped" ] && [ "$(grep -c ' remove ' "$dir/cap.$n")" = 2 ]; then
			exec 8<>"/dev/tcp/127.0.0.1/$ctlport" && printf 'swap 1\n' >&8 &&
				IFS= read -r -t 5 _ <&8
			exec 8>&-
			swapped=$n
		elif [ -n "$swapped" ] && grep -q "^done $((base + 3)) " "$dir/cap.$n" &&
			[ "$(grep -c ' remove ' "$dir/cap.$n")" = 2 ]; then
			tmux -S "$SOCK" send-keys -t live C-c
			sleep 0.5
		fi
		sleep 0.1
	done
	check test -n "$swapped"
	check test "$(cat "$dir/rc" 2>/dev/null)" = 29
	check grep -q ' waiting \| remove ' "$dir/cap.1" "$dir/cap.$n"
	tmux -S "$SOCK" capture-pane -p -J -S - -t live >"$dir/final"
	check grep -q "boards: 3 done, 0 already done, 0 failed" "$dir/final"
	"$IMPRINT" -q --data-dir "$DATA" status --json >"$dir/status.json"
	check python3 "$HERE/live_check.py" 80 2 "$dir/status.json" "$dir/final" \
		$(ls "$dir"/cap.* | sort -V)
	tmux -S "$SOCK" kill-server 2>/dev/null
	stop_vboard
}

run_size 80 24 101 ""
run_size 200 50 201 60x12
run_continuous
finish
