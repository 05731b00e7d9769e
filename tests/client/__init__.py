"""Tests of `wayline.client` against real Wayline servers, and the helpers they share.

The helpers live here because they are the client tests' own: reading a person's timeline back through the
gateway, and a TCP proxy that can hold the server's answers (a network that loses replies after the server
has acted, the case that makes retries dangerous).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import grpc

from tests.conftest import API_KEY
from wayline.client import Client
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as journeys_grpc

Auth = tuple[tuple[str, str], ...]


def local_client(address: str, api_key: str = API_KEY, **options: Any) -> Client:
    """A client of a plaintext local gateway, web channel by default."""
    options.setdefault("channel", "web")
    return Client(address, api_key, secure=False, **options)


def stored_events(
    channel: grpc.Channel, auth: Auth, user_id: str, expect: int, timeout: float = 15.0
) -> list[event_pb2.Event]:
    """The person's timeline, oldest first, read through the gateway once it holds `expect` events (ingest
    acknowledges once events are spooled; its forwarder writes them to journeys a moment later)."""
    deadline = time.monotonic() + timeout
    while True:
        events = _timeline(channel, auth, user_id)
        if len(events) >= expect or time.monotonic() > deadline:
            return events
        time.sleep(0.05)


def stored_ids_after_settling(channel: grpc.Channel, auth: Auth, user_id: str, expect: int) -> list[str]:
    """The sorted ids of the person's events once `expect` are stored and a second more has brought no
    others: the check that retries stored nothing twice."""
    stored_events(channel, auth, user_id, expect)
    return sorted(e.event_id for e in stored_events(channel, auth, user_id, expect + 1, timeout=1.0))


def _timeline(channel: grpc.Channel, auth: Auth, user_id: str) -> list[event_pb2.Event]:
    stub = journeys_grpc.JourneyServiceStub(channel)
    events: list[event_pb2.Event] = []
    token = ""
    while True:
        page: journeys_pb.GetTimelineResponse = stub.GetTimeline(
            journeys_pb.GetTimelineRequest(
                identifier=event_pb2.Identifier(type="user_id", value=user_id),
                page_size=1000,
                page_token=token,
                order=journeys_pb.TIMELINE_ORDER_OLDEST_FIRST,
            ),
            metadata=auth,
            timeout=10,
        )
        events.extend(page.events)
        token = page.next_page_token
        if not token:
            return events


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


class HoldingProxy:
    """A TCP proxy to `upstream` that, while `holding` is set, keeps the server's bytes from the client:
    requests arrive and are acted on, their answers do not (until the hold is lifted)."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.rsplit(":", 1)
        self._upstream = (host, int(port))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self.holding = threading.Event()
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
                server = socket.create_connection(self._upstream)
            except OSError:
                return
            self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, answers: bool) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                while answers and self.holding.is_set() and not self._closed.is_set():
                    time.sleep(0.01)
                target.sendall(data)
        for end in (source, target):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        for end in self._sockets:
            with contextlib.suppress(OSError):
                end.close()
