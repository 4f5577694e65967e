#!/usr/bin/python3
# Why Debian's python3-pyocd (0.13.1) cannot drive the virtual board
# (docs/PROBES.md, "pyOCD"), checked against pyOCD's own code so that the
# finding is re-examined when the package changes: its probe types are a
# fixed list (CMSIS-DAP and ST-Link, both over USB; no plugin mechanism),
# and its one transport without USB, the WebSocket CMSIS-DAP backend,
# fails on Python 3 in both directions before a byte reaches a socket.
# What the station can do with pyOCD is covered elsewhere: the rsp driver's
# refusals of server=pyocd (board_unit_rsp_server).
import base64
import sys

import pyocd
from pyocd.probe import aggregator
from pyocd.probe.pydapaccess.interface import INTERFACE
from pyocd.probe.pydapaccess.interface.ws_backend import WebSocketInterface

fails = 0


def check(cond, what):
    global fails
    if cond:
        print("ok:", what)
    else:
        fails += 1
        print("FAIL:", what)


check(pyocd.__version__.startswith("0.13"), "pyOCD is 0.13 (%s)" % pyocd.__version__)
names = sorted(c.__name__ for c in aggregator.PROBE_CLASSES)
check(names == ["CMSISDAPProbe", "StlinkProbe"], "probe classes are a fixed list: %s" % names)
check(sorted(INTERFACE) == ["hidapiusb", "pyusb", "pywinusb", "ws"],
      "CMSIS-DAP transports: %s (ws the only one without USB)" % sorted(INTERFACE))


class Socket:
    """Stands in for the websocket connection: what would cross it."""

    def __init__(self):
        self.sent = []

    def send(self, data):
        self.sent.append(data)

    def recv(self):
        # a DAP_Info reply, base64 as the backend expects it
        return base64.b64encode(bytes([0x00, 0x01, 0x10]))


ws = WebSocketInterface.__new__(WebSocketInterface)
ws.ws = Socket()
try:
    ws.write([0x00, 0x04])  # DAP_Info: packet size
    write_error = None
except TypeError as e:
    write_error = str(e)
check(write_error is not None and not ws.ws.sent,
      "write() fails before sending: %s" % write_error)
try:
    ws.read()
    read_error = None
except TypeError as e:
    read_error = str(e)
check(read_error is not None, "read() fails on the reply: %s" % read_error)
print("%d failed" % fails)
sys.exit(1 if fails else 0)
