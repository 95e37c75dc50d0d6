"""The fuzzer's parts: a server in a thread of its own, request strategies built from the
contract's descriptors, raw calls by method path, and the tally of statuses seen.

Strategies: `message_of(descriptor)` draws any message of a type (every field optional; strings
from the program's ids and from strange Unicode; integers at and beyond their type's bounds;
enum numbers no enum names; nested messages three deep); `raw_bytes()` draws bytes that may not
even parse; `mutated(seed)` flips, inserts, deletes and overwrites bytes of a valid request.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import descriptor, message
from google.protobuf.descriptor import FieldDescriptor as F
from hypothesis import strategies as st

from arbiter.server.app.runtime import run
from arbiter.server.app.settings import Settings
from arbiter.server.app.wiring import App
from arbiter.v1 import admin_pb2, checkout_pb2, member_pb2

SERVICES = (
    checkout_pb2.DESCRIPTOR.services_by_name["CheckoutService"],
    member_pb2.DESCRIPTOR.services_by_name["MemberService"],
    admin_pb2.DESCRIPTOR.services_by_name["AdminService"],
)
METHODS: tuple[descriptor.MethodDescriptor, ...] = tuple(
    method for service in SERVICES for method in service.methods
)
# What must never come back, whatever was sent.
FORBIDDEN = frozenset({grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN})
CALL_TIMEOUT_S = 30.0
MAX_STREAM_READS = 50

IDS = ("shop", "m-1", "m-2", "m-3", "bonus", "miles", "o-1", "o-2", "r-1", "P", "A", "M", "")
STRANGE = (
    "\u0000",
    "\u202e\u0645\u0631\u062d\u0628\u0627",  # right-to-left override, Arabic
    "e\u0301\u0301\u0301",  # combining marks
    "\u200b\ufeff",  # zero-width space, byte order mark
    "\U0001f600\U0001f469\u200d\U0001f4bb",  # emoji, a joined sequence
    "\uffff\U0010ffff",  # noncharacters
    "Ⅻ𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "SHOP",
    "shop ",
    "x" * 300,
)
_INT_BOUNDS = {
    F.TYPE_INT32: (-(2**31), 2**31 - 1),
    F.TYPE_SINT32: (-(2**31), 2**31 - 1),
    F.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    F.TYPE_INT64: (-(2**63), 2**63 - 1),
    F.TYPE_SINT64: (-(2**63), 2**63 - 1),
    F.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    F.TYPE_UINT32: (0, 2**32 - 1),
    F.TYPE_FIXED32: (0, 2**32 - 1),
    F.TYPE_UINT64: (0, 2**64 - 1),
    F.TYPE_FIXED64: (0, 2**64 - 1),
}
_MAX_DEPTH = 3

text = st.one_of(
    st.sampled_from(IDS),
    st.sampled_from(STRANGE),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=40),
)


def _integers(kind: int) -> st.SearchStrategy[int]:
    low, high = _INT_BOUNDS[kind]
    interesting = (low, low + 1, -1, 0, 1, 2, 100, 10**13 + 1, 10**15 + 1, high - 1, high)
    edges = sorted({v for v in interesting if low <= v <= high})
    return st.one_of(
        st.sampled_from(edges),
        st.integers(max(low, -1000), min(high, 100_000)),
        st.integers(low, high),
    )


def _scalar(fd: descriptor.FieldDescriptor) -> st.SearchStrategy[Any]:
    kind = fd.type
    if kind in _INT_BOUNDS:
        return _integers(kind)
    if kind == F.TYPE_STRING:
        return text
    if kind == F.TYPE_BYTES:
        return st.binary(max_size=40)
    if kind == F.TYPE_BOOL:
        return st.booleans()
    if kind in (F.TYPE_DOUBLE, F.TYPE_FLOAT):
        return st.floats(width=64 if kind == F.TYPE_DOUBLE else 32)
    if kind == F.TYPE_ENUM:
        known = [v.number for v in fd.enum_type.values]
        return st.one_of(st.sampled_from(known), st.integers(-(2**31), 2**31 - 1))
    raise AssertionError(f"no strategy for field type {kind} ({fd.full_name})")


_cache: dict[tuple[str, int], st.SearchStrategy[Any]] = {}


def message_of(desc: descriptor.Descriptor, depth: int = 0) -> st.SearchStrategy[Any]:
    """Any message of type `desc`: each field present or not, with any value."""
    key = (desc.full_name, depth)
    if key not in _cache:
        _cache[key] = st.deferred(lambda: _build(desc, depth))
    return _cache[key]


def _build(desc: descriptor.Descriptor, depth: int) -> st.SearchStrategy[Any]:
    cls = message_class(desc)
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for fd in desc.fields:
        value = _field(fd, depth)
        if value is not None:
            optional[fd.name] = value

    def make(values: dict[str, Any]) -> Any:
        msg = cls()
        for name, value in values.items():
            _set(msg, desc.fields_by_name[name], value)
        return msg

    return st.fixed_dictionaries({}, optional=optional).map(make)


def _field(fd: descriptor.FieldDescriptor, depth: int) -> st.SearchStrategy[Any] | None:
    entry = fd.message_type
    if entry is not None and entry.GetOptions().map_entry:
        key = _scalar(entry.fields_by_name["key"])
        value_fd = entry.fields_by_name["value"]
        if value_fd.message_type is not None:
            return None
        return st.dictionaries(key, _scalar(value_fd), max_size=4)
    if entry is not None:
        if depth >= _MAX_DEPTH:
            return None
        one: st.SearchStrategy[Any] = message_of(entry, depth + 1)
    else:
        one = _scalar(fd)
    if fd.is_repeated:
        return st.lists(one, max_size=4 if entry is not None else 8)
    return one


def _set(msg: Any, fd: descriptor.FieldDescriptor, value: Any) -> None:
    target = getattr(msg, fd.name)
    if isinstance(value, dict):
        for k, v in value.items():
            target[k] = v
    elif fd.is_repeated:
        if fd.message_type is not None:
            for item in value:
                target.add().CopyFrom(item)
        else:
            target.extend(value)
    elif fd.message_type is not None:
        target.CopyFrom(value)
    else:
        setattr(msg, fd.name, value)


def tweak(draw: Callable[[st.SearchStrategy[Any]], Any], msg: Any, depth: int = 0) -> None:
    """Change one or two fields of `msg` (a valid request, say) in place, going down into its
    nested messages and list items, so that the rest of it stays valid."""
    desc = msg.DESCRIPTOR
    fields = [fd for fd in desc.fields if _field(fd, depth + 1) is not None]
    if not fields:
        return
    chosen = draw(st.lists(st.sampled_from(fields), min_size=1, max_size=2, unique_by=id))
    for fd in chosen:
        current = getattr(msg, fd.name)
        is_map = fd.message_type is not None and fd.message_type.GetOptions().map_entry
        if (
            fd.message_type is not None
            and not is_map
            and depth < _MAX_DEPTH
            and draw(st.booleans())
        ):
            if fd.is_repeated and len(current) > 0:
                tweak(draw, current[draw(st.integers(0, len(current) - 1))], depth + 1)
                continue
            if not fd.is_repeated and msg.HasField(fd.name):
                tweak(draw, current, depth + 1)
                continue
        strategy = _field(fd, depth + 1)
        assert strategy is not None
        msg.ClearField(fd.name)
        _set(msg, fd, draw(strategy))


def message_class(desc: descriptor.Descriptor) -> type[message.Message]:
    from google.protobuf import message_factory

    return message_factory.GetMessageClass(desc)


def raw_bytes() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=200),
        # Well-formed tags with wild lengths and varints.
        st.lists(st.integers(0, 255), max_size=64).map(bytes),
        st.sampled_from([b"\x0a\xff\xff\xff\xff\x0f", b"\x08" + b"\xff" * 10 + b"\x01", b"\xff"]),
    )


@st.composite
def mutated(draw: Any, seed: bytes) -> bytes:
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(("flip", "insert", "delete", "set", "dup")))
        at = draw(st.integers(0, max(0, len(data) - 1))) if data else 0
        if op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and data:
            del data[at : at + draw(st.integers(1, 8))]
        elif op == "set" and data:
            data[at] = draw(st.sampled_from((0x00, 0x7F, 0x80, 0xFF)))
        elif op == "dup" and data:
            end = at + draw(st.integers(1, 16))
            data[at:at] = data[at:end]
    return bytes(data)


# --- Calls --------------------------------------------------------------------------------------


def _identity(data: bytes) -> bytes:
    return data


@dataclass
class Tally:
    """What the campaign sent and what came back."""

    requests: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    by_kind: Counter[str] = field(default_factory=Counter)
    by_method: Counter[tuple[str, str]] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


def call(
    channel: grpc.Channel,
    method: descriptor.MethodDescriptor,
    payloads: list[bytes],
    metadata: tuple[tuple[str, str], ...],
) -> grpc.StatusCode:
    """Send `payloads` (one, or the stream's messages) to `method`; the status it ended with."""
    path = f"/{method.containing_service.full_name}/{method.name}"
    kwargs: dict[str, Any] = {"request_serializer": _identity, "response_deserializer": _identity}
    try:
        if method.client_streaming and method.server_streaming:
            raise AssertionError("no bidirectional RPC in the contract")
        if method.client_streaming:
            channel.stream_unary(path, **kwargs)(
                iter(payloads), timeout=CALL_TIMEOUT_S, metadata=metadata
            )
        elif method.server_streaming:
            responses = channel.unary_stream(path, **kwargs)(
                payloads[0], timeout=CALL_TIMEOUT_S, metadata=metadata
            )
            for index, _ in enumerate(responses):
                if index >= MAX_STREAM_READS:
                    responses.cancel()
                    return grpc.StatusCode.OK
        else:
            channel.unary_unary(path, **kwargs)(
                payloads[0], timeout=CALL_TIMEOUT_S, metadata=metadata
            )
    except grpc.RpcError as exc:
        code = exc.code()
        assert isinstance(code, grpc.StatusCode)
        return code
    return grpc.StatusCode.OK


# --- The server ---------------------------------------------------------------------------------


class ThreadServer:
    """An App on its own event loop in a thread, so that sync hypothesis tests can call it."""

    def __init__(self, settings: Settings, setup: Callable[[App], Any]) -> None:
        self._settings = settings
        self._setup = setup
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.port = 0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="fuzz-server", daemon=True)

    def _run(self) -> None:
        try:
            run(self._main())
        except BaseException as exc:  # reported by start()
            self.error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self.app = App(self._settings)
        await self.app.open()
        try:
            await self._setup(self.app)
            await self.app.ready()
            self.port = self.app.port
            self._ready.set()
            await self._stop.wait()
        finally:
            await self.app.stop(0)

    def submit(self, coro: Any) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(60)

    def __enter__(self) -> ThreadServer:
        self._thread.start()
        self._ready.wait(120)
        if self.error is not None:
            raise self.error
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)
