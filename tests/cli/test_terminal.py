"""What the CLI prints of others' text stays that text: a server's error message and field violations with
brackets or emoji codes in them (from a real gRPC server's rich status), and resource lists holding such
names, neither lose words to rich's markup nor stop the command with a MarkupError."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status
from rich.table import Table

from wayline.common.grpc_types import GenericRpcHandler
from wayline_cli import gateway, terminal

_MESSAGE = "channel must be one of [email, sms] :fire: (see [/docs])"
_VIOLATION = ("steps[0].channel", "[b]push[/b] is paused :cookie:")


class _Refusing(GenericRpcHandler):
    """Refuses every call with INVALID_ARGUMENT, the message and one BadRequest violation above."""

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler[bytes, bytes]:
        def refuse(request: bytes, context: grpc.ServicerContext) -> bytes:
            detail = any_pb2.Any()
            detail.Pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=_VIOLATION[0], description=_VIOLATION[1]
                        )
                    ]
                )
            )
            status = status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message=_MESSAGE, details=[detail])
            context.abort_with_status(rpc_status.to_status(status))
            raise AssertionError("abort_with_status returns only by raising")

        return grpc.unary_unary_rpc_method_handler(refuse)


@pytest.fixture
def refused() -> Iterator[grpc.RpcError]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    server.add_generic_rpc_handlers([_Refusing()])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.unary_unary("/test.Refusing/Call", None, None)
            with pytest.raises(grpc.RpcError) as caught:
                call(b"", timeout=10)
            yield caught.value
    finally:
        server.stop(0)


def test_a_servers_message_and_violations_print_as_written(
    refused: grpc.RpcError, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gateway, "err", terminal.console(stderr=True))  # on the captured stderr
    exit_ = gateway.failure(refused, "flows/[draft]")
    assert exit_.exit_code == 1
    printed = capsys.readouterr().err
    assert f"INVALID_ARGUMENT (flows/[draft]): {_MESSAGE}" in printed
    assert f"  {_VIOLATION[0]}: {_VIOLATION[1]}" in printed


def test_results_print_names_as_written(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    table = Table()
    table.add_column("name")
    for name in ("Spring [sale] :fire:", "oops [/b] unmatched"):
        table.add_row(name)
    gateway.out.print(table)  # the results console of the resource commands (actions, flows, connectors, …)
    terminal.console(markup=False).print(table)  # and those of keys and models
    printed = capsys.readouterr().out
    assert printed.count("Spring [sale] :fire:") == 2
    assert printed.count("oops [/b] unmatched") == 2
