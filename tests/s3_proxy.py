"""An HTTP proxy on 127.0.0.1 in front of the test S3 server, that can answer every request
itself instead: hang up (the server is gone), 503 (the service is overloaded) or 403 (the
credentials are refused), as a real endpoint does for a while, so that the job meets them
halfway through a run."""

from __future__ import annotations

import contextlib
import http.client
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

ANSWERS = {
    503: ("ServiceUnavailable", "Please reduce your request rate."),
    403: ("InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."),
}


class Proxy(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.upstream = urlsplit(upstream)
        self.refuse: int | str | None = None  # "gone", a status of ANSWERS, or None: forward

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: Proxy
    protocol_version = "HTTP/1.1"  # keep-alive, and "100 Continue" for the client's Expect header

    def log_message(self, format: str, *args) -> None:  # quiet
        pass

    def _any(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.server.refuse == "gone":
            self.close_connection = True  # hang up without a word
            return
        if self.server.refuse is not None:
            code, message = ANSWERS[self.server.refuse]
            answer = f"<?xml version='1.0'?><Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()
            self.send_response(self.server.refuse)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer if self.command != "HEAD" else b"")
            return
        upstream = http.client.HTTPConnection(self.server.upstream.hostname, self.server.upstream.port, timeout=30)
        headers = {key: value for key, value in self.headers.items() if key.lower() != "expect"}
        upstream.request(self.command, self.path, body=body, headers=headers)
        reply = upstream.getresponse()
        data = reply.read()
        self.send_response(reply.status)
        for key, value in reply.getheaders():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        upstream.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any


@contextlib.contextmanager
def proxy(upstream: str) -> Iterator[Proxy]:
    server = Proxy(upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
