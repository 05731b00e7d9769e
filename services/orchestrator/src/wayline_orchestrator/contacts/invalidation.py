"""How the check cache (`check_cache.py`, ADR 60) learns of every write to a check's inputs, by any replica.

PostgreSQL: triggers on the ledger's tables (the policy, contacts, consents, attributes, channel scores)
send a NOTIFY on `CHANNEL` for each row written, with the tenant and the person (the policy's: the tenant
alone). Triggers rather than calls in the store: no write can forget one (a merge's UPDATE of contacts
notifies the absorbed person and the survivor; an erasure's DELETE each person), and NOTIFY is transactional:
sent at commit, never for a rollback, one per distinct payload per transaction. Each process keeps one
listening connection on a thread (`PostgresChangeListener`). The cache is used only while it listens: it is
emptied and bypassed from before the connection is made, and again as soon as the connection fails, until a
new one listens (notices sent meanwhile are lost, so nothing read before may be kept).

SQLite (one file; a second process may write it): `PRAGMA data_version` on a connection of the cache's own
changes whenever another connection (this process's or another's) committed. It is read before every
lookup; a change empties the cache. Cheap (no I/O beyond the WAL index), but coarse: any write, of any
table, empties it.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

import psycopg

from wayline_orchestrator.contacts.check_cache import CheckCache

__all__ = ["CHANNEL", "NOTIFY_MIGRATIONS", "PostgresChangeListener", "SqliteChangeWatch", "person_of"]

_log = logging.getLogger(__name__)

CHANNEL = "wayline_contact_inputs"
_SEPARATOR = "\x1f"
_PERSON_TABLES = ("contacts", "person_consents", "person_attributes", "channel_engagement")

# PostgreSQL only (migrated under their own component name). Per row: a merge's UPDATE of person_id notifies
# both persons; the payloads repeat within a transaction and PostgreSQL sends each once.
NOTIFY_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE OR REPLACE FUNCTION wayline_contact_inputs_changed() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN"
        f" IF TG_OP <> 'INSERT' THEN PERFORM pg_notify('{CHANNEL}',"
        " OLD.tenant_id || chr(31) || OLD.person_id); END IF;"
        f" IF TG_OP <> 'DELETE' THEN PERFORM pg_notify('{CHANNEL}',"
        " NEW.tenant_id || chr(31) || NEW.person_id); END IF;"
        " RETURN NULL; END $$",
        "CREATE OR REPLACE FUNCTION wayline_contact_policy_changed() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN"
        f" IF TG_OP <> 'INSERT' THEN PERFORM pg_notify('{CHANNEL}', OLD.tenant_id); END IF;"
        f" IF TG_OP <> 'DELETE' THEN PERFORM pg_notify('{CHANNEL}', NEW.tenant_id); END IF;"
        " RETURN NULL; END $$",
        *(
            f"CREATE TRIGGER {table}_notify AFTER INSERT OR UPDATE OR DELETE ON {table}"
            " FOR EACH ROW EXECUTE FUNCTION wayline_contact_inputs_changed()"
            for table in _PERSON_TABLES
        ),
        "CREATE TRIGGER contact_policies_notify AFTER INSERT OR UPDATE OR DELETE ON contact_policies"
        " FOR EACH ROW EXECUTE FUNCTION wayline_contact_policy_changed()",
    ),
)


def person_of(payload: str) -> tuple[str, str]:
    """(tenant, person) of a notice; the person is empty for the tenant's policy."""
    tenant, _, person = payload.partition(_SEPARATOR)
    return tenant, person


class PostgresChangeListener:
    """One thread LISTENing on `CHANNEL` and invalidating the cache's entries the notices name; on any
    failure of its connection the cache is suspended, and the thread connects again after `retry_seconds`."""

    def __init__(self, url: str, cache: CheckCache, retry_seconds: float = 1.0) -> None:
        self._url = url
        self._cache = cache
        self._retry_s = retry_seconds
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="contact-inputs-listener", daemon=True)
        self.backend_pid = 0  # the listening connection's server process (0: none)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._listen()
            except psycopg.Error as error:
                _log.warning("contact inputs listener: %s; checks read the database until it is back", error)
            finally:
                self.backend_pid = 0
                self._cache.suspend()
            self._stopping.wait(self._retry_s)

    def _listen(self) -> None:
        # Keepalives: a connection that went silently away is found out within seconds, not TCP's hours.
        with psycopg.connect(
            self._url,
            autocommit=True,
            connect_timeout=10,
            application_name="wayline-contact-inputs-listener",
            keepalives=1,
            keepalives_idle=5,
            keepalives_interval=2,
            keepalives_count=2,
        ) as connection:
            connection.execute(f"LISTEN {CHANNEL}")
            self.backend_pid = connection.info.backend_pid
            self._cache.resume()  # after LISTEN: every commit from now on is noticed
            while not self._stopping.is_set():
                for notice in connection.notifies(timeout=0.5):
                    self._cache.invalidate(*person_of(notice.payload))


class SqliteChangeWatch:
    """`PRAGMA data_version` on a connection of its own, read before each lookup of the cache (from `start`,
    once the tables exist, to `stop`)."""

    def __init__(self, path: Path, cache: CheckCache) -> None:
        self._path = path
        self._cache = cache
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._version = 0

    def start(self) -> None:
        self._connection = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        self._version = self._read(self._connection)
        self._cache.before_lookup = self.poll
        self._cache.resume()

    def stop(self) -> None:
        self._cache.suspend()
        self._cache.before_lookup = lambda: None
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    @staticmethod
    def _read(connection: sqlite3.Connection) -> int:
        return int(connection.execute("PRAGMA data_version").fetchone()[0])

    def poll(self) -> None:
        with self._lock:
            if self._connection is None:
                return
            version = self._read(self._connection)
            changed, self._version = version != self._version, version
        if changed:
            self._cache.clear()
