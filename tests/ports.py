"""Loopback ports for the servers tests start (gunicorn, Redis, vcsim): each suite keeps to its own range, so
suites and parallel runs on one machine stay apart."""

from __future__ import annotations

import secrets
import socket


def free_port(ports: range) -> int:
    """A port of ``ports`` nothing listens on now, searched from a random start (parallel runs rarely collide)."""
    start = secrets.randbelow(len(ports))
    for offset in range(len(ports)):
        port = ports[(start + offset) % len(ports)]
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {ports.start}-{ports.stop - 1}")
