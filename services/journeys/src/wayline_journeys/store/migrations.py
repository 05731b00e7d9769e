"""Versioned schema migrations for the journey store, applied at start-up.

`schema_migrations` records each applied version. Start-up applies the versions above the highest recorded
one, in order, recording each after its statements succeed, and refuses to start when the database records a
version this code does not know (a newer release migrated it: running older code on it could write rows the
newer schema reads wrongly). Statements are idempotent (IF NOT EXISTS, or steps that check the state they
change), so a start-up interrupted between a statement and its record simply applies that version again.
Databases from before versioning record nothing and replay every version, harmlessly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog
from clickhouse_connect.driver.client import Client

from wayline_journeys.store.topology import Topology

__all__ = ["Migration", "SchemaTooNew", "Step", "migrate"]

log = structlog.get_logger("wayline.journeys.migrations")

Step = str | Callable[[Client, Topology], None]
"""A statement, or a function for what one statement cannot say (a change that must check the state)."""


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    steps: Callable[[Topology], Sequence[Step]]


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer release than this one."""


def migrate(client: Client, topology: Topology, migrations: Sequence[Migration]) -> list[int]:
    """Apply the pending `migrations`; return the versions applied."""
    if [m.version for m in migrations] != list(range(1, len(migrations) + 1)):
        raise ValueError("migration versions must be 1, 2, 3, ... in order")
    client.command(
        f"CREATE TABLE IF NOT EXISTS {topology.local('schema_migrations')}{topology.on_cluster} "
        "(version UInt32, description String, applied_at DateTime64(6, 'UTC') DEFAULT now64(6)) "
        f"ENGINE = {topology.engine('schema_migrations', 'ReplacingMergeTree', sharded=False)} "
        "ORDER BY version"
    )
    applied = int(
        client.query(f"SELECT max(version) FROM {topology.local('schema_migrations')}").result_rows[0][0]
    )
    if applied > len(migrations):
        raise SchemaTooNew(
            f"the journey store's schema is at version {applied}, newer than this release knows "
            f"({len(migrations)}); run the release that migrated it, or a newer one"
        )
    done = []
    for migration in migrations[applied:]:
        for step in migration.steps(topology):
            if isinstance(step, str):
                client.command(step)
            else:
                step(client, topology)
        client.insert(
            topology.local("schema_migrations"),
            [[migration.version, migration.description]],
            column_names=["version", "description"],
        )
        log.info("journeys.schema_migrated", version=migration.version, description=migration.description)
        done.append(migration.version)
    return done
