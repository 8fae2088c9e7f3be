"""One function per row of the table in issue 4; each measures its baseline in the same run."""

from __future__ import annotations

import json
import os
import posixpath
import shlex
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
from agentimage import config
from benchmarks import layers
from benchmarks.harness import (
    BASE_IMAGE,
    CLAUDE_CODE_VERSION,
    DOCKERFILE,
    LINES,
    PACKAGES,
    ROOT,
    VARIANT,
    BenchError,
    alternate,
    build_argv,
    build_steps,
    ca_secret,
    containers,
    context_bytes,
    copy_files,
    human,
    median,
    run,
    timed,
    wait_exec,
)

MIB = layers.MIB


@dataclass
class Row:
    figure: str
    value: str
    baseline: str
    comparison: str
    target: str
    holds: bool | None
    data: dict[str, Any] = field(default_factory=dict)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def sec(seconds: float) -> str:
    return f"{seconds:.2f} s"


def ratio_row(
    figure: str,
    ours: list[float],
    base: list[float],
    *,
    unit: Callable[[float], str],
    baseline: str,
    limit: float,
    **data: Any,
) -> Row:
    """A row whose target is a ratio of medians: ours / baseline <= limit."""
    ratio = median(ours) / median(base)
    return Row(
        figure=figure,
        value=unit(median(ours)),
        baseline=f"{unit(median(base))} {baseline}",
        comparison=f"{ratio:.2f}x",
        target=f"ratio <= {limit:.2f}",
        holds=ratio <= limit,
        data={"seconds": ours, "baseline_seconds": base, **data},
    )


# --------------------------------------------------------------------------------------------
# Image size


NAIVE_DOCKERFILE = f"""\
FROM {BASE_IMAGE}
RUN --mount=type=secret,id=ca-certificates,required=false \\
    set -eux; \\
    apt-get update; \\
    apt-get install -y --no-install-recommends {" ".join(PACKAGES)}; \\
    if [ -s /run/secrets/ca-certificates ]; then \\
        export NODE_EXTRA_CA_CERTS=/run/secrets/ca-certificates; \\
    fi; \\
    npm install -g @anthropic-ai/claude-code@{CLAUDE_CODE_VERSION}; \\
    claude --version
"""

NODE_PATHS = (
    "/usr/local/bin/",
    "/usr/local/lib/node_modules/npm/",
    "/usr/local/include/",
    "/opt/yarn",
)
CLI_PATHS = ("/opt/claude-code/", "/usr/local/lib/node_modules/@anthropic-ai/")
CACHE_PATHS = ("/root/.npm/", "/var/lib/apt/lists/", "/var/cache/apt/", "/tmp/")  # noqa: S108 - paths inside the image
OURS = ("/usr/local/bin/agent-entrypoint.sh", "/usr/local/bin/agent-healthcheck.sh")
CATEGORIES = ("base", "system packages", "Node/npm", "CLI", "ours", "caches", "shadowed")


def build_naive(tag: str) -> float:
    with tempfile.TemporaryDirectory(prefix="agent-naive-") as tmp:
        (Path(tmp) / "Dockerfile").write_text(NAIVE_DOCKERFILE)
        seconds, _ = timed(
            [
                "docker",
                "buildx",
                "build",
                *ca_secret(),
                "--load",
                "-t",
                tag,
                "--progress=plain",
                tmp,
            ]
        )
    return seconds


def base_layer_count(image: layers.Image, base_image: str = BASE_IMAGE) -> int:
    """How many of the image's layers are the base's. BuildKit pulls the base for its own
    use, so the local store may not hold it: pull it (from the mirror) before counting, or
    every base file would be counted as ours."""
    inspect = ["docker", "image", "inspect", "--format", "{{json .RootFS.Layers}}", base_image]
    result = run(inspect, check=False)
    if result.returncode != 0:
        run(["docker", "pull", "--quiet", base_image])
        result = run(inspect)
    return layers.shared_prefix(json.loads(result.stdout), image.config["rootfs"]["diff_ids"])


def analyse(ref: str, base_image: str = BASE_IMAGE) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="agent-size-") as tmp:
        archive = layers.save_image(ref, Path(tmp) / "image.tar")
        image = layers.read_archive(archive, hash_min_size=MIB)
    state = layers.replay(image.layers)
    base = base_layer_count(image, base_image)

    def classify(node: layers.Node, layer: int) -> str:
        path = node.path
        if path in OURS:
            return "ours"
        if path.startswith(CLI_PATHS):
            return "CLI"
        if path.startswith(CACHE_PATHS):
            return "caches"
        if layer < base:
            return "Node/npm" if path.startswith(NODE_PATHS) else "base"
        return "system packages"

    env = dict(e.split("=", 1) for e in image.config.get("config", {}).get("Env") or [])
    cli = None
    for directory in env.get("PATH", "").split(":"):
        node = layers.resolve(state.files, posixpath.join(directory or "/", "claude"))
        if node is not None and node.inode is not None:
            cli = state.inodes[node.inode]
            break
    if cli is None or cli.digest is None:
        raise BenchError(f"{ref}: no claude binary on PATH")
    dups = layers.duplicates(state, min_size=MIB)
    return {
        "ref": ref,
        "bytes": image.size,
        "compressed_bytes": image.compressed_size,
        "base_layers": base,
        "layers": [
            {"step": ly.step[:80], "bytes": ly.size, "compressed_bytes": ly.compressed_size}
            for ly in image.layers
        ],
        "breakdown": {
            name: value
            for name, value in sorted(
                layers.breakdown(image, state, classify).items(),
                key=lambda kv: CATEGORIES.index(kv[0]) if kv[0] in CATEGORIES else 99,
            )
        },
        "cli_bytes": cli.size,
        "cli_copies": layers.carried(image.layers, cli.digest),
        "duplicates": [{"bytes": d.size, "paths": [p[0] for p in d.paths]} for d in dups],
        "duplicate_bytes": sum(d.wasted for d in dups),
        "shadowed_bytes": layers.shadowed_total(state, by_layers_from=base),
        "shadowed_bytes_all_layers": layers.shadowed_total(state),
        "shadowed_top": [
            {"path": s.path, "bytes": s.size, "how": s.how}
            for s in layers.shadowed_by_path(state, top=12, by_layers_from=base)
        ],
    }


SIZE_TARGET = "CLI once; no dup >= 1 MiB; shadowed < 1 MiB"


def within_budget(analysed: dict[str, Any]) -> bool:
    """The size budget (tests/image/test_size_budget.py): CLI once, nothing large twice,
    less than 1 MiB hidden under our layers."""
    return (
        analysed["cli_copies"] == 1
        and not analysed["duplicates"]
        and analysed["shadowed_bytes"] < MIB
    )


def size_summary(analysed: dict[str, Any]) -> str:
    return (
        f"{human(analysed['bytes'])} ({human(analysed['compressed_bytes'])} gz); CLI "
        f"{human(analysed['cli_bytes'])} x{analysed['cli_copies']}, dup >= 1 MiB "
        f"{human(analysed['duplicate_bytes'])}, shadowed {human(analysed['shadowed_bytes'])}"
    )


def image_size(tag: str, naive_tag: str) -> Row:
    naive_seconds = build_naive(naive_tag)
    ours = analyse(tag)
    naive = analyse(naive_tag)
    return Row(
        figure="final image size",
        value=size_summary(ours),
        baseline=(
            f"naive {human(naive['bytes'])} ({human(naive['compressed_bytes'])} gz); CLI x"
            f"{naive['cli_copies']}, dup {human(naive['duplicate_bytes'])}, shadowed "
            f"{human(naive['shadowed_bytes'])}"
        ),
        comparison=f"{ours['bytes'] / naive['bytes']:.2f}x naive",
        target=SIZE_TARGET,
        holds=within_budget(ours),
        data={"ours": ours, "naive": naive, "naive_build_s": naive_seconds},
    )


def line_size(tag: str, line: str, default_tag: str) -> Row:
    """The size budget of another Node line's image (its own base, its own CLI pin), with
    the default line's image as the same-run baseline: the newer CLI's native binary is
    bigger, and must still be carried once."""
    build_s, _ = timed(build_argv(tag, line=line))
    ours = analyse(tag, config.base_image(VARIANT, line))
    default = analyse(default_tag)
    return Row(
        figure=f"final image size, Node {line} line (CLI {LINES.pins[line]})",
        value=size_summary(ours),
        baseline=(
            f"Node {LINES.default} line {human(default['bytes'])} "
            f"({human(default['compressed_bytes'])} gz); CLI {human(default['cli_bytes'])}"
        ),
        comparison=f"{ours['bytes'] / default['bytes']:.2f}x the default line",
        target=SIZE_TARGET,
        holds=within_budget(ours),
        data={"ours": ours, "default": default, "build_s": build_s},
    )


def line_sizes(tag_prefix: str, default_tag: str) -> list[Row]:
    """line_size of every line but the default."""
    return [line_size(f"{tag_prefix}-node{line}", line, default_tag) for line in LINES.names[1:]]


# --------------------------------------------------------------------------------------------
# Build context


def _repo_files() -> list[str]:
    listed = run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT
    ).stdout
    return [p for p in listed.split("\0") if p and (ROOT / p).exists()] + [".git"]


def _context_once(files: list[str], keep_ignore: bool, tag: str) -> tuple[int, int]:
    """Build from a fresh copy (BuildKit re-sends only changes to a directory it has seen)."""
    with tempfile.TemporaryDirectory(prefix="agent-ctx-") as tmp:
        dest = Path(tmp)
        copy_files(files, dest)
        if not keep_ignore:
            (dest / ".dockerignore").unlink(missing_ok=True)
        raw = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file() and not p.is_symlink())
        _, result = timed(build_argv(tag, context=tmp, dockerfile=str(dest / DOCKERFILE)))
    return context_bytes(result.stdout + result.stderr), raw


def build_context(tag: str, runs: int) -> Row:
    files = _repo_files()
    ours = [_context_once(files, True, tag) for _ in range(runs)]
    naive = [_context_once(files, False, tag) for _ in range(runs)]
    sent = median([b for b, _ in ours])
    sent_naive = median([b for b, _ in naive])
    return Row(
        figure="build context sent to the builder",
        value=f"{sent:.0f} B",
        baseline=f"{human(sent_naive)} without .dockerignore ({len(files)} paths)",
        comparison=f"{sent / sent_naive:.4f}x" if sent_naive else "n/a",
        target="< 64 KiB",
        holds=0 < sent < 64 * 1024,
        data={
            "bytes": [b for b, _ in ours],
            "bytes_without_ignore": [b for b, _ in naive],
            "repo_file_bytes": naive[0][1],
        },
    )


# --------------------------------------------------------------------------------------------
# Runtime figures


def run_true(image: str, runs: int) -> Row:
    def through_entrypoint() -> float:
        return timed(["docker", "run", "--rm", image, "true"])[0]

    def bare() -> float:
        return timed(["docker", "run", "--rm", "--entrypoint", "true", image])[0]

    ours, base = alternate(through_entrypoint, bare, runs)
    return ratio_row(
        "`docker run --rm IMAGE true` (tini + entrypoint)",
        ours,
        base,
        unit=ms,
        baseline="with `--entrypoint true`",
        limit=1.10,
    )


def keepalive_exec(image: str, runs: int) -> Row:
    samples = []
    with containers() as box:
        for _ in range(runs):
            start = time.perf_counter()
            cid = box.start(image)
            wait_exec(cid)
            samples.append(time.perf_counter() - start)
            box.remove(cid)
    value = median(samples)
    return Row(
        figure="keep-alive: `docker run -d` to first `docker exec`",
        value=sec(value),
        baseline="none (absolute)",
        comparison="",
        target="< 1 s",
        holds=value < 1.0,
        data={"seconds": samples},
    )


def run_to_healthy(image: str, runs: int) -> Row:
    samples = []
    client = docker.from_env()
    try:
        with containers() as box:
            for _ in range(runs):
                start = time.perf_counter()
                cid = box.start(image)
                deadline = time.monotonic() + 60
                while True:
                    state = client.api.inspect_container(cid)["State"]
                    status = (state.get("Health") or {}).get("Status")
                    if status == "healthy":
                        break
                    if status == "unhealthy" or not state.get("Running"):
                        raise BenchError(f"{cid[:12]} went {status or 'down'}: {state}")
                    if time.monotonic() > deadline:
                        raise BenchError(f"{cid[:12]} not healthy within 60 s")
                    time.sleep(0.02)
                samples.append(time.perf_counter() - start)
                box.remove(cid)
    finally:
        client.close()
    value = median(samples)
    return Row(
        figure="`docker run -d` to `healthy`",
        value=sec(value),
        baseline="none (absolute)",
        comparison="",
        target="< 2 s",
        holds=value < 2.0,
        data={"seconds": samples},
    )


def stop_keepalive(image: str, runs: int, baseline_runs: int) -> Row:
    ours: list[float] = []
    sleepers: list[float] = []
    with containers() as box:
        for _ in range(runs):
            cid = box.start(image)
            wait_exec(cid)
            ours.append(timed(["docker", "stop", cid])[0])
            box.remove(cid)
        # PID 1 is a plain sleep: it ignores SIGTERM, so Docker kills it after 10 s. Stopped
        # in parallel so the baseline costs one timeout, not one per run.
        cids = [box.start("--entrypoint", "sleep", image, "infinity") for _ in range(baseline_runs)]
        for cid in cids:
            wait_exec(cid)
        lock = threading.Lock()

        def stop(cid: str) -> None:
            seconds = timed(["docker", "stop", cid], timeout=60)[0]
            with lock:
                sleepers.append(seconds)

        threads = [threading.Thread(target=stop, args=(cid,)) for cid in cids]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    value = median(ours)
    return Row(
        figure="`docker stop` of a keep-alive container",
        value=ms(value),
        baseline=f"{sec(median(sleepers))} with PID 1 `sleep infinity`",
        comparison=f"{value / median(sleepers):.3f}x",
        target="< 0.5 s",
        holds=value < 0.5,
        data={"seconds": ours, "baseline_seconds": sleepers},
    )


def healthcheck_cost(image: str, runs: int) -> Row:
    with containers() as box:
        cid = box.start(image)
        wait_exec(cid)

        def check() -> float:
            seconds, result = timed(["docker", "exec", cid, "agent-healthcheck.sh"])
            if result.stdout.strip() != "healthy":
                raise BenchError(f"health check said {result.stdout!r}")
            return seconds

        def true() -> float:
            return timed(["docker", "exec", cid, "true"])[0]

        ours, base = alternate(check, true, runs)
    diff = median(ours) - median(base)
    return Row(
        figure="one health-check run (`docker exec C agent-healthcheck.sh`)",
        value=ms(median(ours)),
        baseline=f"{ms(median(base))} for `docker exec C true`",
        comparison=f"+{ms(diff)}",
        target="difference < 100 ms",
        holds=diff < 0.1,
        data={"seconds": ours, "baseline_seconds": base},
    )


# --------------------------------------------------------------------------------------------
# Builds


def context_inputs() -> list[str]:
    """The files a build sends: .dockerignore's allow-list, the Dockerfile and itself."""
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    allowed = [line[1:].strip() for line in lines if line.startswith("!")]
    return [DOCKERFILE, ".dockerignore", *allowed]


def rebuild_entrypoint(tag: str, runs: int) -> Row:
    inputs = context_inputs()
    cold: list[float] = []
    warm: list[float] = []
    reruns: list[list[str]] = []
    unexpected: list[str] = []
    total_steps = 0
    with tempfile.TemporaryDirectory(prefix="agent-rebuild-") as tmp:
        dest = Path(tmp)
        copy_files(inputs, dest)
        entrypoint = dest / "docker/agent-entrypoint.sh"
        argv = build_argv(tag, context=tmp, dockerfile=str(dest / DOCKERFILE))
        for i in range(runs):
            seconds, result = timed([*argv[:-1], "--no-cache", argv[-1]])
            cold.append(seconds)
            steps = build_steps(result.stdout + result.stderr)
            total_steps = len(steps)
            with entrypoint.open("a") as handle:
                handle.write(f"# benchmark edit {i} {time.time_ns()}\n")
            seconds, result = timed(argv)
            warm.append(seconds)
            steps = build_steps(result.stdout + result.stderr)
            redone = [s for s in steps if not s.cached]
            reruns.append([f"[{s.stage} {s.n}/{s.of}] {s.what[:60]}" for s in redone])
            # Allowed: the entrypoint COPY and the steps after it in the same stage.
            copy = next((s for s in steps if "agent-entrypoint.sh" in s.what), None)
            for s in redone:
                if copy is None or s.stage != copy.stage or s.n < copy.n:
                    unexpected.append(s.what[:80])
    ratio = median(warm) / median(cold)
    counts = [len(r) for r in reruns]
    return Row(
        figure="rebuild after changing only the entrypoint",
        value=f"{sec(median(warm))}, {median(counts):.0f} of {total_steps} steps re-run",
        baseline=f"{sec(median(cold))} cold (--no-cache)",
        comparison=f"{ratio * 100:.1f}% of cold",
        target="<= 10% of cold; only steps from the entrypoint COPY on",
        holds=ratio <= 0.10 and not unexpected,
        data={
            "cold_seconds": cold,
            "rebuild_seconds": warm,
            "rerun_steps": reruns,
            "unexpected_reruns": unexpected,
            "steps": total_steps,
        },
    )


def invoke_overhead(runs: int) -> Row:
    env = {**os.environ, "INVOKE_IMAGE_NAME": "agentgate/agent-bench"}
    invoke = shutil.which("invoke")
    base = [invoke] if invoke else [sys.executable, "-m", "invoke"]
    dry = run([*base, "build", "--variant", VARIANT, "--dry-run"], cwd=ROOT, env=env).stdout
    line = next((ln for ln in dry.splitlines() if ln.startswith("docker buildx build")), "")
    if not line:
        raise BenchError(f"`invoke build --dry-run` printed no buildx command:\n{dry}")
    raw_argv = shlex.split(line)

    def task() -> float:
        return timed([*base, "build", "--variant", VARIANT], cwd=ROOT, env=env)[0]

    def raw() -> float:
        return timed(raw_argv, cwd=ROOT)[0]

    try:
        ours, bare = alternate(task, raw, runs)
    finally:  # its tags name each commit measured: they would pile up
        tags = [raw_argv[i + 1] for i, word in enumerate(raw_argv) if word == "--tag"]
        run(["docker", "image", "rm", *tags], check=False)
    return ratio_row(
        "`invoke build` on a warm cache",
        ours,
        bare,
        unit=sec,
        baseline="raw `docker buildx build`",
        limit=1.15,
        command=line,
    )


def ensure_image(tag: str) -> float:
    return timed(build_argv(tag))[0]
