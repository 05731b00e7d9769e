"""Real local receivers for the connectors' tests: an HTTP server (the standard library's, in a thread) that
checks each request's signature and answers from a script, and an SMTP server (aiosmtpd) that receives mail
and can refuse it from a script."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message as Email
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from wayline_orchestrator.connectors.webhook import SIGNATURE_HEADER, verify

SECRET = "whsec_0123456789abcdef"


@dataclass(frozen=True)
class Reply:
    """One scripted HTTP answer: a status, headers, and a delay before answering."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    signed: bool  # the signature verified with SECRET
    at: float


class HttpReceiver:
    """Answers POSTs with the scripted replies in order, then 200s; records every request."""

    def __init__(self) -> None:
        self.script: list[Reply] = []
        self.received: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                signed = verify(SECRET, self.headers.get(SIGNATURE_HEADER, ""), body, time.time())
                with receiver._lock:
                    receiver.received.append(
                        Received(self.path, dict(self.headers.items()), body, signed, time.monotonic())
                    )
                    reply = receiver.script.pop(0) if receiver.script else Reply()
                if not signed:
                    reply = Reply(401)
                time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:  # the client gave up (a timeout test)
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks/wayline"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def reset(self, *script: Reply) -> None:
        with self._lock:
            self.script = list(script)
            self.received = []

    def __enter__(self) -> HttpReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class SmtpHandler:
    """Accepts mail unless the script says otherwise: each scripted reply (such as `451 4.3.0 Try later`)
    answers one DATA, in order."""

    def __init__(self) -> None:
        self.script: list[str] = []
        self.mails: list[tuple[Envelope, Email]] = []
        self.attempts = 0

    def reset(self, *script: str) -> None:
        self.script, self.mails, self.attempts = list(script), [], 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.attempts += 1
        if self.script:
            return self.script.pop(0)
        content = envelope.content if isinstance(envelope.content, bytes) else b""
        self.mails.append((envelope, message_from_bytes(content)))
        return "250 2.0.0 OK"


@contextmanager
def smtp_receiver() -> Iterator[tuple[SmtpHandler, int]]:
    handler = SmtpHandler()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()
