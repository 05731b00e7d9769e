"""A generated population as Parquet files, for bulk use (training sets, benchmarks) without the API:
`events.parquet`, `people.parquet` (the latent traits) and `decisions.parquet` (the decision log).

Identifiers are written as the API would see them (user id, anonymous id, noisy email), but nothing here
goes through ingest or identity: the files are the generator's truth, not the store's view of it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import NDArray

from wayline_ml.generator.events import uuid_strings
from wayline_ml.generator.identifiers import anonymous_ids, emails, user_ids
from wayline_ml.generator.population import Population
from wayline_ml.generator.protos import CURRENCY
from wayline_ml.generator.texts import TEXT_FRENCH, TEXT_POSITIVE, TEXTS
from wayline_ml.generator.vocabulary import ACTIONS, CHANNELS, KINDS, SEGMENTS, STAGES

__all__ = ["decisions_table", "events_table", "people_table", "write_parquet"]

UTC_US = pa.timestamp("us", tz="UTC")


def _labels(codes: NDArray[np.integer], labels: tuple[str, ...]) -> pa.DictionaryArray:
    """Codes as a dictionary-encoded string column; negative codes are null."""
    indices = pa.array(codes.astype(np.int32), mask=codes < 0)
    return pa.DictionaryArray.from_arrays(indices, pa.array(labels, pa.string()))


def _masked(
    values: NDArray[np.generic], mask: NDArray[np.bool_], kind: pa.DataType | None = None
) -> pa.Array:
    return pa.array(values, type=kind, mask=mask)


def events_table(population: Population) -> pa.Table:
    e, prefix = population.events, population.config.prefix
    text = np.maximum(e.text, 0)
    no_text = e.text < 0
    return pa.table(
        {
            "event_id": pa.array(uuid_strings(e.event_id), pa.string()),
            "person": e.person,
            "anonymous_id": _masked(
                anonymous_ids(prefix, np.maximum(e.device, 0)), e.device < 0, pa.string()
            ),
            "user_id": _masked(user_ids(prefix, e.person), ~e.identified, pa.string()),
            "email": _masked(emails(prefix, e.person, e.email_variant), e.email_variant < 0, pa.string()),
            "call": _labels(e.kind, tuple(k.call for k in KINDS)),
            "name": _labels(e.kind, tuple(k.name for k in KINDS)),
            "channel": _labels(e.channel, CHANNELS),
            "timestamp": pa.array(e.time_us, UTC_US),
            "session": _masked(e.session, e.session < 0),
            "stage": _labels(e.stage, STAGES),
            "sku": _masked(e.sku, e.sku < 0),
            "price": _masked(e.price, np.isnan(e.price)),
            "cart_value": _masked(e.cart_value, np.isnan(e.cart_value)),
            "revenue": _masked(e.revenue, np.isnan(e.revenue)),
            "currency": _masked(np.full(len(e), CURRENCY), np.isnan(e.revenue), pa.string()),
            "text": _labels(e.text, TEXTS),
            "text_french": _masked(TEXT_FRENCH[text], no_text),
            "text_positive": _masked(TEXT_POSITIVE[text], no_text),
            "action": _labels(e.action, ACTIONS),
            "decision": _masked(e.decision, e.decision < 0),
        }
    )


def people_table(population: Population) -> pa.Table:
    p = population.people
    index = np.arange(len(p), dtype=np.int64)
    return pa.table(
        {
            "person": index,
            "user_id": user_ids(population.config.prefix, index),
            "segment": _labels(p.segment, SEGMENTS),
            "locale": np.where(p.french, "fr-FR", "en-GB"),
            "price_sensitivity": p.price_sensitivity,
            "value_tier": p.value_tier,
            "app_affinity": p.app_affinity,
            "email_affinity": p.email_affinity,
            "satisfaction": p.satisfaction,
            "activity": p.activity,
            "devices": p.n_devices,
            "app_devices": np.add.reduceat(p.device_app.astype(np.int8), p.device_start),
            "sessions": population.schedule.count,
            "final_stage": _labels(population.final_stage, STAGES),
        }
    )


def decisions_table(population: Population) -> pa.Table:
    d = population.decisions
    columns: dict[str, pa.Array | NDArray[np.generic]] = {
        "decision": np.arange(len(d), dtype=np.int64),
        "person": d.person,
        "time": pa.array(d.time_us, UTC_US),
        "session": d.session,
        "had_cart": d.had_cart,
        "cart_value": d.cart_value,
        "amount": d.amount,
        "action": _labels(d.action, ACTIONS),
        "propensity": d.propensity,
        "converted": d.converted,
        "value": d.value,
    }
    for index, action in enumerate(ACTIONS):  # wide, one column per action: easy to read in any tool
        columns[f"eligible_{action}"] = d.eligible[:, index]
        columns[f"propensity_{action}"] = d.propensities[:, index]
        columns[f"p_convert_{action}"] = d.p_convert[:, index]
        columns[f"value_{action}"] = d.true_value[:, index]
    return pa.table(columns)


def write_parquet(population: Population, directory: Path) -> dict[str, Path]:
    """Write the three tables into `directory` (created if needed); returns their paths by table name."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, table in (
        ("events", events_table(population)),
        ("people", people_table(population)),
        ("decisions", decisions_table(population)),
    ):
        paths[name] = directory / f"{name}.parquet"
        # A file object, not the path: pyarrow reads a new path as a URI (`a:b/events.parquet` has a scheme).
        with paths[name].open("wb") as file:
            pq.write_table(table, file)
    return paths
