"""The per-call wrapper around each RPC: authentication, the duration metric, the RPC log line.

`observed(servicer, service, ...)` wraps each RPC method of an already `guard`ed servicer once,
at registration, like `errors.guard`: per call it costs a clock read at each end, the key check
when auth is on (one SHA-256 and one dict lookup, `auth.ApiKeys`), one histogram observation on
a label child bound in advance, and a log record only when the `arbiter.rpc` logger is enabled
for INFO. Status codes still come from `errors.status_for` alone.

Unary and streaming responses share one admission (`_admitted`: key, role, size), one ending
(`_ended`: the status an exception ends the call with, and the answer to the wrapper's own
failures) and one record (`_record`: metric and log line); only how the servicer is called
differs.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Any, Final, NamedTuple

import grpc
from google.protobuf import descriptor, message_factory

from arbiter.server.api.auth import (
    ApiKeys,
    PermissionDenied,
    Principal,
    roles_for,
    set_caller,
)
from arbiter.server.api.errors import status_for
from arbiter.server.api.metrics import RpcTimer
from arbiter.server.engine import FieldViolation
from arbiter.server.ledger import InvalidArgument

__all__ = ["REQUEST_ID_KEY", "RPC_LOGGER", "Undecodable", "observed", "register", "tolerant"]

#: Callers may name their request in this metadata key; else the server makes an id up.
REQUEST_ID_KEY: Final = "x-request-id"
RPC_LOGGER: Final = "arbiter.rpc"
_MAX_REQUEST_ID_CHARS: Final = 64

_rpc_log = logging.getLogger(RPC_LOGGER)
logger = logging.getLogger("arbiter.api")
_OK: Final = grpc.StatusCode.OK
_INFO: Final = logging.INFO
_perf = time.perf_counter

Handler = Callable[..., Any]


def _request_id(metadata: Any) -> str:
    for item in metadata or ():
        if item[0] == REQUEST_ID_KEY and isinstance(item[1], str):
            value = item[1][:_MAX_REQUEST_ID_CHARS]
            if value.isprintable():
                return value
    return secrets.token_hex(8)


def _log(method: str, code: grpc.StatusCode, seconds: float, context: Any, who: str) -> None:
    duration_ms = round(seconds * 1000, 3)
    _rpc_log.info(
        "%s %s %.3f ms",
        method,
        code.name,
        duration_ms,
        extra={
            "rpc": {
                "method": method,
                "code": code.name,
                "duration_ms": duration_ms,
                "request_id": _request_id(context.invocation_metadata()),
                "name": who,
            }
        },
    )


class Undecodable:
    """What the server's deserializer gives for bytes that are not a message of the RPC's type:
    the call wrapper answers INVALID_ARGUMENT (gRPC's own deserializer would end the call with
    UNKNOWN)."""

    __slots__ = ("error", "size")

    def __init__(self, size: int, error: str) -> None:
        self.size = size
        self.error = error

    def invalid(self, where: str, type_name: str) -> InvalidArgument:
        return InvalidArgument(
            [
                FieldViolation(
                    where or "(request)",
                    f"{self.size} bytes that are not a valid {type_name} message ({self.error})",
                )
            ]
        )


def tolerant(cls: Any) -> Callable[[bytes], Any]:
    """A deserializer of `cls` that never raises: bytes that do not parse give `Undecodable`."""
    parse = cls.FromString

    def deserialize(data: bytes) -> Any:
        try:
            return parse(data)
        except Exception as exc:  # protobuf's DecodeError, or anything its parser raises
            return Undecodable(len(data), str(exc)[:80] or type(exc).__name__)

    return deserialize


def register(
    server: Any,
    servicer: object,
    service: descriptor.ServiceDescriptor,
    *,
    serialized: frozenset[str] = frozenset(),
) -> None:
    """Register `servicer`'s RPCs of `service` on a grpc.aio server, as the generated
    `add_*Servicer_to_server` would, with a deserializer that never fails (`Undecodable`).

    The methods named in `serialized` (unary) take the request's bytes and return the response's
    bytes, passed through unparsed: CalculateOrder reads and encodes them natively
    (api/checkout.py)."""
    handlers = {}
    for rpc in service.methods:
        if rpc.name in serialized:
            assert not (rpc.client_streaming or rpc.server_streaming), rpc.name
            # None: grpc passes the bytes unchanged.
            handlers[rpc.name] = grpc.unary_unary_rpc_method_handler(getattr(servicer, rpc.name))
            continue
        request_class = message_factory.GetMessageClass(rpc.input_type)
        response_class = message_factory.GetMessageClass(rpc.output_type)
        if rpc.client_streaming and rpc.server_streaming:
            make = grpc.stream_stream_rpc_method_handler
        elif rpc.client_streaming:
            make = grpc.stream_unary_rpc_method_handler
        elif rpc.server_streaming:
            make = grpc.unary_stream_rpc_method_handler
        else:
            make = grpc.unary_unary_rpc_method_handler
        handlers[rpc.name] = make(
            getattr(servicer, rpc.name),
            request_deserializer=tolerant(request_class),
            response_serializer=response_class.SerializeToString,
        )
    generic = grpc.method_handlers_generic_handler(service.full_name, handlers)
    server.add_generic_rpc_handlers((generic,))
    server.add_registered_method_handlers(service.full_name, handlers)


def _field_size(field: descriptor.FieldDescriptor, value: Any) -> int:
    repeated = field.is_repeated
    items = (value.values() if hasattr(value, "values") else value) if repeated else (value,)
    total = 0
    for item in items:
        if hasattr(item, "ByteSize"):
            total += item.ByteSize()
        elif isinstance(item, str | bytes):
            total += len(item)
        else:
            total += 8
    return total


def _largest_field(message: Any) -> str:
    """The path to where most of an oversized message's bytes are (`order.lines`)."""
    path: list[str] = []
    current = message
    while True:
        fields = current.ListFields()
        if not fields:
            break
        field, value = max(fields, key=lambda pair: _field_size(*pair))
        path.append(field.name)
        if field.message_type is None or field.is_repeated:
            break
        current = value
    return ".".join(path)


def oversized(message: Any, limit: int, where: str = "") -> InvalidArgument | None:
    """An error naming the field when `message` serialises to more than `limit` bytes."""
    size = message.ByteSize()
    if size <= limit:
        return None
    field = _largest_field(message)
    path = f"{where}.{field}" if where and field else (where or field)
    return InvalidArgument(
        [
            FieldViolation(
                path,
                f"the message is {size} bytes, above the limit of {limit} bytes"
                f" ({limit // (1024 * 1024)} MiB) per message",
            )
        ]
    )


async def _each_checked(
    requests: AsyncIterable[Any], limit: int, type_name: str
) -> AsyncIterator[Any]:
    index = 0
    async for request in requests:
        if type(request) is Undecodable:
            raise request.invalid(f"requests[{index}]", type_name)
        error = oversized(request, limit, f"requests[{index}]")
        if error is not None:
            raise error
        yield request
        index += 1


def _allow(principal: Principal, roles: frozenset[str], method: str) -> None:
    if principal.role not in roles:
        raise PermissionDenied(
            f"the key {principal.name!r} (role {principal.role}) may not call {method}"
        )
    set_caller(principal)


async def _refuse(context: Any, exc: Exception) -> None:
    status = status_for(exc)
    await context.abort(status.code, status.message, status.trailing_metadata)


def _failed(exc: Exception, method: str) -> grpc.StatusCode:
    """The status of the wrapper's own failure (errors.status_for), logged when INTERNAL."""
    code = status_for(exc).code
    if code is grpc.StatusCode.INTERNAL:
        logger.error("unexpected error around %s", method, exc_info=exc)
    return code


def _oversized_bytes(data: bytes, rpc: _Rpc, limit: int) -> InvalidArgument:
    """The error for a serialized request above `limit`: parsed (rarely) to name the field."""
    parsed = tolerant(rpc.request_class)(data)
    if type(parsed) is Undecodable:
        return parsed.invalid("", rpc.type_name)
    error = oversized(parsed, limit)
    assert error is not None
    return error


async def _checked(request: Any, context: Any, rpc: _Rpc) -> Any:
    """The request, refused (INVALID_ARGUMENT) when it did not parse or is above the size limit;
    a client stream's messages are checked one by one as they are read."""
    max_bytes, type_name = rpc.max_bytes, rpc.type_name
    if rpc.streaming_in:
        return _each_checked(request, max_bytes, type_name)
    if type(request) is bytes:  # a method of `register(serialized=)`: parsed inside
        if len(request) > max_bytes:
            await _refuse(context, _oversized_bytes(request, rpc, max_bytes))
    elif type(request) is Undecodable:
        await _refuse(context, request.invalid("", type_name))
    elif request.ByteSize() > max_bytes:
        error = oversized(request, max_bytes)
        assert error is not None
        await _refuse(context, error)
    return request


class _Span:
    """One call as the wrapper records it: when it started, who called, how it ended."""

    __slots__ = ("code", "start", "who")

    def __init__(self, who: str) -> None:
        self.start = _perf()
        self.code = _OK
        self.who = who


async def _admitted(request: Any, context: Any, rpc: _Rpc, keys: ApiKeys, span: _Span) -> Any:
    """The request to serve, once the caller's key is verified and its role allows the method
    (when auth is on) and the request is within the limits; a refusal raises (Unauthenticated,
    PermissionDenied) or aborts the call (INVALID_ARGUMENT)."""
    if rpc.auth:
        principal = await keys.authenticate(context.invocation_metadata())
        span.who = principal.name
        _allow(principal, rpc.roles, rpc.method)
    if type(request) is bytes and len(request) <= rpc.max_bytes:
        return request  # the common case of a serialized method: no coroutine of its own
    return await _checked(request, context, rpc)


async def _ended(exc: BaseException, context: Any, rpc: _Rpc, span: _Span) -> None:
    """Record how `exc` ends the call; the wrapper's own failures (a refused key or role, and
    anything unexpected) are answered here, with their one status (errors.status_for)."""
    if isinstance(exc, grpc.aio.AbortError):
        span.code = context.code() or grpc.StatusCode.UNKNOWN
    elif isinstance(exc, asyncio.CancelledError | GeneratorExit):
        span.code = grpc.StatusCode.CANCELLED
    elif isinstance(exc, Exception):
        span.code = _failed(exc, rpc.method)
        await _refuse(context, exc)  # raises AbortError


def _record(span: _Span, rpc: _Rpc, timer: RpcTimer, context: Any) -> None:
    """The call's duration metric and, when the `arbiter.rpc` logger is on for INFO, its line."""
    seconds = _perf() - span.start
    timer.observe(span.code, seconds)
    if _rpc_log.isEnabledFor(_INFO):
        _log(rpc.method, span.code, seconds, context, span.who)


def _response(inner: Handler, rpc: _Rpc, keys: ApiKeys, timer: RpcTimer) -> Handler:
    anonymous, auth, max_bytes = rpc.anonymous, rpc.auth, rpc.max_bytes

    async def call(request: Any, context: Any) -> Any:
        span = _Span(anonymous)
        try:
            # Bytes within the limit and no key to check (CalculateOrder without auth): nothing
            # to admit, so no coroutine of _admitted's.
            if auth or type(request) is not bytes or len(request) > max_bytes:
                request = await _admitted(request, context, rpc, keys, span)
            return await inner(request, context)
        except BaseException as exc:
            await _ended(exc, context, rpc, span)
            raise
        finally:
            _record(span, rpc, timer, context)

    return call


def _stream(inner: Handler, rpc: _Rpc, keys: ApiKeys, timer: RpcTimer) -> Handler:
    anonymous = rpc.anonymous

    async def call(request: Any, context: Any) -> AsyncIterator[Any]:
        span = _Span(anonymous)
        try:
            request = await _admitted(request, context, rpc, keys, span)
            async for response in inner(request, context):
                yield response
        except BaseException as exc:
            await _ended(exc, context, rpc, span)
            raise
        finally:
            _record(span, rpc, timer, context)

    return call


class _Rpc(NamedTuple):
    method: str
    roles: frozenset[str]
    streaming_in: bool
    max_bytes: int
    type_name: str
    request_class: Any
    #: Whether callers must present a key (auth is on).
    auth: bool
    #: The name logged for a caller before (or without) a verified key.
    anonymous: str


class _Observed:
    def __init__(
        self,
        servicer: object,
        service: descriptor.ServiceDescriptor,
        keys: ApiKeys,
        timers: Callable[[str], RpcTimer],
        max_request_bytes: int,
    ) -> None:
        for rpc in service.methods:
            inner = getattr(servicer, rpc.name)
            method = f"/{service.full_name}/{rpc.name}"
            info = _Rpc(
                method,
                roles_for(service.full_name, rpc.name),
                rpc.client_streaming,
                max_request_bytes,
                rpc.input_type.full_name,
                message_factory.GetMessageClass(rpc.input_type),
                keys.enabled,
                "" if keys.enabled else "local",
            )
            wrap = _stream if rpc.server_streaming else _response
            setattr(self, rpc.name, wrap(inner, info, keys, timers(method)))


def observed(
    servicer: object,
    service: descriptor.ServiceDescriptor,
    keys: ApiKeys,
    timers: Callable[[str], RpcTimer],
    max_request_bytes: int,
) -> Any:
    """`servicer` (already guarded) with each RPC of `service` checked, timed and logged.

    A request (or a message of a client stream) larger than `max_request_bytes` is
    INVALID_ARGUMENT naming the field holding most of it; the transport's own limit, above
    this one, refuses what is too large to read at all (RESOURCE_EXHAUSTED).
    """
    return _Observed(servicer, service, keys, timers, max_request_bytes)
