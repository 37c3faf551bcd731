#!/usr/bin/env python3
"""Behaves as the original emulator clients did, against `pinbench serve`.

  ingest_client.py BASE_URL EMULATE_DIR PINBENCH_BIN DATA_DIR [API_KEY]

With an https:// BASE_URL, INGEST_CA names the CA file both `requests` (verify=) and the raw sockets trust.

Posts every emulated record, one per request, with `requests` and json.dumps defaults: to the Kafka REST
proxy (POST /topics/pinbench.<kind>) and to the API Gateway shapes (PUT /streams/streaming-pinbench-<kind>/record),
checks each answer field by field, then reads the embedded log with `pinbench log cat` and checks that every
record arrived once per path. Then sends malformed requests and checks each gets its error while the server
keeps serving. Prints one JSON line; exits 1 on any problem.
"""
import json
import os
import socket
import ssl
import subprocess
import sys
import time

import requests


def main():
    base, emu, binary, data = sys.argv[1:5]
    key = sys.argv[5] if len(sys.argv) > 5 else None
    headers = {"X-API-Key": key} if key else {}
    problems = []
    s = requests.Session()
    tls = base.startswith("https://")
    if tls:
        # requests prefers REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE (set on some machines) over a session's verify=.
        os.environ["REQUESTS_CA_BUNDLE"] = os.environ["CURL_CA_BUNDLE"] = os.environ["INGEST_CA"]
        s.verify = os.environ["INGEST_CA"]
    rows = {}
    for kind in ("pin", "geo", "user"):
        with open(f"{emu}/{kind}.jsonl") as f:
            rows[kind] = [json.loads(line) for line in f]
    sent = 0
    for kind, recs in rows.items():
        for row in recs:
            r = s.post(f"{base}/topics/pinbench.{kind}", data=json.dumps({"records": [{"value": row}]}),
                       headers={**headers, "Content-Type": "application/vnd.kafka.json.v2+json"})
            if r.status_code != 200:
                problems.append(f"REST {kind}: {r.status_code} {r.text[:200]}")
                continue
            b = r.json()
            o = b.get("offsets", [{}])[0]
            if set(b) != {"offsets", "key_schema_id", "value_schema_id"} or b["key_schema_id"] is not None or \
                    not isinstance(o.get("partition"), int) or not isinstance(o.get("offset"), int) or \
                    o.get("error_code", 1) is not None or o.get("error", 1) is not None:
                problems.append(f"REST answer shape: {b}")
            r = s.put(f"{base}/streams/streaming-pinbench-{kind}/record",
                      data=json.dumps({"StreamName": f"streaming-pinbench-{kind}", "Data": row, "PartitionKey": "partition-0"}),
                      headers={**headers, "Content-Type": "application/json"})
            if r.status_code != 200:
                problems.append(f"Kinesis {kind}: {r.status_code} {r.text[:200]}")
                continue
            b = r.json()
            if set(b) != {"SequenceNumber", "ShardId"} or not isinstance(b["SequenceNumber"], str) or \
                    not b["ShardId"].startswith("shardId-") or len(b["ShardId"]) != 20:
                problems.append(f"Kinesis answer shape: {b}")
            sent += 2
    # PutRecords with the AWS tutorial's lowercase body.
    r = s.put(f"{base}/streams/streaming-pinbench-geo/records",
              data=json.dumps({"records": [{"data": rows["geo"][0], "partition-key": "a"}, {"data": rows["geo"][1], "partition-key": "b"}]}),
              headers={**headers, "Content-Type": "application/json"})
    b = r.json() if r.status_code == 200 else {}
    if b.get("FailedRecordCount") != 0 or len(b.get("Records", [])) != 2:
        problems.append(f"PutRecords: {r.status_code} {r.text[:200]}")
    extra_geo = [rows["geo"][0], rows["geo"][1]]
    # Malformed requests: each gets its error.
    cases = []

    def check(name, resp, status, code=None):
        ok = resp.status_code == status
        body = {}
        try:
            body = resp.json()
        except ValueError:
            pass
        if code is not None and body.get("error_code") != code:
            ok = False
        cases.append(name)
        if not ok:
            problems.append(f"{name}: got {resp.status_code} {resp.text[:150]}, expected {status}/{code}")

    jh = {**headers, "Content-Type": "application/vnd.kafka.json.v2+json"}
    check("malformed JSON", s.post(f"{base}/topics/pinbench.pin", data='{"records":[{"value":{"a":}}]}', headers=jh), 422, 42201)
    check("wrong content type", s.post(f"{base}/topics/pinbench.pin", data='{"records":[]}', headers={**headers, "Content-Type": "text/plain"}), 415, 415)
    check("unknown topic", s.post(f"{base}/topics/nope", data='{"records":[{"value":1}]}', headers=jh), 404, 40401)
    check("oversize body", s.post(f"{base}/topics/pinbench.pin", data='{"records":[{"value":"' + "x" * (11 << 20) + '"}]}', headers=jh), 413, 413)
    check("invalid UTF-8", s.post(f"{base}/topics/pinbench.pin", data=b'{"records":[{"value":"\xff\xfe"}]}', headers=jh), 422, 42201)
    check("unknown stream", s.put(f"{base}/streams/nope/record", data="{}", headers={**headers, "Content-Type": "application/json"}), 404, 40401)
    if key:
        check("missing API key", s.post(f"{base}/topics/pinbench.pin", data='{"records":[{"value":1}]}',
                                        headers={"Content-Type": "application/vnd.kafka.json.v2+json"}), 401, 40101)
    # A client that sends half a body and stops: the server must not hang on it for others.
    host, port = base.split("//")[1].split(":")

    def connect():
        c = socket.create_connection((host, int(port)))
        return ssl.create_default_context(cafile=os.environ["INGEST_CA"]).wrap_socket(c, server_hostname=host) if tls else c
    half = connect()
    half.sendall(b"POST /topics/pinbench.pin HTTP/1.1\r\nHost: x\r\nContent-Type: application/vnd.kafka.json.v2+json\r\nContent-Length: 1000\r\n\r\n{\"records\":")
    t0 = time.time()
    r = s.get(f"{base}/topics", headers=headers)
    if r.status_code != 200 or r.json() != ["pinbench.pin", "pinbench.geo", "pinbench.user"] or time.time() - t0 > 5:
        problems.append(f"server stopped serving while a half-sent request waits: {r.status_code}")
    half.close()
    cases.append("half body")
    # Pipelining: three requests in one write; three answers, in request order, on the same connection.
    def split_answers(raw):
        statuses, bodies, rest = [], [], raw
        while b"\r\n\r\n" in rest:
            head, tail = rest.split(b"\r\n\r\n", 1)
            lines = head.split(b"\r\n")
            n = next((int(l.split(b":")[1]) for l in lines[1:] if l.lower().startswith(b"content-length:")), 0)
            if len(tail) < n:
                break
            statuses.append(int(lines[0].split()[1]))
            bodies.append(json.loads(tail[:n]) if n else {})
            rest = tail[n:]
        return statuses, bodies

    def read_answers(c, got, answers):
        """Reads from socket c until `answers` whole answers are in got (or EOF or the timeout)."""
        try:
            while len(split_answers(got)[0]) < answers:
                d = c.recv(65536)
                if not d:
                    break
                got += d
        except socket.timeout:
            pass
        return got

    def raw_exchange(payload, answers, timeout=10):
        c = connect()
        c.settimeout(timeout)
        c.sendall(payload)
        got = read_answers(c, b"", answers)
        c.close()
        return got
    auth = f"X-API-Key: {key}\r\n".encode() if key else b""
    def post(topic, body):
        b = body.encode()
        return (f"POST /topics/{topic} HTTP/1.1\r\nHost: x\r\nContent-Type: application/vnd.kafka.json.v2+json\r\n"
                f"Content-Length: {len(b)}\r\n").encode() + auth + b"\r\n" + b
    piped = raw_exchange(post("pinbench.geo", json.dumps({"records": [{"value": rows["geo"][0]}]})) +
                         post("nope", '{"records":[{"value":1}]}') +
                         post("pinbench.geo", json.dumps({"records": [{"value": rows["geo"][1]}, {"value": rows["geo"][2]}]})), 3)
    statuses, bodies = split_answers(piped)
    if statuses != [200, 404, 200] or len(bodies) != 3 or len(bodies[0].get("offsets", [])) != 1 or \
            bodies[1].get("error_code") != 40401 or len(bodies[2].get("offsets", [])) != 2:
        problems.append(f"pipelined: statuses {statuses}, answers {piped[:300]!r}")
    extra_geo += [rows["geo"][0], rows["geo"][1], rows["geo"][2]]
    cases.append("pipelined")
    # A chunked body (requests sends one for a generator): read whole, answered like any other.
    def chunks():
        body = json.dumps({"records": [{"value": rows["geo"][3]}, {"value": rows["geo"][4]}]}).encode()
        for i in range(0, len(body), 7):
            yield body[i:i + 7]
    r = s.post(f"{base}/topics/pinbench.geo", data=chunks(), headers=jh)
    if r.status_code != 200 or len(r.json().get("offsets", [])) != 2:
        problems.append(f"chunked: {r.status_code} {r.text[:200]}")
    extra_geo += [rows["geo"][3], rows["geo"][4]]
    cases.append("chunked")
    # Expect: 100-continue (curl sends it before bodies over 1 MiB): the server says go on before the body.
    body = json.dumps({"records": [{"value": rows["geo"][5]}]}).encode()
    c = connect()
    c.settimeout(5)
    c.sendall(f"POST /topics/pinbench.geo HTTP/1.1\r\nHost: x\r\nContent-Type: application/vnd.kafka.json.v2+json\r\n"
              f"Expect: 100-continue\r\nContent-Length: {len(body)}\r\n".encode() + auth + b"\r\n")
    first = b""
    try:
        while b"\r\n\r\n" not in first:
            d = c.recv(4096)
            if not d:
                break
            first += d
    except socket.timeout:
        pass
    got = first
    if first.startswith(b"HTTP/1.1 100"):
        c.sendall(body)
        got = read_answers(c, first.split(b"\r\n\r\n", 1)[1], 1)
    c.close()
    st, bd = split_answers(got)
    if not first.startswith(b"HTTP/1.1 100") or st != [200] or len(bd[0].get("offsets", [])) != 1:
        problems.append(f"100-continue: first {first[:40]!r}, then {got[:120]!r}")
    extra_geo += [rows["geo"][5]]
    cases.append("100-continue")
    # Both Content-Length and Transfer-Encoding (request smuggling): 400.
    both = raw_exchange(b"POST /topics/pinbench.geo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n" + auth +
                        b"\r\n0\r\n\r\n", 1, timeout=5)
    if not both.startswith(b"HTTP/1.1 400"):
        problems.append(f"Content-Length with Transfer-Encoding: got {both[:100]!r}")
    cases.append("length and chunked")
    # Not HTTP at all: 400 and the connection closes; the server keeps serving.
    bad = raw_exchange(b"HELLO THERE\r\n\r\n", 1, timeout=5)
    if not bad.startswith(b"HTTP/1.1 400"):
        problems.append(f"bad request line: got {bad[:100]!r}")
    cases.append("bad HTTP")
    # Headers over the limit: 431, then close.
    big = raw_exchange(b"GET /topics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200000 + b"\r\n\r\n", 1, timeout=5)
    if not big.startswith(b"HTTP/1.1 431"):
        problems.append(f"oversize headers: got {big[:100]!r}")
    cases.append("oversize headers")
    # Every record arrived once per path (plus the two PutRecords and the pipelined ones).
    for kind, recs in rows.items():
        out = subprocess.run([binary, "log", "cat", "--data-dir", data, "--topic", f"pinbench.{kind}"], capture_output=True, text=True)
        got = sorted(json.dumps(json.loads(l), sort_keys=True) for l in out.stdout.splitlines())
        want = sorted(json.dumps(x, sort_keys=True) for x in recs * 2 + (extra_geo if kind == "geo" else []))
        if got != want:
            problems.append(f"{kind}: log holds {len(got)} records, expected {len(want)} (or values differ)")
    m = s.get(f"{base}/metrics", headers=headers).text  # with --api-key every route needs the key
    metrics = {l.split()[0]: float(l.split()[1]) for l in m.splitlines() if l and not l.startswith("#") and "{" not in l}
    acc, sto, rej = (metrics.get(f"pinbench_ingest_records_{k}_total", -1) for k in ("accepted", "stored", "rejected"))
    if acc != sto or acc != sent + 8:
        problems.append(f"metrics: accepted {acc}, stored {sto}, sent {sent + 8}")
    print(json.dumps({"sent": sent + 8, "accepted": acc, "stored": sto, "rejected": rej, "cases": cases, "problems": problems[:20]}))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
