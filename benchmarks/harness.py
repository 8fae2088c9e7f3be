"""Timing, docker and build-log helpers for the benchmark (parsing is pure and unit-tested)."""

from __future__ import annotations

import re
import shutil
import statistics
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from agentimage import config, lines, proc
from agentimage.errors import AgentImageError

ROOT = Path(__file__).resolve().parent.parent
VARIANT = "slim"
# The Node lines and their CLI pins come from the Dockerfile; the figures build the default
# line unless one says otherwise.
LINES = lines.read(ROOT)
BASE_IMAGE = config.base_image(VARIANT, LINES.default)
CLAUDE_CODE_VERSION = LINES.pins[LINES.default]
DOCKERFILE = "docker/Dockerfile.agent"
LABEL = "io.agentgate.bench"
# Same package set as the Dockerfile's Debian branch (setpriv is in util-linux, already there).
PACKAGES = ("bash", "ca-certificates", "curl", "git", "jq", "python3", "tini")

_STEP = re.compile(r"^#(\d+) \[(?:(?P<stage>[\w.-]+) )?(?P<n>\d+)/(?P<of>\d+)\] (?P<what>.*)$")
_CONTEXT = re.compile(r"^#(\d+) transferring context: ([\d.]+)\s*([kMG]?B)")
_UNITS = {"B": 1, "kB": 1000, "MB": 1000**2, "GB": 1000**3}


class BenchError(RuntimeError):
    """A measurement could not be taken; the message says which and why."""


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def ca_secret() -> list[str]:
    """The build secret the Dockerfile's npm step takes (TLS-intercepting proxies)."""
    bundle = Path("/etc/ssl/certs/ca-certificates.crt")
    return ["--secret", f"id=ca-certificates,src={bundle}"] if bundle.is_file() else []


def build_argv(
    tag: str,
    *extra: str,
    context: str = ".",
    dockerfile: str = DOCKERFILE,
    line: str = LINES.default,
) -> list[str]:
    """The slim build of a Node line, exactly as the README gives it, with our own tag."""
    return [
        "docker",
        "buildx",
        "build",
        "-f",
        dockerfile,
        "--build-arg",
        f"BASE_IMAGE={config.base_image(VARIANT, line)}",
        "--build-arg",
        f"NODE_VERSION={line}",
        "--build-arg",
        f"IMAGE_VARIANT={VARIANT}",
        *ca_secret(),
        "--load",
        "-t",
        tag,
        "--progress=plain",
        *extra,
        context,
    ]


def run(
    argv: Sequence[str],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 900,
    check: bool = True,
) -> proc.Finished:
    """Run argv (agentimage.proc: bounded, its process group ended on a timeout); `env` is
    all the command gets. A failure, with check, raises BenchError with the output's tail."""
    try:
        result = proc.run(argv, cwd=cwd, env=env, replace_env=env is not None, timeout=timeout)
    except AgentImageError as exc:
        raise BenchError(exc.message) from None
    if check and not result.ok:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise BenchError(f"{' '.join(argv[:4])} ... failed ({result.returncode}):\n{tail}")
    return result


def timed(argv: Sequence[str], **kwargs: object) -> tuple[float, proc.Finished]:
    start = time.perf_counter()
    result = run(argv, **kwargs)  # type: ignore[arg-type]
    return time.perf_counter() - start, result


def alternate(
    first: Callable[[], float], second: Callable[[], float], runs: int, *, warmup: int = 1
) -> tuple[list[float], list[float]]:
    """Interleave two measurements so host load drifts hit both alike."""
    for _ in range(warmup):
        first()
        second()
    a: list[float] = []
    b: list[float] = []
    for i in range(runs):
        if i % 2:
            b.append(second())
            a.append(first())
        else:
            a.append(first())
            b.append(second())
    return a, b


# --------------------------------------------------------------------------------------------
# Containers: every one the bench starts carries a per-run label and is removed by id.


@dataclass
class Containers:
    run_id: str
    ids: list[str]

    def start(self, *argv: str) -> str:
        result = run(["docker", "run", "-d", "--label", f"{LABEL}={self.run_id}", *argv])
        cid = result.stdout.strip()
        self.ids.append(cid)
        return cid

    def remove(self, *cids: str) -> None:
        targets = list(cids) or list(self.ids)
        if targets:
            run(["docker", "rm", "-f", *targets], check=False, timeout=120)
        self.ids = [c for c in self.ids if c not in targets]


@contextmanager
def containers() -> Iterator[Containers]:
    box = Containers(uuid.uuid4().hex[:12], [])
    try:
        yield box
    finally:
        box.remove()


def wait_exec(cid: str, *, deadline_s: float = 30) -> None:
    deadline = time.monotonic() + deadline_s
    while run(["docker", "exec", cid, "true"], check=False, timeout=30).returncode != 0:
        if time.monotonic() > deadline:
            logs = run(["docker", "logs", cid], check=False).stderr[-2000:]
            raise BenchError(f"container {cid[:12]} never accepted docker exec:\n{logs}")


# --------------------------------------------------------------------------------------------
# Build logs (--progress=plain)


@dataclass(frozen=True)
class Step:
    vertex: int
    stage: str
    n: int
    of: int
    what: str
    cached: bool


def build_steps(log: str) -> list[Step]:
    """Dockerfile steps from a plain progress log; FROM lines (resolved, never cached) skipped."""
    found: dict[int, tuple[str, int, int, str]] = {}
    cached: set[int] = set()
    for line in log.splitlines():
        match = _STEP.match(line)
        if match:
            vertex = int(match.group(1))
            what = match.group("what")
            if not what.startswith("FROM "):
                found.setdefault(
                    vertex,
                    (
                        match.group("stage") or "",
                        int(match.group("n")),
                        int(match.group("of")),
                        what,
                    ),
                )
            continue
        head, _, rest = line.partition(" ")
        if rest.strip() == "CACHED" and head.startswith("#") and head[1:].isdigit():
            cached.add(int(head[1:]))
    return [
        Step(vertex, stage, n, of, what, vertex in cached)
        for vertex, (stage, n, of, what) in sorted(found.items(), key=lambda kv: kv[0])
    ]


def context_bytes(log: str) -> int:
    """Bytes of the build context ("[internal] load build context"), not .dockerignore's."""
    names: dict[str, str] = {}
    total = 0
    for line in log.splitlines():
        head, _, rest = line.partition(" ")
        if rest.startswith("[internal] "):
            names[head] = rest
        match = _CONTEXT.match(line)
        if match and names.get(f"#{match.group(1)}", "").startswith(
            "[internal] load build context"
        ):
            total = max(total, round(float(match.group(2)) * _UNITS[match.group(3)]))
    return total


def human(size: float) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size:.0f} B"


def copy_files(paths: Sequence[str], dest: Path, *, root: Path = ROOT) -> None:
    for rel in paths:
        source = root / rel
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir() and not source.is_symlink():
            shutil.copytree(source, target, symlinks=True)
        elif source.exists() or source.is_symlink():
            shutil.copy2(source, target, follow_symlinks=False)
