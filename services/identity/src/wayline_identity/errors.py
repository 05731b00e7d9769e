"""Identity's typed errors; the kit's interceptor maps each to its status code and ErrorInfo reason."""

from __future__ import annotations

from wayline.common.errors import FailedPrecondition, NotFound

__all__ = ["LastIdentifier", "MergeConflict", "MergeNotFound", "MergeNotRevertible", "ProfileNotFound"]


class ProfileNotFound(NotFound):
    default_reason = "PROFILE_NOT_FOUND"


class MergeNotFound(NotFound):
    default_reason = "MERGE_NOT_FOUND"


class MergeConflict(FailedPrecondition):
    default_reason = "MERGE_CONFLICT"


class MergeNotRevertible(FailedPrecondition):
    default_reason = "MERGE_NOT_REVERTIBLE"


class LastIdentifier(FailedPrecondition):
    default_reason = "LAST_IDENTIFIER"
