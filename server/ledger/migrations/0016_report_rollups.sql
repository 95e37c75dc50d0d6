-- Hourly rollups of what a report sums (docs/reports.md, "Staying fast"). For each program,
-- every transaction created and every order confirmed before `report_rollups.rolled_to` (an
-- hour boundary) is summed in these tables, by the UTC hour it falls in; a report reads them for
-- the whole hours of its window and the ledger itself for the rest. Rolled up lazily, by the
-- report, for hours that ended at least an hour ago; never by the write path (no hot rows).
CREATE TABLE report_rollups (
    program   text        PRIMARY KEY,
    rolled_to timestamptz NOT NULL
);

CREATE TABLE report_hours (
    program    text        NOT NULL,
    hour       timestamptz NOT NULL,
    point_type text        NOT NULL,
    type       text        NOT NULL,
    value      bigint      NOT NULL,
    PRIMARY KEY (program, hour, point_type, type)
);

CREATE TABLE report_order_hours (
    program          text        NOT NULL,
    hour             timestamptz NOT NULL,
    orders           bigint      NOT NULL,
    revenue          bigint      NOT NULL,
    discount         bigint      NOT NULL,
    paid_with_points bigint      NOT NULL,
    PRIMARY KEY (program, hour)
);

CREATE TABLE report_promotion_hours (
    program   text        NOT NULL,
    hour      timestamptz NOT NULL,
    promotion text        NOT NULL,
    orders    bigint      NOT NULL,
    discount  bigint      NOT NULL,
    points    bigint      NOT NULL,
    PRIMARY KEY (program, hour, promotion)
);
