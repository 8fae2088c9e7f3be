"""docker/gateway/gateway-entrypoint.sh, sourced on the host and exercised one function at a
time: what it accepts, what it refuses (with which exit code), and the configs it writes.
The daemons themselves run in tests/gateway.
"""

from __future__ import annotations

import re
import stat
import subprocess
from pathlib import Path

import pytest
from shell_helpers import REPO, run

GATEWAY_DIR = REPO / "docker" / "gateway"
ENTRYPOINT = GATEWAY_DIR / "gateway-entrypoint.sh"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
KEY = "sk-ant-api03-unit-KEY_value-1234=="
PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def call(snippet: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Source the entrypoint (with TMPDIR under tmp_path) and run SNIPPET in that shell."""
    environment = {"PATH": SYSTEM_PATH, "LANG": "C.UTF-8", "TMPDIR": str(tmp_path), **env}
    return run(["bash", "-c", f'source "{ENTRYPOINT}"; {snippet}'], environment)


def one_error_line(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, result
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("gateway-entrypoint: error: "), lines[0]
    return lines[0]


# --- GATEWAY_ALLOWED_DOMAINS ----------------------------------------------------------------

PRINT_DOMAINS = 'gateway_parse_domains; printf "%s\\n" "${GATEWAY_DOMAINS[@]}"'


@pytest.mark.parametrize(
    ("value", "domains"),
    [
        ("github.com", ["github.com"]),
        (".github.com", [".github.com"]),
        ("GitHub.COM", ["github.com"]),
        ("a.com, b.co.uk\t.c.example\n d.example", ["a.com", "b.co.uk", ".c.example", "d.example"]),
        ("xn--bcher-kva.example,,", ["xn--bcher-kva.example"]),
        ("none", []),
        ("NONE", []),
    ],
)  # fmt: skip
def test_domain_lists_that_are_accepted(value: str, domains: list[str], tmp_path: Path) -> None:
    result = call(PRINT_DOMAINS, tmp_path, GATEWAY_ALLOWED_DOMAINS=value)
    assert result.returncode == 0, result
    assert result.stdout.split() == domains


@pytest.mark.parametrize("value", [None, ""])
def test_unset_or_empty_domains_mean_the_defaults(value: str | None, tmp_path: Path) -> None:
    env = {} if value is None else {"GATEWAY_ALLOWED_DOMAINS": value}
    result = call(PRINT_DOMAINS, tmp_path, **env)
    assert result.returncode == 0, result
    # The model API is not among them: only :8080 reaches it, with the gateway's key.
    assert result.stdout.split() == [
        ".github.com", ".githubusercontent.com", ".gitlab.com", ".bitbucket.org",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "entry",
    [
        "localhost", "sub.localhost", "intranet", "1.2.3.4", "10.0.0.1", "0x7f.1", "2130706433",
        "[::1]", "::1", "fd00::1", "*.example.com", "*", "example.com:443", "http://example.com",
        "example.com/path", "user@example.com", "-a.example", "a-.example", "a..example",
        "example.com.", ".", "..example.com", "a_b.example", "exa\u00e9mple.com",
        "x" * 64 + ".example",
    ],
)  # fmt: skip
def test_domains_that_are_refused(entry: str, tmp_path: Path) -> None:
    result = call(PRINT_DOMAINS, tmp_path, GATEWAY_ALLOWED_DOMAINS=f"github.com {entry}")
    line = one_error_line(result, 66)
    assert "is not a domain name" in line
    assert "example.com, or .example.com" in line, "the fix is not named"


def test_a_list_of_only_separators_is_refused(tmp_path: Path) -> None:
    line = one_error_line(call(PRINT_DOMAINS, tmp_path, GATEWAY_ALLOWED_DOMAINS=" , ,"), 66)
    assert "set it to none to allow nothing" in line


def test_squid_gets_each_name_once_and_none_a_dotted_entry_covers(tmp_path: Path) -> None:
    value = "github.com .github.com api.github.com xgithub.com .github.com .api.github.com a.b"
    result = call(
        "gateway_parse_domains; gateway_squid_domains", tmp_path, GATEWAY_ALLOWED_DOMAINS=value
    )
    assert result.returncode == 0, result
    assert result.stdout.split() == [".github.com", "a.b", "xgithub.com"]


# --- GATEWAY_UPSTREAM -------------------------------------------------------------------------

PRINT_UPSTREAM = (
    "gateway_parse_upstream; "
    'echo "$GATEWAY_UPSTREAM_BASE $GATEWAY_UPSTREAM_AUTHORITY $GATEWAY_UPSTREAM_HOST"'
)


ANTHROPIC = "https://api.anthropic.com api.anthropic.com api.anthropic.com"


@pytest.mark.parametrize(
    ("url", "parsed"),
    [
        (None, ANTHROPIC),
        ("https://api.anthropic.com:443/", ANTHROPIC),
        ("http://model-api:8080", "http://model-api:8080 model-api:8080 model-api"),
        ("http://Model-API:80", "http://model-api model-api model-api"),
        ("https://llm.example:8443/v/", "https://llm.example:8443/v llm.example:8443 llm.example"),
        ("https://10.1.2.3", "https://10.1.2.3 10.1.2.3 10.1.2.3"),
        ("https://[fd00::1]:8443", "https://[fd00::1]:8443 [fd00::1]:8443 [fd00::1]"),
    ],
)  # fmt: skip
def test_upstreams_that_are_accepted(url: str | None, parsed: str, tmp_path: Path) -> None:
    env = {} if url is None else {"GATEWAY_UPSTREAM": url}
    result = call(PRINT_UPSTREAM, tmp_path, **env)
    assert result.returncode == 0, result
    assert result.stdout.strip() == parsed
    assert ("plain http" in result.stderr) == parsed.startswith("http:"), result.stderr


@pytest.mark.parametrize(
    "url",
    [
        "api.anthropic.com", "ftp://api.example.com", "https://user:pw@api.example.com",
        "https://api.example.com/?beta=true", "https://api.example.com/#x", "https://:443",
        "https://api.example.com:0", "https://api.example.com:70000", "https://-x.example",
        "https://api.example.com/a b", "https://api.example.com/$host", 'https://x.example/"',
        "https://x.example;proxy_pass", "HTTPS://api.example.com", "https://x.example/{a}",
    ],
)  # fmt: skip
def test_upstreams_that_are_refused(url: str, tmp_path: Path) -> None:
    line = one_error_line(call(PRINT_UPSTREAM, tmp_path, GATEWAY_UPSTREAM=url), 67)
    assert "set it like https://api.anthropic.com" in line
    assert "pw@" not in line, "a password in the URL was echoed"


# --- credentials ----------------------------------------------------------------------------

PRINT_CREDENTIAL = (
    "gateway_read_credential; "
    'echo "x-api-key=$GATEWAY_X_API_KEY|authorization=$GATEWAY_AUTHORIZATION|'
    'from=$GATEWAY_CREDENTIAL_SOURCE"; '
    "env | grep -c -e ^ANTHROPIC_API_KEY -e ^CLAUDE_CODE_OAUTH_TOKEN || :"
)


@pytest.mark.parametrize(
    ("variable", "expected"),
    [
        ("ANTHROPIC_API_KEY", f"x-api-key={KEY}|authorization="),
        ("ANTHROPIC_API_KEY_FILE", f"x-api-key={KEY}|authorization="),
        ("CLAUDE_CODE_OAUTH_TOKEN", f"x-api-key=|authorization=Bearer {KEY}"),
        ("CLAUDE_CODE_OAUTH_TOKEN_FILE", f"x-api-key=|authorization=Bearer {KEY}"),
    ],
)
def test_the_one_credential_becomes_its_header_and_leaves_the_environment(
    variable: str, expected: str, tmp_path: Path
) -> None:
    value = KEY
    if variable.endswith("_FILE"):
        secret = tmp_path / "secret"
        secret.write_text(KEY + "\r\n")
        value = str(secret)
    result = call(PRINT_CREDENTIAL, tmp_path, **{variable: value})
    assert result.returncode == 0, result
    shown, children_see = result.stdout.splitlines()
    assert shown == f"{expected}|from={variable}"
    assert children_see == "0", "a credential variable is still exported to child processes"
    assert KEY not in result.stderr


def test_empty_credential_variables_count_as_unset(tmp_path: Path) -> None:
    result = call(PRINT_CREDENTIAL, tmp_path, ANTHROPIC_API_KEY="", CLAUDE_CODE_OAUTH_TOKEN=KEY)
    assert result.returncode == 0, result
    assert result.stdout.startswith(f"x-api-key=|authorization=Bearer {KEY}|")


@pytest.mark.parametrize(
    ("env", "code", "fix"),
    [
        ({}, 64, "set exactly one of ANTHROPIC_API_KEY_FILE"),
        ({"ANTHROPIC_API_KEY": KEY, "ANTHROPIC_API_KEY_FILE": "/x"}, 64, "set exactly one of them"),
        ({"CLAUDE_CODE_OAUTH_TOKEN": KEY, "CLAUDE_CODE_OAUTH_TOKEN_FILE": "/x"}, 64, "exactly one"),
        ({"ANTHROPIC_API_KEY_FILE": "/nonexistent/key"}, 65, "mount the secret there"),
        ({"ANTHROPIC_API_KEY_FILE": "/"}, 65, "mount the secret there"),
        ({"ANTHROPIC_API_KEY": "two words"}, 65, "put the bare key or token there"),
        ({"ANTHROPIC_API_KEY": 'k";evil'}, 65, "put the bare key or token there"),
        ({"CLAUDE_CODE_OAUTH_TOKEN": "line\nbreak"}, 65, "put the bare key or token there"),
    ],
)  # fmt: skip
def test_credentials_that_are_refused(
    env: dict[str, str], code: int, fix: str, tmp_path: Path
) -> None:
    line = one_error_line(call(PRINT_CREDENTIAL, tmp_path, **env), code)
    assert fix in line
    for value in env.values():
        if value != "/x" and not value.startswith("/"):
            assert value not in line, "the credential was echoed"


# --- nameservers, CA bundle, runtime dir ----------------------------------------------------


def test_nameservers_come_from_resolv_conf(tmp_path: Path) -> None:
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(
        "# generated\nsearch example\nnameserver 127.0.0.11\nnameserver fd00::53\n"
        "nameserver fe80::1%eth0\noptions ndots:0\n"
    )
    result = call(f'gateway_nameservers "{resolv}"; echo "$GATEWAY_RESOLVERS"', tmp_path)
    assert result.returncode == 0, result
    assert result.stdout.strip() == "127.0.0.11 [fd00::53]"


def test_no_nameserver_is_refused(tmp_path: Path) -> None:
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("search example\n")
    line = one_error_line(call(f'gateway_nameservers "{resolv}"', tmp_path), 67)
    assert "run the gateway on a network with DNS" in line


def test_ca_bundle_must_hold_a_certificate(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.pem"
    bundle.write_text("not a certificate\n")
    line = one_error_line(
        call("gateway_check_ca_bundle", tmp_path, GATEWAY_CA_BUNDLE=str(bundle)), 68
    )
    assert "point GATEWAY_CA_BUNDLE at it" in line
    bundle.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    assert call("gateway_check_ca_bundle", tmp_path, GATEWAY_CA_BUNDLE=str(bundle)).returncode == 0


def test_an_unwritable_tmpdir_is_refused(tmp_path: Path) -> None:
    line = one_error_line(
        call("gateway_prepare_runtime_dir", tmp_path, TMPDIR=str(tmp_path / "missing")), 69
    )
    assert "--tmpfs /tmp" in line


# --- the configs it writes ------------------------------------------------------------------


@pytest.fixture
def written(tmp_path: Path) -> Path:
    """The runtime dir after a full configuration run (the daemons are not started)."""
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.11\n")
    bundle = tmp_path / "bundle.pem"
    bundle.write_text(PEM)
    result = call(
        f"gateway_read_credential; gateway_parse_domains; gateway_parse_upstream; "
        f'gateway_nameservers "{resolv}"; gateway_check_ca_bundle; '
        f"gateway_prepare_runtime_dir; gateway_write_configs",
        tmp_path,
        ANTHROPIC_API_KEY=KEY,
        GATEWAY_UPSTREAM="https://api.anthropic.com",
        GATEWAY_ALLOWED_DOMAINS="github.com .github.com example.org",
        GATEWAY_CA_BUNDLE=str(bundle),
        GATEWAY_TEMPLATE_DIR=str(GATEWAY_DIR),
    )
    return tmp_path / "agentgate-gateway" if result.returncode == 0 else pytest.fail(str(result))


def test_configs_have_every_placeholder_filled_and_stay_private(written: Path) -> None:
    for name in ("nginx.conf", "squid.conf", "allowed-domains"):
        path = written / name
        assert not re.search(r"@[A-Z_]+@", path.read_text()), f"{name} has a placeholder left"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, f"{name} is readable by others"
    assert stat.S_IMODE(written.stat().st_mode) == 0o700


def test_nginx_config_carries_the_credential_once_and_the_upstream(written: Path) -> None:
    nginx = (written / "nginx.conf").read_text()
    assert nginx.count(KEY) == 1
    assert f'proxy_set_header x-api-key "{KEY}";' in nginx
    assert 'proxy_set_header authorization "";' in nginx
    assert 'proxy_set_header Host "api.anthropic.com";' in nginx
    assert "proxy_pass https://api.anthropic.com/v1/messages$is_args$args;" in nginx
    assert "resolver 127.0.0.11 valid=30s ipv6=off;" in nginx
    assert f"pid {written}/nginx.pid;" in nginx


def test_squid_reads_the_allowlist_from_the_runtime_dir(written: Path) -> None:
    squid = (written / "squid.conf").read_text()
    assert f'dstdomain -n "{written}/allowed-domains"' in squid
    assert (written / "allowed-domains").read_text().split() == [".github.com", "example.org"]
    assert KEY not in squid


# --- GATEWAY_API_SOCKET ---------------------------------------------------------------------

PRINT_LISTEN = 'gateway_api_socket_listen; printf "%s\\n" "$GATEWAY_API_SOCKET_LISTEN"'


def test_no_api_socket_by_default(tmp_path: Path) -> None:
    result = call(PRINT_LISTEN, tmp_path)
    assert (result.returncode, result.stdout) == (0, "\n")


def test_an_api_socket_is_listened_on_and_a_stale_one_removed(tmp_path: Path) -> None:
    stale = tmp_path / "api.sock"
    stale.write_text("left by an earlier run\n")
    result = call(PRINT_LISTEN, tmp_path, GATEWAY_API_SOCKET=str(stale))
    assert result.returncode == 0, result
    assert result.stdout == f"listen unix:{stale};\n"
    assert not stale.exists()


@pytest.mark.parametrize(
    "value", ["relative/api.sock", "/run/a b/api.sock", "/run/api.sock;evil", "/run/{x}.sock"]
)
def test_unsafe_api_socket_paths_are_refused(value: str, tmp_path: Path) -> None:
    line = one_error_line(call(PRINT_LISTEN, tmp_path, GATEWAY_API_SOCKET=value), 69)
    assert f"GATEWAY_API_SOCKET={value}" in line


def test_an_api_socket_in_an_unwritable_directory_is_refused(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir" / "api.sock"
    line = one_error_line(call(PRINT_LISTEN, tmp_path, GATEWAY_API_SOCKET=str(missing)), 69)
    assert "mount a volume at" in line
