"""The build flags build, buildx and release share: declared once in agentimage.taskflags."""

from __future__ import annotations

import inspect
from dataclasses import fields
from pathlib import Path

import pytest
from invoke import Config, Context, Task

from agentimage.errors import AgentImageError
from agentimage.imagebuild import BuildOptions
from agentimage.taskflags import BuildFlags, build_flag_help, with_build_flags

ROOT = Path(__file__).resolve().parents[2]
SHARED = [field.name for field in fields(BuildFlags)]


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
    helps = build_flag_help(project_config())
    assert set(helps) == {name.replace("_", "-") for name in SHARED}
    assert "default alpine" in helps["variant"]
    assert "default 2.1.197" in helps["claude-code-version"]


def test_options_take_invoke_yaml_where_no_flag_is_given() -> None:
    options = BuildFlags(ca_cert="none").options(project_config())
    assert options == BuildOptions(
        variant="alpine",
        node_version="20",
        claude_code_version="2.1.197",
        ca_cert=None,
        dockerfile="docker/Dockerfile.agent",
        context=".",
    )


def test_a_flag_wins_over_invoke_yaml_and_cache_refs_become_specs() -> None:
    defaults = project_config(build={"cache_from": "127.0.0.1:5000/a:cache, r/b:cache"})
    from_config = BuildFlags(ca_cert="none").options(defaults)
    assert from_config.cache_from == (
        "type=registry,ref=127.0.0.1:5000/a:cache",
        "type=registry,ref=r/b:cache",
    )
    flags = BuildFlags(variant="slim", node_version="22", ca_cert="none", cache_from=["r/c:x"])
    options = flags.options(defaults)
    assert (options.variant, options.node_version) == ("slim", "22")
    assert options.cache_from == ("type=registry,ref=r/c:x",)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (BuildFlags(variant="debian"), "unknown variant"),
        (BuildFlags(node_version="twenty"), "Node version"),
        (BuildFlags(claude_code_version="latest"), "Claude Code version"),
        (BuildFlags(ca_cert="/nonexistent.pem"), "does not exist"),
    ],
)
def test_every_value_is_checked(flags: BuildFlags, message: str) -> None:
    with pytest.raises(AgentImageError, match=message):
        flags.options(project_config())


def test_build_buildx_and_release_take_the_same_shared_flags() -> None:
    import tasks

    for task in (tasks.build, tasks.buildx, tasks.release):
        parameters = inspect.signature(task.body).parameters
        assert [name for name in parameters if name in SHARED] == SHARED, task.name
        assert set(task.iterable) >= {"cache_from", "cache_to"}, task.name
