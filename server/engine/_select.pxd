"""The C interface of the typed selection (_select.pyx), for the typed core to `cimport`.

`core.pyx` reads a product rule's matching lines straight from the selection's bit sets
(`Selection.rule_bits`: `line_words` 64-bit words, bit i: line i), without a Python call or a
Python list per benefit. The fields and C methods of both classes are declared here, as Cython
requires of a class a `.pxd` declares.

`line_field(line, LINE_SKU)` reads a field of an order's `LineInput` as the tuple it is: a named
tuple's attribute goes through its class (a type lookup and a descriptor per field), which the
selection, the core and the encoder would pay for each line. The positions are LineInput's
fields' (`_select.pyx` checks them at import).
"""

from cpython.tuple cimport PyTuple_Check, PyTuple_GET_ITEM, PyTuple_GET_SIZE
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t

cdef enum:
    LINE_ID = 0
    LINE_SKU = 1
    LINE_QUANTITY = 2
    LINE_UNIT_PRICE = 3
    LINE_CATEGORIES = 4
    LINE_BRAND = 5
    LINE_PARTNER = 6
    LINE_FIELDS = 7
    LINE_WIDTH = 8


cdef inline object line_field(object line, Py_ssize_t field):
    """Field `field` (LINE_*) of a LineInput."""
    if not PyTuple_Check(line) or PyTuple_GET_SIZE(line) != LINE_WIDTH:
        raise TypeError(f"an order line (LineInput) expected, got {line!r:.80}")
    return <object>PyTuple_GET_ITEM(line, field)


cdef class Selection


cdef class SelectTables:
    # Promotions (n_prom): the gate's fields, time windows, audience, their rules' ranges.
    cdef int n_prom
    cdef uint8_t* p_active  # ACTIVE and at least one rule
    cdef int64_t* p_start  # microseconds since the epoch (INT64_MIN: no bound)
    cdef int64_t* p_end  # (INT64_MAX: no bound)
    cdef int32_t* p_weekdays  # bit d for ISO weekday d; 0: any
    cdef int32_t* p_months  # bit m for month m; 0: any
    cdef uint8_t* p_any_channel  # lists no channel
    cdef int32_t* p_pool  # index of its code pool, -1: none
    cdef int32_t* p_win_lo  # its time windows: [p_win_lo, p_win_hi) of win_start, win_end
    cdef int32_t* p_win_hi
    cdef int32_t* win_start  # minutes of the day
    cdef int32_t* win_end
    cdef int32_t* p_audience  # pb.AudienceKind
    cdef int32_t* p_prod_lo  # its product rules: [p_prod_lo, p_prod_hi) of the pr_* arrays
    cdef int32_t* p_prod_hi
    cdef int32_t* p_ord_lo  # its order rules: [p_ord_lo, p_ord_hi) of the or_* arrays
    cdef int32_t* p_ord_hi
    cdef list audience_sets  # per promotion: the segments or tiers its audience names
    cdef dict channel_row  # channel listed with every point of contact -> row of channel_rows
    cdef dict channel_point_row  # (channel, point of contact) -> row of channel_rows
    cdef uint8_t* channel_rows  # [row, promotion]
    cdef dict pool_index  # pool id -> index
    cdef int n_pools
    cdef int n_bounds
    cdef int64_t* bounds  # every promotion's start and end, ascending
    # Product rules.
    cdef int32_t* pr_gid  # the rule on the program's rule axis
    cdef int32_t* pr_scope
    cdef int64_t* pr_min_quantity
    # Order rules.
    cdef int32_t* or_gid
    cdef uint8_t* or_kind  # SCOPE_IN | SCOPE_ALL | SCOPE_NOT
    cdef int32_t* or_seg_lo  # its order segments: [or_seg_lo, or_seg_hi) of or_segs
    cdef int32_t* or_seg_hi
    cdef int32_t* or_segs
    # Product scopes.
    cdef readonly int n_scopes
    cdef uint8_t* sc_kind  # SCOPE_IN | SCOPE_ALL | SCOPE_NOT
    cdef int32_t* sc_lo  # its segments: [sc_lo, sc_hi) of sc_segs
    cdef int32_t* sc_hi
    cdef int32_t* sc_segs
    cdef readonly int n_rules
    cdef readonly list rule_scope  # per rule: its product scope (-1: an order rule)
    cdef int32_t* r_scope  # the same as C integers
    # Product segments as bit sets of `seg_words` 64-bit words (bit s: segment s).
    cdef readonly int n_segments
    cdef int seg_words
    cdef uint64_t* seg_rows  # [row, word]: the rows below, and those the dictionaries name
    cdef int row_all  # every segment
    cdef int row_free_sku  # the segments not constrained by sku; -1: none is
    cdef int row_free_category
    cdef int row_free_brand
    cdef int row_free_partner
    cdef dict by_sku  # value -> row: the segments listing it
    cdef dict by_category
    cdef dict by_brand
    cdef dict by_partner
    cdef int n_min_prices
    cdef int64_t* min_prices  # ascending
    cdef int row_min_fail  # row_min_fail + j: the segments of positions >= j (minimum above)
    cdef int n_max_prices
    cdef int64_t* max_prices
    cdef int row_max_fail  # row_max_fail + j: the segments of positions < j (maximum below)
    cdef tuple field_tests  # (bit, predicates) of the segments with field predicates
    # Order segments.
    cdef int n_order_segments
    cdef int64_t* os_min_subtotal
    cdef int64_t* os_max_subtotal
    cdef int64_t* os_min_items
    cdef list os_channels  # frozenset per order segment (empty: any)
    cdef list os_regions
    cdef int32_t* os_c_lo  # its `contains`: [os_c_lo, os_c_hi) of os_c_segment, os_c_quantity
    cdef int32_t* os_c_hi
    cdef int32_t* os_c_segment
    cdef int64_t* os_c_quantity
    cdef readonly bint any_tiers  # some audience names tiers
    cdef list _keep  # the arrays the pointers above point into

    cdef object _arr(self, str code, object values)
    cdef int64_t* _i64(self, object values) except NULL
    cdef int32_t* _i32(self, object values) except NULL
    cdef uint8_t* _u8(self, object values) except NULL
    cdef uint64_t* _u64(self, object values) except NULL
    cdef void _line_segments(self, object line, uint64_t* out, uint64_t* scratch) except *
    cdef bint _in_windows(self, int p, int minute)
    cdef bint _order_in_segment(
        self, Selection sel, int oseg, object order, int64_t subtotal, int64_t items
    ) except -1


cdef class Selection:
    # `live` and `rule_active` (Python lists, made when first asked) read these:
    cdef uint8_t* live_c  # per promotion: eligible, and at least one of its rules applies
    cdef uint8_t* active_c  # per rule (global rule id): the rule applies
    cdef int n_prom
    cdef int n_rules
    cdef list _live_list
    cdef list _active_list
    cdef readonly list scope  # per rule: its product scope (-1: an order rule)
    cdef readonly tuple codes
    cdef readonly int n_lines
    cdef SelectTables tables
    cdef int line_words  # 64-bit words of a bit set over the order's lines
    cdef int64_t* quantity  # per line
    cdef uint64_t* seg_lines  # [segment, word]: the lines in each product segment
    cdef int32_t* scope_slot  # per scope: its row of scope_lines, -1 not yet computed
    cdef uint64_t* scope_lines  # [slot, word]
    cdef int n_slots
    cdef int cap_slots
    cdef dict _lines

    cdef int _alloc(
        self, int L, int LW, int n_segments, int n_scopes, int n_prom, int n_rules
    ) except -1
    cdef uint64_t* scope_bits(self, int sid) except NULL
    cdef uint64_t* rule_bits(self, int gid) except NULL
    cdef int64_t _units(self, uint64_t* mask)
    cdef list _bits(self, uint64_t* mask)
