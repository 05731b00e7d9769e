"""A channel that refuses a call once closed, instead of crashing the process.

Through `grpc.intercept_channel`, each call asks the channel underneath for its method's handle as it
starts (a plain stub asks once, when made). On a closed channel grpcio 1.85 reads the freed core channel
there: any call after `close` (a feed follower's last acknowledgement racing its service's stop) was a
segmentation fault (seen in the test suite, 2026-12-06; grpc/grpc pull request 43455, open). This channel
sits under the interceptors: a method's handle is taken, and the channel closed, under one lock, and once
closed a call raises the ValueError a plain closed channel raises. A call started before `close` is
cancelled by it, as on any channel.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any

import grpc

__all__ = ["ChannelClosed", "GuardedChannel"]


class ChannelClosed(ValueError):
    """A call on a closed channel: a ValueError, as a plain closed channel raises, that callers stopping
    can tell from other ValueErrors."""

    def __init__(self) -> None:
        super().__init__("Cannot invoke RPC on closed channel!")  # grpc's own words


class GuardedChannel(grpc.Channel):
    def __init__(self, channel: grpc.Channel) -> None:
        self._channel = channel
        self._lock = threading.Lock()
        self._closed = False

    def _multicallable(
        self, kind: str, method: str, serializer: Any, deserializer: Any, registered: bool
    ) -> Any:
        with self._lock:
            if self._closed:
                raise ChannelClosed
            return getattr(self._channel, kind)(method, serializer, deserializer, registered)

    def subscribe(self, callback: Any, try_to_connect: bool = False) -> None:
        self._channel.subscribe(callback, try_to_connect=try_to_connect)

    def unsubscribe(self, callback: Any) -> None:
        self._channel.unsubscribe(callback)

    # `_registered_method` is grpc's private argument, passed on as the interceptors pass it.
    def unary_unary(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool = False,
    ) -> grpc.UnaryUnaryMultiCallable[Any, Any]:
        return self._multicallable(  # type: ignore[no-any-return]
            "unary_unary", method, request_serializer, response_deserializer, _registered_method
        )

    def unary_stream(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool = False,
    ) -> grpc.UnaryStreamMultiCallable[Any, Any]:
        return self._multicallable(  # type: ignore[no-any-return]
            "unary_stream", method, request_serializer, response_deserializer, _registered_method
        )

    def stream_unary(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool = False,
    ) -> grpc.StreamUnaryMultiCallable[Any, Any]:
        return self._multicallable(  # type: ignore[no-any-return]
            "stream_unary", method, request_serializer, response_deserializer, _registered_method
        )

    def stream_stream(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool = False,
    ) -> grpc.StreamStreamMultiCallable[Any, Any]:
        return self._multicallable(  # type: ignore[no-any-return]
            "stream_stream", method, request_serializer, response_deserializer, _registered_method
        )

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._channel.close()

    def __enter__(self) -> GuardedChannel:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
