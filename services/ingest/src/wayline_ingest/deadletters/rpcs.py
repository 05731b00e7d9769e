"""The dead-letter RPCs of IngestService: convert the request, call the store, convert back.

The ingest servicer delegates ListDeadLetters, ReplayDeadLetters and DeletePersonDeadLetters here one to one.
The tenant always comes from the authenticated call (`require_tenant()`), never from the request, so a
caller only ever sees and changes its own dead letters. A store or spool that cannot be reached becomes
UNAVAILABLE (retryable), as the contract promises, instead of INTERNAL.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import grpc

from wayline.common.context import require_tenant
from wayline.common.errors import FieldViolation, Unavailable
from wayline.common.paging import page_size
from wayline.common.response_size import fitting
from wayline.common.sql import DATABASE_DOWN
from wayline.ingest.v1 import ingest_service_pb2 as pb
from wayline_ingest.deadletters.converters import (
    dead_letter_to_proto,
    filter_from_proto,
    id_from_name,
    identifiers_from_proto,
)
from wayline_ingest.deadletters.model import MAX_REPLAY_NAMES, DeadLetterFilter, InvalidDeadLetterRequest
from wayline_ingest.deadletters.store import DeadLetters, page_token_after
from wayline_ingest.spool import SpoolClosed, SpoolFull

__all__ = ["DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "DeadLetterRpcs"]

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
_RETRY_AFTER_SECONDS = 1.0


class StoreUnavailable(Unavailable):
    default_reason = "DEAD_LETTER_STORE_UNAVAILABLE"


class SpoolUnavailable(Unavailable):
    default_reason = "SPOOL_UNAVAILABLE"


@contextmanager
def _backends_unavailable() -> Iterator[None]:
    """Map a database or spool outage to UNAVAILABLE; anything else stays a defect (INTERNAL)."""
    try:
        yield
    except DATABASE_DOWN as exc:
        raise StoreUnavailable(
            "the dead-letter store cannot be reached; retry", retry_after=_RETRY_AFTER_SECONDS
        ) from exc
    except (SpoolFull, SpoolClosed, OSError) as exc:
        raise SpoolUnavailable(
            "the spool cannot be written; nothing more was replayed, retry", retry_after=_RETRY_AFTER_SECONDS
        ) from exc


def _page_size(requested: int) -> int:
    return page_size(
        requested,
        default=DEFAULT_PAGE_SIZE,
        maximum=MAX_PAGE_SIZE,
        error=InvalidDeadLetterRequest,
        violation=FieldViolation("page_size", "must be 0 or more"),
    )


class DeadLetterRpcs:
    def __init__(self, dead_letters: DeadLetters) -> None:
        self._dead_letters = dead_letters

    def ListDeadLetters(  # noqa: N802
        self, request: pb.ListDeadLettersRequest, context: grpc.ServicerContext | None
    ) -> pb.ListDeadLettersResponse:
        tenant = require_tenant()
        page_size = _page_size(request.page_size)
        dead_letter_filter = (
            filter_from_proto(request.filter) if request.HasField("filter") else DeadLetterFilter()
        )
        with _backends_unavailable():
            page = self._dead_letters.list(tenant, dead_letter_filter, page_size, request.page_token)
        # Each letter holds its event twice (parsed and raw): 1,000 of 25 KB were 50 MB. The page ends at
        # about 3 MB, what a client receives.
        letters = [dead_letter_to_proto(record) for record in page.dead_letters]
        kept = fitting(letters)
        token = page.next_page_token
        if kept < len(letters):
            token = page_token_after(page.dead_letters[kept - 1], dead_letter_filter)
        return pb.ListDeadLettersResponse(
            dead_letters=letters[:kept], next_page_token=token, total_size=min(page.total_size, 2**31 - 1)
        )

    def ReplayDeadLetters(  # noqa: N802
        self, request: pb.ReplayDeadLettersRequest, context: grpc.ServicerContext | None
    ) -> pb.ReplayDeadLettersResponse:
        tenant = require_tenant()
        has_filter = request.HasField("filter")
        if bool(request.names) == has_filter:
            raise InvalidDeadLetterRequest(
                "set exactly one of names and filter",
                [
                    FieldViolation("names", "set either names or filter", reason="NAMES_OR_FILTER"),
                    FieldViolation("filter", "set either names or filter", reason="NAMES_OR_FILTER"),
                ],
            )
        if len(request.names) > MAX_REPLAY_NAMES:
            raise InvalidDeadLetterRequest(
                f"at most {MAX_REPLAY_NAMES} names per call; replay by filter for more",
                [FieldViolation("names", f"more than {MAX_REPLAY_NAMES} names", reason="TOO_MANY_NAMES")],
            )
        with _backends_unavailable():
            if has_filter:
                count = self._dead_letters.replay(
                    tenant,
                    dead_letter_filter=filter_from_proto(request.filter),
                    validate_only=request.validate_only,
                )
            else:
                ids = [id_from_name(name, f"names[{i}]") for i, name in enumerate(request.names)]
                count = self._dead_letters.replay(tenant, ids=ids, validate_only=request.validate_only)
        return pb.ReplayDeadLettersResponse(replayed_count=count)

    def DeletePersonDeadLetters(  # noqa: N802
        self, request: pb.DeletePersonDeadLettersRequest, context: grpc.ServicerContext | None
    ) -> pb.DeletePersonDeadLettersResponse:
        tenant = require_tenant()
        identifiers = identifiers_from_proto(request.identifiers)
        with _backends_unavailable():
            deleted = self._dead_letters.delete_person(tenant, request.person_id, identifiers)
        return pb.DeletePersonDeadLettersResponse(deleted_count=deleted)
