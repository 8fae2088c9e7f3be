"""The real `invoke` CLI in a throwaway clone, and a loopback stand-in for the npm registry.

No Docker: DOCKER_HOST points at a socket nobody listens on, so a test that reached the
engine would fail with exit 5 instead of silently building. npm is pointed at a loopback
server that knows the Claude Code versions the Dockerfile pins, so the "does this version
exist" check sends no traffic off the host.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import semver
from git_helpers import checked

from agentimage import lines

ROOT = Path(__file__).resolve().parents[2]
CLI_PACKAGE = "@anthropic-ai/claude-code"
LINES = lines.read(ROOT)
KNOWN_CLI_VERSION = LINES.pins[LINES.default]  # the default line's pin


class _NpmHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.lower().split("?")[0] == "/" + CLI_PACKAGE.replace("/", "%2f"):
            pins = sorted(set(LINES.pins.values()), key=semver.Version.parse)
            body = json.dumps(
                {
                    "name": CLI_PACKAGE,
                    "dist-tags": {"latest": pins[-1]},
                    "versions": {pin: {"name": CLI_PACKAGE, "version": pin} for pin in pins},
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
        else:
            body = b'{"error":"not found"}'
            self.send_response(404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:  # keep pytest output clean
        return


@contextmanager
def fake_npm_registry() -> Iterator[str]:
    """An npm registry on loopback that has only the @anthropic-ai/claude-code versions the
    Dockerfile pins."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NpmHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def git(cwd: Path, *args: str) -> str:
    return checked(["git", *args], cwd=cwd).strip()


@dataclass
class CliRepo:
    """A clone holding tasks.py, invoke.yaml and VERSION, with a bare origin."""

    path: Path
    origin: Path
    env: dict[str, str] = field(default_factory=dict)

    def git(self, *args: str) -> str:
        return git(self.path, *args)

    def invoke(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "invoke", *args],
            cwd=self.path,
            env={**os.environ, **self.env, **env},
            text=True,
            capture_output=True,
            timeout=120,
            check=False,
        )
        print(result.stdout, result.stderr, sep="\n")  # shown when a test fails
        return result

    def commit_file(self, name: str, content: str, message: str) -> None:
        (self.path / name).write_text(content)
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)

    def state(self) -> dict[str, object]:
        """What a refused command must not change: files, HEAD, branch, tags, the remote."""
        version = self.path / "VERSION"
        has_git = (self.path / ".git").exists()
        return {
            "version": version.read_bytes() if version.exists() else None,
            "files": sorted(p.name for p in self.path.iterdir()),
            "head": self.git("rev-parse", "HEAD") if has_git else None,
            "branch": self.git("rev-parse", "--abbrev-ref", "HEAD") if has_git else None,
            "status": self.git("status", "--porcelain") if has_git else None,
            "tags": self.git("tag", "--list") if has_git else None,
            "remote": git(self.origin, "for-each-ref"),
        }


def make_cli_repo(base: Path, npm_registry: str) -> CliRepo:
    origin = base / "origin.git"
    work = base / "work"
    checked(["git", "init", "-q", "--bare", "-b", "main", str(origin)])
    checked(["git", "init", "-q", "-b", "main", str(work)])
    for name in ("tasks.py", "invoke.yaml", "docker/Dockerfile.agent"):
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, work / name)
    (work / "VERSION").write_text("0.1.0\n")
    (work / "NOTES.md").write_text("notes\n")
    repo = CliRepo(
        work,
        origin,
        {
            "DOCKER_HOST": f"unix://{base}/no-docker-engine.sock",
            "npm_config_registry": npm_registry,
            "INVOKE_IMAGE_VARIANT": "slim",
            "INVOKE_IMAGE_REGISTRY": "",
            "INVOKE_RELEASE_TEST_COMMAND": "true",
        },
    )
    for key, value in (
        ("user.name", "Test"),
        ("user.email", "test@example.invalid"),
        ("commit.gpgsign", "false"),
        ("tag.gpgsign", "false"),
    ):
        repo.git("config", key, value)
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", "feat: initial")
    repo.git("remote", "add", "origin", str(origin))
    repo.git("push", "-q", "origin", "main")
    return repo


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a refused command (asserts it is exactly one, no traceback)."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]
