"""`wayline segments apply|list|get|members|delete`: the journey store's segments (audiences), through the
gateway.

`apply FILE` reads YAML documents (one or several, separated by `---`), each the proto3 JSON form of the
contract's `Segment` with its `name` (`segments/{segment_id}`), and makes each segment match it: a missing
segment is created; an existing one gets exactly the fields the document names among `display_name`,
`description` and `condition` (an update mask of those, conditional on the etag just read; a changed condition
rebuilds the membership), and one whose named fields already match is left alone, so applying a file twice
changes nothing; `--dry-run` says what would change (`would create`, `would update`, `unchanged`), the service
checking each change as it would make it (`validate_only`) and storing nothing. `get` prints a segment in that
form, its output-only fields as comments; `list` the tenant's segments with their state and member counts;
`members` a segment's members (person ids, with when they entered). One line per segment or member goes to
standard output, errors to standard error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from google.protobuf.field_mask_pb2 import FieldMask
from rich.table import Table

from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as pb_grpc
from wayline.journeys.v1 import segment_pb2
from wayline_cli.apply import (
    NamedDocuments,
    apply_each,
    create_or_update,
    named_fields,
    parse,
    print_yaml,
    read_or_exit,
    snake,
)
from wayline_cli.gateway import (
    GATEWAY,
    Auth,
    GatewayOption,
    TlsOption,
    api_key_option,
    bearer,
    call,
    err,
    out,
    pages,
)
from wayline_cli.times import utc_text

__all__ = ["SegmentFileError", "read_segments", "segments_app"]

PREFIX = "segments/"
_OUTPUT_ONLY = ("status", "revision", "create_time", "update_time", "etag")
_WRITABLE = ("display_name", "description", "condition")

segments_app = typer.Typer(
    help="Apply, list, read and delete segments (audiences), and list their members.", no_args_is_help=True
)

ApiKeyOption = Annotated[
    str,
    api_key_option("An API key: admin scope to apply or delete, read to read."),
]


class SegmentFileError(ValueError):
    """A file that is not YAML documents of segments with their names (the service checks the conditions)."""


_FILE = NamedDocuments("Segment", "segments", _OUTPUT_ONLY, SegmentFileError)


def _wanted(where: str, document: dict[str, Any]) -> tuple[segment_pb2.Segment, list[str]]:
    segment = parse(document, segment_pb2.Segment(), where, SegmentFileError)
    return segment, [snake(k) for k in document if snake(k) in _WRITABLE]


def read_segments(path: Path) -> list[tuple[segment_pb2.Segment, list[str]]]:
    """The file's segments, in order, each with the writable fields its document names."""
    return _FILE.read(path, _wanted)


def _apply_one(
    stub: pb_grpc.JourneyServiceStub,
    auth: Auth,
    wanted: tuple[segment_pb2.Segment, list[str]],
    dry_run: bool,
) -> str:
    segment, paths = wanted

    def create() -> None:
        draft = segment_pb2.Segment()
        draft.CopyFrom(segment)
        draft.ClearField("name")
        request = pb.CreateSegmentRequest(
            segment_id=segment.name.removeprefix(PREFIX), segment=draft, validate_only=dry_run
        )
        stub.CreateSegment(request, metadata=auth, timeout=10)

    def update(stored: segment_pb2.Segment) -> None:
        change = segment_pb2.Segment()
        change.CopyFrom(segment)
        change.etag = stored.etag
        request = pb.UpdateSegmentRequest(
            segment=change, update_mask=FieldMask(paths=paths), validate_only=dry_run
        )
        stub.UpdateSegment(request, metadata=auth, timeout=10)

    return create_or_update(
        lambda: stub.GetSegment(pb.GetSegmentRequest(name=segment.name), metadata=auth, timeout=10).segment,
        create,
        lambda stored: named_fields(stored, paths) == named_fields(segment, paths),
        update,
        dry_run=dry_run,
    )


def _name(segment: str) -> str:
    return segment if segment.startswith(PREFIX) else f"{PREFIX}{segment}"


@segments_app.command("apply")
def apply(
    file: Annotated[
        Path, typer.Argument(help="YAML documents, each a Segment (proto3 JSON form) with its name.")
    ],
    *,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Only say what would change: the service checks each creation or update, nothing is stored.",
        ),
    ] = False,
    api_key: ApiKeyOption,
    gateway: GatewayOption = GATEWAY,
    tls: TlsOption = False,
) -> None:
    """Create or update the file's segments so that they match it (idempotent)."""
    segments = read_or_exit(read_segments, file, SegmentFileError)
    auth = bearer(api_key)
    apply_each(
        segments,
        pb_grpc.JourneyServiceStub,
        lambda stub, wanted: _apply_one(stub, auth, wanted, dry_run),
        lambda wanted: wanted[0].name,
        gateway=gateway,
        tls=tls,
    )


def _state(status: segment_pb2.SegmentStatus) -> str:
    return segment_pb2.SegmentState.Name(status.state).removeprefix("SEGMENT_STATE_").lower()


@segments_app.command("list")
def list_segments(*, api_key: ApiKeyOption, gateway: GatewayOption = GATEWAY, tls: TlsOption = False) -> None:
    """List the segments by id: display name, state, members and how fresh their data is."""
    table = Table("segment", "display name", "state", "members", "data as of (UTC)")

    def fill(stub: pb_grpc.JourneyServiceStub, auth: Auth) -> None:
        listed = pages(
            lambda r: stub.ListSegments(r, metadata=auth, timeout=10),
            pb.ListSegmentsRequest(page_size=1000),
            lambda p: p.segments,
        )
        for segment in listed:
            table.add_row(
                segment.name.removeprefix(PREFIX),
                segment.display_name,
                _state(segment.status),
                f"{segment.status.member_count:,}",
                utc_text(segment.status.data_as_of),
            )

    call(pb_grpc.JourneyServiceStub, fill, gateway=gateway, tls=tls, api_key=api_key)
    out.print(table)


@segments_app.command("get")
def get(
    segment: Annotated[str, typer.Argument(help="The segment's id or name (segments/{id}).")],
    *,
    api_key: ApiKeyOption,
    gateway: GatewayOption = GATEWAY,
    tls: TlsOption = False,
) -> None:
    """Print a segment as `apply` reads it, its output-only fields (state, members, times) as comments."""
    name = _name(segment)
    found = call(
        pb_grpc.JourneyServiceStub,
        lambda stub, auth: stub.GetSegment(pb.GetSegmentRequest(name=name), metadata=auth, timeout=10),
        what=name,
        gateway=gateway,
        tls=tls,
        api_key=api_key,
    ).segment
    print_yaml(found, _OUTPUT_ONLY)


@segments_app.command("members")
def members(
    segment: Annotated[str, typer.Argument(help="The segment's id or name (segments/{id}).")],
    *,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="List at most this many members.")] = 1000,
    api_key: ApiKeyOption,
    gateway: GatewayOption = GATEWAY,
    tls: TlsOption = False,
) -> None:
    """Print the segment's members, one person id a line with when they entered, and how fresh it is."""
    name = _name(segment)

    def read(stub: pb_grpc.JourneyServiceStub, auth: Auth) -> tuple[list[segment_pb2.SegmentMember], str]:
        found: list[segment_pb2.SegmentMember] = []
        token, fresh = "", "—"
        while len(found) < limit:
            request = pb.ListSegmentMembersRequest(segment=name, page_size=min(limit - len(found), 10_000))
            request.page_token = token
            page = stub.ListSegmentMembers(request, metadata=auth, timeout=30)
            found += page.members
            fresh = utc_text(page.status.data_as_of)
            token = page.next_page_token
            if not token:
                break
        return found, fresh

    listed, fresh = call(
        pb_grpc.JourneyServiceStub, read, what=name, gateway=gateway, tls=tls, api_key=api_key
    )
    for member in listed:
        out.print(f"{member.person_id}\t{utc_text(member.enter_time)}")
    err.print(f"{len(listed):,} members of {name}, its data as of {fresh} UTC")  # stdout stays the ids


@segments_app.command("delete")
def delete(
    segment: Annotated[str, typer.Argument(help="The segment's id or name (segments/{id}).")],
    *,
    api_key: ApiKeyOption,
    gateway: GatewayOption = GATEWAY,
    tls: TlsOption = False,
) -> None:
    """Delete a segment (refused while another segment refers to it)."""
    name = _name(segment)
    call(
        pb_grpc.JourneyServiceStub,
        lambda stub, auth: stub.DeleteSegment(pb.DeleteSegmentRequest(name=name), metadata=auth, timeout=10),
        what=name,
        gateway=gateway,
        tls=tls,
        api_key=api_key,
    )
    out.print(f"deleted {name}")
