"""A test origin for the gateway tests: it answers every request with what it saw, as JSON.

It runs with the standard library alone (tests start it with the agent image's python3) on
the gateway's outside network, under names a test allows or forbids. What it answers:

- any method on any path: 200 and {"origin": NAME, "method", "path", "headers", "body_bytes",
  "sni"}, reading the request body in chunks (so a 32 MB body costs no memory);
- a path with `?events=N`: a server-sent-event stream of N events GAP seconds apart
  (`&gap=0.5`), to show whether a proxy passes a stream on as it comes or buffers it;
- `GET /__requests`: every request seen so far except these (the test runner reads it
  through the control network).

With `--tls` every port speaks HTTPS with the certificate chain and key in the environment
(ORIGIN_TLS_CERT, ORIGIN_TLS_KEY: PEM text, written to a private temp file for the ssl module),
and `sni` is the server name the client sent.

Run: python3 origin_server.py NAME [--tls] PORT [PORT...]
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import sys
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

CHUNK = 1 << 16


class Seen:
    """The requests seen so far. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[dict[str, Any]] = []

    def add(self, record: dict[str, Any]) -> None:
        with self._lock:
            self._requests.append(record)

    def all(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._requests)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    name: str  # set on the class by serve()
    seen: Seen

    def log_message(self, *args: object) -> None:
        return

    def do_GET(self) -> None:
        if self.path == "/__requests":
            self._send(200, {"requests": self.seen.all()})
            return
        self._answer()

    def do_HEAD(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def do_PUT(self) -> None:
        self._answer()

    def _answer(self) -> None:
        record = {
            "origin": self.name,
            "method": self.command,
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body_bytes": self._drain_body(),
            "sni": getattr(self.connection, "agentgate_sni", None),
        }
        self.seen.add(record)
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        if "events" in query:
            self._stream(int(query["events"][0]), float(query.get("gap", ["0.5"])[0]))
        else:
            self._send(200, record)

    def _drain_body(self) -> int:
        remaining = int(self.headers.get("Content-Length") or 0)
        total = 0
        while remaining > 0:
            chunk = self.rfile.read(min(CHUNK, remaining))
            if not chunk:
                break
            total += len(chunk)
            remaining -= len(chunk)
        return total

    def _stream(self, events: int, gap: float) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for number in range(events):
            if number:
                time.sleep(gap)
            chunk = f"event: tick\ndata: {json.dumps({'n': number})}\n\n".encode()
            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


def _tls_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as private:
        cert, key = Path(private, "cert.pem"), Path(private, "key.pem")
        cert.write_text(os.environ["ORIGIN_TLS_CERT"])
        key.write_text(os.environ["ORIGIN_TLS_KEY"])
        context.load_cert_chain(cert, key)

    def remember_sni(sock: Any, server_name: str | None, _: ssl.SSLContext) -> None:
        sock.agentgate_sni = server_name

    context.sni_callback = remember_sni
    return context


class DualStackServer(ThreadingHTTPServer):
    """Listens on IPv6 and IPv4 alike, so an origin on an IPv6 network is really there."""

    address_family = socket.AF_INET6

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def _server(port: int, handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    try:
        return DualStackServer(("::", port), handler)
    except OSError:  # IPv6 is off in a container with no IPv6 network: IPv4 it is
        return ThreadingHTTPServer(("", port), handler)


def serve(name: str, ports: list[int], tls: bool) -> None:
    handler = type("Origin", (Handler,), {"name": name, "seen": Seen()})
    servers = []
    for port in ports:
        server = _server(port, handler)
        if tls:
            server.socket = _tls_context().wrap_socket(server.socket, server_side=True)
        servers.append(server)
    for server in servers[1:]:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    scheme = "https" if tls else "http"
    print(f"origin {name} serving {scheme} on {ports}", flush=True)
    servers[0].serve_forever()


def main(argv: list[str]) -> None:
    name, *rest = argv
    tls = rest[:1] == ["--tls"]
    serve(name, [int(port) for port in rest[tls:]], tls)


if __name__ == "__main__":
    main(sys.argv[1:])
