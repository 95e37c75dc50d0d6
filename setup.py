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


def extensions() -> list[Extension]:
    module_name = native["module_name"]
    pyx = sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("server/**/*.pyx"))
    directives = {"language_level": "3", "binding": True}
    typed = cythonize(
        [Extension(module_name(p), [p]) for p in pyx],
        compiler_directives={**directives, "boundscheck": False, "wraparound": False},
    )
    # Annotations of plain modules are read as Python types only: compiled, such a module
    # behaves as its source does.
    plain = cythonize(
        [Extension(module_name(p), [p]) for p in native["PLAIN_MODULES"]],
        compiler_directives={**directives, "annotation_typing": False},
    )
    return [*typed, *plain]


setup(ext_modules=extensions())
