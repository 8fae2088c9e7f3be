"""The Node lines and their Claude Code pins: written once, in docker/Dockerfile.agent.

Everything else reads them through agentimage.lines; these tests fail when a pin or a line
is copied into another file (docs excepted), and pin the parser and the rewriter that
`invoke update-cli` uses.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from agentimage import lines
from agentimage.errors import AgentImageError

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "docker" / "Dockerfile.agent"
MIRROR_SCRIPT = ROOT / "scripts" / "build-base-mirror.sh"

# Where versions may be written: the source of truth, and prose (docs may name versions).
SOURCE = "docker/Dockerfile.agent"
PROSE = re.compile(r"(^docs/|\.md$)")


def tracked_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    return [name for name in out.split("\0") if name]


def literal_patterns(known: lines.Lines) -> dict[str, re.Pattern[str]]:
    """What a copy of a pin or a line looks like. A line is a major (20), so it is looked
    for where it names Node: node:18-..., node18, NODE_VERSION=18, --node-version 18,
    node_version: "18", a bare "18" string, v18. (a node --version). A full Node release
    (18.20.8, a mirror's stand-in) is another fact and not a line."""
    found = {}
    for pin in set(known.pins.values()):
        found[f"CLI pin {pin}"] = re.compile(rf"(?<![\w.]){re.escape(pin)}(?![\w])")
    for line in known.pins:
        not_release = r"(?![\d.]\d|\d)"
        found[f"Node line {line}"] = re.compile(
            rf"(?i)(node[\w-]*[\s:=@\"'(,-]{{0,4}}v?{line}{not_release}"
            rf"|[\"']{line}[\"']"
            rf"|(?<![\w.])v{line}\.)"
        )
    return found


def literals_in(text: str, patterns: dict[str, re.Pattern[str]]) -> list[str]:
    hits = []
    for number, line in enumerate(text.splitlines(), start=1):
        for what, pattern in patterns.items():
            if pattern.search(line):
                hits.append(f"{number}: {what}: {line.strip()}")
    return hits


def test_the_pins_and_lines_appear_nowhere_else() -> None:
    known = lines.read(ROOT)
    patterns = literal_patterns(known)
    copies = []
    for name in tracked_files():
        if name == SOURCE or PROSE.search(name):
            continue
        path = ROOT / name
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue  # binary, or deleted in the work tree
        copies += [f"{name}:{hit}" for hit in literals_in(text, patterns)]
    assert not copies, (
        f"versions written outside {SOURCE}; read them with agentimage.lines instead:\n"
        + "\n".join(copies)
    )


@pytest.mark.parametrize(
    "text",
    [
        "BASE_IMAGE: ${AGENT_BASE_IMAGE:-node:18-alpine}",
        'node_version: "18"',
        "NODE_VERSION=18",
        "--node-version 18",
        'BuildOptions("slim", "18", "9.9.9")',
        "assert out.startswith('v18.')",
        "agentgate/agent:dev-node18",
        "CLAUDE_CODE_VERSION: ${CLAUDE_CODE_VERSION:-1.2.3}",
    ],
)
def test_the_scan_finds_copies(text: str) -> None:
    patterns = literal_patterns(lines.Lines("18", {"18": "1.2.3"}))
    assert literals_in(text, patterns), text


@pytest.mark.parametrize(
    "text",
    [
        "timeout = 18  # seconds",
        "NODE_RELEASES:=18.18.2/10.8.2",
        "1.2.30",
        "port 1180",
        "node:22-alpine",
    ],
)
def test_the_scan_leaves_other_numbers(text: str) -> None:
    patterns = literal_patterns(lines.Lines("18", {"18": "1.2.3"}))
    assert not literals_in(text, patterns), text


SAMPLE = """\
ARG NODE_VERSION=18
ARG BASE_IMAGE=node:${NODE_VERSION}-alpine

FROM ${BASE_IMAGE} AS system
RUN true

FROM system AS node18
ARG CLAUDE_CODE_VERSION=1.0.9
ENV CLAUDE_CODE_VERSION=${CLAUDE_CODE_VERSION}

FROM system AS node30
ARG CLAUDE_CODE_VERSION=1.4.0
ENV CLAUDE_CODE_VERSION=${CLAUDE_CODE_VERSION}

FROM node${NODE_VERSION} AS builder
RUN echo "$CLAUDE_CODE_VERSION"
"""


def test_parse_reads_the_default_line_and_each_pin() -> None:
    parsed = lines.parse(SAMPLE)
    assert parsed.default == "18"
    assert dict(parsed.pins) == {"18": "1.0.9", "30": "1.4.0"}
    assert parsed.names == ("18", "30")
    assert parsed.pin("30") == "1.4.0"


def test_the_project_dockerfile_has_a_default_line_with_a_pin() -> None:
    known = lines.read(ROOT)
    assert known.default in known.pins
    assert len(known.pins) >= 2, "the default line and a current one"


def test_an_unknown_line_is_refused_naming_the_lines() -> None:
    with pytest.raises(AgentImageError) as raised:
        lines.parse(SAMPLE).pin("24")
    assert "Node 24 is not a line of docker/Dockerfile.agent (its lines: 18, 30)" in str(
        raised.value
    )
    assert "FROM system AS node24" in str(raised.value)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (SAMPLE.replace("ARG NODE_VERSION=18\n", ""), "exactly one global `ARG NODE_VERSION"),
        (SAMPLE.replace("ARG NODE_VERSION=18", "ARG NODE_VERSION=22"), "has no stage node22"),
        (SAMPLE.replace("ARG CLAUDE_CODE_VERSION=1.4.0\n", ""), "stage node30 needs exactly one"),
        (SAMPLE.replace("1.4.0", "latest"), "is not a version"),
        (SAMPLE.replace("AS node30", "AS node18"), "defines a node<line> stage twice"),
        (SAMPLE.replace("AS node30", "AS nodejs"), "is not a Node line"),
    ],
)
def test_a_malformed_dockerfile_says_what_to_fix(text: str, problem: str) -> None:
    with pytest.raises(AgentImageError, match=re.escape(problem)):
        lines.parse(text)


def test_with_pins_changes_only_the_pins_named() -> None:
    updated = lines.with_pins(SAMPLE, {"30": "1.5.2"})
    assert lines.parse(updated).pins == {"18": "1.0.9", "30": "1.5.2"}
    assert updated == SAMPLE.replace(
        "ARG CLAUDE_CODE_VERSION=1.4.0", "ARG CLAUDE_CODE_VERSION=1.5.2"
    )
    with pytest.raises(AgentImageError, match="no stage for line"):
        lines.with_pins(SAMPLE, {"24": "1.5.2"})


def test_write_pins_rewrites_the_file_in_place(tmp_path: Path) -> None:
    path = tmp_path / "Dockerfile"
    path.write_text(SAMPLE)
    path.chmod(0o640)
    lines.write_pins(path, {"18": "1.0.10"})
    assert lines.parse(path.read_text()).pins["18"] == "1.0.10"
    assert path.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["Dockerfile"]  # no temp file left


def test_line_of_takes_the_major() -> None:
    assert lines.line_of("30") == "30"
    assert lines.line_of("30.1.2") == "30"
    with pytest.raises(AgentImageError, match="is not a version"):
        lines.line_of("thirty")


def test_the_mirror_provides_a_base_for_every_line() -> None:
    """Provisioning builds node:<line>-bookworm-slim into the local mirror for each line the
    Dockerfile builds (hosts without Docker Hub cannot build a line without it)."""
    text = MIRROR_SCRIPT.read_text()
    [releases] = re.findall(r'^: "\$\{NODE_RELEASES:=([^}]*)\}"$', text, re.MULTILINE)
    majors = {entry.split("/")[0].split(".")[0] for entry in releases.split()}
    assert set(lines.read(ROOT).pins) <= majors, (
        f"NODE_RELEASES in {MIRROR_SCRIPT.name} lacks a release for a line of the Dockerfile"
    )
