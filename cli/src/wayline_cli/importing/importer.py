"""The import loop: read, map, batch, send, report, checkpoint, in file order and one batch at a time.

A chunk is `batch_size` consecutive rows (fewer when their events approach the request size limit). Its
mappable rows go to the server in one TrackBatch; its unmappable rows never leave this process. Only when
the server has acknowledged the chunk are its rejections written to the report and the checkpoint moved past
its last row, so after any interruption the checkpoint, the report and the stored events agree, and a rerun
continues at the first row whose fate is not yet known.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from wayline.event.v1 import event_pb2
from wayline.ingest.v1 import ingest_service_pb2 as ingest_pb
from wayline_cli.importing.checkpoint import Checkpoint, file_fingerprint
from wayline_cli.importing.mapper import Mapped, Mapper, Rejected, Violation
from wayline_cli.importing.readers import Format, Row, RowSource, Unreadable, detect_format, open_source
from wayline_cli.importing.report import Rejection, RejectionReport, raw_json
from wayline_cli.importing.spec import MappingSpec, build_spec

__all__ = ["MAX_REQUEST_BYTES", "ImportJob", "ImportResult", "Snapshot", "open_job", "run_import"]

# Ingest refuses a TrackBatch above 500 KiB whole (WAYLINE_INGEST_MAX_BATCH_BYTES); chunks close before.
MAX_REQUEST_BYTES = 400 * 1024
_EVENT_PATH = re.compile(r"^events\[\d+\]\.?")

Send = Callable[[Sequence[event_pb2.Event]], ingest_pb.TrackBatchResponse]


@dataclass
class ImportJob:
    path: Path
    source: RowSource
    spec: MappingSpec
    state_path: Path
    report_path: Path
    batch_size: int = 500


@dataclass(frozen=True)
class Snapshot:
    """Where an import stands after a chunk: for progress bars."""

    position: int
    total: int
    rows_this_run: int
    checkpoint: Checkpoint


@dataclass
class ImportResult:
    checkpoint: Checkpoint  # totals over every run of this import
    skipped: int  # rows settled by earlier runs
    rows_this_run: int
    elapsed: float
    reasons: Counter[str]  # rejection reasons of this run
    report_path: Path


def open_job(
    path: Path,
    *,
    fmt: Format | None = None,
    mapping_file: Path | None = None,
    maps: Sequence[str] = (),
    sets: Sequence[str] = (),
    timezone: str | None = None,
    delimiter: str = ",",
    state_path: Path | None = None,
    report_path: Path | None = None,
    batch_size: int = 500,
) -> ImportJob:
    """Opens the file and checks the mapping against its columns; raises UsageError before any send."""
    resolved = fmt or detect_format(path)
    source = open_source(path, resolved, delimiter=delimiter)
    try:
        spec = build_spec(
            mapping_file=mapping_file,
            maps=maps,
            sets=sets,
            timezone=timezone,
            columns=source.columns,
            columns_fixed=source.columns_fixed,
        )
    except Exception:
        source.close()
        raise
    spec = dataclasses.replace(spec, extra={"format": resolved, "delimiter": delimiter})
    return ImportJob(
        path=path,
        source=source,
        spec=spec,
        state_path=state_path or path.with_name(path.name + ".wayline-import.json"),
        report_path=report_path or path.with_name(path.name + ".wayline-rejected.csv"),
        batch_size=batch_size,
    )


@dataclass
class _Chunk:
    last_row: int = 0
    rows: int = 0
    size: int = 0
    sent: list[tuple[int, Mapped, Row]] = field(default_factory=list)
    local: list[Rejection] = field(default_factory=list)
    local_rows: int = 0


def run_import(
    job: ImportJob,
    send: Send,
    *,
    on_progress: Callable[[Snapshot], None] | None = None,
    on_acknowledged: Callable[[int], None] | None = None,
) -> ImportResult:
    """Imports the rows the checkpoint does not cover yet. `on_acknowledged(n)` runs when the server has
    acknowledged this run's n-th batch and before the checkpoint moves past it."""
    return _Run(job, send, on_progress, on_acknowledged).run()


class _Run:
    def __init__(
        self,
        job: ImportJob,
        send: Send,
        on_progress: Callable[[Snapshot], None] | None,
        on_acknowledged: Callable[[int], None] | None,
    ) -> None:
        self._started = time.monotonic()
        self._job, self._send = job, send
        self._on_progress, self._on_acknowledged = on_progress, on_acknowledged
        fingerprint = file_fingerprint(job.path)
        self._state = Checkpoint.resume_or_start(job.state_path, fingerprint, job.spec.digest())
        report_name = str(job.report_path.resolve())
        keep = self._state.report_bytes if self._state.report == report_name else 0
        self._report = RejectionReport(job.report_path, keep)
        self._state.report = report_name
        self._mapper = Mapper(job.spec, fingerprint)
        self._skipped, self._this_run, self._batches = self._state.rows_done, 0, 0
        self._reasons: Counter[str] = Counter()

    def run(self) -> ImportResult:
        job, state = self._job, self._state
        if self._on_progress is not None:
            self._on_progress(Snapshot(0, job.source.total, 0, state))
        try:
            chunk = _Chunk()
            for number, row in job.source.rows(skip=state.rows_done):
                self._add(chunk, number, row)
                if chunk.rows >= job.batch_size or chunk.size >= MAX_REQUEST_BYTES:
                    self._settle(chunk)
                    chunk = _Chunk()
            if chunk.rows:
                self._settle(chunk)
            state.complete = True
            state.save(job.state_path)
        finally:
            self._report.close()
        elapsed = time.monotonic() - self._started
        return ImportResult(state, self._skipped, self._this_run, elapsed, self._reasons, job.report_path)

    def _add(self, chunk: _Chunk, number: int, row: Row | Unreadable) -> None:
        chunk.last_row, chunk.rows = number, chunk.rows + 1
        outcome = _map(self._mapper, number, row)
        if isinstance(outcome, Rejected):
            raw = row.raw if isinstance(row, Unreadable) else raw_json(row)
            chunk.local.extend(
                Rejection(number, outcome.event_id, v.field, v.reason, v.description, v.column, raw)
                for v in outcome.violations
            )
            chunk.local_rows += 1
        else:
            assert not isinstance(row, Unreadable)
            chunk.sent.append((number, outcome, row))
            chunk.size += outcome.event.ByteSize() + 8

    def _settle(self, chunk: _Chunk) -> None:
        """Send the chunk's events, then report its rejections, then checkpoint past it: in that order."""
        state = self._state
        found = list(chunk.local)
        if chunk.sent:
            response = self._send([mapped.event for _, mapped, _ in chunk.sent])
            self._batches += 1
            if self._on_acknowledged is not None:
                self._on_acknowledged(self._batches)
            found.extend(_server_rejections(chunk, response))
            state.accepted += response.accepted_count
            state.rejected_by_server += len(response.rejections)
        found.sort(key=lambda r: r.row)
        self._report.write(found)
        self._reasons.update(r.reason for r in found)
        state.rejected_locally += chunk.local_rows
        state.rows_done = chunk.last_row
        state.report_bytes = self._report.size()
        state.save(self._job.state_path)
        self._this_run += chunk.rows
        if self._on_progress is not None:
            source = self._job.source
            self._on_progress(Snapshot(source.position(), source.total, self._this_run, state))


def _map(mapper: Mapper, number: int, row: Row | Unreadable) -> Mapped | Rejected:
    if isinstance(row, Unreadable):
        return Rejected(mapper.fallback_id(number), [Violation("", row.reason, row.description)])
    return mapper.map(number, row)


def _server_rejections(chunk: _Chunk, response: ingest_pb.TrackBatchResponse) -> list[Rejection]:
    """The server's rejections with their batch index turned back into the row number and its column."""
    found: list[Rejection] = []
    for rejection in response.rejections:
        number, mapped, row = chunk.sent[rejection.index]
        raw = raw_json(row)
        event_id = rejection.event_id or mapped.event.event_id
        for violation in rejection.violations or [None]:
            if violation is None:
                found.append(Rejection(number, event_id, "", "REJECTED", "no reason given", "", raw))
                continue
            path = _EVENT_PATH.sub("", violation.field)
            found.append(
                Rejection(
                    number,
                    event_id,
                    path,
                    violation.reason,
                    violation.description,
                    mapped.column_of(path),
                    raw,
                )
            )
    return found
