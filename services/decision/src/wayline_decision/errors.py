"""Errors of the decision service, each mapped once to its status code and ErrorInfo reason by the kit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

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
    "DecisionNotFound",
    "DownstreamUnavailable",
    "EtagMismatch",
    "ExplanationUnavailable",
    "FeatureStateUnavailable",
    "FeedbackInvalid",
    "HoldoutConfigInvalid",
    "HoldoutEtagMismatch",
    "HoldoutStoreUnavailable",
    "IdentityUnavailable",
    "InferRequestInvalid",
    "InvalidPageToken",
    "MalformedUpload",
    "ModelLoadFailed",
    "ModelNotFound",
    "ModelNotLoaded",
    "ModelVersionExists",
    "ModelVersionNotFound",
    "NoModelDeployed",
    "NoPreviousVersion",
    "PackageInvalid",
    "PackageTooLarge",
    "PersonUnknown",
    "RegistryUnavailable",
    "ServedModelNotFound",
    "TrafficConflict",
    "TrafficInvalid",
    "TrafficStoreUnavailable",
    "UnknownFeedbackAction",
]


class _InvalidWithViolations(InvalidArgument):
    """A request refused for one or more field violations: the message names the first and counts the rest
    (every one is in the BadRequest details)."""

    subject: ClassVar[str]  # what was invalid, as the message starts: "the action"

    def __init__(self, violations: Sequence[FieldViolation]) -> None:
        first = violations[0]
        more = f" (and {len(violations) - 1} more problems)" if len(violations) > 1 else ""
        super().__init__(f"{self.subject} is invalid: {first.field}: {first.description}{more}", violations)


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


class ExplanationUnavailable(FailedPrecondition):
    """The model version cannot be explained: its package carries no node covers for the graph (made before
    packages had them, or by hand), or the graph is not a tree ensemble the explainer reads."""

    default_reason = "EXPLANATION_UNAVAILABLE"

    def __init__(self, model: str, version: str, why: str) -> None:
        super().__init__(
            f"model {model} version {version} cannot be explained: {why}",
            metadata={"model": model, "version": version},
        )


class RegistryUnavailable(Unavailable):
    """The registry's storage cannot be read or written (a full or unmounted volume): retryable."""

    default_reason = "REGISTRY_UNAVAILABLE"

    def __init__(self, message: str) -> None:
        super().__init__(message, retry_after=1.0)


class ActionInvalid(_InvalidWithViolations):
    """An action (or its id, or an update's mask) that breaks the catalogue's rules; one violation each."""

    default_reason = "ACTION_INVALID"
    subject = "the action"


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


class ModelVersionNotFound(NotFound):
    """A version the lifecycle was asked to route traffic to is not in the registry."""

    default_reason = "MODEL_VERSION_NOT_FOUND"

    def __init__(self, model_id: str, version: str) -> None:
        name = f"models/{model_id}/versions/{version}"
        super().__init__(
            f"{name} is not in the registry: push it first (wayline models push)",
            metadata={"model": f"models/{model_id}", "version": version},
        )


class TrafficInvalid(_InvalidWithViolations):
    """A traffic change that breaks the lifecycle's rules (a canary without a stable version, a percentage
    out of range...); one violation each."""

    default_reason = "TRAFFIC_INVALID"
    subject = "the traffic change"


class ModelLoadFailed(FailedPrecondition):
    """A version could not be loaded, checked or warmed up; the traffic was left as it was."""

    default_reason = "MODEL_LOAD_FAILED"

    def __init__(self, model_id: str, version: str, why: str) -> None:
        super().__init__(
            f"models/{model_id}/versions/{version} failed to load, so the traffic was not changed: {why}",
            metadata={"model": f"models/{model_id}", "version": version},
        )
        self.why = why


class NoPreviousVersion(FailedPrecondition):
    default_reason = "NO_PREVIOUS_VERSION"

    def __init__(self, model_id: str) -> None:
        super().__init__(
            f"models/{model_id} has no previous stable version to roll back to; name the version to roll "
            "back to",
            metadata={"model": f"models/{model_id}"},
        )


class NoModelDeployed(FailedPrecondition):
    """No deployed model of the tenant serves the channel and placement (or the named model is not
    deployed)."""

    default_reason = "NO_MODEL_DEPLOYED"

    def __init__(self, message: str) -> None:
        super().__init__(message)


class ModelNotLoaded(Unavailable):
    """The model is deployed but its version is not loaded on this replica (yet, or it failed to load here):
    another replica, or a retry once it has loaded, may serve."""

    default_reason = "MODEL_NOT_LOADED"

    def __init__(self, model_id: str, version: str) -> None:
        super().__init__(
            f"models/{model_id}/versions/{version} is deployed but not loaded on this replica; retry shortly",
            retry_after=1.0,
            metadata={"model": f"models/{model_id}", "version": version},
        )


class TrafficConflict(Aborted):
    """Other traffic changes of the model kept landing between this change's read and its write."""

    default_reason = "TRAFFIC_CONFLICT"

    def __init__(self, model_id: str) -> None:
        super().__init__(
            f"models/{model_id}'s traffic kept changing under this request; read it again and retry",
            metadata={"model": f"models/{model_id}"},
        )


class TrafficStoreUnavailable(Unavailable):
    """The traffic table's database cannot be reached: retryable."""

    default_reason = "TRAFFIC_STORE_UNAVAILABLE"

    def __init__(self) -> None:
        super().__init__("the model traffic database cannot be reached; retry with backoff", retry_after=1.0)


class ServedModelNotFound(NotFound):
    """A V2 inference call names a model or version this service does not serve."""

    default_reason = "MODEL_NOT_SERVED"

    def __init__(self, name: str, version: str) -> None:
        which = f"'{name}' version '{version}'" if version else f"'{name}'"
        super().__init__(
            f"{which} is not served: the inference endpoint serves each deployed model's loaded versions "
            "(stable, canary, shadow; an empty version is the stable one) as '{model_id}' (its response "
            "graph) and '{model_id}.value' (its value graph)",
            metadata={"model": name, "version": version},
        )


class InferRequestInvalid(_InvalidWithViolations):
    """A V2 inference request whose tensors do not fit the graph; one violation each."""

    default_reason = "INFER_REQUEST_INVALID"
    subject = "the inference request"


class FeatureStateUnavailable(Unavailable):
    """The shared online feature state (Redis) cannot be reached or refuses writes: retryable."""

    default_reason = "FEATURE_STATE_UNAVAILABLE"

    def __init__(self, problem: str) -> None:
        super().__init__(
            f"the online feature state (Redis) is unavailable: {problem}; retry with backoff", retry_after=1.0
        )


class DecisionNotFound(NotFound):
    """No trace of the decision: never made, made for another tenant, or older than the trace retention."""

    default_reason = "DECISION_NOT_FOUND"

    def __init__(self, decision_id: str) -> None:
        super().__init__(
            f"decision {decision_id!r} does not exist (or is older than the trace retention)",
            metadata={"decision_id": decision_id},
        )


class FeedbackInvalid(_InvalidWithViolations):
    """A Feedback request that breaks the contract; one violation each."""

    default_reason = "FEEDBACK_INVALID"
    subject = "the feedback"


class UnknownFeedbackAction(InvalidArgument):
    """Feedback about an action that was not among the decision's candidates."""

    default_reason = "UNKNOWN_ACTION"

    def __init__(self, decision_id: str, action_id: str, candidates: Sequence[str]) -> None:
        listed = ", ".join(candidates) or "none"
        super().__init__(
            f"action {action_id!r} was not a candidate of decision {decision_id!r} "
            f"(its candidates: {listed})",
            [FieldViolation("action_id", "not among the decision's candidates", "UNKNOWN_ACTION")],
            metadata={"decision_id": decision_id, "action_id": action_id},
        )


class PersonUnknown(FailedPrecondition):
    """The decision's person has no profile in identity (erased since), so no event of theirs can be
    written."""

    default_reason = "PERSON_UNKNOWN"

    def __init__(self, person_id: str) -> None:
        super().__init__(
            f"person {person_id!r} has no profile in identity (erased?); their events cannot be stored",
            metadata={"person_id": person_id},
        )


class DownstreamUnavailable(Unavailable):
    """A service this one calls (ingest, journeys, identity, the contact ledger) is down: retryable."""

    default_reason = "DOWNSTREAM_UNAVAILABLE"

    def __init__(self, service: str, detail: str) -> None:
        super().__init__(
            f"the {service} service is unavailable ({detail}); retry with backoff",
            retry_after=1.0,
            metadata={"service": service},
        )


class DecideRequestInvalid(_InvalidWithViolations):
    """A Decide request that breaks the contract (no person, no channel, max_actions out of range, a
    malformed or duplicate candidate); one violation per problem."""

    default_reason = "DECIDE_REQUEST_INVALID"
    subject = "the decide request"


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


class HoldoutConfigInvalid(_InvalidWithViolations):
    """A holdout config (or an update's mask) that breaks the contract; one violation each."""

    default_reason = "HOLDOUT_CONFIG_INVALID"
    subject = "the holdout config"


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
