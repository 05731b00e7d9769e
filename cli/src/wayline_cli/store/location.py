"""Where a journey store is: the embedded chDB engine under a data directory, or a ClickHouse server or
cluster, described with the journeys service's own settings and opened with its own connection code, so
that `wayline store` reads and writes exactly what journeys would."""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from clickhouse_connect.driver.client import Client

from wayline_cli.store.errors import StoreCopyError
from wayline_journeys.settings import JourneysSettings
from wayline_journeys.store.client import connect_clickhouse
from wayline_journeys.store.topology import Topology

__all__ = ["StoreLocation"]


@dataclass(frozen=True)
class StoreLocation:
    settings: JourneysSettings

    @classmethod
    def of(
        cls, *, clickhouse_url: str = "", data_dir: Path | None = None, database: str, cluster: str = ""
    ) -> StoreLocation:
        """A store given as a server URL or a data directory (exactly one), as journeys' settings name it:
        WAYLINE_JOURNEYS_CLICKHOUSE_URL, WAYLINE_DATA_DIR, ..._CLICKHOUSE_DATABASE, ..._CLICKHOUSE_CLUSTER.
        Every field is given, so that no WAYLINE_* variable of the shell quietly changes the target."""
        if bool(clickhouse_url) == (data_dir is not None):
            raise StoreCopyError("give the store as exactly one of --clickhouse-url and --data-dir")
        if cluster and not clickhouse_url:
            raise StoreCopyError("--cluster needs --clickhouse-url: the embedded engine is one node")
        settings = JourneysSettings(
            data_dir=data_dir or Path(".wayline"),
            clickhouse_url=clickhouse_url,
            clickhouse_database=database,
            clickhouse_cluster=cluster,
        )
        return cls(settings)

    @property
    def embedded_path(self) -> Path:
        """The chDB directory, where journeys keeps it (<WAYLINE_DATA_DIR>/journeys/chdb)."""
        return self.settings.service_dir / "chdb"

    @property
    def embedded(self) -> bool:
        return not self.settings.clickhouse_url

    @property
    def topology(self) -> Topology:
        return Topology(cluster=self.settings.clickhouse_cluster, database=self.settings.clickhouse_database)

    def connect(self) -> Client:
        """Journeys' own connection: the database is created if missing (ON CLUSTER on a cluster)."""
        settings = self.settings
        return connect_clickhouse(
            settings.clickhouse_url,
            settings.clickhouse_database,
            self.embedded_path,
            settings.clickhouse_cluster,
        )

    def describe(self) -> str:
        """For manifests and messages: never the password."""
        database = self.settings.clickhouse_database
        if self.embedded:
            return f"chdb:{self.embedded_path.resolve()} (database {database})"
        parts = urlsplit(self.settings.clickhouse_url)
        host = parts.hostname or ""
        netloc = f"{parts.username}@{host}" if parts.username else host
        netloc += f":{parts.port}" if parts.port else ""
        cluster = self.settings.clickhouse_cluster
        url = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
        return f"{url} (database {database}{f', cluster {cluster}' if cluster else ''})"

    def check_not_in_use(self) -> None:
        """Refuse an embedded store that another process (a running journeys) has open.

        chDB holds an exclusive flock on <path>/status, which names the holder's PID, for as long as the
        engine is open. This process's own engine (a test, or a command that already connected) is no
        other user. A ClickHouse server cannot tell who else writes to it: the runbook says to stop
        journeys first."""
        status = self.embedded_path / "status"
        if not self.embedded or not status.exists():
            return
        with status.open("rb") as file:
            try:
                fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder_pid(status)
                if holder != os.getpid():
                    raise StoreCopyError(
                        f"the journey store at {self.embedded_path} is open in process {holder or 'unknown'} "
                        "(a running journeys service?); stop it first, the store must be quiescent"
                    ) from None
            else:
                fcntl.flock(file, fcntl.LOCK_UN)


def _holder_pid(status: Path) -> int | None:
    for line in status.read_text(errors="replace").splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "PID" and value.strip().isdigit():
            return int(value.strip())
    return None
