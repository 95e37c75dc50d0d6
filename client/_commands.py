"""The client commands of `arbiter`: programs, test mode, members, points, keys.

Each command is `async def (ctx, args) -> exit code`; it speaks only the contract (arbiter.v1
over grpc). A failed call raises grpc.aio.AioRpcError, which cli.py turns into a message and
exit code 1; a problem with the command's input raises UsageError or FileProblem (exit 2),
before anything is sent.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import itertools
import os
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import grpc
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.tree import Tree

from arbiter.client._client import ArbiterClient
from arbiter.client._files import FileProblem, read_member_csv, read_order, read_program
from arbiter.client._output import Output, enum_name, message_json, money, program_file_json
from arbiter.v1 import admin_pb2, checkout_pb2, member_pb2, program_pb2

__all__ = ["Context", "UsageError", "resolve_program"]

# The program of commands given no --program.
PROGRAM_VARIABLE = "ARBITER_PROGRAM"
# Members sent between two updates of the enrolment progress bar.
# `member enroll --file` sends this many members a message (EnrollMemberRequest.members).
_ENROLL_BATCH = 1_000
# ListTransactions page size the command asks for (the server's limit is larger).
_PAGE_SIZE = 500


class UsageError(Exception):
    """The command was asked something it cannot do (exit 2); nothing was changed."""


@dataclass
class Context:
    client: ArbiterClient
    out: Output

    async def call(self, method: Any, request: Any, *, timeout_s: float | None = None) -> Any:
        """One unary call with the key and the deadline."""
        return await method(
            request,
            timeout=timeout_s if timeout_s is not None else self.client.timeout_s,
            metadata=self.client.metadata,
        )


async def resolve_program(ctx: Context, given: str | None) -> str:
    """The program the command is about: `--program`, else ARBITER_PROGRAM, else the server's
    only program (asking ListPrograms, which only an admin key may)."""
    if given:
        return given
    from_environment = os.environ.get(PROGRAM_VARIABLE)
    if from_environment:
        return from_environment
    try:
        listed = await ctx.call(ctx.client.admin.ListPrograms, admin_pb2.ListProgramsRequest())
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.PERMISSION_DENIED:
            raise UsageError(
                f"give --program (or {PROGRAM_VARIABLE}): this key may not list the programs"
            ) from None
        raise
    ids = [p.id for p in listed.programs]
    if len(ids) == 1:
        return str(ids[0])
    if not ids:
        raise UsageError("the server has no program yet: give --program or import one")
    raise UsageError(f"the server has {len(ids)} programs ({', '.join(ids)}): give --program")


def _time(ts: Any) -> str:
    if not ts.seconds and not ts.nanos:
        return ""
    at: datetime = ts.ToDatetime(tzinfo=UTC)
    return at.isoformat(timespec="seconds").replace("+00:00", "Z")


# --- program -------------------------------------------------------------------------------------


async def program_list(ctx: Context, args: argparse.Namespace) -> int:
    response = await ctx.call(ctx.client.admin.ListPrograms, admin_pb2.ListProgramsRequest())
    if ctx.out.json_mode:
        ctx.out.message(response)
        return 0
    ctx.out.table(
        ["program", "name", "version"],
        [(p.id, p.name, p.version or "never applied") for p in response.programs],
        right=[2],
    )
    return 0


def _counts(program: program_pb2.Program) -> list[tuple[str, object]]:
    return [
        ("point types", len(program.point_types)),
        ("tier groups", len(program.tier_groups)),
        ("member segments", len(program.member_segments)),
        ("product segments", len(program.product_segments)),
        ("order segments", len(program.order_segments)),
        ("promo code pools", len(program.promo_code_pools)),
        ("trigger promotions", len(program.trigger_promotions)),
        ("promotions", len(program.promotions)),
    ]


async def program_get(ctx: Context, args: argparse.Namespace) -> int:
    response = await ctx.call(
        ctx.client.admin.GetProgram,
        admin_pb2.GetProgramRequest(program=args.program_id, draft=args.draft),
    )
    if ctx.out.json_mode:
        ctx.out.message(response)
        return 0
    program = response.program
    ctx.out.fields(
        [
            ("program", program.id),
            ("name", program.name),
            ("showing", "the draft" if args.draft else "the applied version"),
            ("applied version", response.version or "never applied"),
            ("draft has changes", "yes" if response.has_draft_changes else "no"),
            ("database", program.database),
            ("currency", program.currency),
            ("time zone", program.time_zone),
            *_counts(program),
        ]
    )
    return 0


async def program_export(ctx: Context, args: argparse.Namespace) -> int:
    response = await ctx.call(
        ctx.client.admin.ExportProgram,
        admin_pb2.ExportProgramRequest(program=args.program_id, draft=args.draft),
    )
    text = program_file_json(response.program)
    if args.output:
        args.output.write_text(text, encoding="utf-8")
        ctx.out.note(f"wrote {args.output}")
    else:
        ctx.out.write(text)
    return 0


async def program_import(ctx: Context, args: argparse.Namespace) -> int:
    program = read_program(args.file)
    response = await ctx.call(
        ctx.client.admin.ImportProgram, admin_pb2.ImportProgramRequest(program=program)
    )
    if ctx.out.json_mode:
        ctx.out.message(response)
        return 0
    ctx.out.line(
        f"imported {args.file} as the draft of {program.id!r} "
        f"(`arbiter program diff {program.id}` shows what it changes)"
    )
    return 0


async def program_diff(ctx: Context, args: argparse.Namespace) -> int:
    response = await ctx.call(
        ctx.client.admin.GetDraftDiff, admin_pb2.GetDraftDiffRequest(program=args.program_id)
    )
    if ctx.out.json_mode:
        ctx.out.message(response)
        return 0
    if not response.entries:
        ctx.out.line(f"the draft of {args.program_id!r} has no changes")
        return 0
    ctx.out.table(
        ["object", "id", "change", "fields"],
        [(e.object_kind, e.id, e.change, ", ".join(e.fields)) for e in response.entries],
    )
    return 0


async def program_apply(ctx: Context, args: argparse.Namespace) -> int:
    response = await ctx.call(
        ctx.client.admin.Apply, admin_pb2.ApplyRequest(program=args.program_id)
    )
    if ctx.out.json_mode:
        ctx.out.message(response)
        return 0
    ctx.out.line(f"{args.program_id}: version {response.version} is applied")
    return 0


async def program_revert(ctx: Context, args: argparse.Namespace) -> int:
    response = await ctx.call(
        ctx.client.admin.Revert, admin_pb2.RevertRequest(program=args.program_id)
    )
    if ctx.out.json_mode:
        ctx.out.message(response)
        return 0
    ctx.out.line(f"{args.program_id}: the draft is the applied version again")
    return 0


def _limits_text(limits: program_pb2.Limits) -> str:
    parts = []
    if limits.max_discount_bp:
        parts.append(f"max discount {limits.max_discount_bp / 100:g}%")
    if limits.max_discount_amount:
        parts.append(f"max discount {money(limits.max_discount_amount)}")
    if limits.min_unit_price:
        parts.append(f"min unit price {money(limits.min_unit_price)}")
    if limits.min_unit_price_bp:
        parts.append(f"min unit price {limits.min_unit_price_bp / 100:g}% of base")
    return "; ".join(parts)


_STATUS_STYLE = {"ACTIVE": "green", "DRAFT": "yellow", "INACTIVE": "dim", "ENDED": "dim red"}
_VERDICT_STYLE = {
    "APPLIED": "green",
    "CUT": "yellow",
    "NOT_SELECTED": "dim",
    "NO_EFFECT": "dim",
    "OUTRANKED": "red",
}


def _styled(text: str, style: str | None) -> str:
    from rich.markup import escape

    return f"[{style}]{escape(text)}[/]" if style else escape(text)


def _group_label(group: program_pb2.Group, root: bool) -> str:
    from rich.markup import escape

    name = "main arbitration" if root else f"group {group.id}"
    if group.name and not root:
        name += f" ({group.name})"
    mode = enum_name(program_pb2.ArbitrationMode, group.mode, "ARBITRATION_MODE_")
    limits = _limits_text(group.limits)
    text = f"[bold]{escape(name)}[/]  [cyan]{escape(mode)}[/]"
    return text + (f"  limits: {escape(limits)}" if limits else "")


def _promotion_label(promotion: program_pb2.Promotion | None, promotion_id: str) -> str:
    from rich.markup import escape

    if promotion is None:
        return f"{escape(promotion_id)}  [red]unknown promotion[/]"
    kind = enum_name(program_pb2.PromotionKind, promotion.kind, "PROMOTION_KIND_")
    status = enum_name(program_pb2.PromotionStatus, promotion.status, "PROMOTION_STATUS_")
    label = f"{escape(promotion.id)}  {escape(kind)}  {_styled(status, _STATUS_STYLE.get(status))}"
    if promotion.name:
        label += f"  {escape(promotion.name)}"
    if promotion.promo_code_pool:
        label += f"  code pool {escape(promotion.promo_code_pool)}"
    return label


def program_tree_of(program: program_pb2.Program) -> Tree:
    """The arbitration tree: groups with their mode and limits, promotions with their status."""
    promotions = {p.id: p for p in program.promotions}

    def add(node: Tree, group: program_pb2.Group) -> None:
        for child in group.children:
            if child.WhichOneof("node") == "group":
                add(node.add(_group_label(child.group, root=False)), child.group)
            else:
                node.add(_promotion_label(promotions.get(child.promotion), child.promotion))

    tree = Tree(_group_label(program.arbitration, root=True))
    add(tree, program.arbitration)
    placed = _placed(program.arbitration)
    outside = [p for p in program.promotions if p.id not in placed]
    if outside:
        rest = tree.add("[dim]not in the tree (never evaluated)[/]")
        for promotion in outside:
            rest.add(_promotion_label(promotion, promotion.id))
    return tree


def _placed(group: program_pb2.Group) -> set[str]:
    found: set[str] = set()
    for child in group.children:
        if child.WhichOneof("node") == "group":
            found |= _placed(child.group)
        else:
            found.add(child.promotion)
    return found


async def program_tree(ctx: Context, args: argparse.Namespace) -> int:
    response = await ctx.call(
        ctx.client.admin.GetProgram,
        admin_pb2.GetProgramRequest(program=args.program_id, draft=args.draft),
    )
    if ctx.out.json_mode:
        ctx.out.message(response.program.arbitration)
        return 0
    ctx.out.tree(program_tree_of(response.program))
    return 0


# --- test mode -----------------------------------------------------------------------------------


async def test_order(ctx: Context, args: argparse.Namespace) -> int:
    order = read_order(args.file)
    request = admin_pb2.TestCalculateOrderRequest(
        program=order.program,
        member_id=order.member_id,
        member_context=order.member_context,
        order=order.order,
        use_draft=args.draft,
    )
    if args.member:
        request.member_id = args.member
        request.ClearField("member_context")
    request.program = await resolve_program(ctx, args.program or order.program or None)
    response = await ctx.call(ctx.client.admin.TestCalculateOrder, request)
    if ctx.out.json_mode:
        ctx.out.message(response)
        return 0
    show_test_result(ctx.out, response)
    return 0


def show_test_result(out: Output, response: admin_pb2.TestCalculateOrderResponse) -> None:
    result = response.result
    t = result.totals
    version = result.program_version
    out.fields(
        [
            ("program version", f"{version} (the draft)" if version == 0 else version),
            ("subtotal", money(t.subtotal)),
            ("discount", money(t.discount)),
            ("paid with points", money(t.paid_with_points)),
            ("shipping", money(t.shipping)),
            ("shipping discount", money(t.shipping_discount)),
            ("total", money(t.total)),
            ("items", t.items),
        ],
        title="Totals",
    )
    out.table(
        ["line", "base price", "discount", "paid with points", "final price", "units"],
        [
            (
                line.line_id,
                money(line.base_price),
                money(line.discount),
                money(line.paid_with_points),
                money(line.final_price),
                " + ".join(f"{p.quantity} x {money(p.unit_price)}" for p in line.portions),
            )
            for line in result.lines
        ],
        title="Lines",
        right=[1, 2, 3, 4],
    )
    out.table(
        ["line", "promotion", "kind", "benefit", "amount", "points", "point type", "timing"],
        [
            (
                b.line_id or "(order)",
                b.promotion,
                b.promotion_kind,
                b.benefit,
                money(b.amount) if b.amount else "",
                b.points or "",
                b.point_type,
                enum_name(program_pb2.Timing, b.timing, "TIMING_") if b.timing else "",
            )
            for b in result.benefits
        ],
        title="Benefits",
        right=[4, 5],
    )
    balances = {b.point_type: b for b in response.balances}
    out.table(
        [
            "point type",
            "requested",
            "redeemed",
            "accrued",
            "accrued on delivery",
            "before",
            "after",
            "pending",
        ],
        [
            (
                p.point_type,
                p.requested,
                p.redeemed,
                p.accrued,
                p.accrued_pending,
                balances[p.point_type].before if p.point_type in balances else "",
                balances[p.point_type].after if p.point_type in balances else "",
                balances[p.point_type].pending if p.point_type in balances else "",
            )
            for p in result.points
        ],
        title="Points",
        right=[1, 2, 3, 4, 5, 6, 7],
    )
    if result.promo_codes:
        out.table(
            ["code", "status", "pool"],
            [
                (
                    c.code,
                    enum_name(checkout_pb2.PromoCodeStatus, c.status, "PROMO_CODE_STATUS_"),
                    c.promo_code_pool,
                )
                for c in result.promo_codes
            ],
            title="Promo codes",
        )
    if result.texts:
        out.table(["text"], [(text,) for text in result.texts], title="Texts")
    out.tree(trace_tree(response.trace))


def _trace_label(entry: admin_pb2.TraceEntry) -> str:
    from rich.markup import escape

    is_group = entry.kind == admin_pb2.TRACE_NODE_KIND_GROUP
    if is_group and not entry.parent:
        name = f"main arbitration ({entry.node})" if entry.node else "main arbitration"
    else:
        name = f"group {entry.node}" if is_group else entry.node
    verdict = enum_name(admin_pb2.TraceVerdict, entry.verdict, "TRACE_VERDICT_")
    parts = [f"[bold]{escape(name)}[/]", _styled(verdict, _VERDICT_STYLE.get(verdict))]
    if entry.verdict == admin_pb2.TRACE_VERDICT_NOT_SELECTED:
        parts.append(escape(enum_name(admin_pb2.TraceReason, entry.reason, "TRACE_REASON_")))
    if entry.benefit:
        parts.append(f"benefit {money(entry.benefit)}")
    if entry.cut:
        parts.append(f"cut {money(entry.cut)}")
    if entry.line_ids:
        parts.append("lines " + escape(", ".join(entry.line_ids)))
    if entry.detail:
        parts.append(f"[italic]{escape(entry.detail)}[/]")
    return "  ".join(parts)


def trace_tree(trace: Sequence[admin_pb2.TraceEntry]) -> Tree:
    """The decision trace as a tree: entries come depth first, a group before its children."""
    root = Tree("[bold]Decision trace[/]")
    groups: dict[str, Tree] = {}
    for entry in trace:
        is_group = entry.kind == admin_pb2.TRACE_NODE_KIND_GROUP
        parent = groups.get(entry.parent, root) if entry.parent else root
        node = parent.add(_trace_label(entry))
        if is_group:
            groups[entry.node] = node
    return root


async def confirm_order(ctx: Context, args: argparse.Namespace) -> int:
    """ConfirmOrder of an order file (the form `calculate` and `test` read): the order is
    placed, its points redeemed and accrued."""
    order = read_order(args.file)
    request = checkout_pb2.ConfirmOrderRequest(
        program=order.program,
        member_id=order.member_id,
        member_context=order.member_context,
        order=order.order,
    )
    if args.member is not None:
        request.member_id = args.member
        request.ClearField("member_context")
    if args.order_id:
        request.order.id = args.order_id
    request.program = await resolve_program(ctx, args.program or order.program or None)
    response = await ctx.call(ctx.client.checkout.ConfirmOrder, request)
    if ctx.out.json_mode:
        ctx.out.message(response)
        return 0
    t = response.result.totals
    points = ", ".join(
        f"{p.point_type} -{p.redeemed} +{p.accrued + p.accrued_pending}"
        for p in response.result.points
    )
    ctx.out.line(
        f"order {request.order.id} confirmed: total {money(t.total)}, discount "
        f"{money(t.discount)}, paid with points {money(t.paid_with_points)}"
        + (f"; points {points}" if points else "")
    )
    return 0


# --- members -------------------------------------------------------------------------------------


def _parse_time(text: str) -> datetime:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--registered-at {text!r} is not an ISO 8601 time") from None
    if at.tzinfo is None:
        raise UsageError(f"--registered-at {text!r} has no UTC offset (write Z or +03:00)")
    return at


async def member_enroll(ctx: Context, args: argparse.Namespace) -> int:
    if args.file is not None:
        if args.member_id:
            raise UsageError("give a member id or --file, not both")
        return await _enroll_file(ctx, args)
    if not args.member_id:
        raise UsageError("give a member id, or --file members.csv")
    program = await resolve_program(ctx, args.program)
    request = member_pb2.EnrollMemberRequest(program=program, member_id=args.member_id)
    if args.registered_at:
        request.registered_at.FromDatetime(_parse_time(args.registered_at).astimezone(UTC))
    response = await ctx.call(ctx.client.members.EnrollMember, request)
    if ctx.out.json_mode:
        ctx.out.message(response)
        return 0
    state = "enrolled" if response.created else "was enrolled already"
    ctx.out.line(f"{response.member.member_id} {state} ({_time(response.member.registered_at)})")
    _balance_table(ctx.out, response.member.balances)
    return 0


async def _enroll_file(ctx: Context, args: argparse.Namespace) -> int:
    members = read_member_csv(args.file)  # checked whole before anything is sent, then streamed
    program = await resolve_program(ctx, args.program)
    progress = Progress(
        TextColumn("enrolling"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=ctx.out.err_console,
        disable=not ctx.out.err_console.is_terminal,
        transient=False,
    )
    task = progress.add_task("enroll", total=members.rows, rate="")
    source = iter(members)  # the file read again, checked unchanged before anything is sent
    stopped: list[FileProblem] = []
    started = time.monotonic()

    async def requests() -> AsyncIterator[member_pb2.EnrollMemberRequest]:
        # _ENROLL_BATCH members a message: a message costs both ends far more than a member.
        done = 0
        while True:
            try:
                batch = list(itertools.islice(source, _ENROLL_BATCH))
            except FileProblem as problem:
                stopped.append(problem)  # gRPC cancels the call; the problem is the message
                raise
            if not batch:
                return
            request = member_pb2.EnrollMemberRequest(program=program)
            add = request.members.add
            for row in batch:
                member = add(member_id=row.member_id)
                if row.registered_at is not None:
                    member.registered_at.FromDatetime(row.registered_at.astimezone(UTC))
            yield request
            done += len(batch)
            elapsed = time.monotonic() - started
            progress.update(task, completed=done,
                            rate=f"{done / elapsed:,.0f}/s" if elapsed > 0 else "")

    with progress:
        try:
            response = await ctx.client.members.EnrollMembers(
                requests(), timeout=None, metadata=ctx.client.metadata
            )
        except (grpc.RpcError, asyncio.CancelledError):
            if stopped:
                raise stopped[0] from None
            raise
        progress.update(task, completed=members.rows)
    elapsed = time.monotonic() - started
    if ctx.out.json_mode:
        ctx.out.message(response)
    else:
        ctx.out.fields(
            [
                ("rows", members.rows),
                ("enrolled", response.enrolled),
                ("already enrolled", response.already_enrolled),
            ]
        )
    rate = members.rows / elapsed if elapsed > 0 else 0.0
    ctx.out.note(f"{members.rows} rows in {elapsed:.1f} s ({rate:,.0f} members/s)")
    return 0


def _balance_table(out: Output, balances: Sequence[Any], title: str | None = None) -> None:
    out.table(
        ["point type", "available", "held", "pending", "expiring soon", "balance"],
        [
            (b.point_type, b.available, b.held, b.pending, b.expiring_soon, b.balance)
            for b in balances
        ],
        title=title,
        right=[1, 2, 3, 4, 5],
    )


async def member_get(ctx: Context, args: argparse.Namespace) -> int:
    program = await resolve_program(ctx, args.program)
    response = await ctx.call(
        ctx.client.members.GetMember,
        member_pb2.GetMemberRequest(
            program=program, member_id=args.member_id, expiring_within_days=args.within_days
        ),
    )
    if ctx.out.json_mode:
        ctx.out.message(response)
        return 0
    ctx.out.fields(
        [("member", response.member_id), ("registered", _time(response.registered_at))],
        title="Member",
    )
    _balance_table(ctx.out, response.balances, title="Balances")
    ctx.out.table(
        ["tier group", "tier", "points", "next tier", "to next", "period ends"],
        [
            (t.tier_group, t.tier, t.points, t.next_tier, t.to_next or "", _time(t.period_end))
            for t in response.tiers
        ],
        title="Tiers",
        right=[2, 4],
    )
    return 0


async def member_transactions(ctx: Context, args: argparse.Namespace) -> int:
    program = await resolve_program(ctx, args.program)
    transactions: list[member_pb2.Transaction] = []
    token = ""
    while True:
        page = await ctx.call(
            ctx.client.members.ListTransactions,
            member_pb2.ListTransactionsRequest(
                program=program,
                member_id=args.member_id,
                point_type=args.point_type or "",
                page_size=_PAGE_SIZE,
                page_token=token,
            ),
        )
        transactions.extend(page.transactions)
        token = page.next_page_token
        if not token or (args.limit and len(transactions) >= args.limit):
            break
    if args.limit:
        transactions = transactions[: args.limit]
    if ctx.out.json_mode:
        ctx.out.message(member_pb2.ListTransactionsResponse(transactions=transactions))
        return 0
    ctx.out.table(
        [
            "time",
            "type",
            "point type",
            "before",
            "value",
            "after",
            "source",
            "external id",
            "comment",
        ],
        [
            (
                _time(t.created_at),
                enum_name(member_pb2.TransactionType, t.type, "TRANSACTION_TYPE_"),
                t.point_type,
                t.balance_before,
                t.value,
                t.balance_after,
                enum_name(member_pb2.SourceType, t.source_type, "SOURCE_TYPE_")
                + (f" {t.source_id}" if t.source_id else ""),
                t.external_id,
                t.comment,
            )
            for t in transactions
        ],
        right=[3, 4, 5],
    )
    return 0


async def member_expiring(ctx: Context, args: argparse.Namespace) -> int:
    program = await resolve_program(ctx, args.program)
    response = await ctx.call(
        ctx.client.members.GetExpiringPoints,
        member_pb2.GetExpiringPointsRequest(
            program=program,
            member_id=args.member_id,
            point_type=args.point_type or "",
            within_days=args.within_days,
        ),
    )
    if ctx.out.json_mode:
        ctx.out.message(response)
        return 0
    ctx.out.table(
        ["point type", "points", "expires"],
        [(lot.point_type, lot.points, _time(lot.expires_at)) for lot in response.lots],
        right=[1],
    )
    return 0


async def member_remove(ctx: Context, args: argparse.Namespace) -> int:
    program = await resolve_program(ctx, args.program)
    response = await ctx.call(
        ctx.client.members.RemoveMember,
        member_pb2.RemoveMemberRequest(program=program, member_id=args.member_id),
    )
    if ctx.out.json_mode:
        ctx.out.message(response)
        return 0
    ctx.out.line(f"{args.member_id} removed from {program}")
    return 0


async def member_export(ctx: Context, args: argparse.Namespace) -> int:
    """Every member as CSV (member_id, registered_at, then each point type's available
    balance), which `arbiter member enroll --file` reads back; `--json`: one Member a line."""
    program = await resolve_program(ctx, args.program)
    stream = ctx.client.members.ExportMembers(
        member_pb2.ExportMembersRequest(program=program),
        timeout=None,
        metadata=ctx.client.metadata,
    )
    target = args.output.open("w", encoding="utf-8", newline="") if args.output else None
    sink: Any = target if target is not None else ctx.out.stream
    count = 0
    try:
        writer = csv.writer(sink, lineterminator="\n")
        point_types: list[str] | None = None
        async for member in stream:
            if ctx.out.json_mode:
                sink.write(_json_line(member))
            else:
                if point_types is None:
                    point_types = [b.point_type for b in member.balances]
                    writer.writerow(["member_id", "registered_at", *point_types])
                available = {b.point_type: b.available for b in member.balances}
                writer.writerow(
                    [
                        member.member_id,
                        _time(member.registered_at),
                        *(available.get(p, 0) for p in point_types),
                    ]
                )
            count += 1
        if point_types is None and not ctx.out.json_mode:
            writer.writerow(["member_id", "registered_at"])
    finally:
        if target is not None:
            target.close()
        else:
            ctx.out.stream.flush()
    ctx.out.note(f"{count} members exported" + (f" to {args.output}" if args.output else ""))
    return 0


def _json_line(message: Any) -> str:
    return message_json(message, indent=None) + "\n"


# --- points --------------------------------------------------------------------------------------

OPERATIONS = {"accrue": member_pb2.OPERATION_ACCRUAL, "deduct": member_pb2.OPERATION_DEDUCTION}


def _new_external_id() -> str:
    """A posting's id when the command line is not given one: each run posts once, anew (give
    --external-id to make a retry of the same posting safe)."""
    return f"cli-{uuid.uuid4().hex}"


def _transaction_summary(out: Output, transaction: member_pb2.Transaction) -> None:
    out.fields(
        [
            ("transaction", transaction.id),
            ("external id", transaction.external_id),
            ("member", transaction.member_id),
            ("type", enum_name(member_pb2.TransactionType, transaction.type, "TRANSACTION_TYPE_")),
            ("point type", transaction.point_type),
            ("balance before", transaction.balance_before),
            ("value", transaction.value),
            ("balance after", transaction.balance_after),
            ("comment", transaction.comment),
        ]
    )


async def _post_points(ctx: Context, rpc: Any, request: Any) -> int:
    """Send a points posting (ApplyTrigger, CreateTransaction); show the transaction it wrote."""
    response = await ctx.call(rpc, request)
    if ctx.out.json_mode:
        ctx.out.message(response)
    else:
        _transaction_summary(ctx.out, response.transaction)
    return 0


async def trigger(ctx: Context, args: argparse.Namespace) -> int:
    program = await resolve_program(ctx, args.program)
    request = member_pb2.ApplyTriggerRequest(
        program=program,
        member_id=args.member_id,
        trigger_promotion=args.trigger_promotion,
        point_type=args.point_type,
        operation=OPERATIONS[args.operation],
        points=args.points,
        external_id=args.external_id or _new_external_id(),
        comment=args.comment or "",
    )
    return await _post_points(ctx, ctx.client.members.ApplyTrigger, request)


async def transaction(ctx: Context, args: argparse.Namespace) -> int:
    program = await resolve_program(ctx, args.program)
    request = member_pb2.CreateTransactionRequest(
        program=program,
        member_id=args.member_id,
        point_type=args.point_type,
        operation=OPERATIONS[args.operation],
        points=args.points,
        external_id=args.external_id or _new_external_id(),
        comment=args.comment or "",
    )
    return await _post_points(ctx, ctx.client.members.CreateTransaction, request)


# --- keys ----------------------------------------------------------------------------------------


async def keys_create(ctx: Context, args: argparse.Namespace) -> int:
    response = await ctx.call(
        ctx.client.admin.CreateApiKey, admin_pb2.CreateApiKeyRequest(role=args.role, name=args.name)
    )
    if ctx.out.json_mode:
        ctx.out.message(response)
        return 0
    # The key alone on stdout (it is shown once: `KEY=$(arbiter keys create pos till-1)`).
    ctx.out.write(response.key + "\n")
    ctx.out.note(f"a {args.role} key named {args.name!r}: keep it, it is not shown again")
    return 0


async def keys_revoke(ctx: Context, args: argparse.Namespace) -> int:
    response = await ctx.call(
        ctx.client.admin.RevokeApiKey, admin_pb2.RevokeApiKeyRequest(key=args.api_key)
    )
    if ctx.out.json_mode:
        ctx.out.message(response)
        return 0
    ctx.out.line("the key is revoked")
    return 0
