"""The override feed over gRPC: IdentityService.GetOverrideFeedHeads, ListPersonOverrides and
AcknowledgePersonOverrides.

Each call names its tenant in metadata; the channel (wayline.common.clients.internal_channel) adds the
internal token and retries UNAVAILABLE, as both methods are safe to retry. Failures become the follower's two
errors: identity out of reach (every tenant waits) or one call refused (that tenant waits).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import grpc

from wayline.common.context import TENANT_HEADER
from wayline.common.guarded_channel import ChannelClosed
from wayline.common.override_heads import read_override_heads
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.identity.v1 import identity_service_pb2_grpc as identity_grpc
from wayline_journeys.converters import override_from_pb, override_violations
from wayline_journeys.follower import CONSUMER, FeedPage, FeedRefused, FeedUnavailable

__all__ = ["IdentityOverrideFeed"]

# Identity out of reach, or too busy to answer: no tenant can be followed now.
_UNREACHABLE = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED}
)


class IdentityOverrideFeed:
    """Owns `channel`: `close` closes it."""

    def __init__(self, channel: grpc.Channel, *, page_size: int = 1000, timeout: float = 10.0) -> None:
        self._channel = channel
        self._stub = identity_grpc.IdentityServiceStub(channel)
        self._page_size = page_size
        self._timeout = timeout

    def heads(self, tenants: Sequence[str]) -> Mapping[str, int] | None:
        with _feed_errors():
            return read_override_heads(self._stub, tenants, timeout=self._timeout)

    def page(self, tenant: str, after_version: int, page_token: str) -> FeedPage:
        request = identity_pb.ListPersonOverridesRequest(
            after_version=after_version, page_size=self._page_size, page_token=page_token
        )
        with _feed_errors():
            response: identity_pb.ListPersonOverridesResponse = self._stub.ListPersonOverrides(
                request, metadata=((TENANT_HEADER, tenant),), timeout=self._timeout
            )
        for override in response.person_overrides:
            # A defect in identity must stop this tenant's feed loudly, not be recorded or skipped.
            violations = override_violations(f"version {override.version}", override)
            if violations:
                raise FeedRefused(
                    "identity sent an override journeys cannot apply: "
                    + "; ".join(f"{v.field} {v.description}" for v in violations)
                )
        return FeedPage(
            tuple(override_from_pb(o) for o in response.person_overrides), response.next_page_token
        )

    def acknowledge(self, tenant: str, applied_version: int) -> None:
        request = identity_pb.AcknowledgePersonOverridesRequest(
            consumer=CONSUMER, applied_version=applied_version
        )
        with _feed_errors():
            self._stub.AcknowledgePersonOverrides(
                request, metadata=((TENANT_HEADER, tenant),), timeout=self._timeout
            )

    def close(self) -> None:
        self._channel.close()


@contextmanager
def _feed_errors() -> Iterator[None]:
    try:
        yield
    except grpc.RpcError as error:
        message = f"{error.code().name}: {error.details()}"
        if error.code() in _UNREACHABLE:
            raise FeedUnavailable(message) from error
        raise FeedRefused(message) from error
    except ChannelClosed as error:
        raise FeedUnavailable("the channel to identity is closed (the follower stops)") from error
