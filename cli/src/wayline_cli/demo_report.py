"""The demo's last step: the demo tenant's journeys as one HTML file (`wayline report`: paths from a product
view, the purchase funnel, retention, lifecycle, customer value, activity and sentiment by channel, buyers by
activity, segments, the abandoned-cart flow and the model), and where the journey console is while the suite
runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
from rich.console import Console

from wayline_cli.demo_journeys import FUNNEL_STEPS
from wayline_cli.report.command import write_report
from wayline_cli.report.requests import ReportQuery
from wayline_cli.suite import Suite

__all__ = ["REPORT_DAYS", "show_report"]

REPORT_DAYS = 70  # the demo's customers are first seen up to eight weeks back; the day after today ends it


def show_report(suite: Suite, channel: grpc.Channel, path: Path, console: Console) -> None:
    end = (datetime.now(UTC) + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    query = ReportQuery(
        end - timedelta(days=REPORT_DAYS), end, funnel_steps=FUNNEL_STEPS, paths_start=FUNNEL_STEPS[0]
    )
    sections = write_report(channel, suite.api_key, query, path, tenant=suite.tenant)
    drawn = [section.title for section in sections if not section.empty]
    console.print(
        f"journey report (wayline report) for tenant {suite.tenant}, {query.start:%Y-%m-%d} to "
        f"{query.end:%Y-%m-%d}: {path} ({path.stat().st_size:,} bytes; {len(drawn)} of {len(sections)} "
        f"sections drawn: {', '.join(drawn)})"
    )
    console.print(
        f"journey console (while the suite runs): http://{suite.host}:{suite.http_port}/console/ "
        f"(sign in with the API key {suite.api_key})"
    )
