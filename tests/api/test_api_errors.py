"""The one mapping from the project's exceptions to gRPC status codes and details."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from arbiter.server.api.errors import MAX_REPORTED_VIOLATIONS, DomainStatus, status_for
from arbiter.server.engine import ConfigError, ConfigIssue, FieldViolation, InvalidOrder
from arbiter.server.ledger import errors as ledger
from arbiter.server.state import NotFound


def details_of(status: DomainStatus) -> list[tuple[str, str]]:
    ((key, value),) = status.trailing_metadata
    assert key == "grpc-status-details-bin"
    rich = status_pb2.Status.FromString(value)
    assert rich.code == status.code.value[0]
    assert rich.message == status.message
    (detail,) = rich.details
    bad_request = error_details_pb2.BadRequest()
    assert detail.Unpack(bad_request)
    return [(v.field, v.description) for v in bad_request.field_violations]


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (NotFound("program", "p"), grpc.StatusCode.NOT_FOUND),
        (ledger.NotFound("member", "m"), grpc.StatusCode.NOT_FOUND),
        (ledger.Conflict("order", "o"), grpc.StatusCode.ALREADY_EXISTS),
        (ledger.FailedPrecondition("no"), grpc.StatusCode.FAILED_PRECONDITION),
        (ledger.InsufficientPoints("bonus", 10, 5), grpc.StatusCode.FAILED_PRECONDITION),
        (ledger.TotalMismatch("o", 1, 2), grpc.StatusCode.FAILED_PRECONDITION),
        (ledger.StorageUnavailable("db down"), grpc.StatusCode.UNAVAILABLE),
        (NotImplementedError(), grpc.StatusCode.UNIMPLEMENTED),
    ],
)
def test_status_codes(error: Exception, code: grpc.StatusCode) -> None:
    status = status_for(error)
    assert status.code == code
    assert status.trailing_metadata == ()


def test_not_found_says_what() -> None:
    assert status_for(NotFound("program", "demo")).message == "program 'demo' not found"
    assert len(status_for(NotFound("member", "x" * 10_000)).message) < 200


def test_invalid_order_lists_each_field() -> None:
    error = InvalidOrder(
        [
            FieldViolation("order.lines[2].quantity", "must be positive"),
            FieldViolation("order.redeem[0].point_type", "unknown point type 'x'"),
        ]
    )
    status = status_for(error)
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT
    assert status.message == (
        "invalid request: order.lines[2].quantity: must be positive (and 1 more)"
    )
    assert details_of(status) == [
        ("order.lines[2].quantity", "must be positive"),
        ("order.redeem[0].point_type", "unknown point type 'x'"),
    ]


def test_ledger_invalid_argument_is_a_bad_request_too() -> None:
    status = status_for(ledger.InvalidArgument.field("hold_seconds", "at most 86400"))
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT
    assert details_of(status) == [("hold_seconds", "at most 86400")]


def test_config_error_names_object_and_field() -> None:
    error = ConfigError(
        [
            ConfigIssue("promotion", "A", "product_rules[0].benefits[1]", "no benefit set"),
            ConfigIssue("group", "main", "mode", "required"),
        ]
    )
    status = status_for(error)
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT
    assert details_of(status) == [
        ("promotion A: product_rules[0].benefits[1]", "no benefit set"),
        ("group main: mode", "required"),
    ]
    assert status.message.startswith("invalid program: promotion 'A'")


def test_many_violations_are_capped() -> None:
    error = InvalidOrder([FieldViolation(f"f{i}", "bad") for i in range(100)])
    violations = details_of(status_for(error))
    assert len(violations) == MAX_REPORTED_VIOLATIONS + 1
    assert violations[-1] == ("", f"{100 - MAX_REPORTED_VIOLATIONS} more bad fields not listed")


def test_anything_else_is_internal_and_generic() -> None:
    status = status_for(KeyError("password=hunter2"))
    assert status.code == grpc.StatusCode.INTERNAL
    assert status.message == "internal error"
    assert status.trailing_metadata == ()


def test_a_subclass_inherits_its_base_status() -> None:
    class ProgramGone(NotFound):
        pass

    assert status_for(ProgramGone("program", "p")).code == grpc.StatusCode.NOT_FOUND
