#!/usr/bin/env python3
"""Check the screens of the live station board captured from tmux.

usage: live_check.py WIDTH FIXTURES STATUS_JSON FINAL CAPTURE...

Every captured line (tmux capture-pane -J joins wrapped lines, so a line
that wrapped shows longer than WIDTH) must fit WIDTH. Every screen that
shows the board must account for all FIXTURES fixtures (F1..FN), in its
rows or in its "+N more" summary line. Once a failure was shown, every later
screen must still show the failures region. FINAL (the terminal after the
run, with its history) must hold the final board, whose totals equal
`imprint status --json` (STATUS_JSON) and whose failures region names the
failed boards' fixtures (FAILED_FIXTURES, comma-separated, in the
environment). FINAL "-": the screens only (captured at another size).
EXPECT_MORE=1: some screen must have needed the summary line.
"""
import os
import json
import re
import sys

HEADER = re.compile(r"^done (\d+)  failed (\d+)  quarantined (\d+)  in progress (\d+)  yield ")
MORE = re.compile(r"^\+(\d+) (?:more|fixtures) \(")
NAME = re.compile(r"\bF(\d+)\b")


def boards(lines):
    """Every board drawn in lines: (header match, fixture lines, failure lines)."""
    out = []
    for i, l in enumerate(lines):
        m = HEADER.match(l)
        if not m:
            continue
        fx, fails, j = [], [], i + 2  # header, title line, rows
        while j < len(lines) and not HEADER.match(lines[j]):
            if lines[j].startswith("-- failures:"):
                k = j + 1
                while k < len(lines) and re.match(r"^\d\d:\d\d:\d\d F\d+ at ", lines[k]):
                    fails.append(lines[k])
                    k += 1
                break
            if lines[j].startswith("boards:") or lines[j].startswith("imprint:"):
                break
            fx.append(lines[j])
            j += 1
        out.append((m, fx, fails))
    return out


def accounted(fx_lines, n):
    names, more = set(), 0
    for l in fx_lines:
        m = MORE.match(l)
        if m:
            more += int(m.group(1))
            continue
        names.update(int(x) for x in NAME.findall(l))
    ok = names <= set(range(1, n + 1)) and len(names) + more == n
    return ok, len(names), more


def main():
    width, n, status_path, final_path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    caps = sys.argv[5:]
    errors = []
    live_screens = running = 0
    failures_seen = more_seen = False
    for path in caps + ([final_path] if final_path != "-" else []):
        lines = open(path, encoding="utf-8", errors="replace").read().split("\n")
        for l in lines:
            if len(l) > width:
                errors.append(f"{path}: a line of {len(l)} columns on a {width}-column terminal: {l[:60]}...")
        for m, fx, fails in boards(lines):
            live_screens += 1
            if int(m.group(4)) > 0:
                running += 1
            ok, shown, more = accounted(fx, n)
            more_seen = more_seen or more > 0
            if not ok:
                errors.append(f"{path}: {shown} fixtures shown + {more} in the summary, want {n}")
            if fails:
                failures_seen = True
            elif failures_seen:
                errors.append(f"{path}: the failures region vanished after failures were shown")
    if os.environ.get("EXPECT_MORE") and not more_seen:
        errors.append("no screen needed the '+N more' summary line")
    if final_path == "-":
        for e in errors[:20]:
            print("FAIL:", e)
        print(f"{len(caps)} screens, {live_screens} boards drawn, {len(errors)} problems")
        return 1 if errors else 0
    final = boards(open(final_path, encoding="utf-8", errors="replace").read().split("\n"))
    status = json.load(open(status_path))["boards"]
    inflight = sum(v for k, v in status.items() if k not in ("DONE", "FAILED", "QUARANTINED"))
    if not final:
        errors.append("the terminal shows no final board after the run")
    else:
        m, fx, fails = final[-1]
        got = tuple(int(m.group(i)) for i in range(1, 5))
        want = (status["DONE"], status["FAILED"], status["QUARANTINED"], inflight)
        if got != want:
            errors.append(f"final totals {got} differ from imprint status --json {want}")
        failed = list(filter(None, os.environ.get("FAILED_FIXTURES", "").split(",")))
        if failed and not fails:
            errors.append("the final board shows no failures")
        for f in failed:
            if not any(re.search(r"^\d\d:\d\d:\d\d %s at " % f, l) for l in fails):
                errors.append(f"the final board's failures do not name {f}")
    if running < 2:
        errors.append(f"only {running} captured screens showed boards in progress: the run was not seen live")
    for e in errors[:20]:
        print("FAIL:", e)
    print(f"{len(caps)} screens, {live_screens} boards drawn, {running} while boards ran, "
          f"{len(errors)} problems")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
