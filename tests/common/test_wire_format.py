"""Varints written by hand read back through protobuf's own parser, at every length up to ten bytes."""

from __future__ import annotations

from google.protobuf import timestamp_pb2, wrappers_pb2
from hypothesis import given
from hypothesis import strategies as st

from wayline.common.wire_format import varint


@given(st.integers(min_value=0, max_value=2**63 - 1))
def test_a_varint_is_the_number_protobuf_reads(value: int) -> None:
    # Timestamp.seconds is field 1, an int64 varint: tag byte 0x08.
    assert timestamp_pb2.Timestamp.FromString(b"\x08" + varint(value)).seconds == value


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_a_varint_is_as_short_as_protobufs_own(value: int) -> None:
    written = wrappers_pb2.UInt64Value(value=value).SerializeToString() if value else b"\x08\x00"
    assert b"\x08" + varint(value) == written
