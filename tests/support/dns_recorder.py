"""A DNS server that answers every A query with 192.0.2.1 and prints each query it sees.

Containment tests make it the upstream resolver of a container (`--dns IP`): a query that
reaches it is a name the container managed to send out of its network, the channel DNS
tunnelling uses. Each query is printed as one JSON line (`docker logs` is the log). Only what
that needs is modelled: one question per query, A answers, an empty answer otherwise.

Run: python3 dns_recorder.py [PORT]   (default 53; Docker lets containers bind it unprivileged)
"""

from __future__ import annotations

import json
import socket
import struct
import sys

ANSWER = socket.inet_aton("192.0.2.1")  # TEST-NET-1: never a real host


def question(packet: bytes) -> tuple[str, int, int]:
    """(name, qtype, end offset of the question) of a query packet."""
    labels, offset = [], 12
    while packet[offset]:
        length = packet[offset]
        labels.append(packet[offset + 1 : offset + 1 + length].decode(errors="replace"))
        offset += 1 + length
    qtype = struct.unpack(">H", packet[offset + 1 : offset + 3])[0]
    return ".".join(labels), qtype, offset + 5


def response(packet: bytes) -> bytes:
    _, qtype, end = question(packet)
    (query_id,) = struct.unpack(">H", packet[:2])
    answer = b""
    if qtype == 1:  # A: a pointer to the question's name, class IN, TTL 60, 4 bytes
        answer = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + ANSWER
    header = struct.pack(">HHHHHH", query_id, 0x8180, 1, 1 if answer else 0, 0, 0)
    return header + packet[12:end] + answer


def serve(port: int = 53) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("", port))
    print(json.dumps({"listening": port}), flush=True)
    while True:
        packet, address = sock.recvfrom(512)
        try:
            name, qtype, _ = question(packet)
            sock.sendto(response(packet), address)
        except (IndexError, struct.error):
            name, qtype = "<malformed>", 0
        print(json.dumps({"name": name, "type": qtype, "client": address[0]}), flush=True)


if __name__ == "__main__":
    serve(*(int(arg) for arg in sys.argv[1:2]))
