"""The contact policy's refusals are counted by reason and by where they happened: CheckContact (`check`),
RecordContact with the policy enforced (`record`), a flow's send step (`flow`); allowed contacts and a ledger
without metrics (a flow simulation's) count nothing."""

from __future__ import annotations

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from wayline.common.sql import Database
from wayline_orchestrator.contacts import ContactLedger, ContactStore
from wayline_orchestrator.contacts.metrics import ContactMetrics
from wayline_orchestrator.contacts.model import Contact, ContactCheck, ContactPolicy, FrequencyCap

EMAIL, SMS = "CHANNEL_EMAIL", "CHANNEL_SMS"
DAY_US = 86_400_000_000
NOW_US = 1_772_445_600_000_000  # 2026-03-02T10:00Z


def suppressed(reader: InMemoryMetricReader) -> dict[tuple[str, str], float]:
    data = reader.get_metrics_data()
    assert data is not None
    return {
        (str(p.attributes["reason"]), str(p.attributes["source"])): p.value  # type: ignore[index, union-attr]
        for r in data.resource_metrics
        for s in r.scope_metrics
        for m in s.metrics
        if m.name == "orchestrator.contacts.suppressed"
        for p in m.data.data_points
        if p.value  # type: ignore[union-attr]
    }


def test_refusals_are_counted_by_reason_and_source(database: Database) -> None:
    store = ContactStore(database)
    store.migrate()
    reader = InMemoryMetricReader()
    metrics = ContactMetrics(MeterProvider([reader]).get_meter("test"))
    ledger = ContactLedger(store, lambda: NOW_US, metrics=metrics)
    one_email_a_day = FrequencyCap(channel=EMAIL, max_contacts=1, window_us=DAY_US)
    ledger.update_policy("t", ContactPolicy(frequency_caps=(one_email_a_day,)), ["frequency_caps"], "")

    assert ledger.record("t", Contact("c1", "p", EMAIL), enforce_policy=True).recorded  # allowed
    assert ledger.check("t", "p", [ContactCheck(SMS)], None).results[0].allowed
    assert suppressed(reader) == {}

    refused = ledger.check("t", "p", [ContactCheck(EMAIL), ContactCheck(EMAIL), ContactCheck(SMS)], None)
    assert [r.allowed for r in refused.results] == [False, False, True]
    second = ledger.record("t", Contact("c2", "p", EMAIL), enforce_policy=True)
    assert not second.recorded
    with store.transaction() as tx:
        ledger.note_suppressed(tx, "t", second.contact, "run-1~suppressed1", second.violations)
    assert ("FREQUENCY_CAP", "flow") not in suppressed(reader)  # a flow's is counted once committed
    ledger.count_suppressed(second.violations)
    assert suppressed(reader) == {
        ("FREQUENCY_CAP", "check"): 2,
        ("FREQUENCY_CAP", "record"): 1,
        ("FREQUENCY_CAP", "flow"): 1,
    }

    # A ledger without metrics (a flow simulation's) counts nothing.
    ContactLedger(store, lambda: NOW_US).check("t", "p", [ContactCheck(EMAIL)], None)
    assert sum(suppressed(reader).values()) == 4
