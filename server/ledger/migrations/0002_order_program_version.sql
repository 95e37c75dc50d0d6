-- The program version an order was calculated on, written in the order's own transaction. It used
-- to be written after the commit into the state room's `order_versions` table, so a crash between
-- the two could lose it. NULL: an order written before this column whose version was never
-- recorded (the server then answers with the version applied when the order is read).
ALTER TABLE orders ADD COLUMN IF NOT EXISTS program_version bigint
    CONSTRAINT orders_program_version_positive CHECK (program_version > 0);

-- Carry over what the old after-commit table holds, where this database has it. The table itself
-- is left alone (it belongs to the state room, and a replica not yet upgraded may still write it).
DO $$
BEGIN
    IF to_regclass('order_versions') IS NOT NULL THEN
        UPDATE orders o SET program_version = v.version
        FROM order_versions v
        WHERE v.program = o.program AND v.order_id = o.order_id
          AND o.program_version IS NULL AND v.version > 0;
    END IF;
END
$$;
