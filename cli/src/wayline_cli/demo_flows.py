"""The demo's flow step: the shipped abandoned-cart flow runs end to end. A small local HTTP receiver (the
demo's own, as a channel provider would be) stands behind two webhook connectors, one for push and one for
email, created through the gateway; the flow is applied with its hour's and its day's waits shortened, a
purchase counting (in the first wait and the goal) only when its `revenue` is above 0, and its connector
references pointed at them, and published; a contact policy needs push consent; cart events go through the
gateway for four customers (one buys before the wait ends, one has no push consent, one has spent more than
€500 this year); then the receiver's messages — the reminder on the preferred channel, then the offer the
customer's value chose, Decide having no model for the placement — and the policy's suppression are
printed. Then the win-back (demo_winback.py): the dormant buyers' segment and the flow that emails them."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import duration_pb2, struct_pb2
from rich.console import Console
from rich.table import Table

from wayline.client import money
from wayline.common.timestamps import to_timestamp
from wayline.event.v1 import event_pb2
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.identity.v1 import identity_service_pb2_grpc as identity_grpc
from wayline.ingest.v1 import ingest_service_pb2 as ingest_pb
from wayline.ingest.v1 import ingest_service_pb2_grpc as ingest_grpc
from wayline.journeys.v1 import analytics_pb2 as analytics
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as journeys_grpc
from wayline.orchestrator.v1 import connector_pb2, contact_pb2, flow_pb2
from wayline.orchestrator.v1 import contact_policy_pb2 as policy_pb
from wayline.orchestrator.v1 import orchestrator_service_pb2 as pb
from wayline.orchestrator.v1 import orchestrator_service_pb2_grpc as pb_grpc
from wayline_cli.channels import channel_name
from wayline_cli.demo_reading import Reader, wait_for_count
from wayline_cli.demo_winback import run_win_back, show_win_back
from wayline_cli.flows import read_flows

__all__ = ["show_flows"]

Auth = tuple[tuple[str, str], ...]
FLOW_FILE = Path(__file__).resolve().parents[3] / "examples" / "flows" / "abandoned_cart.yaml"
WAIT_SECONDS = 3  # the flow's one-hour and one-day waits, shortened for the demo
SECRET = "whsec_demo_0123456789abcdef"  # noqa: S105 - the demo receiver does not check it
CONNECTORS = {"push": "demo-push", "email": "demo-email"}


@dataclass(frozen=True)
class Shopper:
    user_id: str
    story: str
    prefers_push: bool
    push_consent: bool
    buys: bool
    spent_eur: int = 0  # orders earlier this year: €500 or more makes a high-value customer


SHOPPERS = (
    Shopper(
        "u-cart-amy",
        "prefers push, consented, €640 spent",
        prefers_push=True,
        push_consent=True,
        buys=False,
        spent_eur=640,
    ),
    Shopper("u-cart-bo", "prefers push, no push consent", prefers_push=True, push_consent=False, buys=False),
    Shopper("u-cart-cy", "no stated preference", prefers_push=False, push_consent=False, buys=False),
    Shopper("u-cart-dee", "buys within the wait", prefers_push=True, push_consent=True, buys=True),
)
# What every customer who does not buy receives: a reminder, then an offer.
MESSAGES_PER_CUSTOMER = 2


class Receiver:
    """The demo's provider: accepts every POST and keeps (path, Idempotency-Key, JSON body)."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str, dict[str, Any]]] = []
        lock = threading.Lock()
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with lock:
                    received.append((self.path, self.headers.get("Idempotency-Key", ""), json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self._server.server_address[1]}"

    @contextmanager
    def running(self) -> Iterator[Receiver]:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()


def _connector(stub: pb_grpc.OrchestratorServiceStub, auth: Auth, channel: str, url: str) -> None:
    connector = connector_pb2.Connector(
        display_name=f"Demo {channel} provider",
        kind=connector_pb2.CONNECTOR_KIND_WEBHOOK,
        webhook=connector_pb2.WebhookConfig(url=url, signing_secret=SECRET),
    )
    request = pb.CreateConnectorRequest(connector=connector, connector_id=CONNECTORS[channel])
    stub.CreateConnector(request, metadata=auth, timeout=10)


def _paid() -> analytics.PropertyFilter:
    """A purchase counts when it has an amount: the event field `revenue` (not a property), which flows read
    as journeys and decision do."""
    paid = analytics.PropertyFilter(property="revenue", operator=analytics.FILTER_OPERATOR_GREATER_THAN)
    paid.values.add().number_value = 0
    return paid


def _flow() -> flow_pb2.Flow:
    [flow] = read_flows(FLOW_FILE)
    flow.name = "flows/demo-abandoned-cart"
    flow.definition.goal.event.property_filters.append(_paid())
    for step in flow.definition.steps:
        if step.id == "wait_for_purchase":
            step.wait.event.timeout.CopyFrom(duration_pb2.Duration(seconds=WAIT_SECONDS))
            step.wait.event.event.property_filters.append(_paid())
        if step.id == "wait_a_day":
            step.wait.duration.CopyFrom(duration_pb2.Duration(seconds=WAIT_SECONDS))
        if step.HasField("action"):
            channel = "push" if step.action.channel == event_pb2.CHANNEL_PUSH else "email"
            step.action.connector.connector = f"connectors/{CONNECTORS[channel]}"
    return flow


def _policy() -> policy_pb.ContactPolicy:
    marketing = policy_pb.CONTACT_PURPOSE_MARKETING
    return policy_pb.ContactPolicy(
        consent_rules=[
            policy_pb.ConsentRule(
                channel=event_pb2.CHANNEL_PUSH, purpose=marketing, mode=policy_pb.CONSENT_MODE_OPT_IN
            ),
            policy_pb.ConsentRule(
                channel=event_pb2.CHANNEL_EMAIL, purpose=marketing, mode=policy_pb.CONSENT_MODE_OPT_OUT
            ),
        ]
    )


def _event(user_id: str, name: str, at: datetime, on: int, **properties: Any) -> event_pb2.Event:
    props = struct_pb2.Struct()
    props.update(properties)
    return event_pb2.Event(
        event_id=str(uuid.uuid4()),
        type=event_pb2.EVENT_TYPE_TRACK,
        name=name,
        channel=on,  # type: ignore[arg-type]
        timestamp=to_timestamp(at),
        identifiers=[event_pb2.Identifier(type="user_id", value=user_id)],
        properties=props,
    )


def _events(shoppers: tuple[Shopper, ...], name: str) -> list[event_pb2.Event]:
    now, web = datetime.now(UTC), event_pb2.CHANNEL_WEB
    events = []
    for s in shoppers:
        if name == "before":
            if s.prefers_push:
                events.append(_event(s.user_id, "Channel Preference Updated", now, web, channel="push"))
            if s.push_consent:
                consent = {"channel": "push", "purpose": "marketing", "granted": True}
                events.append(_event(s.user_id, "Consent Updated", now, web, **consent))
            if s.spent_eur:
                earlier = now - timedelta(days=30)
                order = _event(s.user_id, "Order Completed", earlier, web, order_id=f"o-{s.user_id}-earlier")
                order.revenue.CopyFrom(money(s.spent_eur, "EUR"))
                events.append(order)
        elif name == "cart":
            cart = {"cart_value": 129, "cart_url": f"https://shop.example/cart/{s.user_id}"}
            events.append(_event(s.user_id, "Cart Abandoned", now, web, **cart))
        elif s.buys:
            order = _event(s.user_id, "Order Completed", now, web, order_id=f"o-{s.user_id}")
            order.revenue.CopyFrom(money(129, "EUR"))
            events.append(order)
    return events


def _suppression(stub: pb_grpc.OrchestratorServiceStub, auth: Auth, person_id: str) -> str:
    check = contact_pb2.ContactCheck(
        channel=event_pb2.CHANNEL_PUSH, purpose=policy_pb.CONTACT_PURPOSE_MARKETING
    )
    result = stub.CheckContact(
        pb.CheckContactRequest(person_id=person_id, checks=[check]), metadata=auth, timeout=10
    )
    violations = result.results[0].violations
    return "; ".join(
        "push: " + contact_pb2.ContactBlockReason.Name(v.reason).removeprefix("CONTACT_BLOCK_REASON_").lower()
        for v in violations
    )


def show_flows(channel: grpc.Channel, auth: Auth, console: Console) -> None:
    stub = pb_grpc.OrchestratorServiceStub(channel)
    ingest = ingest_grpc.IngestServiceStub(channel)
    started = time.monotonic()
    with Receiver().running() as receiver:
        for name in CONNECTORS:
            _connector(stub, auth, name, f"{receiver.base}/{name}")
        flow = _flow()
        created = stub.CreateFlow(
            pb.CreateFlowRequest(flow=flow, flow_id="demo-abandoned-cart"), metadata=auth, timeout=10
        )
        published = stub.PublishFlow(pb.PublishFlowRequest(name=created.flow.name), metadata=auth, timeout=10)
        stub.UpdateContactPolicy(
            pb.UpdateContactPolicyRequest(contact_policy=_policy()), metadata=auth, timeout=10
        )
        console.print(
            f"[bold]Flows[/bold]: {FLOW_FILE.name} published as {published.flow.name} version "
            f"{published.flow.published_version}, its 1 h wait shortened to {WAIT_SECONDS} s for the demo, "
            "a purchase counting when its revenue is above 0 (the wait's and the goal's filter on the event "
            "field); "
            f"connectors {', '.join(f'connectors/{c}' for c in CONNECTORS.values())} (webhooks to the demo's "
            "receiver); policy: push marketing needs opt-in consent"
        )
        ingest.TrackBatch(
            ingest_pb.TrackBatchRequest(events=_events(SHOPPERS, "before")), metadata=auth, timeout=10
        )
        time.sleep(0.5)
        ingest.TrackBatch(
            ingest_pb.TrackBatchRequest(events=_events(SHOPPERS, "cart")), metadata=auth, timeout=10
        )
        time.sleep(1.0)
        ingest.TrackBatch(
            ingest_pb.TrackBatchRequest(events=_events(SHOPPERS, "after")), metadata=auth, timeout=10
        )
        expected = MESSAGES_PER_CUSTOMER * sum(not s.buys for s in SHOPPERS)
        wait_for_count(lambda: len(receiver.received), expected, limit_s=30)
        received = list(receiver.received)
        took = time.monotonic() - started
        win_back = run_win_back(
            channel, auth, receiver.received, f"connectors/{CONNECTORS['email']}", console
        )
    by_person: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, key, body in received:
        by_person.setdefault(body["data"]["person_id"], []).append((path, key, body))
    table = Table(title="abandoned cart: what each customer received", title_justify="left")
    for column in ("customer", "story", "received", "template", "policy suppressed"):
        table.add_column(column)
    persons = _persons(channel, auth)
    for s in SHOPPERS:
        person_id = persons.get(s.user_id, "")
        got = by_person.get(person_id, [])
        suppressed = (
            _suppression(stub, auth, person_id) if person_id and s.prefers_push and not s.buys else ""
        )
        if not got:
            nothing = "nothing (bought: goal reached)" if s.buys else "nothing"
            table.add_row(s.user_id, s.story, nothing, "-", suppressed or "-")
        for i, (path, _, body) in enumerate(got):
            via = f"{body['type'].removeprefix('message.')} via connectors/{CONNECTORS[path.strip('/')]}"
            first = i == 0
            table.add_row(
                s.user_id if first else "",
                s.story if first else "",
                via,
                body["data"].get("template_id", ""),
                (suppressed or "-") if first else "",
            )
    console.print(table)
    keys = [key for _, key, _ in received]
    console.print(
        f"{len(received)} messages delivered through connectors, each once by its Idempotency-Key "
        f"({len(set(keys))} distinct); flow step took {took:.1f} s"
    )
    _show_stats(stub, auth, created.flow.name, console)
    _show_timeline(channel, auth, persons["u-cart-bo"], console)
    reader = Reader(journeys_grpc.JourneyServiceStub(channel), auth, console)
    reader.name_customers()
    show_win_back(win_back, {**reader.names, **{p: u for u, p in persons.items()}}, console)


def _show_stats(stub: pb_grpc.OrchestratorServiceStub, auth: Auth, name: str, console: Console) -> None:
    """GetFlowStats: the live counts per step, as a marketer reads them."""
    stats = stub.GetFlowStats(pb.GetFlowStatsRequest(name=name), metadata=auth, timeout=10).stats
    table = Table(
        title=f"GetFlowStats {name}: {stats.entered_count} entered, {stats.converted_count} converted, "
        f"{stats.suppressed_count} suppressed",
        title_justify="left",
    )
    for column in ("step", "reached", "sent", "suppressed", "paths taken"):
        table.add_column(column)
    for step in stats.steps:
        if not step.entered_count:
            continue
        paths = ", ".join(
            f"{b.label or 'next'} → {b.next_step_id or 'exit'}: {b.count}" for b in step.branches
        )
        table.add_row(
            step.step_id,
            str(step.entered_count),
            str(step.sent_count or ""),
            str(step.suppressed_count or ""),
            paths,
        )
    console.print(table)
    console.print(
        "offer_by_value asked Decide first (placement cart_recovery): with no model deployed for it the "
        "decision falls back, so the customer-value tier chose the offer"
    )


def _show_timeline(channel: grpc.Channel, auth: Auth, person_id: str, console: Console) -> None:
    """The contact ledger's sends and suppressions reach the customer's timeline as events (through ingest,
    like any event): u-cart-bo's, read back from the journey store."""
    journeys = journeys_grpc.JourneyServiceStub(channel)
    request = journeys_pb.GetTimelineRequest(
        person_id=person_id, event_names=["Contact Sent", "Contact Suppressed"], page_size=20
    )
    deadline, events = time.monotonic() + 20, []
    while time.monotonic() < deadline:
        events = list(journeys.GetTimeline(request, metadata=auth, timeout=10).events)
        if len(events) >= 3:  # the push suppressed, the reminder and the offer sent
            break
        time.sleep(0.5)
    # A suppression and the send that replaced it share their moment: the suppression reads first.
    events.sort(key=lambda e: (e.timestamp.ToMicroseconds(), e.name != "Contact Suppressed"))
    lines = []
    for event in events:
        fields = event.properties.fields
        what = f"{event.name}: {channel_name(event.channel)}"
        if event.name == "Contact Suppressed":
            reasons = [
                r.struct_value.fields["reason"].string_value for r in fields["reasons"].list_value.values
            ]
            what += " (" + ", ".join(r.removeprefix("CONTACT_BLOCK_REASON_").lower() for r in reasons) + ")"
        lines.append(f"{what} at step {fields['flow_step_id'].string_value}")
    console.print("u-cart-bo's timeline in the journey store (GetTimeline): " + "; ".join(lines))


def _persons(channel: grpc.Channel, auth: Auth) -> dict[str, str]:
    identity = identity_grpc.IdentityServiceStub(channel)
    found: dict[str, str] = {}
    for s in SHOPPERS:
        ref = event_pb2.PersonRef(identifier=event_pb2.Identifier(type="user_id", value=s.user_id))
        person = identity.GetProfile(identity_pb.GetProfileRequest(person=ref), metadata=auth, timeout=10)
        found[s.user_id] = person.profile.person_id
    return found
