"""The docker buildx argument list, flag by flag."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

import pytest

from agentimage.buildx import BuildSpec, buildx_argv, cache_ref
from agentimage.errors import AgentImageError
from agentimage.imagebuild import BuildOptions, build_args, failure_hint, make_spec, tags_taken
from agentimage.labels import ImageMetadata

TAGS = ("agentgate/agent:dev", "agentgate/agent:sha-1a2b3c4")
META = ImageMetadata("0.1.1", "a" * 40, "2026-01-02T03:04:05Z", "https://x/y", "slim")


def argv(**changes: object) -> list[str]:
    return buildx_argv(BuildSpec(**{"tags": TAGS, **changes}))  # type: ignore[arg-type]


def pairs(args: list[str], flag: str) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args) if a == flag]


def test_minimal_command() -> None:
    assert argv() == [
        "docker",
        "buildx",
        "build",
        "--file",
        "docker/Dockerfile.agent",
        "--tag",
        TAGS[0],
        "--tag",
        TAGS[1],
        ".",
    ]


def test_context_is_last_and_command_first() -> None:
    args = argv(load=True, context="/src", build_args={"A": "1"})
    assert args[:3] == ["docker", "buildx", "build"]
    assert args[-1] == "/src"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"builder": "remote"}, ["--builder", "remote"]),
        ({"platforms": ("linux/amd64", "linux/arm64")}, ["--platform", "linux/amd64,linux/arm64"]),
        ({"ca_cert": Path("/etc/ca.pem")}, ["--secret", "id=ca-certificates,src=/etc/ca.pem"]),
        ({"cache_from": ("type=registry,ref=r/c",)}, ["--cache-from", "type=registry,ref=r/c"]),
        ({"cache_to": ("type=inline",)}, ["--cache-to", "type=inline"]),
        ({"no_cache": True}, ["--no-cache"]),
        ({"load": True}, ["--load"]),
        ({"push": True}, ["--push"]),
        ({"output": "type=oci,dest=a.tar"}, ["--output", "type=oci,dest=a.tar"]),
        ({"metadata_file": Path("/tmp/m.json")}, ["--metadata-file", "/tmp/m.json"]),
        ({"dockerfile": "other/Dockerfile"}, ["--file", "other/Dockerfile"]),
        ({"pull": True}, ["--pull"]),
        ({"provenance": "mode=max"}, ["--provenance", "mode=max"]),
    ],
)
def test_each_flag(changes: dict[str, object], expected: list[str]) -> None:
    args = argv(**changes)
    start = args.index(expected[0])
    assert args[start : start + len(expected)] == expected


def test_flags_absent_by_default() -> None:
    args = argv()
    for flag in (
        "--builder",
        "--platform",
        "--secret",
        "--cache-from",
        "--cache-to",
        "--no-cache",
        "--load",
        "--push",
        "--output",
        "--metadata-file",
        "--pull",
        "--provenance",
    ):
        assert flag not in args


def test_repeated_cache_sources_keep_order() -> None:
    args = argv(cache_from=("type=registry,ref=a", "type=local,src=b"))
    assert pairs(args, "--cache-from") == ["type=registry,ref=a", "type=local,src=b"]


def test_build_args_in_order() -> None:
    args = argv(build_args={"BASE_IMAGE": "node:18-alpine", "NODE_VERSION": "18"})
    assert pairs(args, "--build-arg") == ["BASE_IMAGE=node:18-alpine", "NODE_VERSION=18"]


@pytest.mark.parametrize(
    "changes",
    [
        {"load": True, "push": True},
        {"push": True, "output": "type=oci,dest=x"},
        {"load": True, "output": "type=docker"},
    ],
)
def test_one_destination_only(changes: dict[str, object]) -> None:
    with pytest.raises(AgentImageError, match="one destination"):
        argv(**changes)


def test_tags_required() -> None:
    with pytest.raises(AgentImageError, match="no image tag"):
        buildx_argv(BuildSpec(tags=()))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            "127.0.0.1:5000/agentgate/agent:cache",
            "type=registry,ref=127.0.0.1:5000/agentgate/agent:cache",
        ),
        ("type=local,src=/tmp/c", "type=local,src=/tmp/c"),
        ("type=registry,ref=r:c,mode=max", "type=registry,ref=r:c,mode=max"),
    ],
)
def test_cache_ref(value: str, expected: str) -> None:
    assert cache_ref(value) == expected


@pytest.mark.parametrize(
    ("variant", "node", "base"),
    [
        ("alpine", "18", "node:18-alpine"),
        ("slim", "18", "node:18-bookworm-slim"),
        ("slim", "22.11.0", "node:22.11.0-bookworm-slim"),
    ],
)
def test_build_args_from_options(variant: str, node: str, base: str) -> None:
    args = build_args(BuildOptions(variant, node, "9.8.7"), META)
    assert args["BASE_IMAGE"] == base
    assert args["NODE_VERSION"] == node.split(".")[0]  # the line: it picks the Dockerfile stage
    assert args["CLAUDE_CODE_VERSION"] == "9.8.7"
    assert args["IMAGE_VERSION"] == "0.1.1"
    assert args["IMAGE_REVISION"] == "a" * 40


def test_the_base_is_pinned_to_its_resolved_digest_and_labelled() -> None:
    digest = "sha256:" + "c" * 64
    args = build_args(BuildOptions("slim", "18", "9.8.7", base_digest=digest), META)
    assert args["BASE_IMAGE"] == f"node:18-bookworm-slim@{digest}"
    assert args["IMAGE_BASE_NAME"] == "docker.io/library/node:18-bookworm-slim"
    assert args["IMAGE_BASE_DIGEST"] == digest
    unresolved = build_args(BuildOptions("alpine", "22", "9.8.7"), META)  # a --dry-run
    assert unresolved["BASE_IMAGE"] == "node:22-alpine"
    assert unresolved["IMAGE_BASE_DIGEST"] == ""


def test_make_spec_carries_every_option() -> None:
    options = BuildOptions(
        "slim",
        "18",
        "9.8.7",
        ca_cert=Path("/ca.pem"),
        builder="b",
        cache_from=("type=inline",),
        cache_to=("type=inline",),
        no_cache=True,
    )
    args = buildx_argv(make_spec(options, META, TAGS, load=True, pull=True, provenance="mode=max"))
    for expected in (
        "--builder",
        "--secret",
        "--cache-from",
        "--cache-to",
        "--no-cache",
        "--load",
        "--pull",
    ):
        assert expected in args
    assert args[args.index("--provenance") + 1] == "mode=max"


@pytest.mark.parametrize(
    ("variant", "log", "hint"),
    [
        (
            "alpine",
            "ERROR: failed to resolve source metadata for docker.io/library/node:18-alpine",
            "--variant slim",
        ),
        ("slim", "failed to resolve source metadata for node:18-bookworm-slim", "registry mirror"),
        ("slim", "npm ERR! code SELF_SIGNED_CERT_IN_CHAIN", "--ca-cert"),
        ("slim", "RUN exited 1", "build log"),
    ],
)
def test_failure_hint(variant: str, log: str, hint: str) -> None:
    assert hint in failure_hint(variant, log)


def test_builds_of_one_tag_take_turns(capsys: pytest.CaptureFixture[str]) -> None:
    """A build waits while another holds any of its tags, and goes on once it is done."""
    entered = threading.Event()
    with tags_taken(["r/a:sha-1", "r/a:dev"]):
        waiting = threading.Thread(
            target=lambda: _enter(tags_taken(["r/a:dev", "r/a:try"]), entered), daemon=True
        )
        waiting.start()
        assert not entered.wait(0.5), "a second build of r/a:dev did not wait"
        with tags_taken(["r/a:other"]):  # another tag does not wait
            pass
    assert entered.wait(10), "the waiting build never got its turn"
    waiting.join(10)
    assert "waiting for another build of r/a:dev on this host" in capsys.readouterr().err


def _enter(lock: contextlib.AbstractContextManager[None], entered: threading.Event) -> None:
    with lock:
        entered.set()
