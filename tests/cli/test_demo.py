"""`wayline demo` end to end, as `make demo` runs it: events in through the gateway, timelines back out."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_demo_sends_events_and_prints_every_customers_timeline() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "wayline_cli.main", "demo", "--events", "60"],
        capture_output=True,
        text=True,
        timeout=180,
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
    assert "every service stopped cleanly" in output
