"""The Node.js lines the image is built for, and the Claude Code release each one pins.

docker/Dockerfile.agent is the one place these versions are written: a plain `docker build`
can read nothing else. Its global `ARG NODE_VERSION=<line>` names the default line, and each
line is a stage that pins its CLI:

    FROM system AS node<line>
    ARG CLAUDE_CODE_VERSION=<X.Y.Z>

This module reads them for the tooling (invoke, nox, the bench, the tests) and rewrites a
pin for `invoke update-cli`; nothing else in the repository repeats them.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from agentimage import config
from agentimage.errors import AgentImageError, ExitCode

ROOT = Path(__file__).resolve().parents[1]
_DEFAULT = re.compile(r"^ARG NODE_VERSION=(?P<line>\S*)[ \t]*$", re.MULTILINE)
_STAGE = re.compile(r"^FROM[ \t]+\S+[ \t]+AS[ \t]+node(?P<line>\S*)[ \t]*$", re.MULTILINE)
_FROM = re.compile(r"^FROM[ \t]", re.MULTILINE)
_PIN = re.compile(r"^(?P<head>ARG CLAUDE_CODE_VERSION=)(?P<version>\S*)[ \t]*$", re.MULTILINE)
_LINE = re.compile(r"^[0-9]+$")


@dataclass(frozen=True)
class Lines:
    """The default line and {line: pinned CLI version}, in the Dockerfile's order."""

    default: str
    pins: Mapping[str, str]

    @property
    def names(self) -> tuple[str, ...]:
        """Every line, the default first: the order builds and releases take."""
        return (self.default, *(line for line in self.pins if line != self.default))

    def pin(self, line: str) -> str:
        if line not in self.pins:
            raise AgentImageError(
                f"Node {line} is not a line of {config.DOCKERFILE} (its lines: "
                f"{', '.join(self.names)}); build one of those, or add a stage "
                f"`FROM system AS node{line}` with `ARG CLAUDE_CODE_VERSION=X.Y.Z`, a release "
                f"whose engines admit Node {line}"
            )
        return self.pins[line]


def line_of(node_version: str) -> str:
    """The line (major) of a --node-version: 'N.x.y' -> 'N', 'N' -> 'N'."""
    return config.check_node_version(node_version).split(".", 1)[0]


def suffix(line: str) -> str:
    """What a line adds to image tag names: '-node<line>' (see tags.py for the scheme)."""
    return f"-node{line}"


def _stages(text: str) -> list[tuple[str, str, int, int]]:
    """(line, pin, start, end) of each node<line> stage; start/end bound the stage's text."""
    starts = [m.start() for m in _FROM.finditer(text)] + [len(text)]
    found = []
    for match in _STAGE.finditer(text):
        end = next(s for s in starts if s > match.start())
        body = text[match.end() : end]
        pins = list(_PIN.finditer(body))
        line = match["line"]
        if not _LINE.match(line):
            raise AgentImageError(
                f"{config.DOCKERFILE}: stage node{line} is not a Node line; name line stages "
                "node<major>, e.g. node24"
            )
        if len(pins) != 1:
            raise AgentImageError(
                f"{config.DOCKERFILE}: stage node{line} needs exactly one "
                f"`ARG CLAUDE_CODE_VERSION=X.Y.Z` (found {len(pins)}); write its pin there"
            )
        pin = pins[0]
        config.check_cli_version(pin["version"])
        start = match.end() + pin.start("version")
        found.append((line, pin["version"], start, start + len(pin["version"])))
    return found


def parse(text: str) -> Lines:
    """The lines of a Dockerfile's text; a malformed or missing section says what to fix."""
    defaults = _DEFAULT.findall(text)
    if len(defaults) != 1:
        raise AgentImageError(
            f"{config.DOCKERFILE} needs exactly one global `ARG NODE_VERSION=<line>` "
            f"(found {len(defaults)}); it names the default line"
        )
    stages = _stages(text)
    pins = {line: pin for line, pin, _, _ in stages}
    if len(pins) != len(stages):
        raise AgentImageError(f"{config.DOCKERFILE} defines a node<line> stage twice; keep one")
    default = defaults[0]
    if default not in pins:
        raise AgentImageError(
            f"{config.DOCKERFILE}: the default line NODE_VERSION={default} has no stage "
            f"node{default}; add one or change the default to one of {', '.join(pins) or '(none)'}"
        )
    return Lines(default, pins)


def dockerfile_path(root: Path = ROOT, dockerfile: str = config.DOCKERFILE) -> Path:
    return root / dockerfile


def read(root: Path = ROOT, dockerfile: str = config.DOCKERFILE) -> Lines:
    path = dockerfile_path(root, dockerfile)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AgentImageError(
            f"cannot read {path} ({exc.strerror}); run from a checkout of the project",
            ExitCode.USAGE,
        ) from exc
    return parse(text)


def with_pins(text: str, pins: Mapping[str, str]) -> str:
    """The Dockerfile's text with the given lines' pins replaced, nothing else touched."""
    unknown = set(pins) - set(parse(text).pins)
    if unknown:
        raise AgentImageError(f"no stage for line(s) {', '.join(sorted(unknown))} to update")
    out, last = [], 0
    for line, _, start, end in _stages(text):
        if line in pins:
            out += [text[last:start], config.check_cli_version(pins[line])]
            last = end
    return "".join([*out, text[last:]])


def write_pins(path: Path, pins: Mapping[str, str]) -> None:
    """Rewrite the pins in place: a temp file beside it, then a rename (never half-written)."""
    text = path.read_text(encoding="utf-8")
    updated = with_pins(text, pins)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(updated)
        os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
