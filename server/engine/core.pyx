# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""The typed core: the arbitration tree of one calculation evaluated in C (docs/rules.md).

`evaluate(single, node, s)` answers what the tree's `node` does on state `s`: every group mode
(SEQUENTIAL, INCOMPATIBLE, SUMMATION, MAX_BENEFIT), promotions with one or several benefits
(PARALLEL or SEQUENTIAL), rule 6 (a sum made valid) and rule 11 (limits), every benefit kind.
Everything here is plain C: a state is arrays of int64 (price to pay and points money per line,
budget per type) and the shipping left, an effect is an array of `Entry` (one per benefit and
line that changes something). The result is a `Calc` holding the entries; `entries()` gives them
as `single.Entry` tuples, and `evaluate.report` has them written typed (`Calc.report`).

- **Tables** (per compiled program, built once and kept in `CompiledProgram.native`): every
  benefit as a `Ben` struct, every node of the tree as a `Node` struct (preorder, children as
  index ranges).
- **Calc** (per calculation): the order's arrays, the rules' matching lines fetched from the
  selection when a benefit is first evaluated, node liveness, scratch.

A MAX_BENEFIT group is searched depth first over the subsets in the children's order (`Search`):
each step adds one child to the subset of the step above and values the two candidates of the
new subset (rule 12): the summation (the children's effects on `s` added up, made valid) and the
sequence (the new child evaluated on the state the subset's earlier children left; that state is
the one being walked, updated in place and restored on the way back, so memory is one state and
one effect per level: at most 17 levels, whatever the width). A subtree is skipped when an upper
bound of every candidate in it ranks after the best found (value, then the tie order of
docs/rules.md):

- a line keeps at most the least of its cap (the group's limits on `s`), its price to pay on `s`
  and (summations) what the subset's and the remaining children's effects on `s` add on it, or
  (sequences) what the subset added, plus its price left when a remaining child can touch it;
- shipping at most what is left, accruals at most the subset's plus the remaining children's
  accruals on `s`.

These hold when nothing raises a price: rule 6 and the limits then only cut, a child adds at
most the line's price to pay, and an accrual is a non-decreasing function of the prices to pay (a
child that accrues after another of its benefits, or a group child holding an accrual, is not
bounded so: a subtree where one remains is never skipped). A group where `round_price` can raise
a price is valued exhaustively (every candidate built).

The range (docs/engine.md, "The range"): inputs below 2^62 (quantities below 2^21), products
through 128 bits where they may leave int64, values that do not fit saturated and, when the
result holds one, the calculation refused (`overflowed`). An input beyond the range is
declined: `evaluate` returns None and the caller refuses the calculation.
"""

from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.long cimport PyLong_AsLongLongAndOverflow
from cpython.object cimport PyTypeObject
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_SET_ITEM
from libc.stdint cimport uint8_t, uint64_t
from libc.stdlib cimport calloc, free, malloc, qsort, realloc
from libc.string cimport memcpy, memset

from arbiter.server.engine._select cimport (
    LINE_FIELDS,
    LINE_PARTNER,
    LINE_QUANTITY,
    LINE_UNIT_PRICE,
    Selection,
    line_field,
)

from arbiter.server.engine.compile import (
    INCOMPATIBLE,
    MAX_BENEFIT,
    MAX_BENEFIT_CHILDREN,
    ON_DELIVERY,
    SEQUENTIAL,
    candidate_plan,
)
from arbiter.server.engine.money import BP as _BP
from arbiter.server.engine.money import HALF_BP as _HALF_BP
from arbiter.server.engine.types import AppliedBenefit, LineResult, PointsChange, Totals

ctypedef long long i64

cdef extern from *:
    ctypedef long long i128 "__int128"

cdef extern from *:
    """
    /* a * b / c and a * b % c through 128 bits, for a, b >= 0 and c > 0 */
    static inline long long arbiter_muldiv(long long a, long long b, long long c) {
        return (long long)(((__int128)a * b) / c);
    }
    static inline long long arbiter_mulmod(long long a, long long b, long long c) {
        return (long long)(((__int128)a * b) % c);
    }
    """
    i64 muldiv "arbiter_muldiv"(i64 a, i64 b, i64 c) noexcept
    i64 mulmod "arbiter_mulmod"(i64 a, i64 b, i64 c) noexcept

cdef extern from *:
    """
    /* A value that does not fit int64 saturates to LLONG_MAX (LLONG_MIN): an effect that
       holds one and is dropped (an INCOMPATIBLE loser, a candidate not chosen) changes
       nothing; the report sets `arbiter_overflow` when the result holds one or a sum of it
       leaves int64, and the calculation is then refused (`overflowed`). */
    static int arbiter_overflow = 0;
    static inline long long arbiter_fit(__int128 q) {
        if (q > LLONG_MAX || q < LLONG_MIN)
            return q > 0 ? LLONG_MAX : LLONG_MIN;
        return (long long)q;
    }
    /* floor(n / d), d > 0, in 128 bits */
    static inline __int128 arbiter_floor128(__int128 n, __int128 d) {
        __int128 q = n / d;
        if (n % d != 0 && n < 0)
            q -= 1;
        return q;
    }
    /* *slot += v, saturating; whether it saturated */
    static inline int arbiter_add_sat(long long *slot, long long v) {
        if (!__builtin_add_overflow(*slot, v, slot))
            return 0;
        *slot = v > 0 ? LLONG_MAX : LLONG_MIN;
        return 1;
    }
    /* the same for a sum of the result: saturating it refuses the calculation */
    static inline void arbiter_add(long long *slot, long long v) {
        if (arbiter_add_sat(slot, v))
            arbiter_overflow = 1;
    }
    /* floor((x * bp + half) / whole): in 64 bits while the product fits, else through 128
       bits (a 100x accrual on a subtotal of 10^13 multiplies past int64 before dividing) */
    static inline long long arbiter_round_bp(long long x, long long bp, long long half,
                                             long long whole) {
        long long p;
        if (x >= 0 && bp >= 0 && !__builtin_mul_overflow(x, bp, &p) && p <= LLONG_MAX - half)
            return (p + half) / whole;
        return arbiter_fit(arbiter_floor128((__int128)x * bp + half, whole));
    }
    """
    i64 round_bp_c "arbiter_round_bp"(i64 x, i64 bp, i64 half, i64 whole) noexcept
    void add_to "arbiter_add"(i64* slot, i64 v) noexcept
    int add_sat "arbiter_add_sat"(i64* slot, i64 v) noexcept
    int overflow_flag "arbiter_overflow"

cdef extern from *:
    """
    /* floor(a * b / c) and floor((2 a b + c) / (2 c)) (a * b / c half up), c > 0: in 64 bits
       while the products fit, else through 128 bits (a point ratio times a large amount). */
    static inline long long arbiter_mul_floor(long long a, long long b, long long c) {
        long long p;
        if (a >= 0 && b >= 0 && !__builtin_mul_overflow(a, b, &p))
            return p / c;
        return arbiter_fit(arbiter_floor128((__int128)a * b, c));
    }
    static inline long long arbiter_mul_half_up(long long a, long long b, long long c) {
        long long p;
        if (a >= 0 && b >= 0 && !__builtin_mul_overflow(a, b, &p) && p <= (LLONG_MAX - c) / 2)
            return (2 * p + c) / (2 * c);
        return arbiter_fit(arbiter_floor128(2 * ((__int128)a * b) + c, 2 * (__int128)c));
    }
    """
    i64 mul_floor "arbiter_mul_floor"(i64 a, i64 b, i64 c) noexcept
    i64 mul_half_up "arbiter_mul_half_up"(i64 a, i64 b, i64 c) noexcept

cdef extern from *:
    """
    /* a * b, or LLONG_MAX when that leaves int64 (a, b >= 0): for a product only compared with
       an amount that does fit (an amount off per unit times the units, against the price) */
    static inline long long arbiter_mul_sat(long long a, long long b) {
        long long p;
        if (__builtin_mul_overflow(a, b, &p))
            return LLONG_MAX;
        return p;
    }
    /* round_bp without the overflow flag: LLONG_MAX when the share leaves int64 (a unit price
       from a field times a factor, only compared with the price to pay) */
    static inline long long arbiter_round_bp_sat(long long x, long long bp, long long half,
                                                 long long whole) {
        __int128 q;
        if (x < 0 || bp < 0)
            return arbiter_round_bp(x, bp, half, whole);
        q = ((__int128)x * bp + half) / whole;
        return q > LLONG_MAX ? LLONG_MAX : (long long)q;
    }
    """
    i64 mul_sat "arbiter_mul_sat"(i64 a, i64 b) noexcept
    i64 round_bp_sat_c "arbiter_round_bp_sat"(i64 x, i64 bp, i64 half, i64 whole) noexcept

cdef extern from *:
    """
    /* A candidate's benefit through 128 bits (money plus accruals valued at their ratio: a
       point worth a million minor units takes a value past int64 while the points fit). */
    static inline __int128 arbiter_revalue128(long long pts, long long rm, long long rp) {
        return arbiter_floor128(2 * ((__int128)pts * rm) + rp, 2 * (__int128)rp);
    }
    static inline __int128 arbiter_i128_max(void) {
        return (__int128)(((unsigned __int128)1 << 127) - 1);
    }
    static inline long long arbiter_hi(__int128 v) { return (long long)(v >> 64); }
    static inline unsigned long long arbiter_lo(__int128 v) { return (unsigned long long)v; }
    """
    i128 revalue128 "arbiter_revalue128"(i64 pts, i64 rm, i64 rp) noexcept
    i128 i128_max "arbiter_i128_max"() noexcept
    long long i128_hi "arbiter_hi"(i128 v) noexcept
    unsigned long long i128_lo "arbiter_lo"(i128 v) noexcept


cdef extern from *:
    int ctz "__builtin_ctzll"(unsigned long long) noexcept nogil

cdef extern from "Python.h":
    # A tuple subclass's allocation (what tuple.__new__ does for a named tuple, less the copy).
    object PyType_GenericAlloc(PyTypeObject* t, Py_ssize_t n)

cdef enum:
    # Benefit kinds.
    K_DISCOUNT = 1
    K_PAY = 2
    K_ACCRUE = 3
    K_PER_SPENT = 4
    K_SHIP = 5
    K_TEXT = 6
    K_FIELD_PRICE = 7
    K_ROUND = 8
    K_PARTNER_DISC = 9
    K_PARTNER_PTS = 10
    K_FROM_FIELD = 11
    # Value kinds.
    V_PERCENT = 1
    V_AMOUNT = 2
    V_FIXED = 3
    V_POINTS = 4
    # Node modes (compile's constants, checked at import below).
    M_SEQUENTIAL = 1
    M_INCOMPATIBLE = 2
    M_SUMMATION = 3
    M_MAX_BENEFIT = 4
    # The widest MAX_BENEFIT group (compile.MAX_BENEFIT_CHILDREN, checked at import below).
    MAX_RANK_WIDTH = 16

assert (M_SEQUENTIAL, M_INCOMPATIBLE, M_MAX_BENEFIT) == (SEQUENTIAL, INCOMPATIBLE, MAX_BENEFIT)
assert MAX_RANK_WIDTH == MAX_BENEFIT_CHILDREN

# Amounts, points and configuration values at or above this are refused (a sum or difference
# of two stays inside int64; every product goes through 128 bits or an overflow test).
cdef i64 SAFE = 1LL << 62
cdef i64 I64_MAX = 0x7FFFFFFFFFFFFFFF
cdef i64 NEG = -I64_MAX - 1
# A valuation's runner-up when there is none (the trace reads it).
NO_RUNNER_UP = NEG
cdef int RANK_LAST = 1 << 30
# money.py's constants, read once (one definition).
cdef i64 BP = _BP
cdef i64 HALF_BP = _HALF_BP

_KINDS = {
    "discount": K_DISCOUNT,
    "pay_with_points": K_PAY,
    "accrue_points": K_ACCRUE,
    "accrue_per_spent": K_PER_SPENT,
    "shipping_discount": K_SHIP,
    "text": K_TEXT,
    "price_from_field": K_FIELD_PRICE,
    "round_price": K_ROUND,
    "partner_discount": K_PARTNER_DISC,
    "partner_points": K_PARTNER_PTS,
    "accrue_from_field": K_FROM_FIELD,
}
_VALUE_KINDS = {"percent_bp": V_PERCENT, "amount": V_AMOUNT, "fixed_price": V_FIXED, "points": V_POINTS}


class Declined(Exception):
    """The calculation holds an input beyond the core's range (the caller refuses it)."""


cdef struct Entry:
    int k  # the benefit's place on the program's benefit axis
    int line  # the line count for an order-wide entry
    i64 disc
    i64 pmon
    i64 ppts
    i64 acc
    i64 ship
    int text


cdef struct Ben:
    int kind
    int vk
    int product
    int point_type  # the type it pays with or accrues (0 if none)
    int pays  # a payment with points
    int accrues  # an accrual kind
    int on_delivery  # an accrual credited when the order is delivered (its timing)
    int rule  # its rule on the program's rule axis
    int raises  # round_price: may raise a price
    i64 value
    i64 max_items
    i64 per_amount
    i64 factor_bp
    i64 step  # round_price: the step in minor units, and whether it floors
    int floor


cdef struct Node:
    int promotion  # -1: a group
    int mode
    int lo
    int hi
    int seq  # a promotion applying its benefits in sequence
    int has_limits
    i64 max_bp
    i64 max_amount
    i64 mup
    i64 mup_bp
    int child_lo  # its children in Tables.kids
    int child_hi


cdef struct Buf:
    Entry* data
    int n
    int cap


cdef struct St:
    i64* pay
    i64* pm
    i64* budget
    i64 ship


cdef int buf_push(Buf* b, Entry e) except -1:
    cdef Entry* grown
    if b.n == b.cap:
        b.cap = b.cap * 2 if b.cap else 64
        grown = <Entry*>realloc(b.data, b.cap * sizeof(Entry))
        if grown == NULL:
            raise MemoryError()
        b.data = grown
    b.data[b.n] = e
    b.n += 1
    return 0


cdef int buf_reserve(Buf* b, int cap) except -1:
    """Room for `cap` entries at least (an empty buffer's first allocation)."""
    cdef Entry* grown
    if b.cap < cap:
        grown = <Entry*>realloc(b.data, cap * sizeof(Entry))
        if grown == NULL:
            raise MemoryError()
        b.data = grown
        b.cap = cap
    return 0


cdef int buf_extend(Buf* b, Entry* es, int n) except -1:
    cdef Entry* grown
    cdef int cap
    if b.n + n > b.cap:
        cap = b.cap * 2 if b.cap else 64
        while cap < b.n + n:
            cap *= 2
        grown = <Entry*>realloc(b.data, cap * sizeof(Entry))
        if grown == NULL:
            raise MemoryError()
        b.data = grown
        b.cap = cap
    if n:
        memcpy(b.data + b.n, es, n * sizeof(Entry))
    b.n += n
    return 0


cdef inline Entry entry(int k, int line) noexcept:
    cdef Entry e
    e.k = k
    e.line = line
    e.disc = 0
    e.pmon = 0
    e.ppts = 0
    e.acc = 0
    e.ship = 0
    e.text = 0
    return e


cdef inline Buf view(Buf* b, int start) noexcept:
    """The entries of `b` from `start` on, as a Buf that cuts may rewrite but never grow."""
    cdef Buf v
    v.data = b.data + start
    v.n = b.n - start
    v.cap = v.n
    return v


cdef object _int128(i128 v):
    """`v` as a Python integer (Cython sees i128 as long long: converted by halves)."""
    return (<object>i128_hi(v) << 64) + <object>i128_lo(v)


# --- money.py's arithmetic, the same formulas on C integers --------------------------------------

cdef inline bint _saturated(Entry* x) noexcept:
    """Whether an entry holds a value that left int64 (saturated by `arbiter_fit`)."""
    return (x.disc == I64_MAX or x.pmon == I64_MAX or x.ppts == I64_MAX or x.acc == I64_MAX
            or x.ship == I64_MAX or x.disc == NEG or x.acc == NEG)


cdef inline i64 round_bp(i64 x, i64 bp) noexcept:
    return round_bp_c(x, bp, HALF_BP, BP)


cdef inline i64 div_half_up(i64 num, i64 den) noexcept:
    return mul_half_up(num, 1, den)


cdef inline i64 revalue(i64 pts, i64 rp, i64 rm) noexcept:
    """Money of whole points, half up."""
    return mul_half_up(pts, rm, rp)


cdef struct Rank:
    i64 rem
    int i


cdef int _rank_cmp(const void* a, const void* b) noexcept nogil:
    cdef const Rank* x = <const Rank*>a
    cdef const Rank* y = <const Rank*>b
    if x.rem != y.rem:
        return -1 if x.rem > y.rem else 1
    return -1 if x.i < y.i else (1 if x.i > y.i else 0)


cdef int apportion(i64 amount, i64* weights, i64* shares, int n) except -1:
    """Largest remainder (money.apportion): `amount` over `weights` (>= 0) into `shares`, each
    the floor of its exact part, the units left one each to the largest remainders, ties to the
    earlier item; all 0 when the weights sum to 0."""
    cdef i64 total = 0
    cdef i64 given = 0
    cdef i64 left
    cdef int i, m
    cdef Rank* ranks
    for i in range(n):
        total += weights[i]
    if total <= 0 or amount == 0:
        memset(shares, 0, n * sizeof(i64))
        return 0
    for i in range(n):
        shares[i] = muldiv(amount, weights[i], total)
        given += shares[i]
    left = amount - given
    if left <= 0:
        return 0
    ranks = <Rank*>malloc(n * sizeof(Rank))
    if ranks == NULL:
        raise MemoryError()
    m = 0
    for i in range(n):
        ranks[m].rem = mulmod(amount, weights[i], total)
        ranks[m].i = i
        m += 1
    qsort(ranks, m, sizeof(Rank), _rank_cmp)
    for i in range(left):
        shares[ranks[i].i] += 1
    free(ranks)
    return 0


# --- the program's tables ---------------------------------------------------------------------

cdef class Tables:
    """A compiled program's benefits and tree as C structs (built once per program)."""

    cdef int K, N, T
    cdef Ben* bens
    cdef Node* nodes
    cdef int* kids
    cdef object node_index  # id(CNode) -> its index
    cdef object cnodes  # the CNode objects (kept alive for node_index)
    cdef object cbens  # program.benefits
    cdef int safe  # every configured amount fits
    # What a benefit's result rows name (rule 17), per benefit: its promotion's id, kind and
    # promo code pool, its kind, the id of its point type ("" if none) and an accrual's timing
    # ("" on other rows).
    cdef list promotion_id
    cdef list promotion_kind
    cdef list pool
    cdef list kind_name
    cdef list type_id
    cdef list timing
    cdef list point_type_ids  # per point type
    cdef i64* rp  # per point type: its ratio (points, money)
    cdef i64* rm

    def __dealloc__(self):
        free(self.bens)
        free(self.nodes)
        free(self.kids)
        free(self.rp)
        free(self.rm)


cdef Tables tables_of(program):
    cached = program.native.get("core")
    if cached is not None:
        return <Tables>cached
    cdef Tables tb = Tables()
    cdef Ben* b
    cdef Node* nd
    cdef int k, i
    from arbiter.server.engine.compile import ROUND_STEP

    benefits = program.benefits
    tb.K = len(benefits)
    tb.T = max(len(program.point_types), 1)
    tb.bens = <Ben*>calloc(tb.K + 1, sizeof(Ben))
    if tb.bens == NULL:
        raise MemoryError()
    tb.cbens = benefits
    tb.safe = 1
    promotions = program.promotions
    tb.point_type_ids = [pt.id for pt in program.point_types]
    tb.promotion_id = [promotions[cb.promotion].id for cb in benefits]
    tb.promotion_kind = [promotions[cb.promotion].kind for cb in benefits]
    tb.pool = [promotions[cb.promotion].pool for cb in benefits]
    tb.kind_name = [cb.kind for cb in benefits]
    tb.type_id = [tb.point_type_ids[cb.point_type] if cb.point_type >= 0 else "" for cb in benefits]
    tb.timing = [
        ("ON_DELIVERY" if cb.timing == ON_DELIVERY else "ON_CREATE") if cb.is_accrual else ""
        for cb in benefits
    ]
    for k in range(tb.K):
        cb = benefits[k]
        b = &tb.bens[k]
        b.kind = _KINDS[cb.kind]
        b.vk = _VALUE_KINDS.get(cb.value_kind, V_POINTS)
        b.product = 1 if cb.level == 0 else 0
        b.point_type = cb.point_type if cb.point_type >= 0 else 0
        b.pays = 1 if b.kind == K_PAY else 0
        b.accrues = 1 if cb.is_accrual else 0
        b.on_delivery = 1 if cb.is_accrual and cb.timing == ON_DELIVERY else 0
        b.rule = cb.rule_gid
        b.raises = 1 if b.kind == K_ROUND else 0
        if not (-SAFE < cb.value < SAFE and 0 <= cb.max_items < SAFE and 0 <= cb.factor_bp < SAFE
                and 0 <= cb.per_amount < SAFE):
            tb.safe = 0
            continue
        b.value = cb.value
        b.max_items = cb.max_items
        b.per_amount = cb.per_amount
        b.factor_bp = cb.factor_bp
        if b.kind == K_PER_SPENT and b.per_amount <= 0:
            tb.safe = 0
        if b.kind == K_ROUND:
            step, floor = ROUND_STEP[cb.round_mode]
            b.step = step
            b.floor = 1 if floor else 0
    tb.rp = <i64*>calloc(tb.T + 1, sizeof(i64))
    tb.rm = <i64*>calloc(tb.T + 1, sizeof(i64))
    if tb.rp == NULL or tb.rm == NULL:
        raise MemoryError()
    tb.rp[0] = 1
    tb.rm[0] = 1
    for i, pt in enumerate(program.point_types):
        if not (0 < pt.ratio_points < SAFE and 0 < pt.ratio_money < SAFE):
            tb.safe = 0
        else:
            tb.rp[i] = pt.ratio_points
            tb.rm[i] = pt.ratio_money
    # The tree in preorder; a node's children are a range of `kids`.
    order = []
    stack = [program.root]
    while stack:
        node = stack.pop()
        order.append(node)
        stack.extend(reversed(node.children))
    tb.N = len(order)
    tb.cnodes = tuple(order)
    tb.node_index = {id(node): i for i, node in enumerate(order)}
    tb.nodes = <Node*>calloc(tb.N + 1, sizeof(Node))
    n_kids = sum(len(node.children) for node in order)
    tb.kids = <int*>calloc(n_kids + 1, sizeof(int))
    if tb.nodes == NULL or tb.kids == NULL:
        raise MemoryError()
    j = 0
    for i in range(tb.N):
        node = order[i]
        nd = &tb.nodes[i]
        nd.promotion = node.promotion
        nd.mode = node.mode
        nd.lo = node.lo
        nd.hi = node.hi
        nd.seq = 1 if node.promotion >= 0 and program.promotions[node.promotion].sequential else 0
        nd.has_limits = 1 if node.has_limits else 0
        if not (0 <= node.max_discount_amount < SAFE and 0 <= node.min_unit_price < SAFE
                and 0 <= node.max_discount_bp < SAFE and 0 <= node.min_unit_price_bp < SAFE):
            tb.safe = 0
        else:
            nd.max_bp = node.max_discount_bp
            nd.max_amount = node.max_discount_amount
            nd.mup = node.min_unit_price
            nd.mup_bp = node.min_unit_price_bp
        nd.child_lo = j
        for child in node.children:
            tb.kids[j] = tb.node_index[id(child)]
            j += 1
        nd.child_hi = j
        if nd.mode == M_MAX_BENEFIT and nd.child_hi - nd.child_lo > MAX_BENEFIT_CHILDREN:
            tb.safe = 0
    program.native["core"] = tb
    return tb


# --- one calculation --------------------------------------------------------------------------

cdef class Calc:
    """One calculation: the order's arrays, the rules' lines, and the tree evaluated on them."""

    cdef Tables tb
    cdef int L, T, K
    cdef Selection selection  # the rules' lines are read from its bit sets
    cdef const uint8_t* rule_active  # the selection's flags, per rule and per promotion
    cdef const uint8_t* promotion_live
    cdef object order_lines
    cdef object program
    cdef i64* q
    cdef i64* base
    cdef i64* base_unit
    cdef i64* rp  # the tables' (borrowed)
    cdef i64* rm
    cdef int* accrues
    # per benefit: 0 not yet looked at, 1 its rule applies (lines fetched), 2 it does not
    cdef unsigned char* bstate
    cdef int* lines_lo  # per benefit: its matching lines (and values) in flines / fvals
    cdef int* lines_hi
    cdef int* flines
    cdef i64* fvals  # per matching line a value: the field (price_from_field, accrue_from_field)
    cdef int f_n, f_cap  # or the partner's basis points (partner benefits)
    cdef signed char* nlive  # per node: -1 not yet known, else whether a promotion under it is live
    cdef i64* tmp_a
    cdef i64* tmp_b
    cdef int* tmp_i
    cdef int tmp_size
    cdef i64* added  # per line
    cdef Buf result
    cdef St s0

    def __dealloc__(self):
        free(self.q); free(self.base); free(self.base_unit)
        free(self.accrues); free(self.bstate); free(self.lines_lo); free(self.lines_hi)
        free(self.flines); free(self.fvals); free(self.nlive)
        free(self.tmp_a); free(self.tmp_b); free(self.tmp_i); free(self.added)
        free(self.result.data)
        free(self.s0.pay)

    cdef int ensure_tmp(self, int n) except -1:
        """Scratch arrays of at least `n` items (they only grow)."""
        if n <= self.tmp_size:
            return 0
        n = max(n, 2 * self.tmp_size)
        self.tmp_a = <i64*>realloc(self.tmp_a, n * sizeof(i64))
        self.tmp_b = <i64*>realloc(self.tmp_b, n * sizeof(i64))
        self.tmp_i = <int*>realloc(self.tmp_i, n * sizeof(int))
        if self.tmp_a == NULL or self.tmp_b == NULL or self.tmp_i == NULL:
            raise MemoryError()
        self.tmp_size = n
        return 0

    # --- states ---------------------------------------------------------------------------

    cdef int new_state(self, St* out) except -1:
        cdef i64* block = <i64*>malloc((2 * self.L + self.T + 1) * sizeof(i64))
        if block == NULL:
            raise MemoryError()
        out.pay = block
        out.pm = block + self.L
        out.budget = block + 2 * self.L
        out.ship = 0
        return 0

    cdef void copy_state(self, St* dst, St* src) noexcept:
        memcpy(dst.pay, src.pay, self.L * sizeof(i64))
        memcpy(dst.pm, src.pm, self.L * sizeof(i64))
        memcpy(dst.budget, src.budget, self.T * sizeof(i64))
        dst.ship = src.ship

    cdef void apply(self, St* s, Entry* es, int n, int sign) noexcept:
        """Entries applied to a state (sign 1), or taken back (sign -1)."""
        cdef int i
        cdef Entry* x
        for i in range(n):
            x = es + i
            if x.line < self.L:
                s.pay[x.line] -= sign * (x.disc + x.pmon)
                s.pm[x.line] += sign * x.pmon
                if x.ppts:
                    s.budget[self.tb.bens[x.k].point_type] -= sign * x.ppts
            else:
                s.ship -= sign * x.ship

    # --- the rules' lines -------------------------------------------------------------------

    cdef int fetch(self, int k) except -1:
        """Whether benefit k's rule applies (1) or not (2); its matching lines fetched."""
        cdef int st = self.bstate[k]
        cdef Ben* b
        cdef int n, lo, kind, w, words, line
        cdef i64 v
        cdef uint64_t word
        cdef uint64_t* mask
        if st:
            return st
        b = &self.tb.bens[k]
        if not self.rule_active[b.rule]:
            self.bstate[k] = 2
            return 2
        self.bstate[k] = 1
        if not b.product:
            return 1
        # its lines: the set bits of its scope in the selection, ascending
        mask = self.selection.rule_bits(b.rule)
        words = self.selection.line_words
        n = self.selection.n_lines  # at most every line
        if self.f_n + n > self.f_cap:
            self.f_cap = max(2 * self.f_cap, self.f_n + n, 256)
            self.flines = <int*>realloc(self.flines, self.f_cap * sizeof(int))
            self.fvals = <i64*>realloc(self.fvals, self.f_cap * sizeof(i64))
            if self.flines == NULL or self.fvals == NULL:
                raise MemoryError()
        lo = self.f_n
        kind = b.kind
        if kind == K_FIELD_PRICE or kind == K_FROM_FIELD or kind == K_PARTNER_DISC \
                or kind == K_PARTNER_PTS:
            cb = self.tb.cbens[k]
            order_lines = self.order_lines
            if kind == K_PARTNER_DISC or kind == K_PARTNER_PTS:
                table = (self.program.partner_discount_bp if kind == K_PARTNER_DISC
                         else self.program.partner_points_bp)
                partners = cb.partners
            name = cb.field
            for w in range(words):
                word = mask[w]
                while word:
                    line = (w << 6) + ctz(word)
                    word &= word - 1
                    ol = order_lines[line]
                    if kind == K_FIELD_PRICE:
                        # a line without the field is unaffected
                        fields = line_field(ol, LINE_FIELDS)
                        if name not in fields:
                            continue
                        v = _checked(fields[name], I64_MAX)
                    elif kind == K_FROM_FIELD:
                        # a negative field accrues nothing (accruals never take points back)
                        v = _checked(max(line_field(ol, LINE_FIELDS).get(name, 0), 0), I64_MAX)
                    else:
                        partner = line_field(ol, LINE_PARTNER)
                        v = _checked(table.get(partner, 0) if partner in partners else 0, I64_MAX)
                    self.flines[self.f_n] = line
                    self.fvals[self.f_n] = v
                    self.f_n += 1
        else:
            for w in range(words):
                word = mask[w]
                while word:
                    self.flines[self.f_n] = (w << 6) + ctz(word)
                    self.f_n += 1
                    word &= word - 1
        self.lines_lo[k] = lo
        self.lines_hi[k] = self.f_n
        return 1

    cdef bint live(self, int ni) except -1:
        """Whether a promotion under node `ni` is eligible with a rule that applies."""
        cdef Node* nd = &self.tb.nodes[ni]
        cdef int c
        cdef signed char v
        if nd.promotion >= 0:
            return self.promotion_live[nd.promotion] != 0
        v = self.nlive[ni]
        if v < 0:
            v = 0
            for c in range(nd.child_lo, nd.child_hi):
                if self.live(self.tb.kids[c]):
                    v = 1
                    break
            self.nlive[ni] = v
        return v == 1

    # --- benefits (docs/rules.md, The benefits) ---------------------------------------------

    cdef int units(self, Ben* b, i64* pay, int* lines, int m, i64* prices, i64* units) except -1:
        """Price to pay and units each matching line gives to `b`: all of them, or with
        `max_items` the most expensive units first (rules 1, 10)."""
        cdef int i, j, x, line
        cdef i64 left
        cdef int* order = self.tmp_i
        if not b.max_items:
            for i in range(m):
                prices[i] = pay[lines[i]]
                units[i] = self.q[lines[i]]
            return 0
        # Most expensive units first, ties to the earlier line (insertion sort: few lines).
        for i in range(m):
            x = i
            j = i
            while j > 0 and self._before(pay, lines, x, order[j - 1]):
                order[j] = order[j - 1]
                j -= 1
            order[j] = x
        for i in range(m):
            units[i] = 0
        left = b.max_items
        for j in range(m):
            if left <= 0:
                break
            i = order[j]
            units[i] = self.q[lines[i]] if self.q[lines[i]] < left else left
            left -= units[i]
        for i in range(m):
            line = lines[i]
            prices[i] = mul_half_up(pay[line], units[i], self.q[line])
        return 0

    cdef inline bint _before(self, i64* pay, int* lines, int a, int b) noexcept:
        cdef i128 x = <i128>pay[lines[a]] * self.q[lines[b]]
        cdef i128 y = <i128>pay[lines[b]] * self.q[lines[a]]
        return x > y or (x == y and a < b)

    cdef int benefit(self, int k, St* s, Buf* out) except -1:
        """What benefit `k` does on `s`, appended to `out` as non-empty entries."""
        cdef Ben* b = &self.tb.bens[k]
        cdef int* lines
        cdef i64* vals
        cdef int m, i, line, t
        cdef i64 d, pts, total, cap, money, budget, p, qs, n_steps, unit, top
        cdef i64* pay = s.pay
        cdef i64* prices = self.tmp_a
        cdef i64* units = self.tmp_b
        cdef Entry e
        cdef int L = self.L
        if self.fetch(k) != 1:  # its rule does not apply to the order
            return 0
        if b.product:
            lines = self.flines + self.lines_lo[k]
            vals = self.fvals + self.lines_lo[k]
            m = self.lines_hi[k] - self.lines_lo[k]
            if b.kind == K_TEXT:
                for i in range(m):
                    e = entry(k, lines[i])
                    e.text = 1
                    buf_push(out, e)
            elif b.kind == K_ACCRUE or b.kind == K_PARTNER_PTS or b.kind == K_FROM_FIELD:
                t = b.point_type
                if not self.accrues[t]:
                    return 0
                for i in range(m):
                    line = lines[i]
                    if b.kind == K_FROM_FIELD:
                        pts = mul_floor(vals[i], self.q[line], 1)
                    elif b.kind == K_PARTNER_PTS:
                        if vals[i] <= 0:
                            continue
                        pts = mul_half_up(round_bp(pay[line], vals[i]), self.rp[t], self.rm[t])
                    elif b.vk == V_PERCENT:
                        pts = mul_half_up(round_bp(pay[line], b.value), self.rp[t], self.rm[t])
                    else:
                        pts = mul_floor(self.q[line], b.value, 1)
                    if pts:
                        e = entry(k, line)
                        e.acc = pts
                        buf_push(out, e)
            elif b.kind == K_PER_SPENT:
                t = b.point_type
                if not self.accrues[t]:
                    return 0
                total = 0
                for i in range(m):
                    prices[i] = pay[lines[i]]
                    total += prices[i]
                apportion(mul_floor(total // b.per_amount, b.value, 1), prices, units, m)
                for i in range(m):
                    if units[i]:
                        e = entry(k, lines[i])
                        e.acc = units[i]
                        buf_push(out, e)
            elif b.kind == K_DISCOUNT:
                if b.vk == V_PERCENT and not b.max_items:
                    for i in range(m):
                        d = round_bp(pay[lines[i]], b.value)
                        if d:
                            e = entry(k, lines[i])
                            e.disc = d
                            buf_push(out, e)
                    return 0
                self.units(b, pay, lines, m, prices, units)
                for i in range(m):
                    if b.vk == V_PERCENT:
                        d = round_bp(prices[i], b.value)
                    elif b.vk == V_AMOUNT:
                        d = mul_sat(b.value, units[i])
                        if d > prices[i]:
                            d = prices[i]
                    else:
                        d = prices[i] - mul_sat(b.value, units[i])
                        if d < 0:
                            d = 0
                    if d:
                        e = entry(k, lines[i])
                        e.disc = d
                        buf_push(out, e)
            elif b.kind == K_PAY:
                self.pay_lines(k, b, s, lines, m, out)
            elif b.kind == K_FIELD_PRICE:
                # rule 15: the unit price becomes the field times factor_bp where that is lower
                for i in range(m):
                    line = lines[i]
                    unit = round_bp_sat_c(vals[i], b.factor_bp, HALF_BP, BP)
                    d = pay[line] - mul_sat(unit, self.q[line])
                    if d > 0:
                        e = entry(k, line)
                        e.disc = d
                        buf_push(out, e)
            elif b.kind == K_ROUND:
                # rule 14: may raise the price, never above the base less the points paid
                for i in range(m):
                    line = lines[i]
                    p = pay[line]
                    qs = self.q[line] * b.step
                    n_steps = p // qs if b.floor else (2 * p + qs) // (2 * qs)
                    top = self.base[line] - s.pm[line]
                    d = p - (n_steps * qs if n_steps * qs < top else top)
                    if d:
                        e = entry(k, line)
                        e.disc = d
                        buf_push(out, e)
            else:  # K_PARTNER_DISC
                for i in range(m):
                    d = round_bp(pay[lines[i]], vals[i])
                    if d:
                        e = entry(k, lines[i])
                        e.disc = d
                        buf_push(out, e)
            return 0
        # ORDER level
        if b.kind == K_TEXT:
            e = entry(k, L)
            e.text = 1
            buf_push(out, e)
            return 0
        if b.kind == K_SHIP:
            d = round_bp(s.ship, b.value) if b.vk == V_PERCENT else min(b.value, s.ship)
            if d:
                e = entry(k, L)
                e.ship = d
                buf_push(out, e)
            return 0
        total = 0
        for i in range(L):
            total += pay[i]
        if b.kind == K_DISCOUNT:
            d = round_bp(total, b.value) if b.vk == V_PERCENT else min(b.value, total)
            apportion(d, pay, prices, L)
            for i in range(L):
                if prices[i]:
                    e = entry(k, i)
                    e.disc = prices[i]
                    buf_push(out, e)
            return 0
        if b.kind == K_ACCRUE or b.kind == K_PER_SPENT:
            t = b.point_type
            if not self.accrues[t]:
                return 0
            if b.kind == K_ACCRUE:
                if b.vk == V_PERCENT:
                    pts = mul_half_up(round_bp(total, b.value), self.rp[t], self.rm[t])
                else:
                    pts = b.value
            else:
                pts = mul_floor(total // b.per_amount, b.value, 1)
            if pts:
                e = entry(k, L)
                e.acc = pts
                buf_push(out, e)
            return 0
        if b.kind != K_PAY:
            raise AssertionError(f"benefit kind {b.kind} has no order-level form")
        # rule 8 at ORDER level: the order's cap in whole points, bounded by the budget,
        # apportioned by the lines' prices to pay; what a line cannot hold is dropped
        t = b.point_type
        budget = s.budget[t]
        if budget <= 0:
            return 0
        if b.vk == V_PERCENT:
            cap = mul_floor(min(round_bp(total, b.value), total), self.rp[t], self.rm[t])
        elif b.vk == V_AMOUNT:
            cap = mul_floor(min(b.value, total), self.rp[t], self.rm[t])
        else:
            cap = min(b.value, mul_floor(total, self.rp[t], self.rm[t]))
        apportion(min(cap, budget), pay, prices, L)
        for i in range(L):
            pts = prices[i]
            money = revalue(pts, self.rp[t], self.rm[t])
            if money > pay[i]:
                pts = mul_floor(pay[i], self.rp[t], self.rm[t])
                money = min(revalue(pts, self.rp[t], self.rm[t]), pay[i])
            if pts or money:
                e = entry(k, i)
                e.pmon = money
                e.ppts = pts
                buf_push(out, e)
        return 0

    cdef int pay_lines(self, int k, Ben* b, St* s, int* lines, int m, Buf* out) except -1:
        """Rule 8 at PRODUCT level."""
        cdef int t = b.point_type
        cdef i64 budget = s.budget[t]
        cdef i64 rp = self.rp[t]
        cdef i64 rm = self.rm[t]
        cdef i64* prices = self.tmp_a
        cdef i64* units = self.tmp_b
        cdef i64* caps_money
        cdef i64* caps_pts
        cdef i64 p, n, cap, pts, total, money
        cdef int i
        cdef Entry e
        if budget <= 0:
            return 0
        self.units(b, s.pay, lines, m, prices, units)
        caps_money = units + m  # tmp_b holds 3 * L: units, then the two caps
        caps_pts = units + 2 * m
        total = 0
        for i in range(m):
            p = prices[i]
            n = units[i]
            if b.vk == V_PERCENT:
                cap = min(round_bp(p, b.value), p)
                pts = mul_floor(cap, rp, rm)
            elif b.vk == V_AMOUNT:
                cap = min(mul_sat(b.value, n), p)
                pts = mul_floor(cap, rp, rm)
            else:
                cap = p
                pts = min(mul_sat(b.value, n), mul_floor(p, rp, rm))
            caps_money[i] = cap
            caps_pts[i] = pts
            total += pts
        if total > budget:
            apportion(budget, caps_pts, prices, m)  # prices are no longer needed
            memcpy(caps_pts, prices, m * sizeof(i64))
        for i in range(m):
            pts = caps_pts[i]
            money = min(revalue(pts, rp, rm), caps_money[i])
            if pts or money:
                e = entry(k, lines[i])
                e.pmon = money
                e.ppts = pts
                buf_push(out, e)
        return 0

    # --- nodes (docs/rules.md, Arbitration) -------------------------------------------------

    cdef int node(self, int ni, St* s, Buf* out) except -1:
        """The effect of node `ni` on `s`, appended to `out`."""
        cdef Node* nd = &self.tb.nodes[ni]
        cdef int start = out.n
        cdef int c, nc
        cdef int* offsets
        if nd.promotion >= 0:
            if not self.promotion_live[nd.promotion]:
                return 0
            return self.promotion(nd, s, out)
        if not self.live(ni):
            return 0
        if nd.mode == M_MAX_BENEFIT:
            return self.max_benefit(ni, s, out)
        if nd.mode == M_SEQUENTIAL:
            self.sequence(nd, s, out)
        else:
            nc = nd.child_hi - nd.child_lo
            if nd.mode == M_INCOMPATIBLE:
                offsets = <int*>malloc((nc + 1) * sizeof(int))
                if offsets == NULL:
                    raise MemoryError()
                try:
                    for c in range(nc):
                        offsets[c] = out.n
                        self.node(self.tb.kids[nd.child_lo + c], s, out)
                    offsets[nc] = out.n
                    self.first_eligible(out, offsets, nc)
                finally:
                    free(offsets)
            else:  # SUMMATION
                for c in range(nd.child_lo, nd.child_hi):
                    self.node(self.tb.kids[c], s, out)
            self.valid_from(out, start, s)
        if nd.has_limits and out.n > start:
            self.limits_from(nd, out, start, s)
        return 0

    cdef int promotion(self, Node* nd, St* s, Buf* out) except -1:
        cdef int start = out.n
        cdef int j
        if nd.hi - nd.lo == 1:
            return self.benefit(nd.lo, s, out)
        if nd.seq:
            return self.in_sequence(nd.lo, nd.hi, False, s, out)
        for j in range(nd.lo, nd.hi):
            self.benefit(j, s, out)
        # One benefit's effect is valid by construction; a sum is made valid (rule 6).
        self.valid_from(out, start, s)
        return 0

    cdef int sequence(self, Node* nd, St* s, Buf* out) except -1:
        """Children one after another, each on the state the previous ones left."""
        return self.in_sequence(nd.child_lo, nd.child_hi, True, s, out)

    cdef int in_sequence(self, int lo, int hi, bint nodes, St* s, Buf* out) except -1:
        """Steps lo..hi-1 one after another, each on the state the previous ones left: the
        children `tb.kids[lo:hi]` of a SEQUENTIAL group (`nodes`) or the benefits lo..hi-1 of
        a promotion applying them in sequence. The running state is copied from `s` at the
        first effect, then updated in place."""
        cdef int j, m
        cdef St own
        cdef St* cur = s
        own.pay = NULL
        try:
            for j in range(lo, hi):
                m = out.n
                if nodes:
                    self.node(self.tb.kids[j], cur, out)
                else:
                    self.benefit(j, cur, out)
                if out.n > m and j + 1 < hi:
                    if own.pay == NULL:
                        self.new_state(&own)
                        self.copy_state(&own, s)
                        cur = &own
                    self.apply(cur, out.data + m, out.n - m, 1)
        finally:
            free(own.pay)
        return 0

    cdef int first_eligible(self, Buf* out, int* offsets, int nc) except -1:
        """INCOMPATIBLE: per line the first child's PRODUCT entries, and the ORDER entries of
        the first child that has any (rules 4, 5), kept in place."""
        cdef int* taken = <int*>calloc(self.L + 1, sizeof(int))
        cdef int order_owner = -1
        cdef int c, i, w
        cdef Entry* x
        if taken == NULL:
            raise MemoryError()
        w = offsets[0]
        for c in range(nc):
            for i in range(offsets[c], offsets[c + 1]):
                x = out.data + i
                if self.tb.bens[x.k].product:
                    if taken[x.line] == 0:
                        taken[x.line] = c + 1
                    if taken[x.line] != c + 1:
                        continue
                else:
                    if order_owner < 0:
                        order_owner = c
                    if order_owner != c:
                        continue
                out.data[w] = x[0]
                w += 1
        out.n = w
        free(taken)
        return 0

    cdef int valid_from(self, Buf* out, int start, St* s) except -1:
        """The entries from `start` on, a sum of effects on `s`, made valid (rule 6)."""
        cdef Buf v
        if out.n - start < 2:
            return 0
        v = view(out, start)
        if make_valid(self, &v, s):
            drop_empty(&v)
            out.n = start + v.n
        return 0

    cdef int limits_from(self, Node* nd, Buf* out, int start, St* s) except -1:
        """Node `nd`'s limits on what the entries from `start` on add to `s` (rule 11)."""
        cdef Buf v = view(out, start)
        if apply_limits(self, &v, s.pay, nd.max_bp, nd.max_amount, nd.mup, nd.mup_bp):
            drop_empty(&v)
            out.n = start + v.n
        return 0

    cdef int max_benefit(self, int ni, St* s, Buf* out) except -1:
        """MAX_BENEFIT (rule 12) on `s`: the children evaluated on `s` (an empty child takes
        part in no subset), then the search."""
        cdef Node* nd = &self.tb.nodes[ni]
        cdef int start = out.n
        cdef int c, n = 0, m
        cdef int kids[32]
        cdef int lo[33]
        cdef Search se
        for c in range(nd.child_lo, nd.child_hi):
            m = out.n
            self.node(self.tb.kids[c], s, out)
            if out.n > m:
                kids[n] = self.tb.kids[c]
                lo[n] = m
                n += 1
        lo[n] = out.n
        if n == 0:
            return 0
        se = Search()
        se.setup(self, nd, s, kids, n, out.data, lo)
        out.n = start
        se.walk(0, 0)
        buf_extend(out, se.best.data, se.best.n)
        return 0

    cdef object valued(self, int ni, St* s):
        """MAX_BENEFIT group `ni` on `s` searched for the decision trace: None when no child
        has an effect, else (the chosen children's positions in the group, whether in
        sequence, the number of candidates, the runner-up's value or NEG)."""
        cdef Node* nd = &self.tb.nodes[ni]
        cdef Buf effects
        cdef int c, n = 0, m
        cdef int kids[32]
        cdef int pos[32]
        cdef int lo[33]
        cdef Search se
        effects.data = NULL
        effects.n = 0
        effects.cap = 0
        try:
            for c in range(nd.child_lo, nd.child_hi):
                if not self.live(self.tb.kids[c]):
                    continue
                m = effects.n
                self.node(self.tb.kids[c], s, &effects)
                if effects.n > m:
                    kids[n] = self.tb.kids[c]
                    pos[n] = c - nd.child_lo
                    lo[n] = m
                    n += 1
            lo[n] = effects.n
            if n == 0:
                return None
            se = Search()
            se.traced = 1
            se.setup(self, nd, s, kids, n, effects.data, lo)
        finally:
            free(effects.data)
        se.walk(0, 0)
        chosen = [pos[c] for c in range(n) if se.best_mask >> c & 1]
        # every non-empty subset summed, and every one of two or more children in sequence
        count = (1 << (n + 1)) - 2 - n
        return chosen, bool(se.best_seq) and len(chosen) > 1, count, _int128(se.runner_up)

    # --- results ---------------------------------------------------------------------------

    def report(self, order, dict requested, bint packed=False):
        """The result's rows, line results, totals and points (docs/contract.md, rules 17, 18,
        22), and what the texts and promo codes need: a `Report`. `packed`: the rows as one
        bytes object of `PACKED_ROW` records instead of AppliedBenefit tuples, and the line
        results as one of `PACKED_LINE` records instead of LineResult tuples (for an encoder
        that writes them without a Python object per row; `row_names` gives what rows name)."""
        global overflow_flag
        cdef Tables tb = self.tb
        cdef int L = self.L
        cdef int T = len(tb.point_type_ids)
        cdef int n = self.result.n
        cdef int i, j, at_line, k, t
        cdef int* start
        cdef int* begin
        cdef int* order_
        cdef Entry* x
        cdef Entry* es = self.result.data
        cdef i64* disc_by_line
        cdef i64* pmon_by_line
        cdef i64* redeemed
        cdef i64* accrued
        cdef i64* pending
        cdef i64 shipping_discount = 0
        cdef i64 subtotal = 0, discount = 0, paid = 0, items = 0, base, final, q, d, p
        cdef i64 unit, r, shipping, total
        cdef list rows = []
        cdef list shown = []
        cdef list line_results = []
        cdef Report out = Report()
        cdef i64* prow = NULL  # packed: PACKED_ROW_WIDTH int64 per row
        cdef i64* pline = NULL  # packed: PACKED_LINE_WIDTH int64 per line
        cdef i64* pl
        cdef int m = 0  # packed rows written
        lines = order.lines
        line_ids = None if packed else [line.id for line in lines]
        start = <int*>calloc(2 * L + 4, sizeof(int))
        order_ = <int*>malloc((n + 1) * sizeof(int))
        disc_by_line = _zeros(L)
        pmon_by_line = _zeros(L)
        redeemed = _zeros(T)
        accrued = _zeros(T)
        pending = _zeros(T)
        if packed:
            prow = <i64*>malloc((n + 1) * PACKED_ROW_WIDTH * sizeof(i64))
            pline = <i64*>malloc((L + 1) * PACKED_LINE_WIDTH * sizeof(i64))
        try:
            if start == NULL or order_ == NULL or (packed and (prow == NULL or pline == NULL)):
                raise MemoryError()
            # Rule 17's order: by line in the order's line order, order-wide rows last, then
            # tree order (a counting sort by line; each line's entries sorted by benefit).
            for i in range(n):
                start[es[i].line + 1] += 1
            begin = start + L + 2  # where each line's entries begin
            for i in range(L + 1):
                start[i + 1] += start[i]
            memcpy(begin, start, (L + 2) * sizeof(int))
            for i in range(n):
                at_line = es[i].line
                j = start[at_line]
                # insertion by benefit within the line (entries mostly come in tree order)
                while j > begin[at_line] and es[order_[j - 1]].k > es[i].k:
                    order_[j] = order_[j - 1]
                    j -= 1
                order_[j] = i
                start[at_line] += 1
            for i in range(n):
                x = es + order_[i]
                k = x.k
                at_line = x.line
                if _saturated(x):
                    overflow_flag = 1  # the result holds a value int64 cannot: refused
                if x.text:
                    shown.append(k)
                if at_line < L:
                    disc_by_line[at_line] += x.disc
                    pmon_by_line[at_line] += x.pmon
                    line_id = "" if packed else line_ids[at_line]
                else:
                    line_id = ""
                if x.ship:
                    shipping_discount += x.ship
                    if packed:
                        _pack(prow, &m, k, -1, x.ship, 0, ROW_SHIPPING)
                    else:
                        rows.append(_row(tb, k, "", x.ship, 0, "", ""))
                elif x.disc:
                    if packed:
                        _pack(prow, &m, k, at_line if at_line < L else -1, x.disc, 0,
                              ROW_DISCOUNT)
                    else:
                        rows.append(_row(tb, k, line_id, x.disc, 0, "", ""))
                elif x.pmon or x.ppts:
                    redeemed[tb.bens[k].point_type] += x.ppts
                    if packed:
                        _pack(prow, &m, k, at_line if at_line < L else -1, x.pmon, x.ppts,
                              ROW_PAYMENT)
                    else:
                        rows.append(_row(tb, k, line_id, x.pmon, x.ppts, tb.type_id[k], ""))
                elif x.acc:
                    if tb.bens[k].on_delivery:
                        add_to(&pending[tb.bens[k].point_type], x.acc)
                    else:
                        add_to(&accrued[tb.bens[k].point_type], x.acc)
                    if packed:
                        _pack(prow, &m, k, at_line if at_line < L else -1, 0, x.acc,
                              ROW_ACCRUAL)
                    else:
                        rows.append(_row(tb, k, line_id, 0, x.acc, tb.type_id[k], tb.timing[k]))
            for i in range(L):
                q = self.q[i]
                base = self.base[i]
                d = disc_by_line[i]
                p = pmon_by_line[i]
                final = base - d - p
                subtotal += base
                discount += d
                paid += p
                items += q
                # receipt portions (docs/rules.md): r units at final // q + 1, then q - r
                if packed:
                    pl = pline + i * PACKED_LINE_WIDTH
                    pl[0] = base
                    pl[1] = d
                    pl[2] = p
                    pl[3] = final
                    pl[4] = pl[5] = pl[6] = pl[7] = 0
                    if q > 0:
                        unit = final // q
                        r = final % q
                        if r:
                            pl[4] = r
                            pl[5] = unit + 1
                            pl[6] = q - r
                            pl[7] = unit
                        else:
                            pl[4] = q
                            pl[5] = unit
                    continue
                if q <= 0:
                    portions = ()
                else:
                    unit = final // q
                    r = final % q
                    if r:
                        portions = ((r, unit + 1), (q - r, unit))
                    else:
                        portions = ((q, unit),)
                line_results.append(
                    _tuple_of(LineResult, (line_ids[i], base, d, p, final, portions))
                )
            shipping = order.shipping_cost
            total = subtotal - discount - paid + shipping - shipping_discount
            out.totals = _tuple_of(
                Totals, (subtotal, discount, paid, shipping, shipping_discount, total, items)
            )
            points = []
            for t in range(T):
                if accrued[t] == I64_MAX or pending[t] == I64_MAX:
                    overflow_flag = 1  # a saturated sum (shares of an accrual that left int64)
                type_id = tb.point_type_ids[t]
                asked = requested.get(type_id, 0)
                if asked or redeemed[t] or accrued[t] or pending[t]:
                    points.append(
                        _tuple_of(PointsChange, (type_id, asked, redeemed[t], accrued[t], pending[t]))
                    )
            out.redeemed = [redeemed[t] for t in range(T)]
            out.accrued = [accrued[t] + pending[t] for t in range(T)]
            if packed:
                out.rows = PyBytes_FromStringAndSize(
                    <char*>prow, m * PACKED_ROW_WIDTH * sizeof(i64)
                )
                out.lines = PyBytes_FromStringAndSize(
                    <char*>pline, L * PACKED_LINE_WIDTH * sizeof(i64)
                )
            else:
                out.rows = tuple(rows)
                out.lines = tuple(line_results)
        finally:
            free(start); free(order_); free(disc_by_line); free(pmon_by_line)
            free(redeemed); free(accrued); free(pending); free(prow); free(pline)
        out.points = tuple(points)
        out.texts = sorted({k for k in shown if tb.bens[k].kind == K_TEXT})
        return out

    def pools(self):
        """The promo code pools of the promotions with an entry in the result."""
        cdef int i
        cdef Tables tb = self.tb
        return {tb.pool[self.result.data[i].k] for i in range(self.result.n)}

    def entries(self):
        """The result's entries as `single.Entry` tuples (k, line, disc, pmon, ppts, acc, ship,
        text)."""
        cdef int i
        cdef Entry x
        out = []
        for i in range(self.result.n):
            x = self.result.data[i]
            out.append((x.k, x.line, x.disc, x.pmon, x.ppts, x.acc, x.ship, x.text != 0))
        return out


# --- packed rows ------------------------------------------------------------------------------

# A packed row (`Calc.report(packed=True)`): PACKED_ROW_WIDTH int64 in native byte order, the
# fields of PACKED_ROW in this order. `line` is the order line's index, -1 for an order-wide
# row (no line id); `kind` says which of the AppliedBenefit's fields the row fills: a discount
# or a shipping discount the amount; a payment with points the amount, the points and the point
# type; an accrual the points, the point type and the timing.
PACKED_ROW = ("benefit", "line", "amount", "points", "kind")
cdef enum:
    PACKED_ROW_WIDTH = 5
    ROW_DISCOUNT = 0
    ROW_SHIPPING = 1
    ROW_PAYMENT = 2
    ROW_ACCRUAL = 3
PACKED_ROW_KINDS = {
    "DISCOUNT": ROW_DISCOUNT,
    "SHIPPING": ROW_SHIPPING,
    "PAYMENT": ROW_PAYMENT,
    "ACCRUAL": ROW_ACCRUAL,
}

# A packed line result: PACKED_LINE_WIDTH int64 in native byte order per order line, in the
# order's line order, the LineResult's amounts and then its receipt portions as (quantity, unit
# price) pairs, a quantity of 0 where a line has fewer than two portions.
PACKED_LINE = (
    "base_price",
    "discount",
    "paid_with_points",
    "final_price",
    "portion1_quantity",
    "portion1_unit_price",
    "portion2_quantity",
    "portion2_unit_price",
)
cdef enum:
    PACKED_LINE_WIDTH = 8


cdef inline void _pack(i64* rows, int* m, int k, int line, i64 amount, i64 points,
                       int kind) noexcept:
    cdef i64* r = rows + m[0] * PACKED_ROW_WIDTH
    r[0] = k
    r[1] = line
    r[2] = amount
    r[3] = points
    r[4] = kind
    m[0] += 1


def row_names(program):
    """What each benefit's rows name (rule 17), by benefit index: its promotion's id and kind,
    its kind, its point type's id ("" if none) and an accrual's timing ("" for other kinds),
    exactly the strings of the AppliedBenefit rows."""
    cdef Tables tb = tables_of(program)
    return (
        tuple(tb.promotion_id),
        tuple(tb.promotion_kind),
        tuple(tb.kind_name),
        tuple(tb.type_id),
        tuple(tb.timing),
    )


cdef object _tuple_of(type cls, tuple values):
    """A named tuple of class `cls` holding `values`, without its __new__'s keyword handling."""
    cdef Py_ssize_t i, n = len(values)
    cdef object out = PyType_GenericAlloc(<PyTypeObject*>cls, n)
    for i in range(n):
        v = values[i]
        Py_INCREF(v)
        PyTuple_SET_ITEM(out, i, v)
    return out


cdef inline void _put(object t, Py_ssize_t i, object v) noexcept:
    Py_INCREF(v)
    PyTuple_SET_ITEM(t, i, v)


cdef object _row(Tables tb, int k, str line_id, i64 amount, i64 points, str point_type,
                 str timing):
    """One AppliedBenefit row (rule 17) of benefit k."""
    cdef object out = PyType_GenericAlloc(<PyTypeObject*>AppliedBenefit, 8)
    _put(out, 0, line_id)
    _put(out, 1, tb.promotion_id[k])
    _put(out, 2, tb.promotion_kind[k])
    _put(out, 3, tb.kind_name[k])
    _put(out, 4, amount)
    _put(out, 5, points)
    _put(out, 6, point_type)
    _put(out, 7, timing)
    return out


cdef class Report:
    """A calculation's result rows, line results, totals and points, and what its texts and
    codes read: per point type the points redeemed and accrued (both timings), and the text
    benefits shown, in tree order."""

    cdef public object rows
    cdef public object lines
    cdef public object totals
    cdef public object points
    cdef public list redeemed
    cdef public list accrued
    cdef public list texts


cdef i64 _checked(v, i64 bound=SAFE) except? -1:
    """`v` as a C integer; Declined unless -bound < v < bound."""
    cdef int overflow = 0
    cdef long long x
    if type(v) is int:  # read as C, without making Python integers of the bounds
        x = PyLong_AsLongLongAndOverflow(v, &overflow)
        if overflow or not (-bound < x < bound):
            raise Declined()
        return x
    if not (-bound < v < bound):
        raise Declined()
    return v


cdef Calc new_calc(single, s):
    """A calculation's C form, from the one-state evaluator and a state (raises Declined on
    an input beyond the core's range)."""
    cdef Calc c = Calc()
    cdef Tables tb = tables_of(single.program)
    cdef int t, i
    if not tb.safe:
        raise Declined()
    c.tb = tb
    c.program = single.program
    c.L = single.lines
    c.T = tb.T
    c.K = tb.K
    c.selection = single.selection
    c.rule_active = c.selection.active_c
    c.promotion_live = c.selection.live_c
    c.order_lines = single.order_lines
    # Read from the order's lines (no Python list of them per calculation): the base price of
    # a line is its quantity times its unit price (rule 11), checked as every amount is.
    c.q = <i64*>calloc(c.L + 1, sizeof(i64))
    c.base_unit = <i64*>calloc(c.L + 1, sizeof(i64))
    c.base = <i64*>calloc(c.L + 1, sizeof(i64))
    if c.q == NULL or c.base_unit == NULL or c.base == NULL:
        raise MemoryError()
    lines = single.order_lines
    for i in range(c.L):
        line = lines[i]
        c.q[i] = _checked(line_field(line, LINE_QUANTITY))
        c.base_unit[i] = _checked(line_field(line, LINE_UNIT_PRICE))
        # a quantity times an amount stays inside int64
        if c.q[i] <= 0 or c.q[i] >= (1 << 21):
            raise Declined()
        c.base[i] = mul_floor(c.q[i], c.base_unit[i], 1)
        if not (-SAFE < c.base[i] < SAFE):
            raise Declined()
    c.rp = tb.rp
    c.rm = tb.rm
    c.accrues = <int*>calloc(c.T + 1, sizeof(int))
    c.bstate = <unsigned char*>calloc(c.K + 1, 1)
    c.lines_lo = <int*>malloc((c.K + 1) * sizeof(int))
    c.lines_hi = <int*>malloc((c.K + 1) * sizeof(int))
    c.nlive = <signed char*>malloc(tb.N + 1)
    c.added = <i64*>calloc(c.L + 1, sizeof(i64))
    if (c.accrues == NULL or c.bstate == NULL or c.lines_lo == NULL or c.lines_hi == NULL
            or c.nlive == NULL or c.added == NULL):
        raise MemoryError()
    memset(c.nlive, -1, tb.N + 1)
    accrues = single.accrues
    for t in range(len(accrues)):
        c.accrues[t] = 1 if accrues[t] else 0
    c.ensure_tmp(max(3 * c.L + 3, c.T + 1, 64))
    c.new_state(&c.s0)
    memset(c.s0.budget, 0, c.T * sizeof(i64))
    if s is None:  # the calculation's initial state (`Single.initial()`), made here in C
        memcpy(c.s0.pay, c.base, c.L * sizeof(i64))
        memset(c.s0.pm, 0, c.L * sizeof(i64))
        budget = single.budget
        ship = single.shipping
    else:
        pay = s.pay
        pm = s.pm
        for i in range(c.L):
            c.s0.pay[i] = _checked(pay[i])
            c.s0.pm[i] = _checked(pm[i])
        budget = s.budget
        ship = s.ship
    for i in range(c.L):
        if c.s0.pay[i] < 0:
            raise Declined()
    for t in range(len(budget)):
        c.s0.budget[t] = _checked(budget[t])
    c.s0.ship = _checked(ship)
    return c


def evaluate(single, node, s=None):
    """Node `node` of the calculation of `single` evaluated on state `s` (None: the initial
    state, `single.initial()`, without making it in Python), as a `Calc` holding
    its entries; None when an amount is too large for the C integers."""
    cdef Calc c
    try:
        c = new_calc(single, s)
        # The result's entries at once (about one per benefit on a dense program), not grown
        # by doubling from 64 with a copy each time; at most 2,048 ahead (112 KiB, below
        # malloc's mmap threshold): a larger result grows as before.
        buf_reserve(&c.result, min(2 * c.K + 64, 2048))
        c.node(c.tb.node_index[id(node)], &c.s0, &c.result)
    except Declined:
        return None
    return c


def overflowed():
    """Whether a result of the calculations since the last call left int64 (and forget it)."""
    global overflow_flag
    cdef bint out = overflow_flag != 0
    overflow_flag = 0
    return out


def valuation(single, node, s):
    """MAX_BENEFIT group `node` on `s` as the decision trace reads it: (the chosen children's
    positions in the group, whether in sequence, the number of candidates of docs/rules.md,
    the greatest value of a candidate other than the chosen one, or the int64 minimum:
    NO_RUNNER_UP); None when
    no child has an effect. Raises Declined on an input beyond the core's range."""
    cdef Calc c = new_calc(single, s)
    return c.valued(c.tb.node_index[id(node)], &c.s0)


def evaluate_entries(single, node, s):
    """`evaluate`'s entries as `single.Entry` tuples (None beyond the core's range)."""
    c = evaluate(single, node, s)
    return None if c is None else c.entries()


cdef int _load(Calc c, list entries, Buf* out) except -1:
    cdef Entry x
    for k, line, disc, pmon, ppts, acc, ship, text in entries:
        x = entry(k, line)
        x.disc = _checked(disc)
        x.pmon = _checked(pmon)
        x.ppts = _checked(ppts)
        x.acc = _checked(acc)
        x.ship = _checked(ship)
        x.text = 1 if text else 0
        buf_push(out, x)
    return 0


cdef Calc _loaded(single, s, list entries):
    """A calculation on `s` holding `entries` (tuples), or None when an amount is too large."""
    cdef Calc c
    try:
        c = new_calc(single, s)
        _load(c, entries, &c.result)
    except Declined:
        return None
    return c


def valid(single, list entries, s):
    """A sum of effects on `s` (entries as tuples) made valid (rule 6); None beyond the core's range."""
    cdef Calc c = _loaded(single, s, entries)
    if c is None:
        return None
    c.valid_from(&c.result, 0, &c.s0)
    return c.entries()


def limits(single, node, list entries, s):
    """Node `node`'s limits on what `entries` add to `s` (rule 11); None beyond the core's range."""
    cdef Calc c = _loaded(single, s, entries)
    if c is None:
        return None
    c.limits_from(&c.tb.nodes[c.tb.node_index[id(node)]], &c.result, 0, &c.s0)
    return c.entries()


# --- the MAX_BENEFIT search -------------------------------------------------------------------

# Per width n, per subset mask of n children, the tie order of its summation candidate (its
# sequence comes right after it, docs/rules.md): `candidate_plan`'s order as C ints, built once.
cdef int* _RANKS[MAX_RANK_WIDTH + 1]


cdef const int* _sum_ranks(int n) except NULL:
    cdef int* hit = _RANKS[n]
    cdef int i
    if hit == NULL:
        plan = candidate_plan(n)
        hit = <int*>calloc((1 << n) + 1, sizeof(int))
        if hit == NULL:
            raise MemoryError()
        masks = plan.masks
        sequential = plan.sequential
        for i in range(len(masks)):
            if not sequential[i]:
                hit[masks[i]] = i
        _RANKS[n] = hit
    return hit


cdef class Search:
    """One MAX_BENEFIT group on one state: its children and the walk over their subsets."""

    cdef Calc c
    cdef int L, T, n, has_limits, exhaustive
    cdef int* kid  # each child's node
    cdef i64 max_bp, max_amount, mup, mup_bp
    cdef St s  # the group's state (borrowed)
    cdef St w  # the walked state
    cdef i64* cap  # per line: the least of its cap and its price to pay on s
    # children's effects on s
    cdef Buf* on_s
    cdef i64* child_ship_s
    cdef i64* child_acc  # [child, type] its accruals on s
    cdef i64* rem_add  # [child, line] what children >= i add on s on the line
    cdef i64* rem_acc  # [child, type] accruals of children >= i on s
    cdef int* rem_touch  # [child, line] a child >= i not bounded by its effect on s may touch it
    # [child, line] what the children >= i whose money on a line never exceeds theirs on s
    # (one product discount without max_items: it is non-decreasing in the price) add on s
    cdef i64* rem_mono_add
    cdef int* rem_ship  # [child] a child >= i discounts shipping
    cdef int* rem_unbounded
    # the walk
    cdef Buf* seq_e  # per level: the effect of the level's child in the sequence
    cdef i64* sum_add  # per line: what the subset's effects on s add
    cdef i64* seq_acc  # per type: accruals of the sequence so far
    cdef i64* sum_acc
    cdef i64 seq_shipd, sum_shipd
    # sum over lines of min(cap, added so far), for the sequence and for the summation: kept
    # up to date entry by entry (`step_seq`, `walk`), so a candidate's bound costs no line loop
    cdef i64 seq_capped, sum_capped
    cdef int* stack  # the subset's children, in order
    cdef int depth
    cdef Buf scratch, best
    cdef i128 best_value
    cdef int best_rank, best_size, best_mask, best_seq
    # traced (the decision trace): the greatest value of a candidate other than the best, kept
    # exact (a candidate or subtree is skipped only when it can reach neither)
    cdef int traced
    cdef i128 runner_up
    cdef const int* sum_rank  # subset mask -> tie order of its summation candidate

    def __dealloc__(self):
        cdef int i
        free(self.kid); free(self.w.pay); free(self.cap)
        if self.on_s != NULL:
            for i in range(self.n):
                free(self.on_s[i].data)
            free(self.on_s)
        if self.seq_e != NULL:
            for i in range(self.n + 1):
                free(self.seq_e[i].data)
            free(self.seq_e)
        free(self.child_ship_s); free(self.child_acc)
        free(self.rem_add); free(self.rem_acc); free(self.rem_touch); free(self.rem_mono_add)
        free(self.rem_ship); free(self.rem_unbounded); free(self.sum_add); free(self.seq_acc)
        free(self.sum_acc); free(self.stack); free(self.scratch.data); free(self.best.data)

    cdef int setup(self, Calc c, Node* nd, St* s, int* kids, int n, Entry* effects,
                   int* lo) except -1:
        """The group `nd` on `s`, its children with an effect `kids[:n]`, child i's effect on s
        being effects[lo[i]:lo[i + 1]]."""
        cdef int L = c.L
        cdef int T = c.T
        cdef int i, j, k, line, t, cc
        cdef Node* kn
        cdef Ben* b
        cdef Entry* x
        cdef i64 cp
        cdef int* touch
        cdef int* mono
        cdef int* unbounded
        cdef int* ship
        self.c = c
        self.L = L
        self.T = T
        self.n = n
        self.s = s[0]
        self.max_bp = nd.max_bp
        self.max_amount = nd.max_amount
        self.mup = nd.mup
        self.mup_bp = nd.mup_bp
        self.has_limits = nd.has_limits
        self.kid = <int*>malloc((n + 1) * sizeof(int))
        self.cap = _zeros(L)
        self.rem_touch = <int*>calloc((n + 1) * L + 1, sizeof(int))
        self.rem_ship = <int*>calloc(n + 2, sizeof(int))
        self.rem_unbounded = <int*>calloc(n + 2, sizeof(int))
        self.rem_mono_add = _zeros((n + 1) * L)
        self.child_ship_s = _zeros(n)
        self.child_acc = _zeros(n * T)
        self.rem_add = _zeros((n + 1) * L)
        self.rem_acc = _zeros((n + 1) * T)
        self.sum_add = _zeros(L)
        self.seq_acc = _zeros(T)
        self.sum_acc = _zeros(T)
        self.stack = <int*>calloc(n + 1, sizeof(int))
        self.on_s = <Buf*>calloc(n, sizeof(Buf))
        self.seq_e = <Buf*>calloc(n + 1, sizeof(Buf))
        if (self.kid == NULL or self.rem_touch == NULL or self.rem_ship == NULL
                or self.rem_unbounded == NULL or self.stack == NULL or self.on_s == NULL
                or self.seq_e == NULL):
            raise MemoryError()
        c.new_state(&self.w)
        c.copy_state(&self.w, s)
        for line in range(L):
            cp = line_cap(c, s.pay, line, self.max_bp, self.mup, self.mup_bp)
            self.cap[line] = cp if cp < s.pay[line] else s.pay[line]
        # Per child: which lines a later evaluation may touch, whether its money on a line is
        # bounded by its money on s (mono), whether its accruals are (not unbounded).
        c.ensure_tmp(4 * n + 4)
        touch = <int*>calloc((n + 1) * (L + 1), sizeof(int))
        if touch == NULL:
            raise MemoryError()
        mono = c.tmp_i
        unbounded = c.tmp_i + n
        ship = c.tmp_i + 2 * n
        try:
            for cc in range(n):
                self.kid[cc] = kids[cc]
                mono[cc] = 0
                unbounded[cc] = 0
                ship[cc] = 0
                self.child_traits(kids[cc], touch + cc * (L + 1), &mono[cc], &unbounded[cc],
                                  &ship[cc], 1)
            # The children's effects on s.
            for cc in range(n):
                for i in range(lo[cc], lo[cc + 1]):
                    x = effects + i
                    buf_push(&self.on_s[cc], x[0])
                    if x.line < L:
                        self.rem_add[cc * L + x.line] += x.disc + x.pmon
                        if mono[cc]:
                            self.rem_mono_add[cc * L + x.line] += x.disc + x.pmon
                    if x.acc:
                        add_sat(&self.child_acc[cc * T + c.tb.bens[x.k].point_type], x.acc)
                    self.child_ship_s[cc] += x.ship
            # Suffix sums: what children c.. add, accrue, touch.
            for cc in range(n - 1, -1, -1):
                for line in range(L):
                    if cc + 1 < n:
                        self.rem_add[cc * L + line] += self.rem_add[(cc + 1) * L + line]
                        self.rem_touch[cc * L + line] = self.rem_touch[(cc + 1) * L + line]
                        self.rem_mono_add[cc * L + line] += self.rem_mono_add[(cc + 1) * L + line]
                    if touch[cc * (L + 1) + line] and not mono[cc]:
                        self.rem_touch[cc * L + line] = 1
                for t in range(T):
                    self.rem_acc[cc * T + t] = self.child_acc[cc * T + t] + (
                        self.rem_acc[(cc + 1) * T + t] if cc + 1 < n else 0
                    )
                self.rem_ship[cc] = ship[cc] or (self.rem_ship[cc + 1] if cc + 1 < n else 0)
                self.rem_unbounded[cc] = unbounded[cc] or (
                    self.rem_unbounded[cc + 1] if cc + 1 < n else 0
                )
        finally:
            free(touch)
        self.sum_rank = _sum_ranks(n)
        self.best_value = NEG
        self.best_rank = RANK_LAST
        self.best_size = RANK_LAST
        self.runner_up = NEG
        return 0

    cdef int child_traits(self, int ni, int* touch, int* mono, int* unbounded, int* ship,
                          int top) except -1:
        """What child node `ni` (or, not `top`, a node under it) may touch on a later state: its
        lines (`touch`), whether its money is bounded by its effect on s (`mono`, one product
        discount without max_items), whether its accruals are not (`unbounded`), and whether it
        discounts shipping. A price rise anywhere makes the search exhaustive."""
        cdef Calc c = self.c
        cdef Node* nd = &c.tb.nodes[ni]
        cdef Ben* b
        cdef int k, i, j, has_accrual = 0, line
        if nd.promotion < 0:
            for j in range(nd.child_lo, nd.child_hi):
                self.child_traits(c.tb.kids[j], touch, mono, unbounded, ship, 0)
            return 0
        if not c.promotion_live[nd.promotion]:
            return 0
        if top and nd.hi - nd.lo == 1:
            b = &c.tb.bens[nd.lo]
            if b.kind == K_DISCOUNT and b.product and not b.max_items:
                mono[0] = 1
        for k in range(nd.lo, nd.hi):
            b = &c.tb.bens[k]
            if c.fetch(k) != 1:
                continue
            if b.raises:
                self.exhaustive = 1
            if b.accrues:
                has_accrual = 1
            if b.kind == K_SHIP:
                ship[0] = 1
            if b.kind == K_TEXT or b.accrues or b.kind == K_SHIP:
                continue
            if b.product:
                for i in range(c.lines_lo[k], c.lines_hi[k]):
                    touch[c.flines[i]] = 1
            else:
                for line in range(c.L):
                    touch[line] = 1
        # An accrual after another benefit of a sequence, or in a group child, may grow on a
        # state with lower prices (an order-level discount moves between lines): not bounded.
        if has_accrual and (not top or (nd.seq and nd.hi - nd.lo > 1)):
            unbounded[0] = 1
        return 0

    # --- the walked state -------------------------------------------------------------------

    cdef void step_seq(self, Entry* es, int n, int sign) noexcept:
        """Entries applied to the walked state (sign 1) or taken back (-1), keeping
        seq_capped."""
        cdef int i
        cdef Entry* x
        cdef i64 before, after, cap
        for i in range(n):
            x = es + i
            if x.line < self.L:
                cap = self.cap[x.line]
                before = self.s.pay[x.line] - self.w.pay[x.line]
                after = before + sign * (x.disc + x.pmon)
                self.seq_capped += (after if after < cap else cap) - (before if before < cap else cap)
        self.c.apply(&self.w, es, n, sign)

    # --- valuing --------------------------------------------------------------------------------

    cdef i128 value_of(self, Buf* e) noexcept:
        """A candidate's benefit (rule 12): money, plus each type's accruals valued on their sum."""
        cdef i64 money = 0
        cdef int i, t
        cdef i64* acc = self.c.tmp_a
        for t in range(self.T):
            acc[t] = 0
        for i in range(e.n):
            money += e.data[i].disc + e.data[i].pmon + e.data[i].ship
            if e.data[i].acc:
                add_sat(&acc[self.c.tb.bens[e.data[i].k].point_type], e.data[i].acc)
        return money + self.acc_money(acc)

    cdef i128 acc_money(self, i64* acc) noexcept:
        cdef i128 money = 0
        cdef int t
        for t in range(self.T):
            if acc[t]:
                money += revalue128(acc[t], self.c.rm[t], self.c.rp[t])
        return money

    cdef int offer(self, Buf* e, i128 value, int rank, int size, int mask, bint sequential) except -1:
        """A valued candidate: kept when it ranks before the best (value, then tie order)."""
        if value > self.best_value or (value == self.best_value and rank < self.best_rank):
            if self.best_rank != RANK_LAST and self.best_value > self.runner_up:
                self.runner_up = self.best_value
            self.best_value = value
            self.best_rank = rank
            self.best_size = size
            self.best_mask = mask
            self.best_seq = sequential
            self.best.n = 0
            buf_extend(&self.best, e.data, e.n)
        elif value > self.runner_up:
            self.runner_up = value
        return 0

    cdef inline bint beaten(self, i128 bound, int rank_floor) noexcept:
        """Whether a candidate bounded by `bound`, ranking at least `rank_floor`, cannot win
        (nor, traced, reach the runner-up)."""
        if self.exhaustive:
            return False
        if self.traced and bound > self.runner_up:
            return False
        return bound < self.best_value or (bound == self.best_value and rank_floor > self.best_rank)

    cdef int candidate(self, int rank, int size, int mask, bint sequential) except -1:
        """Value the summation (or sequence) of the subset on the stack."""
        cdef int i, c
        cdef Buf* e = &self.scratch
        cdef i128 bound, value
        cdef i64 money_cap
        cdef i64* acc
        cdef i64 shipd
        # An upper bound first: each line at most its cap and price, shipping what it is.
        if not self.exhaustive:
            if sequential:
                acc = self.seq_acc
                shipd = self.seq_shipd
            else:
                acc = self.sum_acc
                shipd = self.sum_shipd
                if shipd > self.s.ship:
                    shipd = self.s.ship
            money_cap = self.seq_capped if sequential else self.sum_capped
            if self.max_amount and money_cap > self.max_amount:
                money_cap = self.max_amount
            bound = money_cap + shipd + self.acc_money(acc)
            if self.beaten(bound, rank):
                return 0
        e.n = 0
        if sequential:
            for i in range(1, self.depth + 1):
                buf_extend(e, self.seq_e[i].data, self.seq_e[i].n)
        else:
            for i in range(self.depth):
                c = self.stack[i]
                buf_extend(e, self.on_s[c].data, self.on_s[c].n)
            if size > 1:
                make_valid(self.c, e, &self.s)
        if self.has_limits:
            apply_limits(self.c, e, self.s.pay, self.max_bp, self.max_amount, self.mup, self.mup_bp)
        drop_empty(e)
        value = self.value_of(e)
        self.offer(e, value, rank, size, mask, sequential)
        return 0

    cdef inline void sum_step(self, int line, i64 add) noexcept:
        cdef i64 cap = self.cap[line]
        cdef i64 before = self.sum_add[line]
        cdef i64 after = before + add
        self.sum_add[line] = after
        self.sum_capped += (after if after < cap else cap) - (before if before < cap else cap)

    cdef i128 subtree_bound(self, int nxt) noexcept:
        """An upper bound of every candidate that extends the subset on the stack with children
        from `nxt` on (the subset's own included)."""
        cdef int line, t
        cdef i64 seq_money = 0
        cdef i64 sum_money = 0
        cdef i64 a, ship
        cdef i128 seq_bound, sum_bound
        cdef i64* acc = self.c.tmp_b
        cdef i64* rem_add = self.rem_add + nxt * self.L
        cdef int* touch = self.rem_touch + nxt * self.L
        cdef i64* mono = self.rem_mono_add + nxt * self.L
        if self.rem_unbounded[nxt] or self.exhaustive:
            return i128_max()
        for line in range(self.L):
            # sequence: what it added, plus what is left to pay where a later child may act
            # (at most what the later bounded children add on s)
            if touch[line]:
                a = self.s.pay[line]
            else:
                a = self.s.pay[line] - self.w.pay[line] + (
                    mono[line] if mono[line] < self.w.pay[line] else self.w.pay[line]
                )
            seq_money += a if a < self.cap[line] else self.cap[line]
            a = self.sum_add[line] + rem_add[line]
            sum_money += a if a < self.cap[line] else self.cap[line]
        if self.max_amount:
            seq_money = min(seq_money, self.max_amount)
            sum_money = min(sum_money, self.max_amount)
        ship = self.seq_shipd + (self.w.ship if self.rem_ship[nxt] else 0)
        for t in range(self.T):
            acc[t] = self.seq_acc[t]
            add_sat(&acc[t], self.rem_acc[nxt * self.T + t])
        seq_bound = seq_money + ship + self.acc_money(acc)
        ship = self.sum_shipd + self.rem_ship_s(nxt)
        if ship > self.s.ship:
            ship = self.s.ship
        for t in range(self.T):
            acc[t] = self.sum_acc[t]
            add_sat(&acc[t], self.rem_acc[nxt * self.T + t])
        sum_bound = sum_money + ship + self.acc_money(acc)
        return seq_bound if seq_bound > sum_bound else sum_bound

    cdef i64 rem_ship_s(self, int nxt) noexcept:
        cdef i64 total = 0
        cdef int c
        for c in range(nxt, self.n):
            total += self.child_ship_s[c]
        return total

    cdef int walk(self, int nxt, int mask) except -1:
        """Every subset that extends the one on the stack with a child from `nxt` on."""
        cdef int c, i, size, rank
        cdef Entry* x
        cdef Buf* own
        cdef int m2
        cdef int T = self.T
        for c in range(nxt, self.n):
            m2 = mask | (1 << c)
            size = self.depth + 1
            rank = self.sum_rank[m2]
            # the subset with c: its sequence evaluates c on the walked state
            own = &self.seq_e[size]
            own.n = 0
            if self.depth == 0:
                buf_extend(own, self.on_s[c].data, self.on_s[c].n)
            else:
                self.c.node(self.kid[c], &self.w, own)
            self.step_seq(own.data, own.n, 1)
            for i in range(own.n):
                x = own.data + i
                if x.acc:
                    add_sat(&self.seq_acc[self.c.tb.bens[x.k].point_type], x.acc)
                self.seq_shipd += x.ship
            for i in range(self.on_s[c].n):
                x = self.on_s[c].data + i
                if x.line < self.L:
                    self.sum_step(x.line, x.disc + x.pmon)
            for i in range(T):
                add_sat(&self.sum_acc[i], self.child_acc[c * T + i])
            self.sum_shipd += self.child_ship_s[c]
            self.stack[self.depth] = c
            self.depth += 1
            self.candidate(rank, size, m2, False)
            if size > 1:
                self.candidate(rank + 1, size, m2, True)
            # every candidate below has more children than this one: it ranks after the best
            # found when that one has at most as many
            if c + 1 < self.n and not self.beaten(
                self.subtree_bound(c + 1), RANK_LAST if size + 1 > self.best_size else -1
            ):
                self.walk(c + 1, m2)
            self.depth -= 1
            # restore
            for i in range(self.on_s[c].n):
                x = self.on_s[c].data + i
                if x.line < self.L:
                    self.sum_step(x.line, -(x.disc + x.pmon))
            for i in range(T):
                self.sum_acc[i] -= self.child_acc[c * T + i]
            self.sum_shipd -= self.child_ship_s[c]
            for i in range(own.n):
                x = own.data + i
                if x.acc:
                    self.seq_acc[self.c.tb.bens[x.k].point_type] -= x.acc
                self.seq_shipd -= x.ship
            self.step_seq(own.data, own.n, -1)
        return 0


cdef i64* _zeros(Py_ssize_t n) except NULL:
    cdef i64* out = <i64*>calloc(n + 1, sizeof(i64))
    if out == NULL:
        raise MemoryError()
    return out


# --- rule 6 and rule 11 over entries ------------------------------------------------------------

cdef int _by_k(const void* a, const void* b) noexcept nogil:
    cdef const Entry* x = <const Entry*>a
    cdef const Entry* y = <const Entry*>b
    if x.k != y.k:
        return -1 if x.k < y.k else 1
    return -1 if x.line < y.line else (1 if x.line > y.line else 0)


cdef void sort_by_k(Buf* e) noexcept:
    """Entries in benefit then line order (they mostly are already: children come in order)."""
    cdef int i
    for i in range(1, e.n):
        if _by_k(&e.data[i - 1], &e.data[i]) > 0:
            qsort(e.data, e.n, sizeof(Entry), _by_k)
            return


cdef void drop_empty(Buf* e) noexcept:
    cdef int i, n = 0
    cdef Entry* x
    for i in range(e.n):
        x = e.data + i
        if x.disc or x.pmon or x.ppts or x.acc or x.ship or x.text:
            e.data[n] = x[0]
            n += 1
    e.n = n


cdef int cut_line(Calc s, Buf* e, int line, i64 cut) except -1:
    """Cut `cut` of money from one line: the points entries first, in proportion to their money
    (each keeping whole points, rule 7), then the positive discounts in proportion (rules 6b,
    11, 23). Entries sorted by benefit."""
    cdef int i, m = 0
    cdef int* idx = s.tmp_i
    cdef i64* w = s.tmp_a
    cdef i64* shares = s.tmp_b
    cdef i64 pm_total = 0
    cdef i64 c_pts, keep, new_pts, new_money, removed, positive
    cdef Entry* x
    cdef int t
    if cut <= 0:
        return 0
    for i in range(e.n):
        if e.data[i].line == line:
            idx[m] = i
            m += 1
    for i in range(m):
        w[i] = e.data[idx[i]].pmon
        pm_total += w[i]
    if pm_total:
        c_pts = cut if cut < pm_total else pm_total
        apportion(c_pts, w, shares, m)
        removed = 0
        for i in range(m):
            if shares[i] > 0:
                x = e.data + idx[i]
                t = s.tb.bens[x.k].point_type
                keep = x.pmon - shares[i]
                new_pts = mul_floor(keep, s.rp[t], s.rm[t])
                if new_pts > x.ppts:
                    new_pts = x.ppts
                new_money = revalue(new_pts, s.rp[t], s.rm[t])
                if new_money > keep:
                    new_money = keep
                removed += x.pmon - new_money
                x.ppts = new_pts
                x.pmon = new_money
        cut -= removed
        if cut <= 0:
            return 0
    positive = 0
    for i in range(m):
        w[i] = e.data[idx[i]].disc if e.data[idx[i]].disc > 0 else 0
        positive += w[i]
    if cut > positive:
        cut = positive
    apportion(cut, w, shares, m)
    for i in range(m):
        e.data[idx[i]].disc -= shares[i]
    return 0


cdef bint make_valid(Calc s, Buf* e, St* st) except -1:
    """A sum of effects on state `st` made valid (rule 6), in place; whether anything was cut."""
    cdef int i, t, m, line
    cdef i64 total, over, rises
    cdef int* idx
    cdef i64* w
    cdef i64* shares
    cdef i64* added
    cdef Entry* x
    cdef bint cut = False
    cdef bint any_rise = False
    cdef bint any_pts = False
    cdef bint any_ship = False
    if e.n == 0:
        return False
    # What needs a cut: points over a budget, a price rise, a line or shipping over its price.
    added = s.added
    for i in range(s.L):
        added[i] = 0
    for i in range(e.n):
        x = e.data + i
        if x.line < s.L:
            added[x.line] += x.disc + x.pmon
            if x.disc < 0:
                any_rise = True
            if x.ppts:
                any_pts = True
        elif x.ship:
            any_ship = True
    if not any_rise:
        for i in range(s.L):
            if added[i] > st.pay[i]:
                break
        else:
            if not any_pts and not any_ship:
                return False
    s.ensure_tmp(e.n + s.L)
    idx = s.tmp_i
    w = s.tmp_a
    shares = s.tmp_b
    sort_by_k(e)
    # (a) points above the budget left, per type, in proportion to each entry's points
    if any_pts:
        for t in range(s.T):
            m = 0
            total = 0
            for i in range(e.n):
                if e.data[i].ppts and s.tb.bens[e.data[i].k].point_type == t \
                        and e.data[i].line < s.L:
                    idx[m] = i
                    w[m] = e.data[i].ppts
                    total += w[m]
                    m += 1
            over = total - st.budget[t]
            if m == 0 or over <= 0:
                continue
            cut = True
            apportion(over, w, shares, m)
            for i in range(m):
                if shares[i] > 0:
                    x = e.data + idx[i]
                    x.ppts -= shares[i]
                    x.pmon = min(revalue(x.ppts, s.rp[t], s.rm[t]), x.pmon)
    # (b) price rises above the base less the points paid, cut in proportion to the rises;
    # then discounts above the price to pay, line by line
    if any_rise:
        for line in range(s.L):
            m = 0
            rises = 0
            total = 0  # points money added on the line
            over = st.pay[line]
            for i in range(e.n):
                x = e.data + i
                if x.line == line:
                    over -= x.disc + x.pmon
                    total += x.pmon
                    idx[m] = i
                    w[m] = -x.disc if x.disc < 0 else 0
                    rises += w[m]
                    m += 1
            if rises == 0:
                continue
            # the price after the sum, against the base less the points paid (before and now)
            over -= s.base[line] - st.pm[line] - total
            if over <= 0:
                continue
            if over > rises:
                over = rises
            cut = True
            apportion(over, w, shares, m)
            for i in range(m):
                e.data[idx[i]].disc += shares[i]
    for i in range(s.L):
        added[i] = 0
    for i in range(e.n):
        if e.data[i].line < s.L:
            added[e.data[i].line] += e.data[i].disc + e.data[i].pmon
    for i in range(s.L):
        if added[i] > st.pay[i]:
            cut = True
            cut_line(s, e, i, added[i] - st.pay[i])
    # (c) shipping discounts above the shipping left
    if any_ship:
        m = 0
        total = 0
        for i in range(e.n):
            if e.data[i].ship:
                idx[m] = i
                w[m] = e.data[i].ship
                total += w[m]
                m += 1
        over = total - st.ship
        if m and over > 0:
            cut = True
            apportion(over, w, shares, m)
            for i in range(m):
                e.data[idx[i]].ship -= shares[i]
    return cut


cdef bint apply_limits(Calc s, Buf* e, i64* pay, i64 max_bp, i64 max_amount, i64 mup,
                       i64 mup_bp) except -1:
    """A node's limits on what `e` adds to lines entering at `pay` (rule 11), in place;
    whether anything was cut."""
    cdef int i
    cdef i64 total, over, positive, cap
    cdef i64* added = s.added
    cdef i64* w
    cdef i64* shares
    cdef bint cut = False
    cdef bint sorted_ = False
    for i in range(s.L):
        added[i] = 0
    for i in range(e.n):
        if e.data[i].line < s.L:
            added[e.data[i].line] += e.data[i].disc + e.data[i].pmon
    if max_bp or mup or mup_bp:
        for i in range(s.L):
            if added[i] > 0:
                cap = line_cap(s, pay, i, max_bp, mup, mup_bp)
                if added[i] > cap:
                    if not sorted_:
                        s.ensure_tmp(e.n + s.L)
                        sort_by_k(e)
                        sorted_ = True
                    cut = True
                    cut_line(s, e, i, added[i] - cap)
    if max_amount:
        if cut:
            for i in range(s.L):
                added[i] = 0
            for i in range(e.n):
                if e.data[i].line < s.L:
                    added[e.data[i].line] += e.data[i].disc + e.data[i].pmon
        total = 0
        positive = 0
        for i in range(s.L):
            total += added[i]
        over = total - max_amount
        if over > 0:
            if not sorted_:
                s.ensure_tmp(e.n + s.L)
                sort_by_k(e)
            cut = True
            # weights: the positive amounts added per line; tmp_a/tmp_b are used by cut_line
            w = <i64*>malloc(2 * s.L * sizeof(i64) + 1)
            if w == NULL:
                raise MemoryError()
            shares = w + s.L
            for i in range(s.L):
                w[i] = added[i] if added[i] > 0 else 0
                positive += w[i]
            if over > positive:
                over = positive
            apportion(over, w, shares, s.L)
            for i in range(s.L):
                if shares[i] > 0:
                    cut_line(s, e, i, shares[i])
            free(w)
    return cut


cdef i64 line_cap(Calc s, i64* pay, int line, i64 max_bp, i64 mup, i64 mup_bp) noexcept:
    """What a node may add on a line entering at `pay[line]` (rule 11), >= 0."""
    cdef i64 p = pay[line]
    cdef i64 cap = I64_MAX
    cdef i64 other
    if max_bp:
        cap = round_bp(p, max_bp)
    if mup:
        other = p - mul_sat(s.q[line], mup)
        if other < cap:
            cap = other
    if mup_bp:
        other = p - mul_sat(s.q[line], round_bp(s.base_unit[line], mup_bp))
        if other < cap:
            cap = other
    return cap if cap > 0 else 0
