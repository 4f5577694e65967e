#!/usr/bin/env python3
"""The live dashboard in headless Chromium, driven through chromedriver's
W3C HTTP interface (standard library only): while a demo runs, the page's
done count reaches the journal's final count without a reload, and the
browser logs no console error.

usage: dashboard.py IMPRINT DATA_DIR DASHBOARD_URL SCRATCH_DIR"""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

imprint, data, url, scratch = sys.argv[1:5]
errors = []


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


port = free_port()
drv = subprocess.Popen(["chromedriver", f"--port={port}", "--allowed-ips=127.0.0.1"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
base = f"http://127.0.0.1:{port}"


def call(method, path, body=None):
    req = urllib.request.Request(base + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r)["value"]


def status_done():
    out = subprocess.run([imprint, "--data-dir", data, "--json", "status"], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)["shift"]["done"]


sid = None
demo = None
try:
    for _ in range(100):
        try:
            call("GET", "/status")
            break
        except OSError:
            time.sleep(0.1)
    caps = {"capabilities": {"alwaysMatch": {
        "browserName": "chrome",
        "goog:loggingPrefs": {"browser": "ALL"},
        "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--user-data-dir=" + os.path.join(scratch, "dash-profile")]}}}}
    sid = call("POST", "/session", caps)["sessionId"]

    def js(script):
        return call("POST", f"/session/{sid}/execute/sync", {"script": script, "args": []})

    call("POST", f"/session/{sid}/url", {"url": url})
    first = int(js("return document.getElementById('total-done').dataset.value"))
    if first != status_done():
        errors.append(f"page shows {first} done at first, the journal {status_done()}")
    js("window.__kept = 'same document'; return 0")
    seen = {first}
    demo = subprocess.Popen([imprint, "-q", "--data-dir", data, "demo", "--boards", "4",
                             "--latency", "0.3"], stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(scratch, "demo2.err"), "w"))
    while demo.poll() is None:
        seen.add(int(js("return document.getElementById('total-done').dataset.value")))
        time.sleep(0.2)
    if demo.returncode != 0:
        errors.append(f"the demo exited {demo.returncode}")
    final = status_done()
    if final != first + 4:
        errors.append(f"the journal has {final} done, expected {first + 4}")
    deadline = time.time() + 15
    shown = None
    while time.time() < deadline:
        shown = int(js("return document.getElementById('total-done').dataset.value"))
        seen.add(shown)
        if shown == final:
            break
        time.sleep(0.2)
    if shown != final:
        errors.append(f"the page shows {shown} done, the journal {final}")
    if js("return window.__kept || null") != "same document":
        errors.append("the page was reloaded (its window state is gone)")
    for e in call("POST", f"/session/{sid}/se/log", {"type": "browser"}):
        errors.append("console: " + e.get("message", ""))
    print(f"done counts seen on the page: {sorted(seen)}; final {final}")
finally:
    if demo and demo.poll() is None:
        demo.terminate()
        demo.wait()
    if sid:
        try:
            call("DELETE", f"/session/{sid}")
        except OSError:
            pass
    drv.terminate()
    drv.wait()

for e in errors:
    print("FAIL:", e)
sys.exit(1 if errors else 0)
