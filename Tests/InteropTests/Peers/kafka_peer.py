#!/usr/bin/env python3
"""librdkafka (confluent-kafka 2.x) as the independent peer for pinbench's Kafka client.

  kafka_peer.py verify BOOTSTRAP PREFIX EMULATE_DIR
      Consumes PREFIX.pin|geo|user from offset 0 with check.crcs=true and checks, against the emulator's
      JSONL files, that every value arrived exactly once and in index order within each partition. Then
      produces the same keys with librdkafka's murmur2_random partitioner to a scratch topic with the same
      partition count and checks that every key landed in the partition librdkafka picks.
  kafka_peer.py read BOOTSTRAP TOPIC N
      Consumes TOPIC from offset 0 with check.crcs=true until N records came (or 10 s passed with none) and
      prints each partition's [offset, value] pairs in the order they came.
  kafka_peer.py produce BOOTSTRAP TOPIC FILE CODEC
      Produces every line of FILE (key = line number) with librdkafka, idempotent, and waits for delivery.

Prints one JSON line; exits 1 on any problem.
"""
import json
import sys
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def consume_all(bootstrap, topic, expected_total):
    c = Consumer({
        "bootstrap.servers": bootstrap, "group.id": "pinbench-verify-" + uuid.uuid4().hex,
        "enable.auto.commit": False, "check.crcs": True, "auto.offset.reset": "earliest",
    })
    md = c.list_topics(topic, timeout=10)
    parts = sorted(md.topics[topic].partitions)
    c.assign([TopicPartition(topic, p, 0) for p in parts])
    out = {p: [] for p in parts}
    errors = []
    got = 0
    deadline = time.time() + 60
    idle_since = time.time()
    while time.time() < deadline:
        msgs = c.consume(10000, 0.5)
        if not msgs:
            if got >= expected_total and time.time() - idle_since > 1.0:
                break
            if time.time() - idle_since > 10:
                break
            continue
        idle_since = time.time()
        for m in msgs:
            if m.error():
                if m.error().code() != -191:  # partition EOF
                    errors.append(str(m.error()))
                continue
            out[m.partition()].append((m.offset(), m.key(), m.value()))
            got += 1
    c.close()
    return parts, out, errors


def verify(bootstrap, prefix, emulate_dir):
    problems = []
    summary = {"records": 0}
    key_partition = {}
    nparts = None
    for kind in ("pin", "geo", "user"):
        with open(f"{emulate_dir}/{kind}.jsonl", "rb") as f:
            expected = f.read().splitlines()
        parts, got, errors = consume_all(bootstrap, f"{prefix}.{kind}", len(expected))
        nparts = len(parts)
        problems += [f"{kind}: consumer error {e}" for e in errors[:5]]
        seen = {}
        for p, rows in got.items():
            last = -1
            for off, key, value in rows:
                idx = int(key)
                if idx in seen:
                    problems.append(f"{kind}: index {idx} twice (partitions {seen[idx]} and {p})")
                seen[idx] = p
                if idx <= last:
                    problems.append(f"{kind}-{p}: index {idx} after {last}: out of order")
                last = idx
                if idx >= len(expected) or expected[idx] != value:
                    problems.append(f"{kind}: value of index {idx} differs from the emulator's")
                key_partition[key] = p
        missing = [i for i in range(len(expected)) if i not in seen]
        if missing:
            problems.append(f"{kind}: {len(missing)} records missing, first {missing[:5]}")
        summary[kind] = len(seen)
        summary["records"] += len(seen)
    # librdkafka's murmur2_random partitioner on the same keys.
    scratch = "pinbench-partitioner-" + uuid.uuid4().hex[:8]
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(scratch, nparts, 1)]).values():
        f.result()
    time.sleep(0.5)
    picked = {}
    p = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random", "linger.ms": 5})
    keys = list(key_partition)[:3000]

    def cb(err, msg):
        if err is None:
            picked[msg.key()] = msg.partition()

    for k in keys:
        p.produce(scratch, b"x", key=k, on_delivery=cb)
    p.flush(30)
    mism = [k for k in keys if picked.get(k) != key_partition[k]]
    if len(picked) != len(keys):
        problems.append(f"librdkafka delivered {len(picked)} of {len(keys)} partitioner probes")
    if mism:
        problems.append(f"{len(mism)} keys in another partition than librdkafka's murmur2_random picks, e.g. {mism[:3]}")
    summary["partitioner_checked"] = len(keys)
    summary["problems"] = problems[:20]
    print(json.dumps(summary))
    sys.exit(1 if problems else 0)


def produce(bootstrap, topic, path, codec):
    with open(path, "rb") as f:
        lines = f.read().splitlines()
    delivered = 0
    failed = []

    def cb(err, msg):
        nonlocal delivered
        if err is None:
            delivered += 1
        else:
            failed.append(str(err))

    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "compression.type": codec, "linger.ms": 5})
    for i, line in enumerate(lines):
        while True:
            try:
                p.produce(topic, line, key=str(i).encode(), on_delivery=cb)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    p.flush(60)
    print(json.dumps({"delivered": delivered, "failed": failed[:5]}))
    sys.exit(0 if delivered == len(lines) else 1)


def read(bootstrap, topic, n):
    parts, out, errors = consume_all(bootstrap, topic, int(n))
    records = {str(p): [[o, v.decode()] for o, _, v in out[p]] for p in parts}
    print(json.dumps({"errors": errors[:5], "partitions": records}))
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "verify":
        verify(*sys.argv[2:5])
    elif cmd == "read":
        read(*sys.argv[2:5])
    elif cmd == "produce":
        produce(*sys.argv[2:6])
    else:
        sys.exit(f"unknown command {cmd}")
