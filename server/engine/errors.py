"""The engine's errors: a bad configuration or a bad order, each naming the offending field.

    ArbiterError
    ├── ConfigError    a program that cannot be compiled (object, id, field)
    └── InvalidOrder   an order that cannot be evaluated (field paths, docs/contract.md)

The api room maps them to gRPC status codes in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ArbiterError",
    "ConfigError",
    "ConfigIssue",
    "FieldViolation",
    "InvalidOrder",
    "out_of_range",
]


class ArbiterError(Exception):
    """Base of every error the project raises on purpose."""


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One configuration error: which object (kind and id), which field, and what is wrong."""

    object_kind: str
    object_id: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.object_kind} {self.object_id!r}: {self.field}: {self.message}"


class ConfigError(ArbiterError):
    """A program that cannot be compiled; lists every issue found."""

    def __init__(self, issues: list[ConfigIssue] | tuple[ConfigIssue, ...]) -> None:
        if not issues:
            raise ValueError("ConfigError needs at least one issue")
        self.issues: tuple[ConfigIssue, ...] = tuple(issues)
        super().__init__("; ".join(str(i) for i in self.issues))


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One bad field of a request: its path (`order.lines[2].quantity`) and why."""

    field: str
    description: str


class InvalidOrder(ArbiterError):
    """An order that cannot be evaluated (docs/contract.md, Errors); lists every bad field."""

    def __init__(self, violations: list[FieldViolation] | tuple[FieldViolation, ...]) -> None:
        if not violations:
            raise ValueError("InvalidOrder needs at least one violation")
        self.violations: tuple[FieldViolation, ...] = tuple(violations)
        super().__init__("; ".join(f"{v.field}: {v.description}" for v in self.violations))


def out_of_range() -> InvalidOrder:
    """A calculation a result of which leaves int64 (docs/rules.md, "The range of the
    arithmetic"): refused, naming the order."""
    return InvalidOrder([FieldViolation(
        "order",
        "a result of this order leaves the calculation's 64-bit range (an amount or points of"
        " 2^63 - 1 or more): the order's amounts or the program's values are too large",
    )])
