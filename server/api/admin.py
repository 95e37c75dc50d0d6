"""AdminService: programs, their drafts and versions, test mode, the audit journal.

Thin: check the request's own fields, call the state room (`Configuration`, `StateStore`),
translate back. Every edit changes the draft only and answers it; the rules (what GetProgram
answers for a program never applied, Revert without a version, ...) are in docs/admin.md.

The draft edits themselves (`apply_edit`, `diff`) are the pure functions of
`arbiter.server.state.edits`; test mode's response (the result, the balances, the decision
trace) is `arbiter.server.api.testmode.test_calculation`, on the compiled program picked here.
GetProgramReport reads the ledger (`Ledger.program_report`); BacktestDraft streams the ledger's
orders through worker processes (`arbiter.server.api.backtest`); docs/reports.md.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import os
from collections.abc import AsyncIterator
from concurrent.futures import Future, ProcessPoolExecutor
from datetime import UTC, datetime
from typing import Any, Final

from google.protobuf import timestamp_pb2

from arbiter.server.api import backtest
from arbiter.server.api.actor import actor_of
from arbiter.server.api.checkout import Clock, utc_now
from arbiter.server.api.keys import ApiKeyRpcs
from arbiter.server.api.testmode import test_calculation
from arbiter.server.engine import FieldViolation
from arbiter.server.ledger import AuditEntry, InvalidArgument, Ledger
from arbiter.server.state import MemberDirectory, NotFound, ProgramRegistry, edits
from arbiter.server.state.config import Configuration
from arbiter.server.state.store import EditOutcome, ProgramRecord, program_bytes
from arbiter.v1 import admin_pb2, admin_pb2_grpc, program_pb2

__all__ = ["DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "AdminService"]

MAX_PAGE_SIZE: Final = 1000
DEFAULT_PAGE_SIZE: Final = 100
_TOKEN_PREFIX: Final = "audit:"
_UTC: Final = UTC


def _required(program_id: str, field: str = "program") -> str:
    if not program_id:
        raise InvalidArgument.field(field, "required: a program id")
    return program_id


def _page_token(after: int) -> str:
    return base64.urlsafe_b64encode(f"{_TOKEN_PREFIX}{after}".encode()).decode()


def _after(token: str) -> int:
    """The entry id a page token continues after; 0 for the first page."""
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token.encode("ascii")).decode("ascii")
        if not text.startswith(_TOKEN_PREFIX):
            raise ValueError(text)
        after = int(text[len(_TOKEN_PREFIX):])
        if after < 0:
            raise ValueError(text)
    except (ValueError, UnicodeError, binascii.Error):
        raise InvalidArgument.field(
            "page_token", "not a token this server gave (pass next_page_token as it is)"
        ) from None
    return after


def _entry_to_proto(entry: AuditEntry, out: admin_pb2.AuditEntry) -> None:
    out.id = str(entry.id)
    out.created_at.FromDatetime(entry.created_at)
    out.actor = entry.actor
    out.action = entry.action
    out.object_kind = entry.object_kind
    out.object_id = entry.object_id
    out.detail = entry.detail


def _sizes(program: program_pb2.Program) -> dict[str, int]:
    """What an imported program holds, for the journal (the program itself is in the draft)."""
    return {
        "point_types": len(program.point_types),
        "tier_groups": len(program.tier_groups),
        "partners": len(program.partners),
        "member_segments": len(program.member_segments),
        "product_segments": len(program.product_segments),
        "order_segments": len(program.order_segments),
        "promo_code_pools": len(program.promo_code_pools),
        "trigger_promotions": len(program.trigger_promotions),
        "promotions": len(program.promotions),
    }


def _instant(request: Any, name: str) -> datetime | None:
    if not request.HasField(name):
        return None
    stamp: timestamp_pb2.Timestamp = getattr(request, name)
    return stamp.ToDatetime(tzinfo=_UTC)


def _progress(done: int, total: int) -> admin_pb2.BacktestDraftResponse:
    return admin_pb2.BacktestDraftResponse(
        progress=admin_pb2.BacktestProgress(done=done, total=total)
    )


_PROGRESS_EVERY_S: Final = 1.0


async def _drain(in_flight: set[asyncio.Future[backtest.Figures]], figures: backtest.Figures,
                 total: int, *, first: bool) -> AsyncIterator[admin_pb2.BacktestDraftResponse]:
    """Wait for a batch (a progress message each second meanwhile) and add it up."""
    while True:
        done, _ = await asyncio.wait(in_flight, timeout=_PROGRESS_EVERY_S,
                                     return_when=asyncio.FIRST_COMPLETED)
        if not done:
            yield _progress(figures.orders, total)
            continue
        for f in done:
            in_flight.discard(f)
            figures.add(f.result())
        yield _progress(figures.orders, total)
        return


def _side(side: backtest.Side, out: admin_pb2.BacktestMoney) -> None:
    out.discount = side.discount
    out.paid_with_points = side.paid_with_points
    out.total = side.total


def _summary(f: backtest.Figures) -> admin_pb2.BacktestSummary:
    summary = admin_pb2.BacktestSummary(
        orders=f.orders, reproduced=f.reproduced, changed=f.changed,
        without_member_state=f.without_inputs, failed_under_draft=f.failed_under_draft,
    )
    _side(f.before, summary.before)
    _side(f.after, summary.after)
    for t in sorted(set(f.before.points) | set(f.after.points)):
        summary.points.add(point_type=t, before=f.before.points.get(t, 0),
                           after=f.after.points.get(t, 0))
    for p in sorted(set(f.before.promotions) | set(f.after.promotions)):
        entry = summary.promotions.add(promotion=p)
        for side, out in ((f.before, entry.before), (f.after, entry.after)):
            figures = side.promotions.get(p, backtest.Promo())
            out.orders, out.amount, out.points = figures.orders, figures.amount, figures.points
    for _, order_id, before, after in f.examples:
        summary.examples.add(order_id=order_id, total_before=before, total_after=after)
    return summary


class AdminService(ApiKeyRpcs, admin_pb2_grpc.AdminServiceServicer):
    """Without storage (a server for quotes only) the configuration RPCs are UNIMPLEMENTED;
    TestCalculateOrder on the applied version still answers. API keys: `ApiKeyRpcs`."""

    def __init__(
        self,
        programs: ProgramRegistry,
        members: MemberDirectory,
        clock: Clock = utc_now,
        *,
        config: Configuration | None = None,
        ledger: Ledger | None = None,
        backtest_workers: int = 0,
    ) -> None:
        self._programs = programs
        self._members = members
        self._clock = clock
        self._config = config
        self._ledger = ledger
        # 0: one worker per core but one (at least one).
        self._backtest_workers = backtest_workers or max(1, (os.cpu_count() or 2) - 1)

    def _storage(self) -> tuple[Configuration, Ledger]:
        if self._config is None or self._ledger is None:
            raise NotImplementedError("reports and backtests need storage (PostgreSQL)")
        return self._config, self._ledger

    def _configuration(self) -> Configuration:
        if self._config is None:
            raise NotImplementedError("drafts and versions need storage (PostgreSQL)")
        return self._config

    # -- programs ------------------------------------------------------------------------------

    async def CreateProgram(
        self, request: admin_pb2.CreateProgramRequest, context: Any
    ) -> admin_pb2.CreateProgramResponse:
        config = self._configuration()
        _required(request.program.id, "program.id")
        record = await config.store.create(request.program, actor_of(context), self._clock())
        return admin_pb2.CreateProgramResponse(program=record.draft)

    async def GetProgram(
        self, request: admin_pb2.GetProgramRequest, context: Any
    ) -> admin_pb2.GetProgramResponse:
        record = await self._configuration().store.record(_required(request.program))
        applied = None if request.draft else record.applied
        return admin_pb2.GetProgramResponse(
            program=record.draft if applied is None else applied,
            version=record.applied_version or 0,
            has_draft_changes=record.has_draft_changes,
        )

    async def ListPrograms(
        self, request: admin_pb2.ListProgramsRequest, context: Any
    ) -> admin_pb2.ListProgramsResponse:
        response = admin_pb2.ListProgramsResponse()
        for record in await self._configuration().store.records():
            shown = record.applied or record.draft
            response.programs.add(
                id=record.id, name=shown.name, version=record.applied_version or 0
            )
        return response

    # -- edits of the draft --------------------------------------------------------------------

    async def _edit(self, rpc: str, request: Any, context: Any) -> ProgramRecord:
        """One edit RPC: `edits.apply_edit` on the locked draft, stored with its journal entry."""
        config = self._configuration()
        if rpc == "UpdateProgram":
            program_id = _required(request.program.id, "program.id")
        else:
            program_id = _required(request.program)

        def change(draft: program_pb2.Program | None) -> EditOutcome:
            assert draft is not None, "an edit never creates a program"
            edit = edits.apply_edit(draft, rpc, request)
            return EditOutcome(
                edit.draft, edit.action, edit.object_kind, edit.object_id, dict(edit.detail)
            )

        return await config.store.edit(program_id, change, actor_of(context), self._clock())

    async def _draft_edit(self, rpc: str, request: Any, context: Any) -> admin_pb2.EditResponse:
        record = await self._edit(rpc, request, context)
        return admin_pb2.EditResponse(draft=record.draft)

    async def UpdateProgram(
        self, request: admin_pb2.UpdateProgramRequest, context: Any
    ) -> admin_pb2.UpdateProgramResponse:
        record = await self._edit("UpdateProgram", request, context)
        return admin_pb2.UpdateProgramResponse(program=record.draft)

    async def UpsertPointType(self, request: Any, context: Any) -> admin_pb2.EditResponse:
        return await self._draft_edit("UpsertPointType", request, context)

    async def ClonePointType(self, request: Any, context: Any) -> admin_pb2.EditResponse:
        return await self._draft_edit("ClonePointType", request, context)

    async def UpsertTierGroup(self, request: Any, context: Any) -> admin_pb2.EditResponse:
        return await self._draft_edit("UpsertTierGroup", request, context)

    async def UpsertPartner(self, request: Any, context: Any) -> admin_pb2.EditResponse:
        return await self._draft_edit("UpsertPartner", request, context)

    async def UpsertMemberSegment(self, request: Any, context: Any) -> admin_pb2.EditResponse:
        return await self._draft_edit("UpsertMemberSegment", request, context)

    async def UpsertProductSegment(self, request: Any, context: Any) -> admin_pb2.EditResponse:
        return await self._draft_edit("UpsertProductSegment", request, context)

    async def UpsertOrderSegment(self, request: Any, context: Any) -> admin_pb2.EditResponse:
        return await self._draft_edit("UpsertOrderSegment", request, context)

    async def UpsertPromoCodePool(self, request: Any, context: Any) -> admin_pb2.EditResponse:
        return await self._draft_edit("UpsertPromoCodePool", request, context)

    async def UpsertTriggerPromotion(self, request: Any, context: Any) -> admin_pb2.EditResponse:
        return await self._draft_edit("UpsertTriggerPromotion", request, context)

    async def DeleteObject(self, request: Any, context: Any) -> admin_pb2.EditResponse:
        return await self._draft_edit("DeleteObject", request, context)

    async def CreatePromotion(self, request: Any, context: Any) -> admin_pb2.EditResponse:
        return await self._draft_edit("CreatePromotion", request, context)

    async def UpdatePromotion(self, request: Any, context: Any) -> admin_pb2.EditResponse:
        return await self._draft_edit("UpdatePromotion", request, context)

    async def ActivatePromotion(self, request: Any, context: Any) -> admin_pb2.EditResponse:
        return await self._draft_edit("ActivatePromotion", request, context)

    async def DeactivatePromotion(self, request: Any, context: Any) -> admin_pb2.EditResponse:
        return await self._draft_edit("DeactivatePromotion", request, context)

    async def EndPromotion(self, request: Any, context: Any) -> admin_pb2.EditResponse:
        return await self._draft_edit("EndPromotion", request, context)

    async def ClonePromotion(self, request: Any, context: Any) -> admin_pb2.EditResponse:
        return await self._draft_edit("ClonePromotion", request, context)

    async def UpsertGroup(self, request: Any, context: Any) -> admin_pb2.EditResponse:
        return await self._draft_edit("UpsertGroup", request, context)

    async def MoveNode(self, request: Any, context: Any) -> admin_pb2.EditResponse:
        return await self._draft_edit("MoveNode", request, context)

    async def ReorderGroup(self, request: Any, context: Any) -> admin_pb2.EditResponse:
        return await self._draft_edit("ReorderGroup", request, context)

    # -- the whole program ---------------------------------------------------------------------

    async def ImportProgram(
        self, request: admin_pb2.ImportProgramRequest, context: Any
    ) -> admin_pb2.ImportProgramResponse:
        """Replaces the draft of program.id (creating the program when it is new)."""
        config = self._configuration()
        program = request.program
        program_id = _required(program.id, "program.id")

        def change(draft: program_pb2.Program | None) -> EditOutcome:
            detail: dict[str, Any] = {"created": draft is None, **_sizes(program)}
            return EditOutcome(program, "import", "program", program_id, detail)

        await config.store.edit(
            program_id, change, actor_of(context), self._clock(), create_missing=True
        )
        return admin_pb2.ImportProgramResponse()

    async def ExportProgram(
        self, request: admin_pb2.ExportProgramRequest, context: Any
    ) -> admin_pb2.ExportProgramResponse:
        record = await self._configuration().store.record(_required(request.program))
        program = record.draft if request.draft else record.applied
        if program is None:
            raise NotFound("applied version of program", record.id)
        return admin_pb2.ExportProgramResponse(program=program)

    async def Apply(
        self, request: admin_pb2.ApplyRequest, context: Any
    ) -> admin_pb2.ApplyResponse:
        program_id = _required(request.program)
        outcome = await self._configuration().apply(program_id, actor_of(context))
        if outcome.changed:
            # Member snapshots were read with the old version's point types and tiers.
            self._members.invalidate(program_id)
        return admin_pb2.ApplyResponse(version=outcome.version)

    async def Revert(
        self, request: admin_pb2.RevertRequest, context: Any
    ) -> admin_pb2.RevertResponse:
        config = self._configuration()
        await config.store.revert(_required(request.program), actor_of(context), self._clock())
        return admin_pb2.RevertResponse()

    async def GetDraftDiff(
        self, request: admin_pb2.GetDraftDiffRequest, context: Any
    ) -> admin_pb2.GetDraftDiffResponse:
        record = await self._configuration().store.record(_required(request.program))
        entries = edits.diff(record.applied, record.draft)
        return admin_pb2.GetDraftDiffResponse(entries=entries)

    # -- test mode -----------------------------------------------------------------------------

    async def TestCalculateOrder(
        self, request: admin_pb2.TestCalculateOrderRequest, context: Any
    ) -> admin_pb2.TestCalculateOrderResponse:
        """The order on the draft (version 0) or the applied version; writes nothing."""
        program_id = _required(request.program)
        if request.use_draft:
            _, compiled = await self._configuration().compiled_draft(program_id)
            version = 0
        else:
            applied = self._programs.get(program_id)
            compiled, version = applied.compiled, applied.version
        return await test_calculation(request, compiled, version, self._members, self._clock)

    # -- reports and backtests -----------------------------------------------------------------

    async def GetProgramReport(
        self, request: admin_pb2.GetProgramReportRequest, context: Any
    ) -> admin_pb2.GetProgramReportResponse:
        """The ledger's figures over [from, to) (docs/reports.md)."""
        config, ledger = self._storage()
        record = await config.store.record(_required(request.program))
        source = record.applied or record.draft
        report = await ledger.program_report(
            source, _instant(request, "from"), _instant(request, "to"), now=self._clock()
        )
        response = admin_pb2.GetProgramReportResponse(
            members=report.enrolled, orders=report.confirmed
        )
        response.member_counts.enrolled = report.enrolled
        response.member_counts.active = report.active
        response.order_counts.confirmed = report.confirmed
        response.order_counts.cancelled = report.cancelled
        response.order_counts.returned = report.returned
        for t in report.point_types:
            response.point_types.add(point_type=t.point_type, accrued=t.accrued,
                                     redeemed=t.redeemed, expired=t.expired,
                                     outstanding=t.outstanding)
        for d in report.days:
            response.days.add(date=d.day.isoformat(), orders=d.orders, revenue=d.revenue,
                              discount=d.discount, paid_with_points=d.paid_with_points,
                              accrued=d.accrued, redeemed=d.redeemed)
        for p in report.promotions:
            response.promotions.add(promotion=p.promotion, orders=p.orders, discount=p.discount,
                                    points=p.points)
        return response

    async def BacktestDraft(
        self, request: admin_pb2.BacktestDraftRequest, context: Any
    ) -> AsyncIterator[admin_pb2.BacktestDraftResponse]:
        """Progress at least every 500 orders or every second, then one summary; writes
        nothing (docs/reports.md)."""
        config, ledger = self._storage()
        program_id = _required(request.program)
        if not 0 <= request.limit <= backtest.MAX_LIMIT:
            raise InvalidArgument.field(
                "limit", f"must lie in [0, {backtest.MAX_LIMIT}] (0 means"
                f" {backtest.DEFAULT_LIMIT})"
            )
        limit = request.limit or backtest.DEFAULT_LIMIT
        start, end = _instant(request, "from"), _instant(request, "to")
        record, _ = await config.compiled_draft(program_id)  # a draft that does not compile
        draft_key = backtest.program_key(record.draft_pb)
        programs: dict[str, bytes] = {draft_key: record.draft_pb}
        versions: dict[int, str] = {}
        figures = backtest.Figures()
        total = 0
        loop = asyncio.get_running_loop()
        in_flight: set[asyncio.Future[backtest.Figures]] = set()
        with ProcessPoolExecutor(
            max_workers=self._backtest_workers,
            mp_context=backtest.worker_context(),
            initializer=backtest.worker_init,
        ) as pool:
            try:
                async for batch in ledger.backtest_orders(program_id, start, end, limit,
                                                          batch_size=backtest.BATCH_ORDERS):
                    total = batch.total
                    if not batch.orders:
                        yield _progress(figures.orders, total)
                        continue
                    for o in batch.orders:
                        v = o.program_version
                        if v is not None and v not in versions:
                            data = program_bytes(await config.store.version(program_id, v))
                            key = backtest.program_key(data)
                            programs[key] = data
                            versions[v] = key
                    needed = {versions[o.program_version] for o in batch.orders
                              if o.program_version is not None} | {draft_key}
                    future: Future[backtest.Figures] = pool.submit(
                        backtest.backtest_batch, {k: programs[k] for k in needed}, versions,
                        draft_key, list(batch.orders),
                    )
                    in_flight.add(asyncio.wrap_future(future, loop=loop))
                    # Bounded memory: at most two batches per worker wait or run.
                    while len(in_flight) >= 2 * self._backtest_workers:
                        async for message in _drain(in_flight, figures, total, first=True):
                            yield message
                while in_flight:
                    async for message in _drain(in_flight, figures, total, first=True):
                        yield message
            finally:
                for f in in_flight:
                    f.cancel()
        yield admin_pb2.BacktestDraftResponse(summary=_summary(figures))

    # -- the audit journal ---------------------------------------------------------------------

    async def ListAuditEntries(
        self, request: admin_pb2.ListAuditEntriesRequest, context: Any
    ) -> admin_pb2.ListAuditEntriesResponse:
        """The program's journal, oldest first, `page_size` entries a page (0: 100)."""
        config = self._configuration()
        bad: list[FieldViolation] = []
        if not request.program:
            bad.append(FieldViolation("program", "required: a program id"))
        if not 0 <= request.page_size <= MAX_PAGE_SIZE:
            bad.append(
                FieldViolation(
                    "page_size",
                    f"must lie in [0, {MAX_PAGE_SIZE}] (0 means the default,"
                    f" {DEFAULT_PAGE_SIZE})",
                )
            )
        try:
            after = _after(request.page_token)
        except InvalidArgument as exc:
            bad.extend(exc.violations)
        if bad:
            raise InvalidArgument(bad)
        record = await config.store.record(request.program)
        size = request.page_size or DEFAULT_PAGE_SIZE
        entries = await config.store.audit(record.id, after=after, limit=size + 1)
        response = admin_pb2.ListAuditEntriesResponse()
        for entry in entries[:size]:
            _entry_to_proto(entry, response.entries.add())
        if len(entries) > size:
            response.next_page_token = _page_token(entries[size - 1].id)
        return response
