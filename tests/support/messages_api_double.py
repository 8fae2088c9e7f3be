"""A scripted test double of the Anthropic Messages API, for driving real Claude Code turns.

It speaks the public protocol the CLI uses, nothing more, and runs with the standard library
alone (tests start it with the agent image's own python3, on a docker network the sandbox
shares). What it models:

- `POST /v1/messages` (any query string; the CLI sends `?beta=true`) answered from a script:
  with `"stream": true` as server-sent events (`message_start`; per content block
  `content_block_start`, `content_block_delta` with `text_delta` or `input_json_delta`,
  `content_block_stop`; then `message_delta` with `stop_reason` and `usage`; `message_stop`),
  without it as one JSON message. `stop_reason` is `tool_use` when the reply holds a
  tool_use block, else `end_turn`.
- Errors as the API sends them: an HTTP status and `{"type": "error", "error": {"type",
  "message"}}`, with a `request-id` header (401 authentication_error, 529 overloaded_error...).
- Authentication: a request without `x-api-key` or `Authorization: Bearer` gets 401; when the
  script names the key it expects, any other key gets 401 too (a gateway test uses this to
  prove that the gateway, not the sandbox, supplies the key).
- A stream that dies after `message_start` (`"cut": true`): the CLI then retries the same
  request without `stream`.
- `HEAD /`: the CLI's connection warm-up, answered 200 and not counted as a step.

Not modelled: token counting, batches, files, prompt-caching semantics, real usage figures,
rate-limit headers. Anything the script does not expect (another path, a POST after the
script ran out, a body that is not a Messages request) is answered 500 and recorded as
unexpected, so a test can fail on it.

A script is a list of conversations, each a marker string and a list of steps; a request
belongs to the first conversation whose marker occurs in its `messages` (the prompt carries
it), so several sandboxes can share one double. A step is one of
    {"reply": [block, ...]}            blocks: {"text": "..."} or {"tool": NAME, "input": {...}}
    {"error": STATUS, "type": ..., "message": ...}
    {"cut": true}                      message_start, then the connection is closed
Control (a second port, reached only from the test runner's network):
    PUT /script    {"conversations": [...], "api_key": optional}  (resets the log)
    GET /log       {"requests": [...], "unexpected": [...], "pending": {marker: steps left}}

Run: python3 messages_api_double.py [API_PORT [CONTROL_PORT]]   (defaults 8080 8081)
"""

from __future__ import annotations

import itertools
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_BODY = 16 * 1024 * 1024


class Script:
    """The conversations to play and everything the API side has seen. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.load({"conversations": []})

    def load(self, script: dict[str, Any]) -> None:
        with self._lock:
            self.api_key: str | None = script.get("api_key")
            self.conversations = [
                {"marker": str(c.get("marker", "")), "steps": list(c["steps"])}
                for c in script["conversations"]
            ]
            self.requests: list[dict[str, Any]] = []
            self.unexpected: list[dict[str, Any]] = []

    def log(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": list(self.requests),
                "unexpected": list(self.unexpected),
                "pending": {c["marker"]: len(c["steps"]) for c in self.conversations},
            }

    def next_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):06d}"

    def take(self, record: dict[str, Any]) -> dict[str, Any] | None:
        """Record a Messages request and return the step that answers it (None: unexpected)."""
        text = json.dumps(record["body"].get("messages", []))
        with self._lock:
            self.requests.append(record)
            for conversation in self.conversations:
                if conversation["marker"] in text:
                    record["marker"] = conversation["marker"]
                    if conversation["steps"]:
                        return dict(conversation["steps"].pop(0))
                    self.unexpected.append({**record, "reason": "script ran out"})
                    return None
            self.unexpected.append({**record, "reason": "no conversation's marker matches"})
            return None

    def refuse(self, record: dict[str, Any]) -> None:
        """Log a request the API refused (401): seen, but it plays no step."""
        with self._lock:
            self.requests.append({**record, "refused": 401})

    def reject(self, record: dict[str, Any], reason: str) -> None:
        with self._lock:
            self.unexpected.append({**record, "reason": reason})


def _blocks(script: Script, step: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = []
    for block in step["reply"]:
        if "tool" in block:
            blocks.append(
                {
                    "type": "tool_use",
                    "id": script.next_id("toolu"),
                    "name": block["tool"],
                    "input": block.get("input", {}),
                }
            )
        else:
            blocks.append({"type": "text", "text": block["text"]})
    return blocks


def _message(script: Script, model: str, blocks: list[dict[str, Any]]) -> dict[str, Any]:
    tool = any(b["type"] == "tool_use" for b in blocks)
    return {
        "id": script.next_id("msg"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": blocks,
        "stop_reason": "tool_use" if tool else "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 7},
    }


def _events(message: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The SSE sequence that streams MESSAGE, one delta per content block."""
    start = {**message, "content": [], "stop_reason": None, "usage": {**message["usage"]}}
    start["usage"]["output_tokens"] = 1
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": start})
    ]
    for index, block in enumerate(message["content"]):
        if block["type"] == "tool_use":
            opening = {**block, "input": {}}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        else:
            opening = {"type": "text", "text": ""}
            delta = {"type": "text_delta", "text": block["text"]}
        events += [
            ("content_block_start", {"type": "content_block_start", "index": index,
                                     "content_block": opening}),
            ("content_block_delta", {"type": "content_block_delta", "index": index,
                                     "delta": delta}),
            ("content_block_stop", {"type": "content_block_stop", "index": index}),
        ]  # fmt: skip
    events += [
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                "usage": {"output_tokens": message["usage"]["output_tokens"]},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return events


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


class ApiHandler(BaseHTTPRequestHandler):
    """The Messages API side: what the sandbox talks to."""

    protocol_version = "HTTP/1.1"
    script: Script  # set on the class by serve()

    def log_message(self, *args: object) -> None:
        return

    def do_HEAD(self) -> None:
        if self.path == "/":
            self._send(200, b"", "text/plain")
        else:
            self._unexpected({}, "HEAD " + self.path)

    def do_GET(self) -> None:
        self._unexpected({}, "GET " + self.path)

    def do_POST(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(min(length, MAX_BODY)) or b"null")
        except ValueError:
            body = None
        record = {
            "method": "POST",
            "path": self.path,
            "client": self.client_address[0],
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body if isinstance(body, dict) else {},
        }
        if self.path.split("?", 1)[0] != "/v1/messages":
            self._unexpected(record, "POST to an unknown path")
            return
        if not isinstance(body, dict) or not {"model", "messages", "max_tokens"} <= body.keys():
            self._unexpected(record, "not a Messages API request body")
            return
        presented = record["headers"].get("x-api-key") or record["headers"].get(
            "authorization", ""
        ).removeprefix("Bearer ")
        expected = self.script.api_key
        if not presented or (expected is not None and presented != expected):
            self.script.refuse(record)
            self._error(401, "authentication_error", "invalid x-api-key")
            return
        step = self.script.take(record)
        if step is None:
            self._error(500, "api_error", "the test double's script did not expect this request")
            return
        record["step"] = step
        if "error" in step:
            self._error(int(step["error"]), step.get("type", "api_error"), step.get("message", ""))
            return
        model = str(body["model"])
        if step.get("cut"):
            self._stream([_events(_message(self.script, model, []))[0]], cut=True)
            return
        message = _message(self.script, model, _blocks(self.script, step))
        if body.get("stream"):
            self._stream(_events(message))
        else:
            self._send(200, json.dumps(message).encode(), "application/json")

    def _stream(self, events: list[tuple[str, dict[str, Any]]], cut: bool = False) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("request-id", self.script.next_id("req"))
        if cut:
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for event, data in events:
            chunk = _sse(event, data)
            if cut:
                self.wfile.write(chunk)
            else:
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            self.wfile.flush()
        if not cut:
            self.wfile.write(b"0\r\n\r\n")

    def _error(self, status: int, kind: str, message: str) -> None:
        body = {"type": "error", "error": {"type": kind, "message": message}}
        self._send(status, json.dumps(body).encode(), "application/json")

    def _unexpected(self, record: dict[str, Any], reason: str) -> None:
        self.script.reject({"path": self.path, **record}, reason)
        self._error(500, "api_error", f"the test double did not expect this: {reason}")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("request-id", self.script.next_id("req"))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class ControlHandler(BaseHTTPRequestHandler):
    """The test's side: load a script, read what the API side saw."""

    script: Script

    def log_message(self, *args: object) -> None:
        return

    def do_PUT(self) -> None:
        if self.path != "/script":
            self._reply(404, {"error": "PUT /script only"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        try:
            self.script.load(json.loads(self.rfile.read(length)))
        except (ValueError, KeyError, TypeError) as exc:
            self._reply(400, {"error": f"bad script: {exc!r}"})
            return
        self._reply(200, {"loaded": True})

    def do_GET(self) -> None:
        if self.path == "/log":
            self._reply(200, self.script.log())
        else:
            self._reply(404, {"error": "GET /log only"})

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def serve(api_port: int = 8080, control_port: int = 8081) -> None:
    script = Script()
    api = type("Api", (ApiHandler,), {"script": script})
    control = type("Control", (ControlHandler,), {"script": script})
    control_server = ThreadingHTTPServer(("", control_port), control)
    threading.Thread(target=control_server.serve_forever, daemon=True).start()
    print(f"messages API double on :{api_port}, control on :{control_port}", flush=True)
    ThreadingHTTPServer(("", api_port), api).serve_forever()


if __name__ == "__main__":
    serve(*(int(arg) for arg in sys.argv[1:3]))
