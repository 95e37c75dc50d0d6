-- Active members by UTC day (docs/reports.md, "Staying fast"): a report's `active` is a
-- distinct count, which hourly sums cannot give. For each program, every transaction created
-- and every confirmed order of a member before `report_rollups.active_to` (a UTC midnight) is
-- reduced to the days the member was active:
--
--   report_active_days    per program, UTC day and the member's previous active day (NULL:
--                         none), how many members were active that day;
--   report_member_months  per member and UTC month, the days it was active (bit d - 1: day d);
--   report_member_last    per member, its last active day (the next roll-up's `previous`).
--
-- The members active on the days [A, B) are the rows of report_active_days with `day` in [A, B)
-- and `previous` before A (or NULL): each member once, on its first active day of the window.
-- Rolled up lazily by the report with the hourly rollups, in the same transaction and under the
-- same row lock; never by the write path. The backfill of an existing ledger is that roll-up:
-- `active_to` starts at the beginning of time, so the first report after this migration reduces
-- the program's whole history once.
ALTER TABLE report_rollups
    ADD COLUMN active_to timestamptz NOT NULL DEFAULT '0001-01-02 00:00:00+00';

CREATE TABLE report_active_days (
    program  text   NOT NULL,
    day      date   NOT NULL,
    previous date,
    members  bigint NOT NULL
);
CREATE INDEX report_active_days_day ON report_active_days (program, day)
    INCLUDE (previous, members);

CREATE TABLE report_member_months (
    member_pk bigint  NOT NULL,
    month     date    NOT NULL,  -- the first of the month
    days      integer NOT NULL,
    PRIMARY KEY (member_pk, month) INCLUDE (days)  -- a report's probes read the index alone
);

CREATE TABLE report_member_last (
    member_pk bigint PRIMARY KEY,
    day       date   NOT NULL
);

-- A report's `outstanding` sums every balance row less the removed members' (docs/reports.md).
CREATE INDEX members_removed ON members (pk) WHERE removed;
