#!/usr/bin/env python3
"""Tamper with a copy of a station journal the way someone holding the file
(and docs/JOURNAL.md) could: tamper.py DB CASE. Each case leaves the file
self-consistent where it can (the hash chain rebuilt from the documented
bytes), so only what the audit checks beyond the chain can catch it."""
import hashlib
import sqlite3
import struct
import sys

MAGIC = b"imprint-journal-event-v1"


def field(v):
    if v is None:
        return b"\xff\xff\xff\xff"
    b = v.encode()
    return struct.pack(">I", len(b)) + b


def rehash(db):
    """Renumber the events 1..n and rebuild every hash and the head."""
    rows = db.execute("select seq, ts, mono_ns, uid, serial, kind, detail from events "
                      "order by seq").fetchall()
    db.execute("delete from events")
    prev = "0" * 64
    for n, (_, ts, mono, uid, serial, kind, detail) in enumerate(rows, 1):
        body = (MAGIC + struct.pack(">QQ", n, mono) + field(ts) + field(uid) + field(serial)
                + field(kind) + field(detail))
        h = hashlib.sha256(bytes.fromhex(prev) + body).hexdigest()
        db.execute("insert into events(seq, ts, mono_ns, uid, serial, kind, detail, prev_hash, "
                   "hash) values (?,?,?,?,?,?,?,?,?)", (n, ts, mono, uid, serial, kind, detail,
                                                        prev, h))
        prev = h
    db.execute("update settings set value = ? where key = 'head_seq'", (str(len(rows)),))
    db.execute("update settings set value = ? where key = 'head_hash'", (prev,))


def main():
    db = sqlite3.connect(sys.argv[1])
    case = sys.argv[2]
    for t in ("events_no_update", "events_no_delete", "checkpoints_no_update",
              "checkpoints_no_delete"):
        db.execute(f"drop trigger if exists {t}")
    if case == "edited-event":
        # a state event's detail changed, nothing else
        seq = db.execute("select min(seq) from events where kind = 'state'").fetchone()[0]
        db.execute("update events set detail = replace(detail, '\"to\"', '\"To\"') "
                   "where seq = ?", (seq,))
    elif case == "edited-outbox-column":
        rid = db.execute("select record_id from outbox where kind = 'identity' "
                         "limit 1").fetchone()[0]
        db.execute("update outbox set serial = serial || 'X' where record_id = ?", (rid,))
    elif case == "truncated-tail":
        # the last board's completion cut off (and all after it: deliveries,
        # checkpoints), the head moved back to the event before
        keep = db.execute("select max(seq) from events where kind = 'state' and "
                          "detail like '%\"to\":\"DONE\"%'").fetchone()[0] - 1
        db.execute("delete from checkpoints where seq > ?", (keep,))
        db.execute("delete from events where seq > ?", (keep,))
        h = db.execute("select hash from events where seq = ?", (keep,)).fetchone()[0]
        db.execute("update settings set value = ? where key = 'head_seq'", (str(keep),))
        db.execute("update settings set value = ? where key = 'head_hash'", (h,))
    elif case == "rehashed-chain":
        # an event altered, every checkpoint (which cannot be re-signed) and
        # its event dropped, the whole chain rebuilt from the documented bytes
        seq = db.execute("select min(seq) from events where kind = 'alloc'").fetchone()[0]
        db.execute("update events set detail = replace(detail, '\"fixture\":\"', "
                   "'\"fixture\":\"X') where seq = ?", (seq,))
        db.execute("delete from checkpoints")
        db.execute("delete from events where kind = 'checkpoint'")
        rehash(db)
    else:
        sys.exit(f"unknown case {case}")
    db.commit()


if __name__ == "__main__":
    main()
