"""A model version registered before feature specs' MATCHES_REGEX patterns were checked with RE2 (ADR 72) may
hold a pattern only Python's `re` accepted. It still loads, over a real directory registry and a real
database, with the online features registering its spec: the filter holds for no event, logged once per
pattern (`features.pattern_not_re2`), as for a spec the online state restores (ADR 78). UploadModelVersion
still refuses such a package (tests/decision/test_upload_model_version.py).

Before: loading checked the registered package again, compiled its spec as an upload does and failed
(MODEL_LOAD_FAILED), so a version that served before the check served nothing once a replica restarted:
Decide for the model answered an error on every call."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any, cast

from google.protobuf import struct_pb2

from tests.decision.model_packages import build_package, feature_spec
from tests.decision.serving.lifecycle_setup import lifecycle_over
from wayline.common.sql import SqliteDatabase
from wayline.journeys.v1 import analytics_pb2
from wayline_decision.features.service import OnlineFeatures
from wayline_decision.features.state import InProcessFeatureState
from wayline_decision.packages import package_digest, sha256_file
from wayline_decision.registry.directory import DirectoryRegistry
from wayline_decision.serving.traffic import DeployMode
from wayline_decision.validation import ValidPackage, read_manifest

TENANT = "acme"
MODEL = "next-best-offer"


def _register_as_before(registry: DirectoryRegistry, package: Path) -> None:
    """Register `package` as UploadModelVersion did before it compiled specs with RE2: the registry's own
    step, with the package as validation then let it through."""
    staging = registry.open_staging(TENANT, MODEL)
    for file in package.iterdir():
        shutil.copy(file, staging / file.name)
    digests = {entry.name: sha256_file(entry) for entry in staging.iterdir()}
    registry.register(TENANT, staging, ValidPackage(read_manifest(staging), digests, package_digest(digests)))


def _features() -> OnlineFeatures:
    return OnlineFeatures(
        lambda tenant: InProcessFeatureState(settle_after_us=1_000_000),
        cast(Any, None),  # journeys: not asked
        settle_after_us=1_000_000,
    )


def test_a_version_registered_before_the_re2_check_loads_and_serves(tmp_path: Path) -> None:
    spec = feature_spec()
    spec.features[0].events.event_name = "Order Completed"
    spec.features[0].events.property_filters.add(
        property="properties.plan",
        operator=analytics_pb2.FILTER_OPERATOR_MATCHES_REGEX,
        values=[struct_pb2.Value(string_value="^(?!free)")],  # a lookahead: `re` took it, RE2 refuses it
    )
    package = build_package(tmp_path / "package", model_id=MODEL, version="1", spec=spec)
    root, database = tmp_path / "registry", SqliteDatabase(tmp_path / "traffic.db")
    features = _features()
    setup = lifecycle_over(root, database, (features,))
    _register_as_before(setup.registry, package)

    # Loading registers the spec with the online features (a listener): the deploy fails if either fails.
    setup.lifecycle.deploy(TENANT, MODEL, "1", DeployMode.FULL, 0)  # was MODEL_LOAD_FAILED
    served = setup.server.deployment(TENANT, MODEL)
    assert served is not None
    assert [m.version for m in served.models()] == ["1"]

    # A replica started afterwards loads it too.
    restarted = lifecycle_over(root, database, (_features(),))
    deadline = time.monotonic() + 10
    while restarted.server.deployment(TENANT, MODEL) is None and time.monotonic() < deadline:
        restarted.lifecycle.sync()
    assert restarted.server.deployment(TENANT, MODEL) is not None
