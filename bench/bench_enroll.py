"""Bulk enrollment at size on a throwaway embedded PostgreSQL (not a test).

    python bench/bench_enroll.py [grpc|ledger|cli ...] [--members 1000000] [--batch 1000]
        [--profile-server FILE]

Each mode runs on a fresh embedded cluster of its own, enrolling `--members` new members of the
shop program (tests/e2e/conftest.py: an initial balance of 1,000 bonus, so each member is a
member row, two balance rows, an ACCRUAL transaction, its lot and two outbox events):

- grpc: `arbiter serve` (a separate process, as the other benches start it) and this process
  streaming `--batch` members a message (`EnrollMemberRequest.members`; `--batch 1`: one
  `EnrollMemberRequest {program, member_id}` a message) through one EnrollMembers call.
- ledger: `Ledger.enroll_many` in this process, no gRPC (what PostgreSQL and the ledger's Python
  cost alone).
- cli: `arbiter member enroll --file members.csv` (a child process) against `arbiter serve`.

Prints members/s; the CPU seconds each process spent over the run (the server, PostgreSQL's
backends, the client) per member in microseconds; the server's RSS before and after (and its
peak), and the client's peak RSS. `--profile-server FILE` runs the server under cProfile and
writes its statistics to FILE (pstats) when it stops. The first two cores are shared by all
three processes: on this machine the CPU per member, not the wall clock alone, says where a
change helped.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from arbiter.server.api.program_file import program_to_json
from arbiter.server.app.embedded_pg import EmbeddedPostgres
from arbiter.server.app.runtime import run
from arbiter.server.ledger import Ledger
from arbiter.v1 import member_pb2, member_pb2_grpc
from bench.bench_confirm import _cpu_s, _free_port, _postgres_cpu_s, _wait_serving
from tests.e2e.conftest import PROGRAM, shop_program

_MODES = ("grpc", "ledger", "cli")


def _status_kb(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(key):
                return int(line.split()[1])
    return 0


class _Server:
    """`arbiter serve` on the cluster, in a process of its own (optionally under cProfile)."""

    def __init__(self, dsn: str, workdir: Path, profile: str | None) -> None:
        self.listen = f"127.0.0.1:{_free_port()}"
        program = workdir / "shop.json"
        program.write_text(program_to_json(shop_program()), encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith("ARBITER_")}
        self._log = (workdir / "serve.log").open("ab")
        python = [sys.executable]
        if profile:
            python += ["-m", "cProfile", "-o", profile]
        self.process = subprocess.Popen(
            [*python, "-m", "arbiter.client.cli", "serve", "--listen", self.listen,
             "--postgres", dsn, "--program", str(program), "--log-level", "WARNING"],
            env=env, stdout=self._log, stderr=subprocess.STDOUT,
        )

    def rss_mib(self) -> float:
        return _status_kb(self.process.pid, "VmRSS:") / 1024

    def peak_mib(self) -> float:
        return _status_kb(self.process.pid, "VmHWM:") / 1024

    def cpu_s(self) -> float:
        return _cpu_s(self.process.pid)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=120)
        self._log.close()


def _self_cpu_s() -> float:
    times = os.times()
    return times.user + times.system


def _report(mode: str, count: int, elapsed: float, cpu: dict[str, float]) -> None:
    print(f"{mode}: {count:,} members in {elapsed:.1f} s: {count / elapsed:,.0f} members/s")
    print("  cpu us/member: " + ", ".join(
        f"{name} {seconds * 1e6 / count:.1f}" for name, seconds in cpu.items()))


async def _stream(target: str, count: int, batch: int) -> int:
    async with grpc.aio.insecure_channel(target) as channel:
        members = member_pb2_grpc.MemberServiceStub(channel)

        async def requests() -> AsyncIterator[member_pb2.EnrollMemberRequest]:
            if batch <= 1:
                for i in range(count):
                    yield member_pb2.EnrollMemberRequest(program=PROGRAM, member_id=f"p-{i}")
                return
            for start in range(0, count, batch):
                request = member_pb2.EnrollMemberRequest(program=PROGRAM)
                add = request.members.add
                for i in range(start, min(count, start + batch)):
                    add(member_id=f"p-{i}")
                yield request

        result = await members.EnrollMembers(requests(), timeout=None)
    assert result.already_enrolled == 0, result
    return int(result.enrolled)


async def _grpc(args: argparse.Namespace, dsn: str, postmaster: int, workdir: Path) -> None:
    server = _Server(dsn, workdir, args.profile_server)
    try:
        await _wait_serving(server.listen)
        before = server.rss_mib()
        cpu = (server.cpu_s(), _postgres_cpu_s(postmaster), _self_cpu_s())
        started = time.perf_counter()
        enrolled = await _stream(server.listen, args.members, args.batch)
        elapsed = time.perf_counter() - started
        used = (server.cpu_s(), _postgres_cpu_s(postmaster), _self_cpu_s())
        _report(f"grpc ({args.batch} a message)", enrolled, elapsed, dict(zip(
            ("server", "postgres", "client"), (b - a for a, b in zip(cpu, used, strict=True)),
            strict=True)))
        print(f"  server RSS {before:,.0f} MiB before, {server.rss_mib():,.0f} MiB after"
              f" (peak {server.peak_mib():,.0f} MiB); client peak RSS"
              f" {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")
    finally:
        server.stop()


async def _ledger(args: argparse.Namespace, dsn: str, postmaster: int) -> None:
    program = shop_program()
    async with await Ledger.connect(dsn) as ledger:
        await ledger.migrate()
        cpu = (_postgres_cpu_s(postmaster), _self_cpu_s())
        started = time.perf_counter()
        result = await ledger.enroll_many(program, (f"p-{i}" for i in range(args.members)))
        elapsed = time.perf_counter() - started
        used = (_postgres_cpu_s(postmaster), _self_cpu_s())
    _report("ledger", result.enrolled, elapsed, dict(zip(
        ("postgres", "ledger"), (b - a for a, b in zip(cpu, used, strict=True)), strict=True)))
    print(f"  peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")


async def _cli(args: argparse.Namespace, dsn: str, postmaster: int, workdir: Path) -> None:
    csv = workdir / "members.csv"
    with csv.open("w", encoding="utf-8") as out:
        out.write("member_id,registered_at\n")
        for i in range(args.members):
            out.write(f"p-{i},2025-01-01T00:00:00+00:00\n")
    server = _Server(dsn, workdir, args.profile_server)
    try:
        await _wait_serving(server.listen)
        before = server.rss_mib()
        cpu = (server.cpu_s(), _postgres_cpu_s(postmaster))
        env = {k: v for k, v in os.environ.items() if not k.startswith("ARBITER_")}
        started = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, "-m", "arbiter.client.cli", "member", "enroll", "--target",
             server.listen, "--program", PROGRAM, "--file", str(csv)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        _, status, usage = await asyncio.to_thread(os.wait4, child.pid, 0)
        elapsed = time.perf_counter() - started
        assert child.stdout is not None
        output = child.stdout.read().decode()
        if status != 0:
            raise SystemExit(f"the command failed ({status}):\n{output}")
        used = (server.cpu_s(), _postgres_cpu_s(postmaster))
        _report("cli", args.members, elapsed, {
            "server": used[0] - cpu[0], "postgres": used[1] - cpu[1],
            "client": usage.ru_utime + usage.ru_stime})
        print(f"  server RSS {before:,.0f} MiB before, {server.rss_mib():,.0f} MiB after"
              f" (peak {server.peak_mib():,.0f} MiB); client peak RSS"
              f" {usage.ru_maxrss / 1024:,.0f} MiB")
        print("  " + " | ".join(line.strip() for line in output.splitlines() if line.strip()))
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modes", nargs="*", choices=_MODES, metavar="MODE",
                        help="grpc (the default), ledger, cli; several run one after another")
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1000,
                        help="grpc: members a message (EnrollMemberRequest.members); 1: one each")
    parser.add_argument("--profile-server", metavar="FILE",
                        help="run the server under cProfile, statistics written to FILE")
    args = parser.parse_args()
    for mode in args.modes or ["grpc"]:
        workdir = Path(tempfile.mkdtemp(prefix="arbiter-bench-"))
        workdir.chmod(0o755)  # as root, the embedded cluster runs as `nobody`
        try:
            with EmbeddedPostgres(workdir / "data") as cluster:
                postmaster = int((cluster.pgdata / "postmaster.pid").read_text().split("\n")[0])
                dsn = cluster.socket_dsn
                if mode == "grpc":
                    run(_grpc(args, dsn, postmaster, workdir))
                elif mode == "ledger":
                    run(_ledger(args, dsn, postmaster))
                else:
                    run(_cli(args, dsn, postmaster, workdir))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
