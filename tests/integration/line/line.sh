#!/usr/bin/env bash
# Line mode end to end (docs/LINE.md): a real PostgreSQL (initdb + pg_ctl in
# a temporary directory, 127.0.0.1 only) and 4 stations, separate processes
# with their own data directories and journals, provisioning virtual boards
# at once.
#  A. Demand above the line's quota: no serial twice, exactly the quota
#     produced (not one board more), a station killed (SIGKILL) mid-run
#     resumes on its own lease.
#  B. PostgreSQL stopped for 30 s (OUTAGE) mid-run: the stations go on
#     provisioning on their leased blocks, then reconcile; `imprint audit
#     --line` is clean.
#  C. Commands that open the line but make no board (a dry run, line sync,
#     status, release) take no lease; only provisioning keeps a lease ahead;
#     --count leaves the boards over it as they are, with exit 0.
IMPRINT=$1
VBOARD=$2
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../provision/lib.sh"
. "$here/pg.sh"
. "$here/stations.sh"
OUTAGE=${OUTAGE:-30}
NST=4
PIDS=()

line_cleanup() {
	touch "$T/stop" 2>/dev/null
	for p in "${PIDS[@]}" $(cat "$T/pids" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	pg_cleanup
	[ -n "${KEEP:-}" ] && { echo "line: kept $T"; return; }
	cleanup
}
trap line_cleanup EXIT

t0=$(date +%s)
prepare || exit 1
pg_start || { bad "postgresql did not start"; finish; exit 1; }
echo "line: postgresql on $PG_URL"

for s in $(seq 1 $NST); do station_dir "$s"; done

# ---------------------------------------------------------------- A
QUOTA=100
PER=30
for s in $(seq 1 $NST); do
	# Station 4's boards are slow, so that the kill lands mid-run.
	LATENCY=$([ "$s" = 4 ] && echo 0.005 || echo 0) vboards "$s" a "$PER" ||
		bad "vboards for station $s"
	station_config "$s" "$QUOTA" 8 "$T/s$s/ep-a"
done
run_pids=()
for s in $(seq 1 $NST); do
	"$IMPRINT" -q --data-dir "$T/s$s" --config "$T/s$s/c.json" provision --count "$PER" \
		>"$T/s$s/a.out" 2>"$T/s$s/a.err" &
	run_pids+=($!)
done
PIDS+=("${run_pids[@]}")
# Station 4 is killed as soon as it has boards past ALLOCATE.
for _ in $(seq 1 1000); do
	n=$(jsql 4 "select count(*) from boards where serial is not null")
	[ "${n:-0}" -ge 2 ] && break
	sleep 0.01
done
kill -9 "${run_pids[3]}" 2>/dev/null
for p in "${run_pids[@]}"; do wait "$p" 2>/dev/null; done
inflight=$(jsql 4 "select count(*) from boards where serial is not null and state <> 'DONE'")
echo "line: station 4 killed with $(jsql 4 "select count(*) from boards where state='DONE'") done, $inflight in flight, $(jsql 4 "select coalesce(sum(last_counter + 1 - next_counter), 0) from leases where closed is null") leased counters left"
st 4 resume >"$T/s4/resume.out" 2>"$T/s4/resume.err"
left=$((PER - $(jsql 4 "select count(*) from boards where serial is not null")))
st 4 provision --count "$left" >"$T/s4/a2.out" 2>"$T/s4/a2.err"
check test "$(jsql 4 "select count(*) from boards where serial is not null and state <> 'DONE'")" = 0
for s in $(seq 1 $NST); do st "$s" line sync --wait 10 >/dev/null 2>&1 || bad "line sync $s"; done

total=$(done_total)
echo "line: A: $total boards done by $NST stations for a quota of $QUOTA"
# The stations asked for more than the quota: the whole quota was leased
# (the cap was reached), and not one board more than the quota was made. A
# few counters may stay unissued in the lease of a station that stopped
# (killed, or done with its own count): never issued, never reused.
check test "$(pg_sql "select leased from line_counter")" = "$QUOTA"
check test "$total" -le "$QUOTA"
check test "$total" -ge $((QUOTA - NST * 8)) # at most one lease block per station
check test "$(pg_sql "select count(*) from identities")" = "$total"
echo "line: A: $((QUOTA - total)) leased counters left unissued"
check test "$(pg_sql "select count(*) from (select serial from records where kind='identity' group by serial having count(distinct uid) > 1) x")" = 0
check test "$(pg_sql "select leased <= quota from line_counter")" = t
n=0
for s in $(seq 1 $NST); do
	c=$(jsql "$s" "select count(*) from boards where state='DONE'")
	[ "$c" -gt 0 ] && n=$((n + 1))
done
check test "$n" = "$NST"
"$IMPRINT" -q --data-dir "$T/s1" audit --line "$PG_URL" >"$T/audit-a.out" 2>&1
check test $? = 0
grep -q "^FINDING" "$T/audit-a.out" && { bad "audit A findings"; head "$T/audit-a.out"; }
for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
PIDS=()
echo "line: A took $(($(date +%s) - t0)) s"

# ---------------------------------------------------------------- B
# Each station loops: 2 new boards, provision, pause; leases of 60 taken
# ahead by the feed thread. PostgreSQL is stopped mid-run for OUTAGE s.
QUOTA_B=$((QUOTA + 800))
STOP_FLAG=$T/stop
rm -f "$STOP_FLAG"
station_loop() {
	local s=$1 k=0
	while [ ! -e "$STOP_FLAG" ]; do
		k=$((k + 1))
		vboards "$s" "b$k" 2 || break
		station_config "$s" "$QUOTA_B" 60 "$T/s$s/ep-b$k"
		local vb=${PIDS[-1]}
		"$IMPRINT" -q --data-dir "$T/s$s" --config "$T/s$s/c.json" provision \
			>>"$T/s$s/b.out" 2>>"$T/s$s/b.err" &
		echo $! >>"$T/pids"
		wait $!
		kill "$vb" 2>/dev/null
		wait "$vb" 2>/dev/null
		sleep 0.7
	done
}
before=$(done_total)
loop_pids=()
for s in $(seq 1 $NST); do
	station_loop "$s" &
	loop_pids+=($!)
done
PIDS+=("${loop_pids[@]}")
sleep 4
at_stop=$(done_total)
pg_stop
echo "line: B: postgresql stopped with $((at_stop - before)) boards done in this phase"
sleep "$OUTAGE"
at_start=$(done_total)
pg_start || bad "postgresql did not restart"
echo "line: B: $((at_start - at_stop)) boards done during the ${OUTAGE} s outage"
check test "$((at_start - at_stop))" -ge "$NST"
sleep 3
touch "$STOP_FLAG"
for p in "${loop_pids[@]}"; do wait "$p" 2>/dev/null; done
PIDS=()
for s in $(seq 1 $NST); do
	st "$s" line release --wait 20 >"$T/s$s/release.out" 2>&1 || bad "line release $s"
	check test "$(jsql "$s" "select count(*) from outbox where line_delivered_at is null")" = 0
done
total=$(done_total)
echo "line: B: $total boards done in all, line quota $QUOTA_B"
check test "$(pg_sql "select count(*) from identities")" = "$total"
check test "$(pg_sql "select count(*) from records where conflict is not null")" = 0
check test "$(pg_sql "select (select coalesce(sum(used), 0) from leases) = $total")" = t
check test "$(pg_sql "select leased from line_counter")" = "$total"
"$IMPRINT" --data-dir "$T/s1" audit --line "$PG_URL" >"$T/audit-b.out" 2>&1
rc=$?
check test $rc = 0
[ $rc = 0 ] || head -20 "$T/audit-b.out"
grep "^audit:\|^OK\|^FAILED" "$T/audit-b.out"
"$IMPRINT" --data-dir "$T/s1" line status --line "$PG_URL" >"$T/status.out" 2>&1
check test $? = 0
check grep -q "^station-4 " "$T/status.out"
cat "$T/status.out"
# The line in the shift report (report --line), rendered in headless
# Chromium: per station as `line status --json` has it.
. "$here/../report/chromium.sh"
"$IMPRINT" --data-dir "$T/s1" --json line status --line "$PG_URL" >"$T/line-status.json"
check test $? = 0
"$IMPRINT" --data-dir "$T/s1" --json status --verify >"$T/s1-status.json"
check test $? = 0
"$IMPRINT" --data-dir "$T/s1" report --html "$T/line.html" --line "$PG_URL" >/dev/null 2>"$T/line-report.err"
check test $? = 0
browse dom "$T/line-dom.html" "file://$T/line.html"
check test $? = 0
python3 "$here/../report/check_page.py" "$T/s1-status.json" "$T/line-dom.html" \
	"file://$T/line.html" --line-status "$T/line-status.json" --expect-stations $NST
check test $? = 0
# ---------------------------------------------------------------- C
# Only a run that provisions keeps a lease ahead. Station 5 (leases of 4)
# has 5 fixtures and provisions with --count 4: 4 boards done from one lease,
# used up, the fifth left as it is (exit 0). Then a dry run over 3 boards
# with the realistic board model (long enough for the feed to run), `line
# sync`, `line status` and `line release`: they open the line but make no
# board, and take no lease (a lease spends quota units).
s=5
station_dir $s
vboards $s c 5 || bad "vboards for station $s"
station_config $s $((QUOTA_B + 50)) 4 "$T/s$s/ep-c"
cp "$T/s$s/c.json" "$T/s$s/c-c.json"
st $s provision --count 4 >"$T/s$s/c.out" 2>"$T/s$s/c.err"
check test $? = 0
check test "$(jsql $s "select count(*) from boards where state = 'DONE'")" = 4
check test "$(jsql $s "select count(*) from boards")" = 4
check grep -q "^boards: 1 not taken (the run's --count was reached): left as they are" "$T/s$s/c.out"
check test "$(pg_sql "select count(*) from leases where station = 'station-$s'")" = 1
leased=$(pg_sql "select leased from line_counter")
LATENCY=1 vboards $s d 3 || bad "vboards d for station $s"
station_config $s $((QUOTA_B + 50)) 4 "$T/s$s/ep-d"
st $s provision --dry-run >"$T/s$s/d.out" 2>"$T/s$s/d.err"
check test $? = 0
check grep -q "^dry run: nothing was written" "$T/s$s/d.out"
cp "$T/s$s/c-c.json" "$T/s$s/c.json"
for k in 1 2; do
	st $s line sync --wait 2 >/dev/null 2>>"$T/s$s/c-sync.err" || bad "line sync $s ($k)"
	st $s line status >/dev/null 2>>"$T/s$s/c-sync.err" || bad "line status $s ($k)"
done
st $s line release --wait 2 >/dev/null 2>>"$T/s$s/c-sync.err" || bad "line release $s"
check test "$(pg_sql "select count(*) from leases where station = 'station-$s'")" = 1
check test "$(jsql $s "select count(*) from leases")" = 1
check test "$(pg_sql "select leased from line_counter")" = "$leased"
# Its journal's anchor file lost: a line-mode journal cannot skip its
# counter, so no serial is issued (exit 20) until the anchor is back.
mv "$T/s$s/journal.sqlite-anchor" "$T/s$s/anchor.aside"
st $s provision --count 1 >"$T/s$s/c3.out" 2>"$T/s$s/c3.err"
check test $? = 20
check grep -q "journal.sqlite-anchor is missing: .*a line-mode journal's serials come from its leases" "$T/s$s/c3.err"
check test "$(jsql $s "select count(*) from boards where state = 'DONE'")" = 4
mv "$T/s$s/anchor.aside" "$T/s$s/journal.sqlite-anchor"
# The fifth board takes the lease it needs when it needs it.
st $s provision --count 1 >"$T/s$s/c2.out" 2>"$T/s$s/c2.err"
check test $? = 0
check test "$(jsql $s "select count(*) from boards where state = 'DONE'")" = 5
check test "$(pg_sql "select count(*) from leases where station = 'station-$s'")" = 2
# Under ASan/UBSan every station process must have stayed clean.
check test "$(cat "$T"/s*/*.err 2>/dev/null | grep -c "Sanitizer\|runtime error")" = 0
if [ "$fail" != 0 ]; then
	for s in $(seq 1 $NST); do tail -3 "$T/s$s/"*.err 2>/dev/null; done
fi
echo "line: $(($(date +%s) - t0)) s in all"
finish
