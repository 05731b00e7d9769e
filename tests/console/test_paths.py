"""The Paths page in Chromium against the loaded suite: its tables show what QueryPaths returns for the same
request (transitions with their loop and channel-jump flags, steps, totals), and the next transitions are
those ListPathEdges pages through; changing the depth and the start anchor redraws them with the RPC's answer
to the new request; a node drills down to its persons (ListPathPersons) by a click on the Sankey's SVG node
and by the keyboard button in the table, an edge by its button; a node anchors the paths ("Start paths
here"); a person opens the Customer page; a segment picked gets its own tree (QueryPaths over its members);
a flow is overlaid with the transitions GetFlowStats recorded on its designed edges."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.console.browser import Console
from tests.console.calls import INGEST, JOURNEYS, ORCHESTRATOR, Bridge, Rpc
from tests.console.data_tables import row_kinds, table_rows, wait_until_equal
from tests.console.loading import ConsoleData
from wayline.common.timestamps import to_timestamp
from wayline.event.v1 import event_pb2
from wayline.ingest.v1 import ingest_service_pb2 as ingest_pb


def _days(data: ConsoleData) -> str:
    """The hash parameters of the data's whole range, in the console's UTC days."""
    return f"from={data.start.date()}&to={(data.end - timedelta(days=1)).date()}"


# The expected summaries are asked of the HTTP bridge without `max-stale`: computed now, and kept by the
# gateway (ADR 58) as the answer the page's first view accepts, so page and test see one computation.


def _request(data: ConsoleData, depth: int = 5, start: str = "") -> dict[str, Any]:
    """The QueryPaths request the page sends for these filters (pages/paths.js, pathsRequest)."""
    request: dict[str, Any] = {
        "depth": depth,
        "timeRange": data.time_range(),
        "collapseRepeats": False,
        "edgeLimit": 60,
        "topPathsLimit": 10,
    }
    if start:
        request["startEvent"] = {"eventName": start}
    return request


def _links(series: dict[str, Any]) -> dict[str, tuple[str, str, str, str]]:
    """Each edge of a series as the links table keys it: (paths, loops, loop?, channel jump?)."""
    channels = {node["id"]: node["step"]["channel"] for node in series["nodes"]}
    return {
        f"{edge['sourceNodeId']}→{edge['targetNodeId']}": (
            edge["count"],
            edge["loopCount"],
            "yes" if int(edge["loopCount"]) > 0 else "no",
            "yes" if channels[edge["sourceNodeId"]] != channels[edge["targetNodeId"]] else "no",
        )
        for edge in series["edges"]
    }


def _page_links(page: Page) -> dict[str, tuple[str, str, str, str]] | None:
    rows = table_rows(page, "paths-links-0")
    if rows is None:
        return None
    return {row["_row"]: (row["count"], row["loopCount"], row["loop"], row["jump"]) for row in rows}


def _page_nodes(page: Page) -> dict[str, tuple[str, str]] | None:
    rows = table_rows(page, "paths-nodes-0")
    if rows is None:
        return None
    return {row["_row"]: (row["count"], row["dropOffCount"]) for row in rows}


def _nodes(series: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {node["id"]: (node["count"], node["dropOffCount"]) for node in series["nodes"]}


def test_paths_show_the_rpc_numbers_and_follow_the_filters(
    console: Console, console_data: ConsoleData, bridge: Callable[[str], Bridge]
) -> None:
    reader = bridge(console_data.read_key_a)
    expected = reader.call(JOURNEYS, "QueryPaths", _request(console_data, depth=4))["series"][0]
    assert expected["edges"], "the loaded journeys give paths"
    page = console.open(f"#/paths?{_days(console_data)}&depth=4")
    assert wait_until_equal(lambda: _page_links(page), _links(expected)) == _links(expected)
    assert _page_nodes(page) == _nodes(expected)
    summary = page.get_by_test_id("paths-summary-0")
    expect(summary.locator("[data-key=pathCount]")).to_have_attribute("data-value", expected["pathCount"])
    expect(summary.locator("[data-key=personCount]")).to_have_attribute("data-value", expected["personCount"])
    # Loops and channel jumps are drawn in their own style, and the legend says which is which.
    kinds = row_kinds(page, "paths-links-0")
    for key, (_, loops, _, jump) in _links(expected).items():
        assert kinds[key] == ("loop" if int(loops) > 0 else "jump" if jump == "yes" else "plain"), key
    expect(page.locator(".paths-legend li")).to_have_count(3)
    expect(page.get_by_test_id("paths-chart-0").locator("svg")).to_be_visible()
    expect(page.get_by_test_id("paths-freshness")).to_be_visible()
    console.shot("paths")

    # The transitions beyond those shown: the next page of ListPathEdges joins the tree.
    assert expected["nextEdgesPageToken"], "the loaded journeys have more transitions than the page shows"
    more = reader.call(
        JOURNEYS,
        "ListPathEdges",
        {
            "query": _request(console_data, depth=4),
            "pageSize": 60,
            "pageToken": expected["nextEdgesPageToken"],
        },
    )
    grown = expected | {
        "edges": expected["edges"] + more["edges"],
        "nodes": expected["nodes"] + more["nodes"],
    }
    page.get_by_test_id("paths-more-edges-0").click()
    assert wait_until_equal(lambda: _page_links(page), _links(grown)) == _links(grown)

    # Anchor at the start event and cut deeper: the tables become the RPC's answer to the new request.
    narrowed = reader.call(JOURNEYS, "QueryPaths", _request(console_data, depth=3, start="Product Viewed"))
    narrowed_series = narrowed["series"][0]
    assert narrowed_series["edges"]
    assert _links(narrowed_series) != _links(expected)
    page.get_by_test_id("paths-depth").fill("3")
    page.get_by_test_id("paths-start").fill("Product Viewed")
    page.get_by_test_id("paths-apply").click()
    assert wait_until_equal(lambda: _page_links(page), _links(narrowed_series)) == _links(narrowed_series)
    assert _page_nodes(page) == _nodes(narrowed_series)
    assert {node["step"]["label"] for node in narrowed_series["nodes"] if node["position"] == 0} == {
        "Product Viewed"
    }
    assert "start=Product+Viewed" in page.url or "start=Product%20Viewed" in page.url
    console.shot("paths-from-product-viewed")


def _persons(reader: Bridge, request: dict[str, Any], node_id: str, target_node_id: str = "") -> list[str]:
    """The first page (50 ids) of the persons the page lists for a node or an edge."""
    body: dict[str, Any] = {"query": request, "nodeId": node_id, "pageSize": 50}
    if target_node_id:
        body["targetNodeId"] = target_node_id
    found: list[str] = reader.call(JOURNEYS, "ListPathPersons", body)["personIds"]
    return found


def _listed(page: Page) -> list[str]:
    links = page.get_by_test_id("paths-persons").get_by_test_id("person-link")
    ids: list[str] = links.evaluate_all("links => links.map(link => link.dataset.personId)")
    return ids


def test_a_node_and_an_edge_drill_down_to_their_persons(
    console: Console, console_data: ConsoleData, bridge: Callable[[str], Bridge]
) -> None:
    reader = bridge(console_data.read_key_a)
    request = _request(console_data, depth=4)
    series = reader.call(JOURNEYS, "QueryPaths", request)["series"][0]
    page = console.open(f"#/paths?{_days(console_data)}&depth=4")
    panel = page.get_by_test_id("paths-persons")

    # A click on the SVG node: the largest first step, found by its label in the Sankey.
    first = max((n for n in series["nodes"] if n["position"] == 0), key=lambda n: int(n["count"]))
    label = first["step"]["label"]
    page.get_by_test_id("paths-chart-0").locator("svg text").filter(
        has_text=re.compile(f"^{re.escape(label)}$")
    ).first.click()
    expect(panel).to_have_attribute("data-node-id", first["id"])
    wanted = _persons(reader, request, first["id"])
    assert wanted
    assert wait_until_equal(lambda: _listed(page), wanted) == wanted
    console.shot("node-persons")

    # The keyboard path: the node's button in the steps table, focused and pressed with Enter.
    second = max((n for n in series["nodes"] if n["position"] == 1), key=lambda n: int(n["count"]))
    button = page.get_by_test_id("paths-nodes-0").locator(f'button[data-node-id="{second["id"]}"]')
    button.focus()
    page.keyboard.press("Enter")
    expect(panel).to_have_attribute("data-node-id", second["id"])
    wanted = _persons(reader, request, second["id"])
    assert wait_until_equal(lambda: _listed(page), wanted) == wanted

    # "Start paths here" anchors the query at that node's label: the trees become the anchored query's.
    request = _request(console_data, depth=4, start=second["step"]["label"])
    series = reader.call(JOURNEYS, "QueryPaths", request)["series"][0]
    page.get_by_test_id("paths-anchor-here").focus()
    page.keyboard.press("Enter")
    assert wait_until_equal(lambda: _page_links(page), _links(series)) == _links(series)
    expect(page.get_by_test_id("paths-start")).to_have_value(second["step"]["label"])

    # An edge of the anchored tree: the persons who took that transition.
    edge = series["edges"][0]
    page.get_by_test_id("paths-links-0").locator(
        f'tr[data-row="{edge["sourceNodeId"]}→{edge["targetNodeId"]}"] button'
    ).click()
    expect(panel).to_have_attribute("data-target-node-id", edge["targetNodeId"])
    wanted = _persons(reader, request, edge["sourceNodeId"], edge["targetNodeId"])
    assert wanted
    assert wait_until_equal(lambda: _listed(page), wanted) == wanted
    console.shot("edge-persons")

    # A person opens their customer page.
    person = wanted[0]
    panel.locator(f'a[data-person-id="{person}"]').click()
    expect(page).to_have_url(re.compile(re.escape(f"#/customer?person={person}") + "$"))


def _eventually(what: str, check: Callable[[], bool], timeout_seconds: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_seconds
    while not check():
        assert time.monotonic() < deadline, f"{what} did not happen in time"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def buyers(console_data: ConsoleData, rpc: Callable[[str], Rpc]) -> dict[str, Any]:
    """A segment of A's persons who completed an order, made with A's admin key, once its membership is
    built."""
    admin = rpc(console_data.admin_key_a)
    segment_id = f"paths-buyers-{uuid.uuid4().hex[:8]}"
    condition = {"eventCount": {"event": {"eventName": "Order Completed"}, "count": "1"}}
    segment: dict[str, Any] = admin.json(
        JOURNEYS,
        "CreateSegment",
        {"segmentId": segment_id, "segment": {"displayName": "Paths: buyers", "condition": condition}},
    )["segment"]

    def built() -> bool:
        status = admin.json(JOURNEYS, "GetSegment", {"name": segment["name"]})["segment"]["status"]
        return bool(status["state"] == "SEGMENT_STATE_READY" and int(status["memberCount"]) > 0)

    _eventually("the segment's membership being built", built)
    return segment


def test_a_segment_gets_its_own_journey_tree(
    console: Console, console_data: ConsoleData, bridge: Callable[[str], Bridge], buyers: dict[str, Any]
) -> None:
    reader = bridge(console_data.read_key_a)
    everyone = reader.call(JOURNEYS, "QueryPaths", _request(console_data, depth=4))["series"][0]
    request = _request(console_data, depth=4) | {"population": {"segments": [buyers["name"]]}}
    theirs = reader.call(JOURNEYS, "QueryPaths", request)["series"][0]
    assert 0 < int(theirs["pathCount"]) < int(everyone["pathCount"])
    page = console.open(f"#/paths?{_days(console_data)}&depth=4")
    assert wait_until_equal(lambda: _page_links(page), _links(everyone)) == _links(everyone)
    page.get_by_test_id(f"paths-segment-{buyers['name'].removeprefix('segments/')}").check()
    page.get_by_test_id("paths-apply").click()
    assert wait_until_equal(lambda: _page_links(page), _links(theirs)) == _links(theirs)
    assert _page_nodes(page) == _nodes(theirs)
    expect(page.get_by_test_id("paths-tree-0").locator("h2")).to_have_text("Segment: Paths: buyers")
    expect(page.get_by_test_id("paths-tree-1")).to_have_count(0)
    assert f"segment={buyers['name'].replace('/', '%2F')}" in page.url
    console.shot("segment-tree")


def _overlay_rows(page: Page) -> dict[str, str] | None:
    rows = table_rows(page, "paths-flow-table")
    return None if rows is None else {row["_row"]: row["count"] for row in rows}


def test_a_flow_is_overlaid_with_its_recorded_transitions(
    console: Console, console_data: ConsoleData, rpc: Callable[[str], Rpc]
) -> None:
    admin, writer, reader = (
        rpc(console_data.admin_key_a),
        rpc(console_data.write_key_a),
        rpc(console_data.read_key_a),
    )
    run = uuid.uuid4().hex[:8]
    trigger = f"Paths Overlay Entered {run}"
    definition = {
        "trigger": {"event": {"event": {"eventName": trigger}}},
        "entryStepId": "split",
        "steps": [
            {
                "id": "split",
                "displayName": "Half and half",
                "split": {
                    "variants": [
                        {"label": "a", "weight": 50.0, "nextStepId": "done_a"},
                        {"label": "b", "weight": 50.0, "nextStepId": "done_b"},
                    ]
                },
            },
            {"id": "done_a", "exit": {"reason": "a"}},
            {"id": "done_b", "exit": {"reason": "b"}},
        ],
    }
    name = admin.json(
        ORCHESTRATOR,
        "CreateFlow",
        {
            "flowId": f"paths-overlay-{run}",
            "flow": {"displayName": "Paths overlay", "definition": definition},
        },
    )["flow"]["name"]
    admin.call(ORCHESTRATOR, "PublishFlow", {"name": name})
    persons = 4
    events = [
        event_pb2.Event(
            event_id=str(uuid.uuid4()),
            type=event_pb2.EVENT_TYPE_TRACK,
            name=trigger,
            channel=event_pb2.CHANNEL_WEB,
            timestamp=to_timestamp(datetime.now(UTC)),
            identifiers=[event_pb2.Identifier(type="email", value=f"overlay-{i}-{run}@example.com")],
        )
        for i in range(persons)
    ]
    assert not writer.call(INGEST, "TrackBatch", ingest_pb.TrackBatchRequest(events=events)).rejections  # type: ignore[attr-defined]

    def stats() -> dict[str, Any]:
        found: dict[str, Any] = reader.json(ORCHESTRATOR, "GetFlowStats", {"name": name, "version": 1})[
            "stats"
        ]
        return found

    def split_counted() -> bool:
        split = next((s for s in stats()["steps"] if s["stepId"] == "split"), None)
        return split is not None and sum(int(b["count"]) for b in split["branches"]) == persons

    _eventually("every person passing the split", split_counted)
    recorded = stats()
    expected = {"(entry)→split:entry": recorded["enteredCount"]}
    for label, target in (("a", "done_a"), ("b", "done_b")):
        expected[f"split→{target}:{label}"] = "0"
    for step in recorded["steps"]:
        for branch in step["branches"]:
            key = f"{step['stepId']}→{branch['nextStepId'] or '(exit)'}:{branch['label']}"
            expected[key] = str(int(expected.get(key, "0")) + int(branch["count"]))
    assert expected["(entry)→split:entry"] == str(persons)
    page = console.open(f"#/paths?{_days(console_data)}&depth=4&flow={name}")
    assert wait_until_equal(lambda: _overlay_rows(page), expected) == expected
    expect(page.get_by_test_id("paths-flow-select")).to_have_value(name)
    expect(page.get_by_test_id("paths-flow-chart").locator("svg")).to_be_visible()
    console.shot("flow-overlay")
