"""Trace and span ids do not follow the global `random`: code that seeds it (ML code, Hypothesis) must not
make two processes, or two runs, give the same ids."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from opentelemetry import trace

from wayline.common.telemetry import process_telemetry


@pytest.fixture
def global_random_restored() -> Iterator[None]:
    """The global generator's state is put back afterwards: other tests draw from it."""
    state = random.getstate()
    try:
        yield
    finally:
        random.setstate(state)


def _ids_after_seeding(tracer: trace.Tracer) -> tuple[int, int, tuple[int, ...]]:
    random.seed(42)
    before = random.getstate()
    with tracer.start_as_current_span("root") as span:
        context = span.get_span_context()
    assert random.getstate() == before  # a span does not move the global sequence either
    return context.trace_id, context.span_id, tuple(random.getrandbits(8) for _ in range(4))


@pytest.mark.usefixtures("global_random_restored")
def test_reseeding_the_global_random_does_not_repeat_trace_or_span_ids() -> None:
    tracer = process_telemetry().tracer("ids-test")
    first_trace, first_span, first_draws = _ids_after_seeding(tracer)
    second_trace, second_span, second_draws = _ids_after_seeding(tracer)
    assert first_draws == second_draws  # the seeding did make the global sequence repeat
    assert first_trace != second_trace
    assert first_span != second_span
    assert trace.INVALID_TRACE_ID not in (first_trace, second_trace)
