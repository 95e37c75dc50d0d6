-- The points ledger (docs/contract.md, "Members and the order lifecycle" and "Tiers"): members,
-- balances, lots, transactions, orders, holds, promo code uses, returns, tiers and the outbox.
-- Money and points are bigint; every instant is timestamptz written by the application (the
-- ledger takes `now` as an argument, never the database clock).

CREATE TABLE members (
    pk            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    program       text        NOT NULL,
    member_id     text        NOT NULL,
    registered_at timestamptz NOT NULL,
    created_at    timestamptz NOT NULL,
    removed       boolean     NOT NULL DEFAULT false,
    removed_at    timestamptz,
    CHECK (removed = (removed_at IS NOT NULL))
);
-- A removed member keeps its history; enrolling the id again starts a new member.
CREATE UNIQUE INDEX members_live ON members (program, member_id) WHERE NOT removed;

-- One row per (member, point type): the ledger balance (the sum of the transactions' values), the
-- lock every write of the member takes, and `unbacked`, the points spent beyond every lot (only a
-- type that allows a negative balance has any). Invariant: balance = sum(remaining of ACTIVE lots)
-- - unbacked.
CREATE TABLE balances (
    member_pk  bigint NOT NULL REFERENCES members (pk),
    point_type text   NOT NULL,
    balance    bigint NOT NULL DEFAULT 0,
    unbacked   bigint NOT NULL DEFAULT 0 CHECK (unbacked >= 0),
    txn_count  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (member_pk, point_type)
);

CREATE TABLE transactions (
    pk             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    program        text        NOT NULL,
    member_pk      bigint      NOT NULL REFERENCES members (pk),
    member_id      text        NOT NULL,
    point_type     text        NOT NULL,
    type           text        NOT NULL CHECK (type IN ('ACCRUAL', 'REDEMPTION', 'EXPIRATION',
                                   'REFUND', 'REVERSAL', 'ADJUSTMENT', 'RESET')),
    balance_before bigint      NOT NULL,
    value          bigint      NOT NULL,
    balance_after  bigint      NOT NULL,
    source_type    text        NOT NULL CHECK (source_type IN ('ORDER', 'TRIGGER_PROMOTION',
                                   'MANUAL', 'ENROLLMENT', 'EXPIRATION', 'TIER_RESET')),
    source_id      text        NOT NULL DEFAULT '',
    external_id    text        NOT NULL DEFAULT '',
    -- Set on requests idempotent by external_id (manual and trigger transactions).
    request_key    text,
    request_hash   text,
    comment        text        NOT NULL DEFAULT '',
    extra          jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at     timestamptz NOT NULL,
    CHECK (balance_after = balance_before + value),
    CHECK ((request_key IS NULL) = (request_hash IS NULL))
);
CREATE INDEX transactions_member ON transactions (member_pk, pk);
CREATE INDEX transactions_member_type ON transactions (member_pk, point_type, created_at);
CREATE UNIQUE INDEX transactions_request ON transactions (program, request_key)
    WHERE request_key IS NOT NULL;

-- A mistake is corrected by a new transaction, never by an edit.
CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'table % is append-only', TG_TABLE_NAME;
END;
$$;
CREATE TRIGGER transactions_append_only BEFORE UPDATE OR DELETE ON transactions
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();

CREATE TABLE orders (
    pk             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    program        text        NOT NULL,
    order_id       text        NOT NULL,
    member_pk      bigint      NOT NULL REFERENCES members (pk),
    state          text        NOT NULL CHECK (state IN ('RESERVED', 'CONFIRMED', 'CANCELLED')),
    payload_hash   text        NOT NULL,
    result         jsonb       NOT NULL,
    total          bigint      NOT NULL,
    hold_until     timestamptz,
    created_at     timestamptz NOT NULL,
    confirmed_at   timestamptz,
    delivered_at   timestamptz,
    delivery       jsonb,
    cancelled_at   timestamptz,
    cancellation   jsonb,
    UNIQUE (program, order_id)
);

-- Each accrual is a lot. PENDING: an ON_DELIVERY accrual not yet delivered (in no balance);
-- ACTIVE: counted; EXPIRED: its EXPIRATION written; VOIDED: a pending lot of a cancelled order.
CREATE TABLE lots (
    pk             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    member_pk      bigint      NOT NULL REFERENCES members (pk),
    point_type     text        NOT NULL,
    state          text        NOT NULL CHECK (state IN ('PENDING', 'ACTIVE', 'EXPIRED', 'VOIDED')),
    points         bigint      NOT NULL CHECK (points >= 0),
    remaining      bigint      NOT NULL CHECK (remaining >= 0),
    expired_points bigint      NOT NULL DEFAULT 0 CHECK (expired_points >= 0),
    -- Expired points of this lot that a reversal of its own accrual has already written off.
    expired_reversed bigint    NOT NULL DEFAULT 0,
    accrued_at     timestamptz NOT NULL,
    expires_at     timestamptz,
    order_pk       bigint      REFERENCES orders (pk),
    timing         text        NOT NULL DEFAULT '',
    txn_pk         bigint      REFERENCES transactions (pk),
    created_at     timestamptz NOT NULL,
    CHECK (state <> 'EXPIRED' OR remaining = 0),
    CHECK (expired_reversed >= 0 AND expired_reversed <= expired_points)
);
CREATE INDEX lots_member ON lots (member_pk, point_type) WHERE state IN ('ACTIVE', 'PENDING');
CREATE INDEX lots_due ON lots (expires_at) WHERE state = 'ACTIVE';
CREATE INDEX lots_order ON lots (order_pk) WHERE order_pk IS NOT NULL;

-- What a debit took from which lot, so that a cancellation gives points back where they came from.
CREATE TABLE lot_consumptions (
    pk        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lot_pk    bigint NOT NULL REFERENCES lots (pk),
    txn_pk    bigint NOT NULL REFERENCES transactions (pk),
    order_pk  bigint REFERENCES orders (pk),
    points    bigint NOT NULL CHECK (points > 0),
    restored  bigint NOT NULL DEFAULT 0,
    CHECK (restored >= 0 AND restored <= points)
);
CREATE INDEX lot_consumptions_order ON lot_consumptions (order_pk) WHERE order_pk IS NOT NULL;

-- A reservation's hold of one point type; it counts while state = 'HELD' and hold_until > now.
CREATE TABLE holds (
    pk         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_pk   bigint      NOT NULL REFERENCES orders (pk),
    member_pk  bigint      NOT NULL REFERENCES members (pk),
    point_type text        NOT NULL,
    points     bigint      NOT NULL CHECK (points > 0),
    hold_until timestamptz NOT NULL,
    state      text        NOT NULL CHECK (state IN ('HELD', 'POSTED', 'VOIDED')),
    created_at timestamptz NOT NULL,
    closed_at  timestamptz,
    CHECK ((state = 'HELD') = (closed_at IS NULL)),
    UNIQUE (order_pk, point_type)
);
CREATE INDEX holds_member ON holds (member_pk, point_type) WHERE state = 'HELD';

-- The lots a hold earmarks (never more than a lot's remaining points while the hold counts).
CREATE TABLE hold_lots (
    hold_pk bigint NOT NULL REFERENCES holds (pk),
    lot_pk  bigint NOT NULL REFERENCES lots (pk),
    points  bigint NOT NULL CHECK (points > 0),
    PRIMARY KEY (hold_pk, lot_pk)
);
CREATE INDEX hold_lots_lot ON hold_lots (lot_pk);

-- One row per code ever used: the lock that serialises the per-code max_uses check.
CREATE TABLE promo_codes (
    program text NOT NULL,
    code    text NOT NULL,
    PRIMARY KEY (program, code)
);

-- A use counts while CONFIRMED, or HELD with hold_until > now.
CREATE TABLE promo_code_uses (
    pk         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    program    text        NOT NULL,
    code       text        NOT NULL,
    pool       text        NOT NULL,
    member_pk  bigint      NOT NULL REFERENCES members (pk),
    order_pk   bigint      NOT NULL REFERENCES orders (pk),
    state      text        NOT NULL CHECK (state IN ('HELD', 'CONFIRMED', 'RELEASED')),
    hold_until timestamptz,
    created_at timestamptz NOT NULL,
    closed_at  timestamptz,
    FOREIGN KEY (program, code) REFERENCES promo_codes (program, code),
    UNIQUE (order_pk, code)
);
CREATE INDEX promo_code_uses_code ON promo_code_uses (program, code) WHERE state <> 'RELEASED';
CREATE INDEX promo_code_uses_member ON promo_code_uses (member_pk) WHERE state <> 'RELEASED';

CREATE TABLE returns (
    pk           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_pk     bigint      NOT NULL REFERENCES orders (pk),
    return_id    text        NOT NULL,
    request_hash text        NOT NULL,
    -- [[line_id, returned units]], then what the return took per line, type and kind.
    lines        jsonb       NOT NULL,
    allocation   jsonb       NOT NULL,
    movements    jsonb       NOT NULL,
    created_at   timestamptz NOT NULL,
    UNIQUE (order_pk, return_id)
);

CREATE TABLE tier_states (
    member_pk    bigint      NOT NULL REFERENCES members (pk),
    tier_group   text        NOT NULL,
    tier         text        NOT NULL,
    period_start timestamptz,
    period_end   timestamptz,
    -- extend_to_month_end: a downgrade decided at a period end, applied at pending_at.
    pending_tier text,
    pending_at   timestamptz,
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (member_pk, tier_group),
    CHECK ((pending_tier IS NULL) = (pending_at IS NULL))
);
CREATE INDEX tier_states_due ON tier_states (LEAST(period_end, pending_at))
    WHERE period_end IS NOT NULL OR pending_at IS NOT NULL;

CREATE TABLE tier_history (
    pk         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    member_pk  bigint      NOT NULL REFERENCES members (pk),
    tier_group text        NOT NULL,
    from_tier  text        NOT NULL,
    to_tier    text        NOT NULL,
    points     bigint      NOT NULL,
    reason     text        NOT NULL,
    changed_at timestamptz NOT NULL
);
CREATE INDEX tier_history_member ON tier_history (member_pk, pk);

-- Transactional outbox: written in the transaction of the change it reports, relayed later.
CREATE TABLE outbox (
    pk           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    program      text        NOT NULL,
    topic        text        NOT NULL CHECK (topic IN ('member.enrolled', 'points.accrued',
                                 'points.redeemed', 'points.expired', 'points.refunded',
                                 'tier.changed', 'order.confirmed', 'order.cancelled',
                                 'order.returned')),
    member_id    text        NOT NULL,
    payload      jsonb       NOT NULL,
    created_at   timestamptz NOT NULL,
    published_at timestamptz
);
CREATE INDEX outbox_unpublished ON outbox (pk) WHERE published_at IS NULL;
