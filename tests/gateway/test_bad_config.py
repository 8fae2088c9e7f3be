"""The gateway refuses a bad configuration at start: documented exit code, one line on stderr
that names the problem and the fix, and no daemon started (nothing listens, nothing logs).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from gatewaykit import REAL_KEY, Gateways

KEY = {"ANTHROPIC_API_KEY": REAL_KEY}

# id, exit code, a piece of the one-line message that names the fix, environment
CASES = [
    ("no-credential", 64, "set exactly one of", {}),
    ("key-and-token", 64, "set exactly one of them",
     {"ANTHROPIC_API_KEY": "sk-a", "CLAUDE_CODE_OAUTH_TOKEN": "sk-b"}),
    ("key-and-key-file", 64, "set exactly one of them",
     {"ANTHROPIC_API_KEY": "sk-a", "ANTHROPIC_API_KEY_FILE": "/etc/hostname"}),
    ("missing-key-file", 65, "mount the secret there",
     {"ANTHROPIC_API_KEY_FILE": "/run/secrets/missing"}),
    ("key-with-config-syntax", 65, "put the bare key or token there",
     {"ANTHROPIC_API_KEY": 'sk-a"; proxy_pass http://evil'}),
    ("upstream-userinfo", 67, "set it like https://api.anthropic.com",
     {**KEY, "GATEWAY_UPSTREAM": "https://user:secret@api.example.com"}),
    ("ca-bundle-not-pem", 68, "point GATEWAY_CA_BUNDLE at it",
     {**KEY, "GATEWAY_CA_BUNDLE": "/etc/hostname"}),
]  # fmt: skip


def assert_refused(gateways: Gateways, environment: dict[str, str], code: int, fix: str) -> None:
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


@pytest.mark.parametrize(
    ("code", "fix", "environment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_configuration_is_refused_in_one_line(
    code: int, fix: str, environment: dict[str, str], gateways: Gateways
) -> None:
    assert_refused(gateways, environment, code, fix)


@pytest.mark.parametrize(
    "entry", ["https://evil.example", "10.0.0.1", "*.example.com", "example.com:443", "localhost"]
)
def test_a_malformed_allowlist_is_refused_in_one_line(entry: str, gateways: Gateways) -> None:
    environment = {**KEY, "GATEWAY_ALLOWED_DOMAINS": f"github.com, {entry}"}
    assert_refused(gateways, environment, 66, f"'{entry}' is not a domain name")


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
