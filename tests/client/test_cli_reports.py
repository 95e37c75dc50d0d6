"""`arbiter confirm`, `arbiter report` (tables and the PNG chart) and `arbiter backtest` against
a real server with orders confirmed through the command line."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from arbiter.client._report import write_chart
from arbiter.v1 import admin_pb2
from tests.client.conftest import DEMO_ORDER, Server, free_port, run_arbiter

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MEMBERS = ("ann", "ben", "cat")
ORDERS_EACH = 2


def _rows(out: str) -> list[list[str]]:
    return [line.split("\t") for line in out.splitlines() if line and not line.startswith("# ")]


def _section(out: str, title: str) -> list[list[str]]:
    return _rows(out.split(f"# {title}\n", 1)[1].split("\n\n", 1)[0])


@pytest.fixture(scope="module")
def orders(server: Server) -> Server:
    """Every member of MEMBERS confirms the demo order ORDERS_EACH times."""
    for member in MEMBERS:
        server.ok("member", "enroll", member)
    for index in range(ORDERS_EACH):
        for member in MEMBERS:
            out = server.ok(
                "confirm", str(DEMO_ORDER), "--member", member, "--order-id", f"{member}-{index}"
            )
            assert out.startswith(f"order {member}-{index} confirmed: total ")
    return server


def test_report_before_any_order(server: Server) -> None:
    # A window in the past: nothing happened then.
    out = server.ok("report", "--from", "2020-01-01", "--to", "2020-01-31")
    summary = dict(_section(out, "Summary")[1:])
    assert summary["orders confirmed"] == "0"
    assert summary["window"] == "2020-01-01 to 2020-01-31"
    assert _section(out, "Days") == [
        [
            "day",
            "orders",
            "revenue",
            "discount",
            "paid with points",
            "points accrued",
            "points redeemed",
        ]
    ]


def test_report_tables(orders: Server) -> None:
    out = orders.ok("report")
    assert "\x1b" not in out
    summary = dict(_section(out, "Summary")[1:])
    assert summary["orders confirmed"] == str(len(MEMBERS) * ORDERS_EACH)
    assert summary["members enrolled"] == str(len(MEMBERS))
    days = _section(out, "Days")[1:]
    assert sum(int(day[1]) for day in days) == len(MEMBERS) * ORDERS_EACH
    promotions = [row[0] for row in _section(out, "Promotions by cost")[1:]]
    assert {"pay-with-points", "cashback", "free-shipping"} <= set(promotions)
    report = json.loads(orders.ok("report", "--json"))
    assert report["order_counts"]["confirmed"] == str(len(MEMBERS) * ORDERS_EACH)
    money = [
        int(p["discount"])
        for p in sorted(report["promotions"], key=lambda p: promotions.index(p["promotion"]))
    ]
    assert money == sorted(money, reverse=True)  # the costliest first


def test_report_chart(orders: Server, tmp_path: Path) -> None:
    chart = tmp_path / "report.png"
    done = orders.arbiter("report", "--chart", str(chart))
    assert done.code == 0, done.err
    assert f"wrote {chart}" in done.err
    assert chart.read_bytes().startswith(PNG_SIGNATURE)
    import matplotlib.image

    height, width = matplotlib.image.imread(str(chart)).shape[:2]
    assert (width, height) == (1200, 1300)


def test_a_window_is_checked_before_anything_is_asked(orders: Server) -> None:
    for args, message in (
        (("--from", "yesterday"), "--from 'yesterday' is neither a date"),
        (("--to", "2026-01-01T10:00:00"), "has no UTC offset"),
        (("--from", "2026-02-01", "--to", "2026-01-01"), "--to must be after --from"),
    ):
        done = orders.arbiter("report", *args)
        assert done.code == 2, (args, done)
        assert message in done.err and "Traceback" not in done.err


def test_a_date_window_is_the_programs_days(orders: Server) -> None:
    # The days of the report are the program's (Europe/Moscow); a date bound is one of them.
    days = [row[0] for row in _section(orders.ok("report"), "Days")[1:]]
    first, last = date.fromisoformat(days[0]), date.fromisoformat(days[-1])
    window = orders.ok("report", "--from", first.isoformat(), "--to", last.isoformat())
    summary = dict(_section(window, "Summary")[1:])
    assert summary["orders confirmed"] == str(len(MEMBERS) * ORDERS_EACH)  # --to includes its day
    before = (first - timedelta(days=1)).isoformat()
    summary = dict(_section(orders.ok("report", "--to", before), "Summary")[1:])
    assert summary["orders confirmed"] == "0"


def test_backtest_of_an_unchanged_draft_reproduces_every_order(orders: Server) -> None:
    out = orders.ok("backtest")
    overview = dict(_section(out, "Backtest")[1:])
    assert overview["orders recalculated"] == str(len(MEMBERS) * ORDERS_EACH)
    assert overview["reproduced on their own version"] == overview["orders recalculated"]
    assert overview["changed by the draft"] == "0"
    money = {row[0]: row for row in _section(out, "Money")[1:]}
    assert money["total paid"][3] == "0.00"


def test_backtest_of_a_richer_draft(orders: Server, tmp_path: Path) -> None:
    exported = tmp_path / "demo.json"
    orders.ok("program", "export", "demo", "--draft", "-o", str(exported))
    program = json.loads(exported.read_text(encoding="utf-8"))
    free = next(p for p in program["promotions"] if p["id"] == "free-shipping")
    free["status"] = "PROMOTION_STATUS_INACTIVE"  # shipping is paid again
    exported.write_text(json.dumps(program), encoding="utf-8")
    orders.ok("program", "import", str(exported))
    try:
        summary = json.loads(orders.ok("backtest", "--json"))
        assert summary["changed"] == str(len(MEMBERS) * ORDERS_EACH)
        assert int(summary["after"]["total"]) > int(summary["before"]["total"])
        out = orders.ok("backtest")
        promotions = {row[0]: row for row in _section(out, "Promotions")[1:]}
        assert promotions["free-shipping"][1:3] == [str(len(MEMBERS) * ORDERS_EACH), "0"]
        examples = _section(out, "Orders changed most")
        assert examples[0] == ["order", "total before", "total after", "change"]
        assert all(row[3].startswith("+") for row in examples[1:])
    finally:
        orders.ok("program", "revert", "demo")


def test_report_and_backtest_of_an_unknown_program_or_a_down_server(server: Server) -> None:
    for command in ("report", "backtest"):
        done = server.arbiter(command, "--program", "nope")
        assert done.code == 1 and "NOT_FOUND" in done.err and "Traceback" not in done.err
        down = run_arbiter(command, "--program", "demo", "--target", f"127.0.0.1:{free_port()}")
        assert down.code == 1 and "UNAVAILABLE" in down.err and "Traceback" not in down.err


def test_the_chart_of_several_days(tmp_path: Path) -> None:
    """The chart's layout with a month of days and a dozen promotions (made-up figures)."""
    response = admin_pb2.GetProgramReportResponse()
    for day in range(30):
        response.days.add(
            date=f"2026-11-{day + 1:02d}",
            orders=20 + day % 7 * 5,
            discount=150_000 + day * 9_000,
            accrued=40_000 + day * 1_000,
            redeemed=10_000 + day % 5 * 4_000,
        )
    for index in range(12):
        response.promotions.add(
            promotion=f"promotion-{index}",
            orders=index,
            discount=index * 100_000,
            points=(12 - index) * 1_000,
        )
    chart = tmp_path / "month.png"
    write_chart(response, chart, title="a month")
    assert chart.read_bytes().startswith(PNG_SIGNATURE)
