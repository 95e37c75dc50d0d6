"""The build of the compiled calculation (docs/engine.md, "Compiled with Cython").

`pip install .` and `pip install -e .` run this through the build backend (setuptools, with
Cython in `[build-system] requires`): every `server/**/*.pyx` is compiled (found by glob, so a
room's new typed module builds without a line here), and so are the plain typed Python modules
listed in `server/native.py`. An extension lands beside its source (editable) or in the wheel.
"""

from __future__ import annotations

import runpy
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup

ROOT = Path(__file__).resolve().parent
native = runpy.run_path(str(ROOT / "server" / "native.py"))


def include_tree() -> str:
    """A folder laid out as the installed namespace (`arbiter/server` is `server/`), where
    Cython finds a typed module's `.pxd` by its full name (`arbiter.server.engine._select`)
    when it compiles that module or another one that `cimport`s it."""
    tree = ROOT / "build" / "cython-include"
    link = tree / "arbiter" / "server"
    if not link.is_symlink():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(ROOT / "server", target_is_directory=True)
    return str(tree)


def extensions() -> list[Extension]:
    module_name = native["module_name"]
    pyx = sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("server/**/*.pyx"))
    directives = {"language_level": "3", "binding": True}
    typed = cythonize(
        [Extension(module_name(p), [p]) for p in pyx],
        compiler_directives={**directives, "boundscheck": False, "wraparound": False},
        include_path=[include_tree()],
    )
    # Annotations of plain modules are read as Python types only: compiled, such a module
    # behaves as its source does.
    plain = cythonize(
        [Extension(module_name(p), [p]) for p in native["PLAIN_MODULES"]],
        compiler_directives={**directives, "annotation_typing": False},
    )
    return [*typed, *plain]


setup(ext_modules=extensions())
