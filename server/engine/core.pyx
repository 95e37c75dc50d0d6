# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""The typed core: a MAX_BENEFIT group searched in C (rule 12, docs/rules.md).

`max_benefit(single, node, s, children)` answers what `Single._max_benefit` answers, for a group
whose children (those with an effect on `s`) are promotions made only of discounts, payments
with points, point accruals (`accrue_points`, `accrue_per_spent`), shipping discounts and texts;
it returns None otherwise and the caller searches as before. Everything here is plain C: a state
is arrays of int64 (price to pay and points money per line, budget per type, shipping left), an
effect is an array of `Entry` (one per benefit and line that changes something, as in
`single.py`), and the benefit formulas, rule 6 (a sum made valid) and rule 11 (limits) are the
ones of `single.py` and `state.py` written over them.

The search is depth first over the subsets in the children's order: each step adds one child
to the subset of the step above. It values the two candidates of the new subset (rule 12): the
summation (the children's effects on `s` added up, made valid) and the sequence (the new child
evaluated on the state the subset's earlier children left; that state is the one being walked,
updated in place and restored on the way back, so memory is one state and one effect per level:
at most 17 levels, whatever the width). A subtree is skipped when an upper bound of every
candidate in it ranks after the best found (value, then the tie order of docs/rules.md):

- a line keeps at most the least of its cap (the group's limits on `s`), its price to pay on `s`
  and (summations) what the subset's and the remaining children's effects on `s` add on it, or
  (sequences) what the subset added, plus its price left when a remaining child can touch it;
- shipping at most what is left, accruals at most the subset's plus the remaining children's
  accruals on `s`.

These hold because the kinds here never raise a price: rule 6 and the limits then only cut, a
child adds at most the line's price to pay, and an accrual is a non-decreasing function of the
prices to pay (a multi-benefit promotion that accrues after another of its benefits is not
bounded so: a subtree where one remains is never skipped).
"""

from libc.stdlib cimport free, malloc, qsort, realloc
from libc.string cimport memcpy, memset

from arbiter.server.engine.compile import MAX_BENEFIT_CHILDREN, candidate_plan
from arbiter.server.engine.money import BP as _BP
from arbiter.server.engine.money import HALF_BP as _HALF_BP

ctypedef long long i64

cdef extern from *:
    ctypedef long long i128 "__int128"

cdef enum:
    # Benefit kinds handled here.
    K_DISCOUNT = 1
    K_PAY = 2
    K_ACCRUE = 3
    K_PER_SPENT = 4
    K_SHIP = 5
    K_TEXT = 6
    # Value kinds.
    V_PERCENT = 1
    V_AMOUNT = 2
    V_FIXED = 3
    V_POINTS = 4

# Inputs above this are left to the Python evaluation (products of two stay far inside int64,
# and the 128-bit ones of apportioning exact).
cdef i64 SAFE = 1LL << 40
cdef i64 I64_MAX = 0x7FFFFFFFFFFFFFFF
cdef i64 NEG = -I64_MAX - 1
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
}
_VALUE_KINDS = {"percent_bp": V_PERCENT, "amount": V_AMOUNT, "fixed_price": V_FIXED, "points": V_POINTS}


cdef struct Entry:
    int k
    int line  # the line count for an order-wide entry
    i64 disc
    i64 pmon
    i64 ppts
    i64 acc
    i64 ship
    int text


cdef struct Ben:
    int k
    int kind
    int vk
    int product
    int point_type
    i64 value
    i64 max_items
    i64 per_amount
    int lines_lo  # its rule's matching lines in Search.rule_lines
    int lines_hi


cdef struct Buf:
    Entry* data
    int n
    int cap


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


# --- money.py's arithmetic, the same formulas on C integers (arguments >= 0) --------------------

cdef inline i64 round_bp(i64 x, i64 bp) noexcept:
    return (x * bp + HALF_BP) // BP


cdef inline i64 div_half_up(i64 num, i64 den) noexcept:
    return (2 * num + den) // (2 * den)


cdef inline i64 revalue(i64 pts, i64 rp, i64 rm) noexcept:
    """Money of whole points, half up."""
    return (2 * pts * rm + rp) // (2 * rp)


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
        shares[i] = <i64>((<i128>amount * weights[i]) // total)
        given += shares[i]
    left = amount - given
    if left <= 0:
        return 0
    ranks = <Rank*>malloc(n * sizeof(Rank))
    if ranks == NULL:
        raise MemoryError()
    m = 0
    for i in range(n):
        ranks[m].rem = <i64>((<i128>amount * weights[i]) % total)
        ranks[m].i = i
        m += 1
    qsort(ranks, m, sizeof(Rank), _rank_cmp)
    for i in range(left):
        shares[ranks[i].i] += 1
    free(ranks)
    return 0


cdef class Search:
    """One MAX_BENEFIT group on one state: the order's arrays, the children and the search."""

    cdef int L, T, n, has_limits
    cdef i64* q
    cdef i64* base_unit
    cdef i64* rp
    cdef i64* rm
    cdef int* accrues
    cdef int* pay_type  # per benefit of the group (from node.lo): the type it pays with
    cdef int* acc_type  # per benefit of the group: the type it accrues (0 if none)
    cdef int* rule_lines
    cdef Ben* bens
    cdef int* child_lo  # each child's benefits in bens
    cdef int* child_hi
    cdef int* child_seq  # the promotion applies its benefits in sequence
    cdef int* child_ship
    cdef int* child_acc_unbounded
    # the group's state s
    cdef i64* s_pay
    cdef i64* s_budget
    cdef i64 s_ship
    # the walked state
    cdef i64* pay
    cdef i64* pm
    cdef i64* budget
    cdef i64 ship
    # limits
    cdef i64 max_bp, max_amount, mup, mup_bp
    cdef i64* cap  # per line: the least of its cap and its price to pay on s
    cdef i64 cap_total
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
    # up to date entry by entry (`apply`, `walk`), so a candidate's bound costs no line loop
    cdef i64 seq_capped, sum_capped
    cdef int* stack  # the subset's children, in order
    cdef int depth
    cdef Buf scratch, best
    cdef i64 best_value
    cdef int best_rank, best_size
    cdef object rank_array  # keeps sum_rank's memory
    cdef const int[::1] sum_rank  # subset mask -> tie order of its summation candidate
    cdef i64* added  # per line
    cdef i64* tmp_a  # scratch of tmp_size items each
    cdef i64* tmp_b
    cdef int* tmp_i
    cdef int tmp_size

    def __dealloc__(self):
        cdef int i
        free(self.q); free(self.base_unit); free(self.rp); free(self.rm); free(self.accrues)
        free(self.pay_type); free(self.acc_type); free(self.rule_lines); free(self.bens)
        free(self.child_lo); free(self.child_hi); free(self.child_seq);
        free(self.child_ship); free(self.child_acc_unbounded)
        free(self.s_pay); free(self.s_budget)
        free(self.pay); free(self.pm); free(self.budget); free(self.cap)
        if self.on_s != NULL:
            for i in range(self.n):
                free(self.on_s[i].data)
            free(self.on_s)
        if self.seq_e != NULL:
            for i in range(self.n + 1):
                free(self.seq_e[i].data)
            free(self.seq_e)
        free(self.child_ship_s); free(self.child_acc)
        free(self.rem_add); free(self.rem_acc); free(self.rem_touch); free(self.rem_mono_add); free(self.rem_ship)
        free(self.rem_unbounded); free(self.sum_add); free(self.seq_acc); free(self.sum_acc)
        free(self.stack); free(self.scratch.data); free(self.best.data)
        free(self.tmp_a); free(self.tmp_b); free(self.tmp_i); free(self.added)

    # --- benefits on the walked state (single.py's formulas) ---------------------------------

    cdef int units(self, Ben* b, i64* pay, int* lines, int m, i64* prices, i64* units) except -1:
        """Price to pay and units each matching line gives to `b` (single._units)."""
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
            prices[i] = div_half_up(pay[line] * units[i], self.q[line])
        return 0

    cdef inline bint _before(self, i64* pay, int* lines, int a, int b) noexcept:
        cdef i64 x = <i64>pay[lines[a]] * self.q[lines[b]]
        cdef i64 y = <i64>pay[lines[b]] * self.q[lines[a]]
        return x > y or (x == y and a < b)

    cdef int benefit(self, Ben* b, Buf* out) except -1:
        """What `b` does on the walked state, appended to `out` as non-empty entries."""
        cdef int* lines = self.rule_lines + b.lines_lo
        cdef int m = b.lines_hi - b.lines_lo
        cdef int i, line, t
        cdef i64 d, pts, total, cap, money, budget
        cdef i64* pay = self.pay
        cdef i64* prices = self.tmp_a
        cdef i64* units = self.tmp_b
        cdef Entry e
        cdef int L = self.L
        if b.kind == 0:  # its rule does not apply to the order
            return 0
        if b.product:
            if b.kind == K_TEXT:
                for i in range(m):
                    e = entry(b.k, lines[i])
                    e.text = 1
                    buf_push(out, e)
            elif b.kind == K_ACCRUE:
                t = b.point_type
                if not self.accrues[t]:
                    return 0
                for i in range(m):
                    line = lines[i]
                    if b.vk == V_PERCENT:
                        pts = div_half_up(round_bp(pay[line], b.value) * self.rp[t], self.rm[t])
                    else:
                        pts = self.q[line] * b.value
                    if pts:
                        e = entry(b.k, line)
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
                apportion((total // b.per_amount) * b.value, prices, units, m)
                for i in range(m):
                    if units[i]:
                        e = entry(b.k, lines[i])
                        e.acc = units[i]
                        buf_push(out, e)
            elif b.kind == K_DISCOUNT:
                if b.vk == V_PERCENT and not b.max_items:
                    for i in range(m):
                        d = round_bp(pay[lines[i]], b.value)
                        if d:
                            e = entry(b.k, lines[i])
                            e.disc = d
                            buf_push(out, e)
                    return 0
                self.units(b, pay, lines, m, prices, units)
                for i in range(m):
                    if b.vk == V_PERCENT:
                        d = round_bp(prices[i], b.value)
                    elif b.vk == V_AMOUNT:
                        d = b.value * units[i]
                        if d > prices[i]:
                            d = prices[i]
                    else:
                        d = prices[i] - b.value * units[i]
                        if d < 0:
                            d = 0
                    if d:
                        e = entry(b.k, lines[i])
                        e.disc = d
                        buf_push(out, e)
            else:  # K_PAY
                self.pay_lines(b, lines, m, out)
            return 0
        # ORDER level
        if b.kind == K_TEXT:
            e = entry(b.k, L)
            e.text = 1
            buf_push(out, e)
            return 0
        if b.kind == K_SHIP:
            d = round_bp(self.ship, b.value) if b.vk == V_PERCENT else min(b.value, self.ship)
            if d:
                e = entry(b.k, L)
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
                    e = entry(b.k, i)
                    e.disc = prices[i]
                    buf_push(out, e)
            return 0
        if b.kind == K_ACCRUE or b.kind == K_PER_SPENT:
            t = b.point_type
            if not self.accrues[t]:
                return 0
            if b.kind == K_ACCRUE:
                if b.vk == V_PERCENT:
                    pts = div_half_up(round_bp(total, b.value) * self.rp[t], self.rm[t])
                else:
                    pts = b.value
            else:
                pts = (total // b.per_amount) * b.value
            if pts:
                e = entry(b.k, L)
                e.acc = pts
                buf_push(out, e)
            return 0
        # K_PAY at ORDER level (single._order_pay_with_points)
        t = b.point_type
        budget = self.budget[t]
        if budget <= 0:
            return 0
        if b.vk == V_PERCENT:
            cap = min(round_bp(total, b.value), total) * self.rp[t] // self.rm[t]
        elif b.vk == V_AMOUNT:
            cap = min(b.value, total) * self.rp[t] // self.rm[t]
        else:
            cap = min(b.value, total * self.rp[t] // self.rm[t])
        apportion(min(cap, budget), pay, prices, L)
        for i in range(L):
            pts = prices[i]
            money = div_half_up(pts * self.rm[t], self.rp[t])
            if money > pay[i]:
                pts = pay[i] * self.rp[t] // self.rm[t]
                money = min(div_half_up(pts * self.rm[t], self.rp[t]), pay[i])
            if pts or money:
                e = entry(b.k, i)
                e.pmon = money
                e.ppts = pts
                buf_push(out, e)
        return 0

    cdef int pay_lines(self, Ben* b, int* lines, int m, Buf* out) except -1:
        """Rule 8 at PRODUCT level (single._pay_with_points)."""
        cdef int t = b.point_type
        cdef i64 budget = self.budget[t]
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
        self.units(b, self.pay, lines, m, prices, units)
        caps_money = units + m  # tmp_b holds 3 * L: units, then the two caps
        caps_pts = units + 2 * m
        total = 0
        for i in range(m):
            p = prices[i]
            n = units[i]
            if b.vk == V_PERCENT:
                cap = min(round_bp(p, b.value), p)
                pts = cap * rp // rm
            elif b.vk == V_AMOUNT:
                cap = min(b.value * n, p)
                pts = cap * rp // rm
            else:
                cap = p
                pts = min(b.value * n, p * rp // rm)
            caps_money[i] = cap
            caps_pts[i] = pts
            total += pts
        if total > budget:
            apportion(budget, caps_pts, prices, m)  # prices are no longer needed
            memcpy(caps_pts, prices, m * sizeof(i64))
        for i in range(m):
            pts = caps_pts[i]
            money = min(div_half_up(pts * rm, rp), caps_money[i])
            if pts or money:
                e = entry(b.k, lines[i])
                e.pmon = money
                e.ppts = pts
                buf_push(out, e)
        return 0

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

    # --- states -------------------------------------------------------------------------------

    cdef void apply(self, Entry* es, int n, int sign) noexcept:
        """Entries applied to the walked state (sign 1), or taken back (sign -1)."""
        cdef int i
        cdef Entry* x
        cdef i64 before, after, cap
        for i in range(n):
            x = es + i
            if x.line < self.L:
                cap = self.cap[x.line]
                before = self.s_pay[x.line] - self.pay[x.line]
                self.pay[x.line] -= sign * (x.disc + x.pmon)
                after = self.s_pay[x.line] - self.pay[x.line]
                self.seq_capped += (after if after < cap else cap) - (before if before < cap else cap)
                self.pm[x.line] += sign * x.pmon
                if x.ppts:
                    self.budget[self.pay_type[x.k]] -= sign * x.ppts
            else:
                self.ship -= sign * x.ship

    cdef int child(self, int c, Buf* out) except -1:
        """Child `c` (a promotion) on the walked state, which it leaves applied."""
        cdef int j, start
        out.n = 0
        if self.child_seq[c] or self.child_hi[c] - self.child_lo[c] == 1:
            for j in range(self.child_lo[c], self.child_hi[c]):
                start = out.n
                self.benefit(&self.bens[j], out)
                self.apply(out.data + start, out.n - start, 1)
            return 0
        for j in range(self.child_lo[c], self.child_hi[c]):
            self.benefit(&self.bens[j], out)
        make_valid(self, out, self.pay, self.budget, self.ship)
        self.apply(out.data, out.n, 1)
        return 0

    # --- valuing --------------------------------------------------------------------------------

    cdef i64 value_of(self, Buf* e) noexcept:
        """A candidate's benefit (rule 12): money, plus each type's accruals valued on their sum."""
        cdef i64 money = 0
        cdef int i, t
        cdef i64* acc = self.tmp_a
        for t in range(self.T):
            acc[t] = 0
        for i in range(e.n):
            money += e.data[i].disc + e.data[i].pmon + e.data[i].ship
            if e.data[i].acc:
                acc[self.acc_type[e.data[i].k]] += e.data[i].acc
        for t in range(self.T):
            if acc[t]:
                money += revalue(acc[t], self.rp[t], self.rm[t])
        return money

    cdef i64 acc_money(self, i64* acc) noexcept:
        cdef i64 money = 0
        cdef int t
        for t in range(self.T):
            if acc[t]:
                money += revalue(acc[t], self.rp[t], self.rm[t])
        return money

    cdef int offer(self, Buf* e, i64 value, int rank, int size) except -1:
        """A valued candidate: kept when it ranks before the best (value, then tie order)."""
        cdef int i
        if value > self.best_value or (value == self.best_value and rank < self.best_rank):
            self.best_value = value
            self.best_rank = rank
            self.best_size = size
            self.best.n = 0
            for i in range(e.n):
                buf_push(&self.best, e.data[i])
        return 0

    cdef inline bint beaten(self, i64 bound, int rank_floor) noexcept:
        """Whether a candidate bounded by `bound`, ranking at least `rank_floor`, cannot win."""
        return bound < self.best_value or (bound == self.best_value and rank_floor > self.best_rank)

    cdef int candidate(self, int rank, int size, bint sequential) except -1:
        """Value the summation (or sequence) of the subset on the stack."""
        cdef int i, c, line
        cdef Buf* e = &self.scratch
        cdef i64 bound, value, money_cap
        cdef i64* acc
        cdef i64 money, shipd
        # An upper bound first: each line at most its cap and price, shipping what it is.
        if sequential:
            acc = self.seq_acc
            shipd = self.seq_shipd
        else:
            acc = self.sum_acc
            shipd = self.sum_shipd
            if shipd > self.s_ship:
                shipd = self.s_ship
        money_cap = self.seq_capped if sequential else self.sum_capped
        if self.max_amount and money_cap > self.max_amount:
            money_cap = self.max_amount
        bound = money_cap + shipd + self.acc_money(acc)
        if self.beaten(bound, rank):
            return 0
        e.n = 0
        if sequential:
            for i in range(1, self.depth + 1):
                for c in range(self.seq_e[i].n):
                    buf_push(e, self.seq_e[i].data[c])
        else:
            for i in range(self.depth):
                c = self.stack[i]
                for line in range(self.on_s[c].n):
                    buf_push(e, self.on_s[c].data[line])
            if size > 1:
                make_valid(self, e, self.s_pay, self.s_budget, self.s_ship)
        if self.has_limits:
            apply_limits(self, e)
        drop_empty(e)
        value = self.value_of(e)
        self.offer(e, value, rank, size)
        return 0

    cdef inline void sum_step(self, int line, i64 add) noexcept:
        cdef i64 cap = self.cap[line]
        cdef i64 before = self.sum_add[line]
        cdef i64 after = before + add
        self.sum_add[line] = after
        self.sum_capped += (after if after < cap else cap) - (before if before < cap else cap)

    cdef i64 subtree_bound(self, int nxt) noexcept:
        """An upper bound of every candidate that extends the subset on the stack with children
        from `nxt` on (the subset's own included)."""
        cdef int line, t
        cdef i64 seq_money = 0
        cdef i64 sum_money = 0
        cdef i64 a, seq_bound, sum_bound, ship
        cdef i64* acc = self.tmp_b
        cdef i64* rem_add = self.rem_add + nxt * self.L
        cdef int* touch = self.rem_touch + nxt * self.L
        cdef i64* mono = self.rem_mono_add + nxt * self.L
        if self.rem_unbounded[nxt]:
            return I64_MAX
        for line in range(self.L):
            # sequence: what it added, plus what is left to pay where a later child may act
            # (at most what the later bounded children add on s)
            if touch[line]:
                a = self.s_pay[line]
            else:
                a = self.s_pay[line] - self.pay[line] + (
                    mono[line] if mono[line] < self.pay[line] else self.pay[line]
                )
            seq_money += a if a < self.cap[line] else self.cap[line]
            a = self.sum_add[line] + rem_add[line]
            sum_money += a if a < self.cap[line] else self.cap[line]
        if self.max_amount:
            seq_money = min(seq_money, self.max_amount)
            sum_money = min(sum_money, self.max_amount)
        ship = self.seq_shipd + (self.ship if self.rem_ship[nxt] else 0)
        for t in range(self.T):
            acc[t] = self.seq_acc[t] + self.rem_acc[nxt * self.T + t]
        seq_bound = seq_money + ship + self.acc_money(acc)
        ship = self.sum_shipd + self.rem_ship_s(nxt)
        if ship > self.s_ship:
            ship = self.s_ship
        for t in range(self.T):
            acc[t] = self.sum_acc[t] + self.rem_acc[nxt * self.T + t]
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
        for c in range(nxt, self.n):
            m2 = mask | (1 << c)
            size = self.depth + 1
            rank = self.sum_rank[m2]
            # the subset with c: its sequence evaluates c on the walked state
            own = &self.seq_e[size]
            if self.depth == 0:
                own.n = 0
                for i in range(self.on_s[c].n):
                    buf_push(own, self.on_s[c].data[i])
                self.apply(own.data, own.n, 1)
            else:
                self.child(c, own)
            for i in range(own.n):
                x = own.data + i
                if x.acc:
                    self.seq_acc[self.acc_type[x.k]] += x.acc
                self.seq_shipd += x.ship
            for i in range(self.on_s[c].n):
                x = self.on_s[c].data + i
                if x.line < self.L:
                    self.sum_step(x.line, x.disc + x.pmon)
            for i in range(self.T):
                self.sum_acc[i] += self.child_acc[c * self.T + i]
            self.sum_shipd += self.child_ship_s[c]
            self.stack[self.depth] = c
            self.depth += 1
            self.candidate(rank, size, False)
            if size > 1:
                self.candidate(rank + 1, size, True)
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
            for i in range(self.T):
                self.sum_acc[i] -= self.child_acc[c * self.T + i]
            self.sum_shipd -= self.child_ship_s[c]
            for i in range(own.n):
                x = own.data + i
                if x.acc:
                    self.seq_acc[self.acc_type[x.k]] -= x.acc
                self.seq_shipd -= x.ship
            self.apply(own.data, own.n, -1)
        return 0


# --- rule 6 and rule 11 over entries (state.py's cuts) ---------------------------------------------

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


cdef int cut_line(Search s, Buf* e, int line, i64 cut) except -1:
    """Cut `cut` of money from one line: the points entries first, in proportion to their money,
    then the positive discounts in proportion (state.cut_lines). Entries sorted by benefit."""
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
                t = s.pay_type[x.k]
                keep = x.pmon - shares[i]
                new_pts = keep * s.rp[t] // s.rm[t]
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


cdef int make_valid(Search s, Buf* e, i64* pay, i64* budget, i64 ship) except -1:
    """A sum of effects on one state made valid (state.make_valid; no price rises here)."""
    cdef int i, t, m
    cdef i64 total, over
    cdef int* idx = s.tmp_i
    cdef i64* w = s.tmp_a
    cdef i64* shares = s.tmp_b
    cdef i64* added
    cdef Entry* x
    if e.n == 0:
        return 0
    s.ensure_tmp(e.n)
    idx = s.tmp_i
    w = s.tmp_a
    shares = s.tmp_b
    sort_by_k(e)
    # (a) points above the budget left, per type, in proportion to each entry's points
    for t in range(s.T):
        m = 0
        total = 0
        for i in range(e.n):
            if e.data[i].ppts and s.pay_type[e.data[i].k] == t and e.data[i].line < s.L:
                idx[m] = i
                w[m] = e.data[i].ppts
                total += w[m]
                m += 1
        over = total - budget[t]
        if m == 0 or over <= 0:
            continue
        apportion(over, w, shares, m)
        for i in range(m):
            if shares[i] > 0:
                x = e.data + idx[i]
                x.ppts -= shares[i]
                x.pmon = min(revalue(x.ppts, s.rp[t], s.rm[t]), x.pmon)
    # (b) discounts above the price to pay, line by line
    added = s.added
    for i in range(s.L):
        added[i] = 0
    for i in range(e.n):
        if e.data[i].line < s.L:
            added[e.data[i].line] += e.data[i].disc + e.data[i].pmon
    for i in range(s.L):
        if added[i] > pay[i]:
            cut_line(s, e, i, added[i] - pay[i])
    # (c) shipping discounts above the shipping left
    m = 0
    total = 0
    for i in range(e.n):
        if e.data[i].ship:
            idx[m] = i
            w[m] = e.data[i].ship
            total += w[m]
            m += 1
    over = total - ship
    if m and over > 0:
        apportion(over, w, shares, m)
        for i in range(m):
            e.data[idx[i]].ship -= shares[i]
    return 0


cdef int apply_limits(Search s, Buf* e) except -1:
    """The group's limits on what a candidate adds, against the group's state (rule 11)."""
    cdef int i
    cdef i64 total, over, positive
    cdef i64* added = s.added
    cdef i64* w = s.tmp_a
    cdef i64* shares = s.tmp_b
    s.ensure_tmp(e.n)
    sort_by_k(e)
    for i in range(s.L):
        added[i] = 0
    for i in range(e.n):
        if e.data[i].line < s.L:
            added[e.data[i].line] += e.data[i].disc + e.data[i].pmon
    if s.max_bp or s.mup or s.mup_bp:
        for i in range(s.L):
            if added[i] > s.cap[i] and added[i] > 0:
                cut_line(s, e, i, added[i] - line_cap(s, i))
    if s.max_amount:
        for i in range(s.L):
            added[i] = 0
        for i in range(e.n):
            if e.data[i].line < s.L:
                added[e.data[i].line] += e.data[i].disc + e.data[i].pmon
        total = 0
        positive = 0
        for i in range(s.L):
            total += added[i]
        over = total - s.max_amount
        if over > 0:
            # weights: the positive amounts added per line; tmp_a/tmp_b are used by cut_line
            w = <i64*>malloc(2 * s.L * sizeof(i64))
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
    return 0


cdef i64 line_cap(Search s, int line) noexcept:
    """What the group may add on a line entering at its price on s (state.line_caps), >= 0."""
    cdef i64 p = s.s_pay[line]
    cdef i64 cap = I64_MAX
    cdef i64 other
    if s.max_bp:
        cap = round_bp(p, s.max_bp)
    if s.mup:
        other = p - s.q[line] * s.mup
        if other < cap:
            cap = other
    if s.mup_bp:
        other = p - s.q[line] * round_bp(s.base_unit[line], s.mup_bp)
        if other < cap:
            cap = other
    return cap if cap > 0 else 0


# --- set-up from the one-state evaluator ------------------------------------------------------

_RANKS: dict = {}


def _sum_ranks(int n):
    """Per subset mask of n children, the tie order of its summation candidate (its sequence
    comes right after it, docs/rules.md): `candidate_plan`'s order, as C ints."""
    import numpy as np

    hit = _RANKS.get(n)
    if hit is None:
        plan = candidate_plan(n)
        summed = ~plan.sequential
        hit = np.zeros(1 << n, dtype=np.int32)
        hit[plan.masks[summed]] = np.flatnonzero(summed).astype(np.int32)
        hit.setflags(write=False)
        _RANKS[n] = hit
    return hit


cdef i64* _ints(list values) except NULL:
    cdef i64* out = <i64*>malloc((len(values) + 1) * sizeof(i64))
    cdef Py_ssize_t i
    if out == NULL:
        raise MemoryError()
    for i in range(len(values)):
        out[i] = values[i]
    return out


cdef int* _int_array(Py_ssize_t n) except NULL:
    cdef int* out = <int*>malloc((n + 1) * sizeof(int))
    if out == NULL:
        raise MemoryError()
    memset(out, 0, (n + 1) * sizeof(int))
    return out


cdef i64* _zeros(Py_ssize_t n) except NULL:
    cdef i64* out = <i64*>malloc((n + 1) * sizeof(i64))
    if out == NULL:
        raise MemoryError()
    memset(out, 0, (n + 1) * sizeof(i64))
    return out


cdef bint _safe(list values):
    for v in values:
        if not (-SAFE < v < SAFE):
            return False
    return True


def max_benefit(single, node, s, list children):
    """The winner of MAX_BENEFIT group `node` on state `s` (rule 12) as `single.Entry` tuples,
    `children` being its live children with their (non-empty) effects on `s`; None when a child
    is not a promotion of the kinds handled here, or an amount is too large for them."""
    cdef Search se
    cdef int n = len(children)
    cdef int L = single.lines
    cdef int T = max(len(single.point_types), 1)
    cdef int i, c, j, line, nb, t
    cdef Ben* b
    cdef Entry x
    if n == 0 or n > MAX_BENEFIT_CHILDREN:
        return None
    benefits = single.benefits
    promotions = single.promotions
    selection = single.selection
    rule_active = selection.rule_active
    specs = []
    for child, _effect in children:
        if child.promotion < 0:
            return None
        for j in range(child.lo, child.hi):
            cb = benefits[j]
            kind = _KINDS.get(cb.kind, 0)
            if kind == 0 or not (-SAFE < cb.value < SAFE) or not (0 <= cb.max_items < SAFE):
                return None
            if kind == K_PER_SPENT and cb.per_amount <= 0:
                return None
    pay = s.pay
    if not (_safe(pay) and _safe(s.pm) and _safe(s.budget) and _safe(single.q)
            and _safe(single.base_unit) and -SAFE < s.ship < SAFE):
        return None
    for v in single.q:
        if v <= 0:
            return None
    for v in pay:
        if v < 0:
            return None
    if not (node.max_discount_amount < SAFE and node.min_unit_price < SAFE):
        return None
    point_types = single.point_types
    for pt in point_types:
        if not (0 < pt.ratio_points < (1 << 20) and 0 < pt.ratio_money < (1 << 20)):
            return None

    se = Search()
    se.L = L
    se.T = T
    se.n = n
    se.q = _ints(list(single.q))
    se.base_unit = _ints(list(single.base_unit))
    se.rp = _ints([pt.ratio_points for pt in point_types] or [1])
    se.rm = _ints([pt.ratio_money for pt in point_types] or [1])
    se.accrues = _int_array(T)
    for t in range(len(single.accrues)):
        se.accrues[t] = 1 if single.accrues[t] else 0
    lo = node.lo
    k_total = node.hi - node.lo
    se.pay_type = _int_array(k_total)
    se.acc_type = _int_array(k_total)
    # Benefits as `Ben` structs, indexed from the group's first benefit.
    nb = 0
    for child, _effect in children:
        nb += child.hi - child.lo
    se.bens = <Ben*>malloc((nb + 1) * sizeof(Ben))
    if se.bens == NULL:
        raise MemoryError()
    lines_flat = []
    se.child_lo = _int_array(n)
    se.child_hi = _int_array(n)
    se.child_seq = _int_array(n)
    se.child_ship = _int_array(n)
    se.child_acc_unbounded = _int_array(n)
    se.rem_touch = _int_array((n + 1) * L)
    se.rem_ship = _int_array(n + 1)
    se.rem_unbounded = _int_array(n + 1)
    touch = [None] * n
    mono = [False] * n
    se.rem_mono_add = _zeros((n + 1) * L)
    j = 0
    for c in range(n):
        child = children[c][0]
        se.child_lo[c] = j
        multi = child.hi - child.lo > 1
        se.child_seq[c] = 1 if promotions[child.promotion].sequential else 0
        lines_of_child = set()
        has_accrual = False
        cb = benefits[child.lo]
        mono[c] = (not multi and cb.kind == "discount" and cb.level == 0 and not cb.max_items)
        for k in range(child.lo, child.hi):
            cb = benefits[k]
            b = &se.bens[j]
            b.k = k - lo
            b.kind = _KINDS[cb.kind]
            b.vk = _VALUE_KINDS.get(cb.value_kind, V_POINTS)
            b.product = 1 if cb.level == 0 else 0
            b.point_type = cb.point_type if cb.point_type >= 0 else 0
            b.value = cb.value
            b.max_items = cb.max_items
            b.per_amount = cb.per_amount
            b.lines_lo = len(lines_flat)
            if cb.kind == "pay_with_points":
                se.pay_type[k - lo] = cb.point_type
            se.acc_type[k - lo] = cb.point_type if cb.is_accrual else 0
            if not rule_active[cb.rule_gid]:
                b.kind = 0
            elif b.product:
                rl = selection.rule_lines(cb.rule_gid)
                lines_flat.extend(rl)
                if b.kind != K_TEXT and not (b.kind == K_ACCRUE or b.kind == K_PER_SPENT):
                    lines_of_child.update(rl)
            elif b.kind == K_DISCOUNT or b.kind == K_PAY:
                lines_of_child.update(range(L))
            elif b.kind == K_SHIP:
                se.child_ship[c] = 1
            if b.kind == K_ACCRUE or b.kind == K_PER_SPENT:
                has_accrual = True
            b.lines_hi = len(lines_flat)
            j += 1
        se.child_hi[c] = j
        # An accrual after another benefit of a sequence may grow on a state with lower
        # prices (an order-level discount moves between lines): such a child is not bounded.
        if multi and has_accrual and se.child_seq[c]:
            se.child_acc_unbounded[c] = 1
        touch[c] = set() if mono[c] else lines_of_child
    se.rule_lines = _int_array(len(lines_flat))
    for i in range(len(lines_flat)):
        se.rule_lines[i] = lines_flat[i]
    # The group's state, and the walked one.
    se.s_pay = _ints(list(pay))
    se.s_budget = _zeros(T)
    se.budget = _zeros(T)
    for t in range(len(s.budget)):
        se.s_budget[t] = s.budget[t]
        se.budget[t] = s.budget[t]
    se.s_ship = s.ship
    se.ship = s.ship
    se.pay = _ints(list(pay))
    se.pm = _ints(list(s.pm))
    se.max_bp = node.max_discount_bp
    se.max_amount = node.max_discount_amount
    se.mup = node.min_unit_price
    se.mup_bp = node.min_unit_price_bp
    se.has_limits = 1 if node.has_limits else 0
    se.cap = _zeros(L)
    se.added = _zeros(L)
    se.ensure_tmp(max(3 * L + 3, T + 1, 64))
    for line in range(L):
        cap = line_cap(se, line)
        se.cap[line] = cap if cap < se.s_pay[line] else se.s_pay[line]
    # The children's effects on s.
    se.on_s = <Buf*>malloc(n * sizeof(Buf))
    se.seq_e = <Buf*>malloc((n + 1) * sizeof(Buf))
    if se.on_s == NULL or se.seq_e == NULL:
        raise MemoryError()
    memset(se.on_s, 0, n * sizeof(Buf))
    memset(se.seq_e, 0, (n + 1) * sizeof(Buf))
    se.child_ship_s = _zeros(n)
    se.child_acc = _zeros(n * T)
    se.rem_add = _zeros((n + 1) * L)
    se.rem_acc = _zeros((n + 1) * T)
    for c in range(n):
        for k, line, disc, pmon, ppts, acc, ship, text in children[c][1]:
            if not (_safe([disc, pmon, ppts, acc, ship])):
                return None
            x = entry(k - lo, line)
            x.disc = disc
            x.pmon = pmon
            x.ppts = ppts
            x.acc = acc
            x.ship = ship
            x.text = 1 if text else 0
            if disc < 0:
                return None
            buf_push(&se.on_s[c], x)
            if line < L:
                se.rem_add[c * L + line] += disc + pmon
                if mono[c]:
                    se.rem_mono_add[c * L + line] += disc + pmon
            if acc:
                se.child_acc[c * T + se.acc_type[k - lo]] += acc
            se.child_ship_s[c] += ship
    # Suffix sums: what children c.. add, accrue, touch.
    for c in range(n - 1, -1, -1):
        for line in range(L):
            se.rem_add[c * L + line] += se.rem_add[(c + 1) * L + line] if c + 1 < n else 0
            se.rem_touch[c * L + line] = se.rem_touch[(c + 1) * L + line] if c + 1 < n else 0
            se.rem_mono_add[c * L + line] += se.rem_mono_add[(c + 1) * L + line] if c + 1 < n else 0
        for line in touch[c]:
            se.rem_touch[c * L + line] = 1
        for t in range(T):
            se.rem_acc[c * T + t] = se.child_acc[c * T + t] + (
                se.rem_acc[(c + 1) * T + t] if c + 1 < n else 0
            )
        se.rem_ship[c] = se.child_ship[c] or (se.rem_ship[c + 1] if c + 1 < n else 0)
        se.rem_unbounded[c] = se.child_acc_unbounded[c] or (
            se.rem_unbounded[c + 1] if c + 1 < n else 0
        )
    se.sum_add = _zeros(L)
    se.seq_acc = _zeros(T)
    se.sum_acc = _zeros(T)
    se.stack = _int_array(n)
    se.rank_array = _sum_ranks(n)
    se.sum_rank = se.rank_array
    se.best_value = NEG
    se.best_rank = RANK_LAST
    se.best_size = RANK_LAST
    se.walk(0, 0)
    out = []
    for i in range(se.best.n):
        x = se.best.data[i]
        out.append((x.k + lo, x.line, x.disc, x.pmon, x.ppts, x.acc, x.ship, x.text != 0))
    return out
