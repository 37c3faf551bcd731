#!/usr/bin/env python3
"""A broker whose Metadata answer declares N partitions for every topic asked for (and nothing else works):
ApiVersions v3 (flexible) advertises ApiVersions 0-3 and Metadata 1 only. With "stall", it also advertises
Produce 7-8 and never answers a Produce request (a stalled cluster). With "hugeoffset", it advertises Produce 7-8
and answers every partition with base offset 2^63 - 2 (a hostile or broken broker: offsets near Int64.max).
Usage: partitions_broker.py PORT N [stall|hugeoffset]"""
import socket
import struct
import sys
import threading

from bad_broker import frames  # the same frame reader (this folder is on sys.path when run as a script)

PORT, N = int(sys.argv[1]), int(sys.argv[2])
STALL = len(sys.argv) > 3 and sys.argv[3] == "stall"
HUGE = len(sys.argv) > 3 and sys.argv[3] == "hugeoffset"


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
        apis = [(18, 0, 3), (3, 1, 1)] + ([(0, 7, 8)] if STALL or HUGE else [])
        out = struct.pack(">h", 0) + uvarint(len(apis) + 1)
        for k, lo, hi in apis:
            out += struct.pack(">hhh", k, lo, hi) + uvarint(0)
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
    if key == 0 and HUGE:  # Produce v7/v8: every partition "stored" at base offset 2^63 - 2
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
                parts.append(i32(pos))
                size = i32(pos + 4)
                pos += 8 + max(size, 0)
            topics.append((name, parts))
        out = struct.pack(">i", len(topics))
        for name, parts in topics:
            out += struct.pack(">h", len(name)) + name + struct.pack(">i", len(parts))
            for index in parts:
                out += struct.pack(">ihqqq", index, 0, (1 << 63) - 2, -1, 0)
                if version >= 8:
                    out += struct.pack(">i", 0) + struct.pack(">h", -1)
        out += struct.pack(">i", 0)
        return struct.pack(">i", corr) + out
    return None


def serve(conn):
    try:
        for body in frames(conn):
            if STALL and struct.unpack(">h", body[:2])[0] == 0:
                continue  # a Produce request: held, never answered
            resp = answer(body)
            if resp is None:
                return
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
