#!/bin/bash
# A run stopped by SIGTERM, or by SIGHUP (the operator's terminal or SSH
# session closed): the boards in flight stop where they stood and
# the summary counts them as stopped (resumable), not failed; exit 29; then
# 'imprint resume' finishes them.
# usage: stop.sh IMPRINT VBOARD
IMPRINT=$1
VBOARD=$2
. "$(dirname "$0")/lib.sh"

PROV_PID=
trap '[ -n "$PROV_PID" ] && kill "$PROV_PID" 2>/dev/null; cleanup' EXIT

prepare || exit 1
for run in "TERM 31" "HUP 32"; do
	sig=${run% *} seed=${run#* }
	LATENCY=1 start_vboard "$T/vb$sig" 2 --seed $seed || { echo "vboard did not start"; exit 1; }
	write_config "$DATA/station.json" device

	"$IMPRINT" --json --data-dir "$DATA" provision >"$T/prov.json" 2>"$T/prov.err" &
	PROV_PID=$!
	# both boards well into their run (about 1.2 s each at latency 1)
	for _ in $(seq 1 100); do
		[ "$(grep -c '"event":"board"' "$T/prov.json" 2>/dev/null)" -ge 4 ] && break
		sleep 0.05
	done
	kill -$sig "$PROV_PID"
	wait "$PROV_PID"
	rc=$?
	PROV_PID=
	check test "$rc" = 29
	[ "$rc" = 29 ] || { echo "exit $rc"; tail -5 "$T/prov.err"; }
	summary=$(grep '"event":"summary"' "$T/prov.json")
	check python3 -c 'import json,sys; s=json.loads(sys.argv[1]); sys.exit(0 if (s["stopped"], s["failed"], s["done"]) == (2, 0, 0) else 1)' "$summary"
	[ -n "$summary" ] || echo "no summary in: $(tail -3 "$T/prov.json")"
	echo "summary ($sig): $summary"

	"$IMPRINT" --json --data-dir "$DATA" resume >"$T/resume.json" 2>"$T/resume.err"
	check test $? = 0
	summary=$(grep '"event":"summary"' "$T/resume.json")
	check python3 -c 'import json,sys; s=json.loads(sys.argv[1]); sys.exit(0 if (s["done"], s["stopped"], s["failed"]) == (2, 0, 0) else 1)' "$summary"
	stop_vboard
done
finish
