"""Channels as the CLI prints and reads them: a Channel's name in lower case without its prefix (`web`,
`mobile_app`, `call_center`), as the demo's tables, the resource lists and `--channel` options spell it."""

from __future__ import annotations

import typer

from wayline.event.v1 import event_pb2

__all__ = ["CHANNEL_NAMES", "channel_name", "channel_value"]

_PREFIX = "CHANNEL_"
# Every channel an option may name, in the contract's order.
CHANNEL_NAMES = tuple(
    value.name.removeprefix(_PREFIX).lower()
    for value in event_pb2.Channel.DESCRIPTOR.values
    if value.number != event_pb2.CHANNEL_UNSPECIFIED
)


def channel_name(value: int) -> str:
    """`web` for CHANNEL_WEB."""
    return event_pb2.Channel.Name(value).removeprefix(_PREFIX).lower()  # type: ignore[arg-type]


def channel_value(name: str) -> event_pb2.Channel.ValueType:
    """CHANNEL_WEB for `web` (any case); a usage error (exit 2) naming the channels for anything else."""
    wanted = name.strip().lower()
    if wanted not in CHANNEL_NAMES:
        raise typer.BadParameter(f"{name!r} is not a channel; one of {', '.join(CHANNEL_NAMES)}")
    return event_pb2.Channel.Value(f"{_PREFIX}{wanted.upper()}")
