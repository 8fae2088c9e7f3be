"""A loopback TCP forwarder in front of a registry that acts when a request matches.

The release talks to the registry through it (docker push via the daemon, tag moves via the
HTTP API), so a test can stop the registry, or hold a request while it sends SIGINT, at an
exact point of the release instead of guessing with sleeps.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

Action = Callable[[], bool]  # runs before the matching request is forwarded; False drops it


@dataclass
class Rule:
    pattern: bytes
    action: Action
    fired: threading.Event = field(default_factory=threading.Event)


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        host, port = upstream.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.rules: list[Rule] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def on(self, pattern: str, action: Action) -> Rule:
        """Run `action` once, when a client sends bytes containing `pattern`."""
        rule = Rule(pattern.encode(), action)
        self.rules.append(rule)
        return rule

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.upstream, timeout=10)
        except OSError:
            client.close()  # the registry is down: the client sees the connection drop
            return
        upstream.settimeout(None)
        threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()
        self._pump(client, upstream, True)

    def _pump(self, source: socket.socket, sink: socket.socket, inspect: bool) -> None:
        try:
            while data := source.recv(65536):
                if inspect and not self._allow(data):
                    raise ConnectionAbortedError("request dropped by a rule")
                sink.sendall(data)
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)
            return
        except OSError:
            pass
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.close()

    def _allow(self, data: bytes) -> bool:
        for rule in self.rules:
            if rule.pattern in data and not rule.fired.is_set():
                rule.fired.set()
                if not rule.action():
                    return False
        return True
