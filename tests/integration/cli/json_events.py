#!/usr/bin/env python3
"""--json events (docs/EVENTS.md): every line of every command's --json
output parses as one JSON object with an "event" name and an RFC 3339 UTC
"ts" with milliseconds; board and result events say at which step a board
failed (k of 11) and results of finished boards carry their record id; each
field name has one JSON type across all the commands (null aside).

usage: json_events.py PATH-TO-imprint
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
imprint = os.path.abspath(sys.argv[1])
tmp = tempfile.mkdtemp(prefix="imprint-json-")
failures = []
types = {}  # field -> (type name, where first seen)
lines_checked = 0


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg)


def kind(v):
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return None  # null goes with any type


def check_types(obj, where, path=""):
    for k, v in obj.items():
        name = path + k
        t = kind(v)
        if t is None:
            continue
        seen = types.setdefault(name, (t, where))
        if seen[0] != t:
            fail("%s: field %r is a %s here, a %s in %s" % (where, name, t, seen[0], seen[1]))
        if t == "object" and path == "":
            check_types(v, where, name + ".")


def run(data, *args, want=0):
    """imprint --json ARGS on data dir; returns the parsed events."""
    global lines_checked
    cmd = [imprint, "--data-dir", data] + list(args) + ["--json"]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       stdin=subprocess.DEVNULL, timeout=120, text=True)
    where = " ".join(args)
    if p.returncode != want:
        fail("imprint %s: exit %d, want %d; stderr: %s" % (where, p.returncode, want,
                                                           p.stderr[-800:]))
    events = []
    for n, line in enumerate(p.stdout.splitlines(), 1):
        lines_checked += 1
        try:
            o = json.loads(line)
        except ValueError as e:
            fail("imprint %s: line %d is not JSON (%s): %r" % (where, n, e, line[:200]))
            continue
        if not isinstance(o, dict):
            fail("imprint %s: line %d is not an object" % (where, n))
            continue
        if not isinstance(o.get("event"), str) or not o["event"]:
            fail("imprint %s: line %d has no \"event\": %r" % (where, n, line[:200]))
        if not isinstance(o.get("ts"), str) or not TS.match(o["ts"]):
            fail("imprint %s: line %d has no RFC 3339 UTC \"ts\" with milliseconds: %r"
                 % (where, n, o.get("ts")))
        check_types(o, where)
        events.append(o)
    return events


def of(events, name):
    return [e for e in events if e.get("event") == name]


try:
    good = os.path.join(tmp, "good")
    ev = run(good, "demo", "--boards", "2", "--latency", "0")
    results = of(ev, "result")
    if len(results) != 2:
        fail("demo: %d result events, want 2" % len(results))
    for r in results:
        if r.get("state") != "DONE" or r.get("already_done") is not False:
            fail("demo: result %r is not a fresh DONE" % r)
        if not re.match(r"^[0-9a-f]{64}$", r.get("record_id") or ""):
            fail("demo: result without a record id: %r" % r)
        if r.get("step") != 11 or r.get("steps") != 11 or "failed_step" in r:
            fail("demo: a DONE result is step 11 of 11, without failed_step: %r" % r)
    boards = of(ev, "board")
    if not boards or any(not 1 <= b.get("step", 0) <= 11 for b in boards):
        fail("demo: board events without a step 1..11")
    summary = of(ev, "summary")
    if not summary or summary[0].get("done") != 2 or summary[0].get("already") != 0:
        fail("demo: summary %r" % summary)
    ids = {r["record_id"] for r in results if r.get("record_id")}
    recs = run(good, "records")
    if {r.get("record_id") for r in of(recs, "record")} != ids:
        fail("records: ids %r, the results said %r" % ([r.get("record_id") for r in recs], ids))
    for r in of(recs, "record"):
        if (r.get("jws") or "").count(".") != 2:
            fail("records: no compact JWS in %r" % r)
    listed = of(run(good, "boards"), "board_entry")
    if len(listed) != 2 or any(b.get("state") != "DONE" for b in listed):
        fail("boards: %r" % listed)
    st = run(good, "status")
    if len(st) != 1 or st[0].get("event") != "status":
        fail("status --json: %r" % st)
    run(good, "version")
    run(good, "hsm", "status")
    vc = of(run(good, "hsm", "ca-verification-cert", "--code", "0123abcd"),
            "ca-verification-cert")
    if len(vc) != 1 or not (vc[0].get("pem") or "").startswith("-----BEGIN CERTIFICATE"):
        fail("hsm ca-verification-cert without --out: no event with the PEM: %r" % vc)
    drivers = of(run(good, "export", "--list-drivers"), "export_driver")
    if "csv" not in [d.get("driver") for d in drivers] \
            or any(not d.get("description") for d in drivers):
        fail("export --list-drivers: %r" % drivers)
    run(good, "audit")
    fw = os.path.join(good, "demo", "firmware.bin")
    run(good, "firmware", "sign", fw, "-o", os.path.join(tmp, "fw.sig"))
    run(good, "firmware", "verify", fw, os.path.join(tmp, "fw.sig"))
    run(good, "export", "--driver", "csv", "--out", os.path.join(tmp, "r.csv"), want=3)

    # A board rejected at the challenge: the failure says where.
    bad = os.path.join(tmp, "bad")
    ev = run(bad, "demo", "--boards", "1", "--latency", "0", "--faults", "--bad-challenge",
             want=26)
    results = of(ev, "result")
    if len(results) != 1:
        fail("bad demo: %d result events, want 1" % len(results))
    for r in results:
        if (r.get("state"), r.get("failed_step"), r.get("step"), r.get("steps"),
                r.get("code")) != ("FAILED", "CHALLENGE", 8, 11, 26):
            fail("bad demo: a rejected result says FAILED at CHALLENGE, step 8 of 11, "
                 "code 26: %r" % r)
        if r.get("record_id") is not None:
            fail("bad demo: a rejected board has no record: %r" % r)
    failed = [b for b in of(ev, "board") if b.get("code")]
    if not failed or failed[-1].get("failed_step") != "CHALLENGE":
        fail("bad demo: the failing board event does not say CHALLENGE: %r" % failed)
    listed = of(run(bad, "boards", "--state", "FAILED"), "board_entry")
    if len(listed) != 1 or listed[0].get("error_step") != "CHALLENGE" \
            or listed[0].get("step") != 8:
        fail("boards --state FAILED: %r" % listed)
    run(bad, "status")
finally:
    shutil.rmtree(tmp, ignore_errors=True)

print("%d lines checked, %d fields, %d failures" % (lines_checked, len(types), len(failures)))
sys.exit(1 if failures or lines_checked == 0 else 0)
