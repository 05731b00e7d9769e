"""The demo's predicted-customer-value step: a year of a shop's orders (drawn from BG/NBD and Gamma-Gamma
with known parameters) joins the demo customers' orders, `wayline ml clv`'s job fits the models on everyone's
lifetime summary and writes the predictions back as traits, and the demo customers' traits are read back as
person properties."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import grpc
from google.protobuf import struct_pb2
from rich.console import Console

from wayline.client import money, track_event
from wayline.event.v1 import event_pb2
from wayline.ingest.v1 import ingest_service_pb2 as ingest_pb
from wayline.ingest.v1 import ingest_service_pb2_grpc as ingest_grpc
from wayline.journeys.v1 import feature_pb2 as feature
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as journeys_grpc
from wayline_cli import demo
from wayline_cli.demo_reading import TIMEOUT, Reader
from wayline_cli.ml_clv import summary_table
from wayline_ml.clv.bgnbd import BgNbdParams
from wayline_ml.clv.gamma_gamma import GammaGammaParams
from wayline_ml.clv.run import ClvJob, ClvReport, run_clv
from wayline_ml.clv.simulate import simulate
from wayline_ml.clv.store import SummaryQuery

__all__ = ["show_clv"]

ORDER = "Order Completed"
TRUTH = BgNbdParams(r=0.8, alpha=40.0, a=0.8, b=2.5)  # one order per ~50 days; a third leave after a repeat
VALUE = GammaGammaParams(p=6.0, q=4.0, v=60.0)  # orders worth 120 EUR on average
TRAITS = ("clv_probability_alive", "clv_expected_purchases_90d", "clv_expected_value_365d", "clv_fit")


def _shop_orders(now: datetime) -> list[event_pb2.Event]:
    shop = simulate(300, 365, TRUTH, VALUE, seed=11)
    start = now - timedelta(days=366)
    return [
        track_event(
            ORDER,
            identifiers={"user_id": f"shop-{customer}"},
            channel="web",
            timestamp=start + timedelta(days=float(at)),
            revenue=money(f"{value:.2f}", demo.CURRENCY),
        )
        for customer, at, value in zip(shop.customer, shop.time, shop.value, strict=True)
    ]


def show_clv(channel: grpc.Channel, gateway: str, api_key: str, console: Console) -> None:
    began = time.monotonic()
    auth = (("authorization", f"Bearer {api_key}"),)
    now = datetime.now(UTC).replace(microsecond=0)
    orders = _shop_orders(now)
    ingest = ingest_grpc.IngestServiceStub(channel)
    for start in range(0, len(orders), 500):
        request = ingest_pb.TrackBatchRequest(events=orders[start : start + 500], backfill=True)
        ingest.TrackBatch(request, metadata=auth, timeout=30)
    query = SummaryQuery(currency=demo.CURRENCY, as_of=now, purchase_event_names=(ORDER,))
    journeys = journeys_grpc.JourneyServiceStub(channel)
    _wait_for_orders(journeys, auth, query, len(orders))
    console.print(
        f"[bold]wayline ml clv[/bold]: a shop's {len(orders):,} orders of a year (300 customers drawn from "
        f"BG/NBD r {TRUTH.r}, alpha {TRUTH.alpha:g} days, a {TRUTH.a}, b {TRUTH.b} and Gamma-Gamma p "
        f"{VALUE.p:g}, q {VALUE.q:g}, gamma {VALUE.v:g}) join the demo customers' orders"
    )
    report = run_clv(ClvJob(gateway=gateway, api_key=api_key, query=query))
    console.print(summary_table(report))
    reader = Reader(journeys, auth, console)
    table = reader.table(
        "GetProfileFeatures",
        "the demo customers' CLV traits, read back as person properties (PERSON_PROPERTY features)",
        "customer",
        "P(alive)",
        "purchases 90d",
        "value 365d",
    )
    spec = _traits_spec()
    for customer in demo.CUSTOMERS:
        values = _traits(journeys, auth, spec, customer.user_id, report)
        if values is None:
            table.add_row(customer.user_id, "-", "-", "no order: not valued")
            continue
        alive, purchases, value = (values[name].number_value for name in TRAITS[:3])
        table.add_row(customer.user_id, f"{alive:.2f}", f"{purchases:.2f}", f"{value:,.2f} {demo.CURRENCY}")
    console.print(table)
    console.print(f"predicted customer value: {time.monotonic() - began:.1f} s in all")


def _wait_for_orders(
    journeys: journeys_grpc.JourneyServiceStub,
    auth: tuple[tuple[str, str], ...],
    query: SummaryQuery,
    sent: int,
) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        counted, token = 0, ""
        while True:
            page = journeys.GetCustomerValue(query.request(token), metadata=auth, timeout=TIMEOUT)
            counted += sum(v.purchase_count for v in page.values)
            token = page.next_page_token
            if not token:
                break
        if counted >= sent:
            return
        time.sleep(0.2)
    raise RuntimeError(f"the shop's {sent} orders were not all stored within 30 s")


def _traits_spec() -> feature.FeatureSpec:
    f = feature.FeatureDefinition
    number, category = feature.FEATURE_VALUE_TYPE_FLOAT, feature.FEATURE_VALUE_TYPE_CATEGORY
    return feature.FeatureSpec(
        name="demo-clv",
        version="1",
        features=[
            f(
                name=name,
                aggregation=feature.FEATURE_AGGREGATION_PERSON_PROPERTY,
                property=f"person.{name}",
                value_type=category if name == "clv_fit" else number,
                categories=["-"] if name == "clv_fit" else [],
            )
            for name in TRAITS
        ],
    )


def _traits(
    journeys: journeys_grpc.JourneyServiceStub,
    auth: tuple[tuple[str, str], ...],
    spec: feature.FeatureSpec,
    user_id: str,
    report: ClvReport,
) -> dict[str, struct_pb2.Value] | None:
    """The customer's traits once this fit's have landed; None for a customer the fit did not value (no
    order)."""
    person = event_pb2.PersonRef(identifier=event_pb2.Identifier(type="user_id", value=user_id))
    request = journeys_pb.GetProfileFeaturesRequest(person=person, spec=spec)
    deadline = time.monotonic() + 30
    while True:
        vector = journeys.GetProfileFeatures(request, metadata=auth, timeout=TIMEOUT).features
        if vector.person_id not in report.customers.person_ids:
            return None
        if vector.values["clv_fit"].string_value == report.key.fit_id:
            return dict(vector.values)
        if time.monotonic() > deadline:
            raise RuntimeError(f"{user_id}'s CLV traits did not land within 30 s")
        time.sleep(0.2)
