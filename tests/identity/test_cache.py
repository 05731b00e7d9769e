"""The read cache never changes an answer: random sequences of resolutions, merges, unmerges, splits and
erasures give the same profiles with a small cache (evicting all the time) as without one, and a transaction
that rolls back or fails to commit leaves the cache agreeing with the database."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.breadth import examples
from tests.identity.conftest import Events, partition
from wayline.common.errors import NotFound
from wayline.common.sql import Database, SqliteDatabase, open_database
from wayline_identity.errors import LastIdentifier, MergeConflict, MergeNotRevertible
from wayline_identity.identity import Identity
from wayline_identity.model import Key, MergeKind

TENANT = "cache"
KEYS = [("anonymous_id", f"a{i}") for i in range(6)] + [("user_id", f"u{i}") for i in range(3)]
KEY = st.sampled_from(KEYS)
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("resolve"), st.lists(KEY, min_size=1, max_size=3)),
        st.tuples(st.just("merge"), st.lists(KEY, min_size=2, max_size=2, unique=True)),
        st.tuples(st.just("unmerge"), st.lists(KEY, min_size=1, max_size=1)),
        st.tuples(st.just("split"), st.lists(KEY, min_size=1, max_size=1)),
        st.tuples(st.just("delete"), st.lists(KEY, min_size=1, max_size=1)),
    ),
    min_size=1,
    max_size=25,
)


@contextlib.contextmanager
def _store(cache: int) -> Iterator[Identity]:
    scratch = Path(tempfile.gettempdir()) / f"wayline-identity-cache-{uuid.uuid4().hex}"
    db = open_database(None, scratch / "identity.db")
    try:
        identity = Identity(db, cache_identifiers=cache)
        identity.migrate()
        yield identity
    finally:
        db.close()
        shutil.rmtree(scratch, ignore_errors=True)


def _apply(identity: Identity, events: Events, op: str, keys: list[Key]) -> None:
    def person(key: Key) -> str | None:
        try:
            return identity.person_of(TENANT, identifier=key)
        except NotFound:
            return None

    with contextlib.suppress(MergeConflict, LastIdentifier, MergeNotRevertible):
        if op == "resolve":
            [resolution] = identity.resolve(TENANT, [events(*keys)]).resolutions
            # The event lands on a live profile that holds what it used (not one merged away meanwhile).
            assert identity.person_of(TENANT, resolution.person_id) == resolution.person_id
            assert all(person(k) == resolution.person_id for k in resolution.identifiers)
            return
        holders = [person(k) for k in keys]
        if any(h is None for h in holders):
            return
        if op == "merge" and holders[0] != holders[1]:
            identity.merge(TENANT, holders, actor="", reason="test")  # type: ignore[arg-type]
        elif op == "unmerge":
            identity.unmerge(TENANT, holders[0], keys[0], actor="", reason="test")  # type: ignore[arg-type]
        elif op == "split":
            merges = [
                m
                for m in identity.get_profile(TENANT, holders[0]).merge_history  # type: ignore[arg-type]
                if m.kind is MergeKind.AUTOMATIC and not m.reverted_by_merge_id
            ]
            if merges:
                latest = max(merges, key=lambda m: (m.event_id, m.identifier or ("", "")))
                identity.split(TENANT, holders[0], latest.merge_id, actor="", reason="test")  # type: ignore[arg-type]
        elif op == "delete":
            identity.delete(TENANT, holders[0])  # type: ignore[arg-type]


@settings(max_examples=examples(60), deadline=None, suppress_health_check=list(HealthCheck))
@given(OPS)
def test_the_cache_never_changes_an_answer(ops: list[tuple[str, list[Key]]]) -> None:
    with _store(cache=4) as cached, _store(cache=0) as uncached:
        events_a, events_b = Events(), Events()
        for op, keys in ops:
            _apply(cached, events_a, op, keys)
            _apply(uncached, events_b, op, keys)
            assert partition(cached, TENANT) == partition(uncached, TENANT), (op, keys)


def test_a_rolled_back_change_leaves_the_cache_true(database: Database, events: Events) -> None:
    identity = Identity(database, cache_identifiers=1000)
    identity.migrate()
    a, b = ("anonymous_id", "a"), ("anonymous_id", "b")
    first = identity.resolve("t", [events(a)]).resolutions[0].person_id
    second = identity.resolve("t", [events(b)]).resolutions[0].person_id
    identity.merge("t", [first, second], actor="", reason="check", validate_only=True)  # rolled back
    again = identity.resolve("t", [events(b)]).resolutions[0]
    assert again.person_id == second  # the cache did not keep the merge that never happened


def test_a_failed_commit_empties_the_tenants_cache(
    tmp_path: Path, events: Events, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = open_database(None, tmp_path / "identity.db")  # the cache is used on SQLite only
    identity = Identity(database, cache_identifiers=1000)
    identity.migrate()
    a, b = ("anonymous_id", "a"), ("anonymous_id", "b")
    first = identity.resolve("t", [events(a)]).resolutions[0].person_id
    identity.resolve("t", [events(b)])
    assert isinstance(database, SqliteDatabase)
    connection = database._writer  # the one writing connection, opened by the calls above
    assert connection is not None

    class FailingCommit:
        def __init__(self, inner: object) -> None:
            self._inner = inner

        def execute(self, sql: str, *args: object) -> object:
            if sql == "COMMIT":
                raise OSError("disk full")
            return self._inner.execute(sql, *args)  # type: ignore[attr-defined]

        def __getattr__(self, name: str) -> object:
            return getattr(self._inner, name)

    monkeypatch.setattr(database, "_writer", FailingCommit(connection))
    with pytest.raises(OSError, match="disk full"):
        identity.resolve("t", [events(a, b)])  # merges b into a, then cannot commit
    monkeypatch.undo()
    connection.execute("ROLLBACK")
    assert identity.resolve("t", [events(b)]).resolutions[0].person_id != first  # not the merged answer
    assert len(partition(identity, "t")) == 2
