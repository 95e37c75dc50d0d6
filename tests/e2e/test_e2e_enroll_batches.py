"""EnrollMembers with several members a message (`EnrollMemberRequest.members`, docs/reports.md,
"Bulk enrollment"): the same members, balances and events as one a message, errors naming the
member by its place in the whole stream, the per-stream limit counting members."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from arbiter.server.api import member as member_api
from arbiter.v1 import member_pb2
from tests.e2e.conftest import E2E, INITIAL_BONUS, PROGRAM, T0
from tests.e2e.test_e2e_members import error_of
from tests.e2e.test_e2e_members_full import stamp
from tests.ledger.ledger_support import check_invariants

pytestmark = pytest.mark.asyncio

INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT


def batch(*members: member_pb2.MemberEnrollment, own: str = "") -> member_pb2.EnrollMemberRequest:
    request = member_pb2.EnrollMemberRequest(program=PROGRAM, member_id=own)
    request.members.extend(members)
    return request


async def stream_of(
    requests: Sequence[member_pb2.EnrollMemberRequest],
) -> AsyncIterator[member_pb2.EnrollMemberRequest]:
    for request in requests:
        yield request


async def _live_members(pg_database: str) -> list[str]:
    import asyncpg

    conn = await asyncpg.connect(pg_database)
    try:
        rows = await conn.fetch("SELECT member_id FROM members WHERE NOT removed ORDER BY pk")
        await check_invariants(conn)
    finally:
        await conn.close()
    return [r["member_id"] for r in rows]


async def test_members_of_a_message_enroll_as_one_a_message(e2e: E2E, pg_database: str) -> None:
    await e2e.enroll("b-0")
    joined = member_pb2.MemberEnrollment(member_id="b-3", registration_field="joined",
                                         fields={"joined": "2024-02-01"})
    dated = member_pb2.MemberEnrollment(member_id="b-4",
                                        registered_at=stamp(T0 - timedelta(days=3)))
    requests = [
        batch(member_pb2.MemberEnrollment(member_id="b-1"),
              member_pb2.MemberEnrollment(member_id="b-2"), own="b-0"),
        batch(joined, dated, member_pb2.MemberEnrollment(member_id="b-2")),
        member_pb2.EnrollMemberRequest(program=PROGRAM, member_id="b-5"),
    ]
    result = await e2e.members.EnrollMembers(stream_of(requests))
    # b-0 was enrolled before and b-2 comes twice: 5 new, 2 already.
    assert (result.enrolled, result.already_enrolled) == (5, 2)
    # In the order of the stream, each member's own message first.
    assert await _live_members(pg_database) == ["b-0", "b-1", "b-2", "b-3", "b-4", "b-5"]
    got = {}
    for member_id in ("b-1", "b-3", "b-4", "b-5"):
        got[member_id] = await e2e.members.GetMember(
            member_pb2.GetMemberRequest(program=PROGRAM, member_id=member_id))
    assert got["b-1"].registered_at.ToDatetime(UTC) == T0
    assert got["b-3"].registered_at.ToDatetime(UTC) == datetime(2024, 2, 1, tzinfo=UTC)
    assert got["b-4"].registered_at.ToDatetime(UTC) == T0 - timedelta(days=3)
    for member in got.values():
        assert next(b for b in member.balances if b.point_type == "bonus").available == (
            INITIAL_BONUS)


async def test_a_bad_member_is_named_by_its_place_in_the_stream(e2e: E2E,
                                                                pg_database: str) -> None:
    ok = member_pb2.MemberEnrollment(member_id="ok")
    cases = [
        ([batch(ok, ok), batch(ok, member_pb2.MemberEnrollment(member_id=""))],
         "members[3].member_id"),
        ([batch(ok, own="own"), batch(member_pb2.MemberEnrollment(
            member_id="x", registration_field="joined", fields={"joined": "soon"}))],
         "members[2].fields[joined]"),
        ([batch(ok), batch(ok, member_pb2.MemberEnrollment(member_id="y" * 257))],
         "members[2].member_id"),
        ([batch(ok, ok), batch(member_pb2.MemberEnrollment(member_id="n\x00"))],
         "members[2].member_id"),
        ([batch(ok), member_pb2.EnrollMemberRequest(program="other", member_id="z")],
         "members[1].program"),
        # A message's own registration makes it a member of its own, which needs an id.
        ([batch(ok, own=""), member_pb2.EnrollMemberRequest(
            program=PROGRAM, registered_at=stamp(T0), members=[ok])],
         "members[1].member_id"),
    ]
    for requests, field in cases:
        assert await error_of(e2e.members.EnrollMembers(stream_of(requests))) == (
            INVALID_ARGUMENT, [field]), field
    # Nothing of the chunk a bad member is in was written.
    assert await _live_members(pg_database) == []


async def test_the_stream_limit_counts_members_not_messages(
    e2e: E2E, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(member_api, "MAX_ENROLL_STREAM", 5)

    def members(*ids: str) -> member_pb2.EnrollMemberRequest:
        return batch(*(member_pb2.MemberEnrollment(member_id=m) for m in ids))

    done = await e2e.members.EnrollMembers(stream_of([members("a", "b", "c"), members("d", "e")]))
    assert done.enrolled == 5
    assert await error_of(e2e.members.EnrollMembers(stream_of(
        [members("f", "g", "h"), members("i", "j", "k")]))) == (INVALID_ARGUMENT, ["members"])


async def test_enroll_member_refuses_a_batch(e2e: E2E) -> None:
    request = batch(member_pb2.MemberEnrollment(member_id="b-1"), own="b-0")
    assert await error_of(e2e.members.EnrollMember(request)) == (INVALID_ARGUMENT, ["members"])
