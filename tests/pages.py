"""Reading a list RPC to its end, as a caller does: following `next_page_token` from an empty one, each page
held to the size a gRPC client receives by default (wayline.common.response_size)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

from wayline.common.response_size import RESPONSE_BUDGET_BYTES

__all__ = ["every_page"]


class _Page(Protocol):
    @property
    def next_page_token(self) -> str: ...

    def ByteSize(self) -> int: ...


Page = TypeVar("Page", bound=_Page)


def every_page(list_page: Callable[[str], Page]) -> list[Page]:
    """Every page `list_page(token)` answers, the first with an empty token; each within the budget."""
    pages, token = [], ""
    while True:
        page = list_page(token)
        assert page.ByteSize() <= RESPONSE_BUDGET_BYTES
        pages.append(page)
        token = page.next_page_token
        if not token:
            return pages
