"""The gateway refuses a bad configuration at start: documented exit code, one line on stderr
that names the problem and the fix, and no daemon started (nothing listens, nothing logs).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from gatewaykit import REAL_KEY, Gateways

KEY = {"ANTHROPIC_API_KEY": REAL_KEY}

CASES = [
    pytest.param({}, 64, "set exactly one of", id="no-credential"),
    pytest.param(
        {"ANTHROPIC_API_KEY": "sk-a", "CLAUDE_CODE_OAUTH_TOKEN": "sk-b"},
        64,
        "set exactly one of them",
        id="key-and-token",
    ),
    pytest.param(
        {"ANTHROPIC_API_KEY": "sk-a", "ANTHROPIC_API_KEY_FILE": "/etc/hostname"},
        64,
        "set exactly one of them",
        id="key-and-key-file",
    ),
    pytest.param(
        {"ANTHROPIC_API_KEY_FILE": "/run/secrets/missing"},
        65,
        "mount the secret there",
        id="missing-key-file",
    ),
    pytest.param(
        {"ANTHROPIC_API_KEY": 'sk-a"; proxy_pass http://evil'},
        65,
        "put the bare key or token there",
        id="key-with-config-syntax",
    ),
    pytest.param(
        {**KEY, "GATEWAY_ALLOWED_DOMAINS": "github.com,https://evil.example"},
        66,
        "'https://evil.example' is not a domain name",
        id="domains-url",
    ),
    pytest.param(
        {**KEY, "GATEWAY_ALLOWED_DOMAINS": "github.com 10.0.0.1"},
        66,
        "'10.0.0.1' is not a domain name",
        id="domains-ip",
    ),
    pytest.param(
        {**KEY, "GATEWAY_ALLOWED_DOMAINS": "*.example.com"},
        66,
        "'*.example.com' is not a domain name",
        id="domains-wildcard",
    ),
    pytest.param(
        {**KEY, "GATEWAY_ALLOWED_DOMAINS": "example.com:443"},
        66,
        "'example.com:443' is not a domain name",
        id="domains-port",
    ),
    pytest.param(
        {**KEY, "GATEWAY_UPSTREAM": "https://user:secret@api.example.com"},
        67,
        "set it like https://api.anthropic.com",
        id="upstream-userinfo",
    ),
    pytest.param(
        {**KEY, "GATEWAY_CA_BUNDLE": "/etc/hostname"},
        68,
        "point GATEWAY_CA_BUNDLE at it",
        id="ca-bundle-not-pem",
    ),
]


@pytest.mark.parametrize(("environment", "code", "fix"), CASES)
def test_bad_configuration_is_refused_in_one_line(
    environment: dict[str, str], code: int, fix: str, gateways: Gateways
) -> None:
    exited = gateways.run_to_exit(environment)
    assert exited.code == code, exited.logs
    lines = exited.error_lines()
    assert len(lines) == 1, f"expected one line, got:\n{exited.logs}"
    assert lines[0].startswith("gateway-entrypoint: error: "), lines[0]
    assert fix in lines[0], lines[0]
    # Secrets are never echoed: neither a credential nor a password in the upstream URL.
    secrets = [environment.get(name) for name in ("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN")]
    for secret in [*filter(None, secrets), "user:secret"]:
        assert secret not in exited.logs


def test_no_writable_tmp_is_refused(gateways: Gateways) -> None:
    exited = gateways.run_to_exit(KEY, tmpfs={})
    assert exited.code == 69, exited.logs
    (line,) = exited.error_lines()
    assert "--tmpfs /tmp" in line, line


def test_secret_file_readable_only_by_another_uid_is_refused(
    gateways: Gateways, tmp_path: Path
) -> None:
    secret = tmp_path / "key"
    secret.write_text(REAL_KEY)
    secret.chmod(0o400)  # root's, as a careless `docker compose` secret would be
    exited = gateways.run_to_exit(
        {"ANTHROPIC_API_KEY_FILE": "/run/secrets/key"},
        volumes={str(secret): {"bind": "/run/secrets/key", "mode": "ro"}},
    )
    assert exited.code == 65, exited.logs
    (line,) = exited.error_lines()
    assert "readable by uid 1100" in line, line
