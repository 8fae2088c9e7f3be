"""`invoke update-cli`: the newest Claude Code release each Node line can run, from the npm
registry, and the pins in the Dockerfile moved to it.

A release qualifies for a line when
  - it is a stable release (no prerelease), not deprecated, and not newer than `latest`;
  - its `engines.node` admits every release of the line (checked at <line>.0.0 and at a
    far-future <line>.x: a range like >=22.9 keeps the whole 22 line out, because the
    node:22 base moves through all of it);
  - it lists, and the registry has, its native package for each Linux platform the image is
    built for: linux x64 and arm64, glibc (slim) and musl (alpine).
Pins only move forward: a line whose newest qualifying release is older than its pin (a
yanked or deprecated release) keeps its pin and says so.

npm is asked through its own CLI, so its configuration applies as it does to the build's
`npm install` (registry, proxy, CA, auth: `npm_config_registry` points it at a test double).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import semantic_version

from agentimage import lines, proc
from agentimage.errors import AgentImageError, ExitCode

CLI_PACKAGE = "@anthropic-ai/claude-code"
# The native packages npm installs for the image's platforms (DESIGN: bin/claude.exe comes
# from exactly one of them): linux/amd64 and linux/arm64, slim (glibc) and alpine (musl).
PLATFORM_PACKAGES = tuple(
    f"{CLI_PACKAGE}-linux-{platform}" for platform in ("x64", "arm64", "x64-musl", "arm64-musl")
)
NPM_TIMEOUT = 120  # the CLI's full packument is a few MB
FAR_RELEASE = 999_999  # a minor no line reaches: stands for the newest release of a line


@dataclass(frozen=True)
class CliRelease:
    version: str
    node_engines: str  # engines.node, "" when the release declares none
    optional: Mapping[str, str] = field(default_factory=dict)  # optionalDependencies
    deprecated: str = ""

    @property
    def semver(self) -> semantic_version.Version:
        return semantic_version.Version(self.version)

    def admits(self, line: str) -> bool:
        """engines.node admits every release of Node <line>."""
        if not self.node_engines.strip():
            return True
        try:
            spec = semantic_version.NpmSpec(self.node_engines)
        except ValueError:
            return False  # a range npm itself would not understand: not for us
        major = int(line)
        return all(
            spec.match(semantic_version.Version(major=major, minor=minor, patch=0))
            for minor in (0, FAR_RELEASE)
        )


@dataclass(frozen=True)
class Registry:
    """What the npm registry said: the CLI's releases, `latest`, and which versions of each
    platform package exist."""

    releases: tuple[CliRelease, ...]
    latest: str
    platform_versions: Mapping[str, frozenset[str]]

    def missing_platforms(self, release: CliRelease) -> list[str]:
        """Platform packages the release does not list at its own version, or the registry
        does not have: any one makes the release unusable on that platform."""
        return [
            package.removeprefix(f"{CLI_PACKAGE}-")
            for package in PLATFORM_PACKAGES
            if release.optional.get(package) != release.version
            or release.version not in self.platform_versions.get(package, frozenset())
        ]


@dataclass(frozen=True)
class LineUpdate:
    line: str
    current: str
    newest: str  # the newest qualifying release; "" when there is none
    skipped: tuple[str, ...] = ()  # newer releases passed over, each with why

    @property
    def target(self) -> str:
        """The pin after the update: never backwards."""
        if not self.newest:
            return self.current
        newer = semantic_version.Version(self.newest) > semantic_version.Version(self.current)
        return self.newest if newer else self.current

    @property
    def changes(self) -> bool:
        return self.target != self.current


def _npm() -> str:
    npm = shutil.which("npm")
    if not npm:
        raise AgentImageError(
            "npm is not on PATH; install Node.js and npm (update-cli asks the npm registry "
            "through npm, with npm's own configuration)",
            ExitCode.ENVIRONMENT,
        )
    return npm


def npm_view(*args: str) -> object:
    """`npm view ARGS --json`, parsed. A failure raises with npm's own error line."""
    argv = [_npm(), "view", "--json", "--fetch-retries=1", "--fetch-timeout=30000", *args]
    result = proc.run(argv, timeout=NPM_TIMEOUT)
    if not result.ok:
        detail = _npm_error(result.stderr) or result.detail
        package = args[0].split("@>=")[0]
        if "E404" in result.stderr:
            raise AgentImageError(
                f"the npm registry has no {package} ({detail}); check npm config get registry",
                ExitCode.NPM,
            )
        raise AgentImageError(
            f"asking the npm registry about {package} failed ({detail}); check the registry, "
            "proxy and CA npm uses (npm config list)",
            ExitCode.NPM,
        )
    try:
        return json.loads(result.stdout or "null")
    except ValueError as exc:
        raise AgentImageError(
            f"npm view {args[0]} printed no JSON ({result.stdout[:200]!r}); check npm",
            ExitCode.NPM,
        ) from exc


def _npm_error(stderr: str) -> str:
    """npm's most informative line: the request that failed and why, else its first error
    line that is not bookkeeping (code, errno, syscall, log path)."""
    texts = [
        line.removeprefix("npm error").removeprefix("npm ERR!").strip()
        for line in stderr.splitlines()
        if line.startswith(("npm error", "npm ERR!"))
    ]
    for text in texts:
        if "reason:" in text or "request to" in text:
            return text
    meta = ("code ", "errno ", "syscall ", "A complete log")
    return next((text for text in texts if text and not text.startswith(meta)), "")


def parse_releases(data: object) -> tuple[tuple[CliRelease, ...], str]:
    """`npm view CLI@>=0.0.0 version engines optionalDependencies deprecated dist-tags
    --json`: one object for a single match, a list for several (dist-tags, set on every
    entry, keeps npm from flattening them to bare values). `>=0.0.0`, not `*`: npm reads
    `*` as the latest tag; a range leaves out prereleases as npm install would."""
    entries = data if isinstance(data, list) else [data] if isinstance(data, dict) else []
    releases, latest = [], ""
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("version"), str):
            continue
        try:
            semantic_version.Version(entry["version"])
        except ValueError:
            continue
        engines = entry.get("engines")
        node = engines.get("node", "") if isinstance(engines, dict) else ""
        optional = entry.get("optionalDependencies")
        releases.append(
            CliRelease(
                version=entry["version"],
                node_engines=str(node or ""),
                optional=dict(optional) if isinstance(optional, dict) else {},
                deprecated=str(entry.get("deprecated") or ""),
            )
        )
        tags = entry.get("dist-tags")
        if isinstance(tags, dict) and isinstance(tags.get("latest"), str):
            latest = tags["latest"]
    return tuple(releases), latest


def _versions(package: str) -> frozenset[str]:
    try:
        found = npm_view(package, "versions")
    except AgentImageError as exc:
        if "has no" in exc.message:
            return frozenset()  # the package is not published at all: every release lacks it
        raise
    return frozenset(found if isinstance(found, list) else [found] if found else [])


def ask_registry() -> Registry:
    """Every stable CLI release with what qualifies it, and each platform package's versions
    (five `npm view` calls, side by side)."""
    with ThreadPoolExecutor(max_workers=len(PLATFORM_PACKAGES) + 1) as pool:
        wanted = ("version", "engines", "optionalDependencies", "deprecated", "dist-tags")
        cli = pool.submit(npm_view, f"{CLI_PACKAGE}@>=0.0.0", *wanted)
        platforms = {package: pool.submit(_versions, package) for package in PLATFORM_PACKAGES}
        releases, latest = parse_releases(cli.result())
        versions = {package: future.result() for package, future in platforms.items()}
    if not releases:
        raise AgentImageError(
            f"the npm registry lists no stable release of {CLI_PACKAGE}; check npm config get "
            "registry",
            ExitCode.NPM,
        )
    return Registry(releases, latest, versions)


def newest(registry: Registry, line: str) -> tuple[str, tuple[str, ...]]:
    """(the newest release qualifying for the line, the newer ones passed over and why)."""
    ceiling = semantic_version.Version(registry.latest) if registry.latest else None
    skipped = []
    for release in sorted(registry.releases, key=lambda r: r.semver, reverse=True):
        version = release.semver
        if version.prerelease or (ceiling is not None and version > ceiling):
            continue
        if not release.admits(line):
            continue  # the common case (a line too old): not worth a line each
        if release.deprecated:
            skipped.append(f"{release.version}: deprecated ({release.deprecated})")
            continue
        missing = registry.missing_platforms(release)
        if missing:
            skipped.append(f"{release.version}: no {', '.join(missing)} package")
            continue
        return release.version, tuple(skipped)
    return "", tuple(skipped)


def plan(known: lines.Lines, registry: Registry) -> list[LineUpdate]:
    """Each line's pin and where it would move."""
    updates = []
    for line in known.names:
        current = known.pins[line]
        found, skipped = newest(registry, line)
        updates.append(LineUpdate(line, current, found, skipped))
    return updates


def newest_for_line(line: str) -> CliRelease | None:
    """The newest release qualifying for a line, or None when npm cannot say (best effort,
    for naming it in an error)."""
    try:
        registry = ask_registry()
    except AgentImageError:
        return None
    version, _ = newest(registry, line)
    return next((r for r in registry.releases if r.version == version), None)


def describe(updates: Sequence[LineUpdate], *, dry_run: bool) -> list[str]:
    """What update-cli prints: one line per Node line, then what was done."""
    out = []
    for update in updates:
        head = f"node {update.line}: {CLI_PACKAGE} "
        if update.changes:
            out.append(f"{head}{update.current} -> {update.target}")
        elif not update.newest:
            out.append(f"{head}{update.current} (no release qualifies; pin kept)")
        elif update.newest != update.current:
            out.append(
                f"{head}{update.current} (kept: the newest qualifying release, "
                f"{update.newest}, is older)"
            )
        else:
            out.append(f"{head}{update.current} (up to date)")
        out += [f"  passed over {reason}" for reason in update.skipped]
    changed = [u for u in updates if u.changes]
    if not changed:
        out.append("every pin is current; nothing to change")
    elif dry_run:
        out.append(f"dry run: {_pins(changed)} would change; nothing was written")
    else:
        out.append(f"updated {_pins(changed)} in the Dockerfile")
    return out


def _pins(updates: Sequence[LineUpdate]) -> str:
    return f"{len(updates)} pin{'s' if len(updates) != 1 else ''}"


def run(root: Path, dockerfile: str, *, dry_run: bool) -> tuple[list[str], bool]:
    """Ask, decide, and (unless dry_run) write: (lines to print, whether a pin changed or
    would change)."""
    path = lines.dockerfile_path(root, dockerfile)
    known = lines.read(root, dockerfile)
    updates = plan(known, ask_registry())
    changed = {u.line: u.target for u in updates if u.changes}
    if changed and not dry_run:
        lines.write_pins(path, changed)
    return describe(updates, dry_run=dry_run), bool(changed)
