-- One definition of a member's lock, for every writer. Until now the lock statement was written
-- twice: in `lock_member` (_book.py, every write but a new order's) and as steps 1-2 of
-- migration 0004's `ledger_lock_prefetch` (a new order's lock and read in one call). Two copies
-- of a lock order can drift apart, and writers that lock in different orders deadlock; here both
-- call `ledger_lock_member`, and `ledger_lock_prefetch` is redefined around it (same signature,
-- same statements in the same order, so the same rows are locked in the same order as before).
--
-- Snapshots, as in 0004: the function is VOLATILE, so under READ COMMITTED each of its
-- statements takes a new snapshot; the caller's next statement (or step 3 of
-- `ledger_lock_prefetch`) therefore sees what the holders of the locks it waited for committed.
--
-- The enrolled member `p_member_id`'s pk, or NULL when there is none (nothing is locked then):
--   1. insert the balance rows of the types `p_types` (sorted) the member lacks, then lock all
--      of its balance rows FOR UPDATE in point type order;
--   2. rows another transaction created after statement 1's snapshot (ON CONFLICT waited for it
--      and did nothing, `locked` could not see them): lock them now, in point type order.
CREATE FUNCTION ledger_lock_member(p_program text, p_member_id text, p_types text[])
RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_member bigint;
    v_filled text[];
    v_locked text[];
    v_missing text[];
BEGIN
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
        RETURN NULL;
    END IF;
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
    RETURN v_member;
END;
$$;

-- Migration 0004's function with its steps 1-2 replaced by the call above; step 3 unchanged.
CREATE OR REPLACE FUNCTION ledger_lock_prefetch(
    p_program text, p_member_id text, p_types text[], p_now timestamptz, p_order_id text,
    p_wanted_types text[], p_wanted_points bigint[],
    OUT member_pk bigint, OUT member_id text, OUT registered_at timestamptz, OUT removed boolean,
    OUT order_pk bigint, OUT balances ledger_prefetch_balance[], OUT tiers ledger_prefetch_tier[],
    OUT pools ledger_prefetch_pool[], OUT lots ledger_prefetch_lot[]
) LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    v_member bigint;
BEGIN
    v_member := ledger_lock_member(p_program, p_member_id, p_types);
    IF v_member IS NULL THEN
        RETURN;
    END IF;
    member_pk := v_member;

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
