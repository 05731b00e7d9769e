"""What the kit reads of a call's deadline: gRPC's "no deadline" (None, or a very distant one) is None."""

from __future__ import annotations

from typing import Any, cast

import grpc
import pytest

from wayline.common.context import caller_timeout


class Remaining:
    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds

    def time_remaining(self) -> float | None:
        return self.seconds


@pytest.mark.parametrize(
    ("remaining", "timeout"),
    [(None, None), (1e9, None), (2.5, 2.5), (0.0, 0.0)],
    ids=["none", "grpc-infinite", "set", "expired"],
)
def test_caller_timeout_is_none_only_without_a_deadline(
    remaining: float | None, timeout: float | None
) -> None:
    context = cast(grpc.ServicerContext, cast(Any, Remaining(remaining)))
    assert caller_timeout(context) == timeout
