"""CalculateOrder takes and answers serialized messages (api/checkout.py's
`add_checkout_service`): through a real server, a quote reads the same as the plain form, the
request read natively or not, and bytes that are no CalculateOrderRequest are INVALID_ARGUMENT
(docs/api.md, "The request, read natively")."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from typing import Any

import grpc

from arbiter.server.api.translate import order_from_proto, result_to_proto
from arbiter.server.app.wiring import App
from arbiter.server.engine import calculate
from arbiter.v1 import checkout_pb2

Request = checkout_pb2.CalculateOrderRequest
MakeRequest = Callable[..., Request]


def _raw(channel: grpc.aio.Channel, method: str) -> Any:
    # No serializers: bytes go out and come back as they are.
    return channel.unary_unary(f"/arbiter.v1.CheckoutService/{method}")


async def test_a_quote_is_the_plain_forms_bytes(
    served: App, channel: grpc.aio.Channel, make_request: MakeRequest
) -> None:
    request = make_request()
    answer = await _raw(channel, "CalculateOrder")(request.SerializeToString())
    applied = served.programs.get(request.program)
    order, member = order_from_proto(request, applied.compiled.point_type_ids)
    evaluated_at = checkout_pb2.CalculateOrderResponse.FromString(answer).evaluated_at
    result = calculate(applied.compiled, order, member, now=evaluated_at.ToDatetime(tzinfo=UTC))
    assert answer == result_to_proto(result, applied.version).SerializeToString()


async def test_an_oddly_encoded_request_is_answered_alike(
    served: App, channel: grpc.aio.Channel, make_request: MakeRequest
) -> None:
    data = make_request().SerializeToString()
    # An unknown field: the native reader declines, protobuf reads (and ignores) it.
    odd = data + b"\xf8\x07\x01"
    call = _raw(channel, "CalculateOrder")
    assert await call(odd) == await call(data)


async def test_bytes_that_are_no_request_are_invalid_argument(
    served: App, channel: grpc.aio.Channel
) -> None:
    garbage = b"\x22\x05\x42\x03\xff\xff\xff"  # order.lines[0] cut short
    try:
        await _raw(channel, "CalculateOrder")(garbage)
    except grpc.aio.AioRpcError as exc:
        assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "CalculateOrderRequest" in (exc.details() or "")
    else:
        raise AssertionError("corrupt bytes were answered")
