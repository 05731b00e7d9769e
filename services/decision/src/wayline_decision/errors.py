"""Errors of the decision service, each mapped once to its status code and ErrorInfo reason by the kit."""

from __future__ import annotations

from collections.abc import Sequence

from wayline.common.errors import (
    Aborted,
    AlreadyExists,
    DeadlineExceeded,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
)
from wayline.common.paging import InvalidPageToken

__all__ = [
    "ActionExists",
    "ActionInvalid",
    "ActionNotFound",
    "ActionStoreUnavailable",
    "CatalogueUnavailable",
    "DecideDeadlineExceeded",
    "DecideRequestInvalid",
    "EtagMismatch",
    "HoldoutConfigInvalid",
    "HoldoutEtagMismatch",
    "HoldoutStoreUnavailable",
    "IdentityUnavailable",
    "InvalidPageToken",
    "MalformedUpload",
    "ModelNotFound",
    "ModelVersionExists",
    "NoModelDeployed",
    "PackageInvalid",
    "PackageTooLarge",
    "RegistryUnavailable",
]


class PackageInvalid(InvalidArgument):
    """A model package fails validation; each field violation names the file (and the place in it) and the
    problem, for example `response.onnx:input` or `manifest.json:feature_spec.features[2].name`."""

    default_reason = "PACKAGE_INVALID"

    def __init__(self, violations: Sequence[FieldViolation]) -> None:
        first = violations[0] if violations else FieldViolation("", "invalid")
        more = f" (and {len(violations) - 1} more problems)" if len(violations) > 1 else ""
        super().__init__(
            f"the model package is invalid: {first.field}: {first.description}{more}", violations
        )


class MalformedUpload(InvalidArgument):
    """An UploadModelVersion stream that breaks the protocol: no header first, a second header, a file name
    that is not a plain name, a file sent twice or not in one run, a header that does not match the
    manifest."""

    default_reason = "UPLOAD_MALFORMED"

    def __init__(self, field: str, description: str) -> None:
        super().__init__(
            f"the upload stream is malformed: {field}: {description}", [FieldViolation(field, description)]
        )


class PackageTooLarge(ResourceExhausted):
    """A package larger than the service's limit; a smaller package helps, retrying does not."""

    default_reason = "PACKAGE_TOO_LARGE"

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"the model package is larger than this service accepts ({size:,} bytes or more; the limit is "
            f"{limit:,} bytes, WAYLINE_DECISION_MAX_PACKAGE_BYTES)",
            quota_subject="max_package_bytes",
            metadata={"limit_bytes": str(limit)},
        )


class ModelVersionExists(AlreadyExists):
    """The version is registered with other content: packages are immutable, so a change is a new version."""

    default_reason = "MODEL_VERSION_EXISTS"

    def __init__(self, model_id: str, version: str) -> None:
        super().__init__(
            f"models/{model_id}/versions/{version} is registered with different content; packages are "
            "immutable: push the change as a new version",
            metadata={"model": f"models/{model_id}", "version": version},
        )


class ModelNotFound(NotFound):
    default_reason = "MODEL_NOT_FOUND"

    def __init__(self, name: str) -> None:
        super().__init__(f"{name} does not exist", metadata={"model": name})


class RegistryUnavailable(Unavailable):
    """The registry's storage cannot be read or written (a full or unmounted volume): retryable."""

    default_reason = "REGISTRY_UNAVAILABLE"

    def __init__(self, message: str) -> None:
        super().__init__(message, retry_after=1.0)


class ActionInvalid(InvalidArgument):
    """An action (or its id, or an update's mask) that breaks the catalogue's rules; one violation each."""

    default_reason = "ACTION_INVALID"

    def __init__(self, violations: Sequence[FieldViolation]) -> None:
        first = violations[0]
        more = f" (and {len(violations) - 1} more problems)" if len(violations) > 1 else ""
        super().__init__(f"the action is invalid: {first.field}: {first.description}{more}", violations)


class ActionExists(AlreadyExists):
    """The id is taken in the tenant's catalogue (archived actions keep theirs)."""

    default_reason = "ACTION_EXISTS"

    def __init__(self, action_id: str) -> None:
        super().__init__(
            f"actions/{action_id} exists (it may be archived: UpdateAction can make it active again)",
            metadata={"action": f"actions/{action_id}"},
        )


class ActionNotFound(NotFound):
    default_reason = "ACTION_NOT_FOUND"

    def __init__(self, action_id: str) -> None:
        super().__init__(f"actions/{action_id} does not exist", metadata={"action": f"actions/{action_id}"})


class EtagMismatch(Aborted):
    """The action changed since the caller read it: read it again and reapply the change."""

    default_reason = "ETAG_MISMATCH"

    def __init__(self, action_id: str) -> None:
        super().__init__(
            f"actions/{action_id} changed since it was read (the etag does not match); read it again",
            metadata={"action": f"actions/{action_id}"},
        )


class ActionStoreUnavailable(Unavailable):
    """The catalogue's database cannot be reached: retryable."""

    default_reason = "ACTION_STORE_UNAVAILABLE"

    def __init__(self) -> None:
        super().__init__(
            "the action catalogue's database cannot be reached; retry with backoff", retry_after=1.0
        )


class DecideRequestInvalid(InvalidArgument):
    """A Decide request that breaks the contract (no person, no channel, max_actions out of range, a
    malformed or duplicate candidate); one violation per problem."""

    default_reason = "DECIDE_REQUEST_INVALID"

    def __init__(self, violations: Sequence[FieldViolation]) -> None:
        first = violations[0]
        more = f" (and {len(violations) - 1} more problems)" if len(violations) > 1 else ""
        super().__init__(
            f"the decide request is invalid: {first.field}: {first.description}{more}", violations
        )


class NoModelDeployed(FailedPrecondition):
    """No deployed model serves the channel and placement: deploy one (DeployModel) or name one."""

    default_reason = "NO_MODEL_DEPLOYED"

    def __init__(self, channel: str, placement: str) -> None:
        where = f"{channel} and placement {placement!r}" if placement else channel
        super().__init__(
            f"no deployed model serves {where}; deploy one (wayline models deploy) or name one in `model`",
            metadata={"channel": channel, "placement": placement},
        )


class DecideDeadlineExceeded(DeadlineExceeded):
    """The caller's deadline leaves no time to decide (or passed while deciding)."""

    default_reason = "DEADLINE_EXCEEDED"

    def __init__(self, stage: str) -> None:
        super().__init__(f"the deadline passed {stage}; give Decide a longer deadline (a few milliseconds)")


class IdentityUnavailable(Unavailable):
    """The identity service did not resolve the request's identifier in time: retryable."""

    default_reason = "IDENTITY_UNAVAILABLE"

    def __init__(self, why: str) -> None:
        super().__init__(
            f"the person's identifier could not be resolved: {why}; retry, or decide by person id",
            retry_after=0.2,
        )


class CatalogueUnavailable(Unavailable):
    """The action catalogue could not be read and no earlier copy is cached: retryable."""

    default_reason = "ACTION_STORE_UNAVAILABLE"

    def __init__(self) -> None:
        super().__init__(
            "the action catalogue cannot be read (and no recent copy is cached); retry with backoff",
            retry_after=0.5,
        )


class HoldoutConfigInvalid(InvalidArgument):
    """A holdout config (or an update's mask) that breaks the contract; one violation each."""

    default_reason = "HOLDOUT_CONFIG_INVALID"

    def __init__(self, violations: Sequence[FieldViolation]) -> None:
        first = violations[0]
        more = f" (and {len(violations) - 1} more problems)" if len(violations) > 1 else ""
        super().__init__(
            f"the holdout config is invalid: {first.field}: {first.description}{more}", violations
        )


class HoldoutEtagMismatch(Aborted):
    """The holdout config changed since the caller read it: read it again and reapply the change."""

    default_reason = "ETAG_MISMATCH"

    def __init__(self) -> None:
        super().__init__(
            "the holdout config changed since it was read (the etag does not match); read it again"
        )


class HoldoutStoreUnavailable(Unavailable):
    """The holdout configs' database cannot be reached: retryable."""

    default_reason = "HOLDOUT_STORE_UNAVAILABLE"

    def __init__(self) -> None:
        super().__init__(
            "the holdout configs' database cannot be reached; retry with backoff", retry_after=1.0
        )
