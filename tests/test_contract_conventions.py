"""Conventions every Wayline contract keeps (beyond buf lint), checked over every service's descriptors so
that later contract changes keep them too: AIP-158 paging, update masks, read RPCs marked side-effect free,
and no tenant field a caller could forge."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from google.protobuf import descriptor, descriptor_pb2

from wayline.common.registry import SERVICES, ServiceInfo


def wayline_methods(services: Iterable[ServiceInfo]) -> list[descriptor.MethodDescriptor]:
    """The methods of our own contracts (not the Open Inference Protocol's, which is KServe's)."""
    return [
        method
        for service in services
        for contract in service.contracts
        if contract.full_name.startswith("wayline.")
        for method in contract.methods
    ]


METHODS = wayline_methods(SERVICES)
# The gateway's own RPCs administer tenants and keys, and name tenants by design.
CUSTOMER_DATA_METHODS = wayline_methods(service for service in SERVICES if service.routed)
READ_PREFIXES = ("Get", "List", "Query", "Check", "Simulate")


def by_name(prefix: str) -> list[descriptor.MethodDescriptor]:
    return [m for m in METHODS if m.name.startswith(prefix)]


@pytest.mark.parametrize("method", by_name("List"), ids=lambda m: m.full_name)
def test_list_rpcs_page_per_aip_158(method: descriptor.MethodDescriptor) -> None:
    request, response = method.input_type.fields_by_name, method.output_type.fields_by_name
    assert request["page_size"].type == descriptor.FieldDescriptor.TYPE_INT32
    assert request["page_token"].type == descriptor.FieldDescriptor.TYPE_STRING
    assert response["next_page_token"].type == descriptor.FieldDescriptor.TYPE_STRING


@pytest.mark.parametrize("method", by_name("Update"), ids=lambda m: m.full_name)
def test_update_rpcs_take_an_update_mask(method: descriptor.MethodDescriptor) -> None:
    mask = method.input_type.fields_by_name.get("update_mask")
    assert mask is not None
    assert mask.message_type is not None
    assert mask.message_type.full_name == "google.protobuf.FieldMask"


@pytest.mark.parametrize(
    "method", [m for m in METHODS if m.name.startswith(READ_PREFIXES)], ids=lambda m: m.full_name
)
def test_read_rpcs_are_marked_free_of_side_effects(method: descriptor.MethodDescriptor) -> None:
    if method.name == "Decide":  # records the decision for GetDecision and Feedback
        return
    assert method.GetOptions().idempotency_level == descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS


def tenant_fields(message: descriptor.Descriptor, seen: set[str]) -> list[str]:
    """Fields named like a tenant anywhere inside `message`, as paths."""
    if message.full_name in seen or not message.full_name.startswith("wayline."):
        return []
    seen.add(message.full_name)
    found = []
    for field in message.fields:
        if field.name in ("tenant", "tenant_id"):
            found.append(field.name)
        if field.message_type is not None:
            found += [f"{field.name}.{inner}" for inner in tenant_fields(field.message_type, seen)]
    return found


@pytest.mark.parametrize("method", CUSTOMER_DATA_METHODS, ids=lambda m: m.full_name)
def test_customer_data_rpcs_carry_no_tenant_field(method: descriptor.MethodDescriptor) -> None:
    """The tenant comes from the API key, via metadata; a request field could be forged."""
    assert tenant_fields(method.input_type, set()) == []
