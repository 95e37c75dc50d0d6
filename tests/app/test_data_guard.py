"""The suite's guard (tests/conftest.py): no test writes into the user's data folder or home."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from arbiter.server.app.embedded_pg import ROOT_DATA_DIR, default_data_dir
from tests.data_guard import DataFolderGuard, descends_from

REPO = Path(__file__).resolve().parents[2]


def test_a_holder_of_this_process_tree_is_found(tmp_path: Path) -> None:
    folder = tmp_path / "arbiter"
    folder.mkdir()
    guard = DataFolderGuard([folder])
    assert guard.take() == []
    (folder / "arbiter.lock").write_text(f"{os.getpid()}\n")  # this process
    found = guard.take()
    assert [(t.folder, t.pid) for t in found] == [(folder, os.getpid())]
    assert guard.take() == []  # told once
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        (folder / "arbiter.lock").write_text(f"{child.pid}\n")  # a descendant
        assert [t.pid for t in guard.take()] == [child.pid]
    finally:
        child.communicate(b"")


def test_a_holder_outside_this_process_tree_is_not_the_sessions(tmp_path: Path) -> None:
    folder = tmp_path / "arbiter"
    folder.mkdir()
    guard = DataFolderGuard([folder])
    for holder in (os.getppid(), 1):  # an ancestor (what runs pytest), and init
        (folder / "arbiter.lock").write_text(f"{holder}\n")
        assert guard.take() == []
    (folder / "arbiter.lock").write_text("")  # let go, as a server does
    assert guard.take() == []
    assert descends_from(os.getpid(), os.getppid())
    assert not descends_from(os.getppid(), os.getpid())


def test_the_real_folders_are_watched(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path / "home"), "XDG_DATA_HOME": str(tmp_path / "xdg")}
    folders = set(DataFolderGuard.of_environment(env).folders)
    assert tmp_path / "xdg" / "arbiter" in folders
    assert tmp_path / "home" / ".local" / "share" / "arbiter" in folders
    assert (ROOT_DATA_DIR in folders) is (os.geteuid() == 0)


def test_the_session_serves_from_a_temporary_home() -> None:
    # What the old subprocess test did: a server's environment without the ARBITER_* variables.
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARBITER_")}
    show = "from arbiter.server.app.settings import default_data_dir; print(default_data_dir())"
    done = subprocess.run(
        [sys.executable, "-c", show], env=env, capture_output=True, text=True, check=True
    )
    served = Path(done.stdout.strip())
    home = Path(os.environ["HOME"])
    assert served.is_relative_to(home), (served, home)
    assert home.name.startswith("arbiter-test-home-")
    assert served != ROOT_DATA_DIR
    assert default_data_dir() == served


_INNER_TESTS = textwrap.dedent(
    """
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    HOLD = (
        "import os, sys, time; from pathlib import Path; lock = Path(sys.argv[1]);"
        " lock.parent.mkdir(parents=True, exist_ok=True);"
        " lock.write_text(str(os.getpid())); time.sleep(0.5); lock.write_text('')"
    )

    def test_serves_from_the_real_data_folder():
        lock = Path(os.environ["REAL_DATA_DIR"]) / "arbiter.lock"
        subprocess.run([sys.executable, "-c", HOLD, str(lock)], check=True)

    def test_stays_in_its_own_folder(tmp_path):
        subprocess.run([sys.executable, "-c", HOLD, str(tmp_path / "arbiter.lock")], check=True)

    def test_beside_a_server_of_the_user():
        lock = Path(os.environ["REAL_DATA_DIR"]) / "arbiter.lock"
        lock.write_text(os.environ["USER_SERVER_PID"])  # not of this session
        time.sleep(0.2)
    """
)


@pytest.mark.parametrize("exists_before", [False, True])
def test_a_test_serving_from_the_real_data_folder_fails(
    tmp_path: Path, exists_before: bool
) -> None:
    """An inner pytest session with this suite's conftest, whose "real" data folder is in
    `tmp_path`: the test whose child holds it fails, the others pass."""
    real_xdg = tmp_path / "xdg"
    real_data = real_xdg / "arbiter"
    if exists_before:
        real_data.mkdir(parents=True)
        (real_data / "arbiter.lock").write_text("")
    inner = tmp_path / "inner"
    inner.mkdir()
    (inner / "test_inner.py").write_text(_INNER_TESTS)
    (inner / "pytest.ini").write_text("[pytest]\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ARBITER_", "PYTEST_"))}
    env |= {
        "HOME": str(tmp_path / "home"),
        "XDG_DATA_HOME": str(real_xdg),
        "REAL_DATA_DIR": str(real_data),
        "USER_SERVER_PID": str(os.getpid()),  # the outer session: no descendant of the inner
        "PYTHONPATH": str(REPO),
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "tests.conftest",
            "-c",
            str(inner / "pytest.ini"),
            "--rootdir",
            str(inner),
            str(inner / "test_inner.py"),
        ],
        cwd=inner,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "3 passed, 1 error" in out, out
    assert "ERROR at teardown of test_serves_from_the_real_data_folder" in out, out
    assert f"this test served from the user's data folder ({real_data} held by pid" in out, out
    summary = out.split("short test summary")[-1]
    assert "test_stays_in_its_own_folder" not in summary, out
    assert "test_beside_a_server_of_the_user" not in summary, out
