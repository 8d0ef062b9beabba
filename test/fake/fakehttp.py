"""What the fakes (hetzner.py, stripe.py, agent.py) share: the HTTP plumbing.

A request handler base class (one HTTP/1.1 connection per thread, answers
written without Nagle delays, a TCP reset on demand) and serve(), which binds
127.0.0.1, writes the port file atomically, and stops on SIGTERM or when the
process that started the fake is gone.  Python 3 standard library only.
"""
import os
import signal
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeHandler(BaseHTTPRequestHandler):
    """One HTTP request to a fake; subclasses define handle_one(method)."""

    # headers and body go out in separate writes: without TCP_NODELAY every
    # answer on a kept-alive connection would wait ~40 ms for a delayed ACK
    disable_nagle_algorithm = True

    protocol_version = "HTTP/1.1"
    sys_version = ""

    def log_message(self, fmt, *args):
        """Silences the default log (each fake writes its own line)."""

    def do_GET(self):
        """GET."""
        self.handle_one("GET")

    def do_POST(self):
        """POST."""
        self.handle_one("POST")

    def do_DELETE(self):
        """DELETE."""
        self.handle_one("DELETE")

    def do_PUT(self):
        """PUT."""
        self.handle_one("PUT")

    def handle_one(self, method):
        """Answers one request (the fake's own)."""
        raise NotImplementedError

    def send_raw(self, status, body, headers):
        """Writes a JSON response with a Content-Length."""
        data = body if isinstance(body, bytes) else body.encode()
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def reset_connection(self):
        """Closes the socket with a TCP RST and no response."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass
        self.close_connection = True

    def finish(self):
        """As the base class, tolerating a socket we reset."""
        try:
            super().finish()
        except (OSError, ValueError):
            pass


class Server(ThreadingHTTPServer):
    """The HTTP server, one thread per connection."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024


def watch_parent(httpd, parent):
    """Stops the fake when the process that started it is gone (a test that died)."""
    while os.getppid() == parent:
        time.sleep(0.5)
    httpd.shutdown()


def serve(name, fake, handler, port, port_file, server_class=Server):
    """Binds 127.0.0.1:port (0 = any free port, written to port_file), serves
    until SIGTERM or the parent's exit, then exits the process."""
    httpd = server_class(("127.0.0.1", port), handler)
    httpd.fake = fake
    port = httpd.server_address[1]
    if port_file:
        tmp = port_file + ".tmp"
        with open(tmp, "w") as fh:
            fh.write("%d\n" % port)
        os.rename(tmp, port_file)
    sys.stderr.write("%s: listening on 127.0.0.1:%d\n" % (name, port))
    sys.stderr.flush()
    signal.signal(signal.SIGTERM,
                  lambda *_: threading.Thread(target=httpd.shutdown).start())
    threading.Thread(target=watch_parent, args=(httpd, os.getppid()), daemon=True).start()
    httpd.serve_forever(poll_interval=0.2)
    httpd.server_close()
    sys.stderr.write("%s: stopped\n" % name)
    sys.stderr.flush()
    # handlers still sleeping in a slow fault must not keep the process alive
    os._exit(0)
