"""The online feature service over real sockets: events through ObserveEvents, reads equal to journeys'
GetProfileFeatures at the same time, the fallbacks (journeys, then defaults within the budget), tenants apart,
and the read cost measured."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest

from tests.decision.features.online import (
    SETTLE_AFTER_S,
    Rig,
    decision_settings,
    event,
    metadata,
    new_tenant,
    now_us,
    running,
    spec,
)
from tests.decision.model_packages import build_package
from tests.journeys.conftest import field_violations
from wayline.common.server import Server
from wayline.common.timestamps import MAX_TIMESTAMP_SECONDS
from wayline.decision.v1 import decision_service_pb2 as pb
from wayline.decision.v1 import decision_service_pb2_grpc as pb_grpc
from wayline_cli.suite import free_port
from wayline_decision.features.reader import FeatureOrigin
from wayline_decision.features.runtime import FeatureRuntime
from wayline_decision.features.spec_compiler import compile_spec
from wayline_decision.packages import PackageId
from wayline_decision.registry import RegisteredVersion
from wayline_decision.serving.loaded import load_version
from wayline_decision.validation import ValidationLimits, read_manifest

SPEC = spec()
COMPILED = compile_spec(SPEC, "feature_spec.")
DEFAULTS = [f.default for f in COMPILED.features]


@pytest.fixture(scope="module")
def rig(
    tmp_path_factory: pytest.TempPathFactory, journeys_server: Server, identity_server: Server
) -> Iterator[Rig]:
    settings = decision_settings(tmp_path_factory.mktemp("online"), journeys_server, identity_server)
    with running(settings, journeys_server) as found:
        yield found


def _registered(tenant: str, rig: Rig) -> int:
    """Register SPEC for the tenant and wait until its persons can be verified; the coverage start."""
    since = now_us()
    rig.runtime.features.register(tenant, SPEC, since)
    time.sleep(SETTLE_AFTER_S)
    return since


def test_online_reads_equal_get_profile_features_once_the_person_is_known_to_be_whole(rig: Rig) -> None:
    tenant = new_tenant("online")
    _registered(tenant, rig)
    ann, bob = "ann", "bob"
    rig.feed(
        tenant,
        event(ann, hours_ago=30 * 24, price=12.5, plan="basic"),
        event(ann, hours_ago=50, price=0.1),
        event(ann, hours_ago=49, price=0.2, plan="pro"),
        event(ann, hours_ago=2, name="Checkout", price=7.0),
        event(ann, hours_ago=1, tier="gold"),
        event(bob, hours_ago=3),
    )
    as_of = now_us()
    first = rig.read(tenant, SPEC, ann, as_of)
    assert first.origin is FeatureOrigin.JOURNEYS  # not verified yet: journeys answers, and is asked
    expected = rig.profile(tenant, SPEC, ann, as_of)
    assert first.values == expected
    assert expected[0] == 5.0
    assert expected[2] == 0.1 + 0.2 + 7.0 + 12.5
    assert expected[6] == "gold"

    assert rig.runtime.features.wait_for_verifications(60)
    for person in (ann, bob, "carol"):  # carol has no event at all: her defaults are exact too
        read = rig.read_online(tenant, SPEC, person, as_of)
        assert read.origin is FeatureOrigin.ONLINE, person
        assert read.values == rig.profile(tenant, SPEC, person, as_of), person
    assert rig.read(tenant, SPEC, "carol", as_of).values == DEFAULTS

    # A new event changes the online read at once, as it changes journeys'.
    rig.feed(tenant, event(bob, hours_ago=0.5, price=3.0, plan="trial"))
    later = now_us()
    read = rig.read(tenant, SPEC, bob, later)
    assert read.origin is FeatureOrigin.ONLINE
    assert read.values == rig.profile(tenant, SPEC, bob, later)
    assert read.values[0] == 2.0
    assert read.values[3] == "trial"


def test_a_loaded_model_registers_its_spec_and_reads_through_the_feature_reader(
    rig: Rig, tmp_path: Path
) -> None:
    tenant = new_tenant("model")
    directory = build_package(tmp_path / "p", model_id="offers", version="1")
    manifest = read_manifest(directory)
    registered = RegisteredVersion(
        PackageId(manifest.model_id, manifest.version), manifest, "digest", datetime.now(UTC), str(directory)
    )
    model = load_version(tenant, registered, directory, ValidationLimits(max_parity_tolerance=1e-3))
    rig.runtime.features.loaded(model)
    time.sleep(SETTLE_AFTER_S)
    rig.feed(tenant, event("dan", hours_ago=4, price=20.0), event("dan", hours_ago=1))
    as_of = now_us()
    assert rig.runtime.features.read(model, "dan", as_of, 60).origin is FeatureOrigin.JOURNEYS
    assert rig.runtime.features.wait_for_verifications(60)
    read = rig.runtime.features.read(model, "dan", as_of, 0.02)
    assert read.origin is FeatureOrigin.ONLINE
    assert read.values == rig.profile(tenant, manifest.feature_spec, "dan", as_of)
    assert read.values[0] == 2.0
    model.encode(read.values)  # the values feed the model as they are


def test_a_person_with_history_from_before_the_spec_is_read_from_journeys(rig: Rig) -> None:
    tenant = new_tenant("history")
    old = now_us()
    rig.feed(tenant, event("eve", hours_ago=24, received_us=old))  # consumed before the spec existed
    since = _registered(tenant, rig)
    assert since > old
    rig.feed(tenant, event("eve", hours_ago=0.1, price=5.0))
    as_of = now_us()
    assert rig.read(tenant, SPEC, "eve", as_of).origin is FeatureOrigin.JOURNEYS
    assert rig.runtime.features.wait_for_verifications(60)
    read = rig.read(tenant, SPEC, "eve", as_of)
    assert read.origin is FeatureOrigin.JOURNEYS  # the state lacks the first event, for good
    assert read.values == rig.profile(tenant, SPEC, "eve", as_of)
    assert read.values[0] == 2.0


def test_a_read_before_the_settle_horizon_goes_to_journeys(rig: Rig) -> None:
    tenant = new_tenant("horizon")
    _registered(tenant, rig)
    rig.feed(tenant, event("fay", hours_ago=2))
    early = now_us()
    assert rig.read_online(tenant, SPEC, "fay", early).origin is FeatureOrigin.ONLINE
    time.sleep(SETTLE_AFTER_S * 1.5)
    rig.runtime.features.advance()  # the horizon passes `early`
    read = rig.read(tenant, SPEC, "fay", early - 60_000_000)
    assert read.origin is FeatureOrigin.JOURNEYS
    assert read.values == rig.profile(tenant, SPEC, "fay", early - 60_000_000)


def test_tenants_never_see_each_others_features(rig: Rig) -> None:
    first, second = new_tenant("left"), new_tenant("right")
    _registered(first, rig)
    _registered(second, rig)
    rig.feed(first, event("gil", hours_ago=1, price=9.0), event("gil", hours_ago=2, tier="gold"))
    as_of = now_us()
    mine = rig.read_online(first, SPEC, "gil", as_of)
    theirs = rig.read_online(second, SPEC, "gil", as_of)
    assert mine.origin is theirs.origin is FeatureOrigin.ONLINE
    assert mine.values[0] == 2.0
    assert mine.values[2] == 9.0
    assert theirs.values == DEFAULTS == rig.profile(second, SPEC, "gil", as_of)


def test_observe_events_is_idempotent_and_validates_every_event(rig: Rig) -> None:
    tenant = new_tenant("observe")
    _registered(tenant, rig)
    sent = event("hal", hours_ago=1, price=4.0)
    rig.feed(tenant, sent)
    assert rig.observe(tenant, sent, sent) == 2  # copies count as processed, and change nothing
    as_of = now_us()
    assert rig.read_online(tenant, SPEC, "hal", as_of).values[:3] == [1.0, 1.0, 4.0]

    stub = pb_grpc.DecisionServiceStub(grpc.insecure_channel(rig.server.address))
    nameless = event("hal", hours_ago=1)
    nameless.event_id = ""
    unresolved = event("", hours_ago=1)
    good = event("hal", hours_ago=1)
    with pytest.raises(grpc.RpcError) as refused:
        stub.ObserveEvents(
            pb.ObserveEventsRequest(events=[good, nameless, unresolved]),
            metadata=metadata(tenant),
            timeout=10,
        )
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(refused.value) == {
        "events[1].event_id": "REQUIRED",
        "events[2].person_id": "REQUIRED",
    }
    assert "nothing was consumed" in (refused.value.details() or "")
    too_many = [event("hal", hours_ago=1)] * 10_001
    with pytest.raises(grpc.RpcError) as refused:
        stub.ObserveEvents(pb.ObserveEventsRequest(events=too_many), metadata=metadata(tenant), timeout=30)
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "10,000" in (refused.value.details() or "")
    assert rig.read(tenant, SPEC, "hal", as_of).values[:3] == [1.0, 1.0, 4.0]  # nothing refused was consumed
    with pytest.raises(grpc.RpcError) as anonymous:
        stub.ObserveEvents(
            pb.ObserveEventsRequest(events=[good]),
            metadata=(("x-wayline-internal-token", "wrong"), ("x-wayline-tenant", tenant)),
            timeout=10,
        )
    assert anonymous.value.code() is grpc.StatusCode.UNAUTHENTICATED


def test_observe_events_names_times_and_enums_the_contract_does_not_define(rig: Rig) -> None:
    """Were consumed unchecked: a time past year 9999 went into the online state as microseconds no
    datetime holds, an unknown enum number was kept as no type or channel (matching no filter) while journeys
    refuses the same event. INVALID_ARGUMENT naming each field, and nothing of the call consumed."""
    tenant = new_tenant("observe-range")
    _registered(tenant, rig)
    sent = event("ivy", hours_ago=1, price=4.0)
    rig.feed(tenant, sent)
    as_of = now_us()
    before = rig.read_online(tenant, SPEC, "ivy", as_of).values
    late, nanos, unknown = (event("ivy", hours_ago=1, price=2.0) for _ in range(3))
    late.timestamp.seconds = MAX_TIMESTAMP_SECONDS + 1
    late.sent_at.seconds = 2**62
    nanos.received_at.nanos = -1
    unknown.channel = 99  # type: ignore[assignment]
    unknown.type = 42  # type: ignore[assignment]
    stub = pb_grpc.DecisionServiceStub(grpc.insecure_channel(rig.server.address))
    with pytest.raises(grpc.RpcError) as refused:
        stub.ObserveEvents(
            pb.ObserveEventsRequest(events=[event("ivy", hours_ago=1), late, nanos, unknown]),
            metadata=metadata(tenant),
            timeout=10,
        )
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(refused.value) == {
        "events[1].timestamp": "OUT_OF_RANGE",
        "events[1].sent_at": "OUT_OF_RANGE",
        "events[2].received_at.nanos": "OUT_OF_RANGE",
        "events[3].channel": "INVALID",
        "events[3].type": "INVALID",
    }
    assert rig.read_online(tenant, SPEC, "ivy", as_of).values == before  # nothing of the call consumed


def test_journeys_down_or_slower_than_the_budget_gives_the_defaults_within_the_budget(
    tmp_path: Path, journeys_server: Server
) -> None:
    tenant = new_tenant("fallback")
    down = decision_settings(
        tmp_path / "down", journeys_server, None, journeys_address=f"127.0.0.1:{free_port()}"
    )
    runtime = FeatureRuntime(down)
    runtime.start()
    try:
        runtime.features.register(tenant, SPEC)
        started = time.perf_counter()
        read = runtime.features.read_spec(tenant, SPEC, COMPILED, "ivy", now_us(), budget_s=0.02)
        elapsed = time.perf_counter() - started
        assert read.origin is FeatureOrigin.DEFAULTS
        assert read.values == DEFAULTS
        assert elapsed < 0.02 + 0.05
        print(f"\njourneys down, 20 ms budget: defaults after {elapsed * 1000:.1f} ms")
    finally:
        runtime.stop()

    slow = decision_settings(tmp_path / "slow", journeys_server, None)
    runtime = FeatureRuntime(slow)
    runtime.start()
    try:
        runtime.features.register(tenant, SPEC)
        timings: list[float] = []
        for _ in range(5):  # GetProfileFeatures on chDB takes tens of milliseconds at least
            started = time.perf_counter()
            read = runtime.features.read_spec(tenant, SPEC, COMPILED, "ivy", now_us(), budget_s=0.002)
            timings.append(time.perf_counter() - started)
            assert read.origin is FeatureOrigin.DEFAULTS
            assert read.values == DEFAULTS
        assert statistics.median(timings) < 0.002 + 0.03
        print(
            f"journeys slower than a 2 ms budget: defaults after "
            f"{statistics.median(timings) * 1000:.1f} ms p50"
        )
    finally:
        runtime.stop()


def test_reads_stay_online_and_exact_while_observe_events_writes(rig: Rig) -> None:
    """Online reads of a tenant's persons keep answering from the online state, with the same values, while
    ObserveEvents writes other persons of the tenant from the gRPC thread pool. (What a read costs is
    measured by `python -m bench decision-state`, not asserted here.)"""
    tenant = new_tenant("cost")
    _registered(tenant, rig)
    persons = [f"p{i}" for i in range(20)]
    events = [
        event(p, hours_ago=h * 7.3, price=float(h), plan=f"plan{h % 3}") for p in persons for h in range(40)
    ]
    for i in range(0, len(events), 500):
        rig.feed(tenant, *events[i : i + 500])
    as_of = now_us()
    for p in persons:
        assert rig.read_online(tenant, SPEC, p, as_of).origin is FeatureOrigin.ONLINE
    read = rig.runtime.features.read_spec

    expected = {p: read(tenant, SPEC, COMPILED, p, as_of, budget_s=0.02).values for p in persons[:10]}
    writing, written = threading.Event(), [0]

    def write() -> None:
        while not writing.is_set():
            rig.observe(tenant, *(event(f"w{written[0]}-{i}", hours_ago=1, price=1.0) for i in range(100)))
            written[0] += 1

    writer = threading.Thread(target=write)
    writer.start()
    reads = 0
    try:
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            person = persons[reads % 10]
            found = read(tenant, SPEC, COMPILED, person, as_of, budget_s=0.02)
            reads += 1
            assert found.origin is FeatureOrigin.ONLINE
            assert found.values == expected[person]
            time.sleep(0.0005)  # Decide's reads come with gaps, between the writer's batches
    finally:
        writing.set()
        writer.join()
    assert written[0] > 0  # the reads did overlap writes
    assert reads > 100
