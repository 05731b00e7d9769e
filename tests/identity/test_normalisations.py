"""Identity's normalisation steps on one identifier (rules.Rules.normalise): what each step makes of a value,
and the values they refuse."""

from __future__ import annotations

import pytest

from wayline_identity.model import IgnoreReason
from wayline_identity.rules import Rules, TypeRule


def _normalised(steps: tuple[str, ...], value: str, region: str = "") -> tuple[str, str] | IgnoreReason:
    rules = Rules(identifier_types=(TypeRule("code", normalizations=steps),), default_phone_region=region)
    return rules.normalise(("code", value))


@pytest.mark.parametrize(
    ("steps", "value", "expected"),
    [
        (("trim",), "  A-17 \t", "A-17"),
        (("trim", "lowercase"), " Ana@Example.COM ", "ana@example.com"),
        (("uppercase",), "ab-12", "AB-12"),
        (("digits_only",), "4000 1234-5678", "400012345678"),
        # Other scripts' decimal digits are the same digits: Arabic-Indic, Devanagari, full-width.
        (("digits_only",), "٤٠٠٠ ١٢٣٤", "40001234"),
        (("digits_only",), "४०००", "4000"),
        (("digits_only",), "\uff11\uff12\uff13\uff14", "1234"),  # full-width, as a CJK keyboard types them
        # Superscripts and circled numbers are no digits of a number.
        (("digits_only",), "12²③", "12"),
        (("phone_e164",), "+33 6 12 34 56 78", "+33612345678"),
        (("phone_e164",), "06 12 34 56 78", "+33612345678"),
    ],
)
def test_each_step_makes_the_identifier_it_names(steps: tuple[str, ...], value: str, expected: str) -> None:
    assert _normalised(steps, value, region="FR") == ("code", expected)


@pytest.mark.parametrize(
    ("steps", "value", "reason"),
    [
        (("digits_only",), "no digits", IgnoreReason.BLOCKED_VALUE),  # empty once normalised
        (("phone_e164",), "not a phone", IgnoreReason.INVALID_VALUE),
        (("phone_e164",), "12", IgnoreReason.INVALID_VALUE),
    ],
)
def test_a_value_a_step_leaves_nothing_of_is_not_used(
    steps: tuple[str, ...], value: str, reason: IgnoreReason
) -> None:
    assert _normalised(steps, value, region="FR") == reason
