"""The compiled calculation (setup.py, server/native.py): built by the install, and current.

Every module the build compiles must run as a C extension in this suite, and no extension may
be older than its source (an edited source with a stale extension beside it would test, and
serve, the old code): `make native` rebuilds what changed.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from arbiter.server import native

ROOT = Path(__file__).resolve().parents[2]


def _source(module: str) -> Path:
    parts = module.split(".")[1:]  # arbiter.server.engine.x -> server/engine/x
    stem = ROOT.joinpath(*parts)
    pyx = stem.with_suffix(".pyx")
    return pyx if pyx.exists() else stem.with_suffix(".py")


def test_the_build_lists_the_typed_core_and_the_plain_modules() -> None:
    names = native.compiled_modules()
    assert "arbiter.server.engine.core" in names
    assert "arbiter.server.engine.single" in names
    assert len(names) == len(set(names))


@pytest.mark.parametrize("module", native.compiled_modules())
def test_every_compiled_module_runs_compiled_and_current(module: str) -> None:
    assert native.compiled(module), f"{module} is not compiled: run `make native`"
    built = Path(str(importlib.import_module(module).__file__))
    source = _source(module)
    assert built.stat().st_mtime >= source.stat().st_mtime, (
        f"{built.name} is older than {source.name}: run `make native`"
    )
    # a typed module's C interface (its .pxd, which other typed modules cimport) counts too
    pxd = source.with_suffix(".pxd")
    if pxd.exists():
        assert built.stat().st_mtime >= pxd.stat().st_mtime, (
            f"{built.name} is older than {pxd.name}: run `make native`"
        )


def test_describe_names_the_form() -> None:
    assert native.describe().startswith("calculation compiled with Cython")
