# cython: language_level=3, boundscheck=False, wraparound=False
"""CalculateOrderRequest read natively: the wire bytes straight into the engine's inputs.

`read_quote(data)` returns (program, member_id, order, member) for a request that it proves
valid exactly as `translate.order_from_proto`'s fast path would, except for the point types
(which depend on the program: the caller checks `point_types_of` against it); anything else
returns None, and the caller parses the request with protobuf and runs `order_from_proto`,
which names every bad field. "Anything else" includes every unusual encoding: an unknown
field, a known field with another wire type, a singular message given twice (which protobuf
would merge), invalid UTF-8. tests/api/test_decode.py holds the two equal on generated and
mutated requests, and on random bytes.

The field numbers are checked against the descriptors at import, as api/_encode.pyx does.
"""

from cpython.object cimport PyObject, PyTypeObject
from cpython.ref cimport Py_INCREF, Py_XDECREF
from cpython.tuple cimport PyTuple_SET_ITEM
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.string cimport memcmp

from arbiter.server.engine._select cimport (
    LINE_BRAND,
    LINE_CATEGORIES,
    LINE_FIELDS,
    LINE_ID,
    LINE_PARTNER,
    LINE_QUANTITY,
    LINE_SKU,
    LINE_UNIT_PRICE,
    LINE_WIDTH,
)

cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object unicode, Py_ssize_t* size) except NULL

from datetime import timedelta

from arbiter.server.api import translate
from arbiter.server.engine import LineInput, MemberState, OrderInput
from arbiter.server.state import instants
from arbiter.v1 import checkout_pb2

__all__ = ["point_types_of", "read_quote"]

cdef enum:
    VARINT = 0
    LEN = 2

_LAYOUT = {
    "CalculateOrderRequest": {
        "program": (1, LEN), "member_id": (2, LEN), "member_context": (3, LEN), "order": (4, LEN),
    },
    "MemberContext": {"balances": (1, LEN), "tiers": (2, LEN), "segments": (3, LEN)},
    "Balance": {"point_type": (1, LEN), "available": (2, VARINT)},
    "TierRef": {"tier_group": (1, LEN), "tier": (2, LEN)},
    "Order": {
        "id": (1, LEN), "channel": (2, LEN), "point_of_contact": (3, LEN), "region": (4, LEN),
        "time_zone": (5, LEN), "created_at": (6, LEN), "shipping_cost": (7, VARINT),
        "lines": (8, LEN), "promo_codes": (9, LEN), "redeem": (10, LEN),
    },
    "Line": {
        "id": (1, LEN), "sku": (2, LEN), "quantity": (3, VARINT), "unit_price": (4, VARINT),
        "categories": (5, LEN), "brand": (6, LEN), "partner": (7, LEN), "fields": (8, LEN),
    },
    "Redemption": {"point_type": (1, LEN), "points": (2, VARINT)},
}
_TIMESTAMP = {"seconds": (1, VARINT), "nanos": (2, VARINT)}
_MAP_ENTRY = {"key": (1, LEN), "value": (2, VARINT)}
_ROWS = (
    (LineInput, ("id", "sku", "quantity", "unit_price", "categories", "brand", "partner",
                 "fields")),
    (OrderInput, ("id", "lines", "channel", "point_of_contact", "region", "time_zone",
                  "created_at", "shipping_cost", "promo_codes", "redeem")),
    (MemberState, ("member_id", "balances", "tiers", "segments")),
)


def _wire_type(field):
    if field.type in (field.TYPE_INT64, field.TYPE_INT32) and not field.is_repeated:
        return VARINT
    if field.type in (field.TYPE_STRING, field.TYPE_MESSAGE):
        return LEN
    return None


def _check_layout():
    """Raise when the descriptors or the engine's inputs differ from what is read here."""
    problems = []
    request = checkout_pb2.CalculateOrderRequest.DESCRIPTOR
    line = checkout_pb2.Line.DESCRIPTOR
    described = {
        name: checkout_pb2.DESCRIPTOR.message_types_by_name[name] for name in _LAYOUT
    }
    described["google.protobuf.Timestamp"] = (
        checkout_pb2.Order.DESCRIPTOR.fields_by_name["created_at"].message_type
    )
    described["Line.FieldsEntry"] = line.fields_by_name["fields"].message_type
    expected = dict(_LAYOUT)
    expected["google.protobuf.Timestamp"] = _TIMESTAMP
    expected["Line.FieldsEntry"] = _MAP_ENTRY
    for name, descriptor in described.items():
        actual = {f.name: (f.number, _wire_type(f)) for f in descriptor.fields}
        if actual != expected[name]:
            problems.append(f"{name}: read as {expected[name]}, the proto has {actual}")
        for f in descriptor.fields:
            if f.has_presence and f.message_type is None:
                problems.append(f"{name}.{f.name}: explicit presence is not read")
    if request.fields_by_name["member_context"].message_type.name != "MemberContext":
        problems.append("CalculateOrderRequest.member_context: not a MemberContext")
    for row, names in _ROWS:
        if tuple(row._fields) != names:
            problems.append(f"{row.__name__}: read as {names}, it has {row._fields}")
    if problems:
        raise ImportError("arbiter.server.api._decode is out of date: " + "; ".join(problems))


_check_layout()

cdef int64_t MAX_LINES = translate.MAX_LINES
cdef int64_t MAX_PROMO_CODES = translate.MAX_PROMO_CODES
cdef int64_t MAX_REDEMPTIONS = translate.MAX_REDEMPTIONS
cdef int64_t MAX_CATEGORIES_PER_LINE = translate.MAX_CATEGORIES_PER_LINE
cdef int64_t MAX_FIELDS_PER_LINE = translate.MAX_FIELDS_PER_LINE
cdef int64_t MAX_BALANCES = translate.MAX_BALANCES
cdef int64_t MAX_TIERS = translate.MAX_TIERS
cdef int64_t MAX_SEGMENTS = translate.MAX_SEGMENTS
cdef int64_t MAX_QUANTITY = translate.MAX_QUANTITY
cdef int64_t MAX_MONEY_MINOR = translate.MAX_MONEY_MINOR
cdef int64_t MAX_POINTS = translate.MAX_POINTS
cdef int64_t MIN_SECONDS = instants.MIN_SECONDS
cdef int64_t MAX_SECONDS = instants.MAX_SECONDS
cdef object _EPOCH = instants.EPOCH
cdef object _EMPTY = translate._EMPTY
cdef object _NO_SEGMENTS = translate._NO_SEGMENTS
cdef object _is_time_zone = translate._is_time_zone
cdef object LINE = LineInput
cdef object ORDER = OrderInput
cdef object MEMBER = MemberState

cdef extern from "Python.h":
    # A new reference (NULL with an exception set: Cython raises it).
    object PyType_GenericAlloc(PyTypeObject* kind, Py_ssize_t items)


# A named tuple of the engine built in place: allocated at its width (as tuple.__new__ allocates
# a tuple subclass: the type's tp_alloc, which a tuple subclass inherits as PyType_GenericAlloc)
# and filled field by field, without the intermediate tuple of `_make` nor its Python frame.
cdef inline object _alloc(object kind, Py_ssize_t width):
    return PyType_GenericAlloc(<PyTypeObject*>kind, width)


cdef inline void _put(object row, Py_ssize_t i, object value):
    Py_INCREF(value)  # PyTuple_SET_ITEM steals a reference
    PyTuple_SET_ITEM(row, i, value)


cdef object _new_line(
    object line_id, object sku, int64_t quantity, int64_t unit_price, object categories,
    object brand, object partner, object fields,
):
    cdef object row = _alloc(LINE, LINE_WIDTH)
    _put(row, LINE_ID, line_id)
    _put(row, LINE_SKU, sku)
    _put(row, LINE_QUANTITY, quantity)
    _put(row, LINE_UNIT_PRICE, unit_price)
    _put(row, LINE_CATEGORIES, categories)
    _put(row, LINE_BRAND, brand)
    _put(row, LINE_PARTNER, partner)
    _put(row, LINE_FIELDS, fields)
    return row


cdef object _new_order(
    object order_id, object lines, object channel, object contact, object region,
    object time_zone, object created_at, int64_t shipping_cost, object codes, object redeem,
):
    cdef object row = _alloc(ORDER, 10)
    _put(row, 0, order_id)
    _put(row, 1, lines)
    _put(row, 2, channel)
    _put(row, 3, contact)
    _put(row, 4, region)
    _put(row, 5, time_zone)
    _put(row, 6, created_at)
    _put(row, 7, shipping_cost)
    _put(row, 8, codes)
    _put(row, 9, redeem)
    return row


cdef object _new_member(object member_id, object balances, object tiers, object segments):
    cdef object row = _alloc(MEMBER, 4)
    _put(row, 0, member_id)
    _put(row, 1, balances)
    _put(row, 2, tiers)
    _put(row, 3, segments)
    return row


class _Doubt(Exception):
    """Raised inside: the request is not read here (the plain path reads it)."""


cdef struct Reader:
    const unsigned char* p
    const unsigned char* end


cdef inline uint64_t _varint(Reader* r) except? 0xFFFFFFFFFFFFFFFF:
    cdef uint64_t value = 0
    cdef int shift = 0
    cdef unsigned char byte
    while True:
        if r.p >= r.end:
            raise _Doubt()
        byte = r.p[0]
        r.p += 1
        if shift == 63 and byte > 1:
            raise _Doubt()  # past 64 bits
        value |= (<uint64_t>(byte & 0x7F)) << shift
        if byte < 0x80:
            return value
        shift += 7


cdef inline Reader _sub(Reader* r) except *:
    """The length-delimited payload at the reader, which moves past it."""
    cdef uint64_t n = _varint(r)
    cdef Reader sub
    if n > <uint64_t>(r.end - r.p):
        raise _Doubt()
    sub.p = r.p
    sub.end = r.p + n
    r.p += n
    return sub


# The short strings read lately (ids, SKUs, categories, point types: a catalogue repeats them
# from request to request), by a hash of their bytes: a string read again is the object read
# before, with its hash already computed for the engine's dictionaries, instead of a new one.
# A slot holds the last string that hashed to it; bounded: STRING_SLOTS strings of at most
# STRING_MAX bytes.
cdef enum:
    STRING_SLOTS = 4096  # a power of two
    STRING_MAX = 64
cdef PyObject* _strings[STRING_SLOTS]


cdef inline str _str(Reader* r):
    cdef Reader s = _sub(r)
    cdef Py_ssize_t n = s.end - s.p, size
    cdef uint64_t h = 14695981039346656037ULL  # FNV-1a
    cdef Py_ssize_t i
    cdef PyObject* cached
    cdef const char* known
    if n > STRING_MAX or n == 0:
        return _decoded(s.p, n)
    for i in range(n):
        h = (h ^ s.p[i]) * 1099511628211ULL
    h &= STRING_SLOTS - 1
    cached = _strings[h]
    if cached != NULL:
        known = PyUnicode_AsUTF8AndSize(<object>cached, &size)
        if size == n and memcmp(known, s.p, n) == 0:
            return <str>cached
    text = _decoded(s.p, n)
    Py_INCREF(text)
    Py_XDECREF(cached)
    _strings[h] = <PyObject*>text
    return text


cdef inline str _decoded(const uint8_t* p, Py_ssize_t n):
    try:
        return PyUnicode_DecodeUTF8(<const char*>p, n, NULL)
    except UnicodeDecodeError:
        raise _Doubt() from None


cdef inline int64_t _int64(Reader* r) except? -1:
    return <int64_t>_varint(r)


cdef inline int64_t _int32(Reader* r) except? -1:
    return <int32_t><uint32_t>_varint(r)


cdef inline int _expect(uint64_t tag, int wire) except -1:
    if (tag & 7) != <uint64_t>wire:
        raise _Doubt()
    return 0


cdef object _timestamp(Reader* r):
    cdef Reader m = _sub(r)
    cdef uint64_t tag
    cdef int64_t seconds = 0, nanos = 0
    while m.p < m.end:
        tag = _varint(&m)
        if tag == ((1 << 3) | VARINT):
            seconds = _int64(&m)
        elif tag == ((2 << 3) | VARINT):
            nanos = _int32(&m)
        else:
            raise _Doubt()
    if not (MIN_SECONDS <= seconds <= MAX_SECONDS and 0 <= nanos < 1_000_000_000):
        raise _Doubt()
    return _EPOCH + timedelta(0, seconds, nanos // 1000)


cdef object _line(Reader* r):
    cdef Reader m = _sub(r)
    cdef Reader e
    cdef uint64_t tag
    cdef int64_t quantity = 0, unit_price = 0, value
    cdef object line_id = "", sku = "", brand = "", partner = "", key
    cdef object category = None  # the first category; `categories` holds them from the second
    cdef list categories = None
    cdef Py_ssize_t category_count = 0
    cdef dict fields = None
    while m.p < m.end:
        tag = _varint(&m)
        if tag == ((1 << 3) | LEN):
            line_id = _str(&m)
        elif tag == ((2 << 3) | LEN):
            sku = _str(&m)
        elif tag == ((3 << 3) | VARINT):
            quantity = _int64(&m)
        elif tag == ((4 << 3) | VARINT):
            unit_price = _int64(&m)
        elif tag == ((5 << 3) | LEN):
            # Most lines name one category: it needs no list.
            if category_count == 0:
                category = _str(&m)
            else:
                if categories is None:
                    categories = [category]
                categories.append(_str(&m))
            category_count += 1
        elif tag == ((6 << 3) | LEN):
            brand = _str(&m)
        elif tag == ((7 << 3) | LEN):
            partner = _str(&m)
        elif tag == ((8 << 3) | LEN):
            e = _sub(&m)
            key = ""
            value = 0
            while e.p < e.end:
                tag = _varint(&e)
                if tag == ((1 << 3) | LEN):
                    key = _str(&e)
                elif tag == ((2 << 3) | VARINT):
                    value = _int64(&e)
                else:
                    raise _Doubt()
            if fields is None:
                fields = {}
            fields[key] = value  # a repeated key: the last entry wins, as in protobuf
        else:
            raise _Doubt()
    if not (
        line_id
        and 0 < quantity <= MAX_QUANTITY
        and 0 <= unit_price <= MAX_MONEY_MINOR
        and category_count <= MAX_CATEGORIES_PER_LINE
        and (fields is None or len(fields) <= MAX_FIELDS_PER_LINE)
    ):
        raise _Doubt()
    return _new_line(
        line_id,
        sku,
        quantity,
        unit_price,
        tuple(categories) if categories is not None else ((category,) if category_count else ()),
        brand,
        partner,
        fields if fields else _EMPTY,
    )


cdef tuple _pair(Reader* r):
    """A Redemption or a Balance: (point_type, int64)."""
    cdef Reader m = _sub(r)
    cdef uint64_t tag
    cdef object name = ""
    cdef int64_t amount = 0
    while m.p < m.end:
        tag = _varint(&m)
        if tag == ((1 << 3) | LEN):
            name = _str(&m)
        elif tag == ((2 << 3) | VARINT):
            amount = _int64(&m)
        else:
            raise _Doubt()
    return (name, amount)


cdef tuple _tier(Reader* r):
    cdef Reader m = _sub(r)
    cdef uint64_t tag
    cdef object group = "", tier = ""
    while m.p < m.end:
        tag = _varint(&m)
        if tag == ((1 << 3) | LEN):
            group = _str(&m)
        elif tag == ((2 << 3) | LEN):
            tier = _str(&m)
        else:
            raise _Doubt()
    return (group, tier)


cdef object _order(Reader* r):
    cdef Reader m = _sub(r)
    cdef uint64_t tag
    cdef object order_id = "", channel = "", contact = "", region = "", time_zone = ""
    cdef object created_at = None, line, code, pair
    cdef bint has_created_at = False
    cdef int64_t shipping_cost = 0, subtotal = 0, quantity, unit_price, points
    cdef list lines = None, codes = None, redeem = None
    cdef set ids, seen
    cdef tuple row
    while m.p < m.end:
        tag = _varint(&m)
        if tag == ((1 << 3) | LEN):
            order_id = _str(&m)
        elif tag == ((2 << 3) | LEN):
            channel = _str(&m)
        elif tag == ((3 << 3) | LEN):
            contact = _str(&m)
        elif tag == ((4 << 3) | LEN):
            region = _str(&m)
        elif tag == ((5 << 3) | LEN):
            time_zone = _str(&m)
        elif tag == ((6 << 3) | LEN):
            if has_created_at:
                raise _Doubt()  # protobuf would merge the two
            has_created_at = True
            created_at = _timestamp(&m)
        elif tag == ((7 << 3) | VARINT):
            shipping_cost = _int64(&m)
        elif tag == ((8 << 3) | LEN):
            if lines is None:
                lines = []
            elif len(lines) >= MAX_LINES:
                raise _Doubt()
            lines.append(_line(&m))
        elif tag == ((9 << 3) | LEN):
            if codes is None:
                codes = []
            code = _str(&m)
            if not code or len(codes) >= MAX_PROMO_CODES:
                raise _Doubt()
            codes.append(code)
        elif tag == ((10 << 3) | LEN):
            if redeem is None:
                redeem = []
            elif len(redeem) >= MAX_REDEMPTIONS:
                raise _Doubt()
            redeem.append(_pair(&m))
        else:
            raise _Doubt()
    if lines:
        ids = set()
        for line in lines:
            # Read as the plain tuple it is (a LineInput's own item access goes through its
            # class).
            row = <tuple>line
            ids.add(row[LINE_ID])
            quantity = row[LINE_QUANTITY]
            unit_price = row[LINE_UNIT_PRICE]
            # quantity * unit_price may pass int64: compare by division first.
            if unit_price and quantity > (MAX_MONEY_MINOR - subtotal) // unit_price:
                raise _Doubt()
            subtotal += quantity * unit_price
        if len(ids) != len(lines):
            raise _Doubt()
    if redeem:
        seen = set()
        for pair in redeem:
            points = pair[1]
            if not pair[0] or pair[0] in seen or not 0 <= points <= MAX_POINTS:
                raise _Doubt()
            seen.add(pair[0])
    if not 0 <= shipping_cost <= MAX_MONEY_MINOR:
        raise _Doubt()
    if time_zone and not _is_time_zone(time_zone):
        raise _Doubt()
    return _new_order(
        order_id,
        tuple(lines) if lines else (),
        channel,
        contact,
        region,
        time_zone,
        created_at,
        shipping_cost,
        tuple(codes) if codes else (),
        tuple(redeem) if redeem else (),
    )


cdef tuple _context(Reader* r):
    """(balances, tiers, segments) of a MemberContext."""
    cdef Reader m = _sub(r)
    cdef uint64_t tag
    cdef dict balances = None, tiers = None
    cdef list segments = None
    cdef object name, group, tier
    cdef int64_t available
    cdef Py_ssize_t balance_count = 0
    while m.p < m.end:
        tag = _varint(&m)
        if tag == ((1 << 3) | LEN):
            name, available = _pair(&m)
            balance_count += 1
            if balance_count > MAX_BALANCES or not -MAX_POINTS <= available <= MAX_POINTS:
                raise _Doubt()
            if balances is None:
                balances = {}
            # Rule 23 (docs/rules.md): a context's balances of one type are summed.
            balances[name] = balances.get(name, 0) + available
        elif tag == ((2 << 3) | LEN):
            group, tier = _tier(&m)
            if tiers is None:
                tiers = {}
            if not (group and tier) or group in tiers or len(tiers) >= MAX_TIERS:
                raise _Doubt()
            tiers[group] = tier
        elif tag == ((3 << 3) | LEN):
            if segments is None:
                segments = []
            elif len(segments) >= MAX_SEGMENTS:
                raise _Doubt()
            segments.append(_str(&m))
        else:
            raise _Doubt()
    return (
        balances if balances else _EMPTY,
        tiers if tiers else _EMPTY,
        frozenset(segments) if segments else _NO_SEGMENTS,
    )


def read_quote(object data):
    """(program, member_id, order, member or None), or None: see the module docstring.
    `data`: the request's bytes (any other buffer is copied to bytes first)."""
    cdef Reader r
    cdef uint64_t tag
    cdef object program = "", member_id = "", order = None, context = None
    # bytes, read through their pointer: a typed memoryview would cost an object per call.
    cdef bytes raw = data if type(data) is bytes else bytes(data)
    cdef Py_ssize_t size = len(raw)
    if size == 0:
        return None
    r.p = <const unsigned char*> raw
    r.end = r.p + size
    try:
        while r.p < r.end:
            tag = _varint(&r)
            if tag == ((1 << 3) | LEN):
                program = _str(&r)
            elif tag == ((2 << 3) | LEN):
                member_id = _str(&r)
            elif tag == ((3 << 3) | LEN):
                if context is not None:
                    raise _Doubt()
                context = _context(&r)
            elif tag == ((4 << 3) | LEN):
                if order is not None:
                    raise _Doubt()
                order = _order(&r)
            else:
                raise _Doubt()
    except (_Doubt, OverflowError):
        return None
    if order is None:
        # No order field: an empty order (as protobuf reads it).
        order = _new_order("", (), "", "", "", "", None, 0, (), ())
    member = None
    if context is not None:
        member = _new_member(member_id, context[0], context[1], context[2])
    return (program, member_id, order, member)


def point_types_of(order, member):
    """Every point type the request names (redemptions, then the member context's balances):
    the caller checks them against the program."""
    names = [pair[0] for pair in order.redeem]
    if member is not None:
        names.extend(member.balances)
    return names
