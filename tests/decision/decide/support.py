"""What the Decide tests build on: a real model loaded from a package `wayline_ml` wrote, the pipeline over a
real SQLite catalogue and holdout store, and small implementations of the seams other parts of the
service fill (which model serves, the person's features as a FeatureRead the test states, a list of traces,
XGBoost's own TreeSHAP as the explainer)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import xgboost as xgb

from tests.decision.ml_package import ml_boosters, ml_package
from wayline.common.sql import Database, open_database
from wayline.decision.v1 import decision_pb2
from wayline_decision.actions import Action, ActionCatalogue, ActionStore
from wayline_decision.decide.candidates import CatalogueCache
from wayline_decision.decide.explanations import Explanation
from wayline_decision.decide.facts import FactSource, PersonResolver
from wayline_decision.decide.model import Candidate, DecideInput
from wayline_decision.decide.pipeline import Decider, DecideSources
from wayline_decision.fact_clients import GrpcFactSource, GrpcPersonResolver
from wayline_decision.features.model import FeatureValue
from wayline_decision.features.reader import FeatureOrigin, FeatureRead
from wayline_decision.holdouts import HoldoutConfig, Holdouts, HoldoutStore
from wayline_decision.packages import PackageId
from wayline_decision.registry import RegisteredVersion
from wayline_decision.serving.loaded import ServingModel, load_version
from wayline_decision.serving.route import Arm, Route
from wayline_decision.validation import ValidationLimits, read_manifest

ACTIONS = ("email_newsletter", "discount_10", "call_back", "push_reminder")
# price_sensitivity, value_tier, app_affinity, has_app, sessions_30d, noise_0
FEATURES: list[FeatureValue] = [0.9, "high", 0.2, True, 3.0, 0.0]
NOW_US = 1_780_000_000_000_000
TENANT = "acme"


def load_model(directory: Path, model_id: str = "offers", version: str = "1") -> ServingModel:
    ml_package(directory, model_id=model_id, version=version)
    manifest = read_manifest(directory)
    registered = RegisteredVersion(
        PackageId(manifest.model_id, manifest.version), manifest, "digest", datetime.now(UTC), str(directory)
    )
    return load_version(TENANT, registered, directory, ValidationLimits(max_parity_tolerance=1e-3))


@dataclass
class StaticRouter:
    """Routes every decision to one loaded model (the lifecycle's router is built elsewhere)."""

    model: ServingModel
    arm: Arm = Arm.STABLE
    shadow: ServingModel | None = None
    keys: list[str] = field(default_factory=list)

    def route(self, tenant: str, model_id: str | None, channel: int, placement: str, person_id: str) -> Route:
        self.keys.append(person_id)
        return Route(self.model, self.arm, self.shadow)


@dataclass
class StatedFeatures:
    """The features a test states, as the online state would have them."""

    values: list[FeatureValue] = field(default_factory=lambda: list(FEATURES))
    origin: FeatureOrigin = FeatureOrigin.ONLINE

    def read(self, model: ServingModel, person_id: str, as_of_us: int, budget_s: float) -> FeatureRead:
        return FeatureRead(list(self.values), self.origin)


@dataclass
class ListedTraces:
    traces: list[tuple[str, decision_pb2.Decision]] = field(default_factory=list)

    def record(self, tenant: str, trace: decision_pb2.Decision) -> None:
        self.traces.append((tenant, trace))


class BoosterShap:
    """XGBoost's exact TreeSHAP on the booster the response graph was exported from: one contribution per
    input column and the bias, in margin space."""

    def __init__(self) -> None:
        self._booster: xgb.Booster = ml_boosters().response

    def explain(
        self, model: ServingModel, features: npt.NDArray[np.float32], action_index: int
    ) -> Explanation:
        row = model.rows(features, [action_index])
        contributions = self._booster.predict(xgb.DMatrix(row), pred_contribs=True)[0].astype(np.float64)
        return Explanation(float(contributions[-1]), contributions[:-1], float(contributions.sum()))


@dataclass
class Rig:
    decider: Decider
    catalogue: ActionCatalogue
    holdouts: Holdouts
    router: StaticRouter
    features: StatedFeatures
    db: Database

    def add(self, action_id: str, **fields: object) -> Action:
        draft = Action(action_id=action_id, channel=str(fields.pop("channel", "CHANNEL_WEB")))
        return self.catalogue.create(TENANT, action_id, dataclasses.replace(draft, **fields))  # type: ignore[arg-type]

    def hold_out(self, config: HoldoutConfig) -> None:
        self.holdouts.update(TENANT, config, [], "")


def rig(
    directory: Path,
    model: ServingModel,
    *,
    facts: FactSource | None = None,
    resolver: PersonResolver | None = None,
    explainer: BoosterShap | None = None,
    shadow: ServingModel | None = None,
) -> Rig:
    db = open_database(None, directory / "decision.db")
    store, holdout_store = ActionStore(db), HoldoutStore(db)
    store.migrate()
    holdout_store.migrate()
    catalogue = ActionCatalogue(store, clock=lambda: NOW_US - 10**9)
    holdouts = Holdouts(holdout_store, cache_seconds=0)
    router, features = StaticRouter(model, shadow=shadow), StatedFeatures()
    sources = DecideSources(
        router=router,
        reader=features,
        catalogue=CatalogueCache(catalogue, ttl_seconds=0),
        holdouts=holdouts,
        facts=facts or GrpcFactSource(None, None, None),
        resolver=resolver or GrpcPersonResolver(None),
        explainer=explainer,
    )
    return Rig(Decider(sources, clock=lambda: NOW_US), catalogue, holdouts, router, features, db)


def ask(*candidates: Candidate | str, **fields: object) -> DecideInput:
    """A web decision for person `p-1` on `home_hero`; a str candidate is a bare candidate of that id."""
    given = tuple(Candidate(c, "CHANNEL_UNSPECIFIED") if isinstance(c, str) else c for c in candidates)
    base = DecideInput(channel="CHANNEL_WEB", channel_number=1, placement="home_hero", person_id="p-1")
    return dataclasses.replace(base, candidates=given, **fields)  # type: ignore[arg-type]


def ids(records: Sequence[object]) -> list[str]:
    return [r.candidate.action_id for r in records]  # type: ignore[attr-defined]
