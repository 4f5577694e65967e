#!/usr/bin/env bash
# The live dashboard: a demo runs while the page is open in headless
# Chromium and the page's done count reaches the final count without a
# reload (dashboard.py); a non-loopback address is refused without
# credentials, and with a token file every request needs the token.
IMPRINT=$1
HERE=$(cd "$(dirname "$0")" && pwd)
set -uo pipefail
T=$(mktemp -d)
DATA=$T/data
SERVE_PID=
cleanup() {
	[ -n "$SERVE_PID" ] && kill "$SERVE_PID" 2>/dev/null && wait "$SERVE_PID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
check() { if "$@"; then ok; else bad "$*"; fi; }
command -v chromedriver >/dev/null || { echo "FAIL: no chromedriver: run scripts/setup"; exit 1; }

# serve_start ARGS...: the dashboard in the background, its URL in $URL.
serve_start() {
	"$IMPRINT" --data-dir "$DATA" --json serve --dashboard "$@" >"$T/serve.out" 2>"$T/serve.err" &
	SERVE_PID=$!
	URL=
	for _ in $(seq 100); do
		URL=$(sed -n 's/.*"dashboard":"\([^"]*\)".*/\1/p' "$T/serve.out")
		[ -n "$URL" ] && return 0
		kill -0 "$SERVE_PID" 2>/dev/null || break
		sleep 0.1
	done
	cat "$T/serve.err"
	return 1
}
serve_stop() {
	kill "$SERVE_PID" && wait "$SERVE_PID"
	local rc=$?
	SERVE_PID=
	return $rc
}
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }

"$IMPRINT" -q --data-dir "$DATA" demo --boards 2 --latency 0 >/dev/null 2>"$T/d1.err"
check test $? = 0

# Off loopback without credentials: refused before anything listens.
for addr in 0.0.0.0:0 192.0.2.1:8780 "[::]:0"; do
	"$IMPRINT" --data-dir "$DATA" serve --dashboard --listen "$addr" >/dev/null 2>"$T/refused.err"
	check test $? = 2
	check grep -q "not a loopback address and no credentials" "$T/refused.err"
done
"$IMPRINT" --data-dir "$DATA" serve --dashboard --listen nonsense >/dev/null 2>"$T/bad.err"
check test $? = 2
printf 'short\n' >"$T/short.token"
chmod 600 "$T/short.token"
"$IMPRINT" --data-dir "$DATA" serve --dashboard --listen 0.0.0.0:0 --token-file "$T/short.token" \
	>/dev/null 2>"$T/short.err"
check test $? != 0
check grep -q "must be 16" "$T/short.err"

# A token file others can read is refused (exit 13), as a pin file is.
openssl rand -hex 16 >"$T/token"
chmod 644 "$T/token"
"$IMPRINT" --data-dir "$DATA" serve --dashboard --listen 0.0.0.0:0 --token-file "$T/token" \
	>/dev/null 2>"$T/mode.err"
check test $? = 13
check grep -q "has mode 0644: it must not be readable by group or others" "$T/mode.err"
chmod 600 "$T/token"

# With a token, on every address: nothing without it, everything with it.
TOKEN=$(cat "$T/token")
if serve_start --listen 0.0.0.0:0 --token-file "$T/token"; then
	ok
	PORT=${URL##*:}
	PORT=${PORT%/}
	L=http://127.0.0.1:$PORT
	check test "$(code "$L/")" = 401
	check test "$(code "$L/status.json?token=wrong$TOKEN")" = 401
	check test "$(code "$L/status.json?token=$TOKEN")" = 200
	check test "$(code -H "Authorization: Bearer $TOKEN" "$L/fragment")" = 200
	check test "$(code -X POST -H "Authorization: Bearer $TOKEN" "$L/")" = 405
	check serve_stop
else
	bad "the dashboard did not start with a token"
fi

# Loopback, no token: the page live while a demo runs.
if serve_start --listen 127.0.0.1:0; then
	ok
	check test "$(code "${URL}nothing")" = 404
	curl -s "${URL}" >"$T/page.html"
	check grep -q "connect-src 'self'" "$T/page.html"
	check grep -q 'data-live="true"' "$T/page.html"
	python3 "$HERE/dashboard.py" "$IMPRINT" "$DATA" "$URL" "$T"
	check test $? = 0
	check serve_stop
else
	bad "the dashboard did not start on loopback"
fi

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
