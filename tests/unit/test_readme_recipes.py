"""The README's run recipes say what the tests run: the hardened `docker run` lines and the
docker SDK contract carry exactly the settings of tests/support/sandbox.py, which the e2e,
security and gateway suites use. A change to either side without the other fails here."""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

import pytest
from sandbox import GATEWAY_SETTINGS, SANDBOX_SETTINGS, docker_run_flags, gateway_wiring

README = Path(__file__).resolve().parents[2] / "README.md"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(), re.S)


def _commands(block: str) -> list[list[str]]:
    """Each shell command of BLOCK as words (continuation lines joined, comments dropped)."""
    joined = block.replace("\\\n", " ")
    return [shlex.split(line, comments=True) for line in joined.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def recipe() -> list[list[str]]:
    [block] = [b for b in _blocks("sh") if "agentgate-sandbox" in b and "docker run" in b]
    return [words for words in _commands(block) if words]


# Flags of `docker run` / `docker network create` that take no value.
SWITCHES = {"-d", "--detach", "--read-only", "--rm", "-i", "-t", "-it", "--internal"}


def _flag_pairs(words: list[str]) -> list[tuple[str, str]]:
    """WORDS as (flag, value) pairs; a switch or a positional word pairs with ""."""
    pairs, i = [], 0
    while i < len(words):
        if words[i].startswith("-") and words[i] not in SWITCHES and i + 1 < len(words):
            pairs.append((words[i], words[i + 1]))
            i += 2
        else:
            pairs.append((words[i], ""))
            i += 1
    return pairs


def _run_of(recipe: list[list[str]], name: str) -> list[str]:
    [run] = [
        w for w in recipe if w[:2] == ["docker", "run"] and ("--name", name) in _flag_pairs(w[2:])
    ]
    return run[2:]


def test_sandbox_recipe_has_every_hardening_flag(recipe: list[list[str]]) -> None:
    run = _run_of(recipe, "agent")
    expected = _flag_pairs(docker_run_flags(SANDBOX_SETTINGS))
    assert set(expected) <= set(_flag_pairs(run)), run
    assert ("--network", "agentgate-sandbox") in _flag_pairs(run)


def test_sandbox_recipe_is_wired_to_the_gateway(recipe: list[list[str]]) -> None:
    run = _run_of(recipe, "agent")
    env = dict(v.split("=", 1) for f, v in _flag_pairs(run) if f == "-e" and "=" in v)
    assert env == gateway_wiring("gateway")


def test_gateway_recipe_is_hardened_and_holds_the_key(recipe: list[list[str]]) -> None:
    run = _run_of(recipe, "agentgate-gateway")
    assert set(_flag_pairs(docker_run_flags(GATEWAY_SETTINGS))) <= set(_flag_pairs(run)), run
    assert ("-e", "ANTHROPIC_API_KEY") in _flag_pairs(run)
    connect = [w for w in recipe if w[:3] == ["docker", "network", "connect"]]
    assert connect == [
        [
            "docker",
            "network",
            "connect",
            "--alias",
            "gateway",
            "agentgate-sandbox",
            "agentgate-gateway",
        ]
    ]


def test_sandbox_network_has_no_way_out(recipe: list[list[str]]) -> None:
    [create] = [
        w
        for w in recipe
        if w[:3] == ["docker", "network", "create"] and w[-1] == "agentgate-sandbox"
    ]
    assert "--internal" in create
    assert "com.docker.network.bridge.inhibit_ipv4=true" in create


def _literal_keywords(call: ast.Call) -> dict[str, object]:
    """CALL's keyword arguments that are literals (variables like `workspace` are left out)."""
    found = {}
    for keyword in call.keywords:
        try:
            found[str(keyword.arg)] = ast.literal_eval(keyword.value)
        except ValueError:
            continue
    return found


def _sdk_calls() -> dict[str, dict[str, object]]:
    """The literal keyword arguments of each containers.create call in the SDK block."""
    [block] = [b for b in _blocks("python") if "containers.create" in b]
    return {
        ast.literal_eval(node.args[0]).split(":")[0]: _literal_keywords(node)
        for node in ast.walk(ast.parse(block))
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "create"
    }


def test_sdk_contract_uses_the_tested_settings() -> None:
    calls = _sdk_calls()
    sandbox = calls["agentgate/agent"]
    for key, value in SANDBOX_SETTINGS.items():
        assert sandbox[key] == value, key
    assert sandbox["environment"] == gateway_wiring("gateway")
    gateway = calls["agentgate/gateway"]
    for key, value in GATEWAY_SETTINGS.items():
        assert gateway[key] == value, key
