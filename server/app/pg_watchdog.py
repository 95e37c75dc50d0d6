"""The embedded PostgreSQL's watchdog: the cluster never outlives the process that owns it.

`EmbeddedPostgres.start()` runs this file as a small process of its own (its own session, so
the terminal's Ctrl-C and hang-up do not reach it):

    python -I pg_watchdog.py OWNER_PID POSTMASTER_PID [STOP_TIMEOUT_S]

It waits until either process ends. The postmaster ending first is the normal stop: the
watchdog exits. The owner ending first (SIGKILL, a crash, any signal it does not handle) leaves
a cluster nobody will stop: the watchdog asks the postmaster for a fast shutdown (SIGINT: open
sessions end, committed data is kept), and after STOP_TIMEOUT_S for an immediate one (SIGQUIT).

It imports only the standard library and nothing of the project: it starts in a few tens of
milliseconds and holds no file of its owner (the data folder's lock is released with the owner).
Processes are followed by pidfd on Linux (no pid reuse can fool it), else by polling.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import time

STOP_TIMEOUT_S = 30.0
POLL_S = 0.2


class _Process:
    """A process followed by pidfd where the system has them, else by pid."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.fd: int | None = None
        self.gone = False
        if hasattr(os, "pidfd_open"):
            try:
                self.fd = os.pidfd_open(pid)
            except ProcessLookupError:
                self.gone = True
            except OSError:
                self.fd = None  # an old kernel: poll the pid

    def alive(self) -> bool:
        if self.gone:
            return False
        if self.fd is not None:
            ready, _, _ = select.select([self.fd], [], [], 0)
            self.gone = bool(ready)
            return not self.gone
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            self.gone = True
        except PermissionError:
            pass
        return not self.gone

    def signal(self, signum: int) -> None:
        if not self.alive():
            return
        try:
            if self.fd is not None:
                signal.pidfd_send_signal(self.fd, signum)
            else:
                os.kill(self.pid, signum)
        except ProcessLookupError:
            self.gone = True


def wait_any(processes: list[_Process], timeout_s: float | None = None) -> None:
    """Until one of `processes` has ended (or `timeout_s` has passed)."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while all(p.alive() for p in processes):
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            return
        fds = [p.fd for p in processes if p.fd is not None]
        if len(fds) == len(processes):
            select.select(fds, [], [], left)
        else:
            time.sleep(POLL_S if left is None else min(POLL_S, left))


def watch(owner_pid: int, postmaster_pid: int, stop_timeout_s: float = STOP_TIMEOUT_S) -> bool:
    """Follow both; stop the postmaster if its owner goes first. False: it would not stop."""
    owner = _Process(owner_pid)
    postmaster = _Process(postmaster_pid)
    wait_any([owner, postmaster])
    for signum in (signal.SIGINT, signal.SIGQUIT):
        if not postmaster.alive():
            return True
        postmaster.signal(signum)
        wait_any([postmaster], stop_timeout_s)
    return not postmaster.alive()


def main(argv: list[str]) -> int:
    # The owner's terminal signals are not ours: only the owner's end is.
    for signum in (signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    owner_pid, postmaster_pid = (int(arg) for arg in argv[1:3])
    stop_timeout_s = float(argv[3]) if len(argv) > 3 else STOP_TIMEOUT_S
    if not watch(owner_pid, postmaster_pid, stop_timeout_s):
        print(f"arbiter pg watchdog: PostgreSQL {postmaster_pid} did not stop", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
