"""The shape of `wayline flows|connectors|actions apply` and `get`: a YAML file of resources (proto3 JSON
form) is read and checked before anything is sent, then each resource is created or updated in turn, one
line `<outcome> <name>` per resource on standard output, the first RPC error ending the command; `get`
prints a resource in the form `apply` reads, its output-only fields as comments.

What a resource's outcome is (`created`, `updated`, `unchanged`) is each command's own: the comparison and
the update mask differ between flows, connectors and actions."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc
import typer
import yaml
from google.protobuf import json_format
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.message import Message
from rich.markup import escape

from wayline_cli.gateway import err, failure, open_channel, out, plain

__all__ = [
    "NamedDocuments",
    "apply_each",
    "create_or_update",
    "named_fields",
    "parse",
    "print_yaml",
    "read_or_exit",
    "snake",
    "to_yaml",
]

Stub = TypeVar("Stub")
Wanted = TypeVar("Wanted")
Parsed = TypeVar("Parsed", bound=Message)
Built = TypeVar("Built")
Current = TypeVar("Current")


def snake(name: str) -> str:
    """A proto3 JSON field name (`displayName`) as the proto field's (`display_name`)."""
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


@dataclass(frozen=True)
class NamedDocuments:
    """A file's YAML documents (separated by `---`), each the mapping of one `message` with its `name`
    (`{collection}/{id}`) and none of its output-only fields; errors raised as `error`."""

    message: str  # the contract's message, e.g. `Flow`
    collection: str  # the names' collection, e.g. `flows`
    output_only: tuple[str, ...]
    error: type[ValueError]

    def read(self, path: Path, build: Callable[[str, dict[str, Any]], Built]) -> list[Built]:
        """`build(where, document)` of each document, in order, each checked before it is built; `where`
        names the file, the document and its name, for `build`'s errors."""
        try:
            documents = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        except (OSError, yaml.YAMLError) as error:
            raise self.error(f"{path}: {error}") from None
        prefix = f"{self.collection}/"
        built = []
        for index, document in enumerate(documents):
            where = f"{path}: document {index}"
            if not isinstance(document, dict):
                raise self.error(f"{where} must be a mapping of {self.message} fields")
            name = document.get("name")
            if not isinstance(name, str) or not name.startswith(prefix) or name == prefix:
                raise self.error(f"{where} must have a `name`, {prefix}{{{self.message.lower()}_id}}")
            if any(snake(k) in self.output_only for k in document):
                raise self.error(f"{where} ({name}) sets an output-only field")
            built.append(build(f"{where} ({name})", document))
        if not built:
            raise self.error(f"{path} holds no {self.message.lower()}")
        return built


def parse(document: dict[str, Any], message: Parsed, where: str, error: type[ValueError]) -> Parsed:
    """`message` filled from the document (YAML's dates as RFC 3339); a parse error raised as `error`."""
    try:
        return json_format.ParseDict(plain(document), message)
    except json_format.ParseError as failed:
        raise error(f"{where}: {failed}") from None


def read_or_exit(
    read: Callable[[Path], Sequence[Wanted]], path: Path, error: type[ValueError]
) -> Sequence[Wanted]:
    """The file's resources; a file `read` refuses is reported and exits 2, before anything is sent."""
    try:
        return read(path)
    except error as refused:
        err.print(f"[red]{escape(str(refused))}[/red]")
        raise typer.Exit(2) from None


def apply_each(
    wanted: Sequence[Wanted],
    stub_type: Callable[[grpc.Channel], Stub],
    apply_one: Callable[[Stub, Wanted], str],
    name: Callable[[Wanted], str],
    *,
    gateway: str,
    tls: bool,
    then: Callable[[Stub, Wanted], None] | None = None,
) -> None:
    """Apply each resource in order over one channel, printing `<outcome> <name>` and calling `then` (a
    further step, e.g. publishing); the first RPC error is printed and exits 1."""
    with open_channel(gateway, tls) as channel:
        stub = stub_type(channel)
        for each in wanted:
            try:
                out.print(f"{apply_one(stub, each)} {name(each)}")
                if then is not None:
                    then(stub, each)
            except grpc.RpcError as error:
                raise failure(error, name(each)) from None


def create_or_update(
    get: Callable[[], Current],
    create: Callable[[], object],
    matches: Callable[[Current], bool],
    update: Callable[[Current], object],
    *,
    dry_run: bool = False,
) -> str:
    """One resource applied by name: `created` when `get` answers NOT_FOUND, `unchanged` when the current
    resource already `matches` the wanted one, else `updated` (conditional on the current etag, which
    `update` is given the current resource to send). With `dry_run` (`create` and `update` then only ask
    the service to check the change), `would create` and `would update`."""
    would = "would " if dry_run else ""
    try:
        current = get()
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:
            raise
        create()
        return f"{would}create" if dry_run else "created"
    if matches(current):
        return "unchanged"
    update(current)
    return f"{would}update" if dry_run else "updated"


def named_fields(message: Parsed, paths: Sequence[str]) -> Parsed:
    """Only the fields of `paths` (update-mask paths) of `message`: what a document names, to compare."""
    picked = type(message)()
    FieldMask(paths=list(paths)).MergeMessage(message, picked, replace_message_field=True)
    return picked


def to_yaml(message: Message, output_only: Sequence[str]) -> str:
    """The message as `apply` reads it, its output-only fields as comments first."""
    fields: dict[str, Any] = json_format.MessageToDict(message, preserving_proto_field_name=True)
    header = [f"# {k}: {fields.pop(k)}" for k in output_only if k in fields]
    return "\n".join(header) + "\n" + yaml.safe_dump(fields, sort_keys=False, allow_unicode=True)


def print_yaml(message: Message, output_only: Sequence[str]) -> None:
    """`to_yaml` on standard output as it is: a terminal's console would wrap a long line (a status comment
    of a hundred characters), and the continuation would not be YAML that `apply` reads back."""
    sys.stdout.write(to_yaml(message, output_only))
