"""Training tables on disk: `.npz` (numpy's zip of arrays) or Parquet, chosen by the file's suffix.

Both carry the same content. The per-row columns keep their names (`person_id`, `decision_time_us`, `action`,
`propensity`, `converted`, `value`); the feature spec and the action list travel as JSON (`{"feature_spec":
<the FeatureSpec's proto3 JSON>, "actions": [...]}`) — in `.npz` as the 0-d string array `schema_json`, in
Parquet as the file schema's metadata key `wayline.training_table`. The feature matrix is the float32 array
`features` in `.npz` and one float32 column per feature, named after it, in Parquet (so other tools read it as
a plain table). NaN is missing in both."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from wayline_ml.feature_spec import spec_from_json, spec_json
from wayline_ml.training_table import FeatureSchema, TrainingTable, TrainingTableError

__all__ = ["TABLE_SUFFIXES", "read_table", "write_table"]

TABLE_SUFFIXES = (".npz", ".parquet")

_METADATA_KEY = b"wayline.training_table"
_ROW_COLUMNS = ("person_id", "decision_time_us", "action", "propensity", "converted", "value")
_DTYPES: dict[str, Any] = {
    "person_id": np.str_,
    "decision_time_us": np.int64,
    "action": np.str_,
    "propensity": np.float64,
    "converted": np.int8,
    "value": np.float64,
}


def write_table(table: TrainingTable, path: Path) -> None:
    """Write a validated table to `path` (`.npz` or `.parquet`)."""
    table.validate()
    header = json.dumps(_header(table))
    if path.suffix == ".npz":
        rows = {column: getattr(table, column) for column in _ROW_COLUMNS}
        np.savez_compressed(path, features=table.features, schema_json=np.array(header), **rows)
    elif path.suffix == ".parquet":
        columns = {name: table.features[:, i] for i, name in enumerate(table.schema.names)}
        columns.update({column: getattr(table, column) for column in _ROW_COLUMNS})
        arrow = pa.table(columns).replace_schema_metadata({_METADATA_KEY: header.encode()})
        # A file object: pyarrow reads a new path's text as a URI (`a:b/t.parquet` has a scheme).
        with path.open("wb") as file:
            pq.write_table(arrow, file)
    else:
        raise TrainingTableError(f"{path}: a training table is a .npz or .parquet file")


def read_table(path: Path) -> TrainingTable:
    """Read and validate a table written by `write_table` (or by anything that follows the format)."""
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as arrays:
            header = json.loads(str(arrays["schema_json"]))
            features = arrays["features"]
            rows = {column: arrays[column] for column in _ROW_COLUMNS}
    elif path.suffix == ".parquet":
        arrow = pq.read_table(path)
        metadata = arrow.schema.metadata or {}
        if _METADATA_KEY not in metadata:
            raise TrainingTableError(f"{path}: no {_METADATA_KEY.decode()} metadata; not a training table")
        header = json.loads(metadata[_METADATA_KEY])
        names = list(_schema(header).names)
        features = np.column_stack(
            [arrow.column(name).to_numpy().astype(np.float32) for name in names]
        ).reshape(arrow.num_rows, len(names))
        rows = {column: arrow.column(column).to_numpy() for column in _ROW_COLUMNS}
    else:
        raise TrainingTableError(f"{path}: a training table is a .npz or .parquet file")
    typed = {column: np.asarray(values).astype(_DTYPES[column]) for column, values in rows.items()}
    return TrainingTable(
        schema=_schema(header), actions=tuple(header["actions"]), features=features, **typed
    ).validate()


def _header(table: TrainingTable) -> dict[str, object]:
    return {"feature_spec": json.loads(spec_json(table.schema.spec)), "actions": list(table.actions)}


def _schema(header: dict[str, Any]) -> FeatureSchema:
    if "feature_spec" not in header:
        raise TrainingTableError("the table's header has no feature_spec; write it again with this version")
    return FeatureSchema(spec_from_json(json.dumps(header["feature_spec"])))
