"""Which modules of the calculation are compiled C extensions, and whether this process runs them.

The build itself is the packaging's: `pip install .` or `pip install -e .` runs `setup.py`
through the build backend, which compiles with Cython every `server/**/*.pyx` (the typed core)
and the plain typed Python modules of `PLAIN_MODULES` (docs/engine.md, "Compiled with Cython").
An extension sits beside its source and is imported before it. `make native` rebuilds, in place,
only what changed since the last build (`python setup.py build_ext --inplace`); the suite fails
(`tests/app/test_native.py`) when an extension is older than its source.

This module imports only the standard library: `setup.py` reads `PLAIN_MODULES` from it by path,
before the package is installed.
"""

from __future__ import annotations

import importlib
import importlib.machinery
from pathlib import Path

__all__ = ["PLAIN_MODULES", "build_hint", "compiled", "compiled_modules", "describe"]

# Plain typed Python compiled as it is (annotations read as Python types only, so the compiled
# module behaves as its source): the rest of the calculation's path around the typed core.
PLAIN_MODULES: tuple[str, ...] = (
    "server/engine/compile.py",
    "server/engine/evaluate.py",
    "server/engine/money.py",
    "server/engine/render.py",
    "server/engine/segments.py",
    "server/engine/select.py",
    "server/engine/single.py",
    "server/engine/types.py",
)

_ROOT = Path(__file__).resolve().parent.parent  # the project's folder (server/ is arbiter.server)


def module_name(source: str) -> str:
    """`server/engine/money.py` -> `arbiter.server.engine.money`."""
    return "arbiter." + ".".join(Path(source).with_suffix("").parts)


def compiled_modules() -> list[str]:
    """Every module the build compiles: the `.pyx` sources found beside this file, then
    `PLAIN_MODULES`."""
    pyx = sorted(str(p.relative_to(_ROOT)) for p in (_ROOT / "server").glob("**/*.pyx"))
    return [module_name(p) for p in (*pyx, *PLAIN_MODULES)]


def compiled(module: str) -> bool:
    """Whether `module` (imported here if it is not yet) runs as a C extension."""
    file = getattr(importlib.import_module(module), "__file__", None) or ""
    return file.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def from_checkout() -> bool:
    """Whether this package runs from the project's source folder (which has the Makefile),
    rather than from an installed copy."""
    return (_ROOT / "Makefile").is_file() and (_ROOT / "pyproject.toml").is_file()


def build_hint() -> str:
    """How this installation gets its extensions: `make native` in a checkout; an installed copy
    was compiled by `pip install` itself, so a missing one means it was installed without a C
    compiler."""
    if from_checkout():
        return "`make native` builds it"
    return (
        "reinstall with a C compiler and Python's headers present:"
        " pip install --force-reinstall --no-deps arbiter-loyalty"
    )


def describe() -> str:
    """One line for the server's log: which form of the calculation runs."""
    names = compiled_modules()
    done = [m for m in names if compiled(m)]
    if len(done) == len(names):
        return f"calculation compiled with Cython ({len(done)} modules)"
    missing = ", ".join(m for m in names if m not in done)
    return f"calculation partly interpreted (not compiled: {missing}); {build_hint()}"
