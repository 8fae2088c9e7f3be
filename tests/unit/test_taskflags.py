"""The build flags build, buildx and release share: declared once in agentimage.taskflags."""

from __future__ import annotations

import inspect
from dataclasses import fields
from pathlib import Path

import pytest
from invoke import Config, Context, Task

from agentimage import lines
from agentimage.errors import AgentImageError
from agentimage.imagebuild import BuildOptions
from agentimage.taskflags import BuildFlags, build_flag_help, with_build_flags

ROOT = Path(__file__).resolve().parents[2]
SHARED = [field.name for field in fields(BuildFlags)]
LINES = lines.read(ROOT)
OTHER = LINES.names[1]  # a line besides the default


def project_config(**overrides: dict[str, object]) -> Config:
    config = Config(project_location=str(ROOT))
    config.load_project()
    for section, values in overrides.items():
        for key, value in values.items():
            config[section][key] = value
    return config


def test_the_task_signature_takes_each_shared_flag_and_the_body_gets_them_as_one() -> None:
    received: list[tuple[BuildFlags, str | None]] = []

    def build(c: Context, flags: BuildFlags, tag: str | None = None) -> None:
        received.append((flags, tag))

    body = with_build_flags(build)
    task = Task(body, iterable=["cache_from"])
    names = list(task.argspec(body).parameters)
    assert names == [*SHARED, "tag"]
    assert {arg.name for arg in task.get_arguments()} == {*SHARED, "tag"}

    given = {name: None for name in SHARED} | {"variant": "slim", "no_cache": True}
    task(Context(), **given, tag="try1")
    assert received == [(BuildFlags(variant="slim", no_cache=True), "try1")]


def test_a_task_without_a_flags_parameter_is_refused() -> None:
    def build(c: Context, tag: str | None = None) -> None:
        return None

    with pytest.raises(TypeError, match="must be `flags`"):
        with_build_flags(build)


def test_every_shared_flag_has_help_naming_its_default() -> None:
    helps = build_flag_help(project_config(), LINES)
    assert set(helps) == {name.replace("_", "-") for name in SHARED}
    assert "default alpine" in helps["variant"]
    assert f"default {LINES.default}" in helps["node-version"]
    for line, pin in LINES.pins.items():
        assert f"{pin} on Node {line}" in helps["claude-code-version"]


def test_options_take_the_dockerfile_default_line_and_its_pin() -> None:
    options = BuildFlags(ca_cert="none").options(project_config(), ROOT)
    assert options == BuildOptions(
        variant="alpine",
        node_version=LINES.default,
        claude_code_version=LINES.pins[LINES.default],
        ca_cert=None,
        dockerfile="docker/Dockerfile.agent",
        context=".",
    )


def test_another_line_picks_its_own_pin_and_tag_suffix() -> None:
    options = BuildFlags(node_version=OTHER, ca_cert="none").options(project_config(), ROOT)
    assert options.claude_code_version == LINES.pins[OTHER]
    assert options.tag_suffix == f"-node{OTHER}"
    full = BuildFlags(node_version=f"{OTHER}.1.2", ca_cert="none").options(project_config(), ROOT)
    assert (full.line, full.claude_code_version) == (OTHER, LINES.pins[OTHER])
    pinned = BuildFlags(node_version=OTHER, claude_code_version="9.8.7", ca_cert="none")
    assert pinned.options(project_config(), ROOT).claude_code_version == "9.8.7"


def test_a_release_takes_every_line_the_default_first() -> None:
    every = BuildFlags(ca_cert="none").line_options(project_config(), ROOT)
    assert [o.line for o in every] == list(LINES.names)
    assert [o.claude_code_version for o in every] == [LINES.pins[n] for n in LINES.names]
    assert [o.tag_suffix for o in every] == ["", *(f"-node{n}" for n in LINES.names[1:])]
    only = BuildFlags(ca_cert="none").line_options(project_config(), ROOT, LINES.default)
    assert [o.line for o in only] == [LINES.default]
    with pytest.raises(AgentImageError, match="leave out the default line"):
        BuildFlags(ca_cert="none").line_options(project_config(), ROOT, OTHER)


def test_a_flag_wins_over_invoke_yaml_and_cache_refs_become_specs() -> None:
    defaults = project_config(build={"cache_from": "127.0.0.1:5000/a:cache, r/b:cache"})
    from_config = BuildFlags(ca_cert="none").options(defaults, ROOT)
    assert from_config.cache_from == (
        "type=registry,ref=127.0.0.1:5000/a:cache",
        "type=registry,ref=r/b:cache",
    )
    flags = BuildFlags(variant="slim", node_version=OTHER, ca_cert="none", cache_from=["r/c:x"])
    options = flags.options(defaults, ROOT)
    assert (options.variant, options.node_version) == ("slim", OTHER)
    assert options.cache_from == ("type=registry,ref=r/c:x",)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (BuildFlags(variant="debian"), "unknown variant"),
        (BuildFlags(node_version="twenty"), "Node version"),
        (BuildFlags(claude_code_version="latest"), "Claude Code version"),
        (BuildFlags(ca_cert="/nonexistent.pem"), "does not exist"),
        (BuildFlags(node_version="7"), "Node 7 is not a line"),
    ],
)
def test_every_value_is_checked(flags: BuildFlags, message: str) -> None:
    with pytest.raises(AgentImageError, match=message):
        flags.options(project_config(), ROOT)


def test_build_buildx_and_release_take_the_same_shared_flags() -> None:
    import tasks

    for task in (tasks.build, tasks.buildx, tasks.release):
        parameters = inspect.signature(task.body).parameters
        assert [name for name in parameters if name in SHARED] == SHARED, task.name
        assert set(task.iterable) >= {"cache_from", "cache_to"}, task.name
