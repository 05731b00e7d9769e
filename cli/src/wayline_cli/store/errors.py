"""The one error of `wayline store`: something the operator must fix, said in a sentence."""

from __future__ import annotations

__all__ = ["StoreCopyError"]


class StoreCopyError(RuntimeError):
    """An export or import that cannot go on (a store in use, a corrupt file, a non-empty target, ...); the
    command prints the message and exits non-zero."""
