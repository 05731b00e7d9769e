"""Where the journey tables live: one embedded/single ClickHouse, or a cluster.

Locally every table is a (Replacing)MergeTree under its own name. With `WAYLINE_JOURNEYS_CLICKHOUSE_CLUSTER`
set, DDL runs ON CLUSTER; event-sized tables become Replicated*MergeTree `<name>_local` tables sharded by the
event's anchor behind a Distributed table of the plain name (so reads and inserts keep one SQL for both), and
small tables every query joins (person overrides, cursors, models) are replicated whole to every node, so a
shard's part of a distributed query joins them locally. Mutations (DELETE, APPLY DELETED MASK) address the
local tables ON CLUSTER, since Distributed tables take none.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Topology"]


@dataclass(frozen=True)
class Topology:
    cluster: str = ""
    database: str = "wayline"

    @property
    def clustered(self) -> bool:
        return bool(self.cluster)

    @property
    def on_cluster(self) -> str:
        return f" ON CLUSTER `{self.cluster}`" if self.cluster else ""

    def local(self, table: str) -> str:
        """The table that holds the rows (and takes mutations)."""
        return f"{table}_local" if self.cluster else table

    def engine(self, table: str, kind: str = "MergeTree", args: str = "", *, sharded: bool = True) -> str:
        """`kind(args)` locally; its replicated form on a cluster, one replica set per shard for sharded
        tables and one for the whole cluster otherwise."""
        if not self.cluster:
            return f"{kind}({args})"
        path = (
            f"/clickhouse/tables/{{shard}}/{self.database}/{table}"
            if sharded
            else (f"/clickhouse/tables/all/{self.database}/{table}")
        )
        replica = "{replica}" if sharded else "{shard}-{replica}"
        extra = f", {args}" if args else ""
        return f"Replicated{kind}('{path}', '{replica}'{extra})"

    def distributed(self, table: str, sharding_key: str) -> list[str]:
        """The Distributed table over `table`'s local table on a cluster; nothing locally."""
        if not self.cluster:
            return []
        return [
            f"CREATE TABLE IF NOT EXISTS {table}{self.on_cluster} AS {self.local(table)} ENGINE = "
            f"Distributed('{self.cluster}', '{self.database}', '{self.local(table)}', {sharding_key})"
        ]
