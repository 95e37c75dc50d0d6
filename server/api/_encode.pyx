# cython: language_level=3, boundscheck=False, wraparound=False
"""CalculateOrderResponse encoded natively: the wire bytes of a CalculationResult.

`encode_response(result, program_version)` returns exactly the bytes that
`result_to_proto(result, program_version).SerializeToString()` returns (server/api/translate.py
builds the message the plain way; tests/api/test_encode.py holds the two equal on generated
results). It writes varints and length-delimited submessages into one growing buffer: no
message object is built, which saves most of a quote's translation cost (docs/api.md, "The
response, encoded natively").

The field numbers and types it writes are constants below; at import they are checked against
the descriptors of proto/arbiter/v1/checkout.proto, and the engine's row layouts against the
named tuples of server/engine/types.py, so a change of either fails the import (loudly) rather
than sending wrong bytes.
"""

from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.object cimport PyObject
from cpython.tuple cimport PyTuple_Check, PyTuple_GET_ITEM, PyTuple_GET_SIZE
from libc.stdint cimport int64_t, uint64_t, uint8_t
from libc.string cimport memcpy, memmove

from arbiter.server.engine._select cimport LINE_ID, line_field

from datetime import UTC, datetime

from arbiter.server.engine import (
    AppliedBenefit,
    CalculationResult,
    LineResult,
    PointsChange,
    PromoCodeResult,
    Totals,
)
from arbiter.server.engine.core import PACKED_LINE, PACKED_ROW, PACKED_ROW_KINDS, row_names
from arbiter.v1 import checkout_pb2, program_pb2

__all__ = ["encode_packed", "encode_response"]

cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object unicode, Py_ssize_t* size) except NULL

# --- Wire types and the field numbers this module writes. -------------------------------------
cdef enum:
    VARINT = 0
    LEN = 2

# The packed rows and lines of engine.calculate_packed (core.PACKED_ROW and PACKED_LINE,
# checked at import below).
cdef enum:
    PACKED_LINE_WIDTH = 8
    PACKED_WIDTH = 5
    ROW_DISCOUNT = 0
    ROW_SHIPPING = 1
    ROW_PAYMENT = 2
    ROW_ACCRUAL = 3

# (message, field) -> (number, wire type): what the encoder below assumes.
_LAYOUT = {
    "CalculateOrderResponse": {
        "program_version": (1, VARINT),
        "evaluated_at": (2, LEN),
        "totals": (3, LEN),
        "lines": (4, LEN),
        "benefits": (5, LEN),
        "points": (6, LEN),
        "texts": (7, LEN),
        "promo_codes": (8, LEN),
    },
    "Totals": {
        "subtotal": (1, VARINT),
        "discount": (2, VARINT),
        "paid_with_points": (3, VARINT),
        "shipping": (4, VARINT),
        "shipping_discount": (5, VARINT),
        "total": (6, VARINT),
        "items": (7, VARINT),
    },
    "LineResult": {
        "line_id": (1, LEN),
        "base_price": (2, VARINT),
        "discount": (3, VARINT),
        "paid_with_points": (4, VARINT),
        "final_price": (5, VARINT),
        "portions": (6, LEN),
    },
    "Portion": {"quantity": (1, VARINT), "unit_price": (2, VARINT)},
    "AppliedBenefit": {
        "line_id": (1, LEN),
        "promotion": (2, LEN),
        "promotion_kind": (3, LEN),
        "benefit": (4, LEN),
        "amount": (5, VARINT),
        "points": (6, VARINT),
        "point_type": (7, LEN),
        "timing": (8, VARINT),
    },
    "PointsChange": {
        "point_type": (1, LEN),
        "requested": (2, VARINT),
        "redeemed": (3, VARINT),
        "accrued": (4, VARINT),
        "accrued_pending": (5, VARINT),
    },
    "PromoCodeResult": {
        "code": (1, LEN),
        "status": (2, VARINT),
        "reason": (3, VARINT),
        "promo_code_pool": (4, LEN),
    },
}
_TIMESTAMP = {"seconds": (1, VARINT), "nanos": (2, VARINT)}

# The engine's rows, read by position below.
_ROWS = (
    (CalculationResult, ("evaluated_at", "totals", "lines", "benefits", "points", "texts",
                         "promo_codes")),
    (Totals, ("subtotal", "discount", "paid_with_points", "shipping", "shipping_discount",
              "total", "items")),
    (LineResult, ("line_id", "base_price", "discount", "paid_with_points", "final_price",
                  "portions")),
    (AppliedBenefit, ("line_id", "promotion", "promotion_kind", "benefit", "amount", "points",
                      "point_type", "timing")),
    (PointsChange, ("point_type", "requested", "redeemed", "accrued", "accrued_pending")),
    (PromoCodeResult, ("code", "status", "reason", "pool")),
)


def _wire_type(field):
    scalar = {field.TYPE_INT64, field.TYPE_INT32, field.TYPE_ENUM}
    if field.type in scalar and not field.is_repeated:
        return VARINT
    if field.type in (field.TYPE_STRING, field.TYPE_MESSAGE):
        return LEN
    return None


def _check_layout():
    """Raise when the descriptors or the engine's rows differ from what the encoder writes."""
    problems = []
    for message_name, fields in (
        *_LAYOUT.items(), ("google.protobuf.Timestamp", _TIMESTAMP)
    ):
        if message_name.startswith("google."):
            descriptor = checkout_pb2.CalculateOrderResponse.DESCRIPTOR.fields_by_name[
                "evaluated_at"
            ].message_type
        else:
            descriptor = checkout_pb2.DESCRIPTOR.message_types_by_name[message_name]
        actual = {
            f.name: (f.number, _wire_type(f)) for f in descriptor.fields
        }
        if actual != fields:
            problems.append(f"{message_name}: the encoder writes {fields}, the proto has {actual}")
        for f in descriptor.fields:
            if f.has_presence and f.message_type is None:
                problems.append(f"{message_name}.{f.name}: explicit presence is not encoded")
    for row, names in _ROWS:
        if tuple(row._fields) != names:
            problems.append(f"{row.__name__}: the encoder reads {names}, it has {row._fields}")
    if PACKED_ROW != ("benefit", "line", "amount", "points", "kind"):
        problems.append(f"core.PACKED_ROW: the encoder reads 5 fields, it has {PACKED_ROW}")
    packed_line = ("base_price", "discount", "paid_with_points", "final_price",
                   "portion1_quantity", "portion1_unit_price", "portion2_quantity",
                   "portion2_unit_price")
    if PACKED_LINE != packed_line:
        problems.append(
            f"core.PACKED_LINE: the encoder reads {packed_line}, it has {PACKED_LINE}"
        )
    kinds = {"DISCOUNT": ROW_DISCOUNT, "SHIPPING": ROW_SHIPPING, "PAYMENT": ROW_PAYMENT,
             "ACCRUAL": ROW_ACCRUAL}
    if PACKED_ROW_KINDS != kinds:
        problems.append(f"core.PACKED_ROW_KINDS: the encoder reads {kinds}, the core writes "
                        f"{PACKED_ROW_KINDS}")
    if problems:
        raise ImportError("arbiter.server.api._encode is out of date: " + "; ".join(problems))


_check_layout()


def _enum_numbers(enum, prefix):
    numbers = {value.name.removeprefix(prefix): value.number for value in enum.DESCRIPTOR.values}
    numbers[""] = 0
    return numbers


cdef dict _TIMING = _enum_numbers(program_pb2.Timing, "TIMING_")
cdef dict _CODE_STATUS = _enum_numbers(checkout_pb2.PromoCodeStatus, "PROMO_CODE_STATUS_")
cdef dict _CODE_REASON = _enum_numbers(checkout_pb2.PromoCodeReason, "PROMO_CODE_REASON_")
cdef object _EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
cdef object _UTC = UTC

# Tags: (number << 3) | wire type; every number here is below 16, so each tag is one byte.
cdef enum:
    T_VERSION = (1 << 3) | VARINT
    T_EVALUATED_AT = (2 << 3) | LEN
    T_TOTALS = (3 << 3) | LEN
    T_LINES = (4 << 3) | LEN
    T_BENEFITS = (5 << 3) | LEN
    T_POINTS = (6 << 3) | LEN
    T_TEXTS = (7 << 3) | LEN
    T_CODES = (8 << 3) | LEN


cdef struct Buffer:
    uint8_t* data
    Py_ssize_t size
    Py_ssize_t capacity


cdef int _open_buffer(Buffer* buf, Py_ssize_t capacity) except -1:
    """An empty buffer of `capacity` bytes (the caller frees buf.data)."""
    buf.size = 0
    buf.capacity = capacity
    buf.data = <uint8_t*>PyMem_Malloc(capacity)
    if buf.data == NULL:
        raise MemoryError()
    return 0


cdef int _reserve(Buffer* buf, Py_ssize_t extra) except -1:
    cdef Py_ssize_t wanted = buf.size + extra
    cdef Py_ssize_t capacity = buf.capacity
    cdef uint8_t* data
    if wanted <= capacity:
        return 0
    while capacity < wanted:
        capacity *= 2
    data = <uint8_t*>PyMem_Realloc(buf.data, capacity)
    if data == NULL:
        raise MemoryError()
    buf.data = data
    buf.capacity = capacity
    return 0


cdef inline int _varint_size(uint64_t value) noexcept:
    cdef int n = 1
    while value >= 0x80:
        value >>= 7
        n += 1
    return n


cdef inline void _put_varint(Buffer* buf, uint64_t value) noexcept:
    # The caller has reserved 10 bytes.
    cdef uint8_t* out = buf.data + buf.size
    while value >= 0x80:
        out[0] = <uint8_t>(value | 0x80)
        value >>= 7
        out += 1
    out[0] = <uint8_t>value
    buf.size = out + 1 - buf.data


cdef inline int _int(Buffer* buf, uint8_t tag, int64_t value) except -1:
    # proto3 implicit presence: zero is not written; a negative value is ten bytes.
    if value == 0:
        return 0
    _reserve(buf, 11)
    buf.data[buf.size] = tag
    buf.size += 1
    _put_varint(buf, <uint64_t>value)
    return 0


cdef inline int _bytes(Buffer* buf, uint8_t tag, const char* text, Py_ssize_t n) except -1:
    _reserve(buf, 11 + n)
    buf.data[buf.size] = tag
    buf.size += 1
    _put_varint(buf, <uint64_t>n)
    memcpy(buf.data + buf.size, text, n)
    buf.size += n
    return 0


cdef inline int _str(Buffer* buf, uint8_t tag, object text) except -1:
    # proto3 implicit presence: an empty string is not written.
    cdef Py_ssize_t n
    cdef const char* utf8 = PyUnicode_AsUTF8AndSize(text, &n)
    if n:
        _bytes(buf, tag, utf8, n)
    return 0


cdef inline int _repeated_str(Buffer* buf, uint8_t tag, object text) except -1:
    # An element of a repeated field is written even when empty.
    cdef Py_ssize_t n
    cdef const char* utf8 = PyUnicode_AsUTF8AndSize(text, &n)
    _bytes(buf, tag, utf8, n)
    return 0


cdef inline Py_ssize_t _open(Buffer* buf, uint8_t tag) except -1:
    """Start a submessage: its tag and one byte for its length; returns where the length is."""
    _reserve(buf, 2)
    buf.data[buf.size] = tag
    buf.size += 1
    buf.size += 1
    return buf.size - 1


cdef int _close(Buffer* buf, Py_ssize_t at) except -1:
    """End the submessage opened at `at`: write its length, moving the body when the length
    needs more than the one byte kept for it."""
    cdef Py_ssize_t length = buf.size - at - 1
    cdef int width = _varint_size(<uint64_t>length)
    cdef Py_ssize_t end
    if width > 1:
        _reserve(buf, width - 1)
        memmove(buf.data + at + width, buf.data + at + 1, length)
        buf.size += width - 1
    end = buf.size
    buf.size = at
    _put_varint(buf, <uint64_t>length)
    buf.size = end
    return 0


cdef inline object _item(object row, Py_ssize_t i):
    return <object>PyTuple_GET_ITEM(row, i)


cdef int _rows(object rows, str name) except -1:
    if not PyTuple_Check(rows):
        raise TypeError(f"{name}: a tuple of rows expected, got {type(rows).__name__}")
    return 0


cdef int _row(object row, Py_ssize_t width, str name) except -1:
    if not PyTuple_Check(row) or PyTuple_GET_SIZE(row) != width:
        raise TypeError(f"{name}: a row of {width} fields expected, got {row!r:.80}")
    return 0


cdef int _encode(Buffer* buf, object result, int64_t program_version) except -1:
    _encode_head(buf, result, program_version)
    _encode_lines(buf, _item(result, 2))
    _encode_benefits(buf, _item(result, 3))
    _encode_tail(buf, result)
    return 0


cdef int _encode_head(Buffer* buf, object result, int64_t program_version) except -1:
    """The fields before the lines: the version, evaluated_at, the totals."""
    cdef Py_ssize_t at, i
    cdef object totals
    cdef object evaluated_at, since_epoch
    cdef int64_t seconds, nanos

    _row(result, 7, "CalculationResult")
    _int(buf, T_VERSION, program_version)

    evaluated_at = _item(result, 0)
    if evaluated_at.tzinfo is None:
        evaluated_at = evaluated_at.replace(tzinfo=_UTC)
    since_epoch = evaluated_at - _EPOCH
    seconds = since_epoch.days * 86_400 + since_epoch.seconds
    nanos = since_epoch.microseconds * 1000
    at = _open(buf, T_EVALUATED_AT)
    _int(buf, (1 << 3) | VARINT, seconds)
    _int(buf, (2 << 3) | VARINT, nanos)
    _close(buf, at)

    totals = _item(result, 1)
    _row(totals, 7, "Totals")
    at = _open(buf, T_TOTALS)
    for i in range(7):
        _int(buf, <uint8_t>(((i + 1) << 3) | VARINT), _item(totals, i))
    _close(buf, at)
    return 0


cdef int _encode_lines(Buffer* buf, object lines) except -1:
    """The lines from LineResult rows."""
    cdef Py_ssize_t at, line_at, i, j, count, portion_count
    cdef object line, portions, portion
    _rows(lines, "lines")
    count = PyTuple_GET_SIZE(lines)
    for i in range(count):
        line = _item(lines, i)
        _row(line, 6, "LineResult")
        line_at = _open(buf, T_LINES)
        _str(buf, (1 << 3) | LEN, _item(line, 0))
        _int(buf, (2 << 3) | VARINT, _item(line, 1))
        _int(buf, (3 << 3) | VARINT, _item(line, 2))
        _int(buf, (4 << 3) | VARINT, _item(line, 3))
        _int(buf, (5 << 3) | VARINT, _item(line, 4))
        portions = _item(line, 5)
        _rows(portions, "portions")
        portion_count = PyTuple_GET_SIZE(portions)
        for j in range(portion_count):
            portion = _item(portions, j)
            _row(portion, 2, "portion")
            at = _open(buf, (6 << 3) | LEN)
            _int(buf, (1 << 3) | VARINT, _item(portion, 0))
            _int(buf, (2 << 3) | VARINT, _item(portion, 1))
            _close(buf, at)
        _close(buf, line_at)
    return 0


cdef int _encode_benefits(Buffer* buf, object benefits) except -1:
    """The benefits from AppliedBenefit rows."""
    cdef Py_ssize_t at, i, count
    cdef object b
    _rows(benefits, "benefits")
    count = PyTuple_GET_SIZE(benefits)
    for i in range(count):
        b = _item(benefits, i)
        _row(b, 8, "AppliedBenefit")
        at = _open(buf, T_BENEFITS)
        _str(buf, (1 << 3) | LEN, _item(b, 0))
        _str(buf, (2 << 3) | LEN, _item(b, 1))
        _str(buf, (3 << 3) | LEN, _item(b, 2))
        _str(buf, (4 << 3) | LEN, _item(b, 3))
        _int(buf, (5 << 3) | VARINT, _item(b, 4))
        _int(buf, (6 << 3) | VARINT, _item(b, 5))
        _str(buf, (7 << 3) | LEN, _item(b, 6))
        _int(buf, (8 << 3) | VARINT, _TIMING[_item(b, 7)])
        _close(buf, at)
    return 0


cdef int _encode_tail(Buffer* buf, object result) except -1:
    """The fields after the benefits: the points, the texts, the promo codes."""
    cdef Py_ssize_t at, i, j, count
    cdef object changes, c, texts, codes, code
    changes = _item(result, 4)
    _rows(changes, "points")
    count = PyTuple_GET_SIZE(changes)
    for i in range(count):
        c = _item(changes, i)
        _row(c, 5, "PointsChange")
        at = _open(buf, T_POINTS)
        _str(buf, (1 << 3) | LEN, _item(c, 0))
        for j in range(1, 5):
            _int(buf, <uint8_t>(((j + 1) << 3) | VARINT), _item(c, j))
        _close(buf, at)

    texts = _item(result, 5)
    _rows(texts, "texts")
    count = PyTuple_GET_SIZE(texts)
    for i in range(count):
        _repeated_str(buf, T_TEXTS, _item(texts, i))

    codes = _item(result, 6)
    _rows(codes, "promo_codes")
    count = PyTuple_GET_SIZE(codes)
    for i in range(count):
        code = _item(codes, i)
        _row(code, 4, "PromoCodeResult")
        at = _open(buf, T_CODES)
        _str(buf, (1 << 3) | LEN, _item(code, 0))
        _int(buf, (2 << 3) | VARINT, _CODE_STATUS[_item(code, 1)])
        _int(buf, (3 << 3) | VARINT, _CODE_REASON[_item(code, 2)])
        _str(buf, (4 << 3) | LEN, _item(code, 3))
        _close(buf, at)
    return 0


# --- Packed rows (engine.calculate_packed): the benefits without a Python object per row. -------

# What each benefit's rows write besides their line, amount and points, encoded once per program
# (kept in CompiledProgram.native["encode"]): fields 2-4 (promotion, promotion_kind, benefit),
# then per row kind the trailing fields: a payment's point type (7), an accrual's point type
# and timing (7, 8).
cdef class _BenefitWire:
    cdef bytes blob
    cdef Py_ssize_t* head  # per benefit: offset, length of fields 2-4 in blob
    cdef Py_ssize_t* pay  # per benefit: offset, length of a payment's trailing fields
    cdef Py_ssize_t* acc  # per benefit: offset, length of an accrual's trailing fields
    cdef Py_ssize_t count

    def __dealloc__(self):
        PyMem_Free(self.head)
        PyMem_Free(self.pay)
        PyMem_Free(self.acc)


cdef Py_ssize_t* _spans(Py_ssize_t count) except NULL:
    cdef Py_ssize_t* out = <Py_ssize_t*>PyMem_Malloc((2 * count + 2) * sizeof(Py_ssize_t))
    if out == NULL:
        raise MemoryError()
    return out


cdef _BenefitWire _benefit_wire(object program):
    cached = program.native.get("encode")
    if cached is not None:
        return <_BenefitWire>cached
    promotion_id, promotion_kind, kind_name, type_id, timing = row_names(program)
    cdef _BenefitWire wire = _BenefitWire()
    cdef Py_ssize_t k, count = len(promotion_id)
    cdef Buffer buf
    cdef Py_ssize_t at
    wire.count = count
    wire.head = _spans(count)
    wire.pay = _spans(count)
    wire.acc = _spans(count)
    _open_buffer(&buf, 4096)
    try:
        for k in range(count):
            at = buf.size
            _str(&buf, (2 << 3) | LEN, promotion_id[k])
            _str(&buf, (3 << 3) | LEN, promotion_kind[k])
            _str(&buf, (4 << 3) | LEN, kind_name[k])
            wire.head[2 * k] = at
            wire.head[2 * k + 1] = buf.size - at
            at = buf.size
            _str(&buf, (7 << 3) | LEN, type_id[k])
            wire.pay[2 * k] = at
            wire.pay[2 * k + 1] = buf.size - at
            at = buf.size
            _str(&buf, (7 << 3) | LEN, type_id[k])
            _int(&buf, (8 << 3) | VARINT, _TIMING[timing[k]])
            wire.acc[2 * k] = at
            wire.acc[2 * k + 1] = buf.size - at
        wire.blob = PyBytes_FromStringAndSize(<char*>buf.data, buf.size)
    finally:
        PyMem_Free(buf.data)
    program.native["encode"] = wire
    return wire


cdef inline int _int_size(int64_t value) noexcept:
    # A VARINT field's size with its one-byte tag; zero is not written.
    if value == 0:
        return 0
    return 1 + _varint_size(<uint64_t>value)


cdef inline void _put_int(Buffer* buf, uint8_t tag, int64_t value) noexcept:
    # The caller has reserved the room.
    if value != 0:
        buf.data[buf.size] = tag
        buf.size += 1
        _put_varint(buf, <uint64_t>value)


cdef inline void _put_span(Buffer* buf, const char* blob, Py_ssize_t* span) noexcept:
    memcpy(buf.data + buf.size, blob + span[0], span[1])
    buf.size += span[1]


cdef int _encode_packed_lines(Buffer* buf, bytes packed, object lines) except -1:
    """The lines from packed line results (core.PACKED_LINE): per line its id, the four
    amounts and its receipt portions, exactly as _encode_lines writes the LineResult rows they
    stand for."""
    cdef Py_ssize_t n_lines = len(lines)
    cdef const int64_t* r = <const int64_t*><const char*>packed
    cdef Py_ssize_t i, j, line_at, at
    if len(packed) != n_lines * PACKED_LINE_WIDTH * <Py_ssize_t>sizeof(int64_t):
        raise ValueError(f"packed lines: {len(packed)} bytes for {n_lines} lines")
    for i in range(n_lines):
        line_at = _open(buf, T_LINES)
        _str(buf, (1 << 3) | LEN, line_field(lines[i], LINE_ID))
        for j in range(4):
            _int(buf, <uint8_t>(((j + 2) << 3) | VARINT), r[j])
        for j in range(4, 8, 2):
            if r[j]:
                at = _open(buf, (6 << 3) | LEN)
                _int(buf, (1 << 3) | VARINT, r[j])
                _int(buf, (2 << 3) | VARINT, r[j + 1])
                _close(buf, at)
        _close(buf, line_at)
        r += PACKED_LINE_WIDTH
    return 0


cdef int _encode_packed(Buffer* buf, bytes rows, _BenefitWire wire, object lines) except -1:
    """The benefits from packed rows: per row its line id, the benefit's fields 2-4, the amount,
    the points and the trailing fields of its kind, exactly as _encode_benefits writes the
    AppliedBenefit row they stand for."""
    cdef Py_ssize_t n_lines = len(lines)
    cdef Py_ssize_t size = len(rows)
    cdef Py_ssize_t count = size // (PACKED_WIDTH * sizeof(int64_t))
    cdef const int64_t* r = <const int64_t*><const char*>rows
    cdef const char* blob = <const char*>wire.blob
    cdef const char** line_ids
    cdef Py_ssize_t* line_sizes
    cdef Py_ssize_t i, line_size, body
    cdef int64_t k, line, amount, points, kind
    cdef Py_ssize_t* trailing
    if size % (PACKED_WIDTH * sizeof(int64_t)):
        raise ValueError("packed rows: not a whole number of rows")
    line_ids = <const char**>PyMem_Malloc((n_lines + 1) * sizeof(char*))
    line_sizes = <Py_ssize_t*>PyMem_Malloc((n_lines + 1) * sizeof(Py_ssize_t))
    try:
        if line_ids == NULL or line_sizes == NULL:
            raise MemoryError()
        for i in range(n_lines):
            line_ids[i] = PyUnicode_AsUTF8AndSize(line_field(lines[i], LINE_ID), &line_sizes[i])
        for i in range(count):
            k = r[0]
            line = r[1]
            amount = r[2]
            points = r[3]
            kind = r[4]
            r += PACKED_WIDTH
            if not (0 <= k < wire.count and -1 <= line < n_lines
                    and ROW_DISCOUNT <= kind <= ROW_ACCRUAL):
                raise ValueError(f"packed row {i}: benefit {k}, line {line}, kind {kind}")
            line_size = line_sizes[line] if line >= 0 else 0
            if kind == ROW_PAYMENT:
                trailing = wire.pay + 2 * k
            elif kind == ROW_ACCRUAL:
                trailing = wire.acc + 2 * k
            else:
                trailing = NULL
            body = wire.head[2 * k + 1] + _int_size(amount) + _int_size(points)
            if line_size:
                body += 1 + _varint_size(<uint64_t>line_size) + line_size
            if trailing != NULL:
                body += trailing[1]
            _reserve(buf, 11 + body)
            buf.data[buf.size] = T_BENEFITS
            buf.size += 1
            _put_varint(buf, <uint64_t>body)
            if line_size:
                buf.data[buf.size] = (1 << 3) | LEN
                buf.size += 1
                _put_varint(buf, <uint64_t>line_size)
                memcpy(buf.data + buf.size, line_ids[line], line_size)
                buf.size += line_size
            _put_span(buf, blob, wire.head + 2 * k)
            _put_int(buf, (5 << 3) | VARINT, amount)
            _put_int(buf, (6 << 3) | VARINT, points)
            if trailing != NULL:
                _put_span(buf, blob, trailing)
    finally:
        PyMem_Free(line_ids)
        PyMem_Free(line_sizes)
    return 0


def encode_packed(
    result: CalculationResult,
    program_version: int,
    rows: bytes,
    line_results: bytes,
    program,
    lines,
) -> bytes:
    """The serialized CalculateOrderResponse of `engine.calculate_packed`'s answer: `result`
    (its benefits and lines empty), its packed `rows` and `line_results`, calculated by
    `program` (a CompiledProgram) for an order of `lines`; the same bytes as encode_response of
    the result with its rows and lines."""
    cdef Buffer buf
    cdef _BenefitWire wire = _benefit_wire(program)
    _row(result, 7, "CalculationResult")
    _rows(_item(result, 2), "lines")
    _rows(_item(result, 3), "benefits")
    if PyTuple_GET_SIZE(_item(result, 3)) or PyTuple_GET_SIZE(_item(result, 2)):
        raise ValueError(
            "encode_packed: the result's benefits and lines are its packed rows, not tuples"
        )
    _open_buffer(&buf, 4096 + len(rows) + len(line_results))
    try:
        _encode_head(&buf, result, program_version)
        _encode_packed_lines(&buf, line_results, lines)
        _encode_packed(&buf, rows, wire, lines)
        _encode_tail(&buf, result)
        return PyBytes_FromStringAndSize(<char*>buf.data, buf.size)
    finally:
        PyMem_Free(buf.data)


def encode_response(result: CalculationResult, program_version: int) -> bytes:
    """The serialized CalculateOrderResponse for `result`, computed on `program_version`."""
    cdef Buffer buf
    _open_buffer(&buf, 4096)
    try:
        _encode(&buf, result, program_version)
        return PyBytes_FromStringAndSize(<char*>buf.data, buf.size)
    finally:
        PyMem_Free(buf.data)
