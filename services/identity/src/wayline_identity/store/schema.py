"""Identity's tables, as versioned migrations (wayline.common.sql.migrate), the same SQL on SQLite and
PostgreSQL.

Times are microseconds since the epoch in BIGINT columns (exact, and ordered the same on both engines).
`identifiers` maps each normalised identifier to the canonical person of its profile (`person_id`) and to the
person it was first recorded under (`origin_person_id`), from which a split knows which profile an identifier
returns to. `edges` is the edge log: each row joined two components; `removed_by` is set when an unmerge or
a split took it out. `person_overrides` holds the latest override per key, and its `version` column is the
feed's order (ListPersonOverrides). `tenant_state` holds each tenant's counters: profile creation order
(`next_seq`, which decides the oldest profile of a merge) and the override version.
"""

from __future__ import annotations

__all__ = ["MIGRATIONS"]

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE tenant_state (tenant TEXT NOT NULL PRIMARY KEY, next_seq BIGINT NOT NULL,"
        " override_version BIGINT NOT NULL)",
        "CREATE TABLE identity_rules (tenant TEXT NOT NULL PRIMARY KEY, spec TEXT NOT NULL,"
        " revision BIGINT NOT NULL, update_time BIGINT NOT NULL)",
        "CREATE TABLE profiles (tenant TEXT NOT NULL, person_id TEXT NOT NULL, seq BIGINT NOT NULL,"
        " merged_into TEXT, create_time BIGINT NOT NULL, update_time BIGINT NOT NULL,"
        " first_seen BIGINT NOT NULL, last_seen BIGINT NOT NULL, PRIMARY KEY (tenant, person_id))",
        # Partial: most profiles are never merged, and with the NULLs indexed the planners (SQLite after
        # ANALYZE) judge the index useless and scan the table to find a profile's merged persons.
        "CREATE INDEX profiles_by_merged_into ON profiles (tenant, merged_into) WHERE merged_into IS NOT"
        " NULL",
        "CREATE INDEX profiles_by_last_seen ON profiles (tenant, last_seen, person_id)",
        "CREATE TABLE identifiers (tenant TEXT NOT NULL, type TEXT NOT NULL, value TEXT NOT NULL,"
        " person_id TEXT NOT NULL, origin_person_id TEXT NOT NULL, first_seen BIGINT NOT NULL,"
        " last_seen BIGINT NOT NULL, first_event_id TEXT NOT NULL, PRIMARY KEY (tenant, type, value))",
        "CREATE INDEX identifiers_by_person ON identifiers (tenant, person_id)",
        "CREATE TABLE edges (tenant TEXT NOT NULL, edge_id TEXT NOT NULL, a_type TEXT NOT NULL,"
        " a_value TEXT NOT NULL, b_type TEXT NOT NULL, b_value TEXT NOT NULL, person_id TEXT NOT NULL,"
        " event_id TEXT NOT NULL, merge_id TEXT NOT NULL, create_time BIGINT NOT NULL, removed_by TEXT,"
        " PRIMARY KEY (tenant, edge_id))",
        "CREATE INDEX edges_by_person ON edges (tenant, person_id)",
        "CREATE INDEX edges_by_merge ON edges (tenant, merge_id)",
        "CREATE INDEX edges_by_time ON edges (tenant, create_time)",
        "CREATE TABLE merges (tenant TEXT NOT NULL, merge_id TEXT NOT NULL, kind TEXT NOT NULL,"
        " target_person_id TEXT NOT NULL, source_person_id TEXT NOT NULL, identifier_type TEXT NOT NULL,"
        " identifier_value TEXT NOT NULL, event_id TEXT NOT NULL, create_time BIGINT NOT NULL,"
        " actor TEXT NOT NULL, reason TEXT NOT NULL, reverted_merge_id TEXT NOT NULL,"
        " reverted_by_merge_id TEXT NOT NULL, PRIMARY KEY (tenant, merge_id))",
        "CREATE INDEX merges_by_target ON merges (tenant, target_person_id, create_time)",
        "CREATE INDEX merges_by_source ON merges (tenant, source_person_id, create_time)",
        "CREATE TABLE separations (tenant TEXT NOT NULL, person_a TEXT NOT NULL, person_b TEXT NOT NULL,"
        " merge_id TEXT NOT NULL, PRIMARY KEY (tenant, person_a, person_b))",
        "CREATE INDEX separations_by_b ON separations (tenant, person_b)",
        "CREATE TABLE conflicts (tenant TEXT NOT NULL, person_id TEXT NOT NULL, other_person_id TEXT NOT"
        " NULL,"
        " identifier_type TEXT NOT NULL, explanation TEXT NOT NULL, first_event_id TEXT NOT NULL,"
        " last_event_id TEXT NOT NULL, first_time BIGINT NOT NULL, last_time BIGINT NOT NULL,"
        " event_count BIGINT NOT NULL, PRIMARY KEY (tenant, person_id, other_person_id, identifier_type))",
        "CREATE TABLE person_overrides (tenant TEXT NOT NULL, person_id TEXT NOT NULL,"
        " identifier_type TEXT NOT NULL, identifier_value TEXT NOT NULL, override_person_id TEXT NOT NULL,"
        " version BIGINT NOT NULL, create_time BIGINT NOT NULL, merge_id TEXT NOT NULL,"
        " erased INTEGER NOT NULL, PRIMARY KEY (tenant, person_id, identifier_type, identifier_value))",
        "CREATE INDEX person_overrides_by_version ON person_overrides (tenant, version)",
        "CREATE INDEX person_overrides_by_target ON person_overrides (tenant, override_person_id)",
    ),
    (
        # Erasures: one record per DeleteProfile, one step per store. `identifiers` holds what the stores need
        # to find the person's data while the erasure runs (JSON) and is emptied when it completes.
        "CREATE TABLE erasures (tenant TEXT NOT NULL, erasure_id TEXT NOT NULL, person_ids TEXT NOT NULL,"
        " identifiers TEXT NOT NULL, marker_version BIGINT NOT NULL, actor TEXT NOT NULL,"
        " create_time BIGINT NOT NULL, complete_time BIGINT, PRIMARY KEY (tenant, erasure_id))",
        "CREATE INDEX erasures_pending ON erasures (complete_time, tenant)",
        "CREATE TABLE erasure_steps (tenant TEXT NOT NULL, erasure_id TEXT NOT NULL, store TEXT NOT NULL,"
        " state TEXT NOT NULL, deleted_count BIGINT NOT NULL, attempt_count INTEGER NOT NULL,"
        " last_error TEXT NOT NULL, update_time BIGINT NOT NULL, PRIMARY KEY (tenant, erasure_id, store))",
        # Each consumer's position in the override feed (AcknowledgePersonOverrides).
        "CREATE TABLE override_cursors (tenant TEXT NOT NULL, consumer TEXT NOT NULL, version BIGINT NOT"
        " NULL,"
        " update_time BIGINT NOT NULL, PRIMARY KEY (tenant, consumer))",
    ),
)
