"""The feature spec that ships with wayline_ml (specs/next_best_offer.yaml) is what its comments say: it
loads and passes both services' checks, and its lifecycle-stage feature carries the built-in default model
exactly (so a model trained on it sees the stages GetLifecycleStages gives a tenant without its own model)."""

from __future__ import annotations

from wayline.journeys.v1 import feature_pb2
from wayline_decision.features.model import Aggregation
from wayline_decision.features.spec_compiler import compile_spec
from wayline_journeys.lifecycle_converters import BUILT_IN_MODEL
from wayline_ml.feature_spec import default_spec


def test_the_shipped_spec_compiles_and_its_stage_model_is_the_built_in_default() -> None:
    spec = default_spec()
    compiled = compile_spec(spec)  # raises InvalidArgument on any violation
    assert [f.name for f in compiled.features] == [f.name for f in spec.features]
    (stage,) = [f for f in spec.features if f.aggregation == feature_pb2.FEATURE_AGGREGATION_LIFECYCLE_STAGE]
    assert list(stage.lifecycle_model.stages) == list(BUILT_IN_MODEL.stages)
    assert stage.value_type == feature_pb2.FEATURE_VALUE_TYPE_INT
    assert sum(f.aggregation is Aggregation.LIFECYCLE_STAGE for f in compiled.features) == 1
