"""The one place that decides how a plan's JSON Schemas are read, checked and compiled (draft 2020-12).

Three choices live here so the write path and the hot path cannot disagree:

- Validators never fetch anything: they get an empty `referencing.Registry`, so a `$ref` can only point
  inside its own schema. jsonschema's legacy default would download remote references while an event
  waits (slow, and a server-side request forgery); instead a reference that does not resolve makes the
  create or update fail.
- Formats are asserted (`format_checker`), as a tracking plan means them to be. jsonschema checks
  `email`, `ipv4`, `ipv6`, `date`, `uuid`, `regex`, ... on its own; `date-time` needs an optional
  dependency (`rfc3339-validator`) we do not install, so a strict RFC 3339 check stands in for it unless
  that library is present.
- Checking a schema against the metaschema (`check_schema`) happens on write, compiling happens once per
  plan revision; neither happens per event.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from wayline.common.filter_times import rfc3339_time

__all__ = ["MAX_SCHEMA_DEPTH", "compile_validator", "load_schema", "schema_problem"]

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
# Keywords whose values are data, not schemas: a "$ref" key inside them is not a reference.
_DATA_KEYWORDS = frozenset({"const", "enum", "default", "examples"})


def _is_rfc3339(instance: object) -> bool:
    """JSON Schema's `date-time` format, read as every ordering filter reads a bound (filter_times)."""
    if not isinstance(instance, str):
        return True  # formats apply to strings only
    return rfc3339_time(instance) is not None


def _format_checker() -> FormatChecker:
    checker = FormatChecker(formats=Draft202012Validator.FORMAT_CHECKER.checkers)
    if "date-time" not in checker.checkers:
        checker.checks("date-time")(_is_rfc3339)
    return checker


_FORMATS = _format_checker()
# Objects and arrays within objects and arrays: far more than a tracking plan's event needs (an event's own
# properties go about 33 deep within protobuf's recursion limit), far less than Python's recursion allows the
# validator (a schema 300 levels deep raised RecursionError, an INTERNAL answer).
MAX_SCHEMA_DEPTH = 64
_NO_RETRIEVAL: Registry[Any] = Registry()


def load_schema(text: str) -> dict[str, Any] | bool:
    """The schema document of `text` (an object or a boolean schema); ValueError when it is not one."""
    try:
        document = json.loads(text)
    except RecursionError:
        raise ValueError(f"nested deeper than {MAX_SCHEMA_DEPTH} levels") from None
    if not isinstance(document, dict | bool):
        raise ValueError("a JSON Schema is an object or a boolean")
    return document


def _depth(document: object) -> int:
    """How many objects and arrays deep `document` goes, counted without recursion."""
    deepest, pending = 0, [(document, 1)]
    while pending:
        node, level = pending.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is not None:
            deepest = max(deepest, level)
            pending.extend((child, level + 1) for child in children)
    return deepest


def _references(node: object) -> Iterator[tuple[str, object]]:
    """Every (`$ref` or `$dynamicRef` value, the subschema holding it), skipping data keywords."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("$ref", "$dynamicRef") and isinstance(value, str):
                yield value, node
            elif key not in _DATA_KEYWORDS:
                yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)


def _unresolved(schema: dict[str, Any]) -> str | None:
    root = _NO_RETRIEVAL.resolver_with_root(DRAFT202012.create_resource(schema))
    for reference, holder in _references(schema):
        resolver = root
        if isinstance(holder, dict) and isinstance(holder.get("$id"), str) and holder is not schema:
            resolver = root.in_subresource(DRAFT202012.create_resource(holder))
        try:
            resolver.lookup(reference)
        except Unresolvable:
            return reference
    return None


def schema_problem(text: str) -> str | None:
    """Why `text` is not a usable JSON Schema (draft 2020-12), or None when it is one."""
    try:
        schema = load_schema(text)
    except ValueError as exc:
        return f"is not valid JSON: {exc}"
    depth = _depth(schema)
    if depth > MAX_SCHEMA_DEPTH:
        # The checks below, and every event's validation, recurse as deep as the schema goes.
        return f"is nested {depth} levels deep; at most {MAX_SCHEMA_DEPTH}"
    try:
        Draft202012Validator.check_schema(schema, format_checker=_FORMATS)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        return f"is not a valid JSON Schema (draft 2020-12){f' at /{where}' if where else ''}: {exc.message}"
    if isinstance(schema, dict):
        reference = _unresolved(schema)
        if reference is not None:
            return (
                f"refers to {reference!r}, which is not inside the schema; remote references are not fetched"
            )
    return None


def compile_validator(text: str) -> Draft202012Validator:
    """A validator for a schema that `schema_problem` accepted; compiled once and reused for every event."""
    return Draft202012Validator(load_schema(text), registry=_NO_RETRIEVAL, format_checker=_FORMATS)
