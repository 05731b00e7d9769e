"""The mapping spec: which column (or constant) becomes which Event field, as the user wrote it.

Loaded from a JSON or YAML file (`--mapping`) and adjusted by `--map TARGET[:TYPE]=SOURCE` and
`--set TARGET[:TYPE]=CONSTANT`; without a file or `--map`, every column named like a target maps to itself.
Everything that can be wrong with a mapping is found here, before the first row is read, so a typo in a
target costs a usage error rather than a million rejected rows. The format is documented in docs/import.md.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from wayline.common.time_zones import load_zone
from wayline.event.v1 import event_pb2
from wayline_cli.importing.errors import UsageError
from wayline_cli.importing.values import EPOCH_FORMATS, KINDS

__all__ = ["FieldSpec", "MappingSpec", "build_spec", "check_target", "context_field"]

PLAIN_TARGETS = ("event_id", "type", "name", "channel", "timestamp", "text", "group_id")
REVENUE_TARGETS = ("revenue.amount", "revenue.currency")
IDENTIFIER_TYPE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_SPEC_KEYS = {"column", "value", "type", "format"}


@dataclass(frozen=True)
class FieldSpec:
    """One target fed by a source `column` (a key path such as `customer.email` for nested JSON) or by a
    constant `value`; `kind` types properties, `format` reads timestamps (strptime, epoch_s, epoch_ms)."""

    target: str
    column: str | None = None
    value: object = None
    kind: str = "auto"
    format: str | None = None


@dataclass(frozen=True)
class MappingSpec:
    fields: tuple[FieldSpec, ...]
    timezone: str = "UTC"
    extra: dict[str, str] = field(default_factory=dict)  # what else shapes the rows (the format)

    def digest(self) -> str:
        """Identifies the mapping, so a checkpoint is never resumed under a different one."""
        body = json.dumps(
            {"fields": [asdict(f) for f in self.fields], "timezone": self.timezone, **self.extra},
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(body.encode()).hexdigest()[:32]

    def columns(self) -> set[str]:
        return {f.column for f in self.fields if f.column is not None}


def build_spec(
    *,
    mapping_file: Path | None,
    maps: Sequence[str],
    sets: Sequence[str],
    timezone: str | None,
    columns: Sequence[str],
    columns_fixed: bool,
) -> MappingSpec:
    """The checked mapping: file, then --map and --set (each replacing the file's entry for its target)."""
    specs: dict[str, FieldSpec] = {}
    zone = "UTC"
    if mapping_file is not None:
        document = _load_document(mapping_file)
        zone = str(document.get("timezone", zone))
        specs.update(_from_document(document))
    elif not maps:
        specs.update({c: FieldSpec(c, column=c) for c in columns if _is_target(c)})
    for option, is_constant in [*((m, False) for m in maps), *((s, True) for s in sets)]:
        spec = _from_option(option, constant=is_constant)
        specs[spec.target] = spec
    zone = timezone or zone
    if load_zone(zone) is None:
        raise UsageError(f"unknown time zone {zone!r}; use an IANA name such as Europe/Paris")
    _check_complete(specs, columns if columns_fixed else None)
    return MappingSpec(tuple(specs.values()), zone)


def check_target(target: str) -> None:
    if target in PLAIN_TARGETS or target in REVENUE_TARGETS:
        return
    head, _, rest = target.partition(".")
    if head == "identifiers" and IDENTIFIER_TYPE.fullmatch(rest):
        return
    if head == "properties" and rest and all(rest.split(".")):
        return
    if head == "context" and rest:
        context_field(rest.split("."))
        return
    raise UsageError(
        f"unknown target {target!r}; targets are {', '.join(PLAIN_TARGETS + REVENUE_TARGETS)}, "
        "identifiers.<type> (lower_snake_case), properties.<key> and context.<field> (see docs/import.md)"
    )


def context_field(parts: Sequence[str]) -> object:
    """The EventContext scalar field a `context.` target names (`extra.<key>` is free-form)."""
    message = event_pb2.EventContext.DESCRIPTOR
    for index, part in enumerate(parts):
        found = message.fields_by_name.get(part)
        if found is None:
            raise UsageError(f"EventContext has no field {'.'.join(parts[: index + 1])!r}")
        if part == "extra" and message is event_pb2.EventContext.DESCRIPTOR:
            if len(parts) == index + 2 and parts[-1]:
                return found
            raise UsageError("context.extra takes one key, for example context.extra.till_number")
        if found.message_type is None:
            if index != len(parts) - 1:
                raise UsageError(f"context.{'.'.join(parts[: index + 1])} has no fields")
            return found
        message = found.message_type
    raise UsageError(f"context.{'.'.join(parts)} is a message; name one of its fields")


def _is_target(name: str) -> bool:
    try:
        check_target(name)
    except UsageError:
        return False
    return True


def _load_document(path: Path) -> dict[str, object]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise UsageError(f"cannot read the mapping {path}: {error}") from error
    is_yaml = path.suffix.lower() in (".yaml", ".yml")
    document = _parse_yaml(path, text) if is_yaml else _parse_json(path, text)
    if not isinstance(document, dict) or not isinstance(document.get("fields"), dict):
        raise UsageError(f"the mapping {path} must be an object with a 'fields' object (see docs/import.md)")
    unknown = set(document) - {"fields", "timezone"}
    if unknown:
        raise UsageError(f"the mapping {path} has unknown keys: {', '.join(sorted(unknown))}")
    return document


def _parse_json(path: Path, text: str) -> object:
    try:
        return json.loads(text)
    except ValueError as error:
        raise UsageError(f"the mapping {path} is not valid JSON: {error}") from error


def _parse_yaml(path: Path, text: str) -> object:
    try:
        import yaml
    except ImportError:
        raise UsageError("YAML mappings need PyYAML (pip install pyyaml); or write JSON") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise UsageError(f"the mapping {path} is not valid YAML: {error}") from error


def _from_document(document: dict[str, object]) -> Iterable[tuple[str, FieldSpec]]:
    fields = document["fields"]
    assert isinstance(fields, dict)
    for target, entry in fields.items():
        if isinstance(entry, str):
            yield target, _checked(FieldSpec(target, column=entry))
            continue
        one_source = isinstance(entry, dict) and ("column" in entry) != ("value" in entry)
        if not isinstance(entry, dict) or set(entry) - _SPEC_KEYS or not one_source:
            raise UsageError(
                f"mapping entry {target!r}: give a column name, or an object with exactly one of "
                f"'column' and 'value' and optionally 'type' and 'format'"
            )
        column = entry.get("column")
        yield (
            target,
            _checked(
                FieldSpec(
                    target,
                    column=None if column is None else str(column),
                    value=entry.get("value"),
                    kind=str(entry.get("type", "auto")),
                    format=None if entry.get("format") is None else str(entry["format"]),
                )
            ),
        )


def _from_option(option: str, *, constant: bool) -> FieldSpec:
    """`TARGET[:TYPE]=SOURCE`: the type (a format for timestamp) sits on the target side, because column
    names may hold any character while targets never hold `:` or `=`."""
    left, equals, right = option.partition("=")
    if not equals or not left:
        flag = "--set" if constant else "--map"
        raise UsageError(f"{flag} {option!r}: write TARGET=SOURCE, for example identifiers.email=E-Mail")
    target, _, kind = left.partition(":")
    target = target.strip()
    is_time = target == "timestamp"
    spec = FieldSpec(
        target,
        column=None if constant else right,
        value=right if constant else None,
        kind="auto" if is_time or not kind else kind,
        format=(kind or None) if is_time else None,
    )
    return _checked(spec)


def _checked(spec: FieldSpec) -> FieldSpec:
    check_target(spec.target)
    if spec.kind not in KINDS:
        raise UsageError(f"{spec.target}: unknown type {spec.kind!r}; use one of {', '.join(KINDS)}")
    if spec.kind != "auto" and not spec.target.startswith(("properties.", "context.extra.")):
        raise UsageError(f"{spec.target}: only properties.* and context.extra.* take a type")
    if spec.format is not None and spec.target != "timestamp":
        raise UsageError(f"{spec.target}: only timestamp takes a format")
    if spec.format is not None and spec.format not in EPOCH_FORMATS and "%" not in spec.format:
        raise UsageError(f"timestamp format {spec.format!r}: use epoch_s, epoch_ms or a strptime pattern")
    if spec.column is None and spec.value is None:
        raise UsageError(f"{spec.target}: the constant must not be null")
    return spec


def _check_complete(specs: dict[str, FieldSpec], columns: Sequence[str] | None) -> None:
    missing = [t for t in ("timestamp", "channel") if t not in specs]
    if not any(t.startswith("identifiers.") for t in specs):
        missing.append("identifiers.<type>")
    if "type" not in specs and "name" not in specs:
        missing.append("name (track events need one)")
    if missing:
        raise UsageError(
            f"the mapping gives no {', '.join(missing)}; map a column (--map TARGET=COLUMN) or set a "
            "constant (--set TARGET=VALUE)"
        )
    for target in specs:
        parts = target.split(".")
        for end in range(2, len(parts)):
            if parts[0] == "properties" and ".".join(parts[:end]) in specs:
                raise UsageError(f"{'.'.join(parts[:end])} is a value, so it cannot also hold {target}")
    if columns is not None:
        absent = sorted({s.column for s in specs.values() if s.column is not None} - set(columns))
        absent = [c for c in absent if c.split(".")[0] not in columns]
        if absent:
            raise UsageError(
                f"the file has no column {', '.join(map(repr, absent))}; its columns are {', '.join(columns)}"
            )
