-- Reports and backtesting (docs/reports.md).
--
-- What an order was calculated from, so that a backtest can calculate it again: the
-- CalculateOrderRequest (protobuf bytes, as the caller sent it), the member state the calculation
-- saw (balances, tiers, segments; NULL for a guest order) and the uses of its codes, and the
-- instant of the calculation. Written in the same statement as the order; never updated.
CREATE TABLE order_inputs (
    order_pk      bigint      PRIMARY KEY REFERENCES orders (pk),
    request       bytea       NOT NULL,
    member        jsonb,
    code_usage    jsonb       NOT NULL,
    calculated_at timestamptz NOT NULL
);

-- The figures of a stored result a report sums, kept beside it (the result's `totals` are
-- [subtotal, discount, paid_with_points, shipping, shipping_discount, total, items]).
ALTER TABLE orders
    ADD COLUMN discount bigint GENERATED ALWAYS AS ((result -> 'totals' ->> 1)::bigint) STORED,
    ADD COLUMN paid_with_points bigint
        GENERATED ALWAYS AS ((result -> 'totals' ->> 2)::bigint) STORED;

-- The report's scans: transactions by program and time (the index alone answers), orders by
-- the instant they were confirmed and cancelled, returns by time.
CREATE INDEX transactions_program_time ON transactions (program, created_at)
    INCLUDE (point_type, type, value, member_pk);
CREATE INDEX orders_program_confirmed ON orders (program, confirmed_at)
    INCLUDE (total, discount, paid_with_points, member_pk) WHERE confirmed_at IS NOT NULL;
CREATE INDEX orders_program_cancelled ON orders (program, cancelled_at)
    WHERE cancelled_at IS NOT NULL;
CREATE INDEX returns_time ON returns (created_at);
-- Program-wide ListTransactions pages by pk.
CREATE INDEX transactions_program_pk ON transactions (program, pk);
