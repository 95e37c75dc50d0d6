"""Forking to run PostgreSQL's binaries next to a busy gRPC runtime (arbiter/__init__.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

_FORKS = textwrap.dedent(
    """
    import arbiter  # first, as every entry point does
    import subprocess, threading
    from concurrent import futures
    import grpc
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    server = grpc.server(futures.ThreadPoolExecutor(4))
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    stub = health_pb2_grpc.HealthStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
    stop = False

    def hammer():
        while not stop:
            stub.Check(health_pb2.HealthCheckRequest())

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    bad = []
    for _ in range(300):
        # user= makes subprocess fork() (not vfork), as EmbeddedPostgres does as root.
        done = subprocess.run(
            ["/bin/true"], user=65534, group=65534, extra_groups=[], capture_output=True, text=True
        )
        if done.returncode or done.stderr:
            bad.append(done.stderr[-300:])
    stop = True
    for t in threads:
        t.join()
    server.stop(0)
    print("bad", len(bad), bad[:1])
    """
)


def test_fork_support_is_off_unless_asked_for() -> None:
    show = "import arbiter, os; print(os.environ['GRPC_ENABLE_FORK_SUPPORT'])"
    env = {k: v for k, v in os.environ.items() if k != "GRPC_ENABLE_FORK_SUPPORT"}
    out = subprocess.run([sys.executable, "-c", show], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "false", out.stderr
    env["GRPC_ENABLE_FORK_SUPPORT"] = "1"
    out = subprocess.run([sys.executable, "-c", show], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "1", out.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another account needs root")
def test_children_forked_beside_busy_grpc_threads_exec_cleanly() -> None:
    env = {k: v for k, v in os.environ.items() if k != "GRPC_ENABLE_FORK_SUPPORT"}
    done = subprocess.run(
        [sys.executable, "-c", _FORKS], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("bad 0 "), done.stdout
