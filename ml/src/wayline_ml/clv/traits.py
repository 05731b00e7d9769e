"""The predictions as person traits: one identify event per person, sent through ingest like any other
event, so that identity links nothing new (the event carries one identifier the person already holds) and
journeys makes each trait a person property that segments, flow branches, features and decisions read.

Idempotent by construction: a fit is named by its inputs (`FitKey`: the traits' prefix, the currency, the
range and population read, the model), each event's id is a UUIDv5 of that name and the person, and its
timestamp is the fit's as-of time. A retry or a re-run of the same fit sends the very same events, which
ingest's window and the journey store's key deduplicate; a new fit (a later as-of) gets new ids, and its
later timestamp makes its traits the latest ones.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata

from wayline.client import Client, identify_event
from wayline.event.v1 import event_pb2
from wayline_ml.clv.model import ClvModel, ClvPredictions
from wayline_ml.clv.store import SummaryQuery

__all__ = ["FitKey", "TraitsWritten", "identify_events", "trait_names", "trait_values", "write_traits"]

_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_OID, "wayline.ml.clv")
_LIBRARY = "wayline-ml-clv"


def _version() -> str:
    try:
        return metadata.version("wayline-ml")
    except metadata.PackageNotFoundError:
        return "0"


@dataclass(frozen=True)
class FitKey:
    """Everything that decides which fit a prediction belongs to."""

    query: SummaryQuery
    model: str
    prefix: str = "clv"
    horizons: tuple[int, ...] = (90, 365)

    @property
    def text(self) -> str:
        q = self.query
        return "|".join(
            (
                self.prefix,
                self.model,
                q.currency,
                q.as_of.isoformat(),
                q.since.isoformat() if q.since else "",
                ",".join(sorted(q.segments)),
                ",".join(sorted(q.purchase_event_names)),
                ",".join(map(str, self.horizons)),
            )
        )

    @property
    def fit_id(self) -> str:
        """A short name of the fit, written as a trait so that a segment can ask for one fit's values."""
        return hashlib.sha256(self.text.encode()).hexdigest()[:16]

    def event_id(self, person_id: str) -> str:
        return str(uuid.uuid5(_NAMESPACE, f"{self.text}|{person_id}"))


def trait_names(prefix: str, horizons: Sequence[int]) -> list[str]:
    """The traits one fit writes, in the order of `trait_values`."""
    names = [f"{prefix}_expected_purchases_{h}d" for h in horizons]
    names += [f"{prefix}_expected_value_{h}d" for h in horizons]
    suffixes = ("probability_alive", "expected_order_value", "currency", "model", "fit", "as_of")
    return names + [f"{prefix}_{suffix}" for suffix in suffixes]


def trait_values(key: FitKey, model: ClvModel, predictions: ClvPredictions, index: int) -> dict[str, object]:
    """Customer `index`'s traits. Purchases and probabilities to 4 decimals, money to the cent: the traits
    are for comparisons in segments and branches, and fixed rounding keeps a re-sent event byte-identical."""
    p = key.prefix
    traits: dict[str, object] = {}
    for h in key.horizons:
        traits[f"{p}_expected_purchases_{h}d"] = round(float(predictions.expected_purchases[h][index]), 4)
    for h in key.horizons:
        traits[f"{p}_expected_value_{h}d"] = round(float(predictions.expected_value[h][index]), 2)
    traits[f"{p}_probability_alive"] = round(float(predictions.probability_alive[index]), 4)
    traits[f"{p}_expected_order_value"] = round(float(predictions.expected_order_value[index]), 2)
    traits[f"{p}_currency"] = key.query.currency
    traits[f"{p}_model"] = model.model
    traits[f"{p}_fit"] = key.fit_id
    traits[f"{p}_as_of"] = key.query.as_of.isoformat()
    return traits


def identify_events(
    key: FitKey,
    model: ClvModel,
    predictions: ClvPredictions,
    person_ids: Sequence[str],
    identifiers: Mapping[str, event_pb2.Identifier],
) -> list[event_pb2.Event]:
    """One identify event per person with an identifier, timestamped at the fit's as-of time."""
    context = event_pb2.EventContext(library=event_pb2.Library(name=_LIBRARY, version=_version()))
    events = []
    for index, person in enumerate(person_ids):
        identifier = identifiers.get(person)
        if identifier is None:
            continue
        events.append(
            identify_event(
                identifiers=[identifier],
                channel=event_pb2.CHANNEL_OTHER,
                traits=trait_values(key, model, predictions, index),
                timestamp=key.query.as_of,
                context=context,
                event_id=key.event_id(person),
            )
        )
    return events


@dataclass(frozen=True)
class TraitsWritten:
    sent: int
    accepted: int
    rejected: int
    rejections: tuple[str, ...]
    """The first few rejections, as `event_id: field: description`."""


def write_traits(
    client: Client,
    events: Sequence[event_pb2.Event],
    batch_size: int = 500,
    progress: Callable[[int], None] | None = None,
) -> TraitsWritten:
    """Send `events` in acknowledged batches (the client retries each with the same ids)."""
    accepted = rejected = 0
    rejections: list[str] = []
    for start in range(0, len(events), batch_size):
        batch = events[start : start + batch_size]
        response = client.send(batch)
        accepted += response.accepted_count
        rejected += len(response.rejections)
        for rejection in response.rejections[: max(0, 5 - len(rejections))]:
            why = "; ".join(f"{v.field}: {v.description}" for v in rejection.violations)
            rejections.append(f"{rejection.event_id}: {why}")
        if progress is not None:
            progress(len(batch))
    return TraitsWritten(sent=len(events), accepted=accepted, rejected=rejected, rejections=tuple(rejections))
