#!/usr/bin/env python3
"""Independent reader of pinbench's embedded log, built on kafka-python's own RecordBatch code.

Usage: read_kafka_log.py DATA_DIR EMULATE_DIR TOPIC_PREFIX PARTITIONS

Walks every segment of <prefix>.pin|geo|user with kafka.record.MemoryRecords, checks each batch's
CRC-32C (validate_crc), magic, record count and offsets, decompresses with kafka-python's codecs,
and compares every value with the emulator's JSONL files. The partition of every record must be the
one Kafka's Java partitioner picks (kafka-python's murmur2). Prints one JSON summary line; exits 1 on
any mismatch.
"""
import glob
import json
import os
import sys

from kafka.partitioner.default import murmur2
from kafka.record import MemoryRecords


def main():
    data_dir, emulate_dir, prefix, partitions = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    problems = []
    summary = {"batches": 0, "records": 0, "codecs": set(), "topics": {}}
    for kind in ("pin", "geo", "user"):
        with open(os.path.join(emulate_dir, kind + ".jsonl"), "rb") as f:
            expected = f.read().splitlines()
        got = {}
        dirs = sorted(glob.glob(os.path.join(data_dir, "log", f"{prefix}.{kind}-*")))
        if len(dirs) != partitions:
            problems.append(f"{kind}: {len(dirs)} partition folders, expected {partitions}")
        for pdir in dirs:
            partition = int(pdir.rsplit("-", 1)[1])
            next_offset = 0
            last_index = -1
            for seg in sorted(glob.glob(os.path.join(pdir, "*.log"))):
                base = int(os.path.basename(seg)[:20])
                if base != next_offset:
                    problems.append(f"{seg}: named for offset {base}, previous segment ended at {next_offset}")
                with open(seg, "rb") as f:
                    records = MemoryRecords(f.read())
                while records.has_next():
                    batch = records.next_batch()
                    summary["batches"] += 1
                    summary["codecs"].add(batch.compression_type)
                    if batch.magic != 2:
                        problems.append(f"{seg}: magic {batch.magic}")
                    if not batch.validate_crc():
                        problems.append(f"{seg}: CRC mismatch at offset {batch.base_offset}")
                    if batch.base_offset != next_offset:
                        problems.append(f"{seg}: batch at {batch.base_offset}, expected {next_offset}")
                    n = 0
                    for r in batch:
                        if r.offset != next_offset + n:
                            problems.append(f"{seg}: record offset {r.offset}, expected {next_offset + n}")
                        idx = int(r.key)
                        if idx <= last_index:
                            problems.append(f"{kind}-{partition}: index {idx} after {last_index} (reordered)")
                        last_index = idx
                        want = (murmur2(r.key) & 0x7FFFFFFF) % partitions
                        if want != partition:
                            problems.append(f"{kind}: key {r.key!r} in partition {partition}, Java partitioner says {want}")
                        if idx in got:
                            problems.append(f"{kind}: index {idx} twice")
                        got[idx] = bytes(r.value)
                        n += 1
                    if n != batch.records_count:
                        problems.append(f"{seg}: batch says {batch.records_count} records, holds {n}")
                    next_offset += n
        if len(got) != len(expected):
            problems.append(f"{kind}: {len(got)} records in the log, {len(expected)} emulated")
        for i, line in enumerate(expected):
            if got.get(i) != line:
                problems.append(f"{kind}: value of index {i} differs from the emulator's")
                break
        summary["topics"][kind] = len(got)
        summary["records"] += len(got)
    summary["codecs"] = sorted(summary["codecs"])
    summary["problems"] = problems[:20]
    print(json.dumps(summary))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
