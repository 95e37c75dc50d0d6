"""AdminService end to end: drafts, versions, Apply/Revert/Import/Export, test mode, the audit
journal, restarts, concurrency and a quote storm across an Apply (docs/admin.md).

The draft edit RPCs (Upsert..., CreatePromotion, MoveNode, ...) and GetDraftDiff are tested in
test_e2e_admin_edits.py.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from arbiter.server.api.program_file import program_to_json
from arbiter.server.app.wiring import App
from arbiter.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    checkout_pb2,
    checkout_pb2_grpc,
    member_pb2,
    member_pb2_grpc,
    program_pb2,
)
from tests.e2e.admin_support import (
    actions,
    anonymous_quote,
    bad_request_of,
    detail,
    discount_program,
    journal,
    promotions_of,
    rpc_error,
    status_of,
)
from tests.e2e.conftest import (
    INITIAL_BONUS,
    PROGRAM,
    MovableClock,
    as_calculate,
    e2e_settings,
    order_request,
    shop_program,
)
from tests.e2e.test_e2e_quote_cache import Stoppable, stoppable_pg  # noqa: F401 (a fixture)

pytestmark = pytest.mark.asyncio

NOT_FOUND = grpc.StatusCode.NOT_FOUND
FAILED_PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT
ALREADY_EXISTS = grpc.StatusCode.ALREADY_EXISTS


@dataclass
class Admin:
    app: App
    clock: MovableClock
    admin: admin_pb2_grpc.AdminServiceStub
    checkout: checkout_pb2_grpc.CheckoutServiceStub
    members: member_pb2_grpc.MemberServiceStub

    async def import_(self, program: program_pb2.Program) -> None:
        await self.admin.ImportProgram(admin_pb2.ImportProgramRequest(program=program))

    async def apply(self, program_id: str) -> int:
        response = await self.admin.Apply(admin_pb2.ApplyRequest(program=program_id))
        return response.version

    async def get(self, program_id: str, *, draft: bool = False) -> admin_pb2.GetProgramResponse:
        return await self.admin.GetProgram(
            admin_pb2.GetProgramRequest(program=program_id, draft=draft)
        )

    async def export(self, program_id: str, *, draft: bool) -> program_pb2.Program:
        response = await self.admin.ExportProgram(
            admin_pb2.ExportProgramRequest(program=program_id, draft=draft)
        )
        return response.program

    async def versions(self, program_id: str) -> list[int]:
        assert self.app.ledger is not None
        rows = await self.app.ledger.pool.fetch(
            "SELECT version FROM program_versions WHERE program = $1 ORDER BY version",
            program_id,
        )
        return [r["version"] for r in rows]


@asynccontextmanager
async def served(dsn: str, clock: MovableClock) -> AsyncIterator[Admin]:
    """A server on `dsn` with no --program: it serves what storage holds."""
    app = App(e2e_settings(dsn), clock=clock)
    await app.open()
    try:
        await app.ready()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
            yield Admin(
                app,
                clock,
                admin_pb2_grpc.AdminServiceStub(channel),
                checkout_pb2_grpc.CheckoutServiceStub(channel),
                member_pb2_grpc.MemberServiceStub(channel),
            )
    finally:
        await app.stop(0)


@pytest.fixture
async def admin(pg_database: str, clock: MovableClock) -> AsyncIterator[Admin]:
    """The shop program applied (version 1) by configuration as code, as `e2e` has it."""
    async with served(pg_database, clock) as served_admin:
        await served_admin.app.apply_program(shop_program())
        yield served_admin


# --- Programs: create, get, list, import, export. ----------------------------------------------


async def test_an_import_of_a_new_id_creates_a_program_with_only_a_draft(admin: Admin) -> None:
    new = discount_program("fresh", {"D": 10})
    await admin.import_(new)

    got = await admin.get("fresh")
    # Never applied: GetProgram answers the draft, as version 0, with changes.
    assert (got.program, got.version, got.has_draft_changes) == (new, 0, True)
    assert (await admin.get("fresh", draft=True)).program == new
    assert await admin.export("fresh", draft=True) == new
    assert await status_of(admin.export("fresh", draft=False)) == NOT_FOUND
    listed = await admin.admin.ListPrograms(admin_pb2.ListProgramsRequest())
    assert [(p.id, p.name, p.version) for p in listed.programs] == [
        ("fresh", "fresh", 0),
        (PROGRAM, "Shop", 1),
    ]
    # Not served until applied.
    assert await status_of(admin.checkout.CalculateOrder(anonymous_quote("fresh"))) == NOT_FOUND

    assert await admin.apply("fresh") == 1
    got = await admin.get("fresh")
    assert (got.program, got.version, got.has_draft_changes) == (new, 1, False)
    assert await admin.export("fresh", draft=False) == new
    quoted = await admin.checkout.CalculateOrder(anonymous_quote("fresh"))
    assert (quoted.program_version, quoted.totals.discount) == (1, 1_000)


async def test_an_import_replaces_the_draft_only_until_apply(admin: Admin) -> None:
    applied = shop_program()
    changed = shop_program(pay_bp=2000)
    await admin.import_(changed)

    got = await admin.get(PROGRAM)
    assert (got.program, got.version, got.has_draft_changes) == (applied, 1, True)
    assert (await admin.get(PROGRAM, draft=True)).program == changed
    assert await admin.export(PROGRAM, draft=False) == applied
    assert await admin.export(PROGRAM, draft=True) == changed
    # Quotes stay on version 1 until the Apply.
    await admin.members.EnrollMember(member_pb2.EnrollMemberRequest(program=PROGRAM, member_id="m"))
    quote = as_calculate(order_request("o-1", "m", redeem=900))
    before = await admin.checkout.CalculateOrder(quote)
    assert (before.program_version, before.totals.paid_with_points) == (1, 500)

    assert await admin.apply(PROGRAM) == 2
    after = await admin.checkout.CalculateOrder(quote)
    assert (after.program_version, after.totals.paid_with_points) == (2, 200)
    got = await admin.get(PROGRAM)
    assert (got.program, got.version, got.has_draft_changes) == (changed, 2, False)
    assert await admin.versions(PROGRAM) == [1, 2]


async def test_create_program_makes_a_draft_and_refuses_an_existing_id(admin: Admin) -> None:
    program = program_pb2.Program(id="new", name="New", currency="RUB", database="crm")
    created = await admin.admin.CreateProgram(admin_pb2.CreateProgramRequest(program=program))
    assert created.program == program
    got = await admin.get("new")
    assert (got.program, got.version, got.has_draft_changes) == (program, 0, True)

    again = admin_pb2.CreateProgramRequest(program=program_pb2.Program(id="new"))
    assert await status_of(admin.admin.CreateProgram(again)) == ALREADY_EXISTS
    shop = admin_pb2.CreateProgramRequest(program=program_pb2.Program(id=PROGRAM))
    assert await status_of(admin.admin.CreateProgram(shop)) == ALREADY_EXISTS
    code, violations = await bad_request_of(
        admin.admin.CreateProgram(admin_pb2.CreateProgramRequest())
    )
    assert code == INVALID_ARGUMENT and [f for f, _ in violations] == ["program.id"]
    # The draft of a program with no promotions compiles: Apply makes version 1.
    assert await admin.apply("new") == 1


async def test_unknown_programs_are_not_found_everywhere(admin: Admin) -> None:
    a = admin.admin
    calls = [
        a.GetProgram(admin_pb2.GetProgramRequest(program="nope")),
        a.ExportProgram(admin_pb2.ExportProgramRequest(program="nope", draft=True)),
        a.ExportProgram(admin_pb2.ExportProgramRequest(program="nope")),
        a.Apply(admin_pb2.ApplyRequest(program="nope")),
        a.Revert(admin_pb2.RevertRequest(program="nope")),
        a.GetDraftDiff(admin_pb2.GetDraftDiffRequest(program="nope")),
        a.ListAuditEntries(admin_pb2.ListAuditEntriesRequest(program="nope")),
        a.TestCalculateOrder(
            admin_pb2.TestCalculateOrderRequest(program="nope", order=anonymous_quote("x").order)
        ),
        a.TestCalculateOrder(
            admin_pb2.TestCalculateOrderRequest(
                program="nope", use_draft=True, order=anonymous_quote("x").order
            )
        ),
    ]
    for call in calls:
        assert await status_of(call) == NOT_FOUND


async def test_a_request_without_a_program_names_the_field(admin: Admin) -> None:
    a = admin.admin
    calls = [
        a.GetProgram(admin_pb2.GetProgramRequest()),
        a.ImportProgram(admin_pb2.ImportProgramRequest()),
        a.ExportProgram(admin_pb2.ExportProgramRequest()),
        a.Apply(admin_pb2.ApplyRequest()),
        a.Revert(admin_pb2.RevertRequest()),
        a.GetDraftDiff(admin_pb2.GetDraftDiffRequest()),
        a.ListAuditEntries(admin_pb2.ListAuditEntriesRequest()),
        a.TestCalculateOrder(admin_pb2.TestCalculateOrderRequest()),
    ]
    for call in calls:
        code, violations = await bad_request_of(call)
        assert code == INVALID_ARGUMENT
        assert [f for f, _ in violations] in (["program"], ["program.id"])


async def test_without_keys_the_journal_names_the_local_actor(admin: Admin) -> None:
    """Auth off (no admin key): every change is journaled as "local" (docs/security.md)."""
    await admin.admin.Revert(admin_pb2.RevertRequest(program=PROGRAM))
    exported = await admin.admin.ExportProgram(admin_pb2.ExportProgramRequest(program=PROGRAM))
    program = exported.program
    program.name = "renamed"
    await admin.admin.UpdateProgram(admin_pb2.UpdateProgramRequest(program=program))
    page = await admin.admin.ListAuditEntries(
        admin_pb2.ListAuditEntriesRequest(program=PROGRAM, page_size=1000)
    )
    assert page.entries and {e.actor for e in page.entries} == {"local"}


# --- Apply. ------------------------------------------------------------------------------------


async def test_apply_of_an_unchanged_draft_answers_the_applied_version_and_makes_none(
    admin: Admin,
) -> None:
    before = await journal(admin.admin, PROGRAM)
    assert await admin.apply(PROGRAM) == 1
    assert await admin.apply(PROGRAM) == 1
    assert await admin.versions(PROGRAM) == [1]
    assert await journal(admin.admin, PROGRAM) == before
    # A draft changed and changed back is unchanged too.
    await admin.import_(shop_program(pay_bp=2000))
    await admin.import_(shop_program())
    assert await admin.apply(PROGRAM) == 1
    assert await admin.versions(PROGRAM) == [1]


async def test_apply_of_an_invalid_draft_names_every_bad_field_and_changes_nothing(
    admin: Admin,
) -> None:
    bad = shop_program()
    bad.promotions[0].product_rules[0].benefits[0].pay_with_points.point_type = "ghost"
    bad.promotions[1].product_rules[0].benefits[0].accrue_points.percent_bp = 0
    bad.promotions[1].product_rules[0].benefits[0].accrue_points.ClearField("points")
    bad.arbitration.children.add(promotion="missing")
    await admin.import_(bad)  # a draft may be invalid while it is edited
    entries = await journal(admin.admin, PROGRAM)

    apply = admin.admin.Apply(admin_pb2.ApplyRequest(program=PROGRAM))
    code, violations = await bad_request_of(apply)
    assert code == FAILED_PRECONDITION
    fields = [field for field, _ in violations]
    assert any(f.startswith("promotion P: ") and "point_type" in f for f in fields), fields
    assert any(f.startswith("program shop: arbitration") for f in fields), fields
    assert len(fields) >= 2
    # Nothing changed: no version, no journal entry, quotes on version 1, the draft kept.
    assert await admin.versions(PROGRAM) == [1]
    assert await journal(admin.admin, PROGRAM) == entries
    assert admin.app.programs.get(PROGRAM).version == 1
    assert (await admin.get(PROGRAM, draft=True)).program == bad


async def test_only_one_active_program_per_database_and_the_database_never_changes(
    admin: Admin,
) -> None:
    await admin.import_(discount_program("a", {"D": 10}, database="crm"))
    assert await admin.apply("a") == 1
    # A second program of the same database may be drafted, not applied.
    await admin.import_(discount_program("b", {"D": 20}, database="crm"))
    assert await status_of(admin.admin.Apply(admin_pb2.ApplyRequest(program="b"))) == (
        FAILED_PRECONDITION
    )
    assert (await admin.get("b")).version == 0
    # Another database is another matter.
    await admin.import_(discount_program("c", {"D": 20}, database="erp"))
    assert await admin.apply("c") == 1
    # The database of a program never changes: an import that moves it is refused.
    moved = discount_program("a", {"D": 15}, database="erp")
    assert await status_of(admin.import_(moved)) == FAILED_PRECONDITION
    assert (await admin.get("a", draft=True)).program.database == "crm"


# --- Revert. -----------------------------------------------------------------------------------


async def test_revert_throws_the_draft_away(admin: Admin) -> None:
    await admin.import_(shop_program(pay_bp=2000))
    await admin.admin.Revert(admin_pb2.RevertRequest(program=PROGRAM))
    got = await admin.get(PROGRAM, draft=True)
    assert (got.program, got.version, got.has_draft_changes) == (shop_program(), 1, False)
    assert await admin.apply(PROGRAM) == 1
    # Reverting an unchanged draft is a no-op, not an error.
    await admin.admin.Revert(admin_pb2.RevertRequest(program=PROGRAM))
    assert (await admin.get(PROGRAM, draft=True)).program == shop_program()


async def test_revert_of_a_never_applied_program_is_refused(admin: Admin) -> None:
    await admin.import_(discount_program("fresh", {"D": 10}))
    refused = admin.admin.Revert(admin_pb2.RevertRequest(program="fresh"))
    assert await status_of(refused) == FAILED_PRECONDITION
    assert (await admin.get("fresh", draft=True)).program == discount_program("fresh", {"D": 10})


# --- Test mode. --------------------------------------------------------------------------------


def _test_request(
    program_id: str, quote: checkout_pb2.CalculateOrderRequest, *, use_draft: bool
) -> admin_pb2.TestCalculateOrderRequest:
    request = admin_pb2.TestCalculateOrderRequest(
        program=program_id, member_id=quote.member_id, use_draft=use_draft
    )
    request.order.CopyFrom(quote.order)
    return request


async def test_test_mode_calculates_on_the_draft_or_the_applied_version_and_writes_nothing(
    admin: Admin,
) -> None:
    await admin.members.EnrollMember(member_pb2.EnrollMemberRequest(program=PROGRAM, member_id="m"))
    await admin.import_(shop_program(pay_bp=2000))
    quote = as_calculate(order_request("o-1", "m", redeem=900))

    on_draft = await admin.admin.TestCalculateOrder(_test_request(PROGRAM, quote, use_draft=True))
    assert (on_draft.result.program_version, on_draft.result.totals.paid_with_points) == (0, 200)
    on_applied = await admin.admin.TestCalculateOrder(
        _test_request(PROGRAM, quote, use_draft=False)
    )
    calculated = await admin.checkout.CalculateOrder(quote)
    assert on_applied.result.program_version == 1
    assert on_applied.result.totals == calculated.totals
    assert list(on_applied.result.benefits) == list(calculated.benefits)
    # Nothing written: the balance is the enrollment's, no order exists, no version was made.
    got = await admin.members.GetMember(member_pb2.GetMemberRequest(program=PROGRAM, member_id="m"))
    assert next(b.available for b in got.balances if b.point_type == "bonus") == INITIAL_BONUS
    confirmed = await admin.checkout.ConfirmOrder(order_request("o-1", "m", redeem=900))
    assert confirmed.result.program_version == 1
    assert await admin.versions(PROGRAM) == [1]


async def test_test_mode_on_an_invalid_draft_is_refused_like_apply(admin: Admin) -> None:
    bad = shop_program()
    bad.arbitration.children.add(promotion="missing")
    await admin.import_(bad)
    quote = as_calculate(order_request("o-1", "m"))
    code, violations = await bad_request_of(
        admin.admin.TestCalculateOrder(_test_request(PROGRAM, quote, use_draft=True))
    )
    assert code == FAILED_PRECONDITION and violations
    # The applied version still answers.
    await admin.members.EnrollMember(member_pb2.EnrollMemberRequest(program=PROGRAM, member_id="m"))
    on_applied = await admin.admin.TestCalculateOrder(
        _test_request(PROGRAM, quote, use_draft=False)
    )
    assert on_applied.result.program_version == 1


async def test_test_mode_follows_the_draft_as_it_changes(admin: Admin) -> None:
    quote = anonymous_quote("t")
    await admin.import_(discount_program("t", {"D": 10}))
    first = await admin.admin.TestCalculateOrder(_test_request("t", quote, use_draft=True))
    await admin.import_(discount_program("t", {"D": 30}))
    second = await admin.admin.TestCalculateOrder(_test_request("t", quote, use_draft=True))
    assert (first.result.totals.discount, second.result.totals.discount) == (1_000, 3_000)
    # The decision trace is the draft's: its promotion, applied.
    await admin.import_(discount_program("t", {"E": 30}))
    third = await admin.admin.TestCalculateOrder(_test_request("t", quote, use_draft=True))
    promotions = [e.node for e in third.trace if e.kind == admin_pb2.TRACE_NODE_KIND_PROMOTION]
    assert promotions == ["E"]
    assert third.result.program_version == 0
    # Never applied: the applied version does not exist.
    on_applied = admin.admin.TestCalculateOrder(_test_request("t", quote, use_draft=False))
    assert await status_of(on_applied) == NOT_FOUND


# --- The audit journal. ------------------------------------------------------------------------


async def test_the_journal_records_imports_applies_reverts_and_manual_transactions(
    admin: Admin,
) -> None:
    await admin.import_(shop_program(pay_bp=2000))
    await admin.admin.Revert(admin_pb2.RevertRequest(program=PROGRAM))
    await admin.import_(shop_program(pay_bp=3000))
    assert await admin.apply(PROGRAM) == 2
    await admin.members.EnrollMember(member_pb2.EnrollMemberRequest(program=PROGRAM, member_id="m"))
    manual = member_pb2.CreateTransactionRequest(
        program=PROGRAM,
        member_id="m",
        point_type="bonus",
        operation=member_pb2.OPERATION_ACCRUAL,
        points=25,
        external_id="e-1",
        comment="goodwill",
    )
    created = await admin.members.CreateTransaction(manual)
    await admin.members.CreateTransaction(manual)  # a replay posts nothing, records nothing
    refused = member_pb2.CreateTransactionRequest()
    refused.CopyFrom(manual)
    refused.operation = member_pb2.OPERATION_DEDUCTION
    refused.points = 1_000_000
    refused.external_id = "e-2"
    assert await status_of(admin.members.CreateTransaction(refused)) == FAILED_PRECONDITION

    entries = await journal(admin.admin, PROGRAM)
    assert actions(entries) == [
        ("import", "program", PROGRAM),  # configuration as code at start
        ("apply", "program", PROGRAM),
        ("import", "program", PROGRAM),
        ("revert", "program", PROGRAM),
        ("import", "program", PROGRAM),
        ("apply", "program", PROGRAM),
        ("create_transaction", "transaction", "e-1"),
    ]
    assert {e.actor for e in entries} == {"local"}
    assert [detail(e)["version"] for e in entries if e.action == "apply"] == [1, 2]
    assert detail(entries[1])["previous_version"] is None
    assert detail(entries[5])["previous_version"] == 1
    assert detail(entries[2])["promotions"] == 3
    posted = detail(entries[6])
    assert posted["transaction_id"] == created.transaction.id
    assert (posted["member_id"], posted["points"], posted["comment"]) == ("m", 25, "goodwill")
    assert all(e.created_at.ToDatetime().year == 2025 for e in entries)
    assert len({e.id for e in entries}) == len(entries)


async def test_the_journal_pages_oldest_first(admin: Admin) -> None:
    for percent in range(1, 8):
        await admin.import_(discount_program("j", {"D": percent}))
    everything = await journal(admin.admin, "j")
    assert len(everything) == 7
    assert [detail(e)["revision"] for e in everything] == list(range(1, 8))

    pages: list[list[admin_pb2.AuditEntry]] = []
    token = ""
    while True:
        page = await admin.admin.ListAuditEntries(
            admin_pb2.ListAuditEntriesRequest(program="j", page_size=3, page_token=token)
        )
        pages.append(list(page.entries))
        token = page.next_page_token
        if not token:
            break
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [e for p in pages for e in p] == everything
    # 0 means 100; a full last page says there is no next one.
    default = await admin.admin.ListAuditEntries(admin_pb2.ListAuditEntriesRequest(program="j"))
    assert (list(default.entries), default.next_page_token) == (everything, "")


async def test_the_journal_refuses_bad_page_sizes_and_tokens(admin: Admin) -> None:
    for size in (-1, 1001):
        code, violations = await bad_request_of(
            admin.admin.ListAuditEntries(
                admin_pb2.ListAuditEntriesRequest(program=PROGRAM, page_size=size)
            )
        )
        assert code == INVALID_ARGUMENT and [f for f, _ in violations] == ["page_size"]
    full = await admin.admin.ListAuditEntries(
        admin_pb2.ListAuditEntriesRequest(program=PROGRAM, page_size=1000)
    )
    assert len(full.entries) == 2
    for token in ("garbage", "YXVkaXQ6LTE=", "b3RoZXI6MQ=="):  # "audit:-1", "other:1"
        code, violations = await bad_request_of(
            admin.admin.ListAuditEntries(
                admin_pb2.ListAuditEntriesRequest(program=PROGRAM, page_token=token)
            )
        )
        assert code == INVALID_ARGUMENT and [f for f, _ in violations] == ["page_token"]


# --- Restarts and configuration as code. -------------------------------------------------------


async def test_a_restart_keeps_drafts_versions_and_the_journal(
    pg_database: str, clock: MovableClock
) -> None:
    async with served(pg_database, clock) as first:
        await first.import_(discount_program("r", {"D": 10}))
        assert await first.apply("r") == 1
        await first.import_(discount_program("r", {"D": 20}))
        assert await first.apply("r") == 2
        await first.import_(discount_program("r", {"D": 30}))  # a draft left unapplied
        await first.import_(discount_program("only-draft", {"D": 5}))
        entries = await journal(first.admin, "r")

    async with served(pg_database, clock) as again:
        got = await again.get("r")
        assert (got.program, got.version, got.has_draft_changes) == (
            discount_program("r", {"D": 20}),
            2,
            True,
        )
        assert (await again.get("r", draft=True)).program == discount_program("r", {"D": 30})
        assert (await again.get("only-draft")).version == 0
        assert await again.versions("r") == [1, 2]
        assert await journal(again.admin, "r") == entries
        quoted = await again.checkout.CalculateOrder(anonymous_quote("r"))
        assert (quoted.program_version, quoted.totals.discount) == (2, 2_000)
        assert await again.apply("r") == 3
        assert await again.versions("r") == [1, 2, 3]


async def test_a_program_file_is_applied_only_when_it_differs_from_the_applied_version(
    pg_database: str, clock: MovableClock, tmp_path: Path
) -> None:
    file = tmp_path / "shop.json"
    file.write_text(program_to_json(shop_program()), encoding="utf-8")
    async with served(pg_database, clock) as first:
        assert await first.app.load_programs((file,)) == [(PROGRAM, 1)]
        await first.import_(shop_program(pay_bp=2000))  # edited by hand, not applied

    async with served(pg_database, clock) as again:
        # The same file: nothing happens, the hand-made draft stays.
        assert await again.app.load_programs((file,)) == [(PROGRAM, 1)]
        assert (await again.get(PROGRAM, draft=True)).program == shop_program(pay_bp=2000)
        file.write_text(program_to_json(shop_program(pay_bp=3000)), encoding="utf-8")
        # A changed file: imported over the draft and applied.
        assert await again.app.load_programs((file,)) == [(PROGRAM, 2)]
        got = await again.get(PROGRAM, draft=True)
        assert (got.program, got.version, got.has_draft_changes) == (
            shop_program(pay_bp=3000),
            2,
            False,
        )
        entries = await journal(again.admin, PROGRAM)
        assert [detail(e).get("source") for e in entries if e.action == "import"] == [
            str(file),
            None,
            str(file),
        ]


# --- Concurrency. ------------------------------------------------------------------------------


async def test_concurrent_applies_of_one_draft_make_one_version(admin: Admin) -> None:
    await admin.import_(shop_program(pay_bp=2000))
    versions = await asyncio.gather(*(admin.apply(PROGRAM) for _ in range(12)))
    assert versions == [2] * 12
    assert await admin.versions(PROGRAM) == [1, 2]
    assert [e.action for e in await journal(admin.admin, PROGRAM)].count("apply") == 2


async def test_concurrent_imports_and_applies_never_tear_a_draft(admin: Admin) -> None:
    drafts = [discount_program("c", {f"D{i}": i, "X": 1}) for i in range(1, 16)]
    await admin.import_(drafts[0])
    assert await admin.apply("c") == 1

    async def import_then_apply(program: program_pb2.Program) -> int:
        await admin.import_(program)
        return await admin.apply("c")

    answered = await asyncio.gather(
        *(import_then_apply(d) for d in drafts[1:]), *(admin.apply("c") for _ in range(8))
    )
    stored = await admin.versions("c")
    assert stored == list(range(1, len(stored) + 1))
    assert set(answered) <= set(stored)
    assert admin.app.programs.get("c").version == stored[-1]
    assert admin.app.store is not None
    contents = [await admin.app.store.version("c", v) for v in stored]
    # Every version is one whole imported draft, and no two in a row are the same draft.
    assert all(c in drafts for c in contents)
    assert all(a != b for a, b in itertools.pairwise(contents))
    got = await admin.get("c", draft=True)
    assert got.program in drafts
    final = await admin.apply("c")
    assert (await admin.app.store.version("c", final)) == got.program


async def test_a_quote_storm_across_an_apply_sees_one_whole_version_at_a_time(
    admin: Admin,
) -> None:
    old = {f"old{i}": 1 for i in range(40)}
    new = {f"new{i}": 1 for i in range(40)}
    await admin.import_(discount_program("s", old))
    assert await admin.apply("s") == 1
    await admin.import_(discount_program("s", new))
    expected = {1: set(old), 2: set(new)}
    seen: list[tuple[int, set[str]]] = []
    applied = asyncio.Event()

    async def storm() -> None:
        quote = anonymous_quote("s")
        while not applied.is_set() or len(seen) < 50:
            response = await admin.checkout.CalculateOrder(quote)
            seen.append((response.program_version, promotions_of(response)))

    async def apply_midway() -> int:
        while len(seen) < 20:
            await asyncio.sleep(0)
        try:
            return await admin.apply("s")
        finally:
            applied.set()

    *_, version = await asyncio.gather(*(storm() for _ in range(6)), apply_midway())
    assert version == 2
    assert {v for v, _ in seen} == {1, 2}
    for answered_version, promotions in seen:
        assert promotions == expected[answered_version]
    last = await admin.checkout.CalculateOrder(anonymous_quote("s"))
    assert last.program_version == 2


# --- Storage down. -----------------------------------------------------------------------------


async def test_configuration_is_unavailable_while_the_database_is_down_and_nothing_is_lost(
    stoppable_pg: Stoppable, clock: MovableClock  # noqa: F811
) -> None:
    async with served(stoppable_pg.cluster.dsn, clock) as down:
        await down.import_(discount_program("u", {"D": 10}))
        assert await down.apply("u") == 1
        await down.import_(discount_program("u", {"D": 20}))
        stoppable_pg.stop()
        a = down.admin
        other = discount_program("u", {"D": 5})
        calls = [
            a.ImportProgram(admin_pb2.ImportProgramRequest(program=other)),
            a.Apply(admin_pb2.ApplyRequest(program="u")),
            a.Revert(admin_pb2.RevertRequest(program="u")),
            a.GetProgram(admin_pb2.GetProgramRequest(program="u")),
            a.ListPrograms(admin_pb2.ListProgramsRequest()),
            a.CreateProgram(admin_pb2.CreateProgramRequest(program=program_pb2.Program(id="v"))),
            a.ListAuditEntries(admin_pb2.ListAuditEntriesRequest(program="u")),
        ]
        for call in calls:
            error = await rpc_error(call)
            assert error.code() == grpc.StatusCode.UNAVAILABLE
            assert "database is unavailable" in (error.details() or "")
        # Quotes of the applied version need no database.
        quoted = await down.checkout.CalculateOrder(anonymous_quote("u"))
        assert (quoted.program_version, quoted.totals.discount) == (1, 1_000)

        stoppable_pg.start()
        got = None
        for _ in range(20):  # a pooled connection that died with the server may fail once more
            try:
                got = await down.get("u", draft=True)
                break
            except grpc.aio.AioRpcError as exc:
                assert exc.code() == grpc.StatusCode.UNAVAILABLE
        assert got is not None
        assert (got.program, got.version) == (discount_program("u", {"D": 20}), 1)
        assert await down.versions("u") == [1]
        assert actions(await journal(down.admin, "u")) == [
            ("import", "program", "u"),
            ("apply", "program", "u"),
            ("import", "program", "u"),
        ]
        assert await down.apply("u") == 2


async def test_concurrent_first_imports_of_one_id_create_one_program(admin: Admin) -> None:
    drafts = [discount_program("twin", {f"D{i}": i + 1}) for i in range(10)]
    await asyncio.gather(*(admin.import_(d) for d in drafts))
    listed = await admin.admin.ListPrograms(admin_pb2.ListProgramsRequest())
    assert [p.id for p in listed.programs].count("twin") == 1
    entries = await journal(admin.admin, "twin")
    assert [detail(e)["created"] for e in entries].count(True) == 1
    assert len(entries) == 10
    assert (await admin.get("twin", draft=True)).program in drafts
    assert [detail(e)["revision"] for e in entries] == list(range(1, 11))
