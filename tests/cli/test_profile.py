"""`wayline profile` through a real gateway in front of the suite's identity: a profile stitched from a cookie
and an email by a login event, read by either identifier or by person id, as tables and as JSON (equal to
GetProfile's answer), and an unknown customer refused with NOT_FOUND."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import grpc
from google.protobuf import json_format
from typer.testing import CliRunner

from tests.conftest import API_KEY, INTERNAL_TOKEN, TENANT
from wayline.common.context import INTERNAL_TOKEN_HEADER, TENANT_HEADER
from wayline.common.server import Server
from wayline.common.timestamps import to_timestamp
from wayline.event.v1 import event_pb2
from wayline.identity.v1 import identity_service_pb2 as pb
from wayline.identity.v1 import identity_service_pb2_grpc as pb_grpc
from wayline.identity.v1 import profile_pb2
from wayline_cli.main import app


def wayline(gateway: Server, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["profile", *args, "--gateway", gateway.address, "--api-key", API_KEY])
    # The suite's servers run in this process and log to the same output: their lines are not the CLI's.
    own = [line for line in result.stdout.splitlines() if "[info" not in line and "[warning" not in line]
    return result.exit_code, "\n".join(own), result.stderr


def _resolve(stub: pb_grpc.IdentityServiceStub, *inputs: tuple[datetime, list[tuple[str, str]]]) -> None:
    """Identity resolves the events (as ingest asks it to) in the gateway's tenant."""
    metadata = ((INTERNAL_TOKEN_HEADER, INTERNAL_TOKEN), (TENANT_HEADER, TENANT))
    request = pb.ResolveIdentitiesRequest(
        inputs=[
            pb.IdentityResolutionInput(
                event_id=str(uuid.uuid4()),
                timestamp=to_timestamp(at),
                event_type=event_pb2.EVENT_TYPE_TRACK,
                identifiers=[event_pb2.Identifier(type=t, value=v) for t, v in identifiers],
            )
            for at, identifiers in inputs
        ]
    )
    stub.ResolveIdentities(request, metadata=metadata, timeout=10)


def test_a_stitched_profile_by_identifier_or_person(identity_server: Server, gateway_server: Server) -> None:
    cookie = ("anonymous_id", f"cookie:{uuid.uuid4().hex[:8]}")  # rich would print ":cookie" as an emoji
    email = ("email", f"cli-{uuid.uuid4().hex[:8]}@example.com")
    day = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    with grpc.insecure_channel(identity_server.address) as channel:
        stub = pb_grpc.IdentityServiceStub(channel)
        _resolve(stub, (day, [cookie]), (day + timedelta(minutes=1), [email]))
        _resolve(stub, (day + timedelta(minutes=5), [cookie, email]))  # the login joins the two

    code, out, err = wayline(gateway_server, f"{email[0]}:{email[1]}", "--json")
    assert code == 0, err
    shown = json_format.Parse(out, profile_pb2.Profile(), ignore_unknown_fields=False)
    assert {(i.identifier.type, i.identifier.value) for i in shown.identifiers} == {cookie, email}
    assert len(shown.merged_person_ids) == 1
    assert [m.kind for m in shown.merge_history] == [profile_pb2.MERGE_KIND_AUTOMATIC]

    # By the cookie (a value with a colon of its own) and by person id: the same profile.
    code, by_cookie, err = wayline(gateway_server, f"{cookie[0]}:{cookie[1]}", "--json")
    assert code == 0, err
    assert json.loads(by_cookie) == json.loads(out)
    code, table, err = wayline(gateway_server, shown.person_id)
    assert code == 0, err
    assert f"person {shown.person_id}: first seen 2026-11-02 09:00:00" in table
    assert "2 identifiers; 1 profile merged in" in table
    assert cookie[1] in table
    assert email[1] in table
    merged = shown.merge_history[0]
    assert "automatic" in table
    assert merged.source_person_id in table
    assert f"event {merged.event_id}" in table


def test_an_unknown_customer_is_not_found(gateway_server: Server) -> None:
    code, _, err = wayline(gateway_server, f"email:nobody-{uuid.uuid4().hex[:8]}@example.com")
    assert code == 1
    assert "NOT_FOUND" in err
    code, _, err = wayline(gateway_server, ":x")
    assert code == 2
    assert "type:value" in err


def test_a_profile_past_a_thousand_identifiers_says_how_many_it_holds(
    identity_server: Server, gateway_server: Server
) -> None:
    login = ("user_id", f"shared-{uuid.uuid4().hex[:8]}")
    day = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)
    with grpc.insecure_channel(identity_server.address) as channel:
        stub = pb_grpc.IdentityServiceStub(channel)
        for start in range(0, 1_200, 400):
            visits = [(day, [login, ("anonymous_id", f"visit-{i:04}")]) for i in range(start, start + 400)]
            _resolve(stub, *visits)
    code, table, err = wayline(gateway_server, f"{login[0]}:{login[1]}")
    assert code == 0, err
    assert "UTC; 1,201 identifiers; 0 profiles merged in" in table
    assert "(the first 1,000 of 1,201 identifiers, by priority)" in table
