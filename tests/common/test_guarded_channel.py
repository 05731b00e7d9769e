"""A call on a closed channel to another service is refused with a ValueError, whichever kind of call and
whenever the close came: through the interceptors, grpcio 1.85 read the freed core channel as such a call
started, and the process died of a segmentation fault (a test run lost its worker to a feed follower's
acknowledgement racing its service's stop). Each case runs in a process of its own, with a real gRPC
server, so that a crash fails the test instead of the run."""

from __future__ import annotations

import signal
import subprocess
import sys

_PROCESS_START = """
import threading
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from wayline.common.clients import internal_channel

server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
port = server.add_insecure_port("127.0.0.1:0")
server.start()
address = f"127.0.0.1:{port}"
"""

_AFTER_CLOSE = """
channel = internal_channel(address, internal_token="token")
stub = health_pb2_grpc.HealthStub(channel)
assert stub.Check(health_pb2.HealthCheckRequest(), timeout=5).status == health_pb2.HealthCheckResponse.SERVING
channel.close()
calls = {
    "unary-unary": lambda: stub.Check(health_pb2.HealthCheckRequest(), timeout=5),
    "unary-stream": lambda: next(stub.Watch(health_pb2.HealthCheckRequest(), timeout=5)),
    "stream-unary": lambda: channel.stream_unary("/grpc.health.v1.Health/Gather")(iter(()), timeout=5),
    "stream-stream": lambda: list(channel.stream_stream("/grpc.health.v1.Health/Chat")(iter(()), timeout=5)),
}
for kind, call in calls.items():
    try:
        call()
    except ValueError as error:
        print(kind, "refused:", error, flush=True)
"""

_CLOSED_WHILE_CALLING = """
channel = internal_channel(address, internal_token="token")
stub = health_pb2_grpc.HealthStub(channel)
outcomes = {"answered": 0, "refused": 0, "cancelled": 0}
lock = threading.Lock()

def call_until_refused():
    while True:
        try:
            stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
            outcome = "answered"
        except ValueError:
            outcome = "refused"
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.CANCELLED, error
            outcome = "cancelled"
        with lock:
            outcomes[outcome] += 1
        if outcome == "refused":
            return

callers = [threading.Thread(target=call_until_refused) for _ in range(4)]
for caller in callers:
    caller.start()
while sum(outcomes.values()) < 200:
    pass
channel.close()
for caller in callers:
    caller.join(10)
print("outcomes:", outcomes["answered"] >= 200 - 4, outcomes["refused"], flush=True)
"""


# Stopped before the interpreter exits: a process that ended with its server still serving could hang in
# gRPC's serving thread as the interpreter shut down (it once outlived the test's 60 s, its case long done).
_PROCESS_END = """
server.stop(None).wait()
"""


def _run(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c", _PROCESS_START + script + _PROCESS_END],
        check=False,  # a crash is what the test looks for
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_every_kind_of_call_on_a_closed_channel_is_refused_with_a_value_error() -> None:
    process = _run(_AFTER_CLOSE)
    assert process.returncode != -signal.SIGSEGV, process.stderr
    assert process.returncode == 0, process.stderr
    refused = "Cannot invoke RPC on closed channel!"
    assert process.stdout.splitlines() == [
        f"unary-unary refused: {refused}",
        f"unary-stream refused: {refused}",
        f"stream-unary refused: {refused}",
        f"stream-stream refused: {refused}",
    ]


def test_a_channel_closed_while_threads_call_through_it_refuses_their_next_calls() -> None:
    process = _run(_CLOSED_WHILE_CALLING)
    assert process.returncode != -signal.SIGSEGV, process.stderr
    assert process.returncode == 0, process.stderr
    assert process.stdout.strip() == "outcomes: True 4"  # each of the four callers refused once, then stopped
