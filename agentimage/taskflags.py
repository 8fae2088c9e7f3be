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
from dataclasses import dataclass, fields
from typing import Any

from invoke import Config

from agentimage import config
from agentimage.buildx import cache_ref
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

    def options(self, defaults: Config) -> BuildOptions:
        """The build's inputs: each flag, else its invoke.yaml default, checked."""
        image, build = defaults.image, defaults.build
        return BuildOptions(
            variant=config.check_variant(pick(self.variant, image.variant)),
            node_version=config.check_node_version(pick(self.node_version, image.node_version)),
            claude_code_version=config.check_cli_version(
                pick(self.claude_code_version, image.claude_code_version)
            ),
            ca_cert=config.resolve_ca_cert(pick(self.ca_cert, build.ca_cert)),
            builder=pick(self.builder, build.builder),
            cache_from=_caches(self.cache_from, build.cache_from),
            cache_to=_caches(self.cache_to, build.cache_to),
            no_cache=self.no_cache,
            dockerfile=str(build.dockerfile),
            context=str(build.context),
        )


def pick(value: object, default: object) -> str:
    """The flag's value when given, else the default, as text."""
    return str(default if value is None else value)


def _caches(values: list[str] | None, default: object) -> tuple[str, ...]:
    items = values or [v for v in str(default or "").split(",") if v.strip()]
    return tuple(cache_ref(v.strip()) for v in items)


def build_flag_help(defaults: Config) -> dict[str, str]:
    """`invoke --help` text of each shared flag, with the default it would take."""
    image, build = defaults.image, defaults.build
    return {
        "variant": "base image variant: alpine (node:<node>-alpine) or slim "
        f"(node:<node>-bookworm-slim); default {image.variant}",
        "node-version": f"Node.js major or full version of the base image; default "
        f"{image.node_version}",
        "claude-code-version": "@anthropic-ai/claude-code version installed in the image; "
        f"default {image.claude_code_version}",
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
