"""Short reads of a few persons' events (a timeline page, a person's conditions) keep the column blocks they
decompress in the embedded engine's uncompressed cache, sized by WAYLINE_JOURNEYS_EMBEDDED_UNCOMPRESSED_CACHE_
BYTES (ADR 97). The cache is a startup option of the engine, which is one per process and shared by this
test session's stores, so each case starts the engine in a process of its own."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

_READS = textwrap.dedent(
    """
    import json, sys, uuid
    from datetime import UTC, datetime, timedelta
    from pathlib import Path

    from wayline_journeys.analytics import EventMatcher
    from wayline_journeys.conditions import Comparison, EventCount
    from wayline_journeys.events import EventRecord, TimelineQuery
    from wayline_journeys.store import JourneyStore, connect_clickhouse
    from wayline_journeys.store.person_conditions import ClickHousePersonConditions

    path, cache_bytes = Path(sys.argv[1]), int(sys.argv[2])
    store = JourneyStore(
        lambda: connect_clickhouse("", "wayline", path, uncompressed_cache_bytes=cache_bytes)
    )
    store.open()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    store.write("acme", [
        EventRecord(
            event_id=str(uuid.uuid4()), type="track", name="Viewed", channel="web",
            timestamp=start + timedelta(minutes=i), received_at=start + timedelta(minutes=i),
            identifier_types=("user_id",), identifier_values=(f"u-{i % 50}",), person_id=f"p-{i % 50}",
        )
        for i in range(2000)
    ])

    def hits() -> int:
        rows = store.client.query(
            "SELECT value FROM system.events WHERE event = 'UncompressedCacheHits'"
        ).result_rows
        return int(rows[0][0]) if rows else 0

    size = store.client.query(
        "SELECT value FROM system.server_settings WHERE name = 'uncompressed_cache_size'"
    ).result_rows[0][0]
    viewed = EventCount(EventMatcher(name="Viewed"), Comparison.GREATER_THAN_OR_EQUAL, 40)
    conditions = ClickHousePersonConditions(lambda: store.client)
    found = {}
    for read in ("timeline", "conditions"):
        before = []
        for _ in range(2):
            before.append(hits())
            if read == "timeline":
                page = store.timeline(TimelineQuery(tenant="acme", person_id="p-7"))
                answer = [e.timestamp.isoformat() for e in page]
            else:
                answer = conditions.evaluate_of("acme", ["p-7"], [viewed], None, start + timedelta(days=2))
        found[read] = {"answer": answer, "hits": [hits() - b for b in before]}
    print(json.dumps({"size": int(size), **found}))
    """
)


def _run_reads(path: Path, cache_bytes: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", _READS, str(path), str(cache_bytes)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def test_short_reads_are_served_from_the_uncompressed_cache(tmp_path: Path) -> None:
    found = _run_reads(tmp_path / "cached", 64 * 1024 * 1024)

    assert found["size"] == 64 * 1024 * 1024
    timeline, conditions = found["timeline"], found["conditions"]
    assert len(timeline["answer"]) == 40  # p-7's events: every 50th of 2,000
    assert conditions["answer"] == {"p-7": [True]}
    # The second read of the same person finds the blocks the first one decompressed.
    assert timeline["hits"][1] > 0
    assert conditions["hits"][1] > 0


def test_without_the_cache_the_same_reads_give_the_same_answers(tmp_path: Path) -> None:
    cached, uncached = _run_reads(tmp_path / "cached", 64 * 1024 * 1024), _run_reads(tmp_path / "plain", 0)

    assert uncached["size"] == 0
    for read in ("timeline", "conditions"):
        with_cache, without = cached[read], uncached[read]
        assert with_cache["answer"] == without["answer"]
        assert without["hits"] == [0, 0]
