"""`wayline demo` end to end, as `make demo` runs it: events in through the gateway, timelines and the
journeys analytics back out, and the abandoned-cart flow sending through connectors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.long]


# The demo trains a model on 1,500 generated journeys: minutes on a shared machine, beyond the default 120 s.
@pytest.mark.timeout(900)
def test_demo_sends_events_and_prints_every_customers_timeline(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "wayline_cli.main", "demo", "--events", "60", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=840,
        env={**os.environ, "COLUMNS": "200"},
        check=False,
    )
    output = result.stdout
    assert result.returncode == 0, output + result.stderr
    assert "sent 60 events through the gateway; 60 accepted" in output
    assert "event.identifiers[0].type" in output  # the invalid event's field path
    assert "UNAUTHENTICATED" in output
    assert re.search(r"streamed \d+ events with StreamEvents", output)
    assert "got the same id" in output  # a retry without event_id is one event
    assert "properties.revenue" in output  # the tracking plan's rejection names the field
    per_customer = [int(n) for n in re.findall(r"^u-\w+: (\d+) events on", output, re.MULTILINE)]
    assert len(per_customer) == 5  # every customer's timeline, read back through the gateway
    assert sum(per_customer) == 60  # and together they hold every event sent, once
    _assert_journeys_analytics(output)
    assert re.search(
        r"HTTP /v1/batch .*: 200, 2 accepted; rejected:\s+ajs-bad-1 \(batch\[2\]\.event\)", output
    )
    assert "u-segment-sdk: 2 events in the journey store from HTTP: Pricing, Trial Started" in output
    _assert_gateway(output)
    _assert_clv(output)
    _assert_ml(output)
    _assert_decide(output)
    _assert_flows(output)
    _assert_operations(output)
    _assert_report(output, tmp_path / "report.html")
    assert "every service stopped cleanly" in output


def _assert_report(output: str, path: Path) -> None:
    """The last step wrote the demo tenant's report into the data folder, every section drawn from the
    demo's own data, and said where the console is."""
    flat = " ".join(output.split())
    written = re.search(
        r"journey report \(wayline report\) for tenant (\S+), [\d-]+ to [\d-]+: (\S+) \([\d,]+ bytes; "
        r"(\d+) of (\d+) sections drawn",
        flat,
    )
    assert written, output
    assert Path(written.group(2)) == path
    assert written.group(3) == written.group(4), output  # the demo has data for every section
    assert re.search(r"journey console \(while the suite runs\): http://127\.0\.0\.1:\d+/console/", flat)
    page = path.read_text(encoding="utf-8")
    block = page.split('<script type="application/json" id="wayline-report-data">')[1].split("</script>")[0]
    report = json.loads(block)
    assert report["tenant"] == written.group(1)
    sections = {section["id"]: section for section in report["sections"]}
    assert [section["kind"] for section in report["sections"]] == [
        "paths", "funnel", "retention", "lifecycle", "value", "trends", "sentiment", "activity-lifecycle",
        "segments", "flow", "flow", "models",
    ]  # fmt: skip
    assert int(sections["value"]["response"]["purchasers"]) > 0  # the demo's orders, by RFM segment
    # Activity by channel, by week (70 days), and the sentiment of what the demo's customers wrote and said.
    activity = sections["activity"]
    assert activity["request"]["period"] == "RETENTION_PERIOD_WEEK"
    results = activity["response"]["results"]
    channels = {r["breakdownValue"]["value"] for r in results if r["seriesIndex"] == 0}
    assert {"web", "mobile_app"} <= channels, channels
    scored = [r for r in sections["sentiment"]["response"]["results"] if r["seriesIndex"] == 1]
    assert sum(int(r["eventCount"]) for r in scored) > 0
    # Each week's buyers in EUR (the demo's orders), as the demo's QueryActivityLifecycle table printed them.
    buyers = sections["buyers"]
    assert buyers["title"] == "Buyers in EUR by activity"
    assert buyers["request"]["period"] == "RETENTION_PERIOD_WEEK"
    (ordered,) = buyers["response"]["results"]
    assert sum(int(point["newPersons"]) for point in ordered["points"]) > 0
    funnel = sections["funnel"]["response"]["series"][0]["steps"]
    assert [step["label"] for step in funnel] == [
        "Product Viewed", "Product Added", "Checkout Started", "Order Completed"
    ]  # fmt: skip
    assert int(funnel[-1]["count"]) > 0
    assert sections["flow-1"]["response"]["stats"]["enteredCount"] == "4"  # as GetFlowStats printed it
    win_back = re.search(
        r"Win back: segments/dormant-buyers .* holds (\d+) persons .* emailed (\d+) of them "
        r"\(win-back-email; [^)]*\), in (\d+) messages",
        flat,
    )
    assert win_back, output  # the lifecycle's dormant buyers as an audience, and a flow that emails each once
    # Each emailed once; the flow reads the members at its publication, after the segment was first built:
    # a shopper whose order of the flows step reached the store in between has left it.
    assert win_back.group(2) == win_back.group(3)
    assert 0 < int(win_back.group(2)) <= int(win_back.group(1))
    assert int(win_back.group(2)) >= int(win_back.group(1)) - 4  # at most the flows step's four shoppers
    assert sections["flow-2"]["response"]["flow"]["name"] == "flows/win-back"
    models = sections["models"]["response"]["models"]
    assert "models/next-best-action" in [model["name"] for model in models]


def _received(output: str) -> dict[str, list[tuple[str, str, str]]]:
    """The 'what each customer received' table: per customer, its rows' (received, template, suppressed)."""
    table = output[output.index("abandoned cart: what each customer received") :]
    table = table[: table.index("messages delivered through connectors")]
    rows: dict[str, list[tuple[str, str, str]]] = {}
    customer = ""
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if len(cells) != 5 or cells[0] == "customer":
            continue
        customer = cells[0] or customer
        rows.setdefault(customer, []).append((cells[2], cells[3], cells[4]))
    return rows


def _assert_flows(output: str) -> None:
    """The abandoned-cart flow ran: push to the consented, email when push was suppressed or not preferred,
    nothing to the buyer; then the offer the customer's value chose (Decide has no model for the placement),
    each message once through the demo's webhook connectors; GetFlowStats counted the paths."""
    assert "its 1 h wait shortened to 3 s for the demo" in output
    push, email = "push via connectors/demo-push", "email via connectors/demo-email"
    assert _received(output) == {
        "u-cart-amy": [(push, "cart-reminder-push", "-"), (email, "cart-discount-15", "")],
        "u-cart-bo": [(email, "cart-reminder-email", "push: no_consent"), (email, "cart-free-shipping", "")],
        "u-cart-cy": [(email, "cart-reminder-email", "-"), (email, "cart-free-shipping", "")],
        "u-cart-dee": [("nothing (bought: goal reached)", "-", "-")],
    }, output
    assert "6 messages delivered through connectors, each once by its Idempotency-Key (6 distinct)" in output
    assert "GetFlowStats flows/demo-abandoned-cart: 4 entered, 1 converted, 1 suppressed" in output
    assert re.search(
        r"│ offer_by_value\s+│ 3\s+│\s+│\s+│ "
        r"default → free_shipping_offer: 2, high_value → discount_offer: 1",
        output,
    ), output
    assert (
        "u-cart-bo's timeline in the journey store (GetTimeline): Contact Suppressed: push (no_consent) "
        "at step push_reminder; Contact Sent: email at step email_reminder; Contact Sent: email at step "
        "free_shipping_offer"
    ) in " ".join(output.split()), output
    took = re.search(r"flow step took ([\d.]+) s", output)
    assert took, output
    assert float(took.group(1)) < 30


def _assert_operations(output: str) -> None:
    """The operations step: live metrics that count what the demo did, journeys restarted under the demo's
    traffic with nothing lost, and the stopped suite's journey store exported."""
    rows = {
        (m.group(1), m.group(2)): m.group(3).strip()
        for m in re.finditer(r"^│ (\w+)\s+│ (\w+)[^│]*│ ([^│]*)│", output, re.MULTILINE)
    }
    assert int(rows[("ingest", "ingest_events_accepted")].replace(",", "")) > 300, rows  # the demo's events
    assert "SCHEMA_VIOLATION 1" in rows[("ingest", "ingest_events_rejected")], rows  # the tracking plan's
    lags = dict(part.rsplit(" ", 1) for part in rows[("ingest", "ingest_spool_lag_seconds")].split(", "))
    assert set(lags) == {"journeys", "decision", "orchestrator"}, rows  # a lag per sink, caught up or not
    assert re.search(r"automatic [1-9]", rows[("identity", "identity_merges")]), rows
    assert re.search(r"\b1 [1-9]\d*, 2 [1-9]", rows[("decision", "decision_decisions")]), (
        rows
    )  # both versions
    # Once each: u-cart-bo's push in the flow, and the demo's CheckContact for them (a flow's suppression is
    # counted once its run commits, not again when the run is done again after asking for traits).
    assert "NO_CONSENT 2" in rows[("orchestrator", "orchestrator_contacts_suppressed")], rows
    restart = re.search(
        r"rolling restart of journeys: SIGTERM, drained, exit code (-?\d+) .* acknowledged by ingest \(event "
        r"[0-9a-f-]+\) and reached journeys",
        " ".join(output.split()),
    )
    assert restart, output
    assert restart.group(1) == "0"
    exported = re.search(
        r"journey store exported \(wayline store export\): (\d+) tables, ([\d,]+) rows", output
    )
    assert exported, output
    assert int(exported.group(1)) > 0
    assert int(exported.group(2).replace(",", "")) > 300


def _assert_clv(output: str) -> None:
    """The CLV step valued the shop's customers and the demo's buyers, and read the traits back."""
    written = re.search(r"traits written \(identify events\)\s+│ (\d+) accepted, 0 rejected", output)
    assert written, output
    assert int(written.group(1)) > 300  # the shop's 300 customers and the demo's buyers
    assert re.search(r"^│ u-ava\s+│ [01]\.\d\d\s+│ \d+\.\d\d\s+│ [\d,]+\.\d\d EUR", output, re.MULTILINE)
    assert re.search(r"^│ u-chloe\s+│ -\s+│ -\s+│ no order: not valued", output, re.MULTILINE)


def _assert_ml(output: str) -> None:
    """The ML step trained on generated journeys, beat random in truth, and wrote a validated package."""
    truth = re.search(r"true value per held-out decision\s+│ learned ([\d.]+) · random ([\d.]+)", output)
    assert truth, output
    assert float(truth.group(1)) > float(truth.group(2))
    stages = re.search(
        r"lifecycle stages \(a feature\)\s+│ awareness ([\d,]+) · acquisition ([\d,]+) · "
        r"onboarding ([\d,]+) · engagement ([\d,]+) · retention ([\d,]+) · advocacy ([\d,]+)",
        output,
    )
    assert stages, output  # the spec's LIFECYCLE_STAGE feature, as journeys computed it at each decision
    assert sum(int(n.replace(",", "")) > 0 for n in stages.groups()) >= 3
    assert re.search(
        r"package \(validated\)\s+│ .*next-best-action/1 · \d+ files, each sha256-checked",
        output,
    )
    assert re.search(
        r"pushed to decision \(UploadModelVersion\)\s+│ models/next-best-action/versions/1 · "
        r"MODEL_VERSION_STATE_REGISTERED · created True, pushed again: created False",
        output,
    )


def _assert_decide(output: str) -> None:
    """The Decide step deployed the pushed model, decided for the customers by person id and by e-mail with
    the actions ranked by priority, explained one choice whose contributions add up to its margin, showed
    the rule that removed a candidate, took feedback and split a canary."""
    assert re.search(r"^│ 1\s+│ loaded\s+│ stable\s+│ 6\s+│ (0\.\d{3}|-)\s+│$", output, re.MULTILINE), output
    scores = (
        "next-best-action 1 scores none, discount_10, free_shipping, email_reminder, push_reminder, call_back"
    )
    assert scores in output
    decisions = re.findall(
        r"^Decide for (\S+): decision ([0-9a-f-]{36}) · models/next-best-action version (\d+) · "
        r"features from (online|journeys|defaults|mixed) · person ([0-9a-f-]{36})$",
        output,
        re.MULTILINE,
    )
    assert [who for who, *_ in decisions] == ["u-ava", "u-ben", "u-dev", "chloe@example.com"], output
    assert {version for _, _, version, _, _ in decisions} == {"1"}
    assert len({person for *_, person in decisions}) == 4  # the e-mail resolved to chloe, not to another
    for table in re.split(r"^Decide for ", output, flags=re.MULTILINE)[1:5]:
        rows = re.findall(
            r"^│ (\d)\s+│ (\w+)\s+│ \w+\s+│ (0\.\d{4})\s+│ ([\d.]+)\s+│ ([\d.]+)\s+│ 1\s+│$",
            table.split("└")[0],
            re.MULTILINE,
        )
        assert rows, table
        assert [int(rank) for rank, *_ in rows] == list(range(1, len(rows) + 1))
        priorities = [float(priority) for *_, priority in rows]
        assert priorities == sorted(priorities, reverse=True), table
    assert re.search(r"base \+ Σ contributions = margin\s+│ .*: OK", output), output
    chloe_decision = decisions[3][1]
    trace = output.split(f"GetDecision {chloe_decision}")[1]
    # chloe never gave a phone number: the call is not offered to her, and the trace says which rule said so
    assert re.search(r"^│ call_back\s+│ filtered\s+│ -\s+│ .*│ not_reachable", trace, re.MULTILINE), trace
    feedback = (
        rf"Feedback on decision {chloe_decision}: (\w+)/FEEDBACK_OUTCOME_IMPRESSION accepted, "
        r"then \1/FEEDBACK_OUTCOME_CONVERSION accepted"
    )
    assert re.search(feedback, output), output
    assert re.search(r"^│ feedback conversion\s+│ \w+\s+│\s+│ value 49\.90 EUR", trace, re.MULTILINE), trace
    split = re.search(r"canary split over 200 persons .*: version 1: (\d+), version 2: (\d+)", output)
    assert split, output
    assert 0 < int(split.group(2)) < int(split.group(1))  # 10% of persons, hashed stably
    rolled_back = output.rsplit("RollbackModel", maxsplit=1)[-1]
    assert re.search(r"^│ 1\s+│ loaded\s+│ stable\s+│", rolled_back, re.MULTILINE), rolled_back


def _assert_gateway(output: str) -> None:
    """The gateway step: a new tenant's keys meet each rule of the door, in order."""
    answers = re.findall(r"^│ (?:write|read|the|resumed|a call)[^│]*│ (.*?)\s*│$", output, re.MULTILINE)
    assert answers[-6:] == [
        "OK",
        "PERMISSION_DENIED SCOPE_MISSING",
        answers[-4],
        "PERMISSION_DENIED TENANT_SUSPENDED",
        "UNAUTHENTICATED API_KEY_REVOKED",
        "UNAUTHENTICATED API_KEY_MISSING",
    ], output
    assert re.fullmatch(r"RESOURCE_EXHAUSTED QUOTA_EXCEEDED, retry in \d\.\d\d s", answers[-4]), answers[-4]


def _assert_journeys_analytics(output: str) -> None:
    """Each analytics step printed a non-empty answer about the demo's customers (named by user id)."""
    rows = {
        step: re.search(rf"^│ {step}\s+│ (\d+) · (\d+)%", output, re.MULTILINE)
        for step in ("Product Added", "Checkout Started", "Order Completed")
    }
    assert all(rows.values()), output
    assert int(rows["Order Completed"].group(1)) > 0  # type: ignore[union-attr]
    assert re.search(r"^│ median time to convert\s+│ \d+[mhd] \d+", output, re.MULTILINE)
    assert re.search(r"ListFunnelPersons: dropped at checkout .*: .*u-chloe", output)  # she never orders
    weeks = re.findall(
        r"^│ (\d{4}-\d{2}-\d{2})\s+│ (\d+)\s+│ (\d+)\s+│ (\d+)\s+│ (\d+)\s+│ \d+%(\*?)", output, re.MULTILINE
    )
    assert len(weeks) in (6, 7), output  # the weeks of the last 35 days, oldest first
    assert [w[0] for w in weeks] == sorted(w[0] for w in weeks)
    counts = [[int(c) for c in w[1:5]] for w in weeks]
    assert all(c == sorted(c, reverse=True) for c in counts), counts  # a funnel never grows
    assert sum(c[0] for c in counts) > sum(c[3] for c in counts) > 0, counts
    assert weeks[-1][5] == "*"  # this week's viewers may still order
    assert re.search(r"^│ Product Viewed \(web\) → \S", output, re.MULTILINE)  # a path beyond its start
    assert re.search(r"Sankey: [1-9]\d* edges; .*: all reached", output)
    cohorts = re.findall(r"^│ \d{4}-\d{2}-\d{2}\s+│ (\d+)\s+│ \d+ \(\d+%\)", output, re.MULTILINE)
    assert len(cohorts) >= 4  # the customers are first seen in four different weeks
    valued = re.findall(
        r"^│ (u-\w+)\s+│ [\d,]+\.\d\d EUR\s+│ (\d+)\s+│ \d+ days? ago\s+│ \d \d \d", output, re.MULTILINE
    )
    assert {name for name, _ in valued} == {"u-ava", "u-ben", "u-dev", "u-emma"}  # chloe never buys
    assert re.search(r"^│ advocacy\s+│ \d+\s+│ \d+%\s+│ u-ava", output, re.MULTILINE)
    members = re.search(r"ListSegmentMembers: (\d+) members: (.*)$", output, re.MULTILINE)
    assert members
    assert int(members.group(1)) > 0
    assert "u-emma" in members.group(2)
    assert "u-chloe" not in members.group(2)
    assert re.search(r"GetSegmentMemberships: u-\w+ is in segments/recent-buyers", output)
    members_funnel = re.search(r"^│ segments/recent-buyers\s+│ (\d+)\s+│ (\d+)\s+│", output, re.MULTILINE)
    others_funnel = re.search(r"^│ in no listed segment\s+│ (\d+)\s+│ (\d+)\s+│", output, re.MULTILINE)
    assert members_funnel, output
    assert others_funnel, output
    assert int(members_funnel.group(1)) >= int(members_funnel.group(2)) > 0  # the members ordered
    assert int(others_funnel.group(1)) > 0
    assert re.search(r"^│ revenue_sum\s+│ [1-9]", output, re.MULTILINE)
    trend = re.search(
        r"^│ five weeks\s+│ (\d+)\s+│ ([\d,]+\.\d\d)\s+│ (\d+)\s+│ ([\d,]+\.\d\d)\s+│ ([\d,]+\.\d\d)",
        output,
        re.MULTILINE,
    )
    assert trend, output  # QueryTrends: active customers, revenue, orders, median order, revenue per person
    assert int(trend.group(1)) >= 5  # every customer was active in the five weeks (and other persons)
    assert float(trend.group(2).replace(",", "")) > 0
    assert int(trend.group(3)) > 0
    revenue, persons = float(trend.group(2).replace(",", "")), int(trend.group(1))
    assert abs(float(trend.group(5).replace(",", "")) - revenue / persons) <= 0.006  # the formula B / A
    habit = re.search(r"QueryStickiness: how habitual ordering is: of the (\d+) persons who ordered", output)
    assert habit, output
    table = output[habit.end() :].split("┏", 1)[1].split("└", 1)[0]  # the table after the heading
    habit_rows = re.findall(r"^│ (\d+) +│ (\d+) +│ +(\d+%|-) +│", table, re.MULTILINE)
    assert int(habit.group(1)) > 0
    assert sum(int(persons) for _, persons, _ in habit_rows) == int(habit.group(1))  # each buyer in one row
    changed = output.split("QueryActivityLifecycle: each week's buyers", 1)[1].split("└", 1)[0]
    weeks = [
        tuple(int(n) for n in row)
        for row in re.findall(
            r"^│ \d{4}-\d\d-\d\d(?: \*)? +│ (\d+) +│ (\d+) +│ (\d+) +│ (-?\d+) +│", changed, re.MULTILINE
        )
    ]
    assert len(weeks) >= 5, output
    buyers = int(habit.group(1))
    new = sum(w[0] for w in weeks)
    assert 0 < new <= buyers  # each buyer's first order ever falls in one week at most
    # Every buyer of the range is new, resurrecting, or returning in the first week at least once.
    assert new + sum(w[2] for w in weeks) + weeks[0][1] >= buyers
    assert all(w[3] <= 0 for w in weeks)  # dormant persons are drawn below zero
    lapsed = re.search(
        r"ListActivityLifecyclePersons: the (\d+) buyers dormant in the week of [\d-]+ "
        r"\(a win-back audience\): ([\w-]+(?:, [\w-]+)*)",
        " ".join(output.split()),  # the ids wrap over lines
    )
    if min(w[3] for w in weeks) < 0:  # the demo's weeks have lapsed buyers on most days of the week
        assert lapsed, output  # the persons behind the week with the most dormant buyers
        assert int(lapsed.group(1)) == -min(w[3] for w in weeks) == len(lapsed.group(2).split(", "))
    felt = dict(re.findall(r"^│ (chatbot|call_center)\s+│ \d+\s+│ ([+-]\d\.\d\d)\s+│", output, re.MULTILINE))
    assert set(felt) == {"chatbot", "call_center"}, output  # ingest scored their texts; journeys reads them
    unhappy = re.search(
        r"CreateSegment segments/unhappy-customers \(.*\): (\d+) members: (.*)$", output, re.MULTILINE
    )
    assert unhappy, output  # an audience made of sentiment: a mean score over a window
    assert int(unhappy.group(1)) > 0
