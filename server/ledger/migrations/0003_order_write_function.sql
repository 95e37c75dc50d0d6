-- The writes of a newly confirmed order (see _batch.py) as one function, so that PostgreSQL plans
-- them once per connection instead of on every call. Sent as one statement of nine CTEs, the
-- write got a custom plan each time (its parameters are arrays): planning was about a third of
-- the database's CPU per ConfirmOrder. A function's statements keep their plans for the session;
-- `force_generic_plan` makes that so from the first call.
--
-- A generic plan cannot see how many rows an array holds, so a join of an array with `lots` or
-- `balances` might become a sequential scan of the table. The rows that already exist are
-- therefore updated one at a time by primary key (a plan that stays an index lookup however the
-- table grows); everything else only inserts.
--
-- Arrays are columns of rows; `*_txn` columns are 1-based indexes into this call's transactions
-- (NULL: none). Rows are inserted in array order, so identities increase in posting order.
CREATE FUNCTION ledger_write_order(
    p_program text, p_order_id text, p_member_pk bigint, p_member_id text,
    p_payload_hash text, p_result jsonb, p_total bigint, p_now timestamptz,
    p_program_version bigint,
    t_point_type text[], t_type text[], t_before bigint[], t_value bigint[], t_after bigint[],
    b_point_type text[], b_balance bigint[], b_unbacked bigint[], b_added bigint[],
    c_lot_pk bigint[], c_txn int[], c_points bigint[],
    l_point_type text[], l_state text[], l_points bigint[], l_remaining bigint[],
    l_expires_at timestamptz[], l_timing text[], l_txn int[],
    u_code text[], u_pool text[],
    e_topic text[], e_payload text[], e_txn int[],
    OUT order_pk bigint, OUT txn_pks bigint[]
) LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    i int;
    lot bigint;
    taken bigint;
BEGIN
    SELECT ARRAY(
        SELECT nextval(pg_get_serial_sequence('transactions', 'pk'))
        FROM generate_series(1, cardinality(t_point_type))
    ) INTO txn_pks;

    INSERT INTO orders (program, order_id, member_pk, state, payload_hash, result, total,
        created_at, confirmed_at, program_version)
    VALUES (p_program, p_order_id, p_member_pk, 'CONFIRMED', p_payload_hash, p_result, p_total,
        p_now, p_now, p_program_version)
    RETURNING pk INTO order_pk;

    INSERT INTO transactions (pk, program, member_pk, member_id, point_type, type,
        balance_before, value, balance_after, source_type, source_id, external_id, created_at)
    OVERRIDING SYSTEM VALUE
    SELECT txn_pks[x.n], p_program, p_member_pk, p_member_id, x.point_type, x.type, x.before,
        x.value, x.after, 'ORDER', p_order_id, p_order_id, p_now
    FROM unnest(t_point_type, t_type, t_before, t_value, t_after)
        WITH ORDINALITY AS x(point_type, type, before, value, after, n)
    ORDER BY x.n;

    FOR i IN 1 .. coalesce(cardinality(b_point_type), 0) LOOP
        UPDATE balances SET balance = b_balance[i], unbacked = b_unbacked[i],
            txn_count = txn_count + b_added[i]
        WHERE member_pk = p_member_pk AND point_type = b_point_type[i];
    END LOOP;

    -- A lot taken twice (two debits of one type) is updated once, by the sum.
    FOR lot, taken IN
        SELECT x.lot_pk, sum(x.points)::bigint FROM unnest(c_lot_pk, c_points) AS x(lot_pk, points)
        GROUP BY x.lot_pk ORDER BY x.lot_pk
    LOOP
        UPDATE lots SET remaining = remaining - taken WHERE pk = lot;
    END LOOP;

    INSERT INTO lot_consumptions (lot_pk, txn_pk, order_pk, points)
    SELECT x.lot_pk, txn_pks[x.txn], order_pk, x.points
    FROM unnest(c_lot_pk, c_txn, c_points) WITH ORDINALITY AS x(lot_pk, txn, points, n)
    ORDER BY x.n;

    INSERT INTO lots (member_pk, point_type, state, points, remaining, accrued_at, expires_at,
        order_pk, timing, txn_pk, created_at)
    SELECT p_member_pk, x.point_type, x.state, x.points, x.remaining, p_now, x.expires_at,
        order_pk, x.timing, txn_pks[x.txn], p_now
    FROM unnest(l_point_type, l_state, l_points, l_remaining, l_expires_at, l_timing, l_txn)
        WITH ORDINALITY AS x(point_type, state, points, remaining, expires_at, timing, txn, n)
    ORDER BY x.n;

    INSERT INTO promo_code_uses (program, code, pool, member_pk, order_pk, state, created_at)
    SELECT p_program, x.code, x.pool, p_member_pk, order_pk, 'CONFIRMED', p_now
    FROM unnest(u_code, u_pool) WITH ORDINALITY AS x(code, pool, n)
    ORDER BY x.n;

    INSERT INTO outbox (program, topic, member_id, payload, created_at)
    SELECT p_program, x.topic, p_member_id,
        CASE WHEN x.txn IS NULL THEN x.payload::jsonb
             ELSE x.payload::jsonb || jsonb_build_object('transaction_id', txn_pks[x.txn]::text)
        END,
        p_now
    FROM unnest(e_topic, e_payload, e_txn) WITH ORDINALITY AS x(topic, payload, txn, n)
    ORDER BY x.n;
END;
$$;
