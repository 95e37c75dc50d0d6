-- A new order's lock and read (see _prefetch.py) as one function call: one round trip where
-- ConfirmOrder and ReserveOrder sent two (`lock_member`, then the prefetch statement). The
-- function runs the very statements the client sent, in the same order, so the same rows are
-- locked FOR UPDATE in the same order as before (the member's balance rows in point type order,
-- inserting the missing ones first; then, in the read, the order row if it exists):
--   1. insert the balance rows the member lacks and lock all of its rows (as `_LOCK_SQL`);
--   2. only when some row was created by another transaction after statement 1's snapshot
--      (ON CONFLICT waited for it, `locked` could not see it): lock those rows;
--   3. read everything the calculation and the postings need, and lock the order row.
--
-- Snapshots. The read must see everything that the holders of the locks we waited for
-- committed. ConfirmOrder's transaction is a plain BEGIN (Ledger._write), so it runs at the
-- server's default isolation, READ COMMITTED. There each statement takes a new snapshot once it
-- starts, and a PL/pgSQL function's statements are statements of their own: a VOLATILE function
-- (this one; never mark it STABLE or IMMUTABLE, whose statements reuse the caller's snapshot)
-- gets a fresh snapshot for each SQL statement it runs. Statement 3 therefore starts after
-- statements 1 and 2 returned, i.e. after every lock was granted, and its snapshot sees what the
-- previous holders committed: exactly as when the client sent them one after the other. Were the
-- default isolation REPEATABLE READ or SERIALIZABLE, all three statements would share the
-- transaction's snapshot, again exactly as the separate statements would (a lock on a row changed
-- after that snapshot then fails with a serialization error, and Ledger._write runs again).
--
-- A PL/pgSQL function cannot return anonymous record arrays, so the read's rows have types.
-- The function keeps PostgreSQL's default plan cache mode: its statements are planned like the
-- client's prepared statements were.
CREATE TYPE ledger_prefetch_balance AS (
    point_type text, balance bigint, unbacked bigint, expired bigint, held bigint
);
CREATE TYPE ledger_prefetch_tier AS (
    tier_group text, tier text, period_start timestamptz, period_end timestamptz,
    pending_tier text, pending_at timestamptz
);
CREATE TYPE ledger_prefetch_pool AS (pool text, uses bigint);
CREATE TYPE ledger_prefetch_lot AS (
    point_type text, pk bigint, expires_at timestamptz, free bigint
);

-- p_types: the program's point types (sorted); p_wanted_types / p_wanted_points: the types the
-- order asks to redeem (sorted) and how many points of each. member_pk is NULL (and nothing else
-- is read) when there is no enrolled member `p_member_id`. Free lots come best first
-- (soonest-expiring, never-expiring last, then oldest, as `Book.free_lots`), each type only as far
-- as needed to cover what the order asks for.
CREATE FUNCTION ledger_lock_prefetch(
    p_program text, p_member_id text, p_types text[], p_now timestamptz, p_order_id text,
    p_wanted_types text[], p_wanted_points bigint[],
    OUT member_pk bigint, OUT member_id text, OUT registered_at timestamptz, OUT removed boolean,
    OUT order_pk bigint, OUT balances ledger_prefetch_balance[], OUT tiers ledger_prefetch_tier[],
    OUT pools ledger_prefetch_pool[], OUT lots ledger_prefetch_lot[]
) LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    v_member bigint;
    v_filled text[];
    v_locked text[];
    v_missing text[];
BEGIN
    -- 1. Create the rows of types the member lacks, then lock its rows in point type order.
    WITH m AS (
        SELECT pk FROM members WHERE program = p_program AND member_id = p_member_id AND NOT removed
    ), filled AS (
        INSERT INTO balances (member_pk, point_type)
        SELECT m.pk, t FROM m, unnest(p_types) AS t ORDER BY t
        ON CONFLICT DO NOTHING
        RETURNING point_type
    ), locked AS (
        SELECT b.point_type FROM balances b
        WHERE b.member_pk = (SELECT pk FROM m)
        ORDER BY b.point_type FOR UPDATE
    )
    SELECT (SELECT pk FROM m), ARRAY(SELECT point_type FROM filled),
           ARRAY(SELECT point_type FROM locked)
    INTO v_member, v_filled, v_locked;
    IF v_member IS NULL THEN
        RETURN;
    END IF;
    member_pk := v_member;

    -- 2. Rows another transaction created after statement 1's snapshot: lock them now.
    v_missing := ARRAY(
        SELECT t FROM unnest(p_types) AS t
        WHERE t <> ALL (v_filled) AND t <> ALL (v_locked)
        ORDER BY t
    );
    IF cardinality(v_missing) > 0 THEN
        PERFORM 1 FROM balances b
        WHERE b.member_pk = v_member AND b.point_type = ANY (v_missing)
        ORDER BY b.point_type FOR UPDATE;
    END IF;

    -- 3. The read, in a snapshot taken now that every lock is held; the order row is locked
    -- after the member's, as everywhere.
    WITH existing AS (
        SELECT o.pk FROM orders o WHERE o.program = p_program AND o.order_id = p_order_id
        FOR UPDATE
    ), earmarks AS (
        SELECT hl.lot_pk, sum(hl.points)::bigint AS points
        FROM hold_lots hl JOIN holds h ON h.pk = hl.hold_pk
        WHERE h.member_pk = v_member AND h.state = 'HELD' AND h.hold_until > p_now
          AND h.point_type = ANY (p_wanted_types)
        GROUP BY hl.lot_pk
    ), free AS (
        SELECT l.point_type, l.pk, l.expires_at, l.accrued_at,
               l.remaining - COALESCE(e.points, 0) AS free, w.points AS wanted
        FROM unnest(p_wanted_types, p_wanted_points) AS w(point_type, points)
        JOIN lots l ON l.member_pk = v_member AND l.point_type = w.point_type
        LEFT JOIN earmarks e ON e.lot_pk = l.pk
        WHERE l.state = 'ACTIVE' AND l.remaining > 0
          AND (l.expires_at IS NULL OR l.expires_at > p_now)
          AND l.remaining > COALESCE(e.points, 0)
    ), ranked AS (
        SELECT f.*, sum(f.free) OVER (
                   PARTITION BY f.point_type
                   ORDER BY f.expires_at ASC NULLS LAST, f.accrued_at, f.pk
               ) - f.free AS before
        FROM free f
    )
    SELECT
        m.member_id, m.registered_at, m.removed,
        (SELECT pk FROM existing),
        ARRAY(
            SELECT ROW(b.point_type, b.balance, b.unbacked,
                COALESCE((SELECT sum(l.remaining) FROM lots l
                          WHERE l.member_pk = b.member_pk AND l.point_type = b.point_type
                            AND l.state = 'ACTIVE' AND l.expires_at <= p_now), 0)::bigint,
                COALESCE((SELECT sum(h.points) FROM holds h
                          WHERE h.member_pk = b.member_pk AND h.point_type = b.point_type
                            AND h.state = 'HELD' AND h.hold_until > p_now), 0)::bigint
            )::ledger_prefetch_balance
            FROM balances b WHERE b.member_pk = m.pk ORDER BY b.point_type
        ),
        ARRAY(
            SELECT ROW(t.tier_group, t.tier, t.period_start, t.period_end, t.pending_tier,
                       t.pending_at)::ledger_prefetch_tier
            FROM tier_states t WHERE t.member_pk = m.pk ORDER BY t.tier_group
        ),
        ARRAY(
            SELECT ROW(u.pool, count(*))::ledger_prefetch_pool FROM promo_code_uses u
            WHERE u.member_pk = m.pk
              AND (u.state = 'CONFIRMED' OR (u.state = 'HELD' AND u.hold_until > p_now))
            GROUP BY u.pool ORDER BY u.pool
        ),
        ARRAY(
            SELECT ROW(r.point_type, r.pk, r.expires_at, r.free)::ledger_prefetch_lot
            FROM ranked r
            WHERE r.before < r.wanted
            ORDER BY r.point_type, r.expires_at ASC NULLS LAST, r.accrued_at, r.pk
        )
    INTO member_id, registered_at, removed, order_pk, balances, tiers, pools, lots
    FROM members m WHERE m.pk = v_member;
END;
$$;
