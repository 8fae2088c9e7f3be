"""Registry client pieces that need no server: references, schemes, stored logins."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentimage import registry


@pytest.mark.parametrize(
    ("repository", "expected"),
    [
        ("127.0.0.1:5000/agentgate/agent", ("127.0.0.1:5000", "agentgate/agent")),
        ("localhost/agentgate/agent", ("localhost", "agentgate/agent")),
        ("ghcr.io/org/agent", ("ghcr.io", "org/agent")),
        ("agentgate/agent", ("registry-1.docker.io", "agentgate/agent")),
        ("node", ("registry-1.docker.io", "library/node")),
    ],
)
def test_split_reference(repository: str, expected: tuple[str, str]) -> None:
    assert registry.split_reference(repository) == expected


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("localhost:5000", "http://localhost:5000"),
        ("[::1]:5000", "http://[::1]:5000"),
        ("ghcr.io", "https://ghcr.io"),
        ("127.example.com", "https://127.example.com"),
        ("127.0.0.1", "http://127.0.0.1"),
    ],
)
def test_loopback_is_plain_http(host: str, url: str) -> None:
    assert registry.base_url(host) == url


def test_docker_config_auth(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(
        json.dumps(
            {
                "auths": {"https://ghcr.io": {"auth": "dTpw"}, "r.example": {}},
                "credHelpers": {"ecr.example": "ecr-login"},
            }
        )
    )
    assert registry.docker_config_auth("ghcr.io", tmp_path) == "dTpw"
    assert registry.docker_config_auth("r.example", tmp_path) is None
    assert registry.has_login("ghcr.io", tmp_path)
    assert registry.has_login("ecr.example", tmp_path)
    assert not registry.has_login("quay.io", tmp_path)
    assert not registry.has_login("quay.io", tmp_path / "missing")


def test_unreachable_registry_is_one_clear_error() -> None:
    from agentimage.errors import AgentImageError, ExitCode

    # port 9 on loopback (discard) is closed on any sane host: connection refused, no network
    client = registry.Registry("127.0.0.1:9", timeout=2)
    with pytest.raises(AgentImageError, match="unreachable") as err:
        client.ping()
    assert err.value.code == ExitCode.REGISTRY
