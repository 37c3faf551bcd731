#!/usr/bin/env python3
"""A broker that misbehaves, for pinbench's failure tests.

  bad_broker.py PORT MODE     MODE: garbage | close | silent | huge

garbage: answers like an HTTP server (then random bytes); close: reads the request, sends half a response header
and closes; silent: accepts and never answers; huge: claims a 2 GiB response. Serves until killed.
"""
import os
import socket
import struct
import sys
import threading


def frames(conn):
    """Yields each request frame's body (size-prefixed, as Kafka frames them) until the peer closes."""
    while True:
        head = conn.recv(4)
        if len(head) < 4:
            return
        size = struct.unpack(">i", head)[0]
        body = b""
        while len(body) < size:
            chunk = conn.recv(size - len(body))
            if not chunk:
                return
            body += chunk
        yield body


def serve(conn, mode):
    try:
        for body in frames(conn):
            if mode == "garbage":
                # What a web server on the wrong port says: not a Kafka frame.
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n" + os.urandom(32))
            elif mode == "close":
                conn.sendall(struct.pack(">i", 100) + body[4:8])
                conn.close()
                return
            elif mode == "huge":
                conn.sendall(struct.pack(">i", 0x7FFFFFF0) + body[4:8])
            elif mode == "silent":
                pass
    except OSError:
        return


def main():
    port, mode = int(sys.argv[1]), sys.argv[2]
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(16)
    print("ready", flush=True)
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c, mode), daemon=True).start()


if __name__ == "__main__":
    main()
