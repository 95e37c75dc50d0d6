"""The suite's guard (tests/conftest.py): no test writes into the user's data folder or home."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from arbiter.server.app.embedded_pg import ROOT_DATA_DIR, default_data_dir
from tests.data_guard import DataFolderGuard

REPO = Path(__file__).resolve().parents[2]


def test_a_folder_created_or_written_is_seen(tmp_path: Path) -> None:
    folder = tmp_path / "arbiter"
    guard = DataFolderGuard.watching([folder])
    assert guard.changed() == []
    folder.mkdir()
    assert guard.changed() == [folder]
    assert guard.changed() == []
    (folder / "arbiter.lock").write_text("123\n")
    assert guard.changed() == [folder]
    (folder / "arbiter.lock").write_text("")  # truncated, as a server lets go of the folder
    assert guard.changed() == [folder]
    assert guard.changed() == []


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
    from pathlib import Path

    def test_writes_into_the_real_data_folder():
        real = Path(os.environ["REAL_DATA_DIR"])
        real.mkdir(parents=True, exist_ok=True)
        (real / "arbiter.lock").write_text(str(os.getpid()))

    def test_stays_in_its_own_folder(tmp_path):
        (tmp_path / "arbiter.lock").write_text(str(os.getpid()))
    """
)


@pytest.mark.parametrize("exists_before", [False, True])
def test_a_test_writing_into_the_real_data_folder_fails(
    tmp_path: Path, exists_before: bool
) -> None:
    """An inner pytest session with this suite's conftest, whose "real" home is `tmp_path`."""
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
    assert "2 passed, 1 error" in out, out
    assert "ERROR at teardown of test_writes_into_the_real_data_folder" in out, out
    assert f"this test wrote into the user's data folder ({real_data})" in out, out
    assert "test_stays_in_its_own_folder" not in out.split("short test summary")[-1], out
