"""Bulk import of history (`wayline import`): exports in CSV, JSON lines or Parquet become events.

readers stream rows; spec and mapper turn them into events with deterministic ids; sender delivers batches
through the gateway as backfill with retries; checkpoint and report make the import resumable and its
rejections fixable; importer runs the loop and command is the typer front end.
"""

from wayline_cli.importing.errors import ImportStopped, UsageError
from wayline_cli.importing.importer import ImportJob, ImportResult, Snapshot, open_job, run_import
from wayline_cli.importing.sender import BatchSender

__all__ = [
    "BatchSender",
    "ImportJob",
    "ImportResult",
    "ImportStopped",
    "Snapshot",
    "UsageError",
    "open_job",
    "run_import",
]
