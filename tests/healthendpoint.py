"""A local HTTP health endpoint for HTTP-check tests: answers GETs with a status, records each Host header."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class HealthEndpoint:
    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.hosts: list[str] = []
        endpoint = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                endpoint.hosts.append(str(self.headers.get("Host")))
                self.send_response(endpoint.status)
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.httpd.server_address[1])


@contextmanager
def serving(status: int = 200) -> Iterator[HealthEndpoint]:
    endpoint = HealthEndpoint(status)
    threading.Thread(target=endpoint.httpd.serve_forever, daemon=True).start()
    try:
        yield endpoint
    finally:
        endpoint.httpd.shutdown()
        endpoint.httpd.server_close()
