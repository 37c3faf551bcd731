#!/usr/bin/env python3
"""A TLS terminator for tests: tls_proxy.py PORT UPSTREAM_HOST:PORT CERT KEY

Accepts TLS on 127.0.0.1:PORT (Python's ssl, the given certificate) and pipes the plain bytes to the
upstream (moto, for AWS over HTTPS with a private CA). A failed handshake closes that connection only.
"""
import socket
import ssl
import sys
import threading

port, upstream, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
host, uport = upstream.rsplit(":", 1)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)


def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    finally:
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def handle(c):
    try:
        c.settimeout(10)
        s = ctx.wrap_socket(c, server_side=True)
        s.settimeout(None)
    except (ssl.SSLError, OSError):
        c.close()
        return
    u = socket.create_connection((host, int(uport)))
    threading.Thread(target=pipe, args=(s, u), daemon=True).start()
    pipe(u, s)


srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port))
srv.listen(64)
while True:
    conn, _ = srv.accept()
    threading.Thread(target=handle, args=(conn,), daemon=True).start()
