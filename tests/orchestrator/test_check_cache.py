"""CheckContact's inputs kept in memory (ADR 60) stay right across replicas: two ledgers on one real database,
each with a store, a cache and an invalidation source of its own as two replicas have, and every write that
changes a check's inputs made through the other one (a contact recorded, consent withdrawn, the policy
changed, the person erased or merged) is seen by the next check within a bounded wait, on PostgreSQL
(LISTEN/NOTIFY from triggers) and on SQLite (data_version, the second ledger on its own connection). A
listener whose connection is killed leaves the checks reading the database, right all along, and the cache
works again once it listens. And the cache's own rules: a read overtaken by an invalidation is not kept, a
process's own write is held out, the window is evaluated at each check's time, the oldest entry goes first.

Every test first shows the replica's check was kept (so that, without invalidation, the next check would
answer from memory and the test fail)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from wayline.common.sql import open_database
from wayline_orchestrator.contacts import (
    ConsentRule,
    ConsentStatement,
    Contact,
    ContactCheck,
    ContactLedger,
    ContactPolicy,
    ContactStore,
    FrequencyCap,
)
from wayline_orchestrator.contacts.check_cache import CheckCache, CheckInputs
from wayline_orchestrator.contacts.invalidation import PostgresChangeListener, SqliteChangeWatch
from wayline_orchestrator.contacts.model import ChannelScore, Consent, Person
from wayline_orchestrator.contacts.rules import Past

TENANT = "acme"
EMAIL, SMS = "CHANNEL_EMAIL", "CHANNEL_SMS"
DAY_US = 86_400_000_000
NOW_US = 1_772_445_600_000_000  # 2026-03-02T10:00Z
ONE_EMAIL_A_DAY = ContactPolicy(
    frequency_caps=(FrequencyCap(channel=EMAIL, max_contacts=1, window_us=DAY_US),)
)
WAIT_S = 10.0


@dataclass
class Replica:
    ledger: ContactLedger
    store: ContactStore
    cache: CheckCache
    source: PostgresChangeListener | SqliteChangeWatch

    def allowed(self, person: str, channel: str = EMAIL) -> bool:
        return self.ledger.check(TENANT, person, [ContactCheck(channel)], NOW_US).results[0].allowed


def _until(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@contextmanager
def _replicas(engine: str, place: str, retry_s: float = 0.2) -> Iterator[tuple[Replica, Replica]]:
    """Two replicas on one database (`place`: a PostgreSQL URL, or the SQLite file's directory), each
    listening for the other's writes."""
    made: list[Replica] = []
    try:
        for _ in range(2):
            url = place if engine == "postgresql" else None
            db = open_database(url, Path(place) / "ledger.db")
            cache = CheckCache(100)
            store = ContactStore(db, cache)
            store.migrate()
            source = (
                PostgresChangeListener(place, cache, retry_s)
                if engine == "postgresql"
                else SqliteChangeWatch(Path(place) / "ledger.db", cache)
            )
            source.start()
            made.append(Replica(ContactLedger(store, lambda: NOW_US), store, cache, source))
        assert _until(lambda: all(replica.cache.in_use for replica in made)), "not listening"
        yield made[0], made[1]
    finally:
        for replica in made:
            replica.source.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def replicas(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Replica, Replica]]:
    place = request.getfixturevalue("fresh_postgres_url") if request.param == "postgresql" else str(tmp_path)
    with _replicas(request.param, place) as pair:
        yield pair


def _kept(replica: Replica, person: str) -> None:
    """The replica's check of `person` is kept (once the notices of the writes before have come): its next
    one, without invalidation, answers from memory."""

    def kept() -> bool:
        replica.allowed(person)
        return replica.cache.lookup(TENANT, person, NOW_US) is not None

    assert _until(kept)


def test_a_contact_recorded_by_another_replica_is_counted(replicas: tuple[Replica, Replica]) -> None:
    checker, writer = replicas
    writer.ledger.update_policy(TENANT, ONE_EMAIL_A_DAY, ["frequency_caps"], "")
    assert checker.allowed("p-1")
    _kept(checker, "p-1")

    assert writer.ledger.record(TENANT, Contact("c-1", "p-1", EMAIL), enforce_policy=True).recorded
    assert _until(lambda: not checker.allowed("p-1"))
    assert checker.allowed("p-1", SMS)  # the cap is email's


def test_consent_withdrawn_through_another_replica_is_seen(replicas: tuple[Replica, Replica]) -> None:
    checker, writer = replicas
    opt_out = ContactPolicy(consent_rules=(ConsentRule(mode="CONSENT_MODE_OPT_OUT"),))
    writer.ledger.update_policy(TENANT, opt_out, ["consent_rules"], "")
    assert checker.allowed("p-2")
    _kept(checker, "p-2")

    writer.ledger.observe(TENANT, [ConsentStatement("p-2", "ALL", "ALL", False, NOW_US - 1, "e-1")], [])
    assert _until(lambda: not checker.allowed("p-2"))


def test_a_policy_changed_by_another_replica_applies_to_every_kept_person(
    replicas: tuple[Replica, Replica],
) -> None:
    checker, writer = replicas
    for person in ("p-3", "p-4"):
        assert writer.ledger.record(
            TENANT, Contact(f"c-{person}", person, EMAIL), enforce_policy=False
        ).recorded
    assert _until(lambda: checker.allowed("p-3") and checker.allowed("p-4"))  # no policy yet: no cap
    _kept(checker, "p-3")
    _kept(checker, "p-4")

    writer.ledger.update_policy(TENANT, ONE_EMAIL_A_DAY, ["frequency_caps"], "")
    assert _until(lambda: not checker.allowed("p-3") and not checker.allowed("p-4"))


def test_erasure_and_merge_by_another_replica_are_seen(replicas: tuple[Replica, Replica]) -> None:
    checker, writer = replicas
    writer.ledger.update_policy(TENANT, ONE_EMAIL_A_DAY, ["frequency_caps"], "")
    assert writer.ledger.record(TENANT, Contact("c-5", "erased", EMAIL), enforce_policy=True).recorded
    assert writer.ledger.record(TENANT, Contact("c-6", "absorbed", EMAIL), enforce_policy=True).recorded
    assert _until(lambda: not checker.allowed("erased") and checker.allowed("survivor"))
    _kept(checker, "erased")
    _kept(checker, "survivor")

    with writer.store.transaction() as tx:
        writer.store.forget_person(tx, TENANT, "erased")
        writer.store.move_person(tx, TENANT, "absorbed", "survivor")
    assert _until(lambda: checker.allowed("erased"))  # its contact is gone with it
    assert _until(lambda: not checker.allowed("survivor"))  # the absorbed person's contact counts now


def _terminate(url: str, backend_pid: int) -> None:
    with psycopg.connect(url, autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", (backend_pid,)).fetchone() == (True,)


def test_checks_read_the_database_while_the_listener_is_down(fresh_postgres_url: str) -> None:
    # A long retry: the checker stays without its listener while the other replica writes.
    with _replicas("postgresql", fresh_postgres_url, retry_s=2.0) as (checker, writer):
        writer.ledger.update_policy(TENANT, ONE_EMAIL_A_DAY, ["frequency_caps"], "")
        assert _until(lambda: checker.allowed("p-7"))
        _kept(checker, "p-7")
        assert isinstance(checker.source, PostgresChangeListener)
        _terminate(fresh_postgres_url, checker.source.backend_pid)
        assert _until(lambda: not checker.cache.in_use)

        # Without its listener the checker has dropped what it kept and reads the database for each check.
        assert len(checker.cache) == 0
        assert writer.ledger.record(TENANT, Contact("c-7", "p-7", EMAIL), enforce_policy=True).recorded
        assert not checker.allowed("p-7")
        assert checker.cache.lookup(TENANT, "p-7", NOW_US) is None  # bypassed, nothing kept

        # Listening again: it keeps, and is told, again.
        assert _until(lambda: checker.cache.in_use)
        assert checker.allowed("p-8")
        _kept(checker, "p-8")
        assert writer.ledger.record(TENANT, Contact("c-8", "p-8", EMAIL), enforce_policy=True).recorded
        assert _until(lambda: not checker.allowed("p-8"))


# The cache's own rules, without a database.

INPUTS = CheckInputs(ONE_EMAIL_A_DAY, Person(), (Past(EMAIL, "", NOW_US - DAY_US // 2),), NOW_US - DAY_US)


def _cache(capacity: int = 10, clock: Callable[[], float] = time.monotonic) -> CheckCache:
    cache = CheckCache(capacity, hold_seconds=1.0, monotonic=clock)
    cache.resume()
    return cache


def test_a_read_overtaken_by_an_invalidation_is_not_kept() -> None:
    cache = _cache()
    invalidations: list[Callable[[], None]] = [
        lambda: cache.invalidate(TENANT, "p"),
        lambda: cache.invalidate(TENANT),
        cache.clear,
    ]
    for invalidate in invalidations:
        noted = cache.note()  # a read starts ...
        invalidate()  # ... a write commits and is noticed before the read's rows are kept
        cache.keep(noted, TENANT, "p", INPUTS)
        assert cache.lookup(TENANT, "p", NOW_US) is None
    noted = cache.note()
    cache.invalidate(TENANT, "another person")
    cache.keep(noted, TENANT, "p", INPUTS)
    assert cache.lookup(TENANT, "p", NOW_US) is not None


def test_a_suspended_cache_keeps_nothing_and_answers_nothing() -> None:
    cache = _cache()
    cache.keep(cache.note(), TENANT, "p", INPUTS)
    cache.suspend()
    assert cache.lookup(TENANT, "p", NOW_US) is None
    cache.keep(cache.note(), TENANT, "p", INPUTS)
    cache.resume()
    assert cache.lookup(TENANT, "p", NOW_US) is None  # nothing from before was kept


def test_a_write_of_this_process_holds_its_person_out_for_a_while() -> None:
    now = [100.0]
    cache = _cache(clock=lambda: now[0])
    cache.keep(cache.note(), TENANT, "p", INPUTS)
    cache.written(TENANT, "p")
    cache.keep(cache.note(), TENANT, "p", INPUTS)  # read after the write began, before its commit
    assert cache.lookup(TENANT, "p", NOW_US) is None
    now[0] += 1.5
    cache.keep(cache.note(), TENANT, "p", INPUTS)
    assert cache.lookup(TENANT, "p", NOW_US) is not None


def test_the_window_is_evaluated_at_each_checks_time() -> None:
    cache = _cache()
    cache.keep(cache.note(), TENANT, "p", INPUTS)
    found = cache.lookup(TENANT, "p", NOW_US)
    assert found is not None
    assert len(found[2]) == 1
    later = cache.lookup(TENANT, "p", NOW_US + DAY_US)  # the contact has left the day's window
    assert later is not None
    assert later[2] == []
    assert cache.lookup(TENANT, "p", NOW_US - DAY_US // 4) is None  # reaches before the rows kept


def test_the_least_recently_checked_person_goes_first() -> None:
    cache = _cache(capacity=2)
    for person in ("a", "b"):
        cache.keep(cache.note(), TENANT, person, INPUTS)
    assert cache.lookup(TENANT, "a", NOW_US) is not None  # "a" used: "b" is the oldest now
    cache.keep(cache.note(), TENANT, "c", INPUTS)
    assert len(cache) == 2
    assert cache.lookup(TENANT, "b", NOW_US) is None
    assert cache.lookup(TENANT, "a", NOW_US) is not None


def test_entries_read_with_an_older_policy_are_not_kept_beside_newer_ones() -> None:
    cache = _cache()
    newer = CheckInputs(dataclasses.replace(ONE_EMAIL_A_DAY, revision=2), Person(), (), NOW_US - DAY_US)
    older = CheckInputs(dataclasses.replace(ONE_EMAIL_A_DAY, revision=1), Person(), (), NOW_US - DAY_US)
    cache.keep(cache.note(), TENANT, "a", older)
    cache.keep(cache.note(), TENANT, "b", newer)
    assert cache.lookup(TENANT, "a", NOW_US) is None  # dropped: read with the older policy
    cache.keep(cache.note(), TENANT, "c", older)
    assert cache.lookup(TENANT, "c", NOW_US) is None
    found = cache.lookup(TENANT, "b", NOW_US)
    assert found is not None
    assert found[0].revision == 2


def test_kept_inputs_come_back_as_they_were_read() -> None:
    cache = _cache()
    person = Person(
        consents=(Consent(EMAIL, "ALL", False, NOW_US - 5),),
        preferred_channel=SMS,
        time_zone="Europe/Paris",
        engagement=(ChannelScore(EMAIL, 1.5, NOW_US - 7),),
    )
    cache.keep(cache.note(), TENANT, "p", dataclasses.replace(INPUTS, person=person))
    assert cache.lookup(TENANT, "p", NOW_US) == (ONE_EMAIL_A_DAY, person, list(INPUTS.contacts))
