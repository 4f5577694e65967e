#!/usr/bin/env python3
"""Check a report page rendered by headless Chromium (its --dump-dom output,
Chromium's log beside it as DOM.log and its network log as DOM.netlog)
against `imprint status --json --verify`. Exit 1 with one line per
mismatch."""
import argparse
import json
import struct
import sys
from html.parser import HTMLParser


class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.by_id = {}
        self.by_class = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        a["_tag"] = tag
        if "id" in a:
            self.by_id[a["id"]] = a
        for c in (a.get("class") or "").split():
            self.by_class.setdefault(c, []).append(a)

    handle_startendtag = handle_starttag


def netlog_requests(path, page_url):
    """URLs the page asked for: URL requests with an origin (the browser's
    own background requests have none), other than the page itself."""
    text = open(path, encoding="utf-8", errors="replace").read().rstrip()
    try:
        log = json.loads(text)
    except ValueError:  # cut short: close the events array
        log = json.loads(text.rstrip(",") + "]}")
    names = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    urls = []
    for ev in log.get("events", []):
        p = ev.get("params") or {}
        if names.get(ev["type"]) != "URL_REQUEST_START_JOB" or "url" not in p:
            continue
        if p.get("initiator") == "not an origin" and "file://" not in p.get(
                "network_isolation_key", ""):
            continue
        if p["url"] != page_url:
            urls.append(p["url"])
    return urls


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("status")
    ap.add_argument("dom")
    ap.add_argument("url")
    ap.add_argument("--hygiene-only", action="store_true")
    ap.add_argument("--expect-done", type=int)
    ap.add_argument("--expect-rejected", type=int)
    ap.add_argument("--expect-steps")
    ap.add_argument("--expect-checkpoint", action="store_true")
    ap.add_argument("--line-status")
    ap.add_argument("--expect-stations", type=int)
    ap.add_argument("--png")
    a = ap.parse_args()
    errors = []

    def eq(what, got, want):
        if got != want:
            errors.append(f"{what}: page {got!r}, expected {want!r}")

    # No console message at all (the page has no script: any message is a
    # blocked load or an error) and no request.
    for line in open(a.dom + ".log", encoding="utf-8", errors="replace"):
        if ":CONSOLE" in line:
            errors.append("console message: " + line.strip())
    for u in netlog_requests(a.dom + ".netlog", a.url):
        errors.append("network request: " + u)

    if not a.hygiene_only:
        st = json.load(open(a.status))
        sh = st["shift"]
        page = Page()
        page.feed(open(a.dom, encoding="utf-8").read())
        ids = page.by_id

        def num(i):
            if i not in ids:
                errors.append(f"no element #{i}")
                return None
            return int(ids[i]["data-value"])

        eq("done", num("total-done"), sh["done"])
        eq("rejected", num("total-rejected"), sh["rejected"])
        eq("finished", num("total-finished"), sh["finished"])
        fpy = ids.get("fpy", {})
        eq("first pass", int(fpy.get("data-first-pass", -1)), sh["first_pass"])
        eq("finished (yield)", int(fpy.get("data-finished", -1)), sh["finished"])
        if sh["first_pass_yield"] is None or abs(
                float(fpy.get("data-value", "nan")) - sh["first_pass_yield"]) > 1e-12:
            errors.append(f"yield: page {fpy.get('data-value')}, "
                          f"expected {sh['first_pass_yield']}")
        for state, n in st["boards"].items():
            eq(f"boards {state}", num(f"state-{state}"), n)
        eq("quota left", num("quota-left"), st["quota_left"])
        eq("quota used", num("quota-used-bar"), st["issued"])
        eq("export backlog", num("outbox-pending"), st["outbox_pending"])
        steps = {r["data-step"]: int(r["data-count"]) for r in page.by_class.get("fail-step", [])}
        eq("failures by step", steps, sh["failures_by_step"])
        bars = [(ids[k]["data-label"], int(ids[k]["data-value"]))
                for k in sorted((k for k in ids if k.startswith("chart-pareto-bar-")),
                                key=lambda k: int(k.rsplit("-", 1)[1]))]
        eq("pareto bars", dict(bars), sh["failures_by_step"])
        if [v for _, v in bars] != sorted((v for _, v in bars), reverse=True):
            errors.append(f"pareto bars not in decreasing order: {bars}")
        hourly = sum(int(ids[k]["data-value"]) for k in ids if k.startswith("chart-hourly-bar-"))
        eq("done per hour, summed", hourly, sh["done"])
        cyc = sum(int(r["data-n"]) for r in page.by_class.get("cycle-fixture", []))
        eq("cycle times, boards", cyc, sh["done"])
        chain = st["chain"]
        eq("audit verdict", ids.get("audit", {}).get("data-ok"),
           "true" if chain["ok"] else "false")
        eq("audit events", num("audit-events"), chain["events"])
        eq("last signed checkpoint", num("audit-last-checkpoint"), chain["last_checkpoint_seq"])
        if a.expect_done is not None:
            eq("done (injected)", sh["done"], a.expect_done)
        if a.expect_rejected is not None:
            eq("rejected (injected)", sh["rejected"], a.expect_rejected)
        if a.expect_steps:
            want = {k: int(v) for k, v in (kv.split("=") for kv in a.expect_steps.split(","))}
            eq("failures by step (injected)", sh["failures_by_step"], want)
        if a.expect_checkpoint and not (chain["checkpoints"] >= 1 and chain["signatures_checked"]
                                        and chain["last_checkpoint_seq"] > 0):
            errors.append(f"no signed checkpoint verified: {chain}")
        if a.line_status:
            ln = json.load(open(a.line_status))
            eq("line issued", num("line-issued"), ln["issued"])
            eq("line quota left", num("line-quota-left"), ln["quota_left"])
            eq("line records", num("line-records"), ln["records"])
            eq("line conflicts", num("line-conflicts"), ln["conflicts"])
            rows = {r["data-station"]: (int(r["data-issued"]), int(r["data-records"]),
                                        int(r["data-failed"]))
                    for r in page.by_class.get("line-station", [])}
            want = {s["station"]: (s["issued"], s["records"], s["failed"])
                    for s in ln["stations"]}
            eq("line stations", rows, want)
            if a.expect_stations is not None:
                eq("stations on the line", len(rows), a.expect_stations)
            sums = {}
            for s in ln["stations"]:
                for k, v in s["failures_by_step"].items():
                    sums[k] = sums.get(k, 0) + v
            lbars = {ids[k]["data-label"]: int(ids[k]["data-value"])
                     for k in ids if k.startswith("chart-line-pareto-bar-")}
            eq("line failures by step", lbars, sums)
        if a.png:
            head = open(a.png, "rb").read(24)
            if head[:8] != b"\x89PNG\r\n\x1a\n":
                errors.append("screenshot is not a PNG")
            else:
                w, h = struct.unpack(">II", head[16:24])
                eq("screenshot size", (w, h), (1000, 1750))

    for e in errors:
        print("FAIL:", e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
