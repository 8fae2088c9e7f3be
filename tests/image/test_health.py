"""Health check in a running container, and secrets staying out of logs and health logs."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from imagekit import (
    HARDENED,
    WAIT_TIMEOUT,
    Containers,
    bind,
    exec_in,
    health_outputs,
    health_status,
    logs_of,
    wait_for,
    wait_healthy,
)

API_KEY = "sk-ant-test-SECRET-api-0d5e7c"
OAUTH = "sk-ant-oat-test-SECRET-oauth-9b1f42"
SECRETS = {"ANTHROPIC_API_KEY": API_KEY, "CLAUDE_CODE_OAUTH_TOKEN": OAUTH}


MARK_READY_THEN_SLEEP = (
    "source /usr/local/bin/agent-entrypoint.sh && agent_mark_ready && exec sleep infinity"
)


def assert_no_secret(where: str, text: str) -> None:
    for name, value in SECRETS.items():
        assert value not in text, f"{name} leaked into {where}:\n{text}"


def test_healthy_long_before_the_first_interval(containers: Containers, workspace: Path) -> None:
    """--start-interval probes a new container every second, so it reports healthy within
    seconds (about one when the host is idle), not after the 30 s interval. Measured with
    Docker's own timestamps, with room for a host busy with builds."""
    container = containers.start(volumes=bind(workspace), **HARDENED)
    attrs = wait_healthy(container)
    started = _docker_time(attrs["State"]["StartedAt"])
    probes = attrs["State"]["Health"]["Log"]
    passed = [probe for probe in probes if probe["ExitCode"] == 0]
    assert passed, probes
    assert passed[0]["Output"].strip() == "healthy", probes
    seconds = (_docker_time(passed[0]["End"]) - started).total_seconds()
    assert seconds < 15, f"healthy {seconds:.1f} s after the start: {probes}"


def _docker_time(stamp: str) -> datetime:
    """Docker's RFC 3339 time with nanoseconds, to the microsecond Python keeps."""
    head, _, fraction = stamp.rstrip("Z").partition(".")
    zone = ""
    for sign in ("+", "-"):
        if sign in fraction:
            fraction, _, offset = fraction.partition(sign)
            zone = sign + offset
    return datetime.fromisoformat(f"{head}.{(fraction + '000000')[:6]}{zone or '+00:00'}")


def test_unhealthy_with_reason_when_workspace_read_only(
    containers: Containers, workspace: Path, image
) -> None:
    # The entrypoint refuses a read-only workspace (exit 66, test_bad_input), so the container
    # would never live long enough to be checked: bypass it and keep only tini + sleep, with
    # the ready marker the entrypoint would have written (its own function writes it).
    # The image's own check command runs, with timings shortened so one failure counts.
    healthcheck = {
        "test": image.attrs["Config"]["Healthcheck"]["Test"],
        "interval": 500_000_000,
        "timeout": 5_000_000_000,
        "retries": 1,
        "start_period": 1_000_000,
    }
    container = containers.start(
        entrypoint=["tini", "--", "bash", "-c", MARK_READY_THEN_SLEEP],
        volumes=bind(workspace, mode="ro"),
        healthcheck=healthcheck,
        environment=SECRETS,
        **HARDENED,
    )
    attrs = wait_for(
        container, lambda a: health_status(a) == "unhealthy", WAIT_TIMEOUT, "unhealthy"
    )
    outputs = health_outputs(attrs)
    assert any("workspace /workspace is not writable by uid 1000" in o for o in outputs), outputs
    assert_no_secret("the health log", json.dumps(attrs["State"]["Health"]))


def test_secrets_never_logged(containers: Containers, workspace: Path, tmp_path: Path) -> None:
    # Provoke every message the entrypoint can print on a good start (HOME fallback,
    # world-readable credentials) with both secrets in the environment.
    creds = tmp_path / "credentials.json"
    creds.write_text(json.dumps({"claudeAiOauth": {"accessToken": "file-secret-5c3d"}}))
    creds.chmod(0o644)
    profile = {**HARDENED, "tmpfs": {"/tmp": ""}}  # no tmpfs HOME: fallback warning
    container = containers.start(
        environment=SECRETS,
        volumes={
            **bind(workspace),
            str(creds): {"bind": "/run/secrets/claude-credentials.json", "mode": "ro"},
        },
        **profile,
    )
    attrs = wait_healthy(container)
    logs = logs_of(container)
    assert "world-readable" in logs, logs  # the warnings were printed...
    assert "not writable" in logs, logs
    assert_no_secret("docker logs", logs)  # ...without any secret
    assert "file-secret-5c3d" not in logs
    assert_no_secret("the health log", json.dumps(attrs["State"]["Health"]))
    # The secrets did reach the container and pass through untouched.
    code, out = exec_in(container, 'printf "%s\\n" "$ANTHROPIC_API_KEY" "$CLAUDE_CODE_OAUTH_TOKEN"')
    assert (code, out.split()) == (0, [API_KEY, OAUTH])


def test_secrets_not_logged_on_failed_start(containers: Containers, workspace: Path) -> None:
    result = containers.run(
        ["true"], environment={**SECRETS, "AGENT_WORKSPACE": "/missing"}, **HARDENED
    )
    assert result.code == 64, str(result)
    assert_no_secret("docker logs", result.logs)
