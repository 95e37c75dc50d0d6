"""AdminService: programs, their drafts and versions, test mode, the audit journal.

Thin: check the request's own fields, call the state room (`Configuration`, `StateStore`),
translate back. Every edit changes the draft only and answers it; the rules (what GetProgram
answers for a program never applied, Revert without a version, ...) are in docs/admin.md.

The draft edits themselves (`apply_edit`, `diff`) are the pure functions of
`arbiter.server.state.edits`; test mode's response (the result, the balances, the decision
trace) is `arbiter.server.api.testmode.test_calculation`, on the compiled program picked here.
GetProgramReport, BacktestDraft, CreateApiKey and RevokeApiKey are not here yet: UNIMPLEMENTED.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Final

from arbiter.server.api.actor import actor_of
from arbiter.server.api.checkout import Clock, utc_now
from arbiter.server.api.keys import ApiKeyRpcs
from arbiter.server.api.testmode import test_calculation
from arbiter.server.engine import FieldViolation
from arbiter.server.ledger import AuditEntry, InvalidArgument
from arbiter.server.state import InvalidEdit, MemberDirectory, NotFound, ProgramRegistry, edits
from arbiter.server.state.config import Configuration
from arbiter.server.state.store import EditOutcome, ProgramRecord
from arbiter.v1 import admin_pb2, admin_pb2_grpc, program_pb2

__all__ = ["DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "AdminService"]

MAX_PAGE_SIZE: Final = 1000
DEFAULT_PAGE_SIZE: Final = 100
_TOKEN_PREFIX: Final = "audit:"


def _required(program_id: str, field: str = "program") -> str:
    if not program_id:
        raise InvalidArgument.field(field, "required: a program id")
    return program_id


def _well_formed(program: program_pb2.Program) -> None:
    """A whole program sent to be stored: every instant in it must be one (edits check their
    own requests the same way, `edits.apply_edit`)."""
    bad = edits.timestamp_violations(program, "program")
    if bad:
        raise InvalidEdit(bad)


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
    ) -> None:
        self._programs = programs
        self._members = members
        self._clock = clock
        self._config = config

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
        _well_formed(request.program)
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
        _well_formed(program)

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
