#!/usr/bin/env python3
"""A broker whose Metadata answer declares N partitions for every topic asked for (and nothing else works):
ApiVersions v3 (flexible) advertises ApiVersions 0-3 and Metadata 1 only. With "stall", it also advertises
Produce 7-8 and never answers a Produce request (a stalled cluster). With "hugeoffset", it advertises Produce 7-8
and answers every partition with base offset 2^63 - 2 (a hostile or broken broker: offsets near Int64.max).
Hostile ApiVersions answers (issue 16 item 1): "varint" gives the API array a 10-byte varint length, "tagged" gives the
first API a tagged field claiming 2^62 bytes. Hostile Fetch answers (item 3), with ListOffsets 1 and Fetch 4
advertised: "fetchcontrol" answers a CRC-valid control batch at base offset 2^63 - 1, "fetchdelta" a CRC-valid batch
whose record's timestamp delta overflows Int64 from its base timestamp.
"chunky" advertises Produce 7-8 and answers each partition with the next offsets of its own count, but delivers
its answers in awkward pieces: it holds a Produce answer until the next one is ready (or 50 ms pass) and then sends
the frames together, the first 2 bytes alone and the rest 20 ms later (a size field split across reads, and two
answers in one read).
Usage: partitions_broker.py PORT N [stall|hugeoffset|varint|tagged|fetchcontrol|fetchdelta|chunky]"""
import select
import socket
import time
import struct
import sys
import threading

from bad_broker import frames  # the same frame reader (this folder is on sys.path when run as a script)

PORT, N = int(sys.argv[1]), int(sys.argv[2])
MODE = sys.argv[3] if len(sys.argv) > 3 else ""
STALL = MODE == "stall"
HUGE = MODE == "hugeoffset"
FETCH = MODE in ("fetchcontrol", "fetchdelta")
CHUNKY = MODE == "chunky"
NEXT = {}  # chunky: (topic, partition) -> next offset


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc = CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


CRC_TABLE = []
for _n in range(256):
    _c = _n
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    CRC_TABLE.append(_c)


def zigzag(n):
    return uvarint((n << 1) ^ (n >> 63))


def record_batch(base_offset, base_timestamp, timestamp_delta, control):
    """One RecordBatch v2 with one record, its CRC-32C right (the base offset is outside the CRC anyway)."""
    value = b"x" if not control else b"\x00\x00\x00\x00"
    rec = b"\x00" + zigzag(timestamp_delta) + zigzag(0) + zigzag(-1) + zigzag(len(value)) + value + zigzag(0)
    rec = zigzag(len(rec)) + rec
    after_crc = struct.pack(">hiqqqhii", 0x20 if control else 0, 0, base_timestamp, base_timestamp, -1, -1, -1, 1) + rec
    head = struct.pack(">iB", 0, 2)  # partition leader epoch, magic
    body = head + struct.pack(">I", crc32c(after_crc)) + after_crc
    return struct.pack(">qi", base_offset, len(body)) + body


def uvarint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def kstr(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def answer(body):
    key, version, corr = struct.unpack(">hhi", body[:8])
    if key == 18:  # ApiVersions (v3: flexible body, v0 response header)
        apis = [(18, 0, 3), (3, 1, 1)] + ([(0, 7, 8)] if STALL or HUGE or CHUNKY else []) + ([(2, 1, 1), (1, 4, 4)] if FETCH else [])
        if MODE == "varint":  # a 10-byte varint where the API array's length goes
            return struct.pack(">i", corr) + struct.pack(">h", 0) + b"\xff" * 9 + b"\x01" + b"\x00" * 16
        out = struct.pack(">h", 0) + uvarint(len(apis) + 1)
        for k, lo, hi in apis:
            out += struct.pack(">hhh", k, lo, hi)
            # "tagged": the first API's tagged fields hold one field, tag 0, claiming 2^62 bytes
            out += uvarint(1) + uvarint(0) + uvarint(1 << 62) + b"\x00" * 8 if MODE == "tagged" else uvarint(0)
        out += struct.pack(">i", 0) + uvarint(0)
        return struct.pack(">i", corr) + out
    if key == 3:  # Metadata v1
        n_client = struct.unpack(">h", body[8:10])[0]
        pos = 10 + max(n_client, 0)
        count = struct.unpack(">i", body[pos:pos + 4])[0]
        pos += 4
        names = []
        for _ in range(max(count, 0)):
            ln = struct.unpack(">h", body[pos:pos + 2])[0]
            names.append(body[pos + 2:pos + 2 + ln].decode())
            pos += 2 + ln
        out = struct.pack(">i", 1) + struct.pack(">i", 0) + kstr("127.0.0.1") + struct.pack(">i", PORT) + struct.pack(">h", -1)
        out += struct.pack(">i", 0)  # controller
        out += struct.pack(">i", len(names))
        part = b"".join(struct.pack(">hiii", 0, p, 0, 1) + struct.pack(">i", 0) + struct.pack(">ii", 1, 0) for p in range(N))
        for name in names:
            out += struct.pack(">h", 0) + kstr(name) + b"\x00" + struct.pack(">i", N) + part
        return struct.pack(">i", corr) + out
    if key == 2 and FETCH:  # ListOffsets v1: partition 0 of "t" starts and ends at 0
        return struct.pack(">i", corr) + struct.pack(">i", 1) + kstr("t") + struct.pack(">iihqq", 1, 0, 0, -1, 0)
    if key == 1 and FETCH:  # Fetch v4: one partition of "t" with the hostile batch
        if MODE == "fetchcontrol":
            batch = record_batch((1 << 63) - 1, 0, 0, True)
        else:
            batch = record_batch(0, (1 << 63) - 10, 1000, False)
        out = struct.pack(">i", 0) + struct.pack(">i", 1) + kstr("t") + struct.pack(">i", 1)
        out += struct.pack(">ihqqi", 0, 0, 1, 1, -1) + struct.pack(">i", len(batch)) + batch
        return struct.pack(">i", corr) + out
    if key == 0 and (HUGE or CHUNKY):  # Produce v7/v8: every partition "stored" at base offset 2^63 - 2 (chunky: its next)
        def h(at): return struct.unpack(">h", body[at:at + 2])[0]
        def i32(at): return struct.unpack(">i", body[at:at + 4])[0]
        pos = 8
        pos += 2 + max(h(pos), 0)  # client id
        pos += 2 + max(h(pos), 0)  # transactional id
        pos += 6  # acks, timeout
        topics = []
        ntopics = i32(pos)
        pos += 4
        for _ in range(ntopics):
            ln = h(pos)
            name = body[pos + 2:pos + 2 + ln]
            pos += 2 + ln
            nparts = i32(pos)
            pos += 4
            parts = []
            for _ in range(nparts):
                size = i32(pos + 4)
                records = i32(pos + 8 + 57) if size >= 61 else 0  # the batch header's record count
                parts.append((i32(pos), records))
                pos += 8 + max(size, 0)
            topics.append((name, parts))
        out = struct.pack(">i", len(topics))
        for name, parts in topics:
            out += struct.pack(">h", len(name)) + name + struct.pack(">i", len(parts))
            for index, records in parts:
                base = (1 << 63) - 2
                if CHUNKY:
                    base = NEXT.get((name, index), 0)
                    NEXT[(name, index)] = base + records
                out += struct.pack(">ihqqq", index, 0, base, -1, 0)
                if version >= 8:
                    out += struct.pack(">i", 0) + struct.pack(">h", -1)
        out += struct.pack(">i", 0)
        return struct.pack(">i", corr) + out
    return None


def send_awkwardly(conn, held):
    """chunky: the held answers in one go, the first 2 bytes alone."""
    data = b"".join(held)
    held.clear()
    conn.sendall(data[:2])
    time.sleep(0.02)
    conn.sendall(data[2:])


def serve(conn):
    held = []
    try:
        requests = frames(conn)
        while True:
            if held and not select.select([conn], [], [], 0.05)[0]:
                send_awkwardly(conn, held)  # no next request within 50 ms: what is held goes now
            body = next(requests, None)
            if body is None:
                return
            if STALL and struct.unpack(">h", body[:2])[0] == 0:
                continue  # a Produce request: held, never answered
            resp = answer(body)
            if resp is None:
                return
            if CHUNKY and struct.unpack(">h", body[:2])[0] == 0:
                held.append(struct.pack(">i", len(resp)) + resp)
                if len(held) == 2:
                    send_awkwardly(conn, held)
                continue
            conn.sendall(struct.pack(">i", len(resp)) + resp)
    except OSError:
        pass
    finally:
        conn.close()


s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", PORT))
s.listen(16)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
