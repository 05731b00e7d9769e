"""The demo's Decide step, through the gateway as a channel app would call it: the model the ML step pushed is
deployed, its actions are catalogued, the web shop's home page asks for the next best actions of the demo's
customers (by person id, and one by email, resolved through identity), one choice is explained and its
margin checked, one decision's trace shows the rule that removed each candidate and takes feedback, and a
second version runs as a 10% canary over 200 persons before it is rolled back."""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import grpc
from google.protobuf import struct_pb2
from rich.console import Console
from rich.table import Table

from wayline.client import money
from wayline.common.timestamps import to_timestamp
from wayline.decision.v1 import action_pb2, decision_pb2, model_pb2
from wayline.decision.v1 import decision_service_pb2 as pb
from wayline.decision.v1 import decision_service_pb2_grpc as pb_grpc
from wayline.event.v1 import event_pb2
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.identity.v1 import identity_service_pb2_grpc as identity_grpc
from wayline.ingest.v1 import ingest_service_pb2 as ingest_pb
from wayline.ingest.v1 import ingest_service_pb2_grpc as ingest_grpc
from wayline.orchestrator.v1 import contact_policy_pb2
from wayline_cli import demo
from wayline_cli.models import package_files, upload_requests
from wayline_cli.value import amount

__all__ = ["ACTIONS", "DEMO_BUDGETS", "PLACEMENT", "explanation_adds_up", "show_decide"]

Auth = tuple[tuple[str, str], ...]
T = TypeVar("T")

PLACEMENT = "home_hero"
E = event_pb2
# The catalogue of the model's actions (its `none` is the model's baseline, not an offer). Values are what a
# success is worth to the shop in euros, levers push a campaign up or down; each channel's actions need the
# person to be reachable there, so a customer with no phone number is never offered a call.
ACTIONS: tuple[tuple[str, action_pb2.Action], ...] = (
    (
        "discount_10",
        action_pb2.Action(
            display_name="10% off the next order",
            channel=E.CHANNEL_WEB,
            placements=[PLACEMENT, "cart_upsell"],
            value=18.0,
            value_currency=demo.CURRENCY,
        ),
    ),
    (
        "free_shipping",
        action_pb2.Action(
            display_name="Free shipping this week",
            channel=E.CHANNEL_WEB,
            placements=[PLACEMENT],
            value=10.0,
            value_currency=demo.CURRENCY,
            lever=1.5,  # the winter campaign
        ),
    ),
    (
        "email_reminder",
        action_pb2.Action(
            display_name="Cart reminder e-mail",
            channel=E.CHANNEL_EMAIL,
            value=25.0,
            value_currency=demo.CURRENCY,
            counts_as_contact=True,
            purpose=contact_policy_pb2.CONTACT_PURPOSE_MARKETING,
            eligibility=action_pb2.ActionEligibility(required_reachable_channel=E.CHANNEL_EMAIL),
        ),
    ),
    (
        "push_reminder",
        action_pb2.Action(
            display_name="Back-in-stock push",
            channel=E.CHANNEL_PUSH,
            value=20.0,
            value_currency=demo.CURRENCY,
            eligibility=action_pb2.ActionEligibility(required_reachable_channel=E.CHANNEL_PUSH),
        ),
    ),
    (
        "call_back",
        action_pb2.Action(
            display_name="A stylist calls back",
            channel=E.CHANNEL_CALL_CENTER,
            value=60.0,
            value_currency=demo.CURRENCY,
            lever=0.8,  # the call centre is busy
            eligibility=action_pb2.ActionEligibility(required_reachable_channel=E.CHANNEL_CALL_CENTER),
        ),
    ),
)
BY_PERSON_ID = ("u-ava", "u-ben", "u-dev")  # the first one's choice is explained
CANARY_PERSONS, CANARY_PERCENT = 200, 10
# Decide waits 50 ms for identity and the facts in production. The demo runs every service on one machine,
# often shared and busy, where identity or the orchestrator can miss that by a little and eligibility would
# fail closed (FACT_UNAVAILABLE) for reasons of the machine; the demo gives them a second (a variable already
# set in the environment wins). The features keep their production budget: a journeys feature query over the
# demo's 1,500 generated journeys takes longer than a decision should wait, so the customers' decisions
# show the fallback to the spec's defaults, as production would.
DEMO_BUDGETS = {
    "WAYLINE_DECISION_DECIDE_FACTS_BUDGET_SECONDS": "1.0",
    "WAYLINE_DECISION_DECIDE_RESOLVE_BUDGET_SECONDS": "1.0",
}
_SUM_TOLERANCE = 1e-3  # the explainer works in float32


def _short(name: str, prefix: str) -> str:
    """`CHANNEL_CALL_CENTER`, `channel_` → `call_center`."""
    return name.lower().removeprefix(prefix)


def _retrying(call: Callable[[], T], attempts: int = 5) -> T:
    """UNAVAILABLE is retryable by contract (a version still loading, identity slower than Decide's
    budget on a busy machine): a channel app tries again."""
    for attempt in range(attempts):
        try:
            return call()
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.UNAVAILABLE or attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def explanation_adds_up(explanation: action_pb2.DecisionExplanation) -> tuple[float, bool]:
    """base + Σ contributions (+ the rest beyond the top 20) and whether it equals the margin."""
    total = (
        explanation.base_value
        + sum(c.contribution for c in explanation.contributions)
        + explanation.other_contribution
    )
    return total, bool(explanation.contributions) and abs(total - explanation.margin) <= _SUM_TOLERANCE


def _plain(value: struct_pb2.Value) -> str:
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        return f"{value.number_value:g}"
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return str(value.bool_value).lower()
    return "-"


class _Shop:
    """The web shop's calls, through the gateway."""

    def __init__(self, channel: grpc.Channel, auth: Auth, model_id: str) -> None:
        self.decision = pb_grpc.DecisionServiceStub(channel)
        self.identity = identity_grpc.IdentityServiceStub(channel)
        self.ingest = ingest_grpc.IngestServiceStub(channel)
        self.auth = auth
        self.model = f"models/{model_id}"

    def person_id(self, identifier: event_pb2.Identifier, wait_s: float = 30) -> str:
        """The person holding `identifier`, waiting for identity to resolve it (events arrive through the
        forwarder)."""
        deadline = time.monotonic() + wait_s
        while True:
            try:
                return str(
                    self.identity.GetProfile(
                        identity_pb.GetProfileRequest(person=event_pb2.PersonRef(identifier=identifier)),
                        metadata=self.auth,
                        timeout=10,
                    ).profile.person_id
                )
            except grpc.RpcError as error:
                if error.code() != grpc.StatusCode.NOT_FOUND or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def decide(self, person: event_pb2.PersonRef, *, explain: bool = False) -> pb.DecideResponse:
        """The home page's next best actions among every catalogued one, whatever its channel."""
        request = pb.DecideRequest(
            person=person,
            channel=E.CHANNEL_WEB,
            placement=PLACEMENT,
            candidates=[action_pb2.CandidateAction(action_id=action_id) for action_id, _ in ACTIONS],
            max_actions=len(ACTIONS),
            explain=explain,
        )
        response: pb.DecideResponse = _retrying(
            lambda: self.decision.Decide(request, metadata=self.auth, timeout=10)
        )
        return response

    def traffic(self, rpc: str, request: object) -> model_pb2.Model:
        response = getattr(self.decision, rpc)(request, metadata=self.auth, timeout=300)
        model: model_pb2.Model = response.model
        return model


def _traffic_table(title: str, model: model_pb2.Model) -> Table:
    table = Table(title=title)
    for column in ("version", "state", "serves", "actions scored", "registered AUC"):
        table.add_column(column)
    traffic = model.traffic
    serving = {traffic.stable_version: "stable (everyone else)" if traffic.canary_version else "stable"}
    if traffic.canary_version:
        serving[traffic.canary_version] = f"canary ({traffic.canary_percent}% of persons)"
    for version in sorted(model.versions, key=lambda v: v.version):
        auc = version.metrics.get("response_auc", version.metrics.get("auc"))
        table.add_row(
            version.version,
            _short(model_pb2.ModelVersionState.Name(version.state), "model_version_state_"),
            serving.get(version.version, "-"),
            str(len(version.action_ids)),
            f"{auc:.3f}" if auc is not None else "-",
        )
    return table


def _create_catalogue(shop: _Shop, console: Console) -> None:
    table = Table(title="the action catalogue (CreateAction)")
    for column in ("action", "channel", "placements", "value", "lever", "contact", "eligibility"):
        table.add_column(column)
    for action_id, action in ACTIONS:
        try:
            stored = shop.decision.CreateAction(
                pb.CreateActionRequest(action_id=action_id, action=action), metadata=shop.auth, timeout=10
            ).action
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.ALREADY_EXISTS:  # a demo run on a kept data dir
                raise
            stored = shop.decision.GetAction(
                pb.GetActionRequest(name=f"actions/{action_id}"), metadata=shop.auth, timeout=10
            ).action
        reachable = stored.eligibility.required_reachable_channel
        purpose = contact_policy_pb2.ContactPurpose.Name(stored.purpose)
        table.add_row(
            action_id,
            _short(E.Channel.Name(stored.channel), "channel_"),
            ", ".join(stored.placements) or "any",
            f"{stored.value:g} {stored.value_currency}",
            f"{stored.lever:g}" if stored.HasField("lever") else "1",
            f"yes, {_short(purpose, 'contact_purpose_')}" if stored.counts_as_contact else "no",
            f"reachable: {_short(E.Channel.Name(reachable), 'channel_')}" if reachable else "everyone",
        )
    console.print(table)


def _show_decision(who: str, response: pb.DecideResponse, console: Console) -> None:
    source = _short(action_pb2.FeatureSource.Name(response.feature_source), "feature_source_")
    console.print(
        f"Decide for {who}: decision {response.decision_id} · {response.model} version "
        f"{response.model_version} · features from {source} · person {response.person_id}"
    )
    table = Table()
    for column in ("rank", "action", "channel", "propensity", "expected value", "priority", "version"):
        table.add_column(column)
    for ranked in response.actions:
        table.add_row(
            str(ranked.rank),
            ranked.action_id,
            _short(E.Channel.Name(ranked.channel), "channel_"),
            f"{ranked.propensity:.4f}",
            f"{ranked.expected_value:.3f}",
            f"{ranked.score:.4f}",
            ranked.model_version,
        )
    if response.holdout:
        table.caption = "in a holdout group: nothing is returned"
    console.print(table)


def _explanation_table(who: str, explanation: action_pb2.DecisionExplanation) -> Table:
    table = Table(
        title=f"why {explanation.action_id} for {who} (explain: TreeSHAP in log-odds)",
        caption=explanation.summary,
    )
    for column in ("feature", "value", "contribution"):
        table.add_column(column)
    for contribution in explanation.contributions[:6]:
        table.add_row(contribution.feature, _plain(contribution.value), f"{contribution.contribution:+.4f}")
    total, adds_up = explanation_adds_up(explanation)
    rest = len(explanation.contributions) - 6
    table.add_row(f"… {max(rest, 0)} more, and the rest", "", f"{total - explanation.base_value:+.4f} in all")
    table.add_row(
        "check",
        "base + Σ contributions = margin",
        f"{explanation.base_value:+.4f} + {total - explanation.base_value:+.4f} = {total:+.4f} vs "
        f"{explanation.margin:+.4f}: {'OK' if adds_up else 'MISMATCH'}",
    )
    return table


def _trace_table(trace: decision_pb2.Decision) -> Table:
    table = Table(
        title=f"GetDecision {trace.decision_id}: every candidate and what became of it "
        f"(arm {_short(decision_pb2.ModelArm.Name(trace.arm), 'model_arm_')}, "
        f"{len(trace.features)} feature values kept)"
    )
    for column in ("candidate", "outcome", "rank", "priority factors", "removed by"):
        table.add_column(column)
    for candidate in trace.candidates:
        f = candidate.factors
        factors = (
            f"{f.propensity:.4f} x {f.context_weight:g} x {f.value:g} x {f.lever:g} = {f.priority:.4f}"
            if candidate.HasField("factors")
            else "-"
        )
        removed = ""
        if candidate.outcome == decision_pb2.CANDIDATE_OUTCOME_FILTERED:
            reason = _short(decision_pb2.FilterReason.Name(candidate.filter_reason), "filter_reason_")
            removed = f"{reason} ({candidate.filtered_by}): {candidate.filter_description}"
        table.add_row(
            candidate.candidate.action_id,
            _short(decision_pb2.CandidateOutcome.Name(candidate.outcome), "candidate_outcome_"),
            str(candidate.rank or "-"),
            factors,
            removed,
        )
    for record in trace.feedback:
        outcome = _short(decision_pb2.FeedbackOutcome.Name(record.outcome), "feedback_outcome_")
        table.add_row(f"feedback {outcome}", record.action_id, "", _amount(record), "")
    return table


def _amount(record: decision_pb2.FeedbackRecord) -> str:
    if not record.HasField("value"):
        return ""
    return f"value {amount(record.value):.2f} {record.value.currency_code}"


def _identify(shop: _Shop, customer: demo.Customer) -> None:
    """She signs in on the web with her e-mail address: an identify event ties it to her user id."""
    event = event_pb2.Event(
        event_id=str(uuid.uuid4()),
        type=E.EVENT_TYPE_IDENTIFY,
        channel=E.CHANNEL_WEB,
        timestamp=to_timestamp(datetime.now(UTC)),
        identifiers=[
            event_pb2.Identifier(type="user_id", value=customer.user_id),
            event_pb2.Identifier(type="email", value=customer.email),
        ],
    )
    shop.ingest.Track(ingest_pb.TrackRequest(event=event), metadata=shop.auth, timeout=10)


def _feedback(shop: _Shop, response: pb.DecideResponse, console: Console) -> None:
    """The home page showed the chosen action, and she bought."""
    chosen = response.actions[0].action_id if response.actions else ""
    accepted = []
    for outcome, value in (
        (decision_pb2.FEEDBACK_OUTCOME_IMPRESSION, None),
        (decision_pb2.FEEDBACK_OUTCOME_CONVERSION, money("49.90", demo.CURRENCY)),
    ):
        request = pb.FeedbackRequest(decision_id=response.decision_id, action_id=chosen, outcome=outcome)
        if value is not None:
            request.value.CopyFrom(value)
        feedback_id = shop.decision.Feedback(request, metadata=shop.auth, timeout=10).feedback_id
        accepted.append(f"{feedback_id.removeprefix(response.decision_id + '/')} accepted")
    console.print(f"Feedback on decision {response.decision_id}: {', then '.join(accepted)}")


def _canary(shop: _Shop, version_2: Path, console: Console) -> None:
    """Version 2 as a 10% canary: which version served each of 200 persons, then back to version 1."""
    model_id, version, files = package_files(version_2)
    shop.decision.UploadModelVersion(
        upload_requests(model_id, version, files), metadata=shop.auth, timeout=60
    )
    canary = shop.traffic(
        "DeployModel",
        pb.DeployModelRequest(
            name=shop.model, version=version, mode=pb.DEPLOY_MODE_CANARY, canary_percent=CANARY_PERCENT
        ),
    )
    console.print(_traffic_table(f"DeployModel {model_id} {version} as a {CANARY_PERCENT}% canary", canary))
    # First-time visitors, by an anonymous id identity has not seen: a cold start on the spec's defaults,
    # assigned to an arm by a hash of the id (known persons are hashed by their person id).
    visitors = [f"visitor-{index:03d}" for index in range(CANARY_PERSONS)]

    def served(visitor: str) -> str:
        person = event_pb2.PersonRef(identifier=event_pb2.Identifier(type="anonymous_id", value=visitor))
        request = pb.DecideRequest(person=person, channel=E.CHANNEL_WEB, placement=PLACEMENT)
        return str(
            _retrying(lambda: shop.decision.Decide(request, metadata=shop.auth, timeout=10)).model_version
        )

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        versions = Counter(pool.map(served, visitors))
    took = time.monotonic() - started
    split = ", ".join(f"version {v}: {n}" for v, n in sorted(versions.items()))
    console.print(
        f"canary split over {len(visitors)} persons (first-time visitors; the home page's catalogue "
        f"actions, {took:.1f} s): {split}"
    )
    rolled_back = shop.traffic("RollbackModel", pb.RollbackModelRequest(name=shop.model, version="1"))
    console.print(_traffic_table("RollbackModel to version 1: the canary is cleared", rolled_back))


def show_decide(
    channel: grpc.Channel, auth: Auth, model_id: str, version_2: Path | None, console: Console
) -> None:
    started = time.monotonic()
    shop = _Shop(channel, auth, model_id)
    given = ", ".join(
        f"{name.removeprefix('WAYLINE_DECISION_').lower()}={os.environ.get(name, default)}"
        for name, default in DEMO_BUDGETS.items()
    )
    console.print(
        f"Decide's reads of identity and the facts, on this one machine: {given} (production: 0.05)"
    )
    with console.status(f"deploying {model_id} version 1 (load, check, switch)…"):
        deployed = shop.traffic(
            "DeployModel", pb.DeployModelRequest(name=shop.model, version="1", mode=pb.DEPLOY_MODE_FULL)
        )
    console.print(_traffic_table(f"DeployModel {model_id} 1 (full): the model's traffic", deployed))
    stable = next(v for v in deployed.versions if v.version == deployed.traffic.stable_version)
    console.print(f"{model_id} {stable.version} scores {', '.join(stable.action_ids)}")
    _create_catalogue(shop, console)

    explained: pb.DecideResponse | None = None
    for user_id in BY_PERSON_ID:  # the app knows them by their person id
        person_id = shop.person_id(event_pb2.Identifier(type="user_id", value=user_id))
        response = shop.decide(event_pb2.PersonRef(person_id=person_id), explain=explained is None)
        _show_decision(user_id, response, console)
        if explained is None:
            explained = response
    chloe = next(c for c in demo.CUSTOMERS if c.user_id == "u-chloe")
    _identify(shop, chloe)
    email = event_pb2.Identifier(type="email", value=chloe.email)
    shop.person_id(email)  # wait until identity knows the address
    by_email = shop.decide(event_pb2.PersonRef(identifier=email))
    _show_decision(chloe.email, by_email, console)
    if explained is not None:
        console.print(_explanation_table(BY_PERSON_ID[0], explained.explanation))
    _feedback(shop, by_email, console)
    trace = shop.decision.GetDecision(
        pb.GetDecisionRequest(decision_id=by_email.decision_id), metadata=auth, timeout=10
    ).decision
    console.print(_trace_table(trace))
    if version_2 is not None:
        _canary(shop, version_2, console)
    console.print(f"Decide, end to end: {time.monotonic() - started:.1f} s")
