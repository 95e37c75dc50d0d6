"""Domain errors -> gRPC status: the one place where the project's exceptions meet status codes.

    exception                          status              detail
    ArbiterError (engine.errors)
    ├── InvalidOrder                   INVALID_ARGUMENT    google.rpc.BadRequest, one violation
    │                                                      per bad field (`order.lines[2].id`)
    ├── ConfigError                    INVALID_ARGUMENT    google.rpc.BadRequest, field
    │                                                      "<object_kind> <id>: <field>"
    │   └── InvalidDraft (state)       FAILED_PRECONDITION google.rpc.BadRequest, as above (Apply)
    ├── NotFound (state.errors)        NOT_FOUND           (unknown program, member, edited object)
    ├── AlreadyExists (state.errors)   ALREADY_EXISTS      (a draft edit reusing an id)
    ├── EditRefused (state.errors)     FAILED_PRECONDITION (the draft refuses the edit; and its
    │                                                      ConfigurationRefused: Apply, Revert)
    ├── InvalidEdit (state.errors)     INVALID_ARGUMENT    google.rpc.BadRequest, one violation
    │                                                      per bad request field (`promotion.id`)
    └── LedgerError (ledger.errors)
        ├── NotFound                   NOT_FOUND
        ├── Conflict                   ALREADY_EXISTS
        ├── FailedPrecondition         FAILED_PRECONDITION (and its subclasses)
        ├── InvalidArgument            INVALID_ARGUMENT    google.rpc.BadRequest, as above
        └── StorageUnavailable         UNAVAILABLE
    Overloaded (api.admission)         RESOURCE_EXHAUSTED  "server overloaded: N calls in flight
                                                       (limit M); retry with backoff"
    NotImplementedError                UNIMPLEMENTED       (RPCs not written yet)
    Unauthenticated (api.auth)         UNAUTHENTICATED     (missing, wrong or revoked key)
    PermissionDenied (api.auth)        PERMISSION_DENIED   (the key's role may not call it)
    asyncpg CharacterNotInRepertoire,  INVALID_ARGUMENT    BadRequest naming each field of the
      UntranslatableCharacter                              request holding U+0000 (NUL), which
                                                           PostgreSQL text cannot store
    anything else                      INTERNAL            generic message; traceback logged

How a later error gets its status: one line in `STATUS_BY_ERROR`, keyed by its class. The
lookup walks the raised exception's MRO, so a subclass inherits its base's status (every
FailedPrecondition subclass is FAILED_PRECONDITION) and a more specific entry wins. An error
that carries `violations: tuple[FieldViolation, ...]` (InvalidOrder, the ledger's
InvalidArgument, the state room's InvalidEdit) gets them as BadRequest field violations. Domain
rooms never import grpc.

Their message (str(exc)) becomes the status message, so they must say what to fix and never
carry secrets. The status and its details travel as `google.rpc.Status` in the trailing metadata
key `grpc-status-details-bin` (AIP-193), the form `grpc_status.rpc_status.from_call` reads.

`guard(servicer, service, admission)` applies the mapping: at registration time it wraps each RPC
method of a servicer once, so the per-call cost is one extra frame and a `try`, not an interceptor
chain. The same frame counts the call in `admission` (api/admission.py) and refuses it with
`Overloaded` when the server already serves as many calls as it may.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, Final

import grpc
from asyncpg import CharacterNotInRepertoireError, UntranslatableCharacterError
from google.protobuf import any_pb2, descriptor, descriptor_pool, message_factory
from google.rpc import error_details_pb2, status_pb2

from arbiter.server.api.admission import Admission, Overloaded
from arbiter.server.api.auth import PermissionDenied, Unauthenticated
from arbiter.server.engine import ConfigError, FieldViolation, InvalidOrder
from arbiter.server.ledger import errors as ledger_errors
from arbiter.server.state import AlreadyExists, EditRefused, InvalidEdit, NotFound
from arbiter.server.state.errors import InvalidDraft

__all__ = [
    "MAX_REPORTED_VIOLATIONS",
    "STATUS_BY_ERROR",
    "DomainStatus",
    "guard",
    "status_for",
]

logger = logging.getLogger("arbiter.api")

STATUS_BY_ERROR: Final[dict[type[BaseException], grpc.StatusCode]] = {
    InvalidOrder: grpc.StatusCode.INVALID_ARGUMENT,
    ConfigError: grpc.StatusCode.INVALID_ARGUMENT,
    InvalidDraft: grpc.StatusCode.FAILED_PRECONDITION,
    NotFound: grpc.StatusCode.NOT_FOUND,
    AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    EditRefused: grpc.StatusCode.FAILED_PRECONDITION,
    InvalidEdit: grpc.StatusCode.INVALID_ARGUMENT,
    ledger_errors.NotFound: grpc.StatusCode.NOT_FOUND,
    ledger_errors.Conflict: grpc.StatusCode.ALREADY_EXISTS,
    ledger_errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    ledger_errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    ledger_errors.StorageUnavailable: grpc.StatusCode.UNAVAILABLE,
    Overloaded: grpc.StatusCode.RESOURCE_EXHAUSTED,
    NotImplementedError: grpc.StatusCode.UNIMPLEMENTED,
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    CharacterNotInRepertoireError: grpc.StatusCode.INVALID_ARGUMENT,
    UntranslatableCharacterError: grpc.StatusCode.INVALID_ARGUMENT,
}
_UNSTORABLE_TEXT: Final = (CharacterNotInRepertoireError, UntranslatableCharacterError)
_NUL_DESCRIPTION: Final = "contains U+0000 (NUL), which cannot be stored"

# Status and details travel in HTTP/2 headers, which peers cap (8 KiB by default in gRPC): an
# error lists at most this many violations (the first ones) plus one saying how many were left
# out, and no text longer than _MAX_TEXT_CHARS.
MAX_REPORTED_VIOLATIONS: Final = 32
_MAX_TEXT_CHARS: Final = 200
_MAX_MESSAGE_CHARS: Final = 1000

_DETAILS_KEY: Final = "grpc-status-details-bin"
_UNLIMITED: Final = 2**63 - 1
_INTERNAL_MESSAGE: Final = "internal error"


class DomainStatus:
    """A status to send: code, message, and the trailing metadata carrying its details."""

    __slots__ = ("code", "message", "trailing_metadata")

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        trailing_metadata: tuple[tuple[str, bytes], ...] = (),
    ) -> None:
        self.code = code
        self.message = message
        self.trailing_metadata = trailing_metadata


def _clip(text: str, limit: int = _MAX_TEXT_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _code_for(exc: BaseException) -> grpc.StatusCode | None:
    for cls in type(exc).__mro__:
        code = STATUS_BY_ERROR.get(cls)
        if code is not None:
            return code
    return None


def _bad_request(pairs: Iterable[tuple[str, str]], total: int) -> error_details_pb2.BadRequest:
    bad_request = error_details_pb2.BadRequest()
    add = bad_request.field_violations.add
    for field, description in pairs:
        violation = add()
        violation.field = _clip(field)
        violation.description = _clip(description)
    if total > MAX_REPORTED_VIOLATIONS:
        violation = add()
        violation.field = ""
        violation.description = f"{total - MAX_REPORTED_VIOLATIONS} more bad fields not listed"
    return bad_request


def _field_violations(exc: BaseException) -> tuple[FieldViolation, ...] | None:
    if isinstance(exc, InvalidOrder | ledger_errors.InvalidArgument | InvalidEdit):
        return exc.violations
    return None


def _nul_fields(message: Any, prefix: str = "") -> Iterable[str]:
    """The paths of the string fields (and map keys) of `message` holding U+0000."""
    if not hasattr(message, "ListFields"):
        return
    for field, value in message.ListFields():
        path = f"{prefix}{field.name}"
        entry = field.message_type
        if entry is not None and entry.GetOptions().map_entry:
            for key, item in value.items():
                if isinstance(key, str) and "\x00" in key:
                    yield f"{path}[{key!r}]"
                if isinstance(item, str) and "\x00" in item:
                    yield f"{path}[{key!r}]"
                elif hasattr(item, "ListFields"):
                    yield from _nul_fields(item, f"{path}[{key!r}].")
        elif field.is_repeated:
            for index, item in enumerate(value):
                if isinstance(item, str):
                    if "\x00" in item:
                        yield f"{path}[{index}]"
                else:
                    yield from _nul_fields(item, f"{path}[{index}].")
        elif isinstance(value, str):
            if "\x00" in value:
                yield path
        elif entry is not None:
            yield from _nul_fields(value, f"{path}.")


def _violations(exc: BaseException, request: Any = None) -> error_details_pb2.BadRequest | None:
    if isinstance(exc, _UNSTORABLE_TEXT):
        fields = list(_nul_fields(request))[: MAX_REPORTED_VIOLATIONS + 1] or ["(request)"]
        return _bad_request(
            ((f, _NUL_DESCRIPTION) for f in fields[:MAX_REPORTED_VIOLATIONS]), len(fields)
        )
    violations = _field_violations(exc)
    if violations:
        shown = violations[:MAX_REPORTED_VIOLATIONS]
        return _bad_request(((v.field, v.description) for v in shown), len(violations))
    if isinstance(exc, ConfigError):
        issues = exc.issues[:MAX_REPORTED_VIOLATIONS]
        return _bad_request(
            ((f"{i.object_kind} {i.object_id}: {i.field}", i.message) for i in issues),
            len(exc.issues),
        )
    return None


def _message(exc: BaseException, code: grpc.StatusCode) -> str:
    violations = _field_violations(exc)
    if violations:
        count = len(violations)
        first = violations[0]
        more = f" (and {count - 1} more)" if count > 1 else ""
        return _clip(f"invalid request: {first.field}: {first.description}{more}")
    if isinstance(exc, ConfigError):
        count = len(exc.issues)
        more = f" (and {count - 1} more)" if count > 1 else ""
        what = "the draft cannot be applied" if isinstance(exc, InvalidDraft) else "invalid program"
        return _clip(f"{what}: {exc.issues[0]}{more}", _MAX_MESSAGE_CHARS)
    if code is grpc.StatusCode.UNIMPLEMENTED:
        return "not implemented"
    if isinstance(exc, _UNSTORABLE_TEXT):
        return f"invalid request: a text field {_NUL_DESCRIPTION}"
    return _clip(str(exc) or type(exc).__name__, _MAX_MESSAGE_CHARS)


def status_for(exc: BaseException, request: Any = None) -> DomainStatus:
    """The status `exc` maps to; an unmapped exception is INTERNAL with a generic message.

    `request` (the call's request message, when there is one) lets an error found in storage
    name the request's fields.
    """
    code = _code_for(exc)
    if code is None:
        return DomainStatus(grpc.StatusCode.INTERNAL, _INTERNAL_MESSAGE)
    message = _message(exc, code)
    bad_request = _violations(exc, request)
    if bad_request is None:
        return DomainStatus(code, message)
    detail = any_pb2.Any()
    detail.Pack(bad_request)
    status = status_pb2.Status(code=code.value[0], message=message, details=[detail])
    return DomainStatus(code, message, ((_DETAILS_KEY, status.SerializeToString()),))


def _as_message(request: Any, method: str) -> Any:
    """A request of a method registered to take bytes (CalculateOrder), parsed again only to
    name the fields an error found in storage is about; anything unparsable names none."""
    if type(request) is not bytes:
        return request
    service, _, rpc = method.strip("/").rpartition("/")
    try:
        found = descriptor_pool.Default().FindMethodByName(f"{service}.{rpc}")
        return message_factory.GetMessageClass(found.input_type).FromString(request)
    except Exception:  # no such method, or bytes that do not parse: nothing to name
        return None


async def _abort(
    context: grpc.aio.ServicerContext, exc: Exception, method: str, request: Any = None
) -> None:
    status = status_for(exc, _as_message(request, method))
    if status.code is grpc.StatusCode.INTERNAL:
        logger.error("unexpected error in %s", method, exc_info=exc)
    await context.abort(status.code, status.message, status.trailing_metadata)


# --- Wrapping servicer methods. -----------------------------------------------------------------
Handler = Callable[..., Any]


def _guard_response(method: Handler, name: str, admission: Admission) -> Handler:
    # Unary-unary and stream-unary: one response, returned (or awaited) once.
    if inspect.iscoroutinefunction(method):

        async def guarded_async(request: Any, context: grpc.aio.ServicerContext) -> Any:
            if not admission.enter():
                await _abort(context, admission.overloaded(), name)  # raises AbortError
                return None
            try:
                return await method(request, context)
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                await _abort(context, exc, name, request)
            finally:
                admission.leave()

        return guarded_async

    async def guarded_sync(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if not admission.enter():
            await _abort(context, admission.overloaded(), name)  # raises AbortError
            return None
        try:
            return method(request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _abort(context, exc, name, request)
        finally:
            admission.leave()

    return guarded_sync


def _guard_stream(method: Handler, name: str, admission: Admission) -> Handler:
    # Unary-stream and stream-stream: a (possibly async) iterator of responses.
    async def guarded(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        if not admission.enter():
            await _abort(context, admission.overloaded(), name)  # raises AbortError
            return
        try:
            responses = method(request, context)
            if inspect.isawaitable(responses):
                responses = await responses
            if hasattr(responses, "__aiter__"):
                async for response in responses:
                    yield response
            elif responses is not None:
                for response in responses:
                    yield response
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _abort(context, exc, name, request)
        finally:
            admission.leave()

    return guarded


class _Guarded:
    """A servicer whose RPC methods map exceptions through `status_for`."""

    def __init__(
        self, servicer: object, service: descriptor.ServiceDescriptor, admission: Admission
    ) -> None:
        for rpc in service.methods:
            method = getattr(servicer, rpc.name)
            name = f"/{service.full_name}/{rpc.name}"
            if rpc.server_streaming:
                wrapped = _guard_stream(method, name, admission)
            else:
                wrapped = _guard_response(method, name, admission)
            setattr(self, rpc.name, wrapped)


def guard(
    servicer: object, service: descriptor.ServiceDescriptor, admission: Admission | None = None
) -> Any:
    """`servicer` with every RPC of `service` wrapped once; register the result instead.

    For example `add_CheckoutServiceServicer_to_server(guard(checkout, CHECKOUT), server)`.
    Calls are counted in `admission` (shared by the services of one server) and refused beyond
    its limit; without one, nothing is refused.
    """
    return _Guarded(servicer, service, admission or Admission(_UNLIMITED))
