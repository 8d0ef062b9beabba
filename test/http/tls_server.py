"""A tiny HTTPS server with a self-signed certificate, for test/http/run.sh:
the HTTP engine must refuse it (certificate verification is on).

Usage: python3 tls_server.py CERT KEY PORT_FILE   (binds 127.0.0.1, a free port)
"""
import http.server
import os
import ssl
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    """Answers every GET with {} (never reached when verification works)."""

    def do_GET(self):
        """GET."""
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, fmt, *args):
        """Silent."""


def main():
    """Binds, writes the port file atomically, serves until killed."""
    cert, key, port_file = sys.argv[1:4]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    with open(port_file + ".tmp", "w") as fh:
        fh.write("%d\n" % httpd.server_address[1])
    os.rename(port_file + ".tmp", port_file)
    httpd.serve_forever(poll_interval=0.2)


if __name__ == "__main__":
    main()
