"""The gateway's start is retried until every part of it is up: a busy HTTP port delays it, not wedges it."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.conftest import gateway_settings
from wayline.common.server import Server
from wayline_gateway.service import gateway_service


def test_a_gateway_whose_http_port_is_busy_at_start_serves_once_the_port_frees(
    tmp_path: Path, ingest_server: Server
) -> None:
    settings = gateway_settings(tmp_path, {"ingest": ingest_server.address}, "wl_busy_port", "acme")
    holder = socket.create_server(("127.0.0.1", settings.http_port))  # SO_REUSEADDR, as free_port needs
    server = Server(gateway_service(settings), settings)
    server.start()
    try:
        assert not server.wait_ready(1.5), "the gateway served without its HTTP port"
        holder.close()
        # start() is retried with backoff (at most 5 s apart); every part started before stays started
        assert server.wait_ready(20), "the gateway never became ready after its HTTP port freed"
        with socket.create_connection(("127.0.0.1", settings.http_port), timeout=5):
            pass
    finally:
        holder.close()
        server.stop(0)
