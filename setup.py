"""The build's compiled part: every server/**/*.pyx, cythonized (the rest is in pyproject.toml)."""

from glob import glob

from Cython.Build import cythonize
from setuptools import Extension, setup


def _extension(path: str) -> Extension:
    # server/ is installed as arbiter.server (pyproject.toml's package-dir).
    return Extension("arbiter." + path.removesuffix(".pyx").replace("/", "."), [path])


setup(
    ext_modules=cythonize(
        [_extension(path) for path in sorted(glob("server/**/*.pyx", recursive=True))],
        compiler_directives={"language_level": "3"},
    )
)
