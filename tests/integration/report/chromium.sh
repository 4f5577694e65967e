# Headless Chromium for the report tests: nothing of its own on the network
# that could be mistaken for the page's, a fresh profile per run, a bound on
# time. Source it; needs T (a scratch directory).

CHROMIUM=${CHROMIUM:-chromium}

# browse MODE OUT URL: MODE dom (DOM on OUT) or png (screenshot to OUT);
# Chromium's log in OUT.log, its network log in OUT.netlog.
browse() {
	local mode=$1 out=$2 url=$3 prof
	prof=$(mktemp -d "$T/profile.XXXXXX")
	local args=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
		--disable-background-networking --disable-component-update --disable-sync
		--user-data-dir="$prof" --enable-logging=stderr --v=0
		--log-net-log="$out.netlog" --window-size=1000,1750)
	if [ "$mode" = dom ]; then
		HOME=$prof timeout 90 "$CHROMIUM" "${args[@]}" --dump-dom "$url" >"$out" 2>"$out.log"
	else
		HOME=$prof timeout 90 "$CHROMIUM" "${args[@]}" --screenshot="$out" "$url" \
			>/dev/null 2>"$out.log"
	fi
}
