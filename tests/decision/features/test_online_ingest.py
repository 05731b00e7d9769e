"""End to end: an event tracked through ingest reaches the decision service's online state through ingest's
`decision` sink (ObserveEvents, identity resolved) and changes the online read, which stays equal to what
journeys — fed by the same forwarder — computes."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import grpc

from tests.conftest import common_settings, start_server
from tests.decision.features.online import (
    SETTLE_AFTER_S,
    decision_settings,
    eventually,
    metadata,
    new_tenant,
    now_us,
    running,
    spec,
)
from tests.events import make_event
from wayline.common.server import Server
from wayline.event.v1 import event_pb2
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.identity.v1 import identity_service_pb2_grpc as identity_grpc
from wayline.ingest.v1 import ingest_service_pb2 as ingest_pb
from wayline.ingest.v1 import ingest_service_pb2_grpc as ingest_grpc
from wayline_decision.features.reader import FeatureOrigin
from wayline_ingest.service import ingest_service
from wayline_ingest.settings import IngestSettings

SPEC = spec()


def test_an_event_tracked_through_ingest_changes_the_online_read(
    tmp_path: Path, journeys_server: Server, identity_server: Server
) -> None:
    tenant = new_tenant("e2e")
    with running(
        decision_settings(tmp_path / "decision", journeys_server, identity_server), journeys_server
    ) as rig:
        settings = IngestSettings(
            **common_settings(tmp_path / "ingest"),  # type: ignore[arg-type]
            journeys_address=journeys_server.address,
            identity_address=identity_server.address,
            decision_address=rig.server.address,
            sinks=["journeys", "decision"],
        )
        ingest = start_server(ingest_service(settings), settings)
        try:
            rig.runtime.features.register(tenant, SPEC, now_us())
            time.sleep(SETTLE_AFTER_S)
            user = f"user-{uuid.uuid4().hex[:8]}"
            with (
                grpc.insecure_channel(ingest.address) as ingest_channel,
                grpc.insecure_channel(identity_server.address) as identity_channel,
            ):
                track = ingest_grpc.IngestServiceStub(ingest_channel).Track
                identity = identity_grpc.IdentityServiceStub(identity_channel)
                track(
                    ingest_pb.TrackRequest(event=make_event(user, minutes_ago=30)),
                    metadata=metadata(tenant),
                    timeout=10,
                )

                def person() -> str:
                    try:
                        found = identity.GetProfile(
                            identity_pb.GetProfileRequest(
                                person=event_pb2.PersonRef(
                                    identifier=event_pb2.Identifier(type="user_id", value=user)
                                )
                            ),
                            metadata=metadata(tenant),
                            timeout=10,
                        )
                    except grpc.RpcError:
                        return ""
                    return str(found.profile.person_id)

                eventually(lambda: person() != "")
                person_id = person()

                def online_count() -> object:
                    read = rig.read_online(tenant, SPEC, person_id, now_us())
                    return read.values[0] if read.origin is FeatureOrigin.ONLINE else None

                eventually(lambda: online_count() == 1.0)
                track(
                    ingest_pb.TrackRequest(event=make_event(user, minutes_ago=5)),
                    metadata=metadata(tenant),
                    timeout=10,
                )
                eventually(lambda: online_count() == 2.0)  # the online read changed
                as_of = now_us()
                eventually(lambda: rig.profile(tenant, SPEC, person_id, as_of)[0] == 2.0)
                read = rig.read(tenant, SPEC, person_id, as_of)
                assert read.origin is FeatureOrigin.ONLINE
                assert read.values == rig.profile(tenant, SPEC, person_id, as_of)
        finally:
            ingest.stop(0)
