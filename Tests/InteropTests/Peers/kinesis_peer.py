"""boto3 as the independent Kinesis/S3 peer for pinbench's tests and perf runs.

  verify ENDPOINT PREFIX EMU_DIR [--allow-duplicates]
      Reads every shard of streaming-PREFIX-pin|geo|user from TRIM_HORIZON with boto3, unpacks KPL-aggregated
      records (own decoder: magic, MD5, protobuf), and checks each record against the emulator's output for
      its partition key (the post index): every index present, values equal, each exactly once (or, with
      --allow-duplicates, at least once: Kinesis is at-least-once). Prints a JSON summary.
  iam-key ENDPOINT
      Creates an IAM user and access key in moto; prints "KEY SECRET".
  put ENDPOINT STREAM FILE
      Sends every line of FILE with put_records in batches of 500 (the perf peer); prints a JSON summary.
  s3-verify ENDPOINT BUCKET PREFIX LOCAL_ROOT
      Lists s3://BUCKET/PREFIX with boto3 and compares every object with the file under LOCAL_ROOT.
"""
import hashlib
import json
import os
import sys
import time

import boto3
from botocore.config import Config

MAGIC = b"\xf3\x89\x9a\xc2"


def client(service, endpoint):
    return boto3.client(service, endpoint_url=endpoint, region_name=os.environ.get("AWS_REGION", "us-east-1"),
                        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
                        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
                        config=Config(retries={"max_attempts": 10, "mode": "standard"}))


def varint(b, i):
    v = shift = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        if c < 0x80:
            return v, i
        shift += 7


def fields(b):
    i = 0
    while i < len(b):
        tag, i = varint(b, i)
        wire, num = tag & 7, tag >> 3
        if wire == 0:
            v, i = varint(b, i)
            yield num, v
        elif wire == 2:
            n, i = varint(b, i)
            yield num, b[i:i + n]
            i += n
        else:
            raise ValueError(f"wire type {wire}")


def deaggregate(key, data):
    if not data.startswith(MAGIC) or len(data) < 20:
        return [(key, data)]
    pb, digest = data[4:-16], data[-16:]
    if hashlib.md5(pb).digest() != digest:
        return [(key, data)]
    keys, out = [], []
    for num, v in fields(pb):
        if num == 1:
            keys.append(v.decode())
        elif num == 3:
            ki, d = 0, b""
            for n2, v2 in fields(v):
                if n2 == 1:
                    ki = v2
                elif n2 == 3:
                    d = v2
            out.append((ki, d))
    return [(keys[ki], d) for ki, d in out]


def read_stream(kin, name):
    shards = [s["ShardId"] for s in kin.list_shards(StreamName=name)["Shards"]]
    got = []
    kinesis_records = 0
    for sh in shards:
        it = kin.get_shard_iterator(StreamName=name, ShardId=sh, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while it:
            r = kin.get_records(ShardIterator=it, Limit=10000)
            for rec in r["Records"]:
                kinesis_records += 1
                for k, d in deaggregate(rec["PartitionKey"], rec["Data"]):
                    got.append((sh, k, d))
            it = r.get("NextShardIterator")
            if not r["Records"] and r.get("MillisBehindLatest", 0) == 0:
                break
    return shards, got, kinesis_records


def verify(endpoint, prefix, emu, allow_duplicates, ordered=False):
    kin = client("kinesis", endpoint)
    problems, summary = [], {"records": 0, "duplicates": 0, "kinesis_records": 0, "shards": {}}
    for kind in ("pin", "geo", "user"):
        with open(f"{emu}/{kind}.jsonl", "rb") as f:
            expected = f.read().splitlines()
        shards, got, nk = read_stream(kin, f"streaming-{prefix}-{kind}")
        summary["shards"][kind] = len(shards)
        summary["kinesis_records"] += nk
        seen = {}
        last = {}
        for sh, key, data in got:
            idx = int(key)
            # An ordered flood sends each key's records in index order: each shard reads them so.
            if ordered and idx <= last.get(sh, -1):
                problems.append(f"{kind}: index {idx} after {last[sh]} on {sh}")
            last[sh] = idx
            if idx in seen:
                summary["duplicates"] += 1
                if not allow_duplicates:
                    problems.append(f"{kind}: index {idx} twice")
                continue
            seen[idx] = sh
            if idx >= len(expected) or expected[idx] != data:
                problems.append(f"{kind}: value of index {idx} differs from the emulator's")
        missing = [i for i in range(len(expected)) if i not in seen]
        if missing:
            problems.append(f"{kind}: {len(missing)} records missing, first {missing[:5]}")
        used = set(seen.values())
        # Keys spread over shards by MD5: with over 100 Kinesis records, all on one shard means routing is broken.
        if len(shards) > 1 and nk > 100 and len(used) < len(shards):
            problems.append(f"{kind}: only {len(used)} of {len(shards)} shards got records")
        summary[kind] = len(seen)
        summary["records"] += len(seen)
    summary["problems"] = problems[:20]
    print(json.dumps(summary))
    return 1 if problems else 0


def iam_key(endpoint):
    iam = client("iam", endpoint)
    iam.create_user(UserName="pinbench")
    iam.put_user_policy(UserName="pinbench", PolicyName="all", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    k = iam.create_access_key(UserName="pinbench")["AccessKey"]
    print(k["AccessKeyId"], k["SecretAccessKey"])
    return 0


def put(endpoint, stream, path):
    kin = client("kinesis", endpoint)
    with open(path, "rb") as f:
        lines = f.read().splitlines()
    t0, c0 = time.perf_counter(), time.process_time()
    sent = failed = 0
    for i in range(0, len(lines), 500):
        batch = [{"Data": d, "PartitionKey": str(i + j)} for j, d in enumerate(lines[i:i + 500])]
        while batch:
            r = kin.put_records(StreamName=stream, Records=batch)
            retry = [e for e, res in zip(batch, r["Records"]) if "ErrorCode" in res]
            sent += len(batch) - len(retry)
            batch = retry
    print(json.dumps({"records": sent, "failed": failed, "seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0}))
    return 0


def s3_verify(endpoint, bucket, prefix, root):
    s3 = client("s3", endpoint)
    objects = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            objects[o["Key"]] = o["Size"]
    problems, lines = [], 0
    local = []
    for d, _, files in os.walk(root):
        for f in files:
            if not f.startswith("."):
                local.append(os.path.relpath(os.path.join(d, f), root))
    for rel in sorted(local):
        key = f"{prefix.rstrip('/')}/{rel}" if prefix else rel
        if key not in objects:
            problems.append(f"missing object {key}")
            continue
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        with open(os.path.join(root, rel), "rb") as f:
            if f.read() != body:
                problems.append(f"{key} differs from {rel}")
        lines += body.count(b"\n")
    extra = set(objects) - {f"{prefix.rstrip('/')}/{r}" if prefix else r for r in local}
    problems += [f"unexpected object {k}" for k in sorted(extra)[:5]]
    print(json.dumps({"objects": len(objects), "lines": lines, "problems": problems[:20]}))
    return 1 if problems else 0


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "verify":
        sys.exit(verify(sys.argv[2], sys.argv[3], sys.argv[4], "--allow-duplicates" in sys.argv, "--ordered" in sys.argv))
    if cmd == "iam-key":
        sys.exit(iam_key(sys.argv[2]))
    if cmd == "put":
        sys.exit(put(*sys.argv[2:5]))
    if cmd == "s3-verify":
        sys.exit(s3_verify(*sys.argv[2:6]))
    sys.exit(f"unknown command {cmd}")
