# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""The selection in C: which promotions and rules apply to an order, and each rule's lines.

`SelectTables` holds what selection reads of a compiled program as flat C arrays, built once
at compile time (`build_tables`): per promotion its status, period, weekday and month bits,
channels, pool, time windows, audience kind and the ranges of its product and order rules; per
rule its scope and `min_quantity`; per product scope its segments; the product segment index
(every segment is a bit of a multi-word bit set; each criterion maps a value to the segments
listing it; price bounds sorted so that the segments a unit price fails are one row); the
order segments' bounds and `contains`.

Per order (`SelectTables.select`), with lines as bit sets over the order's lines:
1. the gate (status, period, weekday, month, channel, pools) of every promotion, kept in the
   compiled program's `gates` per (weekday, month, channel, point of contact, valid pools)
   with the two period bounds around the instant it was computed for (docs/engine.md);
2. each line's product segments, turned around into each segment's lines;
3. time windows and audiences of the promotions the gate passes, then their rules: a product
   scope's lines are the union of its segments' lines (computed once per scope and order), an
   order rule's order segments are evaluated once per order.

Only named audiences (segments, tiers), field predicates and the channels and regions of order
segments touch Python objects; everything else is C integers.
"""

from cpython cimport array
from libc.stdint cimport INT64_MAX, INT64_MIN, int8_t, int32_t, int64_t, uint8_t, uint64_t
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memcpy, memset

import array as _array


from arbiter.server.engine.segments import SCOPE_ALL as _SCOPE_ALL
from arbiter.server.engine.segments import SCOPE_IN as _SCOPE_IN
from arbiter.server.engine.segments import SCOPE_NOT as _SCOPE_NOT
from arbiter.server.engine.segments import field_ok
from arbiter.server.engine.types import LineInput
from arbiter.v1 import program_pb2 as pb

# The positions line_field reads (_select.pxd), against the named tuple's fields.
_LINE_FIELDS = {
    "id": LINE_ID, "sku": LINE_SKU, "quantity": LINE_QUANTITY, "unit_price": LINE_UNIT_PRICE,
    "categories": LINE_CATEGORIES, "brand": LINE_BRAND, "partner": LINE_PARTNER,
    "fields": LINE_FIELDS,
}
if {name: i for i, name in enumerate(LineInput._fields)} != _LINE_FIELDS:
    raise ImportError(
        f"_select.pxd's LINE_* positions {_LINE_FIELDS} are not LineInput's {LineInput._fields}"
    )

# segments.py's constants, read once (one definition).
cdef uint8_t SCOPE_IN = _SCOPE_IN
cdef uint8_t SCOPE_ALL = _SCOPE_ALL
cdef uint8_t SCOPE_NOT = _SCOPE_NOT
cdef int32_t AUD_EVERYONE = pb.AUDIENCE_KIND_EVERYONE
cdef int32_t AUD_ALL_MEMBERS = pb.AUDIENCE_KIND_ALL_MEMBERS
cdef int32_t AUD_IN_SEGMENTS = pb.AUDIENCE_KIND_IN_SEGMENTS
cdef int32_t AUD_NOT_IN_SEGMENTS = pb.AUDIENCE_KIND_NOT_IN_SEGMENTS

# Entries of a program's gate cache (CompiledProgram.gates) before it is emptied.
GATE_CACHE = 1024
cdef uint64_t WORD_MASK = 0xFFFFFFFFFFFFFFFF


cdef extern from *:
    int __builtin_ctzll(unsigned long long) nogil


cdef inline int _ctz(uint64_t word) nogil:
    return __builtin_ctzll(word)


cdef inline void _and_with(
    uint64_t* out, uint64_t* rows, object found, int free_row, int W
):
    """out &= (rows[found] if found else 0) | rows[free_row]."""
    cdef int w
    cdef uint64_t* free_bits = rows + free_row * W
    cdef uint64_t* listed
    if found is None:
        for w in range(W):
            out[w] &= free_bits[w]
    else:
        listed = rows + <int> found * W
        for w in range(W):
            out[w] &= listed[w] | free_bits[w]


cdef class SelectTables:
    """A compiled program's selection data as C arrays (see the module's docstring)."""

    # (Its fields are declared in _select.pxd.)

    def __cinit__(self) -> None:
        self._keep = []

    cdef object _arr(self, str code, object values):
        cdef array.array a = _array.array(code, values)
        if len(a) == 0:
            a = _array.array(code, [0])  # a valid pointer, never read
        self._keep.append(a)
        return a

    cdef int64_t* _i64(self, object values) except NULL:
        cdef array.array a = self._arr("q", values)
        return <int64_t*> a.data.as_voidptr

    cdef int32_t* _i32(self, object values) except NULL:
        cdef array.array a = self._arr("i", values)
        return <int32_t*> a.data.as_voidptr

    cdef uint8_t* _u8(self, object values) except NULL:
        cdef array.array a = self._arr("B", values)
        return <uint8_t*> a.data.as_voidptr

    cdef uint64_t* _u64(self, object values) except NULL:
        cdef array.array a = self._arr("Q", values)
        return <uint64_t*> a.data.as_voidptr

    cdef void _line_segments(self, object line, uint64_t* out, uint64_t* scratch) except *:
        """The segments `line` is in, as `seg_words` words at `out` (docs/rules.md: every
        given criterion must match, within a list any); `scratch` holds as many words."""
        cdef int W = self.seg_words
        cdef int w, lo, hi, mid, bit
        cdef uint64_t* rows = self.seg_rows
        cdef uint64_t* row
        cdef int64_t price
        memcpy(out, rows + self.row_all * W, W * sizeof(uint64_t))
        if self.row_free_sku >= 0:
            _and_with(out, rows, self.by_sku.get(line_field(line, LINE_SKU)), self.row_free_sku, W)
        if self.row_free_category >= 0:
            memcpy(scratch, rows + self.row_free_category * W, W * sizeof(uint64_t))
            by_category = self.by_category
            for category in line_field(line, LINE_CATEGORIES):
                found = by_category.get(category)
                if found is not None:
                    row = rows + <int> found * W
                    for w in range(W):
                        scratch[w] |= row[w]
            for w in range(W):
                out[w] &= scratch[w]
        if self.row_free_brand >= 0:
            _and_with(
                out, rows, self.by_brand.get(line_field(line, LINE_BRAND)), self.row_free_brand, W
            )
        if self.row_free_partner >= 0:
            _and_with(
                out,
                rows,
                self.by_partner.get(line_field(line, LINE_PARTNER)),
                self.row_free_partner,
                W,
            )
        if self.n_min_prices or self.n_max_prices:
            price = line_field(line, LINE_UNIT_PRICE)
            if self.n_min_prices:
                lo, hi = 0, self.n_min_prices  # bisect_right
                while lo < hi:
                    mid = (lo + hi) >> 1
                    if price < self.min_prices[mid]:
                        hi = mid
                    else:
                        lo = mid + 1
                row = rows + (self.row_min_fail + lo) * W
                for w in range(W):
                    out[w] &= ~row[w]
            if self.n_max_prices:
                lo, hi = 0, self.n_max_prices  # bisect_left
                while lo < hi:
                    mid = (lo + hi) >> 1
                    if self.max_prices[mid] < price:
                        lo = mid + 1
                    else:
                        hi = mid
                row = rows + (self.row_max_fail + lo) * W
                for w in range(W):
                    out[w] &= ~row[w]
        if self.field_tests:
            fields = line_field(line, LINE_FIELDS)
            for bit, tests in self.field_tests:
                if out[bit >> 6] >> (bit & 63) & 1:
                    # `fields` is a list like the others: any predicate matching is enough.
                    for name, op, ref, values in tests:
                        if field_ok(fields.get(name), op, ref, values):
                            break
                    else:
                        out[bit >> 6] &= ~((<uint64_t> 1) << (bit & 63))

    def line_bits(self, line: object) -> int:
        """The segments `line` is in, as a Python integer bit set (bit s: segment s)."""
        cdef int W = self.seg_words
        cdef uint64_t* out = <uint64_t*> malloc(2 * W * sizeof(uint64_t))
        if out == NULL:
            raise MemoryError()
        try:
            self._line_segments(line, out, out + W)
            bits = 0
            for w in range(W):
                bits |= (<object> out[w]) << (64 * w)
            return bits
        finally:
            free(out)

    def gate(
        self,
        dict gates,
        int64_t at_us,
        int weekday,
        int month,
        str channel,
        str point,
        frozenset valid_pools,
    ) -> bytes:
        """The promotions passing status, period, weekday, month, channel and pools, as int32
        indices ascending (a `bytes`).

        The answer only changes when the instant crosses a promotion's start or end, so it is
        kept in `gates` per (weekday, month, channel, point of contact, valid pools) with the
        two bounds around the instant it was computed for, and reused while an order's instant
        lies between them."""
        cdef int n = self.n_prom
        cdef int i, lo, hi, mid, count
        cdef int64_t low, high
        cdef uint8_t* by_channel = NULL
        cdef uint8_t* by_point = NULL
        cdef uint8_t* pool_ok = NULL
        cdef int32_t* passing
        cdef int32_t pool
        key = (weekday, month, channel, point, valid_pools)
        hit = gates.get(key)
        if hit is not None and <int64_t> hit[0] <= at_us < <int64_t> hit[1]:
            return <bytes> hit[2]
        lo, hi = 0, self.n_bounds  # bisect_right
        while lo < hi:
            mid = (lo + hi) >> 1
            if at_us < self.bounds[mid]:
                hi = mid
            else:
                lo = mid + 1
        low = self.bounds[lo - 1] if lo else INT64_MIN
        high = self.bounds[lo] if lo < self.n_bounds else INT64_MAX
        row = self.channel_row.get(channel)
        if row is not None:
            by_channel = self.channel_rows + <int> row * n
        row = self.channel_point_row.get((channel, point))
        if row is not None:
            by_point = self.channel_rows + <int> row * n
        passing = <int32_t*> malloc((n + 1) * sizeof(int32_t))
        pool_ok = <uint8_t*> malloc(self.n_pools + 1)
        if passing == NULL or pool_ok == NULL:
            free(passing)
            free(pool_ok)
            raise MemoryError()
        try:
            memset(pool_ok, 0, self.n_pools + 1)
            for pool_id in valid_pools:
                index = self.pool_index.get(pool_id)
                if index is not None:
                    pool_ok[<int> index] = 1
            count = 0
            for i in range(n):
                if not self.p_active[i]:
                    continue
                if not (self.p_start[i] <= at_us < self.p_end[i]):
                    continue
                if self.p_weekdays[i] and not (self.p_weekdays[i] >> weekday) & 1:
                    continue
                if self.p_months[i] and not (self.p_months[i] >> month) & 1:
                    continue
                if not (
                    self.p_any_channel[i]
                    or (by_channel != NULL and by_channel[i])
                    or (by_point != NULL and by_point[i])
                ):
                    continue
                pool = self.p_pool[i]
                if pool >= 0 and not pool_ok[pool]:
                    continue
                passing[count] = i
                count += 1
            out = (<char*> passing)[: count * sizeof(int32_t)]
        finally:
            free(passing)
            free(pool_ok)
        if len(gates) >= GATE_CACHE:
            gates.clear()
        gates[key] = (low, high, out)
        return out

    def select(
        self,
        dict gates,
        object order,
        object member,
        int64_t at_us,
        object local,
        tuple codes,
        frozenset valid_pools,
        object tiers_of,
        object program,
    ) -> Selection:
        """Eligibility of every promotion and the matching lines of every rule for `order`
        (base prices, docs/rules.md) at instant `at_us` (`local`: the same in the order's
        zone). `tiers_of(program, member)` gives the member's tiers when an audience asks."""
        cdef bytes gated = self.gate(
            gates, at_us, local.isoweekday(), local.month, order.channel,
            order.point_of_contact, valid_pools,
        )
        cdef const int32_t* passing = <const int32_t*> (<const char*> gated)
        cdef int n_passing = len(gated) // sizeof(int32_t)
        cdef Selection sel = Selection.__new__(Selection)
        cdef tuple lines = order.lines
        cdef int L = len(lines)
        cdef int LW = (L + 63) >> 6 if L else 1
        cdef int SW = self.seg_words
        cdef int i, j, k, w, s, p, minute, kind, aud, sid, oseg
        cdef int64_t subtotal = 0, items = 0, units
        cdef uint64_t word, line_bit
        cdef uint64_t* mask
        cdef uint8_t* live
        cdef uint8_t* rule_active
        cdef uint64_t* line_seg
        cdef int8_t* order_hits = NULL
        cdef bint applies, hit, anyhit, found
        sel.tables = self
        sel.codes = codes
        sel.scope = self.rule_scope
        sel.n_lines = L
        sel.line_words = LW
        sel._alloc(L, LW, self.n_segments, self.n_scopes, self.n_prom, self.n_rules)
        line_seg = <uint64_t*> malloc(2 * SW * sizeof(uint64_t))
        if line_seg == NULL:
            raise MemoryError()
        try:
            for i in range(L):
                line = lines[i]
                sel.quantity[i] = line_field(line, LINE_QUANTITY)
                self._line_segments(line, line_seg, line_seg + SW)
                line_bit = (<uint64_t> 1) << (i & 63)
                for w in range(SW):
                    word = line_seg[w]
                    while word:
                        s = (w << 6) + _ctz(word)
                        sel.seg_lines[s * LW + (i >> 6)] |= line_bit
                        word &= word - 1
        finally:
            free(line_seg)
        if not n_passing:
            return sel
        live = sel.live_c
        rule_active = sel.active_c
        minute = -1
        tiers = None
        segments = None
        try:
            for j in range(n_passing):
                p = passing[j]
                if self.p_win_lo[p] < self.p_win_hi[p]:
                    if minute < 0:
                        minute = local.hour * 60 + local.minute
                    if not self._in_windows(p, minute):
                        continue
                aud = self.p_audience[p]
                if aud != AUD_EVERYONE:
                    if member is None:
                        continue
                    if aud != AUD_ALL_MEMBERS:
                        named = self.audience_sets[p]
                        if aud == AUD_IN_SEGMENTS or aud == AUD_NOT_IN_SEGMENTS:
                            # A member state carries its segments: an inline context names
                            # them all, the member directory adds the static ones.
                            if segments is None:
                                segments = member.segments
                            if named.isdisjoint(segments) != (aud == AUD_NOT_IN_SEGMENTS):
                                continue
                        else:  # TIERS
                            if tiers is None:
                                tiers = tiers_of(program, member)
                            if named.isdisjoint(tiers):
                                continue
                applies = False
                for k in range(self.p_prod_lo[p], self.p_prod_hi[p]):
                    sid = self.pr_scope[k]
                    mask = sel.scope_bits(sid)
                    anyhit = False
                    for w in range(LW):
                        if mask[w]:
                            anyhit = True
                            break
                    # Quantities are positive (checked at the boundary): a scope holding a
                    # line holds a unit.
                    if anyhit and (
                        self.pr_min_quantity[k] <= 1
                        or sel._units(mask) >= self.pr_min_quantity[k]
                    ):
                        rule_active[self.pr_gid[k]] = 1
                        applies = True
                for k in range(self.p_ord_lo[p], self.p_ord_hi[p]):
                    kind = self.or_kind[k]
                    if kind == SCOPE_ALL:
                        hit = True
                    else:
                        found = False
                        for s in range(self.or_seg_lo[k], self.or_seg_hi[k]):
                            oseg = self.or_segs[s]
                            if order_hits == NULL:
                                order_hits = <int8_t*> malloc(self.n_order_segments)
                                if order_hits == NULL:
                                    raise MemoryError()
                                memset(order_hits, -1, self.n_order_segments)
                                for i in range(L):
                                    units = sel.quantity[i]
                                    subtotal += <int64_t> lines[i].unit_price * units
                                    items += units
                            if order_hits[oseg] < 0:
                                order_hits[oseg] = self._order_in_segment(
                                    sel, oseg, order, subtotal, items
                                )
                            if order_hits[oseg]:
                                found = True
                                break
                        hit = found != (kind == SCOPE_NOT)
                    if hit:
                        rule_active[self.or_gid[k]] = 1
                        applies = True
                live[p] = applies
        finally:
            free(order_hits)
        return sel

    cdef bint _in_windows(self, int p, int minute):
        cdef int k, start, end
        for k in range(self.p_win_lo[p], self.p_win_hi[p]):
            start = self.win_start[k]
            end = self.win_end[k]
            if start == end:
                return True
            if start < end and start <= minute < end:
                return True
            if start > end and (minute >= start or minute < end):
                return True
        return False

    cdef bint _order_in_segment(
        self, Selection sel, int oseg, object order, int64_t subtotal, int64_t items
    ) except -1:
        cdef int k, seg
        if self.os_min_subtotal[oseg] and subtotal < self.os_min_subtotal[oseg]:
            return False
        if self.os_max_subtotal[oseg] and subtotal > self.os_max_subtotal[oseg]:
            return False
        if self.os_min_items[oseg] and items < self.os_min_items[oseg]:
            return False
        channels = self.os_channels[oseg]
        if channels and order.channel not in channels:
            return False
        regions = self.os_regions[oseg]
        if regions and order.region not in regions:
            return False
        for k in range(self.os_c_lo[oseg], self.os_c_hi[oseg]):
            seg = self.os_c_segment[k]
            if sel._units(sel.seg_lines + seg * sel.line_words) < self.os_c_quantity[k]:
                return False
        return True


cdef class Selection:
    """Which promotions and rules apply to an order, and the lines of every rule.

    A product scope's lines are a bit set over the order's lines (bit i: line i), the union of
    its segments' lines, computed when first asked for and shared by every rule of that
    scope."""

    # (Its fields are declared in _select.pxd.)

    def __dealloc__(self) -> None:
        free(self.quantity)
        free(self.seg_lines)
        free(self.scope_slot)
        free(self.scope_lines)
        free(self.live_c)
        free(self.active_c)

    @property
    def live(self) -> list:
        """Per promotion: eligible, and at least one of its rules applies (a list of bools,
        made when first asked: the typed core reads the C flags)."""
        if self._live_list is None:
            self._live_list = [self.live_c[p] != 0 for p in range(self.n_prom)]
        return self._live_list

    @property
    def rule_active(self) -> list:
        """Per rule (global rule id): the rule applies (a list of bools, made when first
        asked)."""
        if self._active_list is None:
            self._active_list = [self.active_c[g] != 0 for g in range(self.n_rules)]
        return self._active_list

    cdef int _alloc(
        self, int L, int LW, int n_segments, int n_scopes, int n_prom, int n_rules
    ) except -1:
        self.n_prom = n_prom
        self.n_rules = n_rules
        self.live_c = <uint8_t*> calloc(n_prom if n_prom else 1, 1)
        self.active_c = <uint8_t*> calloc(n_rules if n_rules else 1, 1)
        if self.live_c == NULL or self.active_c == NULL:
            raise MemoryError()
        self.quantity = <int64_t*> malloc((L if L else 1) * sizeof(int64_t))
        self.seg_lines = <uint64_t*> malloc(
            (n_segments if n_segments else 1) * LW * sizeof(uint64_t)
        )
        self.scope_slot = <int32_t*> malloc((n_scopes if n_scopes else 1) * sizeof(int32_t))
        self.cap_slots = 16
        self.scope_lines = <uint64_t*> malloc(self.cap_slots * LW * sizeof(uint64_t))
        if (
            self.quantity == NULL or self.seg_lines == NULL or self.scope_slot == NULL
            or self.scope_lines == NULL
        ):
            raise MemoryError()
        memset(self.seg_lines, 0, (n_segments if n_segments else 1) * LW * sizeof(uint64_t))
        memset(self.scope_slot, 0xFF, (n_scopes if n_scopes else 1) * sizeof(int32_t))
        self.n_slots = 0
        return 0

    cdef uint64_t* scope_bits(self, int sid) except NULL:
        """The lines product scope `sid` holds, as `line_words` words."""
        cdef int slot
        cdef int LW = self.line_words
        cdef int w, k, seg, rest
        cdef uint64_t* out
        cdef uint64_t* seg_row
        cdef uint64_t* grown
        cdef SelectTables t
        cdef uint8_t kind
        if sid < 0 or sid >= self.tables.n_scopes:
            raise IndexError(f"no product scope {sid}")
        slot = self.scope_slot[sid]
        if slot >= 0:
            return self.scope_lines + slot * LW
        if self.n_slots == self.cap_slots:
            grown = <uint64_t*> realloc(
                self.scope_lines, 2 * self.cap_slots * LW * sizeof(uint64_t)
            )
            if grown == NULL:
                raise MemoryError()
            self.scope_lines = grown
            self.cap_slots *= 2
        slot = self.n_slots
        self.n_slots += 1
        self.scope_slot[sid] = slot
        out = self.scope_lines + slot * LW
        t = self.tables
        kind = t.sc_kind[sid]
        if kind == SCOPE_ALL:
            for w in range(LW):
                out[w] = WORD_MASK
        else:
            memset(out, 0, LW * sizeof(uint64_t))
            for k in range(t.sc_lo[sid], t.sc_hi[sid]):
                seg_row = self.seg_lines + t.sc_segs[k] * LW
                for w in range(LW):
                    out[w] |= seg_row[w]
            if kind == SCOPE_NOT:
                for w in range(LW):
                    out[w] = ~out[w]
        rest = self.n_lines & 63
        if rest:
            out[LW - 1] &= ((<uint64_t> 1) << rest) - 1
        elif self.n_lines == 0:
            out[0] = 0
        return out

    cdef uint64_t* rule_bits(self, int gid) except NULL:
        """The matching lines of product rule `gid`, as `line_words` words (bit i: line i)."""
        if gid < 0 or gid >= self.tables.n_rules:
            raise IndexError(f"no rule {gid}")
        return self.scope_bits(self.tables.r_scope[gid])

    cdef int64_t _units(self, uint64_t* mask):
        """Units of the lines in `mask`."""
        cdef int64_t total = 0
        cdef int w
        cdef uint64_t word
        for w in range(self.line_words):
            word = mask[w]
            while word:
                total += self.quantity[(w << 6) + _ctz(word)]
                word &= word - 1
        return total

    def scope_mask(self, int sid) -> int:
        """The lines product scope `sid` holds, as a Python integer bit set."""
        cdef uint64_t* mask = self.scope_bits(sid)
        bits = 0
        for w in range(self.line_words):
            bits |= (<object> mask[w]) << (64 * w)
        return bits

    def rule_lines(self, int gid) -> list:
        """The matching lines of product rule `gid`, ascending."""
        sid = self.scope[gid]
        if self._lines is None:
            self._lines = {}
        hit = self._lines.get(sid)
        if hit is None:
            hit = self._bits(self.scope_bits(sid))
            self._lines[sid] = hit
        return hit

    cdef list _bits(self, uint64_t* mask):
        cdef list out = []
        cdef int w
        cdef uint64_t word
        for w in range(self.line_words):
            word = mask[w]
            while word:
                out.append((w << 6) + _ctz(word))
                word &= word - 1
        return out


def _words(bits: int, count: int) -> list:
    """`bits` as `count` 64-bit words, least significant first."""
    return [(bits >> (64 * w)) & 0xFFFFFFFFFFFFFFFF for w in range(count)]


def build_tables(
    promotions: object,
    index: object,
    rules: object,
    order_segments: dict,
    pool_ids: tuple,
    time_bounds: tuple,
) -> SelectTables:
    """The selection tables of a compiled program: `promotions` (CPromotion), `index`
    (segments.SegmentIndex), `rules` (segments.RuleTable), `order_segments` (id ->
    COrderSegment), `pool_ids` and every promotion's start and end ascending (microseconds)."""
    from arbiter.server.engine.compile import to_us

    cdef SelectTables t = SelectTables.__new__(SelectTables)
    cdef int n = len(promotions)
    t.n_prom = n
    t.p_active = t._u8([1 if p.active and p.rules else 0 for p in promotions])
    t.p_start = t._i64([to_us(p.start) if p.start else INT64_MIN for p in promotions])
    t.p_end = t._i64([to_us(p.end) if p.end else INT64_MAX for p in promotions])
    t.p_weekdays = t._i32([sum(1 << d for d in p.weekdays) for p in promotions])
    t.p_months = t._i32([sum(1 << m for m in p.months) for p in promotions])
    t.p_any_channel = t._u8([0 if p.channels else 1 for p in promotions])
    t.pool_index = {pid: i for i, pid in enumerate(pool_ids)}
    t.n_pools = len(pool_ids)
    t.p_pool = t._i32([t.pool_index[p.pool] if p.pool else -1 for p in promotions])
    win_lo, win_hi, win_start, win_end = [], [], [], []
    for p in promotions:
        win_lo.append(len(win_start))
        for start, end in p.windows:
            win_start.append(start)
            win_end.append(end)
        win_hi.append(len(win_start))
    t.p_win_lo = t._i32(win_lo)
    t.p_win_hi = t._i32(win_hi)
    t.win_start = t._i32(win_start)
    t.win_end = t._i32(win_end)
    t.p_audience = t._i32([p.audience for p in promotions])
    t.audience_sets = [
        p.audience_tiers if p.audience == pb.AUDIENCE_KIND_TIERS else p.audience_segments
        for p in promotions
    ]
    t.any_tiers = any(p.audience == pb.AUDIENCE_KIND_TIERS for p in promotions)
    # Channels: one row of promotions per channel listed with every point of contact, and per
    # (channel, point of contact) listed.
    t.channel_row = {}
    t.channel_point_row = {}
    listed = []
    for p in promotions:
        for ch, points in p.channels.items():
            if not points:
                row = t.channel_row.setdefault(ch, len(listed))
                if row == len(listed):
                    listed.append(set())
                listed[row].add(p.index)
            for point in points:
                row = t.channel_point_row.setdefault((ch, point), len(listed))
                if row == len(listed):
                    listed.append(set())
                listed[row].add(p.index)
    t.channel_rows = t._u8([1 if i in members else 0 for members in listed for i in range(n)])
    t.n_bounds = len(time_bounds)
    t.bounds = t._i64(time_bounds)
    # Rules, per promotion.
    pr_gid, pr_scope, pr_min, prod_lo, prod_hi = [], [], [], [], []
    or_gid, or_kind, or_seg_lo, or_seg_hi, or_segs, ord_lo, ord_hi = [], [], [], [], [], [], []
    segment_ids = {seg_id: i for i, seg_id in enumerate(order_segments)}
    for product, order in zip(rules.product, rules.order, strict=True):
        prod_lo.append(len(pr_gid))
        for gid, sid, min_quantity in product:
            pr_gid.append(gid)
            pr_scope.append(sid)
            pr_min.append(min_quantity)
        prod_hi.append(len(pr_gid))
        ord_lo.append(len(or_gid))
        for gid, scope_all, scope_not, segments in order:
            or_gid.append(gid)
            or_kind.append(SCOPE_ALL if scope_all else SCOPE_NOT if scope_not else SCOPE_IN)
            or_seg_lo.append(len(or_segs))
            or_segs.extend(segment_ids[seg_id] for seg_id in segments)
            or_seg_hi.append(len(or_segs))
        ord_hi.append(len(or_gid))
    t.pr_gid, t.pr_scope, t.pr_min_quantity = t._i32(pr_gid), t._i32(pr_scope), t._i64(pr_min)
    t.p_prod_lo, t.p_prod_hi = t._i32(prod_lo), t._i32(prod_hi)
    t.or_gid, t.or_kind = t._i32(or_gid), t._u8(or_kind)
    t.or_seg_lo, t.or_seg_hi, t.or_segs = t._i32(or_seg_lo), t._i32(or_seg_hi), t._i32(or_segs)
    t.p_ord_lo, t.p_ord_hi = t._i32(ord_lo), t._i32(ord_hi)
    t.n_rules = rules.count
    t.rule_scope = list(rules.scope)
    t.r_scope = t._i32(t.rule_scope)
    t.n_scopes = len(rules.scope_kind)
    t.sc_kind = t._u8(rules.scope_kind)
    sc_lo, sc_hi, sc_segs = [], [], []
    for segs in rules.scope_segments:
        sc_lo.append(len(sc_segs))
        sc_segs.extend(segs)
        sc_hi.append(len(sc_segs))
    t.sc_lo, t.sc_hi, t.sc_segs = t._i32(sc_lo), t._i32(sc_hi), t._i32(sc_segs)
    # The product segment index: every bit set of `index` becomes a row of words.
    t.n_segments = index.count
    W = max(1, (index.count + 63) // 64)
    t.seg_words = W
    rows = []

    def add_row(bits: int) -> int:
        rows.append(bits)
        return len(rows) - 1

    t.row_all = add_row(index.all_bits)
    t.row_free_sku = add_row(index.free_sku) if index.free_sku != index.all_bits else -1
    t.row_free_category = (
        add_row(index.free_category) if index.free_category != index.all_bits else -1
    )
    t.row_free_brand = add_row(index.free_brand) if index.free_brand != index.all_bits else -1
    t.row_free_partner = (
        add_row(index.free_partner) if index.free_partner != index.all_bits else -1
    )
    t.by_sku = {value: add_row(bits) for value, bits in index.by_sku.items()}
    t.by_category = {value: add_row(bits) for value, bits in index.by_category.items()}
    t.by_brand = {value: add_row(bits) for value, bits in index.by_brand.items()}
    t.by_partner = {value: add_row(bits) for value, bits in index.by_partner.items()}
    t.n_min_prices = len(index.min_prices)
    t.min_prices = t._i64(index.min_prices)
    t.row_min_fail = len(rows)
    for bits in index.min_fail:
        add_row(bits)
    t.n_max_prices = len(index.max_prices)
    t.max_prices = t._i64(index.max_prices)
    t.row_max_fail = len(rows)
    for bits in index.max_fail:
        add_row(bits)
    t.seg_rows = t._u64([word for bits in rows for word in _words(bits, W)])
    t.field_tests = tuple(index.fields)
    # Order segments, in the order of `order_segments`.
    t.n_order_segments = len(order_segments)
    segs = list(order_segments.values())
    t.os_min_subtotal = t._i64([s.min_subtotal for s in segs])
    t.os_max_subtotal = t._i64([s.max_subtotal for s in segs])
    t.os_min_items = t._i64([s.min_items for s in segs])
    t.os_channels = [s.channels for s in segs]
    t.os_regions = [s.regions for s in segs]
    c_lo, c_hi, c_seg, c_quantity = [], [], [], []
    for s in segs:
        c_lo.append(len(c_seg))
        for product_segment, min_quantity in s.contains:
            c_seg.append(index.bit[product_segment])
            c_quantity.append(min_quantity)
        c_hi.append(len(c_seg))
    t.os_c_lo, t.os_c_hi = t._i32(c_lo), t._i32(c_hi)
    t.os_c_segment, t.os_c_quantity = t._i32(c_seg), t._i64(c_quantity)
    return t
