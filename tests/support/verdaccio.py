"""A local npm registry for tests: verdaccio, with no uplink, on a loopback port.

The tests publish the packages they need (fake @anthropic-ai/claude-code releases with
engines, optionalDependencies and their platform packages) and point npm at it with
npm_config_registry; nothing reaches the public registry. verdaccio itself is installed
once from the npm registry into a cache directory (npm's default registry: the only time
a test run uses it), at a version whose engines admit the hosts' older Node.js.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

# 6.8 is the last verdaccio whose engines admit a Node.js older than 22 (as CI hosts have);
# 6.9 and later need >= 22.
VERDACCIO = "~6.8.0"
# verdaccio-audit asks for node-fetch by its `cjs` dist-tag (2.7.0 on the public registry);
# registries that mirror versions but not dist-tags cannot resolve it, so name the version.
MANIFEST = {
    "private": True,
    "dependencies": {"verdaccio": VERDACCIO},
    "overrides": {"verdaccio-audit": {"node-fetch": "2.7.0"}},
}
INSTALL_TIMEOUT = 600
START_TIMEOUT = 60


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "agentgate-agent-image" / f"verdaccio-{VERDACCIO.lstrip('~^')}"


def installed() -> Path:
    """verdaccio's entry script, installed into the cache on first use."""
    prefix = Path(os.environ.get("AGENTGATE_VERDACCIO_PREFIX") or cache_dir())
    entry = prefix / "node_modules" / "verdaccio" / "bin" / "verdaccio"
    if entry.is_file():
        return entry
    npm = shutil.which("npm")
    assert npm, "npm is not on PATH: the npm registry double (verdaccio) needs Node.js and npm"
    prefix.mkdir(parents=True, exist_ok=True)
    (prefix / "package.json").write_text(json.dumps(MANIFEST, indent=2) + "\n")
    env = {k: v for k, v in os.environ.items() if k.lower() != "npm_config_registry"}
    result = subprocess.run(
        [npm, "install", "--no-fund", "--no-audit", "--loglevel=warn"],
        cwd=prefix,
        env=env,
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT,
        check=False,
    )
    failed = f"installing verdaccio {VERDACCIO} into {prefix} failed ({result.returncode}):"
    assert result.returncode == 0, f"{failed}\n{result.stderr[-3000:]}"
    assert entry.is_file(), f"{failed} no {entry}\n{result.stderr[-3000:]}"
    return entry


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Verdaccio:
    """A running verdaccio with its own storage under `home`."""

    home: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> Verdaccio:
        entry = installed()
        self.port = _free_port()
        (self.home / "storage").mkdir(parents=True, exist_ok=True)
        config = self.home / "config.yaml"
        config.write_text(
            f"storage: {self.home / 'storage'}\n"
            "auth:\n"
            f"  htpasswd:\n    file: {self.home / 'htpasswd'}\n    max_users: -1\n"
            "uplinks: {}\n"  # no uplink: a package we did not publish is a 404
            "packages:\n"
            "  '**':\n    access: $all\n    publish: $anonymous\n    unpublish: $anonymous\n"
            "log: {type: stdout, format: json, level: warn}\n"
        )
        with (self.home / "verdaccio.log").open("ab") as log:
            self.process = subprocess.Popen(
                ["node", str(entry), "--config", str(config), "--listen", f"127.0.0.1:{self.port}"],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"{self.url}-/ping", timeout=2):  # noqa: S310
                    return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise AssertionError(f"verdaccio did not answer on {self.url}:\n{self.log()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def log(self) -> str:
        path = self.home / "verdaccio.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else "(no log)"

    def publish(self, manifest: Mapping[str, object], tag: str = "latest") -> None:
        """`npm publish` as the registry sees it: the version's manifest and its tarball, in
        one PUT; `tag` is the dist-tag it gets."""
        name, version = str(manifest["name"]), str(manifest["version"])
        tarball = _tarball(manifest)
        filename = f"{name.rsplit('/', 1)[-1]}-{version}.tgz"
        document = {
            "_id": name,
            "name": name,
            "dist-tags": {tag: version},
            "versions": {
                version: {
                    **manifest,
                    "_id": f"{name}@{version}",
                    "dist": {
                        "shasum": hashlib.sha1(tarball).hexdigest(),  # noqa: S324 (npm's)
                        "tarball": f"{self.url}{name}/-/{filename}",
                    },
                }
            },
            "_attachments": {
                filename: {
                    "content_type": "application/octet-stream",
                    "data": base64.b64encode(tarball).decode(),
                    "length": len(tarball),
                }
            },
        }
        request = urllib.request.Request(  # noqa: S310 (loopback http)
            f"{self.url}{name.replace('/', '%2f')}",
            data=json.dumps(document).encode(),
            method="PUT",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30):  # noqa: S310
                return
        except urllib.error.HTTPError as exc:
            body = exc.read().decode(errors="replace")
            raise AssertionError(f"publishing {name}@{version} failed: {exc.code} {body}") from exc


def _tarball(manifest: Mapping[str, object]) -> bytes:
    """A package tarball holding package/package.json, as npm pack makes it."""
    data = json.dumps(manifest, indent=2).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("package/package.json")
        info.size = len(data)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
