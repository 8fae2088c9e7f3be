"""python -m benchmarks [--runs N] [--cold-runs N] [JSON]: measure, print Markdown, write JSON."""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path

from benchmarks import agent_turns, figures
from benchmarks.harness import ROOT, BenchError, human, run

IMAGE = "agentgate/agent:bench"
NAIVE = "agentgate/agent:bench-naive"
REBUILD = "agentgate/agent:bench-rebuild"
CONTEXT = "agentgate/agent:bench-context"


def host() -> dict[str, str]:
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    engine = run(["docker", "version", "--format", "{{.Server.Version}}"], check=False)
    buildx = run(["docker", "buildx", "version"], check=False)
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "kernel": platform.release(),
        "machine": platform.machine(),
        "cpu": cpu,
        "cpus": str(len(__import__("os").sched_getaffinity(0))),
        "memory": human(mem_kib * 1024),
        "docker_engine": engine.stdout.strip(),
        "buildx": " ".join(buildx.stdout.split()[1:2]),
        "python": platform.python_version(),
    }


def markdown(rows: list[figures.Row]) -> str:
    lines = [
        "| figure | measured (median) | baseline, same run | comparison | target | holds |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        mark = {True: "yes", False: "**no**", None: "n/a"}[row.holds]
        lines.append(
            f"| {row.figure} | {row.value} | {row.baseline} | {row.comparison} | "
            f"{row.target} | {mark} |"
        )
    size = next((r for r in rows if r.figure == "final image size"), None)
    if size is not None:
        ours, naive = size.data["ours"]["breakdown"], size.data["naive"]["breakdown"]
        lines += ["", "| image content by part | ours | naive |", "| --- | --- | --- |"]
        for name in dict.fromkeys([*ours, *naive]):
            lines.append(f"| {name} | {human(ours.get(name, 0))} | {human(naive.get(name, 0))} |")
        lines.append(
            f"| **total** | {human(size.data['ours']['bytes'])} | "
            f"{human(size.data['naive']['bytes'])} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("json", nargs="?", default="bench-results.json", help="JSON output path")
    parser.add_argument("--runs", type=int, default=7, help="runs per timed figure (median)")
    parser.add_argument("--cold-runs", type=int, default=3, help="cold/rebuild pairs")
    parser.add_argument(
        "--only", action="append", default=[], help="run only figures whose key contains this"
    )
    args = parser.parse_args(argv)
    runs = max(3, args.runs)
    plan = [
        ("size", lambda: figures.image_size(IMAGE, NAIVE)),
        ("size-lines", lambda: figures.line_sizes(IMAGE, IMAGE)),
        ("context", lambda: figures.build_context(CONTEXT, 2)),
        ("run-true", lambda: figures.run_true(IMAGE, runs)),
        ("keepalive", lambda: figures.keepalive_exec(IMAGE, runs)),
        ("healthy", lambda: figures.run_to_healthy(IMAGE, runs)),
        ("stop", lambda: figures.stop_keepalive(IMAGE, runs, 3)),
        ("healthcheck", lambda: figures.healthcheck_cost(IMAGE, runs + 2)),
        ("rebuild", lambda: figures.rebuild_entrypoint(REBUILD, max(1, args.cold_runs))),
        ("invoke", lambda: figures.invoke_overhead(max(3, runs - 2))),
        ("agent-turns", lambda: agent_turns.all_rows(IMAGE, runs)),
    ]
    started = time.monotonic()
    print(f"building {IMAGE} (slim) ...", file=sys.stderr, flush=True)
    rows: list[figures.Row] = []
    errors: dict[str, str] = {}
    try:
        build_s = figures.ensure_image(IMAGE)
        for key, measure in plan:
            if args.only and not any(part in key for part in args.only):
                continue
            print(f"measuring {key} ...", file=sys.stderr, flush=True)
            t0 = time.monotonic()
            try:
                made = measure()
                rows.extend(made if isinstance(made, list) else [made])
            except BenchError as exc:
                errors[key] = str(exc)
                print(f"  {key} failed: {exc}", file=sys.stderr)
            print(f"  {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    table = markdown(rows)
    print(table)
    result = {
        "host": host(),
        "runs": runs,
        "image": IMAGE,
        "image_build_s": build_s,
        "total_s": time.monotonic() - started,
        "figures": [asdict(row) for row in rows],
        "errors": errors,
        "markdown": table,
    }
    out = Path(args.json)
    if not out.is_absolute():
        out = Path.cwd() / out
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
