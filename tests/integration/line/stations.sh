# Station helpers of the line tests (source after lib.sh and pg.sh): one
# data directory per station under $T/sS, virtual boards per station, a
# station configuration in line mode (LINE_URL, else PG_URL), and read-only
# queries on a station's journal. PIDS collects the processes started here.

# station_dir S: S's data directory with its own copy of the organisation's
# token and trust folder (one token directory shared by several processes
# is not what a line has).
station_dir() {
	mkdir -p "$T/s$1"
	cp -r "$DATA/hsm" "$DATA/trust" "$T/s$1/"
	sed -i "s|$DATA/hsm|$T/s$1/hsm|" "$T/s$1/hsm/softhsm2.conf"
}

# station_config S QUOTA BLOCK ENDPOINTS: DATA_S/c.json with S's fixtures.
station_config() {
	local s=$1 quota=$2 block=$3 ep=$4 fx
	fx=$(fixtures_json rsp_probe "$ep")
	cat >"$T/s$s/c.json" <<EOC
{"version": 1, "station_id": "station-$s", "key_mode": "device",
 "serial": {"prefix": "LN", "width": 7},
 "firmware": {"image": "$DATA/demo/firmware.bin", "signature": "$DATA/demo/firmware.sig"},
 "fixtures": [$fx], "line": {"url": "${LINE_URL:-$PG_URL}", "block": $block, "quota": $quota}}
EOC
}

# vboards S TAG N: start N boards for station S (pid in PIDS), endpoints file.
vboards() {
	local s=$1 tag=$2 n=$3 ep=$T/s$1/ep-$2
	"$VBOARD" --boards "$n" --state-dir "$T/s$s/vb-$tag" --latency "${LATENCY:-0}" \
		--endpoints "$ep" >"$ep.ready" 2>>"$T/vboard.log" &
	PIDS+=($!)
	echo $! >>"$T/pids"
	for _ in $(seq 1 200); do
		grep -q '"ready"' "$ep.ready" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

st() { local s=$1; shift; "$IMPRINT" -q --data-dir "$T/s$s" --config "$T/s$s/c.json" "$@"; }
# jsql S SQL: query station S's journal read-only ("" until it exists).
jsql() {
	[ -s "$T/s$1/journal.sqlite" ] || return 0
	sqlite3 -cmd ".timeout 5000" "$T/s$1/journal.sqlite" "$2" 2>/dev/null
}
# done_total: boards DONE over stations 1..NST (or the stations given).
done_total() {
	local n=0 s c
	for s in ${*:-$(seq 1 $NST)}; do
		c=$(jsql "$s" "select count(*) from boards where state='DONE'")
		n=$((n + ${c:-0}))
	done
	echo "$n"
}

