"""The model package's manifest, `manifest.json`, as a pydantic model: parsing it is validating its shape, and
a bad field fails with its path (`features.2.type: …`).

It tells a loader everything it needs without reading the ONNX files: the feature schema in input order
(name, value type, missing-value encoding, category labels), the action list and how actions are encoded
(a one-hot after the features), each model file with its input and outputs (name, dtype, shape, meaning),
how the policy combines them, the training window, the evaluation's metrics, the parity each file passed,
the sha256 of every other file, the ONNX opsets and the library versions that produced it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "MANIFEST_FILE",
    "FeatureEntry",
    "Manifest",
    "ModelEntry",
    "ParityEntry",
    "TensorSpec",
    "TrainingWindow",
]

MANIFEST_FILE = "manifest.json"
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
VERSION_PATTERN = r"^[0-9A-Za-z][0-9A-Za-z._+-]{0,63}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FeatureEntry(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    type: Literal["float", "int", "bool", "category"]
    missing: Literal["nan"] = "nan"  # every type: NaN in the float32 input means missing
    categories: list[str] = Field(default_factory=list)  # labels of codes 0..n-1, category only


class TensorSpec(_Strict):
    name: str
    dtype: Literal["float32", "int64"]
    shape: list[int | None]  # None = any size (the batch)
    meaning: str


class ParityEntry(_Strict):
    rows: int = Field(gt=0)
    output: str
    max_abs_diff: float
    tolerance: float
    rule: Literal["absolute", "relative to max(1, mean |value|)"]


class ModelEntry(_Strict):
    role: Literal["response", "value"]
    file: str = Field(pattern=r"^[a-z_]+\.onnx$")
    input: TensorSpec
    outputs: list[TensorSpec] = Field(min_length=1)
    parity: ParityEntry


class TrainingWindow(_Strict):
    train_from: datetime
    train_to: datetime
    holdout_from: datetime
    holdout_to: datetime


class Manifest(_Strict):
    format_version: Literal[1] = 1
    name: str = Field(pattern=NAME_PATTERN)
    version: str = Field(pattern=VERSION_PATTERN)
    created_at: datetime
    features: list[FeatureEntry] = Field(min_length=1)
    actions: list[str] = Field(min_length=2)
    action_encoding: Literal["one_hot_after_features"] = "one_hot_after_features"
    models: list[ModelEntry] = Field(min_length=1)
    policy: str
    training_window: TrainingWindow
    metrics: dict[str, float]
    files: dict[str, str]  # every file but the manifest → its sha256 (hex)
    onnx_opsets: dict[str, int]
    libraries: dict[str, str]

    @property
    def input_width(self) -> int:
        return len(self.features) + len(self.actions)

    @model_validator(mode="after")
    def _consistent(self) -> Manifest:
        names = [feature.name for feature in self.features]
        if len(set(names)) != len(names):
            raise ValueError(f"features: names repeat in {names}")
        if len(set(self.actions)) != len(self.actions):
            raise ValueError(f"actions: names repeat in {self.actions}")
        for entry in self.models:
            if entry.file not in self.files:
                raise ValueError(f"models: {entry.file} is not listed in files")
            if entry.input.shape != [None, self.input_width]:
                raise ValueError(
                    f"models.{entry.role}.input.shape: {entry.input.shape} is not [None, {self.input_width}] "
                    f"({len(self.features)} features + {len(self.actions)} actions)"
                )
        for file, digest in self.files.items():
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise ValueError(f"files.{file}: {digest!r} is not a lower-case hex sha256")
        return self
