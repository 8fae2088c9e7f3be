"""A git remote over HTTP that asks for a password: `git http-backend` behind basic auth, on
loopback. git then prompts for credentials on its terminal, as it does for a hosted remote."""

from __future__ import annotations

import base64
import os
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

USER = "releaser"
PASSWORD = "right-password"


@dataclass
class GitHttpRemote:
    url: str
    accepted: list[str]  # request paths served with the right credentials


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _serve(self) -> None:
        expected = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if self.headers.get("Authorization", "") != f"Basic {expected}":
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="agentgate-test"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path, _, query = self.path.partition("?")
        self.server.accepted.append(path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        env = {
            "PATH": os.environ["PATH"],
            "GIT_PROJECT_ROOT": str(self.server.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GIT_CONFIG_NOSYSTEM": "1",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "REQUEST_METHOD": self.command,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
            "REMOTE_USER": USER,
            "REMOTE_ADDR": "127.0.0.1",
        }
        out = subprocess.run(
            ["git", "http-backend"], input=body, env=env, capture_output=True, timeout=60
        ).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        status, headers = 200, []
        for line in head.split(b"\r\n"):
            name, _, value = line.decode().partition(": ")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _serve

    def log_message(self, *args: object) -> None:  # keep pytest output clean
        return


class _Server(ThreadingHTTPServer):
    root: Path
    accepted: list[str]


@contextmanager
def git_http_remote(bare_repo: Path) -> Iterator[GitHttpRemote]:
    """Serve bare_repo as http://127.0.0.1:PORT/<name>, asking for USER / PASSWORD."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.root = bare_repo.parent
    server.accepted = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        yield GitHttpRemote(f"http://127.0.0.1:{port}/{bare_repo.name}", server.accepted)
    finally:
        server.shutdown()
        server.server_close()
