"""The files the `arbiter` command reads: program and order JSON, member CSV.

Only the contract is used (the arbiter.v1 messages and their descriptors): the server's own
program-file reader is not imported. Enum values may be written with or without their prefix
(`"MAX_BENEFIT"` or `"ARBITRATION_MODE_MAX_BENEFIT"`), as in the server's program files.
A file that cannot be read or parsed raises `FileProblem`, whose text names the file and, where
it can, the line or the field.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO, TypeVar

from google.protobuf import json_format
from google.protobuf.descriptor import EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message

from arbiter.v1 import checkout_pb2, program_pb2

__all__ = [
    "FileProblem",
    "MemberFile",
    "MemberRow",
    "read_member_csv",
    "read_order",
    "read_program",
]

M = TypeVar("M", bound=Message)

# The member CSV's columns: member_id is required, registered_at optional.
MEMBER_ID_COLUMN = "member_id"
REGISTERED_AT_COLUMN = "registered_at"


class FileProblem(Exception):
    """A file the command cannot use; the text says which and why."""


@dataclass(frozen=True, slots=True)
class MemberRow:
    member_id: str
    registered_at: datetime | None
    #: The row's line in the file (the last, for a row whose quoted cell spans lines).
    line: int = 0


def _unreadable(path: Path, exc: OSError) -> FileProblem:
    """The problem of a file the system would not open or read."""
    if isinstance(exc, FileNotFoundError):
        return FileProblem(f"{path}: no such file")
    return FileProblem(f"{path}: {exc.strerror or exc}")


def _read_text(path: Path) -> str:
    if str(path) == "-":
        return sys.stdin.read()
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise FileProblem(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise _unreadable(path, exc) from None


def _enum_prefix(enum: EnumDescriptor) -> str:
    zero = enum.values_by_number.get(0)
    if zero is not None and zero.name.endswith("UNSPECIFIED"):
        return zero.name.removesuffix("UNSPECIFIED")
    return ""


def _normalise(value: Any, descriptor: Any) -> Any:
    """`value` (parsed JSON for `descriptor`) with short enum names given their prefix."""
    if not isinstance(value, dict):
        return value
    fields = {f.name: f for f in descriptor.fields} | {f.json_name: f for f in descriptor.fields}
    out: dict[str, Any] = {}
    for key, item in value.items():
        field = fields.get(key)
        if field is None:
            out[key] = item  # json_format names the unknown field
        elif field.type == FieldDescriptor.TYPE_ENUM:
            out[key] = (
                [_enum_value(v, field.enum_type) for v in item]
                if isinstance(item, list)
                else _enum_value(item, field.enum_type)
            )
        elif field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.full_name.startswith(
            "arbiter."
        ):
            out[key] = (
                [_normalise(v, field.message_type) for v in item]
                if isinstance(item, list)
                else _normalise(item, field.message_type)
            )
        else:
            out[key] = item
    return out


def _enum_value(value: Any, enum: Any) -> Any:
    if isinstance(value, str) and value not in enum.values_by_name:
        prefixed = _enum_prefix(enum) + value
        if prefixed in enum.values_by_name:
            return prefixed
    return value


def _parse_json(path: Path, message: M) -> M:
    text = _read_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FileProblem(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
    if not isinstance(data, dict):
        raise FileProblem(f"{path}: expected a JSON object ({message.DESCRIPTOR.name})")
    try:
        json_format.ParseDict(_normalise(data, message.DESCRIPTOR), message)
    except json_format.ParseError as exc:
        raise FileProblem(f"{path}: {exc}") from None
    return message


def read_program(path: Path) -> program_pb2.Program:
    """A program file (protobuf JSON of arbiter.v1.Program)."""
    program = _parse_json(path, program_pb2.Program())
    if not program.id:
        raise FileProblem(f"{path}: the program has no `id`")
    return program


def read_order(path: Path) -> checkout_pb2.CalculateOrderRequest:
    """An order file: protobuf JSON of arbiter.v1.CalculateOrderRequest (program, member_id or
    member_context, order), as `arbiter calculate` reads."""
    return _parse_json(path, checkout_pb2.CalculateOrderRequest())


def _registered_at(text: str, path: Path, line: int) -> datetime | None:
    if not text:
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise FileProblem(
            f"{path}: line {line}: registered_at {text!r} is not an ISO 8601 time"
        ) from None
    if at.tzinfo is None:
        raise FileProblem(
            f"{path}: line {line}: registered_at {text!r} has no UTC offset (write Z or +03:00)"
        )
    return at


def read_member_csv(path: Path) -> MemberFile:
    """A member CSV checked whole before anything is sent: a header row naming `member_id`
    (and optionally `registered_at`, ISO 8601 with an offset), then one member per row. An
    empty member_id, a bad time or a member given twice names its line."""
    return MemberFile(path)


class MemberFile:
    """A member CSV read twice: once to check every row (holding only the set of its ids, for
    members given twice), then row by row as the rows are sent, so a file of millions of
    members is never held in memory. Standard input (`-`), which cannot be read twice, is held
    as text. The file must not change while it is enrolled: a size or modification time that
    differs between the two readings is refused before anything is sent; a row that no longer
    reads while the rows are sent stops the sending there (the members sent before stay
    enrolled: enrolling again is harmless)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._text = _read_text(path) if str(path) == "-" else None
        self._stamp = self._stat()
        ids: set[str] = set()
        rows = 0
        with self._open() as source:
            for row in _member_rows(source, path):
                if row.member_id in ids:
                    raise FileProblem(
                        f"{path}: line {row.line}: member {row.member_id!r} again (first on line "
                        f"{self._first_line(row.member_id)})"
                    )
                ids.add(row.member_id)
                rows += 1
        #: How many members the file gives.
        self.rows = rows

    def __iter__(self) -> Iterator[MemberRow]:
        """The rows again; the file's size and modification time are compared now, before the
        first row is read (a change found later, while the rows are read, raises then)."""
        if self._stat() != self._stamp:
            raise FileProblem(f"{self.path}: the file changed since it was checked")
        return self._rows(self._open())

    def _rows(self, source: TextIO) -> Iterator[MemberRow]:
        with source:
            yield from _member_rows(source, self.path)

    def _stat(self) -> tuple[int, int] | None:
        if self._text is not None:
            return None
        try:
            stat = self.path.stat()
        except OSError as exc:
            raise _unreadable(self.path, exc) from None
        return stat.st_size, stat.st_mtime_ns

    def _open(self) -> TextIO:
        if self._text is not None:
            return io.StringIO(self._text, newline="")
        try:
            return self.path.open(encoding="utf-8", newline="")
        except OSError as exc:
            raise _unreadable(self.path, exc) from None

    def _first_line(self, member_id: str) -> int:
        with self._open() as source:
            return next(row.line for row in _member_rows(source, self.path)
                        if row.member_id == member_id)


def _member_rows(source: TextIO, path: Path) -> Iterator[MemberRow]:
    reader = csv.reader(source, strict=True)
    try:
        try:
            header = next(reader)
        except StopIteration:
            raise FileProblem(
                f"{path}: empty file (expected a header row with member_id)") from None
        names = [name.strip() for name in header]
        if MEMBER_ID_COLUMN not in names:
            raise FileProblem(
                f"{path}: line 1: the header row has no {MEMBER_ID_COLUMN!r} column"
                f" (got {header!r})"
            )
        id_at = names.index(MEMBER_ID_COLUMN)
        time_at = names.index(REGISTERED_AT_COLUMN) if REGISTERED_AT_COLUMN in names else None
        for row in reader:
            line = reader.line_num
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != len(names):
                raise FileProblem(
                    f"{path}: line {line}: {len(row)} fields, the header has {len(names)}"
                )
            member_id = row[id_at].strip()
            if not member_id:
                raise FileProblem(f"{path}: line {line}: empty member_id")
            at = _registered_at(row[time_at].strip(), path, line) if time_at is not None else None
            yield MemberRow(member_id, at, line)
    except csv.Error as exc:
        raise FileProblem(f"{path}: line {max(reader.line_num, 1)}: {exc}") from None
    except UnicodeDecodeError as exc:
        raise FileProblem(
            f"{path}: not UTF-8 text ({exc.reason} after line {reader.line_num})") from None
