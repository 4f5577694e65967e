#!/usr/bin/env bash
# The shift report of a demo with injected failures, rendered in headless
# Chromium: the totals, the yield, the failures by step, the quota, the
# export backlog and the audit on the page are those of `imprint status
# --json --verify`; the page makes no network request and logs no console
# message; a screenshot is taken (REPORT_SCREENSHOT=PATH keeps a copy, as
# docs/report.png is made). A page with a console error and a request is
# checked too, and must be refused: the checks can fail.
IMPRINT=$1
HERE=$(cd "$(dirname "$0")" && pwd)
set -uo pipefail
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
DATA=$T/data
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
check() { if "$@"; then ok; else bad "$*"; fi; }
. "$HERE/chromium.sh"

command -v "$CHROMIUM" >/dev/null || { echo "FAIL: no $CHROMIUM: run scripts/setup"; exit 1; }

# A shift: 8 boards done (over 100 events: a signed checkpoint), then 3 whose challenge fails (rejected at
# CHALLENGE), then 2 whose agent refuses the certificate (left at INJECT).
"$IMPRINT" -q --data-dir "$DATA" demo --boards 8 --latency 0 >/dev/null 2>"$T/d1.err"
check test $? = 0
"$IMPRINT" -q --data-dir "$DATA" demo --boards 3 --latency 0 --faults "--bad-challenge" \
	>/dev/null 2>"$T/d2.err"
check test $? = 26
"$IMPRINT" -q --data-dir "$DATA" demo --boards 2 --latency 0 --faults "--refuse store_cert" \
	>/dev/null 2>"$T/d3.err"
check test $? = 19

"$IMPRINT" --data-dir "$DATA" --json status --verify >"$T/status.json"
check test $? = 0
"$IMPRINT" --data-dir "$DATA" report --html "$T/report.html" >"$T/report.out"
check test $? = 0
check grep -q "Content-Security-Policy\" content=\"default-src 'none'" "$T/report.html"
check test "$(grep -c '<script' "$T/report.html")" = 0

browse dom "$T/dom.html" "file://$T/report.html"
check test $? = 0
browse png "$T/report.png" "file://$T/report.html"
check test $? = 0

# Bad input is refused before anything is read.
"$IMPRINT" --data-dir "$DATA" report >/dev/null 2>"$T/u1.err"
check test $? = 2
check grep -q -- "--html FILE is required" "$T/u1.err"
"$IMPRINT" --data-dir "$DATA" report --html "$T/x.html" --since yesterday >/dev/null 2>"$T/u2.err"
check test $? = 2
check grep -q "RFC 3339" "$T/u2.err"
"$IMPRINT" --data-dir "$DATA" report --html "$T/no/such/dir/x.html" >/dev/null 2>"$T/u3.err"
check test $? != 0
check grep -q "cannot write" "$T/u3.err"
# A window after the shift holds nothing, the whole journal still counts.
"$IMPRINT" --data-dir "$DATA" --json status --since 2999-01-01T00:00:00Z >"$T/late.json"
check python3 -c "
import json,sys; s=json.load(open(sys.argv[1]))
assert s['shift']['done']==0 and s['shift']['failures_by_step']=={} and s['boards']['DONE']==8" \
	"$T/late.json"

# The page against the status object, and against what was injected.
python3 "$HERE/check_page.py" "$T/status.json" "$T/dom.html" "file://$T/report.html" \
	--expect-done 8 --expect-rejected 3 --expect-checkpoint --expect-steps CHALLENGE=3,INJECT=2 \
	--png "$T/report.png"
check test $? = 0
if [ -n "${REPORT_SCREENSHOT:-}" ]; then cp "$T/report.png" "$REPORT_SCREENSHOT"; fi

# The checker refuses a page that logs to the console or loads anything.
cat >"$T/bad.html" <<'HTML'
<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>
<img src="http://127.0.0.1:9/x.png"><script>console.error("boom")</script></body></html>
HTML
browse dom "$T/bad-dom.html" "file://$T/bad.html"
python3 "$HERE/check_page.py" --hygiene-only "$T/status.json" "$T/bad-dom.html" \
	"file://$T/bad.html" >"$T/bad.out" 2>&1
check test $? != 0
check grep -q "console message" "$T/bad.out"
check grep -q "network request.*127.0.0.1:9" "$T/bad.out"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
