"""The demo's generated events: a fixed story (who buys, who drops at checkout, in which week each customer
is first seen) that the demo's analytics steps rely on, whatever the day the demo runs."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from wayline.common.timestamps import to_datetime
from wayline_cli import demo


def _weeks_before(day: date, monday: date) -> int:
    return (monday - (day - timedelta(days=day.weekday()))).days // 7


@pytest.mark.parametrize("weekday", range(7))
@pytest.mark.parametrize("count", [60, 300])
def test_demo_events_tell_the_same_story_on_every_weekday(weekday: int, count: int) -> None:
    now = datetime(2026, 3, 2, 0, 30, tzinfo=UTC) + timedelta(days=weekday)  # a Monday, then each day after
    events = demo.demo_events(count, now)
    assert len(events) == count
    assert events == demo.demo_events(count, now)  # deterministic
    rows = [(e.identifiers[0].value, e.name, to_datetime(e.timestamp), e) for e in events]
    times = [at for _, _, at, _ in rows]
    assert times == sorted(times)
    assert times[-1] < now
    for customer in demo.CUSTOMERS:
        assert sum(who == customer.user_id for who, *_ in rows) == count // 5
    orders = [(who, at, e) for who, name, at, e in rows if name == "Order Completed"]
    assert all(e.revenue.currency_code == demo.CURRENCY and e.revenue.units > 0 for *_, e in orders)
    assert {who for who, *_ in orders} == {"u-ava", "u-ben", "u-dev", "u-emma"}  # chloe never buys...
    assert ("u-chloe", "Checkout Started") in {(who, name) for who, name, *_ in rows}  # ...but checks out
    assert any(who == "u-emma" and at >= now - timedelta(days=30) for who, at, _ in orders)  # a recent buyer
    monday = now.date() - timedelta(days=now.weekday())
    first_week = {
        customer.user_id: max(
            _weeks_before(at.date(), monday) for who, _, at, _ in rows if who == customer.user_id
        )
        for customer in demo.CUSTOMERS
    }
    assert first_week == {"u-ava": 4, "u-ben": 4, "u-chloe": 3, "u-dev": 2, "u-emma": 1}  # weekly cohorts
