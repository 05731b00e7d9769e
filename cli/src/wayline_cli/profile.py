"""`wayline profile SUBJECT`: who identity says a customer is, via the gateway (GetProfile).

The subject is a person id or any identifier as `type:value` (subjects.py). Printed: the person id, when they
were first and last seen, the identifiers the profile holds (with when each was first and last seen and the
profile it was first recorded under), the merges touching it (newest first, with what caused each and whether
it was undone), and the merges identity refused. With `--json`, the Profile message as the API returns it.
"""

from __future__ import annotations

import sys
from typing import Annotated

import grpc
import typer
from google.protobuf import json_format
from rich.table import Table

from wayline.identity.v1 import identity_rules_pb2 as rules_pb2
from wayline.identity.v1 import identity_service_pb2 as pb
from wayline.identity.v1 import identity_service_pb2_grpc as pb_grpc
from wayline.identity.v1 import profile_pb2
from wayline_cli.gateway import (
    GATEWAY,
    GatewayOption,
    ReadKeyOption,
    TlsOption,
    bearer,
    failure,
    open_channel,
    out,
)
from wayline_cli.subjects import person_ref
from wayline_cli.times import utc_text

__all__ = ["profile_command"]


def _identifiers(profile: profile_pb2.Profile) -> Table:
    table = Table(title="Identifiers", title_justify="left")
    for column in ("type", "value", "first seen (UTC)", "last seen (UTC)", "first recorded under"):
        table.add_column(column)
    for held in profile.identifiers:
        origin = held.origin_person_id
        table.add_row(
            held.identifier.type,
            held.identifier.value,
            utc_text(held.first_seen_time),
            utc_text(held.last_seen_time),
            "this profile" if not origin or origin == profile.person_id else origin,
        )
    return table


def _merges(profile: profile_pb2.Profile) -> list[str]:
    """One line per merge, newest first: lines printed unwrapped, not a table, since three person ids and an
    event id do not fit a table's width without breaking an id in two."""
    lines = []
    for merge in profile.merge_history:
        kind = profile_pb2.MergeKind.Name(merge.kind).removeprefix("MERGE_KIND_").lower()
        cause = f"event {merge.event_id}" if merge.event_id else merge.actor or merge.reason or "—"
        undone = f"; undone by merge {merge.reverted_by_merge_id}" if merge.reverted_by_merge_id else ""
        lines.append(
            f"  {utc_text(merge.create_time)}  {kind}: {merge.source_person_id} into "
            f"{merge.target_person_id}, caused by {cause}{undone}"
        )
    return lines


def _conflicts(profile: profile_pb2.Profile) -> list[str]:
    lines = []
    for refused in profile.conflicts:
        reason = rules_pb2.IgnoreReason.Name(refused.reason).removeprefix("IGNORE_REASON_").lower()
        lines.append(
            f"  {utc_text(refused.last_time)}  with {refused.other_person_id} over "
            f"{refused.identifier_type}: {reason}{f' ({refused.explanation})' if refused.explanation else ''}"
        )
    return lines


def profile_command(
    subject: Annotated[str, typer.Argument(help="A person id, or an identifier as type:value.")],
    *,
    as_json: Annotated[
        bool, typer.Option("--json", help="The profile as the API returns it (JSON).")
    ] = False,
    api_key: ReadKeyOption,
    gateway: GatewayOption = GATEWAY,
    tls: TlsOption = False,
) -> None:
    """Print a customer's profile: identifiers, merges and refused merges, by person id or identifier."""
    request = pb.GetProfileRequest(person=person_ref(subject))
    with open_channel(gateway, tls) as channel:
        try:
            profile = (
                pb_grpc.IdentityServiceStub(channel)
                .GetProfile(request, metadata=bearer(api_key), timeout=30)
                .profile
            )
        except grpc.RpcError as error:
            raise failure(error, subject) from None
    if as_json:
        sys.stdout.write(json_format.MessageToJson(profile, preserving_proto_field_name=True) + "\n")
        return
    # The counts, not the lists' lengths: a profile lists its first 1,000 identifiers and merged persons.
    held = max(profile.identifier_count, len(profile.identifiers))
    merged = max(profile.merged_person_count, len(profile.merged_person_ids))
    out.print(
        f"person {profile.person_id}: first seen {utc_text(profile.first_seen_time)}, last seen "
        f"{utc_text(profile.last_seen_time)} UTC; {held:,} identifiers; "
        f"{merged:,} profile{'' if merged == 1 else 's'} merged in"
    )
    out.print(_identifiers(profile))
    if held > len(profile.identifiers):
        out.print(f"(the first {len(profile.identifiers):,} of {held:,} identifiers, by priority)")
    if profile.merge_history:
        more = " (older ones not shown)" if profile.merge_history_truncated else ""
        out.print(f"Merges, newest first{more}:", *_merges(profile), sep="\n", soft_wrap=True)
    if profile.conflicts:
        out.print("Merges identity refused, newest first:", *_conflicts(profile), sep="\n", soft_wrap=True)
