#!/usr/bin/env python3
"""A credential endpoint for tests: the ECS container shape (GET any path -> JSON credentials).

  creds_server.py PORT KEYID SECRET LIFETIME_S COUNT_FILE [AUTH]

Each fetch answers KEYID (or, when KEYID ends with '-', KEYID<n>, n counting fetches from 1) with SECRET, a session token, and an Expiration
LIFETIME_S seconds from now, and writes n to COUNT_FILE; with AUTH, requests without
`Authorization: AUTH` get 401. Binds 127.0.0.1 only.
"""
import datetime
import http.server
import json
import sys

port, key, secret, life, count_file = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
auth = sys.argv[6] if len(sys.argv) > 6 else None
n = 0


class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        global n
        if auth and self.headers.get("Authorization") != auth:
            self.send_response(401)
            self.end_headers()
            return
        n += 1
        with open(count_file, "w") as f:
            f.write(str(n))
        exp = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=life)
        body = json.dumps({"AccessKeyId": f"{key}{n}" if key.endswith("-") else key, "SecretAccessKey": secret, "Token": f"token-{n}",
                           "Expiration": exp.strftime("%Y-%m-%dT%H:%M:%SZ")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
