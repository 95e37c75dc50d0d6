-- Guest orders: an anonymous buyer's order (no member_id) is stored like a member's, keyed by its
-- order id, with no member. It holds and commits only its promo code uses, so these two tables
-- are the only ones whose rows may belong to no member; transactions, lots, holds and balances
-- still always do. `member_pk` NULL means a guest (docs/ledger.md, "Guest orders"); a code use's
-- member is its order's.
ALTER TABLE orders ALTER COLUMN member_pk DROP NOT NULL;
ALTER TABLE promo_code_uses ALTER COLUMN member_pk DROP NOT NULL;
