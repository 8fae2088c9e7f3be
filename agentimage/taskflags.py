"""The build flags `invoke build`, `buildx` and `release` share: declared once, resolved once.

invoke reads a task's flags from its signature, so `with_build_flags` writes the shared
ones into the signature of each task it decorates and hands the task body one BuildFlags
instead; `BuildFlags.options` fills what was not given from invoke.yaml (flags and INVOKE_*
variables override it) and checks every value.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from invoke import Config

from agentimage import config, lines
from agentimage.buildx import cache_ref
from agentimage.errors import AgentImageError
from agentimage.imagebuild import BuildOptions

ITERABLE = ["cache_from", "cache_to"]  # repeatable flags: invoke collects them into lists


@dataclass(frozen=True)
class BuildFlags:
    """The shared flags as given on the command line; None: take invoke.yaml's value."""

    variant: str | None = None
    node_version: str | None = None
    claude_code_version: str | None = None
    ca_cert: str | None = None
    builder: str | None = None
    cache_from: list[str] | None = None
    cache_to: list[str] | None = None
    no_cache: bool = False

    def options(self, defaults: Config, root: Path) -> BuildOptions:
        """The build's inputs: each flag, else its invoke.yaml default, else the Dockerfile's
        (the default line, and the CLI that line pins), checked."""
        image, build = defaults.image, defaults.build
        known = lines.read(root, str(build.dockerfile))
        node_version = config.check_node_version(
            pick(self.node_version, image.node_version or known.default)
        )
        line = lines.line_of(node_version)
        try:
            pinned = known.pin(line)
        except AgentImageError as exc:
            raise unknown_line(exc, line) from None
        cli = pick(self.claude_code_version, image.claude_code_version or pinned)
        return BuildOptions(
            variant=config.check_variant(pick(self.variant, image.variant)),
            node_version=node_version,
            claude_code_version=config.check_cli_version(cli),
            ca_cert=config.resolve_ca_cert(pick(self.ca_cert, build.ca_cert)),
            builder=pick(self.builder, build.builder),
            cache_from=_caches(self.cache_from, build.cache_from),
            cache_to=_caches(self.cache_to, build.cache_to),
            no_cache=self.no_cache,
            dockerfile=str(build.dockerfile),
            context=str(build.context),
            tag_suffix="" if line == known.default else lines.suffix(line),
        )

    def line_options(
        self, defaults: Config, root: Path, only: str = ""
    ) -> tuple[BuildOptions, ...]:
        """The options of every line of the Dockerfile (or of the comma-separated lines in
        `only`), the default line first, as a release publishes them: these flags, with each
        line's own Node version and pin."""
        if self.node_version is not None or self.claude_code_version is not None:
            raise AgentImageError(
                "a release publishes every line of the Dockerfile with its own pin; drop "
                "--node-version and --claude-code-version (change a pin with invoke update-cli)"
            )
        known = lines.read(root, str(defaults.build.dockerfile))
        chosen = [line.strip() for line in only.split(",") if line.strip()] or known.names
        for line in chosen:
            known.pin(line)
        if known.default not in chosen:
            raise AgentImageError(
                f"release lines {only!r} leave out the default line {known.default}, whose "
                "release names vX.Y.Z and latest; add it (or leave release.lines empty)"
            )
        first = replace(self, node_version=known.default).options(defaults, root)
        return (
            first,
            *(
                replace(
                    first,
                    node_version=line,
                    claude_code_version=known.pins[line],
                    tag_suffix=lines.suffix(line),
                )
                for line in known.names[1:]
                if line in chosen
            ),
        )


def unknown_line(error: AgentImageError, line: str) -> AgentImageError:
    """A line the Dockerfile lacks, named with the CLI release it would pin when the npm
    registry can say (the same answer invoke update-cli gives)."""
    from agentimage import cliupdate  # asks npm: only on this failure path

    newest = cliupdate.newest_for_line(line)
    hint = f" (today that is {newest.version})" if newest else ""
    return AgentImageError(error.message + hint, error.code)


def pick(value: object, default: object) -> str:
    """The flag's value when given, else the default, as text."""
    return str(default if value is None else value)


def _caches(values: list[str] | None, default: object) -> tuple[str, ...]:
    items = values or [v for v in str(default or "").split(",") if v.strip()]
    return tuple(cache_ref(v.strip()) for v in items)


def build_flag_help(defaults: Config, known: lines.Lines | None) -> dict[str, str]:
    """`invoke --help` text of each shared flag, with the default it would take (`known`:
    the Dockerfile's lines, None when it cannot be read)."""
    image, build = defaults.image, defaults.build
    node_default = image.node_version or (known.default if known else "(unreadable Dockerfile)")
    pins = ", ".join(f"{v} on Node {k}" for k, v in known.pins.items()) if known else ""
    cli_default = image.claude_code_version or "the line's pin"
    return {
        "variant": "base image variant: alpine (node:<node>-alpine) or slim "
        f"(node:<node>-bookworm-slim); default {image.variant}",
        "node-version": "Node.js line (major) to build, or a full release of it for the base "
        f"image; lines: {', '.join(known.names) if known else '?'}; default {node_default}",
        "claude-code-version": "@anthropic-ai/claude-code version installed in the image; "
        f"default {cli_default} ({pins})",
        "ca-cert": "CA bundle passed as BuildKit secret for npm behind TLS interception: auto "
        f"(SSL_CERT_FILE or the system bundle), none, or a PEM path; default {build.ca_cert}",
        "builder": "buildx builder to use (e.g. a remote BuildKit); default: the current one",
        "cache-from": "cache source, repeatable: a registry ref or a full type=... spec",
        "cache-to": "cache destination, repeatable: a registry ref or a full type=... spec",
        "no-cache": "build without using the build cache",
    }


def with_build_flags(body: Callable[..., Any]) -> Callable[..., Any]:
    """Give a task the shared flags: BODY takes `flags: BuildFlags` after the context, and the
    task's signature (what invoke parses) takes each shared flag in its place."""
    signature = inspect.signature(body)
    context, given, *own = signature.parameters.values()
    if given.name != "flags":
        raise TypeError(f"{body.__name__}: the parameter after the context must be `flags`")
    shared = [
        inspect.Parameter(
            field.name, inspect.Parameter.KEYWORD_ONLY, default=field.default, annotation=field.type
        )
        for field in fields(BuildFlags)
    ]
    own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own]

    @functools.wraps(body)
    def task_body(c: Any, **values: Any) -> Any:
        flags = BuildFlags(**{field.name: values.pop(field.name) for field in fields(BuildFlags)})
        return body(c, flags, **values)

    task_body.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[context, *shared, *own]
    )
    return task_body
