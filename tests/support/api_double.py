"""The Messages API double as the tests use it: a container they start, script and read.

The server itself is messages_api_double.py (standard library only); it runs with the agent
image's own python3, so no other image is needed on a host without registry access. The
container joins the sandbox's networks under the alias `messages-api` and a control network
the sandbox never joins, through which the test runner loads scripts and reads the log.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docker.models.containers import Container
from docker.models.networks import Network
from script_container import address_on, start_script_container

import docker

SERVER = Path(__file__).with_name("messages_api_double.py")
API_PORT = 8080
CONTROL_PORT = 8081
ALIAS = "messages-api"


def text(words: str) -> dict[str, Any]:
    return {"text": words}


def tool(name: str, **tool_input: Any) -> dict[str, Any]:
    return {"tool": name, "input": tool_input}


def reply(*blocks: dict[str, Any]) -> dict[str, Any]:
    """One model step: text and tool_use blocks (stop_reason tool_use if any tool is used)."""
    return {"reply": list(blocks)}


def error(status: int, kind: str, message: str) -> dict[str, Any]:
    return {"error": status, "type": kind, "message": message}


OVERLOADED = error(529, "overloaded_error", "Overloaded")
CUT = {"cut": True}


@dataclass(frozen=True)
class Conversation:
    """The steps answering the requests whose messages contain MARKER ("" matches all)."""

    steps: Sequence[dict[str, Any]]
    marker: str = ""


@dataclass(frozen=True)
class DoubleLog:
    requests: list[dict[str, Any]]
    unexpected: list[dict[str, Any]]
    pending: dict[str, int]

    def played(self, marker: str = "") -> list[dict[str, Any]]:
        """The requests that consumed a step of MARKER's conversation, in order."""
        return [r for r in self.requests if r.get("marker") == marker and "step" in r]

    def problems(self) -> str:
        """Empty when every step was played and nothing unexpected arrived."""
        lines = [f"unexpected {u['path']}: {u['reason']}" for u in self.unexpected]
        lines += [f"{n} step(s) of {m!r} never requested" for m, n in self.pending.items() if n]
        return "\n".join(lines)


class ApiDouble:
    """A running double; `url` is what a sandbox on one of its networks sets as base URL."""

    url = f"http://{ALIAS}:{API_PORT}"

    def __init__(self, container: Container, control_ip: str) -> None:
        self.container = container
        self.control_ip = control_ip
        self.host_url = f"http://{control_ip}:{API_PORT}"  # for the host-side bench baseline

    def play(self, *conversations: Conversation, api_key: str | None = None) -> None:
        """Load a script (and forget the previous log)."""
        script: dict[str, Any] = {
            "conversations": [{"marker": c.marker, "steps": list(c.steps)} for c in conversations]
        }
        if api_key is not None:
            script["api_key"] = api_key
        self._control("PUT", "/script", script)

    def log(self) -> DoubleLog:
        body = self._control("GET", "/log")
        return DoubleLog(body["requests"], body["unexpected"], body["pending"])

    def _control(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"http://{self.control_ip}:{CONTROL_PORT}{path}", data=data, method=method
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return json.loads(response.read())


def start_api_double(
    client: docker.DockerClient,
    image: str,
    *,
    name: str,
    networks: Mapping[Network, Sequence[str]],
    control: Network,
    labels: Mapping[str, str],
    timeout: float = 30,
) -> ApiDouble:
    """Start the double on NETWORKS (each with its DNS aliases) plus CONTROL; wait for it."""
    container = start_script_container(
        client,
        image,
        SERVER,
        [str(API_PORT), str(CONTROL_PORT)],
        name=name,
        networks={**networks, control: ()},
        labels=labels,
    )
    double = ApiDouble(container, address_on(container, control))
    deadline = time.monotonic() + timeout
    while True:
        try:
            double.log()
            return double
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            container.reload()
            if container.status != "running" or time.monotonic() > deadline:
                logs = container.logs().decode(errors="replace")
                raise RuntimeError(
                    f"the API double did not come up ({exc}); state {container.status}\n{logs}"
                ) from exc
            time.sleep(0.1)


def tool_results(request: dict[str, Any]) -> list[dict[str, Any]]:
    """The tool_result blocks the CLI sent back in REQUEST's last user message."""
    messages = request["body"].get("messages") or [{}]
    content = messages[-1].get("content")
    if not isinstance(content, list):
        return []
    return [block for block in content if block.get("type") == "tool_result"]


def result_text(block: dict[str, Any]) -> str:
    """A tool_result's content as text (a string, or a list of text blocks)."""
    content = block.get("content", "")
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content)
    return str(content)
