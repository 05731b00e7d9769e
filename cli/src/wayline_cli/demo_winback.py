"""The demo's win-back step: an analysis becomes an audience, and the audience an action. The activity
lifecycle showed which buyers lapsed (demo_journeys.py); here the shipped segment
examples/segments/dormant_buyers.yaml (an order in the last 14 days, none in the last 7: the rolling
version of the lifecycle's dormant buyers) is created and built, and the shipped flow
examples/flows/win_back.yaml, entered from that segment with its members at publication, is published with
its email pointed at the demo's receiver (demo_flows.py): each member gets one email, sent under the
tenant's contact policy. The tenant holds the ML step's generated journeys too, so most members are
generated persons."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import grpc
from rich.console import Console

from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as journeys_grpc
from wayline.journeys.v1 import segment_pb2
from wayline.orchestrator.v1 import orchestrator_service_pb2 as pb
from wayline.orchestrator.v1 import orchestrator_service_pb2_grpc as pb_grpc
from wayline_cli.demo_persons import wait_fresh
from wayline_cli.demo_reading import Reader, wait_for_count
from wayline_cli.flows import read_flows
from wayline_cli.segments import read_segments

__all__ = ["TEMPLATE", "WinBack", "run_win_back", "show_win_back"]

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
SEGMENT_FILE = EXAMPLES / "segments" / "dormant_buyers.yaml"
FLOW_FILE = EXAMPLES / "flows" / "win_back.yaml"
TEMPLATE = "win-back-email"
Auth = tuple[tuple[str, str], ...]
Received = list[tuple[str, str, dict[str, object]]]


@dataclass(frozen=True)
class WinBack:
    segment: str
    flow: str
    members: list[str]
    emailed: list[str]
    seconds: float


def _emailed(received: Received) -> list[str]:
    found = []
    for _, _, body in received:
        data = body.get("data")
        if isinstance(data, dict) and data.get("template_id") == TEMPLATE:
            found.append(str(data.get("person_id", "")))
    return found


def run_win_back(
    channel: grpc.Channel, auth: Auth, received: Received, email_connector: str, console: Console
) -> WinBack:
    """Create and build the segment, publish the flow (its email through `email_connector`) and wait until
    each member's email is among `received` (the demo receiver's list, filled as messages arrive)."""
    started = time.monotonic()
    journeys = journeys_grpc.JourneyServiceStub(channel)
    [(segment, _)] = read_segments(SEGMENT_FILE)
    draft = segment_pb2.Segment()
    draft.CopyFrom(segment)
    draft.ClearField("name")
    segment_id = segment.name.removeprefix("segments/")
    created = journeys.CreateSegment(
        journeys_pb.CreateSegmentRequest(segment_id=segment_id, segment=draft), metadata=auth, timeout=10
    ).segment
    wait_fresh(Reader(journeys, auth, console), created)
    listed = journeys.ListSegmentMembers(
        journeys_pb.ListSegmentMembersRequest(segment=created.name, page_size=1_000),
        metadata=auth,
        timeout=10,
    )
    members = [m.person_id for m in listed.members]
    [flow] = read_flows(FLOW_FILE)
    for step in flow.definition.steps:
        if step.HasField("action"):
            step.action.connector.connector = email_connector
    orchestrator = pb_grpc.OrchestratorServiceStub(channel)
    flow_id = flow.name.removeprefix("flows/")
    orchestrator.CreateFlow(pb.CreateFlowRequest(flow=flow, flow_id=flow_id), metadata=auth, timeout=10)
    orchestrator.PublishFlow(pb.PublishFlowRequest(name=flow.name), metadata=auth, timeout=10)
    # Every member's email, or none more for 3 s (one who left the segment before the flow read it gets
    # none), or 60 s in all.
    wait_for_count(lambda: len(_emailed(received)), len(members), limit_s=60, quiet_s=3)
    return WinBack(segment.name, flow.name, members, _emailed(received), time.monotonic() - started)


def show_win_back(result: WinBack, names: dict[str, str], console: Console) -> None:
    """What the win-back did: how many persons the segment holds (the demo's named customers among them)
    and how many the flow emailed, each once."""
    customers = ", ".join(sorted(names[p] for p in result.members if p in names)) or "none"
    console.print(
        f"[bold]Win back[/bold]: {result.segment} ({SEGMENT_FILE.name}: an order in the last 14 days, none "
        f"in the last 7) holds {len(result.members)} persons (the demo's customers among them: {customers}); "
        f"{result.flow} ({FLOW_FILE.name}, entered from the segment with its members at publication) emailed "
        f"{len(set(result.emailed))} of them ({TEMPLATE}; those still members when it read them), in "
        f"{len(result.emailed)} messages; "
        f"{result.seconds:.1f} s"
    )
