"""Reports, backtests and bulk enrollment at size, on a throwaway embedded PostgreSQL (not a test).

    python bench/bench_reports.py report [--transactions 10000000] [--orders 2000000]
        [--zone UTC] [--repeat 5]
    python bench/bench_reports.py backtest [--orders 100000] [--seed-orders 300] [--clients 4]
    python bench/bench_reports.py enroll [--members 1000000]

report: generates a ledger with SQL generate_series (members, `--transactions` transactions
  over a year, `--orders` confirmed orders with stored results) and times GetProgramReport's
  queries (`Ledger.program_report`) for a year, a month, a week and a day, each from midnight
  of the program's time zone (`--zone`), median of `--repeat` runs.
backtest: starts `arbiter serve` (a separate process), confirms `--seed-orders` orders through
  gRPC, clones them in SQL to `--orders` (order rows and their stored inputs), then runs
  BacktestDraft on a draft that changes the accrual while `--clients` clients quote; prints the
  backtest's orders/s, `reproduced`, and the quote p50/p99 before and during it.
enroll: starts the server and enrolls `--members` members through one EnrollMembers stream;
  prints members/s and the server's peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from arbiter.server.api.program_file import program_to_json
from arbiter.server.app.embedded_pg import EmbeddedPostgres
from arbiter.server.app.runtime import run
from arbiter.server.ledger import Ledger
from arbiter.server.ledger._migrate import apply_migrations
from arbiter.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    checkout_pb2,
    checkout_pb2_grpc,
    member_pb2,
    member_pb2_grpc,
)
from bench.bench_confirm import _free_port, _percentile, _wait_serving
from tests.e2e.conftest import order_request, shop_program

T0 = datetime(2025, 1, 1, tzinfo=UTC)


# --- report -------------------------------------------------------------------------------------

_GENERATE = [
    """INSERT INTO members (program, member_id, registered_at, created_at)
       SELECT 'shop', 'm' || g, $1::timestamptz, $1 FROM generate_series(1, $2) g""",
    """INSERT INTO balances (member_pk, point_type, balance, txn_count)
       SELECT pk, 'bonus', 100, 1 FROM members""",
    # 60 % accruals, 30 % redemptions, 10 % expirations, spread evenly over 365 days.
    """INSERT INTO transactions (program, member_pk, member_id, point_type, type,
           balance_before, value, balance_after, source_type, source_id, created_at)
       SELECT 'shop', 1 + g % $2, 'm' || (1 + g % $2), 'bonus',
           CASE WHEN g % 10 < 6 THEN 'ACCRUAL' WHEN g % 10 < 9 THEN 'REDEMPTION'
                ELSE 'EXPIRATION' END,
           0, CASE WHEN g % 10 < 6 THEN 100 ELSE -50 END,
           CASE WHEN g % 10 < 6 THEN 100 ELSE -50 END,
           CASE WHEN g % 10 < 9 THEN 'ORDER' ELSE 'EXPIRATION' END, 'o' || g,
           $1::timestamptz + (g * (365.0 * 86400 / $3)) * interval '1 second'
       FROM generate_series(1, $3) g""",
    """INSERT INTO orders (program, order_id, member_pk, state, payload_hash, result, total,
           created_at, confirmed_at, program_version)
       SELECT 'shop', 'o' || g, CASE WHEN g % 20 = 0 THEN NULL ELSE 1 + g % $2 END,
           'CONFIRMED', '',
           jsonb_build_object('format', 1, 'totals',
               jsonb_build_array(1000, 100, 50, 0, 0, 850, 1),
               'benefits', jsonb_build_array(
                   jsonb_build_array('l1', 'A', 'POINTS', 'accrue', 0, 85, 'bonus', 'ON_CREATE'),
                   jsonb_build_array('l1', 'D' || (g % 5), 'DISCOUNT', 'discount', 100, 0, '',
                                     ''))),
           850, $1::timestamptz + (g * (365.0 * 86400 / $3)) * interval '1 second',
           $1::timestamptz + (g * (365.0 * 86400 / $3)) * interval '1 second', 1
       FROM generate_series(1, $3) g""",
]


async def _report(args: argparse.Namespace, dsn: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await apply_migrations(conn)
        started = time.perf_counter()
        members = max(1, args.transactions // 50)
        members_sql, balances_sql, transactions_sql, orders_sql = _GENERATE
        await conn.execute(members_sql, T0, members)
        await conn.execute(balances_sql)
        await conn.execute(transactions_sql, T0, members, args.transactions)
        await conn.execute(orders_sql, T0, members, args.orders)
        await conn.execute("VACUUM ANALYZE")
        print(f"generated {args.transactions:,} transactions, {args.orders:,} orders,"
              f" {members:,} members in {time.perf_counter() - started:.0f} s")
        size = await conn.fetchval("SELECT pg_size_pretty(pg_database_size(current_database()))")
        print(f"database size {size}")
    finally:
        await conn.close()
    program = shop_program()
    program.time_zone = args.zone
    zone = ZoneInfo(args.zone)

    def local(days: int) -> datetime:  # midnight of the program's day, `days` after T0's date
        return datetime.combine(T0.date() + timedelta(days=days), datetime.min.time(), zone)

    async with await Ledger.connect(dsn) as ledger:
        # The first report rolls up every closed hour (migration 0016) and reduces every whole
        # UTC day to the active days (migration 0017); later ones read them.
        t = time.perf_counter()
        await ledger.program_report(program, T0, T0 + timedelta(days=1))
        print(f"first report (rolls up the whole ledger): {time.perf_counter() - t:,.1f} s")
        for name, start, end in (
            ("year", local(0), local(366)),
            ("month", local(100), local(130)),
            ("week", local(150), local(157)),
            ("day", local(200), local(201)),
        ):
            timings = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                report = await ledger.program_report(program, start, end)
                timings.append(time.perf_counter() - t)
            timings.sort()
            print(f"report of a {name} ({args.zone}): {timings[len(timings) // 2] * 1000:,.0f} ms"
                  f" (median of {args.repeat}; best {timings[0] * 1000:,.0f} ms):"
                  f" {report.confirmed:,} orders, {len(report.days)} days,"
                  f" {len(report.promotions)} promotions, active {report.active:,}")


# --- the server for backtest and enroll --------------------------------------------------------


class _Server:
    def __init__(self, dsn: str, workdir: Path) -> None:
        self.listen = f"127.0.0.1:{_free_port()}"
        program = workdir / "shop.json"
        program.write_text(program_to_json(shop_program()), encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith("ARBITER_")}
        self._log = (workdir / "serve.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "arbiter.client.cli", "serve", "--listen", self.listen,
             "--postgres", dsn, "--program", str(program), "--log-level", "WARNING"],
            env=env, stdout=self._log, stderr=subprocess.STDOUT,
        )

    def rss_kb(self) -> int:
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return 0

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)
        self._log.close()


async def _quotes(target: str, stop: asyncio.Event, latencies: list[float],
                  member: str) -> None:
    async with grpc.aio.insecure_channel(target) as channel:
        checkout = checkout_pb2_grpc.CheckoutServiceStub(channel)
        request = checkout_pb2.CalculateOrderRequest(program="shop", member_id=member)
        request.order.CopyFrom(order_request("q", member, lines=(
            ("l1", 2, 1_000), ("l2", 1, 5_000), ("l3", 3, 700))).order)
        while not stop.is_set():
            t = time.perf_counter()
            await checkout.CalculateOrder(request)
            latencies.append(time.perf_counter() - t)


async def _measure_quotes(target: str, clients: int, seconds: float) -> list[float]:
    stop = asyncio.Event()
    latencies: list[float] = []
    tasks = [asyncio.create_task(_quotes(target, stop, latencies, f"m-{i % 10}"))
             for i in range(clients)]
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.gather(*tasks)
    return sorted(latencies)


def _ms(values: list[float]) -> str:
    return (f"p50 {_percentile(values, 0.5) * 1000:.2f} ms, p99"
            f" {_percentile(values, 0.99) * 1000:.2f} ms ({len(values):,} quotes)")


_CLONE_SQL = """
WITH src AS (
    SELECT o.*, i.request, i.member, i.code_usage, i.calculated_at,
           row_number() OVER (ORDER BY o.pk) AS n, count(*) OVER () AS k
    FROM orders o JOIN order_inputs i ON i.order_pk = o.pk
), copies AS (
    INSERT INTO orders (program, order_id, member_pk, state, payload_hash, result, total,
        created_at, confirmed_at, program_version)
    SELECT s.program, s.order_id || '-c' || g, s.member_pk, s.state, s.payload_hash, s.result,
        s.total, s.created_at, s.confirmed_at, s.program_version
    FROM src s CROSS JOIN generate_series(1, $1) g
    RETURNING pk, order_id
)
INSERT INTO order_inputs (order_pk, request, member, code_usage, calculated_at)
SELECT c.pk, s.request, s.member, s.code_usage, s.calculated_at
FROM copies c JOIN src s ON c.order_id LIKE s.order_id || '-c%'
    AND split_part(c.order_id, '-c', 1) = s.order_id
"""


async def _backtest(args: argparse.Namespace, dsn: str, workdir: Path) -> None:
    server = _Server(dsn, workdir)
    try:
        await _wait_serving(server.listen)
        async with grpc.aio.insecure_channel(server.listen) as channel:
            members = member_pb2_grpc.MemberServiceStub(channel)
            checkout = checkout_pb2_grpc.CheckoutServiceStub(channel)
            admin = admin_pb2_grpc.AdminServiceStub(channel)
            for i in range(10):
                await members.EnrollMember(member_pb2.EnrollMemberRequest(
                    program="shop", member_id=f"m-{i}"))
            for n in range(args.seed_orders):
                await checkout.ConfirmOrder(order_request(
                    f"o{n}", f"m-{n % 10}" if n % 7 else "", redeem=10 if n % 3 == 0 else 0,
                    lines=(("l1", 1 + n % 3, 1_000 + n), ("l2", 1, 2_500))))
            import asyncpg

            conn = await asyncpg.connect(dsn)
            try:
                copies = max(0, args.orders // args.seed_orders - 1)
                await conn.execute(_CLONE_SQL, copies)
                await conn.execute("VACUUM ANALYZE orders")
                await conn.execute("VACUUM ANALYZE order_inputs")
                total = await conn.fetchval("SELECT count(*) FROM orders")
            finally:
                await conn.close()
            print(f"{total:,} orders ({args.seed_orders} confirmed through gRPC, the rest cloned)")
            draft = shop_program()
            for p in draft.promotions:
                if p.id == "A":
                    p.product_rules[0].benefits[0].accrue_points.percent_bp = 1500
            await admin.ImportProgram(admin_pb2.ImportProgramRequest(program=draft))
            baseline = await _measure_quotes(server.listen, args.clients, args.seconds)
            print(f"quotes before: {_ms(baseline)}")

            stop = asyncio.Event()
            latencies: list[float] = []
            tasks = [asyncio.create_task(_quotes(server.listen, stop, latencies, f"m-{i}"))
                     for i in range(args.clients)]
            started = time.perf_counter()
            progress = 0
            summary = None
            async for message in admin.BacktestDraft(admin_pb2.BacktestDraftRequest(
                    program="shop", limit=args.orders)):
                if message.HasField("progress"):
                    progress += 1
                else:
                    summary = message.summary
            elapsed = time.perf_counter() - started
            stop.set()
            await asyncio.gather(*tasks)
            assert summary is not None
            print(f"backtest: {summary.orders:,} orders in {elapsed:.1f} s"
                  f" ({summary.orders / elapsed:,.0f} orders/s), {progress} progress messages,"
                  f" reproduced {summary.reproduced:,}, changed {summary.changed:,}")
            print(f"quotes during the backtest: {_ms(sorted(latencies))}")
            print(f"server peak RSS {server.rss_kb() / 1024:,.0f} MiB")
    finally:
        server.stop()


async def _enroll(args: argparse.Namespace, dsn: str, workdir: Path) -> None:
    server = _Server(dsn, workdir)
    try:
        await _wait_serving(server.listen)
        before = server.rss_kb()
        async with grpc.aio.insecure_channel(server.listen) as channel:
            members = member_pb2_grpc.MemberServiceStub(channel)

            async def stream() -> AsyncIterator[member_pb2.EnrollMemberRequest]:
                for i in range(args.members):
                    yield member_pb2.EnrollMemberRequest(program="shop", member_id=f"p-{i}")

            started = time.perf_counter()
            result = await members.EnrollMembers(stream())
            elapsed = time.perf_counter() - started
        print(f"enrolled {result.enrolled:,} members in {elapsed:.1f} s"
              f" ({result.enrolled / elapsed:,.0f} members/s)")
        print(f"server peak RSS {before / 1024:,.0f} MiB before, {server.rss_kb() / 1024:,.0f}"
              " MiB after")
    finally:
        server.stop()


async def _run(args: argparse.Namespace, dsn: str, workdir: Path) -> None:
    if args.mode == "report":
        await _report(args, dsn)
    elif args.mode == "backtest":
        await _backtest(args, dsn, workdir)
    else:
        await _enroll(args, dsn, workdir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("report", "backtest", "enroll"))
    parser.add_argument("--transactions", type=int, default=10_000_000)
    parser.add_argument("--orders", type=int, default=0,
                        help="report: 2,000,000; backtest: 100,000")
    parser.add_argument("--seed-orders", type=int, default=300)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--zone", default="UTC", help="report: the program's time zone")
    parser.add_argument("--repeat", type=int, default=5, help="report: runs per window")
    args = parser.parse_args()
    if not args.orders:
        args.orders = 2_000_000 if args.mode == "report" else 100_000
    workdir = Path(tempfile.mkdtemp(prefix="arbiter-bench-"))
    workdir.chmod(0o755)  # as root, the embedded cluster runs as `nobody`
    try:
        with EmbeddedPostgres(workdir / "data") as cluster:
            run(_run(args, cluster.socket_dsn, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
