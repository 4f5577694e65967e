#!/usr/bin/env bash
# Line failover (docs/LINE.md, "Failover"): a real PostgreSQL primary with a
# streaming standby (pg_basebackup, standby.signal), both on 127.0.0.1; the
# stations name both in a multi-host URL with target_session_attrs=read-write.
#  A. Synchronous standby (synchronous_standby_names on the primary): three
#     stations loop on new boards; the primary is crashed (immediate
#     shutdown) mid-run and the standby promoted. The stations carry on
#     through the promoted standby: every board finishes, no serial twice (in
#     the promoted database, across every journal and in the records), the
#     line audit is clean.
#  B. Asynchronous standby that misses the last leases (it is stopped before
#     they are taken): station X, reconnecting first, restores its lost lease
#     from its journal, so a new station Z is not given its counters again;
#     station Y, whose lost lease Z was given meanwhile, refuses to issue any
#     more serials, and the line audit reports the serials issued twice.
IMPRINT=$1
VBOARD=$2
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../provision/lib.sh"
. "$here/pg.sh"
. "$here/pg_standby.sh"
. "$here/stations.sh"
PIDS=()
NST=3

fo_cleanup() {
	touch "$T/stop" 2>/dev/null
	for p in "${PIDS[@]}" $(cat "$T/pids" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	pg_standby_cleanup
	pg_cleanup
	[ -n "${KEEP:-}" ] && { echo "failover: kept $T"; return; }
	cleanup
}
trap fo_cleanup EXIT

t0=$(date +%s)
prepare || exit 1

# primary_with_standby [SERVER OPTIONS]: a new line database and its standby.
primary_with_standby() {
	PG_OPTS="-c wal_level=replica -c max_wal_senders=4 $*" pg_start || return 1
	pg_standby_create || return 1
	pg_standby_start || return 1
	LINE_URL="postgresql://imprint@127.0.0.1:$PG_PORT,127.0.0.1:$PG_SB_PORT/postgres?target_session_attrs=read-write"
	for _ in $(seq 1 100); do
		[ "$(pg_sql "select count(*) from pg_stat_replication where state = 'streaming'")" = 1 ] &&
			return 0
		sleep 0.05
	done
	echo "failover: the standby is not streaming"
	return 1
}

# all_serials S...: every serial in the journals of the stations given.
all_serials() {
	local s
	for s in "$@"; do jsql "$s" "select serial from boards where serial is not null"; done
}

# ---------------------------------------------------------------- A
primary_with_standby "-c synchronous_standby_names=$PG_SB_NAME" ||
	{ bad "postgresql with a standby did not start"; finish; exit 1; }
echo "failover: A: primary on $PG_PORT, synchronous standby on $PG_SB_PORT"
for _ in $(seq 1 100); do
	[ "$(pg_sql "select sync_state from pg_stat_replication")" = sync ] && break
	sleep 0.05
done
check test "$(pg_sql "select sync_state from pg_stat_replication")" = sync

ROUNDS=8 # of 2 boards per station
STOP_FLAG=$T/stop
for s in $(seq 1 $NST); do station_dir "$s"; done
# station_loop S: ROUNDS runs of 2 new boards each; leases of 6, so that
# leases are taken all through the run (the feed leases at half a block).
station_loop() {
	local s=$1 k
	for k in $(seq 1 $ROUNDS); do
		[ -e "$STOP_FLAG" ] && break
		vboards "$s" "a$k" 2 || break
		station_config "$s" 1000 6 "$T/s$s/ep-a$k"
		local vb=${PIDS[-1]}
		"$IMPRINT" -q --data-dir "$T/s$s" --config "$T/s$s/c.json" provision \
			>>"$T/s$s/a.out" 2>>"$T/s$s/a.err"
		echo "$?" >>"$T/s$s/a.rc"
		kill "$vb" 2>/dev/null
		wait "$vb" 2>/dev/null
	done
}
loop_pids=()
for s in $(seq 1 $NST); do
	station_loop "$s" &
	loop_pids+=($!)
done
PIDS+=("${loop_pids[@]}")
WANT=$((NST * ROUNDS * 2))
for _ in $(seq 1 600); do
	[ "$(done_total)" -ge $((WANT / 3)) ] && break
	sleep 0.05
done
at_crash=$(done_total)
leases_before=$(pg_sql "select count(*) from leases")
pg_crash
echo "failover: A: primary crashed with $at_crash of $WANT boards done, $leases_before leases"
sleep 1
pg_promote || bad "pg_ctl promote"
promoted_at=$(pg_sb_sql "select now()")
echo "failover: A: standby promoted, $(($(done_total) - at_crash)) boards done in between"
for p in "${loop_pids[@]}"; do wait "$p" 2>/dev/null; done
PIDS=()
for s in $(seq 1 $NST); do
	st "$s" line sync --wait 10 >/dev/null 2>"$T/s$s/sync.err" || bad "line sync $s"
done
total=$(done_total)
echo "failover: A: $total boards done"
# Every board finished, every run succeeded.
check test "$total" = "$WANT"
check test "$(cat "$T"/s*/a.rc | sort -u | tr -d '\n')" = 0
# The stations went on through the promoted standby: leases were taken and
# records fed after the promotion.
check test "$(pg_sb_sql "select count(*) from leases where granted_at > '$promoted_at'")" -ge 1
check test "$(pg_sb_sql "select pg_is_in_recovery()")" = f
# No serial twice: in every journal together, in the promoted database.
check test "$(all_serials $(seq 1 $NST) | sort | uniq -d | wc -l)" = 0
check test "$(all_serials $(seq 1 $NST) | wc -l)" = "$WANT"
check test "$(pg_sb_sql "select count(*) from identities")" = "$WANT"
check test "$(pg_sb_sql "select count(distinct serial) from records where kind = 'identity'")" = "$WANT"
check test "$(pg_sb_sql "select count(*) from (select serial from records where kind = 'identity' group by serial having count(*) > 1) x")" = 0
check test "$(pg_sb_sql "select count(*) from records where conflict is not null")" = 0
check test "$(pg_sb_sql "select count(*) from records")" = "$WANT"
# ... and in every station's records (its outbox), all together.
check test "$(for s in $(seq 1 $NST); do jsql "$s" "select serial from outbox where kind = 'identity'"; done | sort | uniq -d | wc -l)" = 0
# Every station's own records: one outbox row per board, all delivered.
for s in $(seq 1 $NST); do
	check test "$(jsql "$s" "select count(distinct serial) from outbox where kind = 'identity'")" = $((ROUNDS * 2))
	check test "$(jsql "$s" "select count(*) from outbox where line_delivered_at is null")" = 0
	check test "$(jsql "$s" "select count(*) from events where kind = 'lease' and detail like '%\"lost\"%'")" = 0
done
"$IMPRINT" --data-dir "$T/s1" audit --line "$LINE_URL" >"$T/audit-a.out" 2>&1
rc=$?
check test $rc = 0
[ $rc = 0 ] || head -20 "$T/audit-a.out"
echo "failover: A took $(($(date +%s) - t0)) s"

# ---------------------------------------------------------------- B
pg_standby_cleanup
pg_cleanup
t1=$(date +%s)
primary_with_standby || { bad "postgresql with a standby did not start (B)"; finish; exit 1; }
check test "$(pg_sql "select sync_state from pg_stat_replication")" = async
X=4 Y=5 Z=6 W=7
for s in $X $Y $Z $W; do station_dir "$s"; done
# run S TAG N [BLOCK]: provision N new boards on station S (leases of BLOCK,
# 4); exit code in $T/sS/TAG.rc
run() {
	local s=$1 tag=$2 n=$3
	vboards "$s" "$tag" "$n" || bad "vboards $s $tag"
	station_config "$s" 1000 "${4:-4}" "$T/s$s/ep-$tag"
	"$IMPRINT" --data-dir "$T/s$s" --config "$T/s$s/c.json" provision \
		>"$T/s$s/$tag.out" 2>"$T/s$s/$tag.err"
	echo $? >"$T/s$s/$tag.rc"
	kill "${PIDS[-1]}" 2>/dev/null
	wait "${PIDS[-1]}" 2>/dev/null
}
# 1. X and Y each a lease of 4, 2 boards done; the standby has it all.
# W leases 50 at once: it needs no other lease in this phase.
run $X b1 2
run $Y b1 2
run $W b1 2 50
for s in $X $Y $W; do check test "$(cat "$T/s$s/b1.rc")" = 0; done
check grep -q "streams to asynchronous standbys only" "$T/s$X/b1.err"
# The standby must hold all of step 1 before it stops (steps 3 to 6 count on
# it): the primary's WAL position once, then the standby's replay up to it,
# checked, with time for a machine busy with other tests.
lsn=$(pg_sql "select pg_current_wal_lsn()")
for _ in $(seq 1 600); do
	[ "$(pg_sb_sql "select pg_last_wal_replay_lsn() >= '$lsn'")" = t ] && break
	sleep 0.05
done
check test "$(pg_sb_sql "select pg_last_wal_replay_lsn() >= '$lsn'")" = t
check test "$(pg_sb_sql "select count(*) from leases")" = "$(pg_sql "select count(*) from leases")"
# A station that names the standby alone is refused by it, with the next
# step; status and the audit, which only read, run on the standby.
SB_URL="postgresql://imprint@127.0.0.1:$PG_SB_PORT/postgres"
sed "s|$LINE_URL|$SB_URL|" "$T/s$X/c.json" >"$T/s$X/c-sb.json"
"$IMPRINT" --data-dir "$T/s$X" --config "$T/s$X/c-sb.json" line sync --wait 1 \
	>/dev/null 2>"$T/sb-sync.err"
check test $? != 0
check grep -q "127.0.0.1:$PG_SB_PORT is a read-only standby: list the primary and its standbys in line.url with target_session_attrs=read-write" "$T/sb-sync.err"
"$IMPRINT" --data-dir "$T/s$X" line status --line "$SB_URL" >"$T/sb-status.out" 2>&1
check test $? = 0
check grep -q "^station-$Y " "$T/sb-status.out"
"$IMPRINT" --data-dir "$T/s$X" audit --line "$SB_URL" >"$T/sb-audit.out" 2>&1
check test $? = 0
# 2. The standby stops receiving; X and Y take their next leases, fed to
#    the primary only: 8 boards each, 2 more than the 6 counters at most at
#    hand after step 1, so that each issues serials from a lost lease.
#    W's 2 more records reach the primary only, on the lease it has.
pg_standby_stop
run $X b2 8
run $Y b2 8
run $W b2 2 50
for s in $X $Y $W; do check test "$(cat "$T/s$s/b2.rc")" = 0; done
# 3. The primary crashes; the standby, which never got those leases, is
#    promoted.
pg_crash
pg_standby_start || bad "standby restart"
pg_promote || bad "pg_ctl promote (B)"
# lost S: S's journal leases the promoted line does not hold, lowest first.
kept=$(pg_sb_sql "select string_agg(id::text, ',') from leases")
lost() { jsql "$1" "select id || ':' || first_counter || '..' || last_counter from leases where id not in (${kept:-0}) order by first_counter"; }
x_lease=$(lost $X | head -1)
y_lease=$(lost $Y | head -1)
check test -n "$x_lease"
check test -n "$y_lease"
echo "failover: B: promoted a standby without X's lease(s) $(lost $X | tr '\n' ' ')and Y's $(lost $Y | tr '\n' ' ')"
# 4. X reconnects first: its lost lease is restored from its journal (a
#    "lost" lease event), its records fed again.
x_leases=$(jsql $X "select count(*) from leases")
"$IMPRINT" --data-dir "$T/s$X" --config "$T/s$X/c.json" line sync --wait 10 \
	>"$T/sx-sync.out" 2>"$T/sx-sync.err"
check test $? = 0
check grep -q "had lost lease ${x_lease%%:*} .*restored from the journal" "$T/sx-sync.err"
check test "$(jsql $X "select count(*) from events where kind = 'lease' and detail like '%\"lost\"%'")" = "$(lost $X | wc -l)"
check test "$(pg_sb_sql "select count(*) from leases where station = 'station-$X'")" = "$x_leases"
check test "$(pg_sb_sql "select count(*) from records where station = 'station-$X'")" = "$(done_total $X)"
# W lost no lease but 2 records: the line holds fewer of its records than
# its journal marked delivered, so it feeds them all again.
"$IMPRINT" --data-dir "$T/s$W" --config "$T/s$W/c.json" line sync --wait 10 \
	>/dev/null 2>"$T/sw-sync.err"
check test $? = 0
check grep -q "the line holds 2 records of this station, the journal marked 4 delivered.*every record is fed again" "$T/sw-sync.err"
check test "$(pg_sb_sql "select count(*) from records where station = 'station-$W'")" = 4
check test "$(jsql $W "select count(*) from events where kind = 'outbox' and detail like '%line_refeed%'")" = 1
# 5. A new station Z takes a lease: not over X's counters (restored), but
#    over Y's, which only Y knows of yet: the hazard of an asynchronous
#    standby.
run $Z b3 2
check test "$(cat "$T/s$Z/b3.rc")" = 0
check test "$(all_serials $X $Z | sort | uniq -d | wc -l)" = 0
check test "$(all_serials $Y $Z | sort | uniq -d | wc -l)" -ge 1
# 6. Y reconnects: its lost lease is held by Z now: Y refuses to issue any
#    serial (exit 23), does not touch the boards, and says why.
y_serials=$(jsql $Y "select count(*) from boards where serial is not null")
run $Y b4 2
check test "$(cat "$T/s$Y/b4.rc")" = 23
check grep -q "lost lease ${y_lease%%:*} .*holds lease .* of station station-$Z" "$T/s$Y/b4.err"
check test "$(jsql $Y "select count(*) from boards where serial is not null")" = "$y_serials"
for b in "$T/s$Y"/vb-b4/board-*; do check test "$(board_fuses "$b")" = 0; done
# ... and it still feeds its records, so the line audit finds the serials
# issued twice.
st $Y line sync --wait 10 >/dev/null 2>"$T/sy-sync.err"
"$IMPRINT" --data-dir "$T/s$X" audit --line "$LINE_URL" >"$T/audit-b.out" 2>&1
check test $? = 28
check grep -q "serial_twice\|line_conflict" "$T/audit-b.out"
echo "failover: B: $(grep -c "^FINDING" "$T/audit-b.out") line audit findings after Z was leased Y's counters"
# Every journal's chain verifies and ends signed, lost-lease, refeed and
# refusal events included.
for s in $(seq 1 7); do
	"$IMPRINT" --data-dir "$T/s$s" status --verify >/dev/null 2>"$T/s$s/verify.log"
	check test $? = 0
done
echo "failover: B took $(($(date +%s) - t1)) s"
check test "$(cat "$T"/s*/*.err 2>/dev/null | grep -c "Sanitizer\|runtime error")" = 0
if [ "$fail" != 0 ]; then
	for s in $(seq 1 6); do tail -3 "$T/s$s/"*.err 2>/dev/null; done
	# Scenario B's leases: the promoted line's, then each journal's.
	echo "failover: the line's leases (id station first..last released):"
	pg_sb_sql "select id, station, first_counter, last_counter, released_at is not null from leases order by first_counter"
	for s in $X $Y $Z $W; do
		echo "failover: station-$s's journal leases: $(jsql "$s" "select id || ':' || first_counter || '..' || last_counter from leases order by first_counter" | tr '\n' ' ')"
	done
fi
echo "failover: $(($(date +%s) - t0)) s in all"
finish
