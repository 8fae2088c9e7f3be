"""The gateway as a hardened container: a fixed non-root uid, no privilege to gain, a fast
stop, no silent half-life when a daemon dies, and a credential that shows nowhere but upstream.
Every gateway here runs with --read-only --cap-drop ALL --security-opt no-new-privileges and
a tmpfs on /tmp only (sandbox.GATEWAY_SETTINGS).
"""

from __future__ import annotations

import json
import tarfile
import time

import pytest
from api_double import ApiDouble, Conversation, reply, text
from gatewaykit import GATEWAY_UID, PLACEHOLDER_KEY, REAL_KEY, Gateway, Gateways, Probe, wait_exit

import docker

# The supervisor is tini's child; the daemons are the supervisor's children. Prints one
# "PID COMM" line per daemon (the nginx master, squid).
DAEMONS = r"""
read -r supervisor _ </proc/1/task/1/children
read -r -a pids <"/proc/$supervisor/task/$supervisor/children"
for pid in "${pids[@]}"; do
    echo "$pid $(<"/proc/$pid/comm")"
done
"""


def daemons(gateway: Gateway) -> dict[str, int]:
    code, out = gateway.container.exec_run(["bash", "-c", DAEMONS])
    assert code == 0, out.decode(errors="replace")
    pids = {}
    for line in out.decode().splitlines():
        pid, name = line.split()
        pids[name] = int(pid)
    assert set(pids) == {"nginx", "squid"}, pids
    return pids


def test_image_declares_a_numeric_non_root_user_and_oci_labels(
    client: docker.DockerClient, gateway_image: str
) -> None:
    config = client.images.get(gateway_image).attrs["Config"]
    assert config["User"] == f"{GATEWAY_UID}:{GATEWAY_UID}"
    assert config["Entrypoint"] == ["tini", "--", "gateway-entrypoint.sh"]
    assert set(config["ExposedPorts"]) == {"8080/tcp", "3128/tcp"}
    labels = config["Labels"]
    for key in ("title", "description", "url", "source", "version", "created", "revision"):
        assert labels.get(f"org.opencontainers.image.{key}"), f"label {key} is missing"
    assert labels["org.opencontainers.image.title"] == "agentgate/gateway"


def test_every_process_runs_as_the_gateway_uid(gateway: Gateway) -> None:
    top = gateway.container.top(ps_args="-o pid,uid,comm")
    rows = [dict(zip(top["Titles"], row, strict=True)) for row in top["Processes"]]
    # bash runs the supervisor script (gateway-entrypoint.sh)
    assert {row["COMMAND"] for row in rows} == {"tini", "bash", "nginx", "squid"}, rows
    assert {row["UID"] for row in rows} == {str(GATEWAY_UID)}, rows
    gateway.container.reload()
    host_config = gateway.container.attrs["HostConfig"]
    assert host_config["ReadonlyRootfs"] is True
    assert host_config["CapDrop"] == ["ALL"]
    assert host_config["SecurityOpt"] == ["no-new-privileges"]
    assert list(host_config["Tmpfs"]) == ["/tmp"]


def test_no_setuid_setgid_or_capability_files_and_no_package_caches(
    client: docker.DockerClient, gateway_image: str
) -> None:
    container = client.containers.create(gateway_image, labels={"io.agentgate.test": "export"})
    try:
        privileged, cached = [], []
        with tarfile.open(fileobj=_Stream(container.export()), mode="r|") as archive:
            for member in archive:
                if member.isfile() and member.mode & 0o6000:
                    privileged.append(f"{member.name} mode {member.mode:o}")
                if any("capability" in key for key in member.pax_headers):
                    privileged.append(f"{member.name} has file capabilities")
                if (
                    member.isfile()
                    and member.size  # apt's empty lock files are not a cache
                    and member.name.startswith(("var/lib/apt/lists/", "var/cache/apt/"))
                ):
                    cached.append(member.name)
    finally:
        container.remove(force=True)
    assert not privileged, privileged
    assert not cached, cached


class _Stream:
    """The docker SDK's export generator as a file object tarfile can read as a stream."""

    def __init__(self, chunks) -> None:
        self.chunks = iter(chunks)
        self.buffer = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self.buffer) < size:
            chunk = next(self.chunks, None)
            if chunk is None:
                break
            self.buffer += chunk
        if size < 0:
            size = len(self.buffer)
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data


def test_docker_stop_ends_both_daemons_within_two_seconds(gateways: Gateways) -> None:
    gateway = gateways.start({"ANTHROPIC_API_KEY": REAL_KEY})
    started = time.monotonic()
    gateway.container.stop(timeout=10)
    seconds = time.monotonic() - started
    gateway.container.reload()
    state = gateway.container.attrs["State"]
    assert seconds < 2, f"docker stop took {seconds:.2f}s\n{gateway.logs()}"
    assert state["ExitCode"] == 0, gateway.logs()
    assert not state["OOMKilled"]
    assert "gateway-entrypoint: stopped" in gateway.logs()


@pytest.mark.parametrize("daemon", ["nginx", "squid"])
def test_a_daemon_that_dies_takes_the_gateway_down(daemon: str, gateways: Gateways) -> None:
    gateway = gateways.start({"ANTHROPIC_API_KEY": REAL_KEY})
    pid = daemons(gateway)[daemon]
    code, out = gateway.container.exec_run(["bash", "-c", f"kill -KILL {pid}"])
    assert code == 0, out
    assert wait_exit(gateway.container) == 70, gateway.logs()
    assert f"error: {daemon} ended with status 137" in gateway.logs(), gateway.logs()


def test_the_credential_shows_in_no_log_inspect_or_daemon_environment(
    gateway: Gateway, echo_gateway: Gateway, sandbox_probe: Probe, double: ApiDouble
) -> None:
    double.play(Conversation([reply(text("logged?"))], marker="no-leak"), api_key=REAL_KEY)
    body = json.dumps(
        {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "no-leak"}]}
    )
    result = sandbox_probe.curl(
        "-X", "POST", gateway.api_url + "/v1/messages", "-d", body,
        "-H", f"x-api-key: {PLACEHOLDER_KEY}", "-H", f"authorization: Bearer {PLACEHOLDER_KEY}",
    )  # fmt: skip
    assert result.status == 200, result
    logs = gateway.logs()
    assert '"POST /v1/messages" 200' in logs, f"the request was not logged at all:\n{logs}"
    assert REAL_KEY not in logs
    assert PLACEHOLDER_KEY not in logs
    # The key came from a secret file: docker inspect shows only the file's path.
    gateway.container.reload()
    assert REAL_KEY not in json.dumps(gateway.container.attrs)
    # Given in the environment instead, it still does not reach the daemons' environment.
    for name, pid in daemons(echo_gateway).items():
        code, environ = echo_gateway.container.exec_run(["cat", f"/proc/{pid}/environ"])
        assert code == 0, environ
        assert REAL_KEY.encode() not in environ, f"{name} inherited the credential"
