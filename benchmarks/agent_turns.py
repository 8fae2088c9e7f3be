"""Agent-turn figures: real `claude -p` turns against the Messages API double (issue 8).

Every turn is the same two-step Write turn the e2e suite runs: the double asks for a Write,
the CLI writes the file and reports back, the double ends the turn. Sandboxes are hardened
exactly as in tests/support/sandbox.py and sit on a network they cannot leave; the host
baseline runs the very CLI binary copied out of the image, against the same double.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import docker
from benchmarks.figures import Row, ms, ratio_row, sec
from benchmarks.harness import LABEL, ROOT, BenchError, alternate, human, median, run

sys.path.insert(0, str(ROOT / "tests" / "support"))
from api_double import ALIAS, ApiDouble, Conversation, reply, start_api_double, text, tool
from sandbox import (
    AGENT_UID,
    SANDBOX_SETTINGS,
    Sandbox,
    Sandboxes,
    create_sandbox_network,
    docker_run_flags,
    wait_until_ready,
)

KEY = "sk-ant-bench-" + uuid.uuid4().hex
# What the image sets for the CLI (Dockerfile ENV); the host baseline gets the same.
CLI_ENV = {
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "DISABLE_AUTOUPDATER": "1",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "CLAUDE_CODE_MAX_RETRIES": "0",
}


def new_marker() -> str:
    return f"turn-{uuid.uuid4().hex[:8]}"


def write_turn(marker: str, path: str) -> Conversation:
    """The bench's turn: the model asks for one Write, then ends the turn."""
    return Conversation(
        [reply(tool("Write", file_path=path, content="bench\n")), reply(text("Done."))],
        marker=marker,
    )


def _owned_dir(parent: Path, name: str) -> Path:
    path = parent / name
    path.mkdir()
    os.chown(path, AGENT_UID, AGENT_UID)
    return path


class TurnBench:
    """Networks, the double, a host copy of the CLI, and sandboxes; all removed on exit."""

    def __init__(self, image: str) -> None:
        self.image = image
        self.run_id = uuid.uuid4().hex[:10]
        self.labels = {LABEL: self.run_id}
        self.client = docker.from_env()
        self.tmp = Path(tempfile.mkdtemp(prefix="agent-turn-bench-"))
        self.count = 0

    def __enter__(self) -> TurnBench:
        if os.geteuid() != 0:
            raise BenchError("the agent-turn figures need root (workspaces owned by uid 1000)")
        self.tmp.chmod(0o755)
        name = f"agt-bench-{self.run_id}"
        self.network = create_sandbox_network(self.client, f"{name}-sandbox", self.labels)
        self.control = self.client.networks.create(
            f"{name}-control", driver="bridge", labels=self.labels
        )
        self.double: ApiDouble = start_api_double(
            self.client,
            self.image,
            name=f"{name}-double",
            networks={self.network: [ALIAS]},
            control=self.control,
            labels=self.labels,
        )
        self.env = {"ANTHROPIC_BASE_URL": self.double.url, "ANTHROPIC_API_KEY": KEY, **CLI_ENV}
        self.boxes = Sandboxes(
            self.client, self.image, self.network, self.env, self.labels, f"{name}-sandbox"
        )
        self.cli = self._copy_cli()
        return self

    def __exit__(self, *exc: object) -> None:
        self.boxes.remove_all()
        self.double.container.remove(force=True)
        self.control.remove()
        self.network.remove()
        self.client.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _copy_cli(self) -> Path:
        """The image's /opt/claude-code, unpacked on the host: the same binary, byte for byte."""
        container = self.client.containers.create(self.image, labels=self.labels)
        try:
            stream, _ = container.get_archive("/opt/claude-code")
            with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
                archive.extractall(self.tmp / "cli", filter="tar")
        finally:
            container.remove(force=True)
        return self.tmp / "cli" / "claude-code" / "bin" / "claude"

    def workspace(self) -> Path:
        self.count += 1
        return _owned_dir(self.tmp, f"ws-{self.count}")

    def sandbox(self, **overrides: Any) -> Sandbox:
        return self.boxes.start(str(self.workspace()), **overrides)

    def _play(self, marker: str, path: str) -> None:
        self.double.play(write_turn(marker, path))

    def sandbox_turn(self, name: str, marker: str = "") -> float:
        """One turn with `docker exec` into sandbox NAME: wall seconds, as a caller sees it.

        Without MARKER the turn's script is loaded first; with one, it must be loaded already.
        """
        if not marker:
            marker = new_marker()
            self._play(marker, f"/workspace/{marker}.txt")
        argv = [
            "docker",
            "exec",
            name,
            "claude",
            "-p",
            marker,
            "--output-format",
            "json",
            "--allowedTools",
            "Write",
        ]
        return self._timed(argv, marker)

    def host_turn(self, workspace: Path, home: Path) -> float:
        """The same turn by the same binary on the host, against the same double."""
        marker = new_marker()
        self._play(marker, f"{workspace}/{marker}.txt")
        argv = [str(self.cli), "-p", marker, "--output-format", "json", "--allowedTools", "Write"]
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(home),
            **self.env,
            "ANTHROPIC_BASE_URL": self.double.host_url,
        }
        return self._timed(argv, marker, cwd=workspace, env=env)

    def _timed(self, argv: list[str], marker: str, **kwargs: Any) -> float:
        start = time.perf_counter()
        result = run(argv, timeout=120, check=False, **kwargs)
        seconds = time.perf_counter() - start
        if result.returncode != 0 or '"is_error":false' not in result.stdout:
            problems = self.double.log().problems()
            raise BenchError(
                f"double: {problems}\n"
                f"turn {marker} failed ({result.returncode}): {result.stdout}"
                f"{result.stderr[-1500:]}"
            )
        return seconds

    def stats(self, sandbox: Sandbox) -> dict[str, Any]:
        return self.client.api.stats(sandbox.container.id, stream=False, one_shot=True)


def _memory_in_use(stats: dict[str, Any]) -> int:
    """What `docker stats` shows: usage less inactive page cache (cgroup v1 and v2)."""
    memory = stats["memory_stats"]
    detail = memory.get("stats", {})
    cache = detail.get("total_inactive_file", detail.get("inactive_file", 0))
    return int(memory["usage"]) - int(cache)


def _peak_memory(bench: TurnBench, sandbox: Sandbox) -> int:
    peak = bench.stats(sandbox)["memory_stats"].get("max_usage")  # cgroup v1
    if peak:
        return int(peak)
    scope = Path(f"/sys/fs/cgroup/system.slice/docker-{sandbox.container.id}.scope/memory.peak")
    if scope.exists():  # cgroup v2 with the systemd driver
        return int(scope.read_text())
    raise BenchError("neither cgroup v1 max_usage nor a v2 memory.peak is available")


def _cpu_seconds(bench: TurnBench, sandbox: Sandbox) -> float:
    return int(bench.stats(sandbox)["cpu_stats"]["cpu_usage"]["total_usage"]) / 1e9


def turn_vs_host(bench: TurnBench, runs: int) -> Row:
    sandbox = bench.sandbox()
    workspace, home = bench.workspace(), bench.workspace()
    ours, base = alternate(
        lambda: bench.sandbox_turn(sandbox.name), lambda: bench.host_turn(workspace, home), runs
    )
    return ratio_row(
        "agent turn (2 steps, Write) via `docker exec` into a hardened sandbox",
        ours,
        base,
        unit=ms,
        baseline="same CLI binary on the host, same double",
        limit=1.15,
    )


def cold_turn(bench: TurnBench, runs: int) -> Row:
    """`docker run -d` (the hardened flags) to the first completed turn."""
    colds: list[float] = []
    warms: list[float] = []
    for _ in range(runs):
        workspace = bench.workspace()
        name = f"agt-bench-{bench.run_id}-cold-{uuid.uuid4().hex[:6]}"
        env_flags = [flag for key, value in bench.env.items() for flag in ("-e", f"{key}={value}")]
        argv = [
            "docker",
            "run",
            "-d",
            "--name",
            name,
            "--label",
            f"{LABEL}={bench.run_id}",
            "--network",
            bench.network.name,
            *docker_run_flags(SANDBOX_SETTINGS),
            *env_flags,
            "-v",
            f"{workspace}:/workspace",
            bench.image,
        ]
        start = time.perf_counter()
        try:
            run(argv, timeout=60)
            wait_until_ready(bench.client.containers.get(name), timeout=30, poll=0.01)
            bench.sandbox_turn(name)
            colds.append(time.perf_counter() - start)
            warms.append(bench.sandbox_turn(name))
        finally:
            run(["docker", "rm", "-f", "-v", name], check=False)
    value = median(colds)
    return Row(
        figure="cold path: `docker run -d` (hardened) to the first completed turn",
        value=sec(value),
        baseline=f"{ms(median(warms))} for a turn in the running sandbox",
        comparison=f"+{ms(value - median(warms))} start-up",
        target="< 2 s",
        holds=value < 2.0,
        data={"seconds": colds, "baseline_seconds": warms},
    )


def concurrent_turns(bench: TurnBench, runs: int, count: int = 8) -> Row:
    """COUNT turns in COUNT sandboxes at once, against the ideal from one turn's CPU time."""
    cores = len(os.sched_getaffinity(0))
    boxes = [bench.sandbox() for _ in range(count)]
    walls: list[float] = []
    cpus: list[float] = []
    with ThreadPoolExecutor(count) as pool:
        for _ in range(runs):
            before = _cpu_seconds(bench, boxes[0])
            bench.sandbox_turn(boxes[0].name)
            cpus.append(_cpu_seconds(bench, boxes[0]) - before)
            markers = [new_marker() for _ in boxes]
            bench.double.play(*(write_turn(m, f"/workspace/{m}.txt") for m in markers))
            start = time.perf_counter()
            list(pool.map(bench.sandbox_turn, [box.name for box in boxes], markers))
            walls.append(time.perf_counter() - start)
    ideal = count * median(cpus) / cores
    wall = median(walls)
    efficiency = ideal / wall
    return Row(
        figure=f"{count} concurrent turns in {count} sandboxes (wall)",
        value=sec(wall),
        baseline=f"{sec(ideal)} = {count} x {ms(median(cpus))} CPU per turn / {cores} cores",
        comparison=f"efficiency {efficiency:.0%}",
        target="report",
        holds=None,
        data={"seconds": walls, "cpu_seconds_per_turn": cpus, "cores": cores},
    )


# Peak RSS of a turn, measured the same way on both sides: the CLI runs as the only child of
# a small python3 probe, whose RUSAGE_CHILDREN maxrss is then that process's peak.
PEAK_RSS_PROBE = (
    "import resource, subprocess, sys\n"
    "subprocess.run(sys.argv[1:], check=True, capture_output=True)\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)\n"
)


def memory(bench: TurnBench) -> list[Row]:
    """Idle keep-alive sandbox memory, and the peak memory of one turn."""
    idle = bench.sandbox()
    bare = bench.sandbox(entrypoint=["sleep"], command=["infinity"], wait=False)
    time.sleep(2)  # let the entrypoint's exits and page cache settle
    idle_bytes, bare_bytes = (_memory_in_use(bench.stats(box)) for box in (idle, bare))
    fresh = bench.sandbox()
    in_sandbox = _peak_rss(bench, fresh)
    cgroup_peak = _peak_memory(bench, fresh)
    on_host = _peak_rss(bench, None)
    return [
        Row(
            figure="idle keep-alive sandbox memory",
            value=human(idle_bytes),
            baseline=f"{human(bare_bytes)} for bare `sleep infinity` as PID 1",
            comparison=f"+{human(max(0, idle_bytes - bare_bytes))}",
            target="< 2 MiB",
            holds=idle_bytes < 2 * 1024 * 1024,
            data={"bytes": idle_bytes, "baseline_bytes": bare_bytes},
        ),
        Row(
            figure="peak RSS of the CLI during one turn, in the sandbox",
            value=human(in_sandbox),
            baseline=f"{human(on_host)} for the same turn on the host",
            comparison=f"{in_sandbox / on_host:.2f}x; sandbox cgroup peak {human(cgroup_peak)}",
            target="report",
            holds=None,
            data={"bytes": in_sandbox, "baseline_bytes": on_host, "cgroup_peak": cgroup_peak},
        ),
    ]


def _peak_rss(bench: TurnBench, sandbox: Sandbox | None) -> int:
    """Peak RSS of one turn's CLI process, in SANDBOX or (None) on the host."""
    marker = new_marker()
    flags = ["-p", marker, "--allowedTools", "Write"]
    if sandbox is None:
        workspace, home = bench.workspace(), bench.workspace()
        bench.double.play(write_turn(marker, f"{workspace}/{marker}.txt"))
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(home),
            **bench.env,
            "ANTHROPIC_BASE_URL": bench.double.host_url,
        }
        argv = [sys.executable, "-c", PEAK_RSS_PROBE, str(bench.cli), *flags]
        kwargs: dict[str, Any] = {"cwd": workspace, "env": env}
    else:
        bench.double.play(write_turn(marker, f"/workspace/{marker}.txt"))
        argv = ["docker", "exec", sandbox.name, "python3", "-c", PEAK_RSS_PROBE, "claude", *flags]
        kwargs = {}
    result = run(argv, timeout=120, check=False, **kwargs)
    if result.returncode != 0:
        raise BenchError(f"peak-RSS turn failed: {result.stdout}{result.stderr[-1500:]}")
    return int(result.stdout.strip())


def all_rows(image: str, runs: int) -> list[Row]:
    with TurnBench(image) as bench:
        steps: list[Callable[[], Row | list[Row]]] = [
            lambda: turn_vs_host(bench, runs),
            lambda: cold_turn(bench, max(3, runs // 2)),
            lambda: concurrent_turns(bench, 3),
            lambda: memory(bench),
        ]
        rows: list[Row] = []
        for step in steps:
            made = step()
            rows.extend(made if isinstance(made, list) else [made])
        return rows
