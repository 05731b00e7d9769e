"""Next-best-action decisions in flows, over real sockets, on SQLite and PostgreSQL: an orchestrator whose
flows ask a real decision service (a package `wayline_ml` wrote, pushed and deployed, actions catalogued),
which checks contact candidates against that same orchestrator's ledger (CheckContact). A decision branch
follows Decide's top action, asked once for every branch on the same placement; an action step with a
`decision_placement` sends the decided action among its candidates (ledger contact and outbox message carry
it and the decision id); a contact candidate is decided while the flow's run is under way, without the two
services waiting on each other; no model, or no decision service, falls back without failing the flow."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import SecretStr

from tests.conftest import common_settings, start_server
from tests.decision.lifecycle_calls import deploy, push
from tests.decision.ml_package import ml_package
from tests.decision.wired import start_wired_decision
from tests.orchestrator.conftest import NO_PEERS, as_tenant
from tests.orchestrator.helpers import Auth, cap, days, set_policy
from tests.orchestrator.runtime_calls import eventually, publish, send, track
from tools.postgres_server import create_schema
from wayline.common.server import Server
from wayline.common.sql import open_database
from wayline.common.timestamps import now_us
from wayline.decision.v1 import action_pb2
from wayline.decision.v1 import decision_service_pb2 as decision_pb
from wayline.decision.v1 import decision_service_pb2_grpc as decision_grpc
from wayline.event.v1 import event_pb2
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.identity.v1 import identity_service_pb2_grpc as identity_grpc
from wayline.orchestrator.v1 import contact_policy_pb2 as policy_pb
from wayline.orchestrator.v1 import orchestrator_service_pb2 as pb
from wayline.orchestrator.v1 import orchestrator_service_pb2_grpc as pb_grpc
from wayline_cli.suite import free_port
from wayline_orchestrator.flows.runtime import RuntimeStore, StepRun
from wayline_orchestrator.flows.runtime.decisions import MAX_DECISIONS_PER_RUN
from wayline_orchestrator.service import orchestrator_service
from wayline_orchestrator.settings import OrchestratorSettings

WEB = event_pb2.CHANNEL_WEB
EMAIL = event_pb2.CHANNEL_EMAIL
MARKETING = policy_pb.CONTACT_PURPOSE_MARKETING
BANNERS = ("discount_10", "push_reminder")  # web actions the model scores (inbound: not contacts)
NEWSLETTER = "email_newsletter"  # a marketing email the model scores: a contact, checked with CheckContact
PLACEMENT = "home_hero"


def _orchestrator(data_dir: Path, url: str, port: int, decision_address: str) -> Server:
    settings = OrchestratorSettings(
        **(common_settings(data_dir) | {"port": port}),  # type: ignore[arg-type]
        database_url=SecretStr(url) if url else None,
        **(NO_PEERS | {"decision_address": decision_address}),  # type: ignore[arg-type]
        decision_timeout_seconds=20.0,  # a busy machine must not turn a decision into a fallback
        timer_poll_interval_seconds=0.05,
    )
    return start_server(orchestrator_service(settings), settings)


@dataclass
class Rig:
    """An orchestrator and the decision service it asks (which asks it back), and the database the
    orchestrator writes."""

    orchestrator: Server
    decision: Server
    store: RuntimeStore
    url: str


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def rig(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    journeys_server: Server,
    identity_server: Server,
    ingest_server: Server,
) -> Iterator[Rig]:
    url = create_schema(request.getfixturevalue("postgres_url")) if request.param == "postgresql" else ""
    port = free_port()  # chosen first: each service is the other's peer
    decision = start_wired_decision(
        tmp_path_factory.mktemp("decision"),
        journeys=journeys_server,
        identity=identity_server,
        ingest=ingest_server,
        orchestrator_address=f"127.0.0.1:{port}",
        catalogue_cache_seconds=0,
        holdout_cache_seconds=0,
        generous_budgets=True,
    )
    data_dir = tmp_path_factory.mktemp("orchestrator")
    orchestrator = _orchestrator(data_dir, url, port, decision.address)
    db = open_database(url or None, data_dir / "orchestrator" / "orchestrator.db")
    yield Rig(orchestrator, decision, RuntimeStore(db), url)
    orchestrator.stop(0)
    decision.stop(0)
    db.close()


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ml_package(tmp_path_factory.mktemp("offers") / "p", model_id="offers", version="1")


class Tenant:
    """One tenant's calls: flows and the ledger on the orchestrator, Decide and the catalogue on the decision
    service, persons made in identity (as production's events carry them)."""

    def __init__(self, rig: Rig, identity: Server) -> None:
        self.auth: Auth = as_tenant(f"nba-{uuid.uuid4().hex[:8]}")
        self.name = dict(self.auth)["x-wayline-tenant"]
        self._store = rig.store
        self._channels = [
            grpc.insecure_channel(s.address) for s in (rig.orchestrator, rig.decision, identity)
        ]
        self.flows = pb_grpc.OrchestratorServiceStub(self._channels[0])
        self.decisions = decision_grpc.DecisionServiceStub(self._channels[1])
        self._identity = identity_grpc.IdentityServiceStub(self._channels[2])

    def close(self) -> None:
        for channel in self._channels:
            channel.close()

    def deploy(self, package: Path) -> None:
        push(self._channels[1], package, self.auth)
        deploy(self._channels[1], "offers", "1", auth=self.auth)
        for banner in BANNERS:
            self._catalogue(banner, action_pb2.Action(channel=WEB))
        contact = action_pb2.Action(channel=EMAIL, counts_as_contact=True, purpose=MARKETING)
        self._catalogue(NEWSLETTER, contact)

    def _catalogue(self, action_id: str, action: action_pb2.Action) -> None:
        request = decision_pb.CreateActionRequest(action_id=action_id, action=action)
        self.decisions.CreateAction(request, metadata=self.auth, timeout=10)

    def person(self) -> str:
        now = Timestamp()
        now.GetCurrentTime()
        email = event_pb2.Identifier(type="email", value=f"{uuid.uuid4().hex[:8]}@example.com")
        given = identity_pb.IdentityResolutionInput(
            event_id=str(uuid.uuid4()), timestamp=now, event_type=event_pb2.EVENT_TYPE_IDENTIFY
        )
        given.identifiers.append(email)
        request = identity_pb.ResolveIdentitiesRequest(inputs=[given])
        resolved = self._identity.ResolveIdentities(request, metadata=self.auth, timeout=10)
        return str(resolved.resolutions[0].person_id)

    def top(self, person: str, *candidates: str) -> str:
        """Decide's own top action for the person on the web at the placement (among the candidates)."""
        request = decision_pb.DecideRequest(
            person=event_pb2.PersonRef(person_id=person),
            channel=WEB,
            placement=PLACEMENT,
            candidates=[action_pb2.CandidateAction(action_id=c) for c in candidates],
        )
        response = self.decisions.Decide(request, metadata=self.auth, timeout=20)
        return str(response.actions[0].action_id)

    def enter(self, person: str, flow_id: str, definition: dict[str, Any]) -> None:
        """Publish the flow (triggered by an event named after it) and send the person's triggering event."""
        publish(self.flows, self.auth, flow_id, {**definition, "trigger": _trigger(flow_id)})
        send(self.flows, self.auth, track(person, flow_id, now_us()))

    def runs(self, flow_id: str, person: str) -> dict[str, StepRun]:
        """The person's step runs in the flow, by step id (the entry's end and the paths between steps left
        out)."""
        found = self._store.runs(self.name, flow_id)
        return {
            r.step_id: r
            for r in found
            if r.person_id == person and not r.key.endswith("/~end") and r.outcome != "PATH"
        }

    def sent(self, person: str) -> list[tuple[str, str, str]]:
        """(step, action, decision) of the person's outbox messages."""
        found = self._store.messages(self.name)
        return [(m.step_id, m.action_id, m.decision_id) for m in found if m.person_id == person]

    def contacts(self, person: str) -> list[tuple[str, str, str]]:
        """(step, action, decision) of the person's contacts in the ledger, through ListContacts."""
        request = pb.ListContactsRequest(person_id=person)
        found = self.flows.ListContacts(request, metadata=self.auth, timeout=10).contacts
        return sorted((c.flow_step_id, c.action_id, c.decision_id) for c in found)


def _trigger(name: str) -> dict[str, Any]:
    return {"event": {"event": {"event_name": name}}}


@pytest.fixture
def tenant(rig: Rig, identity_server: Server) -> Iterator[Tenant]:
    """A tenant of the test's own, without a model."""
    made = Tenant(rig, identity_server)
    yield made
    made.close()


@pytest.fixture
def deployed(tenant: Tenant, package: Path) -> Tenant:
    """The test's tenant with the package deployed and the actions catalogued."""
    tenant.deploy(package)
    return tenant


def _branch(*branches: tuple[str, list[str]]) -> dict[str, Any]:
    """A flow whose entry step branches on decisions on the web at the placement: (label, action ids) per
    branch; the last branch names no channel (the triggering event's, the web, applies)."""
    return {
        "entry_step_id": "choose",
        "steps": [
            {
                "id": "choose",
                "branch": {
                    "branches": [
                        {
                            "label": label,
                            "condition": {
                                "decision": {
                                    "placement": PLACEMENT,
                                    "action_ids": actions,
                                    **({"channel": "CHANNEL_WEB"} if i + 1 < len(branches) else {}),
                                }
                            },
                            "next_step_id": "done",
                        }
                        for i, (label, actions) in enumerate(branches)
                    ],
                    "default_step_id": "done",
                },
            },
            {"id": "done", "exit": {"reason": "done"}},
        ],
    }


def _decide_and_send(*steps: tuple[str, str, list[str]], fallback: str = "fallback") -> dict[str, Any]:
    """A flow of decided actions in a row: (step id, channel, candidates) each, with a fallback action id
    (empty: none)."""
    ids = [step_id for step_id, _, _ in steps]
    return {
        "entry_step_id": ids[0],
        "steps": [
            {
                "id": step_id,
                "action": {
                    "channel": channel,
                    "action_id": fallback,
                    "decision_placement": PLACEMENT,
                    "candidate_action_ids": candidates,
                    "next_step_id": ids[i + 1] if i + 1 < len(ids) else "",
                },
            }
            for i, (step_id, channel, candidates) in enumerate(steps)
        ],
    }


def test_decision_branch_is_taken_when_the_top_action_is_listed(deployed: Tenant) -> None:
    person = deployed.person()
    top = deployed.top(person)
    other = next(b for b in BANNERS if b != top)
    deployed.enter(person, "pick", _branch(("other", [other]), ("top", [f"actions/{top}"])))
    run = deployed.runs("pick", person)["choose"]
    assert (run.outcome, run.detail["label"]) == ("BRANCH", "top")
    # Both branches read the same placement: one Decide answered both.
    [decided] = run.detail["decisions"]
    assert (decided["placement"], decided["decision"], decided["action_id"]) == (PLACEMENT, "decided", top)
    assert decided["decision_id"]


def test_decision_branch_falls_through_when_the_top_action_is_not_listed(deployed: Tenant) -> None:
    person = deployed.person()
    top = deployed.top(person)
    other = next(b for b in BANNERS if b != top)
    deployed.enter(person, "pick", _branch(("other", [other])))
    run = deployed.runs("pick", person)["choose"]
    assert (run.outcome, run.detail["label"]) == ("BRANCH", "")  # the default
    assert [(d["decision"], d["action_id"]) for d in run.detail["decisions"]] == [("decided", top)]


def test_decided_action_is_sent_with_its_decision_and_candidates_restrict_it(deployed: Tenant) -> None:
    person = deployed.person()
    top = deployed.top(person, *BANNERS)
    first, second = BANNERS
    web = "CHANNEL_WEB"
    deployed.enter(
        person,
        "offer",
        _decide_and_send(("both", web, list(BANNERS)), ("first", web, [first]), ("second", web, [second])),
    )
    runs = deployed.runs("offer", person)
    decisions = {step: runs[step].detail["decision_id"] for step in ("both", "first", "second")}
    assert len(set(decisions.values())) == 3  # one decision per question
    expected = [("both", top), ("first", first), ("second", second)]
    assert sorted(deployed.sent(person)) == sorted((s, a, decisions[s]) for s, a in expected)
    assert deployed.contacts(person) == sorted((s, a, decisions[s]) for s, a in expected)
    for step, action in expected:
        assert runs[step].outcome == "SENT"
        assert (runs[step].detail["decision"], runs[step].detail["action_id"]) == ("decided", action)


def test_an_action_after_a_wait_is_decided_when_the_timer_fires(deployed: Tenant) -> None:
    person = deployed.person()
    top = deployed.top(person, *BANNERS)
    definition = _decide_and_send(("offer", "CHANNEL_WEB", list(BANNERS)))
    definition["steps"].append({"id": "pause", "wait": {"duration": "1s", "next_step_id": "offer"}})
    deployed.enter(person, "later", {**definition, "entry_step_id": "pause"})
    eventually(lambda: bool(deployed.sent(person)))
    decision_id = deployed.runs("later", person)["offer"].detail["decision_id"]
    assert deployed.sent(person) == [("offer", top, decision_id)]


def test_a_run_asks_at_most_its_limit_of_decisions(deployed: Tenant) -> None:
    """Each placement is another question; past the limit, the run's decisions fall back."""
    steps = [
        {
            "id": f"ask{i}",
            "branch": {
                "branches": [
                    {
                        "condition": {"decision": {"placement": f"slot-{i}", "action_ids": list(BANNERS)}},
                        "next_step_id": f"ask{i + 1}",
                    }
                ],
                "default_step_id": f"ask{i + 1}",
            },
        }
        for i in range(MAX_DECISIONS_PER_RUN + 1)
    ]
    steps.append({"id": f"ask{MAX_DECISIONS_PER_RUN + 1}", "exit": {"reason": "asked"}})
    person = deployed.person()
    deployed.enter(person, "many", {"entry_step_id": "ask0", "steps": steps})
    runs = deployed.runs("many", person)
    answers = [runs[f"ask{i}"].detail["decisions"][0] for i in range(MAX_DECISIONS_PER_RUN + 1)]
    assert {a["decision"] for a in answers[:-1]} == {"decided"}
    assert len({a["decision_id"] for a in answers[:-1]}) == MAX_DECISIONS_PER_RUN
    last = {"placement": f"slot-{MAX_DECISIONS_PER_RUN}", "decision": "fallback", "reason": "decision_limit"}
    assert answers[-1] == last


def test_contact_candidate_is_decided_against_the_ledger_the_run_writes(deployed: Tenant) -> None:
    """Decide checks the email (a contact) with this orchestrator's CheckContact while the flow's run is
    under way: the first entry gets its decided email; the email it recorded then caps the second, which
    Decide filters (so nothing is ranked) and the flow's own policy suppresses."""
    one_a_day = policy_pb.ContactPolicy(frequency_caps=[cap(1, days(1), EMAIL)])
    set_policy(deployed.flows, deployed.auth, one_a_day, "frequency_caps")
    person = deployed.person()
    deployed.enter(person, "news", _decide_and_send(("mail", "CHANNEL_EMAIL", [NEWSLETTER])))
    first = deployed.runs("news", person)["mail"]
    assert (first.outcome, first.detail["decision"], first.detail["action_id"]) == (
        "SENT",
        "decided",
        NEWSLETTER,
    )
    deployed.enter(person, "again", _decide_and_send(("mail", "CHANNEL_EMAIL", [NEWSLETTER])))
    second = deployed.runs("again", person)["mail"]
    assert (second.outcome, second.detail["decision"], second.detail["reason"]) == (
        "SUPPRESSED",
        "fallback",
        "nothing_ranked",
    )
    assert second.detail["decision_id"]
    assert deployed.sent(person) == [("mail", NEWSLETTER, first.detail["decision_id"])]


def test_no_model_deployed_takes_the_default_and_the_fallback_action(tenant: Tenant) -> None:
    person = tenant.person()
    tenant.enter(person, "pick", _branch(("top", list(BANNERS))))
    branch = tenant.runs("pick", person)["choose"]
    assert (branch.outcome, branch.detail["label"]) == ("BRANCH", "")
    assert branch.detail["decisions"] == [
        {"placement": PLACEMENT, "decision": "fallback", "reason": "no_model_deployed"}
    ]
    tenant.enter(person, "offer", _decide_and_send(("offer", "CHANNEL_WEB", list(BANNERS))))
    sent = tenant.runs("offer", person)["offer"]
    assert (sent.outcome, sent.detail) == (
        "SENT",
        {"contact_id": sent.key, "decision": "fallback", "reason": "no_model_deployed"},
    )
    assert tenant.sent(person) == [("offer", "fallback", "")]
    assert tenant.contacts(person) == [("offer", "fallback", "")]
    # Without an action of its own to fall back to, nothing is sent.
    tenant.enter(person, "nothing", _decide_and_send(("offer", "CHANNEL_WEB", []), fallback=""))
    unsent = tenant.runs("nothing", person)["offer"]
    assert (unsent.outcome, unsent.detail["reason"]) == ("NOT_SENT", "no_model_deployed")
    assert len(tenant.sent(person)) == len(tenant.contacts(person)) == 1


@pytest.mark.parametrize("decision_address", ["closed", ""], ids=["decision-down", "no-decision-address"])
def test_without_a_decision_service_flows_fall_back(
    request: pytest.FixtureRequest,
    rig: Rig,
    identity_server: Server,
    tmp_path: Path,
    decision_address: str,
) -> None:
    address = f"127.0.0.1:{free_port()}" if decision_address == "closed" else ""
    reason = "unavailable" if address else "no_decision_service"
    url = create_schema(request.getfixturevalue("postgres_url")) if rig.url else ""
    lone = _orchestrator(tmp_path, url, free_port(), address)
    db = open_database(url or None, tmp_path / "orchestrator" / "orchestrator.db")
    tenant = Tenant(Rig(lone, rig.decision, RuntimeStore(db), url), identity_server)
    try:
        person = tenant.person()
        tenant.enter(person, "pick", _branch(("top", list(BANNERS))))
        branch = tenant.runs("pick", person)["choose"]
        assert branch.detail["decisions"] == [
            {"placement": PLACEMENT, "decision": "fallback", "reason": reason}
        ]
        tenant.enter(person, "offer", _decide_and_send(("offer", "CHANNEL_WEB", [])))
        assert tenant.runs("offer", person)["offer"].detail["reason"] == reason
        assert tenant.sent(person) == [("offer", "fallback", "")]
    finally:
        tenant.close()
        lone.stop(0)
        db.close()
