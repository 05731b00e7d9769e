"""The analytics read models the servicer answers from, each behind a small Protocol declared by its domain
module (funnels.py, paths.py, ...) and implemented in store/<model>.py. service.py builds the ClickHouse
implementations; tests may build the servicer with any of them.

How a read model is built (every one the same way):
- `<model>.py`: the query and result dataclasses, the store Protocol, pure-Python post-processing (no
  protobuf).
- `store/<model>.py`: the SQL. Every query selects FROM `store.relation.current_events(params)` (one row per
  event, `person_id` = the current person through identity's overrides), never from `events` directly, so
  merges, unmerges and the dedup strategy apply everywhere. Values are bound through one
  `store.sql.SqlParams(tenant=...)`; matchers, person filters and populations compile with
  `store.matching`. ClickHouse aggregates (one or very few queries per call: chDB costs ~3 ms per query);
  Python only post-processes aggregated rows.
- `<model>_converters.py`: request → query with every bad field reported (analytics_converters.py holds the
  shared pieces), result → response.
- Tests compare the RPC over gRPC with a plain-Python reference on generated events.
"""

from __future__ import annotations

from dataclasses import dataclass

from wayline_journeys.activity_lifecycle import ActivityLifecycleReadModel
from wayline_journeys.customer_value import CustomerValueStore
from wayline_journeys.decisions import DecisionEventReads
from wayline_journeys.event_export import EventExportStore
from wayline_journeys.event_names import EventNamesReadModel
from wayline_journeys.funnels import FunnelStore
from wayline_journeys.lifecycle import LifecycleStore
from wayline_journeys.lifecycle_models import LifecycleModels
from wayline_journeys.paths import PathsReadModel
from wayline_journeys.person_conditions import PersonConditions
from wayline_journeys.retention import RetentionReadModel
from wayline_journeys.segment_registry import Segments
from wayline_journeys.stickiness import StickinessReadModel
from wayline_journeys.training_set import TrainingSetStore
from wayline_journeys.trends import TrendsReadModel

__all__ = ["ReadModels"]


@dataclass(frozen=True)
class ReadModels:
    """One field per read model; each issue-8 read model adds its own."""

    customer_value: CustomerValueStore
    funnels: FunnelStore
    """QueryFunnel and ListFunnelPersons."""
    lifecycle: LifecycleStore
    lifecycle_models: LifecycleModels
    """Each tenant's default lifecycle model (GetLifecycleStages, lifecycle-stage conditions)."""
    paths: PathsReadModel
    """QueryPaths and ListPathEdges."""
    persons: PersonConditions
    """EvaluatePersonConditions, GetPersonProperties and their batches (persons now: flow branches, audiences
    and personalisation)."""
    retention: RetentionReadModel
    """QueryRetention."""
    trends: TrendsReadModel
    """QueryTrends: events measured per period."""
    stickiness: StickinessReadModel
    """QueryStickiness: persons by how many periods of a range they were active in."""
    activity_lifecycle: ActivityLifecycleReadModel
    """QueryActivityLifecycle: each period's persons as new, returning, resurrecting or dormant."""
    segments: Segments
    """The segment RPCs: definitions, memberships and the change feed (segment_evaluator.py keeps them
    current)."""
    features: TrainingSetStore
    """GetProfileFeatures and ExportTrainingSet (one feature computation for both)."""
    decisions: DecisionEventReads
    """The decision service's events by decision: GetDecisionEvents, ExportDecisionEvents and
    CountDecisionOutcomes (store/decision_tables.py indexes them on the write path)."""
    event_export: EventExportStore
    """ExportEvents: a range's events person by person (SimulateFlow replays them)."""
    event_names: EventNamesReadModel
    """ListEventNames: the tenant's event names with their counts (suggestions for funnels and anchors)."""
