"""`free_port` picks a port for a server started later, and the port stays its own until then: a server asking
for any port (port 0) is never handed it, while the server it was picked for binds it at once."""

from __future__ import annotations

import socket

from wayline_cli.suite import free_port


def test_a_server_on_port_zero_is_never_handed_a_port_just_picked() -> None:
    picked = {free_port() for _ in range(60)}
    handed: list[int] = []
    open_sockets: list[socket.socket] = []
    try:
        for _ in range(5_000):  # a port merely closed came back 8-22 times in 5,000 (2026-12-06)
            server = socket.create_server(("127.0.0.1", 0))
            handed.append(server.getsockname()[1])
            open_sockets.append(server)
            if len(open_sockets) > 200:  # keep the ephemeral range cycling, as a busy test run does
                open_sockets.pop(0).close()
    finally:
        for server in open_sockets:
            server.close()
    assert picked.isdisjoint(handed)


def test_the_server_a_port_was_picked_for_binds_it_at_once() -> None:
    port = free_port()
    with socket.create_server(("127.0.0.1", port)) as server, socket.create_connection(("127.0.0.1", port)):
        accepted, _ = server.accept()
        accepted.close()
