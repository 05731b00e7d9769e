"""The property path grammar every service reads filters, breakdowns and features with
(wayline.common.property_paths)."""

from __future__ import annotations

import pytest

from wayline.common.property_paths import EVENT_FIELDS, is_event_path, is_person_path


@pytest.mark.parametrize(
    "path",
    ["properties.plan", "properties.cart.items", "context.campaign.source", "properties.été", "context.x"],
)
def test_event_paths(path: str) -> None:
    assert is_event_path(path)
    assert not is_person_path(path)


@pytest.mark.parametrize(
    "path",
    [
        "properties",
        "properties.",
        "properties..plan",
        "properties.plan name",
        "properties.plan\n",  # `re.match` with `$` took it: `$` also matches before a final newline
        "props.plan",
        "person.tier",
        "name",
    ],
)
def test_what_is_no_event_path(path: str) -> None:
    assert not is_event_path(path)


@pytest.mark.parametrize(
    ("path", "expected"), [("person.tier", True), ("person.tier\n", False), ("person.a.b", False)]
)
def test_person_paths(path: str, expected: bool) -> None:
    assert is_person_path(path) is expected


def test_event_fields_say_which_are_numbers() -> None:
    assert {name for name, number in EVENT_FIELDS.items() if number} == {"revenue", "sentiment_score"}
