"""`arbiter report` (GetProgramReport: tables and a PNG chart) and `arbiter backtest`
(BacktestDraft: a progress bar, then the summary as tables).

The window: `--from` and `--to` take an ISO 8601 time with an offset, or a date; a date is
midnight in the program's time zone, and a `--to` date includes that day (the window ends at
the next midnight). A time given as `--to` is exclusive.
"""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from arbiter.client._commands import Context, UsageError, resolve_program
from arbiter.client._output import money
from arbiter.v1 import admin_pb2

__all__ = ["backtest", "report", "write_chart"]

# Promotions the chart shows (the report's tables list them all).
TOP_PROMOTIONS = 10


def _zone(ctx_program: Any) -> ZoneInfo:
    try:
        return ZoneInfo(ctx_program.time_zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def parse_bound(text: str, zone: ZoneInfo, *, end: bool, flag: str) -> datetime:
    """A window bound: an ISO 8601 time with an offset, or a date in `zone` (an end date
    includes its day)."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        day = None
    if day is not None and len(text) == 10:
        if end:
            day += timedelta(days=1)
        return datetime(day.year, day.month, day.day, tzinfo=zone)
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"{flag} {text!r} is neither a date (YYYY-MM-DD) nor an ISO 8601 time"
        ) from None
    if at.tzinfo is None:
        raise UsageError(f"{flag} {text!r} has no UTC offset (write Z or +03:00, or a date)")
    return at


async def _window(ctx: Context, args: argparse.Namespace, program: str, request: Any) -> None:
    """Sets request.from / request.to from --from / --to (dates in the program's zone)."""
    if not args.since and not args.until:
        return
    got = await ctx.call(
        ctx.client.admin.GetProgram, admin_pb2.GetProgramRequest(program=program, draft=True)
    )
    zone = _zone(got.program)
    start = parse_bound(args.since, zone, end=False, flag="--from") if args.since else None
    end = parse_bound(args.until, zone, end=True, flag="--to") if args.until else None
    if start is not None and end is not None and end <= start:
        raise UsageError("--to must be after --from")
    if start is not None:
        getattr(request, "from").FromDatetime(start.astimezone(UTC))
    if end is not None:
        request.to.FromDatetime(end.astimezone(UTC))


def _window_text(args: argparse.Namespace) -> str:
    if not args.since and not args.until:
        return "all time"
    return f"{args.since or 'the start'} to {args.until or 'now'}"


# --- report --------------------------------------------------------------------------------------


async def report(ctx: Context, args: argparse.Namespace) -> int:
    program = await resolve_program(ctx, args.program)
    request = admin_pb2.GetProgramReportRequest(program=program)
    await _window(ctx, args, program, request)
    response = await ctx.call(ctx.client.admin.GetProgramReport, request)
    if args.chart is not None:
        write_chart(response, args.chart, title=f"{program}: {_window_text(args)}")
        ctx.out.note(f"wrote {args.chart}")
    if ctx.out.json_mode:
        ctx.out.message(response)
        return 0
    out = ctx.out
    out.fields(
        [
            ("program", program),
            ("window", _window_text(args)),
            ("members enrolled", response.member_counts.enrolled),
            ("members active", response.member_counts.active),
            ("orders confirmed", response.order_counts.confirmed),
            ("orders cancelled", response.order_counts.cancelled),
            ("orders returned", response.order_counts.returned),
        ],
        title="Summary",
    )
    out.table(
        ["point type", "accrued", "redeemed", "expired", "outstanding"],
        [
            (t.point_type, t.accrued, t.redeemed, t.expired, t.outstanding)
            for t in response.point_types
        ],
        title="Points",
        right=[1, 2, 3, 4],
    )
    out.table(
        [
            "day",
            "orders",
            "revenue",
            "discount",
            "paid with points",
            "points accrued",
            "points redeemed",
        ],
        [
            (
                d.date,
                d.orders,
                money(d.revenue),
                money(d.discount),
                money(d.paid_with_points),
                d.accrued,
                d.redeemed,
            )
            for d in response.days
        ],
        title="Days",
        right=[1, 2, 3, 4, 5, 6],
    )
    out.table(
        ["promotion", "orders", "money", "points"],
        [
            (p.promotion, p.orders, money(p.discount), p.points)
            for p in _by_cost(response.promotions)
        ],
        title="Promotions by cost",
        right=[1, 2, 3],
    )
    return 0


def _by_cost(promotions: Any) -> list[Any]:
    """Promotions, the costliest first: by the money they gave (discounts and points paid),
    then by the points they moved."""
    return sorted(promotions, key=lambda p: (-p.discount, -p.points, p.promotion))


def write_chart(response: admin_pb2.GetProgramReportResponse, path: Path, *, title: str) -> None:
    """A PNG: orders and discount per day; points accrued and redeemed per day; the top
    promotions by cost (the money they gave, and the points they moved, side by side)."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    thousands = FuncFormatter(lambda value, _: f"{value:,.0f}")
    days = [d.date for d in response.days]
    x = list(range(len(days)))
    figure = plt.figure(figsize=(12, 13), layout="constrained")
    grid = figure.add_gridspec(3, 2)
    orders_axis = figure.add_subplot(grid[0, :])
    points_axis = figure.add_subplot(grid[1, :])
    money_axis = figure.add_subplot(grid[2, 0])
    moved_axis = figure.add_subplot(grid[2, 1], sharey=money_axis)
    figure.suptitle(f"Arbiter report: {title}", fontsize=15, fontweight="bold")

    orders_axis.bar(x, [d.orders for d in response.days], 0.6, color="#4c72b0", label="orders")
    orders_axis.set_ylabel("orders confirmed")
    orders_axis.set_title("Orders and discount per day")
    discount_axis = orders_axis.twinx()
    discount_axis.plot(
        x,
        [d.discount / 100 for d in response.days],
        color="#dd8452",
        marker="o",
        linewidth=2,
        label="discount",
    )
    discount_axis.set_ylabel("discount (currency units)")
    discount_axis.set_ylim(bottom=0)
    discount_axis.yaxis.set_major_formatter(thousands)
    ours, theirs = (
        orders_axis.get_legend_handles_labels(),
        discount_axis.get_legend_handles_labels(),
    )
    orders_axis.legend(ours[0] + theirs[0], ours[1] + theirs[1], loc="upper left")

    width = 0.3
    points_axis.bar(
        [i - width / 2 for i in x],
        [d.accrued for d in response.days],
        width,
        color="#55a868",
        label="accrued",
    )
    points_axis.bar(
        [i + width / 2 for i in x],
        [d.redeemed for d in response.days],
        width,
        color="#c44e52",
        label="redeemed",
    )
    points_axis.set_title("Points accrued and redeemed per day (every point type)")
    points_axis.set_ylabel("points")
    peak = max([d.accrued for d in response.days] + [d.redeemed for d in response.days] + [0])
    points_axis.yaxis.set_major_formatter(FuncFormatter(_scaled(peak)))
    points_axis.legend(loc="upper left")
    for axis in (orders_axis, points_axis):
        _day_axis(axis, x, days)
        axis.grid(axis="y", alpha=0.3)

    top = _by_cost(response.promotions)[:TOP_PROMOTIONS][::-1]  # the costliest at the top
    y = list(range(len(top)))
    money_axis.barh(y, [p.discount / 100 for p in top], 0.6, color="#dd8452")
    money_axis.set_yticks(y, [p.promotion for p in top])
    money_axis.set_title(f"Top {len(top)} promotions by cost: money given")
    money_axis.set_xlabel("discount and paid with points (currency units)")
    moved_axis.barh(y, [p.points for p in top], 0.6, color="#8172b3")
    moved_axis.set_title("... and the points they moved")
    moved_axis.set_xlabel("points (accrued and redeemed, every type)")
    moved_axis.tick_params(labelleft=False)
    money_axis.xaxis.set_major_formatter(
        FuncFormatter(_scaled(max([p.discount / 100 for p in top] + [0])))
    )
    moved_axis.xaxis.set_major_formatter(FuncFormatter(_scaled(max([p.points for p in top] + [0]))))
    for axis in (money_axis, moved_axis):
        axis.grid(axis="x", alpha=0.3)
        if not top:
            axis.text(0.5, 0.5, "no promotion applied", ha="center", transform=axis.transAxes)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _scaled(peak: float) -> Any:
    """An axis's tick text, one unit for the whole axis: 950 and 12,000; 250k; 1.4M."""
    if peak >= 1_000_000:
        return lambda value, _: f"{value / 1_000_000:.3g}M"
    if peak >= 100_000:
        return lambda value, _: f"{value / 1_000:,.0f}k"
    return lambda value, _: f"{value:,.0f}"


# A day axis shows at least this many slots, so that one day is a bar, not a wall.
_MIN_DAY_SLOTS = 7


def _day_axis(axis: Any, x: list[int], days: list[str]) -> None:
    step = max(1, len(days) // 15)  # at most ~15 labels
    axis.set_xticks(x[::step], days[::step], rotation=45 if len(days) > 7 else 0, ha="right")
    if len(days) < _MIN_DAY_SLOTS:
        axis.set_xlim(
            -0.5 - (_MIN_DAY_SLOTS - len(days)) / 2,
            len(days) - 0.5 + (_MIN_DAY_SLOTS - len(days)) / 2,
        )
    if not days:
        axis.text(0.5, 0.5, "no activity in this window", ha="center", transform=axis.transAxes)


# --- backtest ------------------------------------------------------------------------------------


async def backtest(ctx: Context, args: argparse.Namespace) -> int:
    program = await resolve_program(ctx, args.program)
    request = admin_pb2.BacktestDraftRequest(program=program, limit=args.limit)
    await _window(ctx, args, program, request)
    progress = Progress(
        TextColumn("recalculating"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=ctx.out.err_console,
        disable=not ctx.out.err_console.is_terminal,
    )
    task = progress.add_task("backtest", total=None)
    summary: admin_pb2.BacktestSummary | None = None
    stream = ctx.client.admin.BacktestDraft(request, timeout=None, metadata=ctx.client.metadata)
    with progress:
        async for message in stream:
            if message.HasField("progress"):
                progress.update(task, completed=message.progress.done, total=message.progress.total)
            else:
                summary = message.summary
    if summary is None:
        raise UsageError("the server ended the backtest without a summary")
    if ctx.out.json_mode:
        ctx.out.message(summary)
        return 0
    show_backtest(ctx, summary, program, _window_text(args))
    return 0


def _delta(before: int, after: int, as_money: bool) -> str:
    change = after - before
    text = money(change) if as_money else f"{change:,}"
    return f"+{text}" if change > 0 else text


def show_backtest(ctx: Context, s: admin_pb2.BacktestSummary, program: str, window: str) -> None:
    out = ctx.out
    out.fields(
        [
            ("program", f"{program} (the draft against each order's own version)"),
            ("window", window),
            ("orders recalculated", s.orders),
            ("reproduced on their own version", s.reproduced),
            ("changed by the draft", s.changed),
            ("without a stored member state", s.without_member_state),
        ],
        title="Backtest",
    )
    out.table(
        ["money", "before", "after", "change"],
        [
            (
                name,
                money(getattr(s.before, field)),
                money(getattr(s.after, field)),
                _delta(getattr(s.before, field), getattr(s.after, field), True),
            )
            for name, field in (
                ("discount", "discount"),
                ("paid with points", "paid_with_points"),
                ("total paid", "total"),
            )
        ],
        title="Money",
        right=[1, 2, 3],
    )
    out.table(
        ["point type", "before", "after", "change"],
        [
            (p.point_type, f"{p.before:,}", f"{p.after:,}", _delta(p.before, p.after, False))
            for p in s.points
        ],
        title="Points accrued",
        right=[1, 2, 3],
    )
    out.table(
        [
            "promotion",
            "orders before",
            "orders after",
            "money before",
            "money after",
            "points before",
            "points after",
        ],
        [
            (
                p.promotion,
                p.before.orders,
                p.after.orders,
                money(p.before.amount),
                money(p.after.amount),
                p.before.points,
                p.after.points,
            )
            for p in s.promotions
        ],
        title="Promotions",
        right=[1, 2, 3, 4, 5, 6],
    )
    if s.examples:
        out.table(
            ["order", "total before", "total after", "change"],
            [
                (
                    e.order_id,
                    money(e.total_before),
                    money(e.total_after),
                    _delta(e.total_before, e.total_after, True),
                )
                for e in s.examples
            ],
            title="Orders changed most",
            right=[1, 2, 3],
        )
