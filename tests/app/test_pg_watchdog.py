"""The embedded cluster's watchdog (server/app/pg_watchdog.py) on stand-in processes.

The "postmaster" here is a small Python process that writes down the signals it gets; the
real cluster is covered by tests/app/test_serve_process.py (a SIGKILLed `arbiter serve`).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from arbiter.server.app.embedded_pg import WATCHDOG

WAIT_S = 60.0

_POSTMASTER = textwrap.dedent(
    """
    import signal, sys, time
    from pathlib import Path
    notes = Path(sys.argv[1])
    ignore_int = sys.argv[2] == "stubborn"

    def note(signum, frame):
        with notes.open("a") as out:
            out.write(signal.Signals(signum).name + "\\n")
        if not (ignore_int and signum == signal.SIGINT):
            sys.exit(0)

    for signum in (signal.SIGINT, signal.SIGQUIT):
        signal.signal(signum, note)
    notes.touch()
    while True:
        time.sleep(1)
    """
)


def _postmaster(notes: Path, how: str = "obedient") -> subprocess.Popen[bytes]:
    process = subprocess.Popen([sys.executable, "-c", _POSTMASTER, str(notes), how])
    while not notes.exists():  # its handlers are in place
        if process.poll() is not None:
            raise AssertionError("the stand-in postmaster died")
        time.sleep(0.01)
    return process


def _owner() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])


def _end(process: subprocess.Popen[bytes]) -> None:
    process.kill()
    process.wait()


def _ignores(pid: int, signum: int) -> bool:
    """Whether the process ignores the signal (its SigIgn mask, /proc: Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    return False


def _watchdog(owner: int, postmaster: int, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-I", str(WATCHDOG), str(owner), str(postmaster), *extra]
    )


def test_the_owner_killed_the_postmaster_gets_a_fast_shutdown(tmp_path: Path) -> None:
    notes = tmp_path / "signals"
    postmaster, owner = _postmaster(notes), _owner()
    watchdog = _watchdog(owner.pid, postmaster.pid)
    _end(owner)
    assert postmaster.wait(timeout=WAIT_S) == 0
    assert watchdog.wait(timeout=WAIT_S) == 0
    assert notes.read_text().split() == ["SIGINT"]


def test_a_postmaster_deaf_to_the_fast_shutdown_gets_an_immediate_one(tmp_path: Path) -> None:
    notes = tmp_path / "signals"
    postmaster, owner = _postmaster(notes, "stubborn"), _owner()
    watchdog = _watchdog(owner.pid, postmaster.pid, "0.5")
    _end(owner)
    assert postmaster.wait(timeout=WAIT_S) == 0
    assert watchdog.wait(timeout=WAIT_S) == 0
    assert notes.read_text().split() == ["SIGINT", "SIGQUIT"]


def test_a_normal_stop_ends_the_watchdog_and_spares_the_owner(tmp_path: Path) -> None:
    notes = tmp_path / "signals"
    postmaster, owner = _postmaster(notes), _owner()
    watchdog = _watchdog(owner.pid, postmaster.pid)
    try:
        postmaster.send_signal(signal.SIGINT)  # the owner's pg_ctl stop, in short
        assert postmaster.wait(timeout=WAIT_S) == 0
        assert watchdog.wait(timeout=WAIT_S) == 0
        assert owner.poll() is None
    finally:
        _end(owner)


def test_the_terminals_signals_do_not_reach_it(tmp_path: Path) -> None:
    notes = tmp_path / "signals"
    postmaster, owner = _postmaster(notes), _owner()
    watchdog = _watchdog(owner.pid, postmaster.pid)
    try:
        terminal = (signal.SIGINT, signal.SIGHUP)
        while not all(_ignores(watchdog.pid, signum) for signum in terminal):
            assert watchdog.poll() is None  # still starting: wait until it has said so
            time.sleep(0.01)
        for signum in terminal:
            watchdog.send_signal(signum)
        # Still watching: the owner's end stops the postmaster.
        _end(owner)
        assert postmaster.wait(timeout=WAIT_S) == 0
        assert watchdog.wait(timeout=WAIT_S) == 0
    finally:
        if postmaster.poll() is None:
            _end(postmaster)
    assert notes.read_text().split() == ["SIGINT"]
