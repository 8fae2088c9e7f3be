"""A real Claude Code turn from a hardened sandbox, through the gateway, with a placeholder key.

The sandbox sits on the internal network with ANTHROPIC_BASE_URL pointing at the gateway and
a placeholder ANTHROPIC_API_KEY; the double accepts only the real key, which the gateway holds
in a secret file. The turn completing proves the gateway supplied the key; the search of the
sandbox afterwards proves the key never entered it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from api_double import ALIAS, ApiDouble, Conversation, reply, text
from docker.models.networks import Network
from gatewaykit import PLACEHOLDER_KEY, REAL_KEY, Gateway
from sandbox import Sandboxes

import docker

CANARY = "agentgate-canary-" + os.urandom(8).hex()


@pytest.fixture
def sandboxes(
    client: docker.DockerClient,
    image_ref: str,
    sandbox_network: Network,
    gateway: Gateway,
    labels: dict[str, str],
) -> Iterator[Sandboxes]:
    # As an operator wires a sandbox: the API through the gateway's port 8080, everything else
    # through its proxy, and the gateway itself exempt from the proxy.
    env = {
        "ANTHROPIC_BASE_URL": gateway.api_url,
        "ANTHROPIC_API_KEY": PLACEHOLDER_KEY,
        "CLAUDE_CODE_MAX_RETRIES": "2",
        "HTTP_PROXY": gateway.proxy_url,
        "HTTPS_PROXY": gateway.proxy_url,
        "NO_PROXY": gateway.alias,
    }
    box = Sandboxes(client, image_ref, sandbox_network, env, labels, "agt-gw-sandbox")
    try:
        yield box
    finally:
        box.remove_all()


@pytest.fixture
def workspace(make_workspace: Callable[..., Path]) -> Path:
    """The sandbox's /workspace, with one file holding a canary for the key search."""
    return make_workspace(files={"notes.txt": f"{CANARY}\n"})


def test_claude_turn_completes_through_the_gateway_without_the_key(
    sandboxes: Sandboxes, workspace: Path, double: ApiDouble, gateway: Gateway
) -> None:
    double.play(
        Conversation([reply(text("Done through the gateway."))], marker="gateway-turn"),
        api_key=REAL_KEY,
    )
    sandbox = sandboxes.start(str(workspace))
    started = time.monotonic()
    turn = sandbox.turn("Say done. (gateway-turn)")
    seconds = time.monotonic() - started
    assert turn.ok, f"{turn}\n--- gateway logs ---\n{gateway.logs()}"
    assert turn.result["result"] == "Done through the gateway."
    print(f"proxied turn: {seconds:.2f}s")  # read by `nox -s gateway -- -s` for the figures

    log = double.log()
    assert not log.problems(), log.problems()
    played = log.played("gateway-turn")
    assert played, "the turn never reached the double"
    assert all(r["headers"]["x-api-key"] == REAL_KEY for r in played)
    assert PLACEHOLDER_KEY not in json.dumps(log.requests), "the placeholder went upstream"
    assert not [r for r in log.requests if r.get("refused")], "a request lacked the real key"

    # The sandbox cannot reach the double without the gateway: the name does not resolve.
    code, _, _, _ = sandbox.exec(
        ["curl", "-sS", "--connect-timeout", "3", f"http://{ALIAS}:8080/"], timeout=30
    )
    assert code == 6, f"curl to {ALIAS} directly exited {code}, expected 6 (no such host)"

    # docker inspect: the placeholder is there (the search works), the key is not.
    sandbox.container.reload()
    inspected = json.dumps(sandbox.container.attrs)
    assert PLACEHOLDER_KEY in inspected
    assert REAL_KEY not in inspected

    # Every process's environment, read as the agent's uid: placeholder yes, key no.
    code, environ, err, _ = sandbox.exec(
        ["sh", "-c", "cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n'"], timeout=30
    )
    assert f"ANTHROPIC_API_KEY={PLACEHOLDER_KEY}" in environ, err
    assert REAL_KEY not in environ

    # Every file the agent can read: the canary in the workspace is found, the key nowhere.
    code, found, err, _ = sandbox.exec(
        [
            "grep", "-rlsF", "-e", REAL_KEY, "-e", CANARY, "/",
            "--exclude-dir=proc", "--exclude-dir=sys", "--exclude-dir=dev",
        ],
        timeout=120,
    )  # fmt: skip
    assert found.split() == ["/workspace/notes.txt"], f"grep exited {code}: {found}\n{err}"
