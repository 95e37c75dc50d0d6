"""Apply latency, and quote latency while Applies run, over gRPC on a real PostgreSQL (not a test).

    python bench/bench_apply.py [--promotions 200,2000] [--clients 8] [--applies 5]
                                [--seconds 5] [--loop-lag] [--postgres DSN]

Starts `arbiter serve` with no program as a separate process (the load generator does not share
its event loop) on the embedded PostgreSQL in a fresh temporary folder, or on `--postgres DSN`.
For each size it imports and applies a program of that many promotions (bench/workloads.py's
`sized_workload`), then:

1. baseline: `--clients` clients quote that program's 20-line order for `--seconds`;
2. during Applies: the same clients quote while `--applies` Applies run one after another, each
   of a new variant of the program (ImportProgram, then Apply: a new version to compile, store
   and swap); only quotes started inside that window are counted.

Prints, per size, the Apply latency (p50, max, in ms, as the admin client sees it: compile,
commit, swap), the quote p50/p99/max of both phases, the failed quotes (there must be none),
and the versions the quotes answered on (each answer names one).

`--loop-lag` measures instead, in this process, how late the event loop wakes from a 1 ms sleep
while Applies run, with the compile as served (`state.config._yielding`: a short GIL switch
interval, the cyclic GC paused) and as a plain call, alternating.
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
from datetime import UTC, datetime
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from arbiter.server.app.embedded_pg import EmbeddedPostgres
from arbiter.server.app.runtime import run
from arbiter.v1 import admin_pb2, admin_pb2_grpc, checkout_pb2, checkout_pb2_grpc
from bench.bench_confirm import _free_port, _percentile, _wait_serving
from bench.workloads import sized_workload


class _Quotes:
    """Quote latencies and outcomes, gathered by every client while `running`."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.versions: set[int] = set()
        self.running = True


async def _quote_client(
    stub: checkout_pb2_grpc.CheckoutServiceStub,
    request: checkout_pb2.CalculateOrderRequest,
    quotes: _Quotes,
) -> None:
    while quotes.running:
        started = time.perf_counter()
        try:
            response = await stub.CalculateOrder(request)
            quotes.versions.add(response.program_version)
        except grpc.aio.AioRpcError as exc:
            quotes.errors.append(exc.code().name)
        if quotes.running:
            quotes.latencies.append(time.perf_counter() - started)


def _ms(values: list[float], q: float) -> str:
    return f"{_percentile(values, q) * 1e3:.1f}"


def _summary(name: str, quotes: _Quotes, elapsed: float) -> str:
    latencies = sorted(quotes.latencies)
    top = latencies[-1] * 1e3 if latencies else float("nan")
    return (
        f"  quotes {name}: n={len(latencies)} ({len(latencies) / elapsed:.0f}/s)"
        f" p50={_ms(latencies, 0.5)} p99={_ms(latencies, 0.99)} max={top:.1f} ms"
        f" errors={len(quotes.errors)} versions={sorted(quotes.versions)}"
    )


async def _measure(target: str, size: int, args: argparse.Namespace) -> None:
    program_id = f"apply{size}"
    program, request = sized_workload(size, program_id=program_id)
    async with grpc.aio.insecure_channel(target) as channel:
        admin = admin_pb2_grpc.AdminServiceStub(channel)
        await admin.ImportProgram(admin_pb2.ImportProgramRequest(program=program))
        first = await admin.Apply(admin_pb2.ApplyRequest(program=program_id))
        checkout = checkout_pb2_grpc.CheckoutServiceStub(channel)
        warm = _Quotes()
        tasks = [asyncio.ensure_future(_quote_client(checkout, request, warm))
                 for _ in range(args.clients)]
        await asyncio.sleep(1.0)
        warm.running = False
        await asyncio.gather(*tasks)

        baseline = _Quotes()
        started = time.perf_counter()
        tasks = [asyncio.ensure_future(_quote_client(checkout, request, baseline))
                 for _ in range(args.clients)]
        await asyncio.sleep(args.seconds)
        baseline.running = False
        await asyncio.gather(*tasks)
        baseline_s = time.perf_counter() - started

        during = _Quotes()
        applies: list[float] = []
        variants = [sized_workload(size, variant=v + 1, program_id=program_id)[0]
                    for v in range(args.applies)]
        started = time.perf_counter()
        tasks = [asyncio.ensure_future(_quote_client(checkout, request, during))
                 for _ in range(args.clients)]
        version = first.version
        for variant in variants:
            await admin.ImportProgram(admin_pb2.ImportProgramRequest(program=variant))
            t0 = time.perf_counter()
            version = (await admin.Apply(admin_pb2.ApplyRequest(program=program_id))).version
            applies.append(time.perf_counter() - t0)
        during.running = False
        await asyncio.gather(*tasks)
        during_s = time.perf_counter() - started
    applies.sort()
    print(
        f"promotions={size} applies={len(applies)} last_version={version}"
        f" apply_ms p50={_ms(applies, 0.5)} max={applies[-1] * 1e3:.1f}"
    )
    print(_summary("baseline", baseline, baseline_s))
    print(_summary("during applies", during, during_s))


async def _loop_lag(dsn: str, size: int, applies: int, *, plain: bool) -> None:
    """In this process: an App on `dsn`, and the event loop's lag (a 1 ms sleep's overshoot)
    while `applies` Applies of a `size`-promotion program run; `plain` compiles without the
    GIL switch interval and GC pause of `state.config._yielding` (for comparison)."""
    from arbiter.server.app.settings import Settings
    from arbiter.server.app.wiring import App
    from arbiter.server.state import config as config_module
    from arbiter.server.state.store import EditOutcome

    saved = config_module._yielding
    if plain:
        config_module._yielding = lambda compile, program: compile(program)
    app = App(Settings(listen="127.0.0.1:0", postgres_url=dsn, jobs_interval_s=0))
    await app.open()
    try:
        await app.ready()
        configuration = app.config
        assert configuration is not None
        program_id = f"lag{size}{'plain' if plain else ''}"
        variants = [sized_workload(size, variant=v, program_id=program_id)[0]
                    for v in range(applies)]
        lags: list[float] = []
        worst: list[float] = []
        for variant in variants:
            await configuration.store.edit(
                program_id,
                lambda _draft, p=variant: EditOutcome(p, "import", "program", program_id),
                "bench",
                datetime.now(UTC),
                create_missing=True,
            )
            window: list[float] = []
            done = asyncio.Event()

            async def monitor(window: list[float] = window, done: asyncio.Event = done) -> None:
                while not done.is_set():
                    t0 = time.perf_counter()
                    await asyncio.sleep(0.001)
                    window.append(time.perf_counter() - t0 - 0.001)

            watcher = asyncio.ensure_future(monitor())
            await configuration.apply(program_id, "bench")
            done.set()
            await watcher
            lags.extend(window)
            worst.append(max(window))
        lags.sort()
        worst.sort()
        print(
            f"promotions={size} compile={'plain' if plain else 'yielding'} applies={applies}"
            f" loop_lag_ms p50={_ms(lags, 0.5)} p99={_ms(lags, 0.99)}"
            f" worst_per_apply={[round(w * 1e3, 1) for w in worst]}"
        )
    finally:
        config_module._yielding = saved
        await app.stop(0)


async def _run(args: argparse.Namespace, dsn: str, workdir: Path) -> None:
    if args.loop_lag:
        for size in (int(s) for s in args.promotions.split(",")):
            for plain in (True, False, True, False):
                await _loop_lag(dsn, size, args.applies, plain=plain)
        return
    listen = f"127.0.0.1:{_free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARBITER_")}
    log = (workdir / "serve.log").open("ab")
    server = subprocess.Popen(
        [sys.executable, "-m", "arbiter.client.cli", "serve", "--listen", listen,
         "--postgres", dsn, "--log-level", "WARNING"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        await _wait_serving(listen)
        for size in (int(s) for s in args.promotions.split(",")):
            await _measure(listen, size, args)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--promotions", default="200,2000", help="sizes, comma-separated")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--applies", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5.0, help="the baseline's length")
    parser.add_argument(
        "--loop-lag",
        action="store_true",
        help="instead: the event loop's lag during Applies, in this process, with the compile"
        " as served and plain (twice each, alternating)",
    )
    parser.add_argument("--postgres", metavar="DSN", help="default: embedded, in a temp folder")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="arbiter-bench-"))
    workdir.chmod(0o755)  # as root, the embedded cluster runs as `nobody`
    try:
        if args.postgres:
            run(_run(args, args.postgres, workdir))
        else:
            with EmbeddedPostgres(workdir / "data") as cluster:
                run(_run(args, cluster.socket_dsn, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
