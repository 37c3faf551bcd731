"""A fault-injecting HTTP proxy in front of moto's Kinesis: what real Kinesis does under load that moto never does.

  fault_proxy.py LISTEN_PORT UPSTREAM_PORT SEED [STATS_FILE]

For PutRecords calls, at random (seeded; the first three calls get a partial failure, a 500 and throttling):
  - partial failure: some entries are removed before forwarding and answered as
    ProvisionedThroughputExceededException (FailedRecordCount > 0), the others stored by moto;
  - 500 InternalFailure without forwarding;
  - 400 ThrottlingException / LimitExceededException without forwarding;
  - a slow answer (1.5 s) then forwarding;
  - a dropped connection before forwarding (nothing stored);
  - a dropped connection after forwarding (stored, but the client cannot know: Kinesis's at-least-once).
Everything else is forwarded unchanged. Counts of each fault go to STATS_FILE (JSON) after every request.
"""
import http.client
import json
import random
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LISTEN, UPSTREAM, SEED = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
# NO_DROP_AFTER=1 leaves out the one fault that makes duplicates legitimately (stored, answer lost).
import os
NO_DROP_AFTER = os.environ.get("NO_DROP_AFTER") == "1"
STATS_FILE = sys.argv[4] if len(sys.argv) > 4 else None
rng = random.Random(SEED)
put_calls = 0
FIRST_ROLLS = [0.5, 0.0, 0.10]  # partial failure, 500 InternalFailure, throttling (see handle_any)
lock = threading.Lock()
stats = {"requests": 0, "partial": 0, "failed_entries": 0, "http500": 0, "throttled": 0, "slow": 0,
         "dropped_before": 0, "dropped_after": 0, "dropped_after_entries": 0, "forwarded": 0}


def bump(k, n=1):
    with lock:
        stats[k] += n
        if STATS_FILE:
            with open(STATS_FILE, "w") as f:
                json.dump(stats, f)


def forward(method, path, headers, body):
    c = http.client.HTTPConnection("127.0.0.1", UPSTREAM, timeout=60)
    h = {k: v for k, v in headers.items() if k.lower() not in ("content-length", "connection")}
    h["Content-Length"] = str(len(body))
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    out = (r.status, [(k, v) for k, v in r.getheaders() if k.lower() not in ("content-length", "connection", "transfer-encoding")], data)
    c.close()
    return out


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, status, headers, body):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def drop(self):
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def error(self, status, code, message):
        body = json.dumps({"__type": code, "message": message}).encode()
        self.reply(status, [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", code)], body)

    def handle_any(self):
        n = int(self.headers.get("Content-Length", "0") or 0)
        body = self.rfile.read(n) if n else b""
        target = self.headers.get("X-Amz-Target", "")
        bump("requests")
        if not target.endswith(".PutRecords"):
            self.reply(*forward(self.command, self.path, dict(self.headers), body))
            return
        with lock:
            roll = rng.random()
            picks = rng.random()
            # The first three PutRecords calls get a partial failure, a 500 and throttling, whatever the draw:
            # every kind is then seen however few calls a run makes (the producer's batching decides that).
            global put_calls
            if put_calls < len(FIRST_ROLLS):
                roll = FIRST_ROLLS[put_calls]
            put_calls += 1
        if roll < 0.08:
            bump("http500")
            self.error(500, "InternalFailure", "injected by fault_proxy")
            return
        if roll < 0.14:
            bump("throttled")
            self.error(400, "ThrottlingException" if picks < 0.5 else "LimitExceededException", "Rate exceeded (injected)")
            return
        if roll < 0.18:
            bump("dropped_before")
            self.drop()
            return
        if roll < 0.22:
            bump("slow")
            time.sleep(1.5)
        elif roll < 0.25 and not NO_DROP_AFTER:
            bump("dropped_after")
            bump("dropped_after_entries", len(json.loads(body)["Records"]))
            forward(self.command, self.path, dict(self.headers), body)
            self.drop()
            return
        if roll < 0.60:
            req = json.loads(body)
            recs = req["Records"]
            with lock:
                failed = {i for i in range(len(recs)) if rng.random() < 0.3}
            if failed and len(failed) < len(recs):
                bump("partial")
                bump("failed_entries", len(failed))
                keep = [r for i, r in enumerate(recs) if i not in failed]
                status, headers, data = forward(self.command, self.path, dict(self.headers),
                                                json.dumps({"StreamName": req["StreamName"], "Records": keep}).encode())
                if status != 200:
                    self.reply(status, headers, data)
                    return
                ok = iter(json.loads(data)["Records"])
                merged = []
                for i in range(len(recs)):
                    if i in failed:
                        merged.append({"ErrorCode": "ProvisionedThroughputExceededException",
                                       "ErrorMessage": "Rate exceeded for shard shardId-000000000000 in stream (injected)."})
                    else:
                        merged.append(next(ok))
                out = json.dumps({"FailedRecordCount": len(failed), "Records": merged}).encode()
                self.reply(200, [("Content-Type", "application/x-amz-json-1.1")], out)
                return
        bump("forwarded")
        self.reply(*forward(self.command, self.path, dict(self.headers), body))

    do_POST = do_GET = do_PUT = do_DELETE = handle_any


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", LISTEN), Handler).serve_forever()
