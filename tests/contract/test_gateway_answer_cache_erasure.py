"""The gateway's kept answers (ADR 58) after a person's erasure (ADR 73).

A console asks for answers up to a day old (`max-stale`); once a person is erased, no replica may keep serving
their profile or events: the replica the erasure passed through drops the tenant's answers at once, another
follows identity's override feed, and a new answer saying NOT_FOUND replaces the kept one everywhere."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import grpc
import httpx
import pytest

from tests.conftest import start_server
from tests.contract.test_gateway_json_bridge import (
    GET_PROFILE,
    GET_TIMELINE,
    OPERATOR,
    Tenant,
    _http,
    _post,
    _track_one_more,
    _wait_for_events,
)
from wayline.api.v1 import annotations_pb2
from wayline.common.server import Server
from wayline.gateway.v1 import api_key_pb2
from wayline.gateway.v1 import gateway_service_pb2 as admin_pb
from wayline.gateway.v1 import gateway_service_pb2_grpc as admin_grpc
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.identity.v1 import identity_service_pb2_grpc as identity_grpc
from wayline_cli.suite import free_port
from wayline_gateway.service import gateway_service
from wayline_gateway.settings import GatewaySettings

STALE = {"Cache-Control": "max-stale=86400"}  # what the console sends on first view
NEVER = 3600.0  # a poll or refresh that does not happen within a test
DELETE_PROFILE = "/wayline.identity.v1.IdentityService/DeleteProfile"


@contextmanager
def _replica(gateway_server: Server, tmp_path: Path, name: str, **update: Any) -> Iterator[Server]:
    """Another gateway replica over the same backends, with a key store of its own."""
    base = cast(GatewaySettings, gateway_server.settings)
    data = tmp_path / name
    data.mkdir()
    settings = base.model_copy(update={"data_dir": data, "port": 0, "http_port": free_port(), **update})
    server = start_server(gateway_service(settings), settings)
    try:
        yield server
    finally:
        server.stop(0)


def _tenant_on(server: Server, tenant_id: str) -> None:
    with grpc.insecure_channel(server.address) as channel:
        admin_grpc.AdminServiceStub(channel).CreateTenant(
            admin_pb.CreateTenantRequest(tenant_id=tenant_id), metadata=OPERATOR, timeout=10
        )


def _key_on(channel: grpc.Channel, tenant: str, scope: annotations_pb2.Scope.ValueType) -> str:
    created = admin_grpc.AdminServiceStub(channel).CreateApiKey(
        admin_pb.CreateApiKeyRequest(parent=tenant, api_key=api_key_pb2.ApiKey(scopes=[scope])),
        metadata=OPERATOR,
        timeout=10,
    )
    return created.secret


class Person:
    """A person tracked in a tenant, with their profile and timeline kept by a replica's answer cache."""

    def __init__(
        self, tracked_through: grpc.Channel, tenant: Tenant, channel: grpc.Channel, read_key: str
    ) -> None:
        """Tracked through the gateway at `tracked_through` (where `tenant` was made); read through the one at
        `channel` with `read_key`."""
        self.user = f"erase-user-{uuid.uuid4().hex[:8]}"
        self.ref = {"person": {"identifier": {"type": "user_id", "value": self.user}}}
        self.read_key = read_key
        _track_one_more(tracked_through, tenant, self.user, "Signed Up")
        self.person_id = ""
        self._channel = channel

    def keep_on(self, http: httpx.Client) -> None:
        """Read the profile (until identity knows it) and the timeline, with `max-stale`: kept."""
        deadline = time.monotonic() + 20
        while (found := _post(http, GET_PROFILE, self.ref, self.read_key)).status_code != 200:
            assert time.monotonic() < deadline, found.text
            time.sleep(0.1)
        self.person_id = found.json()["profile"]["personId"]
        _wait_for_events(self._channel, self.person_id, self.read_key, 1)
        assert _post(http, GET_PROFILE, self.ref, self.read_key, **STALE).status_code == 200
        assert len(self.timeline(http).json()["events"]) == 1

    def profile(self, http: httpx.Client) -> httpx.Response:
        return _post(http, GET_PROFILE, self.ref, self.read_key, **STALE)

    def timeline(self, http: httpx.Client) -> httpx.Response:
        return _post(http, GET_TIMELINE, {"personId": self.person_id}, self.read_key, **STALE)

    def served(self, http: httpx.Client) -> list[str]:
        """What the replica still serves of the person to a `max-stale` caller."""
        problems = []
        profile, timeline = self.profile(http), self.timeline(http)
        if profile.status_code == 200:
            problems.append(f"GetProfile (max-stale) answers the erased profile: {profile.json()}")
        if timeline.status_code == 200 and timeline.json().get("events"):
            problems.append(f"GetTimeline (max-stale) answers {len(timeline.json()['events'])} erased events")
        return problems


def _erase(channel: grpc.Channel, admin_key: str, person_id: str, http: httpx.Client | None = None) -> None:
    """DeleteProfile through the gateway at `channel` (over HTTP when `http` is given), and wait until every
    store confirmed (DONE)."""
    admin = (("authorization", f"Bearer {admin_key}"),)
    stub = identity_grpc.IdentityServiceStub(channel)
    if http is None:
        erasure_id = stub.DeleteProfile(
            identity_pb.DeleteProfileRequest(person_id=person_id, reason="test"), metadata=admin, timeout=10
        ).erasure.erasure_id
    else:
        answer = _post(http, DELETE_PROFILE, {"personId": person_id, "reason": "test"}, admin_key)
        assert answer.status_code == 200, answer.text
        erasure_id = answer.json()["erasure"]["erasureId"]
    deadline = time.monotonic() + 30
    request = identity_pb.GetErasureRequest(erasure_id=erasure_id)
    while (
        stub.GetErasure(request, metadata=admin, timeout=10).erasure.state != identity_pb.ERASURE_STATE_DONE
    ):
        assert time.monotonic() < deadline, "the erasure never completed"
        time.sleep(0.2)


@pytest.mark.timeout(120)
def test_an_erased_person_is_not_served_from_kept_answers(
    gateway_server: Server, gateway_channel: grpc.Channel
) -> None:
    tenant = Tenant(gateway_channel)
    person = Person(gateway_channel, tenant, gateway_channel, tenant.key(annotations_pb2.SCOPE_READ))
    with _http(gateway_server) as http:
        person.keep_on(http)
        _erase(gateway_channel, tenant.key(annotations_pb2.SCOPE_ADMIN), person.person_id)
        assert _post(http, GET_PROFILE, person.ref, person.read_key).status_code == 404  # a new answer: gone
        assert person.served(http) == []


@pytest.mark.timeout(120)
@pytest.mark.parametrize("through", ["grpc", "http"])
def test_an_erasure_through_a_replica_drops_its_kept_answers_at_once(
    gateway_server: Server, tmp_path: Path, through: str
) -> None:
    # Its feed follower does not poll within the test: only the erasure passing through it can drop them.
    with (
        _replica(gateway_server, tmp_path, "r", answer_erasure_poll_seconds=NEVER) as replica,
        grpc.insecure_channel(replica.address) as channel,
        _http(replica) as http,
    ):
        tenant = Tenant(channel)
        person = Person(channel, tenant, channel, tenant.key(annotations_pb2.SCOPE_READ))
        person.keep_on(http)
        admin_key = tenant.key(annotations_pb2.SCOPE_ADMIN)
        _erase(channel, admin_key, person.person_id, http if through == "http" else None)
        assert person.served(http) == []


@pytest.mark.timeout(120)
def test_an_erasure_through_another_replica_reaches_this_ones_answers_through_the_feed(
    gateway_server: Server, gateway_channel: grpc.Channel, tmp_path: Path
) -> None:
    tenant = Tenant(gateway_channel)  # on the first replica, where the erasure is made
    with _replica(gateway_server, tmp_path, "b", answer_erasure_poll_seconds=0.1) as other:
        _tenant_on(other, tenant.name.rpartition("/")[2])
        with grpc.insecure_channel(other.address) as channel:
            read_key = _key_on(channel, tenant.name, annotations_pb2.SCOPE_READ)
            person = Person(gateway_channel, tenant, channel, read_key)
            with _http(other) as http:
                person.keep_on(http)  # the replica reads the tenant's place in the feed before computing
                _erase(gateway_channel, tenant.key(annotations_pb2.SCOPE_ADMIN), person.person_id)
                deadline = time.monotonic() + 5  # DONE waits for no gateway: one poll more at most
                while problems := person.served(http):
                    assert time.monotonic() < deadline, problems
                    time.sleep(0.1)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("refresh", ["foreground", "background"])
def test_a_new_answer_saying_not_found_replaces_the_kept_one(
    gateway_server: Server, gateway_channel: grpc.Channel, tmp_path: Path, refresh: str
) -> None:
    """On a replica the erasure neither passed through nor reached through the feed: a call without
    `max-stale` (foreground), or the background refresh a `max-stale` call starts, answers NOT_FOUND, and
    that answer, not the kept profile, is what the next `max-stale` caller gets."""
    tenant = Tenant(gateway_channel)
    refresh_after = NEVER if refresh == "foreground" else 0.01
    with _replica(
        gateway_server,
        tmp_path,
        refresh,
        answer_erasure_poll_seconds=NEVER,
        answer_refresh_seconds=refresh_after,
    ) as other:
        _tenant_on(other, tenant.name.rpartition("/")[2])
        with grpc.insecure_channel(other.address) as channel:
            read_key = _key_on(channel, tenant.name, annotations_pb2.SCOPE_READ)
            person = Person(gateway_channel, tenant, channel, read_key)
            with _http(other) as http:
                person.keep_on(http)
                _erase(gateway_channel, tenant.key(annotations_pb2.SCOPE_ADMIN), person.person_id)
                if refresh == "foreground":
                    assert person.profile(http).status_code == 200  # kept, and nothing said otherwise yet
                    assert _post(http, GET_PROFILE, person.ref, person.read_key).status_code == 404
                    assert person.profile(http).status_code == 404
                else:
                    deadline = time.monotonic() + 10  # each call serves the kept answer and refreshes it
                    while (profile := person.profile(http)).status_code == 200:
                        assert time.monotonic() < deadline, "the refresh's NOT_FOUND never replaced it"
                        time.sleep(0.05)
                    assert profile.status_code == 404
