"""`wayline segments apply|list|get|members|delete` against a real gateway and journeys service, in a tenant
of the test's own: a dry run says what would change and changes nothing, a file applied twice creates once
and then changes nothing, an edit updates, the list
shows the segments, `members` lists who is in one (a segment made of the mean sentiment of calls), `get`
prints what `apply` reads; a malformed file and an invalid condition exit non-zero saying why."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
from typer.testing import CliRunner

from tests.conftest import API_KEY
from tests.journeys.conftest import Journeys
from tests.journeys.segments_support import event
from wayline.api.v1 import annotations_pb2
from wayline.common.server import Server
from wayline.gateway.v1 import api_key_pb2
from wayline.gateway.v1 import gateway_service_pb2 as admin_pb
from wayline.gateway.v1 import gateway_service_pb2_grpc as admin_grpc
from wayline_cli.main import app

SEGMENTS = """\
name: segments/unhappy-callers
display_name: Unhappy callers
description: Their calls of the last 30 days averaged a sentiment of -0.3 or less.
condition:
  event_aggregate:
    event: {event_name: Call Ended}
    aggregation: EVENT_AGGREGATION_AVERAGE
    property: sentiment_score
    comparison: COMPARISON_OPERATOR_LESS_THAN_OR_EQUAL
    threshold: -0.3
    window: 2592000s
---
name: segments/callers
condition:
  event_count: {event: {event_name: Call Ended}, count: 1}
"""


def tenant(gateway: Server) -> tuple[str, str]:
    """A new tenant's id and the secret of a read + admin key of it, so the segments are the test's own."""
    with grpc.insecure_channel(gateway.address) as channel:
        admin = admin_grpc.AdminServiceStub(channel)
        auth = (("authorization", f"Bearer {API_KEY}"),)
        tenant_id = f"cli-segments-{uuid.uuid4().hex[:6]}"
        created = admin.CreateTenant(
            admin_pb.CreateTenantRequest(tenant_id=tenant_id), metadata=auth, timeout=10
        ).tenant
        scopes = [annotations_pb2.SCOPE_READ, annotations_pb2.SCOPE_ADMIN]
        key = admin.CreateApiKey(
            admin_pb.CreateApiKeyRequest(parent=created.name, api_key=api_key_pb2.ApiKey(scopes=scopes)),
            metadata=auth,
            timeout=10,
        ).secret
        return tenant_id, str(key)


def segments(gateway: Server, key: str, *args: str) -> tuple[int, str, str]:
    """Exit code, stdout (the in-process servers' log lines dropped) and stderr of `wayline segments ...`."""
    result = CliRunner().invoke(
        app, ["segments", *args, "--gateway", gateway.address, "--api-key", key], env={"COLUMNS": "250"}
    )
    own = [line for line in result.stdout.splitlines() if "[info" not in line and "[warning" not in line]
    return result.exit_code, "\n".join(own), result.stderr


def test_apply_is_idempotent_then_list_members_get_and_delete(
    gateway_server: Server, journeys_server: Server, tmp_path: Path
) -> None:
    tenant_id, key = tenant(gateway_server)
    now = datetime.now(UTC)
    calls = [event("unhappy", "Call Ended", now - timedelta(days=2)), event("happy", "Call Ended", now)]
    calls[0].sentiment_score, calls[1].sentiment_score = -0.7, 0.6
    with grpc.insecure_channel(journeys_server.address) as channel:
        Journeys(channel, tenant_id).write(*calls)
    file = tmp_path / "segments.yaml"
    file.write_text(SEGMENTS)
    code, out, err = segments(gateway_server, key, "apply", "--dry-run", str(file))
    assert code == 0, err
    assert out.splitlines() == ["would create segments/unhappy-callers", "would create segments/callers"]
    code, out, err = segments(gateway_server, key, "get", "callers")
    assert code == 1  # a dry run stores nothing
    assert "NOT_FOUND" in err
    code, out, err = segments(gateway_server, key, "apply", str(file))
    assert code == 0, err
    assert out.splitlines() == ["created segments/unhappy-callers", "created segments/callers"]
    code, out, err = segments(gateway_server, key, "apply", str(file))
    assert code == 0, err
    assert out.splitlines() == ["unchanged segments/unhappy-callers", "unchanged segments/callers"]
    file.write_text(SEGMENTS.replace("-0.3 or less.", "-0.3 or less (service recovery)."))
    code, out, err = segments(gateway_server, key, "apply", "--dry-run", str(file))
    assert code == 0, err
    assert out.splitlines() == ["would update segments/unhappy-callers", "unchanged segments/callers"]
    code, out, err = segments(gateway_server, key, "get", "unhappy-callers")
    assert "averaged a sentiment of -0.3 or less.\n" in out  # still as first applied
    code, out, err = segments(gateway_server, key, "apply", str(file))
    assert code == 0, err
    assert out.splitlines() == ["updated segments/unhappy-callers", "unchanged segments/callers"]

    deadline = time.monotonic() + 30
    while True:  # memberships are built in the background
        code, out, err = segments(gateway_server, key, "list")
        assert code == 0, err
        rows = {line.split()[1]: line for line in out.splitlines() if "callers" in line}
        if all(" ready " in row for row in rows.values()) and len(rows) == 2:
            break
        assert time.monotonic() < deadline, out
        time.sleep(0.2)
    assert "Unhappy callers" in rows["unhappy-callers"]
    code, out, err = segments(gateway_server, key, "members", "unhappy-callers")
    assert code == 0, err
    assert [line.split()[0] for line in out.splitlines()] == ["unhappy"]
    assert "1 members of segments/unhappy-callers" in err
    code, out, err = segments(gateway_server, key, "members", "segments/callers")
    assert sorted(line.split()[0] for line in out.splitlines()) == ["happy", "unhappy"]

    code, out, err = segments(gateway_server, key, "get", "unhappy-callers")
    assert code == 0, err
    assert "# status: {'state': 'SEGMENT_STATE_READY', 'member_count': '1'" in out
    assert "aggregation: EVENT_AGGREGATION_AVERAGE" in out
    applied_again = tmp_path / "again.yaml"  # what `get` prints is what `apply` reads
    applied_again.write_text(out)
    code, out, err = segments(gateway_server, key, "apply", str(applied_again))
    assert (code, out.strip()) == (0, "unchanged segments/unhappy-callers"), err

    code, out, err = segments(gateway_server, key, "delete", "callers")
    assert (code, out.strip()) == (0, "deleted segments/callers"), err
    code, _, err = segments(gateway_server, key, "get", "callers")
    assert code == 1
    assert "NOT_FOUND" in err


def test_apply_refuses_a_malformed_file_and_an_invalid_condition(
    gateway_server: Server, tmp_path: Path
) -> None:
    _, key = tenant(gateway_server)
    file = tmp_path / "segments.yaml"
    file.write_text("display_name: no name\n")
    code, _, err = segments(gateway_server, key, "apply", str(file))
    assert code == 2
    assert "must have a `name`, segments/{segment_id}" in err
    file.write_text("name: segments/bad-condition\ncondition: {event_aggregate: {property: name}}\n")
    for dry_run in (["--dry-run"], []):  # the service checks a dry run's creation as it would create
        code, _, err = segments(gateway_server, key, "apply", *dry_run, str(file))
        assert code == 1
        assert "INVALID_ARGUMENT" in err
        assert "segment.condition.event_aggregate.aggregation" in err
    assert "segment.condition.event_aggregate.property" in err
