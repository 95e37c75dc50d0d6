"""The compiled calculation (server/native.py): used only when current, chosen by ARBITER_NATIVE.

`make test` runs the suite with ARBITER_NATIVE=require, so every other test of the suite runs
the compiled modules; `test_the_other_form_agrees_with_the_reference` runs the engine's tests
and the property tests once more on the interpreted modules.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from arbiter.server import native

ROOT = Path(__file__).resolve().parents[2]
TESTS_OF_THE_ENGINE = ("tests/engine", "tests/property")


def _fake_package(tmp_path: Path, digest_built: str | None) -> str:
    """A package whose `mod` says where it came from, with a `_native` build of `digest_built`
    (None: no build folder), activated from its __init__ like the engine's."""
    name = f"fake_native_{uuid.uuid4().hex}"
    pkg = tmp_path / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        "import os\n"
        "from pathlib import Path\n"
        "from arbiter.server import native\n"
        "ACTIVE = native.activate_folder(__path__, Path(__file__).parent / '_native',"
        " os.environ['FAKE_DIGEST'], os.environ['FAKE_MODE'], __name__)\n"
    )
    (pkg / "mod.py").write_text("FROM = 'source'\n")
    if digest_built is not None:
        (pkg / "_native").mkdir()
        (pkg / "_native" / "mod.py").write_text("FROM = 'build'\n")
        (pkg / "_native" / native.DIGEST_FILE).write_text(digest_built + "\n")
    return name


@pytest.mark.parametrize(
    ("built", "how", "expected"),
    [
        ("abc", "auto", "build"),
        ("abc", "require", "build"),
        ("abc", "off", "source"),
        ("stale", "auto", "source"),
        (None, "auto", "source"),
        ("stale", "off", "source"),
    ],
)
def test_a_build_shadows_the_sources_only_when_current(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, built: str | None, how: str, expected: str
) -> None:
    name = _fake_package(tmp_path, built)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("FAKE_DIGEST", "abc")
    monkeypatch.setenv("FAKE_MODE", how)
    mod = importlib.import_module(f"{name}.mod")
    active = sys.modules[name].ACTIVE
    assert (mod.FROM, active) == (expected, expected == "build")


@pytest.mark.parametrize("built", ["stale", None])
def test_require_refuses_a_missing_or_stale_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, built: str | None
) -> None:
    name = _fake_package(tmp_path, built)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("FAKE_DIGEST", "abc")
    monkeypatch.setenv("FAKE_MODE", "require")
    with pytest.raises(ImportError, match=r"ARBITER_NATIVE=require.*make native"):
        importlib.import_module(name)


@pytest.mark.parametrize(
    ("value", "expected"), [(None, "auto"), ("", "auto"), ("OFF", "off"), (" require ", "require")]
)
def test_mode_reads_arbiter_native(
    monkeypatch: pytest.MonkeyPatch, value: str | None, expected: str
) -> None:
    if value is None:
        monkeypatch.delenv(native.ENV, raising=False)
    else:
        monkeypatch.setenv(native.ENV, value)
    assert native.mode() == expected


def test_an_unknown_mode_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(native.ENV, "fast")
    with pytest.raises(
        ImportError, match=r"ARBITER_NATIVE='fast' is not one of auto, off, require"
    ):
        native.mode()


def test_the_digest_follows_every_byte_and_name(tmp_path: Path) -> None:
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("x = 1\n")
    b.write_text("y = 2\n")
    first = native.digest_of([("m.a", a), ("m.b", b)])
    assert native.digest_of([("m.a", a), ("m.b", b)]) == first
    assert native.digest_of([("m.b", a), ("m.a", b)]) != first
    b.write_text("y = 3\n")
    assert native.digest_of([("m.a", a), ("m.b", b)]) != first


def test_install_replaces_the_folder_whole(tmp_path: Path) -> None:
    built = tmp_path / "built"
    built.mkdir()
    (built / "one.so").write_bytes(b"1")
    folder = tmp_path / "pkg" / native.NATIVE_DIR
    folder.mkdir(parents=True)
    (folder / "old.so").write_bytes(b"0")
    (folder / native.DIGEST_FILE).write_text("before\n")
    native._install([built / "one.so"], folder, "after")
    assert sorted(p.name for p in folder.iterdir()) == [native.DIGEST_FILE, "one.so"]
    assert (folder / native.DIGEST_FILE).read_text() == "after\n"
    assert sorted(p.name for p in folder.parent.iterdir()) == [native.NATIVE_DIR]
    with pytest.raises(RuntimeError, match="produced nothing"):
        native._install([], folder, "again")


def test_every_native_module_has_its_source_and_its_package_activates() -> None:
    for module in native.NATIVE_MODULES:
        assert native._source(module).is_file(), module
    for package in {m.rpartition(".")[0] for m in native.NATIVE_MODULES}:
        init = native._package_folder(package) / "__init__.py"
        assert "_native.activate(__name__, __path__)" in init.read_text(), package


def test_the_digest_covers_what_the_compiled_form_was_specialised_on() -> None:
    names = {name for name, _path in native._digest_inputs()}
    assert set(native.NATIVE_MODULES) <= names
    # Imported by compiled modules but not compiled: their types were read at compile time.
    assert {"arbiter.server.engine.errors", "arbiter.server.engine.validate"} <= names
    assert {"arbiter.v1.checkout_pb2", "arbiter.v1.program_pb2"} <= names


def test_this_run_tests_the_form_it_asked_for() -> None:
    """ARBITER_NATIVE=require (make test): every hot module compiled; off: none; auto: compiled
    exactly when the build matches the sources."""
    forms = {m: native.compiled(m) for m in native.NATIVE_MODULES}
    how = native.mode()
    if how == "auto":
        folders = {native._package_folder(m.rpartition(".")[0]) for m in native.NATIVE_MODULES}
        current = all(
            native._current(f / native.NATIVE_DIR, native.source_digest()) for f in folders
        )
        how = "require" if current else "off"
    assert set(forms.values()) == {how == "require"}, forms


def test_the_other_form_agrees_with_the_reference() -> None:
    """The engine's tests and the property tests on the form this run does not test: the
    interpreted modules under `make test`, the compiled ones (if built) otherwise."""
    compiled_here = native.compiled("arbiter.server.engine.single")
    if not compiled_here and "compiled with mypyc" not in _describe_with("auto"):
        pytest.skip("no current build of the compiled modules: `make native` builds them")
    other = "off" if compiled_here else "require"
    env = dict(os.environ, ARBITER_NATIVE=other, ARBITER_PROPERTY_EXAMPLES="300")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *TESTS_OF_THE_ENGINE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    want = "calculation interpreted" if other == "off" else "calculation compiled with mypyc"
    assert want in done.stdout, done.stdout[:2000]
    assert " passed" in done.stdout


def _describe_with(how: str) -> str:
    env = dict(os.environ, ARBITER_NATIVE=how)
    return subprocess.run(
        [sys.executable, "-m", "arbiter.server.native", "status"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout


def test_the_build_hint_fits_the_installation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert native.from_checkout()  # this suite runs from the project's folder
    assert native.build_hint() == "`make native` compiles it"
    # An installed copy (site-packages/arbiter/server): no Makefile beside it.
    installed = tmp_path / "site-packages" / "arbiter" / "server"
    installed.mkdir(parents=True)
    monkeypatch.setattr(native, "_SERVER", installed)
    assert not native.from_checkout()
    hint = native.build_hint()
    assert "make" not in hint
    assert "pip install 'arbiter-loyalty[native]'" in hint
    assert "python -m arbiter.server.native build" in hint
    if not any(native.compiled(m) for m in native.NATIVE_MODULES):
        assert hint in native.describe()


def test_the_native_extra_names_the_build_tools() -> None:
    import tomllib

    root = Path(__file__).resolve().parents[2]
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extra = {r.split("=")[0].split(">")[0] for r in project["optional-dependencies"]["native"]}
    assert extra == {"mypy", "setuptools"}
