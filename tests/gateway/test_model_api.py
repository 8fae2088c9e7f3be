"""The gateway's model-API port (8080), driven from the sandbox network with real requests.

What reaches the upstream is read from the upstream's own log (the Messages API double, or an
origin that records every request): the gateway swaps the client's placeholder key for the
real credential, passes every other header on, forwards only the two Messages paths, answers
HEAD / itself, streams without buffering, takes 32 MiB bodies, and verifies upstream TLS.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from api_double import ALIAS, ApiDouble, Conversation, reply, text, tool
from gatewaykit import (
    PLACEHOLDER_KEY,
    REAL_KEY,
    UPSTREAM_ALIAS,
    Gateway,
    Gateways,
    Origin,
    Origins,
    Probe,
)

MESSAGES = "/v1/messages?beta=true"
ANTHROPIC_HEADERS = ("anthropic-version: 2023-06-01", "anthropic-beta: agentgate-test-2025")


def messages_body(marker: str, *, stream: bool = False) -> str:
    return json.dumps(
        {
            "model": "claude-test",
            "max_tokens": 64,
            "stream": stream,
            "messages": [{"role": "user", "content": f"hello {marker}"}],
        }
    )


def post(url: str, body: str, *headers: str) -> list[str]:
    """curl arguments for a JSON POST with HEADERS (each "name: value")."""
    args = ["-X", "POST", url, "-H", "content-type: application/json", "--data-binary", body]
    for header in headers:
        args += ["-H", header]
    return args


def test_request_reaches_upstream_with_the_real_key_only(
    gateway: Gateway, sandbox_probe: Probe, double: ApiDouble
) -> None:
    double.play(
        Conversation([reply(text("hi from the double"))], marker="key-swap"), api_key=REAL_KEY
    )
    result = sandbox_probe.curl(
        *post(
            gateway.api_url + MESSAGES,
            messages_body("key-swap"),
            f"x-api-key: {PLACEHOLDER_KEY}",
            f"authorization: Bearer {PLACEHOLDER_KEY}",
            *ANTHROPIC_HEADERS,
        )
    )
    assert result.status == 200, result
    assert result.json()["content"] == [{"type": "text", "text": "hi from the double"}]
    log = double.log()
    assert not log.problems(), log.problems()
    (seen,) = log.played("key-swap")
    headers = seen["headers"]
    assert headers["x-api-key"] == REAL_KEY
    assert "authorization" not in headers, "the client's Authorization header went upstream"
    assert PLACEHOLDER_KEY not in json.dumps(seen)
    assert headers["anthropic-version"] == "2023-06-01"
    assert headers["anthropic-beta"] == "agentgate-test-2025"
    assert headers["host"] == f"{ALIAS}:8080"
    assert seen["path"] == MESSAGES


@pytest.mark.parametrize("variable", ["CLAUDE_CODE_OAUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN_FILE"])
def test_oauth_token_goes_upstream_as_bearer(
    variable: str,
    gateways: Gateways,
    sandbox_probe: Probe,
    double: ApiDouble,
    tmp_path: Path,
) -> None:
    token = "sk-ant-oat01-" + variable.lower().replace("_", "-")
    settings: dict[str, object] = {}
    value = token
    if variable.endswith("_FILE"):
        secret = tmp_path / "token"
        secret.write_text(token + "\r\n")  # a CRLF-saved secret file works too
        secret.chmod(0o444)
        value = "/run/secrets/claude_code_oauth_token"
        settings["volumes"] = {str(secret): {"bind": value, "mode": "ro"}}
    gateway = gateways.start({variable: value, "GATEWAY_UPSTREAM": double.url}, **settings)
    double.play(Conversation([reply(text("oauth ok"))], marker="oauth"), api_key=token)
    result = sandbox_probe.curl(
        *post(
            gateway.api_url + MESSAGES,
            messages_body("oauth"),
            f"x-api-key: {PLACEHOLDER_KEY}",
            *ANTHROPIC_HEADERS,
        )
    )
    assert result.status == 200, result
    (seen,) = double.log().played("oauth")
    assert seen["headers"]["authorization"] == f"Bearer {token}"
    assert "x-api-key" not in seen["headers"], "the client's x-api-key went upstream"


def sse_events(body: str) -> list[tuple[str, dict[str, object]]]:
    events = []
    for block in body.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields["event"], json.loads(fields["data"])))
    return events


def test_streamed_reply_arrives_intact_and_in_order(
    gateway: Gateway, sandbox_probe: Probe, double: ApiDouble
) -> None:
    words = [f"part {n} " for n in range(5)]
    step = reply(*(text(w) for w in words), tool("Bash", command="true"))
    double.play(Conversation([step], marker="stream"), api_key=REAL_KEY)
    result = sandbox_probe.curl(
        "-N",
        *post(gateway.api_url + MESSAGES, messages_body("stream", stream=True)),
    )
    assert result.status == 200, result
    events = sse_events(result.body)
    names = [name for name, _ in events]
    blocks = ["content_block_start", "content_block_delta", "content_block_stop"]
    assert names == ["message_start", *blocks * 6, "message_delta", "message_stop"], names
    deltas = [data["delta"] for name, data in events if name == "content_block_delta"]
    assert [d.get("text") for d in deltas[:5]] == words
    assert json.loads(str(deltas[5]["partial_json"])) == {"command": "true"}
    assert events[-2][1]["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}


# Prints the arrival time of each `data:` line of a POST's streamed reply, relative to the
# first, as a JSON list: run in a probe, it measures what the client really sees.
ARRIVALS = r"""
import json, sys, time, urllib.request
request = urllib.request.Request(sys.argv[1], data=b"{}", method="POST",
                                 headers={"content-type": "application/json"})
times = []
with urllib.request.urlopen(request, timeout=30) as response:
    for line in response:
        if line.startswith(b"data:"):
            times.append(time.monotonic())
print(json.dumps([round(t - times[0], 3) for t in times]))
"""


def test_stream_is_passed_on_as_it_comes(
    echo_gateway: Gateway, sandbox_probe: Probe, outside_probe: Probe
) -> None:
    # Four events 0.5 s apart: a buffering proxy would hand them over together at the end.
    path = "/v1/messages?events=4&gap=0.5"
    direct = json.loads(outside_probe.python(ARRIVALS, f"http://{UPSTREAM_ALIAS}:8080{path}"))
    assert direct[-1] >= 1.4, f"the probe itself does not see events as they come: {direct}"
    proxied = json.loads(sandbox_probe.python(ARRIVALS, echo_gateway.api_url + path))
    assert len(proxied) == 4
    assert proxied[-1] >= 1.4, f"the gateway buffered the stream: arrivals {proxied}"


def test_head_root_is_answered_by_the_gateway(
    echo_gateway: Gateway, sandbox_probe: Probe, upstream_origin: Origin
) -> None:
    before = len(upstream_origin.requests())
    result = sandbox_probe.curl("-I", echo_gateway.api_url + "/")
    assert result.status == 200, result
    assert len(upstream_origin.requests()) == before, "HEAD / went to the upstream"


FORBIDDEN_REQUESTS = [
    ("GET", "/v1/messages"),
    ("PUT", "/v1/messages"),
    ("GET", "/"),
    ("POST", "/"),
    ("GET", "/v1/models"),
    ("POST", "/v1/files"),
    ("POST", "/v1/messages/batches"),
    ("POST", "/v1/complete"),
    ("POST", "/api/oauth/profile"),
    ("POST", "/v1/messages/../files"),
    ("POST", "/v1/messages/%2e%2e/files"),
    ("POST", "/v1/messages%2fbatches"),
]


@pytest.mark.parametrize(("method", "path"), FORBIDDEN_REQUESTS)
def test_other_paths_get_403_in_the_api_error_shape(
    method: str, path: str, echo_gateway: Gateway, sandbox_probe: Probe, upstream_origin: Origin
) -> None:
    before = len(upstream_origin.requests())
    result = sandbox_probe.curl(
        "--path-as-is", "-X", method, echo_gateway.api_url + path, "--data-binary", "{}"
    )
    assert result.status == 403, result
    assert result.json()["type"] == "error"
    assert result.json()["error"]["type"] == "permission_error"
    assert len(upstream_origin.requests()) == before, f"{method} {path} reached the upstream"


@pytest.mark.parametrize(
    "path", ["/v1/messages", "/v1/messages?beta=true", "/v1/messages/count_tokens"]
)
def test_the_two_messages_paths_are_forwarded(
    path: str, echo_gateway: Gateway, sandbox_probe: Probe
) -> None:
    result = sandbox_probe.curl("-X", "POST", echo_gateway.api_url + path, "--data-binary", "{}")
    assert result.status == 200, result
    seen = result.json()
    assert (seen["origin"], seen["method"], seen["path"]) == ("upstream", "POST", path)
    assert seen["headers"]["x-api-key"] == REAL_KEY
    assert seen["headers"]["host"] == f"{UPSTREAM_ALIAS}:8080"


def test_a_32_mib_body_is_forwarded_whole(echo_gateway: Gateway, sandbox_probe: Probe) -> None:
    size = 32 * 1024 * 1024
    code, out, err, _ = sandbox_probe.exec(
        [
            "sh", "-c",
            f"head -c {size} /dev/zero | curl -sS -X POST --data-binary @- "
            f"-H 'content-type: application/octet-stream' {echo_gateway.api_url}/v1/messages",
        ],
        timeout=60,
    )  # fmt: skip
    assert code == 0, f"{out}\n{err}"
    assert json.loads(out)["body_bytes"] == size


def test_upstream_name_is_resolved_per_request(
    gateways: Gateways, origins: Origins, sandbox_probe: Probe
) -> None:
    # The gateway starts (and is healthy) while its upstream's name does not resolve yet.
    late = "late.agentgate.test"
    gateway = gateways.start(
        {"ANTHROPIC_API_KEY": REAL_KEY, "GATEWAY_UPSTREAM": f"http://{late}:8080"}
    )
    origins.start("late", (late,))
    result = sandbox_probe.curl("-X", "POST", gateway.api_url + "/v1/messages", "-d", "{}")
    assert result.status == 200, f"{result}\n--- gateway logs ---\n{gateway.logs()}"
    assert result.json()["origin"] == "late"


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A test CA and a certificate it signed for tls.agentgate.test, made with openssl."""
    directory = tmp_path_factory.mktemp("tls")
    files = {name: directory / f"{name}.pem" for name in ("ca", "ca-key", "cert", "key", "csr")}

    def openssl(*args: str) -> None:
        made = subprocess.run(
            ["openssl", *args], capture_output=True, text=True, timeout=60, check=False
        )
        assert made.returncode == 0, made.stderr

    openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", "/CN=AgentGate test CA", "-keyout", str(files["ca-key"]), "-out", str(files["ca"]),
    )  # fmt: skip
    openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=tls.agentgate.test",
        "-keyout", str(files["key"]), "-out", str(files["csr"]),
    )  # fmt: skip
    extensions = directory / "san.cnf"
    extensions.write_text("subjectAltName=DNS:tls.agentgate.test\n")
    openssl(
        "x509", "-req", "-in", str(files["csr"]), "-CA", str(files["ca"]),
        "-CAkey", str(files["ca-key"]), "-CAcreateserial", "-days", "2",
        "-extfile", str(extensions), "-out", str(files["cert"]),
    )  # fmt: skip
    files["ca"].chmod(0o644)
    return files


@pytest.fixture(scope="module")
def tls_origin(session_origins: Origins, tls_files: dict[str, Path]) -> Origin:
    """An HTTPS origin known as tls.agentgate.test (in its certificate) and tls-other...
    (not in it)."""
    pem = {
        "ORIGIN_TLS_CERT": tls_files["cert"].read_text(),
        "ORIGIN_TLS_KEY": tls_files["key"].read_text(),
    }
    return session_origins.start("tls", ("tls.agentgate.test", "tls-other.agentgate.test"), tls=pem)


@pytest.mark.parametrize(
    ("host", "trust_test_ca", "verified"),
    [
        ("tls.agentgate.test", True, True),
        ("tls.agentgate.test", False, False),  # the system bundle does not know the test CA
        ("tls-other.agentgate.test", True, False),  # the certificate names another host
    ],
)
def test_upstream_tls_is_verified_against_the_ca_bundle(
    host: str,
    trust_test_ca: bool,
    verified: bool,
    gateways: Gateways,
    tls_origin: Origin,
    tls_files: dict[str, Path],
    sandbox_probe: Probe,
) -> None:
    environment = {"ANTHROPIC_API_KEY": REAL_KEY, "GATEWAY_UPSTREAM": f"https://{host}:8443"}
    settings: dict[str, object] = {}
    if trust_test_ca:
        environment["GATEWAY_CA_BUNDLE"] = "/etc/agentgate/test-ca.pem"
        settings["volumes"] = {
            str(tls_files["ca"]): {"bind": "/etc/agentgate/test-ca.pem", "mode": "ro"}
        }
    gateway = gateways.start(environment, **settings)
    result = sandbox_probe.curl("-X", "POST", gateway.api_url + "/v1/messages", "-d", "{}")
    if verified:
        assert result.status == 200, f"{result}\n--- gateway logs ---\n{gateway.logs()}"
        seen = result.json()
        assert seen["origin"] == "tls"
        assert seen["sni"] == host, "the gateway sent no (or the wrong) TLS server name"
        assert seen["headers"]["host"] == f"{host}:8443"
        assert seen["headers"]["x-api-key"] == REAL_KEY
    else:
        assert result.status == 502, result
        assert result.json()["error"]["type"] == "api_error"
        assert "certificate" in gateway.logs() or "SSL" in gateway.logs(), gateway.logs()
