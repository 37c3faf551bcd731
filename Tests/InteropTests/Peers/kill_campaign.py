#!/usr/bin/env python3
"""Crash consistency (issue 16): kill -9 pinbench at seeded random moments, re-run, and check what a user relies
on. usage: kill_campaign.py PINBENCH WORKDIR SEED KILLS COMMAND...  (COMMAND: run serve land clean batch stream)

- run: floods appending to one log, each killed mid-flood; a short re-run recovers the log, `log verify` passes,
  and the records the log held before a kill are never fewer after it.
- serve: a client posts batches with unique ids while serve is killed; after a restart every id that was
  answered 200 is in the log (log cat), and the log verifies.
- land: a landing killed and re-run ends with the same objects, byte for byte, as an uninterrupted landing.
- clean, batch: a run killed and re-run gives tables deltalake reads with exactly the rows of an uninterrupted
  run (no commit twice), and batch writes the day's analyses.
- stream: a flood into moto's Kinesis (started here, stopped by PID), then `stream` killed and re-run into fresh
  tables: deltalake reads exactly the rows of an uninterrupted `stream` (each commit records the sequence numbers
  read, so a re-run resumes after the last commit and reads nothing twice).
Prints one JSON line per command: {"command", "kills", "ok", "problems"}.
"""
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

PB, WORK, SEED, KILLS = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
COMMANDS = sys.argv[5:]
rng = random.Random(SEED)
STATS = {}  # what the kills hit, printed with the command's line
os.makedirs(WORK, exist_ok=True)


def pb(*args, timeout=300):
    return subprocess.run([PB, *args], capture_output=True, text=True, timeout=timeout)


def start(*args):
    return subprocess.Popen([PB, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def kill_after(p, seconds):
    """SIGKILL at `seconds` unless it ended first; True when it was killed while running."""
    try:
        p.wait(timeout=seconds)
        return False
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGKILL)
        p.wait()
        return True


def log_records(data):
    r = pb("log", "verify", "--data-dir", data)
    total = 0
    for line in r.stdout.splitlines():  # topic-partition  segments  batches  records  next-offset  bytes
        parts = line.split()
        if len(parts) >= 5 and parts[3].isdigit() and parts[1].isdigit():
            total += int(parts[3])
    return r.returncode, total, r.stdout + r.stderr


def table_rows(root):
    code = ("import deltalake, os, sys\n"
            "out = []\n"
            "for k in ('pin', 'geo', 'user'):\n"
            "    t = deltalake.DeltaTable(sys.argv[1] + '/' + k)\n"
            "    n = deltalake.QueryBuilder().register('t', t).execute('SELECT count(*) AS n FROM t').read_all().column('n')[0].as_py()\n"
            "    out.append(f'{k}={n}')\n"
            "print(' '.join(out)); sys.stdout.flush(); os._exit(0)\n")
    r = subprocess.run([sys.executable, "-c", code, root], capture_output=True, text=True, timeout=120)
    return r.stdout.strip() if r.returncode == 0 else "unreadable: " + r.stderr.strip()[-300:]


def snapshot(root):
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            if f.startswith("."):
                continue
            p = os.path.join(d, f)
            out[os.path.relpath(p, root)] = open(p, "rb").read()
    return out


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    return port


def wait_port(port, seconds=30):
    end = time.time() + seconds
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def campaign_run():
    data, problems, kills = f"{WORK}/run-data", [], 0
    shutil.rmtree(data, ignore_errors=True)
    t0 = time.time()
    pb("run", "--count", "40000", "--seed", "1000", "--data-dir", f"{WORK}/run-timing", "--quiet")
    took = time.time() - t0
    shutil.rmtree(f"{WORK}/run-timing", ignore_errors=True)
    held = 0
    for i in range(4 * KILLS):
        if kills >= KILLS:
            break
        p = start("run", "--count", "40000", "--seed", str(i), "--data-dir", data, "--append", "--quiet")
        kills += kill_after(p, rng.uniform(0.02, 0.9) * took)
        r = pb("run", "--count", "10", "--seed", "99", "--data-dir", data, "--append", "--quiet")  # recovers
        if r.returncode != 0:
            problems.append(f"kill {i}: the re-run failed: {r.stderr.strip()[-300:]}")
            continue
        code, total, text = log_records(data)
        if code != 0:
            problems.append(f"kill {i}: log verify failed: {text[-300:]}")
        if total < held:
            problems.append(f"kill {i}: the log held {held} records before, {total} after")
        held = total
    return kills, problems


def campaign_serve():
    data, problems, kills = f"{WORK}/serve-data", [], 0
    shutil.rmtree(data, ignore_errors=True)
    acked = set()
    next_id = [0]
    for i in range(KILLS):
        port = free_port()
        server = start("serve", "--listen", f"127.0.0.1:{port}", "--data-dir", data, "--quiet")
        if not wait_port(port):
            problems.append(f"kill {i}: serve did not start")
            server.kill(); server.wait()
            continue
        stop = threading.Event()

        def client():
            while not stop.is_set():
                ids = list(range(next_id[0], next_id[0] + 50))
                next_id[0] += 50
                body = json.dumps({"records": [{"value": {"index": n, "k": "x" * 100}} for n in ids]}).encode()
                req = urllib.request.Request(f"http://127.0.0.1:{port}/topics/pinbench.pin", data=body,
                                             headers={"Content-Type": "application/vnd.kafka.json.v2+json"})
                try:
                    if urllib.request.urlopen(req, timeout=5).status == 200:
                        acked.update(ids)
                except Exception:
                    return
        threads = [threading.Thread(target=client) for _ in range(2)]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.2, 1.2))
        server.send_signal(signal.SIGKILL)
        server.wait()
        kills += 1
        stop.set()
        for t in threads:
            t.join()
    # A restart recovers the log; every answered id must be there.
    port = free_port()
    server = start("serve", "--listen", f"127.0.0.1:{port}", "--data-dir", data, "--quiet")
    wait_port(port)
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=60)
    code, _, text = log_records(data)
    if code != 0:
        problems.append(f"log verify failed after the restart: {text[-300:]}")
    seen = set()
    cat = subprocess.run([PB, "log", "cat", "--data-dir", data, "--topic", "pinbench.pin"], capture_output=True, text=True, timeout=300)
    for line in cat.stdout.splitlines():
        try:
            seen.add(json.loads(line)["index"])
        except Exception:
            pass
    lost = acked - seen
    if not acked:
        problems.append("no post was ever answered 200")
    if lost:
        problems.append(f"{len(lost)} of {len(acked)} acknowledged records lost (e.g. {sorted(lost)[:5]})")
    return kills, problems


def campaign_land():
    data, problems, kills = f"{WORK}/land-data", [], 0
    shutil.rmtree(data, ignore_errors=True)
    pb("run", "--count", "15000", "--seed", "7", "--data-dir", data, "--partitions", "2", "--quiet")
    ref = f"{WORK}/land-ref"
    shutil.rmtree(ref, ignore_errors=True)
    t0 = time.time()
    r = pb("land", "--data-dir", data, "--to", ref, "--flush-records", "300")
    took = time.time() - t0
    if r.returncode != 0:
        return 0, [f"the reference landing failed: {r.stderr.strip()[-300:]}"]
    want = snapshot(ref)
    for i in range(4 * KILLS):  # until KILLS of them were killed mid-landing
        if kills >= KILLS:
            break
        out = f"{WORK}/land-{i}"
        shutil.rmtree(out, ignore_errors=True)
        p = start("land", "--data-dir", data, "--to", out, "--flush-records", "300")
        kills += kill_after(p, rng.uniform(0.02, 0.9) * took)
        r = pb("land", "--data-dir", data, "--to", out, "--flush-records", "300")
        if r.returncode != 0:
            problems.append(f"kill {i}: the re-run failed: {r.stderr.strip()[-300:]}")
            continue
        got = snapshot(out)
        if got != want:
            extra, missing = sorted(set(got) - set(want)), sorted(set(want) - set(got))
            diff = [k for k in want if k in got and got[k] != want[k]]
            problems.append(f"kill {i}: landing differs: {len(missing)} missing, {len(extra)} extra, {len(diff)} changed ({(missing + extra + diff)[:3]})")
        shutil.rmtree(out, ignore_errors=True)
    return kills, problems


def kill_rerun_compare(i, args, t, took, want, problems):
    """Starts `args(t)`, kills it at a seeded moment within an uninterrupted run's time, re-runs it and compares
    the tables with `want`. Returns (killed while running, killed after a commit, the re-run succeeded)."""
    p = start(*args(t))
    killed = kill_after(p, rng.uniform(0.02, 0.9) * took)
    after_commit = killed and any(os.path.isdir(f"{t}/{k}/_delta_log") for k in ("pin", "geo", "user"))
    r = pb(*args(t))
    if r.returncode != 0:
        problems.append(f"kill {i}: the re-run failed: {r.stderr.strip()[-300:]}")
        return killed, after_commit, False
    got = table_rows(t)
    if got != want:
        problems.append(f"kill {i}: tables hold {got}, an uninterrupted run {want}")
    return killed, after_commit, True


def campaign_tables(command):
    problems, kills = [], 0
    src = f"{WORK}/{command}-src"
    shutil.rmtree(src, ignore_errors=True)
    day = time.strftime("%Y-%m-%d", time.gmtime())
    if command == "clean":
        pb("emulate", "--count", "15000", "--seed", "8", "--out", src)
        args = lambda t: ["clean", "--from", src, "--tables", t, "--quiet"]
    else:
        pb("run", "--count", "5000", "--seed", "8", "--data-dir", src, "--quiet")
        args = lambda t: ["batch", "--date", day, "--data-dir", src, "--landing", t + "-landing", "--tables", t, "--out", t + "-analysis", "--quiet"]
    ref = f"{WORK}/{command}-ref"
    for d in (ref, ref + "-landing", ref + "-analysis"):
        shutil.rmtree(d, ignore_errors=True)
    t0 = time.time()
    r = pb(*args(ref))
    took = time.time() - t0  # kills land inside an uninterrupted run's time, whatever the machine's speed
    if r.returncode != 0:
        return 0, [f"the reference {command} failed: {r.stderr.strip()[-300:]}"]
    want = table_rows(ref)
    for i in range(4 * KILLS):
        if kills >= KILLS:
            break
        t = f"{WORK}/{command}-{i}"
        killed, _, rerun = kill_rerun_compare(i, args, t, took, want, problems)
        kills += killed
        if rerun and command == "batch" and not os.path.exists(f"{t}-analysis/date={day}/q1.csv"):
            problems.append(f"kill {i}: no analyses for {day}")
        for d in (t, t + "-landing", t + "-analysis"):
            shutil.rmtree(d, ignore_errors=True)
    return kills, problems


def campaign_stream():
    problems, kills = [], 0
    port = free_port()
    moto = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not wait_port(port):
            return 0, ["moto did not start"]
        os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"})
        ep = f"http://127.0.0.1:{port}"
        r = pb("run", "--kinesis", "--aws-endpoint", ep, "--create-streams", "--shards", "2", "--count", "3000", "--seed", "9",
               "--ordered", "--stream-prefix", "kc", "--quiet")
        if r.returncode != 0:
            return 0, [f"the flood into moto failed: {r.stderr.strip()[-300:]}"]
        # Rounds of about 1,000 records: a run makes several commits per table, so kills land between and inside them.
        args = lambda t: ["stream", "--tables", t, "--stream-prefix", "kc", "--aws-endpoint", ep, "--round-records", "1000"]
        ref = f"{WORK}/stream-ref"
        shutil.rmtree(ref, ignore_errors=True)
        t0 = time.time()
        r = pb(*args(ref))
        took = time.time() - t0
        if r.returncode != 0:
            return 0, [f"the reference stream failed: {r.stderr.strip()[-300:]}"]
        want = table_rows(ref)
        if want != "pin=3000 geo=3000 user=3000":
            problems.append(f"the reference stream holds {want}")
        for i in range(4 * KILLS):
            if kills >= KILLS:
                break
            t = f"{WORK}/stream-{i}"
            killed, after_commit, _ = kill_rerun_compare(i, args, t, took, want, problems)
            kills += killed
            if after_commit:
                STATS["stream_killed_after_a_commit"] = STATS.get("stream_killed_after_a_commit", 0) + 1
            shutil.rmtree(t, ignore_errors=True)
        return kills, problems
    finally:
        moto.kill()
        moto.wait()


for c in COMMANDS:
    t0 = time.time()
    kills, problems = {"run": campaign_run, "serve": campaign_serve, "land": campaign_land,
                       "clean": lambda: campaign_tables("clean"), "batch": lambda: campaign_tables("batch"),
                       "stream": campaign_stream}[c]()
    print(json.dumps({"command": c, "kills": kills, "ok": not problems, "problems": problems[:10], "seconds": round(time.time() - t0, 1),
                      **STATS}), flush=True)
    STATS.clear()
