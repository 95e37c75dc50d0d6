"""The program file: the protobuf JSON form of `arbiter.v1.Program`, read and written
(docs/contract.md, The program file).

Reading is two passes. First the JSON is walked along `Program`'s descriptors: every unknown
field, value of the wrong type, unknown enum value or doubly given oneof is collected (not just
the first), and enum values are normalised (`"MAX_BENEFIT"` and `"ARBITRATION_MODE_MAX_BENEFIT"`
are one value). Only a clean walk reaches `json_format.ParseDict`. Then `validate_program` checks
the program's meaning. Both passes raise `ConfigError`, each issue naming the object (kind and id,
the nearest enclosing object that has one) and the field path inside it.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from importlib import resources
from typing import cast

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.timestamp_pb2 import Timestamp

from arbiter.server.engine.errors import ConfigError, ConfigIssue
from arbiter.server.engine.validate import FieldPath, TooManyIssues, validate_program
from arbiter.v1 import program_pb2

__all__ = [
    "MAX_PROGRAM_FILE_BYTES",
    "load_demo_program",
    "load_program_file",
    "parse_program_json",
    "program_to_json",
]

# A limit on what one file may hold: a program is configuration, not data.
MAX_PROGRAM_FILE_BYTES = 32 * 1024 * 1024
# Beyond this many issues the walk stops: a wrong file rarely needs more to be fixed.
_MAX_ISSUES = 200

# Top-level lists of Program whose elements are objects with an id of their own.
_OBJECT_KINDS = {
    "point_types": "point_type",
    "tier_groups": "tier_group",
    "partners": "partner",
    "member_segments": "member_segment",
    "product_segments": "product_segment",
    "order_segments": "order_segment",
    "promo_code_pools": "promo_code_pool",
    "trigger_promotions": "trigger_promotion",
    "promotions": "promotion",
}
_PROGRAM = program_pb2.Program.DESCRIPTOR.full_name
# The generated module types DESCRIPTOR as either implementation's class; both are Descriptors.
_PROGRAM_DESCRIPTOR = cast(Descriptor, program_pb2.Program.DESCRIPTOR)
_CHILD = program_pb2.Child.DESCRIPTOR.full_name
_TIMESTAMP = Timestamp.DESCRIPTOR.full_name

_INTEGER_TEXT = re.compile(r"-?[0-9]+")
_INT_RANGES = {
    FieldDescriptor.CPPTYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.CPPTYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.CPPTYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.CPPTYPE_UINT64: (0, 2**64 - 1),
}

_DEMO_PROGRAM = "demo/demo_program.json"


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _enum_prefix(enum: EnumDescriptor) -> str:
    """`ARBITRATION_MODE_` for ArbitrationMode: the zero value's name less `UNSPECIFIED`."""
    zero = enum.values_by_number.get(0)
    if zero is not None and zero.name.endswith("UNSPECIFIED"):
        return zero.name.removesuffix("UNSPECIFIED")
    return ""


def _id_of(value: object) -> str:
    if isinstance(value, dict):
        object_id = value.get("id")
        if isinstance(object_id, str):
            return object_id
    return ""


class _Walker:
    """Walks JSON along a message descriptor, collecting issues and normalising values."""

    def message(
        self, value: object, descriptor: Descriptor, at: FieldPath
    ) -> dict[str, object] | None:
        if not isinstance(value, dict):
            at.add("", f"expected an object, got {_json_type(value)}")
            return None
        by_json_name = {f.json_name: f for f in descriptor.fields}
        out: dict[str, object] = {}
        given_as: dict[str, str] = {}
        oneof_given: dict[str, str] = {}
        for key, item in value.items():
            field = descriptor.fields_by_name.get(key) or by_json_name.get(key)
            if field is None:
                close = difflib.get_close_matches(
                    key, [*descriptor.fields_by_name, *by_json_name], n=1
                )
                hint = f"; did you mean {close[0]!r}?" if close else ""
                at.add(key, f"unknown field {key!r} of {descriptor.name}{hint}")
                continue
            if field.name in given_as:
                at.add(field.name, f"given twice (as {given_as[field.name]!r} and {key!r})")
                continue
            given_as[field.name] = key
            if item is None:
                continue  # null is the field's default, as in protobuf JSON
            oneof = field.containing_oneof
            if oneof is not None:
                other = oneof_given.get(oneof.name)
                if other is not None:
                    at.add(field.name, f"only one of {oneof.name} may be given (also {other!r})")
                    continue
                oneof_given[oneof.name] = field.name
            converted = self.field(item, field, descriptor, at)
            if converted is not None:
                out[field.name] = converted
        return out

    def field(
        self, value: object, field: FieldDescriptor, owner: Descriptor, at: FieldPath
    ) -> object | None:
        message_type = field.message_type
        if message_type is not None and message_type.GetOptions().map_entry:
            return self.map(value, message_type, at.at(field.name))
        if field.is_repeated:
            if not isinstance(value, list):
                at.add(field.name, f"expected a list, got {_json_type(value)}")
                return None
            items: list[object] = []
            kind = _OBJECT_KINDS.get(field.name) if owner.full_name == _PROGRAM else None
            for i, item in enumerate(value):
                position = f"{field.name}[{i}]"
                item_at = at.at(position)
                if kind is not None and _id_of(item):
                    item_at = at.object(kind, _id_of(item))
                if item is None:
                    item_at.add("", "null is not allowed in a list")
                    continue
                converted = self.single(item, field, item_at)
                if converted is not None:
                    items.append(converted)
            return items
        field_at = at.at(field.name)
        if owner.full_name == _CHILD and field.name == "group" and _id_of(value):
            field_at = at.object("group", _id_of(value))
        return self.single(value, field, field_at)

    def map(self, value: object, entry: Descriptor, at: FieldPath) -> dict[str, object] | None:
        if not isinstance(value, dict):
            at.add("", f"expected an object, got {_json_type(value)}")
            return None
        value_field = entry.fields_by_name["value"]
        out: dict[str, object] = {}
        for key, item in value.items():
            converted = self.single(item, value_field, at.at(f"[{key!r}]"))
            if converted is not None:
                out[key] = converted
        return out

    def single(self, value: object, field: FieldDescriptor, at: FieldPath) -> object | None:
        """One value of `field` (an element, for a repeated field) at `at`."""
        cpp_type = field.cpp_type
        message_type = field.message_type
        if message_type is not None:
            if message_type.full_name == _TIMESTAMP:
                return self.timestamp(value, at)
            if message_type.file.package != program_pb2.DESCRIPTOR.package:
                return value  # another well-known type: json_format knows its form
            return self.message(value, message_type, at)
        enum_type = field.enum_type
        if enum_type is not None:
            return self.enum(value, enum_type, at)
        if cpp_type == FieldDescriptor.CPPTYPE_BOOL:
            if not isinstance(value, bool):
                at.add("", f"expected true or false, got {_json_type(value)}")
                return None
            return value
        if cpp_type == FieldDescriptor.CPPTYPE_STRING:
            if not isinstance(value, str):
                at.add("", f"expected a string, got {_json_type(value)}")
                return None
            return value
        if cpp_type in _INT_RANGES:
            return self.integer(value, cpp_type, at)
        return value  # float and double: none in Program; json_format checks them

    def integer(self, value: object, cpp_type: int, at: FieldPath) -> int | None:
        # protobuf JSON writes int64 as strings and accepts integral numbers of either form.
        number: int | None = None
        if isinstance(value, bool):
            number = None
        elif isinstance(value, int):
            number = value
        elif isinstance(value, float):
            number = int(value) if value.is_integer() else None
        elif isinstance(value, str):
            number = int(value) if _INTEGER_TEXT.fullmatch(value.strip()) else None
        if number is None:
            at.add("", f"expected an integer, got {_json_type(value)} {value!r}")
            return None
        low, high = _INT_RANGES[cpp_type]
        if not low <= number <= high:
            at.add("", f"{number} is out of range [{low}, {high}]")
            return None
        return number

    def enum(self, value: object, enum: EnumDescriptor, at: FieldPath) -> str | None:
        if isinstance(value, int) and not isinstance(value, bool):
            found = enum.values_by_number.get(value)
            if found is not None:
                return found.name
        prefix = _enum_prefix(enum)
        if isinstance(value, str):
            name = value.strip().upper()
            for candidate in (name, prefix + name):
                if candidate in enum.values_by_name:
                    return candidate
        expected = ", ".join(v.name.removeprefix(prefix) for v in enum.values if v.number != 0)
        at.add("", f"unknown {enum.name} value {value!r}; expected one of {expected}")
        return None

    def timestamp(self, value: object, at: FieldPath) -> str | None:
        if not isinstance(value, str):
            at.add("", f"expected an RFC 3339 timestamp string, got {_json_type(value)}")
            return None
        try:
            Timestamp().FromJsonString(value)
        except ValueError as exc:
            at.add("", f"{value!r} is not an RFC 3339 timestamp ({exc})")
            return None
        return value


def _reject_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _syntax_error(source: str, message: str) -> ConfigError:
    return ConfigError([ConfigIssue("program", "", "", f"{source}: {message}")])


def parse_program_json(
    text: str, source: str = "<program>", *, validate: bool = True
) -> program_pb2.Program:
    """Parse a program file's text (protobuf JSON); then, unless told not to, validate it.

    Raises ConfigError listing every issue of the first pass that finds any (JSON syntax,
    then the field walk, then validation). `source` names the text in syntax errors.
    `validate=False` parses only: a draft may be imported while still invalid (docs/contract.md).
    """
    try:
        document = json.loads(text, object_pairs_hook=_reject_duplicate_keys)
    except _DuplicateKey as exc:
        raise _syntax_error(source, f"the key {exc.key!r} appears twice in one object") from None
    except json.JSONDecodeError as exc:
        raise _syntax_error(
            source, f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except RecursionError:
        raise _syntax_error(source, "the JSON nests too deeply") from None
    issues: list[ConfigIssue] = []
    program_id = _id_of(document)
    # The main arbitration has no object of its own: its issues land on the program
    # (`arbitration.mode`); a nested group with an id is its own object (see _Walker.field).
    at = FieldPath(issues, "program", program_id, limit=_MAX_ISSUES)
    normalised: dict[str, object] | None = None
    try:
        normalised = _Walker().message(document, _PROGRAM_DESCRIPTOR, at)
    except TooManyIssues:
        issues.append(ConfigIssue("program", program_id, "", "too many issues; stopped here"))
    except RecursionError:
        issues.append(ConfigIssue("program", program_id, "", "the program nests too deeply"))
    if issues or normalised is None:
        raise ConfigError(issues or [ConfigIssue("program", "", "", "not a program")])
    program = program_pb2.Program()
    try:
        json_format.ParseDict(normalised, program)
    except json_format.ParseError as exc:
        # The walk checks what ParseDict checks; this is a backstop, not a path.
        raise ConfigError([ConfigIssue("program", program_id, "", str(exc))]) from None
    if validate:
        validate_program(program)
    return program


def load_program_file(
    path: str | os.PathLike[str], *, validate: bool = True
) -> program_pb2.Program:
    """Read, parse and (unless told not to) validate a program file.

    OSError (a missing or unreadable file) is left to the caller: it is not a configuration
    error. A file larger than MAX_PROGRAM_FILE_BYTES or not UTF-8 is a ConfigError.
    """
    source = os.fspath(path)
    with open(path, "rb") as handle:
        data = handle.read(MAX_PROGRAM_FILE_BYTES + 1)
    if len(data) > MAX_PROGRAM_FILE_BYTES:
        raise _syntax_error(source, f"larger than {MAX_PROGRAM_FILE_BYTES} bytes")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _syntax_error(source, f"not UTF-8 (byte {exc.start})") from None
    return parse_program_json(text, source, validate=validate)


def load_demo_program() -> program_pb2.Program:
    """The demo program shipped with the server (server/demo/demo_program.json)."""
    text = resources.files("arbiter.server").joinpath(_DEMO_PROGRAM).read_text("utf-8")
    return parse_program_json(text, _DEMO_PROGRAM)


def program_to_json(program: program_pb2.Program) -> str:
    """The program file form of `program`: stable, indented, proto field names, ending in \\n.

    Enum values carry their prefix (`ARBITRATION_MODE_MAX_BENEFIT`), as any protobuf JSON
    reader expects; int64 values that fit a double are written as plain numbers.
    """
    text = json_format.MessageToJson(
        program,
        preserving_proto_field_name=True,
        indent=2,
        ensure_ascii=False,
        unquote_int64_if_possible=True,
    )
    return text + "\n"
