"""Decide's contact policy against the real orchestrator's ledger, over real sockets: a decision server wired
as in production (journeys, identity, ingest, and an orchestrator on SQLite), a tenant of each test's own
that pushes and deploys a package `wayline_ml` wrote and catalogues contact actions. Each contact rule —
frequency cap (fed by Feedback's impressions), quiet hours in the person's zone, consent, channel
preference — removes the contact candidate with the reason and the ledger's sentence in the trace, while
an inbound (non-contact) action is still chosen; with the orchestrator down the contact candidates are
removed as facts unavailable (fail closed) and Decide still answers."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from tests.conftest import INTERNAL_TOKEN
from tests.decision.lifecycle_calls import deploy, push
from tests.decision.ml_package import ml_package
from tests.decision.wired import start_wired_decision
from tests.orchestrator.conftest import start_orchestrator
from tests.orchestrator.helpers import EMAIL, MARKETING, SMS, cap, days, event, observe, set_policy
from wayline.common.server import Server
from wayline.decision.v1 import action_pb2, decision_pb2
from wayline.decision.v1 import decision_service_pb2 as pb
from wayline.decision.v1 import decision_service_pb2_grpc as pb_grpc
from wayline.event.v1 import event_pb2
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.identity.v1 import identity_service_pb2_grpc as identity_grpc
from wayline.orchestrator.v1 import contact_pb2
from wayline.orchestrator.v1 import contact_policy_pb2 as policy_pb
from wayline.orchestrator.v1 import orchestrator_service_pb2 as orchestrator_pb
from wayline.orchestrator.v1 import orchestrator_service_pb2_grpc as orchestrator_grpc
from wayline_cli.suite import free_port

WEB = event_pb2.CHANNEL_WEB
EMAIL_OFFER = "email_newsletter"  # a marketing email: a contact
SMS_OFFER = "call_back"  # a marketing text: a contact
BANNER = "discount_10"  # a web banner: inbound, no contact


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ml_package(tmp_path_factory.mktemp("offers") / "p", model_id="offers", version="1")


@pytest.fixture(scope="module")
def orchestrator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_orchestrator(tmp_path_factory.mktemp("orchestrator"))
    yield server
    server.stop(0)


def _decision_server(
    data_dir: Path, orchestrator_address: str, journeys: Server, identity: Server, ingest: Server
) -> Server:
    return start_wired_decision(
        data_dir,
        journeys=journeys,
        identity=identity,
        ingest=ingest,
        orchestrator_address=orchestrator_address,
        catalogue_cache_seconds=0,
        holdout_cache_seconds=0,
        generous_budgets=True,
    )


@pytest.fixture(scope="module")
def decision(
    orchestrator: Server,
    journeys_server: Server,
    identity_server: Server,
    ingest_server: Server,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Server]:
    server = _decision_server(
        tmp_path_factory.mktemp("decide-contacts"),
        orchestrator.address,
        journeys_server,
        identity_server,
        ingest_server,
    )
    yield server
    server.stop(0)


class Client:
    """One tenant's calls: Decide, the catalogue, traces and Feedback on the decision server; the policy,
    observed events and the ledger on the orchestrator; a person made in identity (Feedback writes its
    event with the person's identifier)."""

    def __init__(self, decision: grpc.Channel, orchestrator: grpc.Channel, identity: grpc.Channel) -> None:
        self.tenant = f"contacts-{uuid.uuid4().hex[:8]}"
        self.metadata = (("x-wayline-internal-token", INTERNAL_TOKEN), ("x-wayline-tenant", self.tenant))
        self.stub = pb_grpc.DecisionServiceStub(decision)
        self.ledger = orchestrator_grpc.OrchestratorServiceStub(orchestrator)
        self.identity = identity_grpc.IdentityServiceStub(identity)

    def new_person(self) -> str:
        now = Timestamp()
        now.GetCurrentTime()
        email = event_pb2.Identifier(type="email", value=f"{uuid.uuid4().hex[:8]}@example.com")
        resolved = self.identity.ResolveIdentities(
            identity_pb.ResolveIdentitiesRequest(
                inputs=[
                    identity_pb.IdentityResolutionInput(
                        event_id=str(uuid.uuid4()),
                        timestamp=now,
                        event_type=event_pb2.EVENT_TYPE_IDENTIFY,
                        identifiers=[email],
                    )
                ]
            ),
            metadata=self.metadata,
            timeout=10,
        )
        return str(resolved.resolutions[0].person_id)

    def create(self, action_id: str, channel: event_pb2.Channel.ValueType, **fields: object) -> None:
        action = action_pb2.Action(channel=channel, **fields)  # type: ignore[arg-type]
        self.stub.CreateAction(
            pb.CreateActionRequest(action_id=action_id, action=action), metadata=self.metadata, timeout=10
        )

    def create_contact(self, action_id: str, channel: event_pb2.Channel.ValueType) -> None:
        self.create(action_id, channel, counts_as_contact=True, purpose=MARKETING)

    def decide(self, person: str, *action_ids: str) -> pb.DecideResponse:
        request = pb.DecideRequest(
            person=event_pb2.PersonRef(person_id=person),
            channel=WEB,
            placement="home_hero",
            candidates=[action_pb2.CandidateAction(action_id=a) for a in action_ids],
            max_actions=len(action_ids),
        )
        response: pb.DecideResponse = self.stub.Decide(request, metadata=self.metadata, timeout=20)
        return response

    def filtered(self, decision_id: str) -> dict[str, tuple[int, str, str]]:
        """Action id → (filter reason, filtered by, description) of the trace's filtered candidates."""
        trace = self.stub.GetDecision(
            pb.GetDecisionRequest(decision_id=decision_id), metadata=self.metadata, timeout=10
        ).decision
        return {
            c.candidate.action_id: (c.filter_reason, c.filtered_by, c.filter_description)
            for c in trace.candidates
            if c.outcome == decision_pb2.CANDIDATE_OUTCOME_FILTERED
        }

    def feedback(
        self, decision_id: str, action_id: str, outcome: decision_pb2.FeedbackOutcome.ValueType
    ) -> str:
        request = pb.FeedbackRequest(decision_id=decision_id, action_id=action_id, outcome=outcome)
        return str(self.stub.Feedback(request, metadata=self.metadata, timeout=10).feedback_id)

    def contacts(self, person: str) -> list[contact_pb2.ContactRecord]:
        request = orchestrator_pb.ListContactsRequest(person_id=person)
        return list(self.ledger.ListContacts(request, metadata=self.metadata, timeout=10).contacts)

    def policy(self, policy: policy_pb.ContactPolicy, *paths: str) -> None:
        set_policy(self.ledger, self.metadata, policy, *paths)

    def observe(
        self, person: str, name: str = "Page Viewed", timezone: str = "", **properties: object
    ) -> None:
        now = Timestamp()
        now.GetCurrentTime()
        assert observe(self.ledger, self.metadata, event(person, name, now, timezone, **properties)) == 1


def _client(decision: Server, orchestrator_address: str, identity: Server, package: Path) -> Iterator[Client]:
    with (
        grpc.insecure_channel(decision.address) as decision_channel,
        grpc.insecure_channel(orchestrator_address) as orchestrator_channel,
        grpc.insecure_channel(identity.address) as identity_channel,
    ):
        client = Client(decision_channel, orchestrator_channel, identity_channel)
        push(decision_channel, package, client.metadata)
        deploy(decision_channel, "offers", "1", auth=client.metadata)
        client.create_contact(EMAIL_OFFER, EMAIL)
        client.create_contact(SMS_OFFER, SMS)
        client.create(BANNER, WEB)
        yield client


@pytest.fixture
def client(
    decision: Server, orchestrator: Server, identity_server: Server, package: Path
) -> Iterator[Client]:
    """A tenant of the test's own, with the package deployed and the three actions catalogued."""
    yield from _client(decision, orchestrator.address, identity_server, package)


def _chosen(response: pb.DecideResponse) -> set[str]:
    return {a.action_id for a in response.actions}


def test_frequency_cap_counts_the_impressions_feedback_records_in_the_ledger(client: Client) -> None:
    client.policy(policy_pb.ContactPolicy(frequency_caps=[cap(1, days(1), EMAIL)]), "frequency_caps")
    person = client.new_person()
    first = client.decide(person, EMAIL_OFFER, BANNER)
    assert _chosen(first) == {BANNER, EMAIL_OFFER}, client.filtered(first.decision_id)
    impression = decision_pb2.FEEDBACK_OUTCOME_IMPRESSION
    assert client.feedback(first.decision_id, EMAIL_OFFER, impression) == (
        f"{first.decision_id}/{EMAIL_OFFER}/FEEDBACK_OUTCOME_IMPRESSION"
    )
    client.feedback(first.decision_id, EMAIL_OFFER, impression)  # a retry: the ledger keeps one contact
    client.feedback(first.decision_id, EMAIL_OFFER, decision_pb2.FEEDBACK_OUTCOME_CLICK)  # not a contact
    client.feedback(first.decision_id, BANNER, impression)  # an inbound placement: not a contact
    recorded = client.contacts(person)
    assert [(c.contact_id, c.action_id, c.decision_id) for c in recorded] == [
        (f"{first.decision_id}/{EMAIL_OFFER}", EMAIL_OFFER, first.decision_id)
    ]
    assert (recorded[0].channel, recorded[0].purpose, recorded[0].source) == (
        EMAIL,
        MARKETING,
        contact_pb2.CONTACT_SOURCE_DECISION,
    )
    second = client.decide(person, EMAIL_OFFER, BANNER)
    assert _chosen(second) == {BANNER}
    assert client.filtered(second.decision_id) == {
        EMAIL_OFFER: (
            decision_pb2.FILTER_REASON_FREQUENCY_CAP,
            "contact_policy.frequency_caps[0]",
            "1 of 1 email contacts in the last 1 day",
        )
    }
    # The cap is the person's: another person still gets the email.
    assert _chosen(client.decide(client.new_person(), EMAIL_OFFER, BANNER)) == {BANNER, EMAIL_OFFER}


def _quiet_around_now(zone: str) -> tuple[int, int]:
    """A quiet window from an hour before to an hour after now in `zone` (minutes after local midnight)."""
    local = datetime.now(UTC).astimezone(ZoneInfo(zone))
    minute = local.hour * 60 + local.minute
    return (minute - 60) % 1440, (minute + 60) % 1440


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def test_quiet_hours_apply_in_the_persons_time_zone_else_the_policys_default(client: Client) -> None:
    # Tokyo (UTC+9) and New York (UTC-5 or -4) are 13-14 hours apart: quiet now in one, not the other.
    start, end = _quiet_around_now("Asia/Tokyo")
    rule = policy_pb.QuietHours(
        channels=[EMAIL], start_minute=start, end_minute=end, default_time_zone="Asia/Tokyo"
    )
    client.policy(policy_pb.ContactPolicy(quiet_hours=[rule]), "quiet_hours")
    person = client.new_person()
    # No zone known for the person: the rule's default zone, where it is quiet now.
    quiet = client.decide(person, EMAIL_OFFER, SMS_OFFER, BANNER)
    assert _chosen(quiet) == {BANNER, SMS_OFFER}  # the rule names email only
    reason, rule_path, description = client.filtered(quiet.decision_id)[EMAIL_OFFER]
    assert (reason, rule_path) == (decision_pb2.FILTER_REASON_QUIET_HOURS, "contact_policy.quiet_hours[0]")
    window = f"{_hhmm(start)}-{_hhmm(end)}"
    assert re.fullmatch(rf"\d\d:\d\d in Asia/Tokyo is within the quiet hours {window}", description)
    # An event the orchestrator observed says the person lives in New York, where it is not quiet now.
    client.observe(person, timezone="America/New_York")
    awake = client.decide(person, EMAIL_OFFER, SMS_OFFER, BANNER)
    assert _chosen(awake) == {BANNER, EMAIL_OFFER, SMS_OFFER}, client.filtered(awake.decision_id)
    assert client.filtered(awake.decision_id) == {}


def test_consent_missing_filters_until_an_observed_event_grants_it(client: Client) -> None:
    opt_in = policy_pb.ConsentRule(channel=EMAIL, purpose=MARKETING, mode=policy_pb.CONSENT_MODE_OPT_IN)
    client.policy(policy_pb.ContactPolicy(consent_rules=[opt_in]), "consent_rules")
    person = client.new_person()
    missing = client.decide(person, EMAIL_OFFER, SMS_OFFER, BANNER)
    assert _chosen(missing) == {BANNER, SMS_OFFER}  # sms has no consent rule
    assert client.filtered(missing.decision_id) == {
        EMAIL_OFFER: (
            decision_pb2.FILTER_REASON_NO_CONSENT,
            "contact_policy.consent_rules[0]",
            "email marketing contacts need consent (opt-in) and the person has not granted it",
        )
    }
    # Consent for another channel does not cover email.
    client.observe(person, "Consent Updated", channel="sms", purpose="marketing", granted=True)
    assert _chosen(client.decide(person, EMAIL_OFFER, BANNER)) == {BANNER}
    client.observe(person, "Consent Updated", channel="email", purpose="marketing", granted=True)
    granted = client.decide(person, EMAIL_OFFER, SMS_OFFER, BANNER)
    assert _chosen(granted) == {BANNER, EMAIL_OFFER, SMS_OFFER}, client.filtered(granted.decision_id)
    client.observe(person, "Consent Updated", channel="all", purpose="all", granted=False)
    withdrawn = client.decide(person, EMAIL_OFFER, BANNER)
    assert client.filtered(withdrawn.decision_id) == {
        EMAIL_OFFER: (
            decision_pb2.FILTER_REASON_NO_CONSENT,
            "contact_policy.consent_rules[0]",
            "the person withdrew consent to email marketing contacts",
        )
    }


def test_required_consent_of_an_inbound_action_reads_the_ledgers_consent(client: Client) -> None:
    """Eligibility's required_consent (rule 8) on an action that is not a contact: the ledger's consent for
    the action's channel and the purpose named."""
    everywhere = policy_pb.ConsentRule(purpose=MARKETING, mode=policy_pb.CONSENT_MODE_OPT_IN)
    client.policy(policy_pb.ContactPolicy(consent_rules=[everywhere]), "consent_rules")
    needs_consent = action_pb2.ActionEligibility(required_consent=MARKETING)
    client.create("push_reminder", WEB, eligibility=needs_consent)  # a web card for consenting persons
    person = client.new_person()
    missing = client.decide(person, "push_reminder", BANNER)
    assert _chosen(missing) == {BANNER}
    assert client.filtered(missing.decision_id) == {
        "push_reminder": (
            decision_pb2.FILTER_REASON_NO_CONSENT,
            "eligibility.required_consent",
            "web marketing contacts need consent (opt-in) and the person has not granted it",
        )
    }
    client.observe(person, "Consent Updated", channel="all", purpose="marketing", granted=True)
    assert _chosen(client.decide(person, "push_reminder", BANNER)) == {BANNER, "push_reminder"}


def test_channel_preference_filters_the_other_channels_contacts(client: Client) -> None:
    client.policy(
        policy_pb.ContactPolicy(channel_preference=policy_pb.ChannelPreferencePolicy(enforce=True)),
        "channel_preference",
    )
    person = client.new_person()
    assert _chosen(client.decide(person, EMAIL_OFFER, SMS_OFFER, BANNER)) == {BANNER, EMAIL_OFFER, SMS_OFFER}
    client.observe(person, "Channel Preference Updated", channel="sms")
    preferred = client.decide(person, EMAIL_OFFER, SMS_OFFER, BANNER)
    assert _chosen(preferred) == {BANNER, SMS_OFFER}
    assert client.filtered(preferred.decision_id) == {
        EMAIL_OFFER: (
            decision_pb2.FILTER_REASON_CHANNEL_PREFERENCE,
            "contact_policy.channel_preference",
            "the person prefers sms, and preferences are enforced",
        )
    }


@pytest.fixture
def without_orchestrator(
    journeys_server: Server,
    identity_server: Server,
    ingest_server: Server,
    package: Path,
    tmp_path: Path,
) -> Iterator[Client]:
    """A decision server whose orchestrator address is a port nobody listens on."""
    closed = f"127.0.0.1:{free_port()}"
    server = _decision_server(tmp_path / "decision", closed, journeys_server, identity_server, ingest_server)
    try:
        yield from _client(server, closed, identity_server, package)
    finally:
        server.stop(0)


def test_orchestrator_down_fails_contacts_closed_and_decide_still_answers(
    without_orchestrator: Client,
) -> None:
    client = without_orchestrator
    response = client.decide(client.new_person(), EMAIL_OFFER, SMS_OFFER, BANNER)
    assert _chosen(response) == {BANNER}
    filtered = client.filtered(response.decision_id)
    assert set(filtered) == {EMAIL_OFFER, SMS_OFFER}
    for reason, rule, description in filtered.values():
        assert (reason, rule) == (decision_pb2.FILTER_REASON_FACT_UNAVAILABLE, "contact_policy")
        assert description.startswith("contact policy (orchestrator) unavailable (orchestrator answered ")
        assert description.endswith("), so contact_policy cannot be checked")
