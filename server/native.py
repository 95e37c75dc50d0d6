"""The calculation's hot modules compiled with mypyc, used only while they match their sources.

The engine is written once, in typed Python. `make native` (run by `make run` and `make test`)
compiles the modules of `NATIVE_MODULES` with mypyc into one group of C extensions, laid out in
a `_native` folder inside each package that has one (`server/engine/_native`,
`server/api/_native`), with a `DIGEST` of the sources they were built from. At import, each of
those packages calls `activate`: when the digest matches the sources beside it, its `_native`
folder goes first on the package's `__path__` and the compiled modules shadow the `.py` files;
otherwise the `.py` files run, unchanged. An edited source therefore never runs stale compiled
code: it runs interpreted until the next `make native`.

`ARBITER_NATIVE` chooses, read once at import:

- `auto` (the default): the compiled modules where they are built and current;
- `off`: always the interpreted modules;
- `require`: the compiled modules, or an ImportError that says to build them (`make test` runs
  the suite so, so that CI tests what `make run` serves).

Both forms compute the same results: the compiled modules are the same source, and the suite's
property tests hold each to the reference evaluator (docs/engine.md, "Compiled with mypyc").

    python -m arbiter.server.native build [--optional] [--force]
    python -m arbiter.server.native status

This module imports only the standard library at its top: the packages it serves import it
before anything else.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.machinery
import importlib.util
import os
import shutil
import sysconfig
import tempfile
import time
from collections.abc import Iterable, MutableSequence
from pathlib import Path

__all__ = [
    "ENV",
    "MODES",
    "NATIVE_MODULES",
    "activate",
    "activate_folder",
    "build",
    "build_hint",
    "compiled",
    "describe",
    "digest_of",
    "from_checkout",
    "main",
    "mode",
    "source_digest",
]

ENV = "ARBITER_NATIVE"
MODES = ("auto", "off", "require")

# One mypyc group: calls between them are C calls. The program validator (run once per apply)
# and everything that does I/O stay interpreted.
NATIVE_MODULES: tuple[str, ...] = (
    "arbiter.server.engine.arbitrate",
    "arbiter.server.engine.benefits",
    "arbiter.server.engine.compile",
    "arbiter.server.engine.evaluate",
    "arbiter.server.engine.money",
    "arbiter.server.engine.render",
    "arbiter.server.engine.segments",
    "arbiter.server.engine.select",
    "arbiter.server.engine.single",
    "arbiter.server.engine.state",
    "arbiter.server.engine.types",
    "arbiter.server.api.translate",
)
# The group's shared library is the module `<GROUP>__mypyc`, inside the engine's package.
GROUP = "arbiter.server.engine.native"
NATIVE_DIR = "_native"
DIGEST_FILE = "DIGEST"

_SERVER = Path(__file__).resolve().parent  # the folder of the arbiter.server package
_PREFIX = "arbiter.server."


def _source(module: str) -> Path:
    return _SERVER.joinpath(*module[len(_PREFIX) :].split(".")).with_suffix(".py")


def _package_folder(package: str) -> Path:
    return _SERVER.joinpath(*package[len(_PREFIX) :].split("."))


def _packages() -> list[str]:
    return sorted({m.rpartition(".")[0] for m in NATIVE_MODULES})


def digest_of(files: Iterable[tuple[str, Path]]) -> str:
    """What a build is valid for: this interpreter's extension ABI and every (name, source)."""
    h = hashlib.sha256()
    h.update(str(sysconfig.get_config_var("EXT_SUFFIX")).encode())
    for name, path in files:
        data = path.read_bytes()
        h.update(f"\0{name}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


_digest: str | None = None


def _v1_folder() -> Path | None:
    """The folder of the generated stubs (arbiter.v1), found without importing them."""
    spec = importlib.util.find_spec("arbiter.v1")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _digest_inputs() -> list[tuple[str, Path]]:
    """The compiled sources, and what their compiled form was specialised on: the engine's
    other modules and the contract's stubs, whose types mypyc reads (translate imports nothing
    else of the project)."""
    files = {m: _source(m) for m in NATIVE_MODULES}
    engine = "arbiter.server.engine"
    for path in sorted(_package_folder(engine).glob("*.py")):
        files.setdefault(f"{engine}.{path.stem}", path)
    v1 = _v1_folder()
    for path in sorted(v1.glob("*.pyi")) if v1 else []:
        files.setdefault(f"arbiter.v1.{path.stem}", path)
    return sorted(files.items())


def source_digest() -> str:
    """The digest of `_digest_inputs` as they are now (computed once per process)."""
    global _digest
    if _digest is None:
        _digest = digest_of(_digest_inputs())
    return _digest


def mode() -> str:
    """`ARBITER_NATIVE`, checked: a value outside `MODES` is refused with its name."""
    value = os.environ.get(ENV, "auto").strip().lower() or "auto"
    if value not in MODES:
        raise ImportError(
            f"{ENV}={os.environ.get(ENV)!r} is not one of {', '.join(MODES)}", name=__name__
        )
    return value


def _current(folder: Path, digest: str) -> bool:
    try:
        return (folder / DIGEST_FILE).read_text().strip() == digest
    except OSError:
        return False


def activate_folder(
    path: MutableSequence[str], folder: Path, digest: str, how: str, package: str
) -> bool:
    """Put `folder` first on a package's `path` if its build is `digest`; `how` is a mode."""
    if how == "off":
        return False
    if _current(folder, digest):
        if str(folder) not in path:
            path.insert(0, str(folder))
        return True
    if how == "require":
        raise ImportError(
            f"{ENV}=require, but the compiled modules of {package} in {folder} are missing or "
            "were built from other sources: run `make native` "
            "(python -m arbiter.server.native build)",
            name=package,
        )
    return False


def activate(package: str, path: MutableSequence[str]) -> bool:
    """Called by a package of `NATIVE_MODULES` before it imports its modules."""
    folder = _package_folder(package) / NATIVE_DIR
    how = mode()
    if how == "off":
        return False
    return activate_folder(path, folder, source_digest(), how, package)


def compiled(module: str) -> bool:
    """Whether `module` (imported here if it is not yet) runs compiled."""
    file = getattr(importlib.import_module(module), "__file__", None) or ""
    return file.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def from_checkout() -> bool:
    """Whether this package runs from the project's source folder (which has the Makefile),
    rather than from an installed copy."""
    root = _SERVER.parent
    return (root / "Makefile").is_file() and (root / "pyproject.toml").is_file()


def build_hint() -> str:
    """How this installation compiles the calculation: `make native` in a checkout; after a
    plain `pip install`, the build command with the `native` extra's tools."""
    if from_checkout():
        return "`make native` compiles it"
    return (
        "to compile it: pip install 'arbiter-loyalty[native]', then "
        "python -m arbiter.server.native build (needs a C compiler and Python's headers)"
    )


def describe() -> str:
    """One line for the server's log: which form of the calculation runs."""
    done = [m for m in NATIVE_MODULES if compiled(m)]
    if len(done) == len(NATIVE_MODULES):
        return f"calculation compiled with mypyc ({len(done)} modules)"
    if not done:
        return f"calculation interpreted ({ENV}={mode()}; {build_hint()})"
    return f"calculation partly compiled: {', '.join(done)}"


# --- the build --------------------------------------------------------------------------------


def _mirror(root: Path) -> list[str]:
    """The sources laid out as the installed namespace (mypyc names modules by their folders)."""
    arbiter = root / "arbiter"
    v1 = _v1_folder()
    if v1 is None:
        raise RuntimeError("the arbiter.v1 package (generated stubs) is not importable")
    arbiter.mkdir(parents=True)
    shutil.copy2(v1.parent / "__init__.py", arbiter / "__init__.py")
    skip = shutil.ignore_patterns("__pycache__", NATIVE_DIR, f"{NATIVE_DIR}.*", "*.so")
    shutil.copytree(v1, arbiter / "v1", ignore=skip)
    shutil.copytree(_SERVER, arbiter / "server", ignore=skip)
    return [str(root.joinpath(*m.split(".")).with_suffix(".py")) for m in NATIVE_MODULES]


def build(*, force: bool = False, quiet: bool = False) -> bool:
    """Compile `NATIVE_MODULES` unless the current build already matches; True if it built."""
    digest = source_digest()
    folders = {p: _package_folder(p) / NATIVE_DIR for p in _packages()}
    if not force and all(_current(f, digest) for f in folders.values()):
        if not quiet:
            print(f"native: up to date ({digest[:12]})")
        return False
    # Imported here: mypyc and setuptools are build tools, not needed to serve.
    from mypyc.build import mypycify
    from setuptools import Distribution  # type: ignore[import-untyped]

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="arbiter-native-") as tmp:
        work = Path(tmp)
        paths = _mirror(work / "src")
        cwd = os.getcwd()
        os.chdir(work)  # mypyc writes its C files under the working folder
        try:
            # Only the compiled modules must type-check; what they import is read for its
            # types (grpc and asyncpg ship none).
            options = ["--ignore-missing-imports", "--follow-imports=silent"]
            extensions = mypycify(
                [*options, *paths],
                opt_level="3",
                group_name=GROUP,
                target_dir=str(work / "c"),
                verbose=False,
            )
            dist = Distribution({"name": "arbiter-native", "ext_modules": extensions})
            cmd = dist.get_command_obj("build_ext")
            cmd.build_lib = str(work / "lib")
            cmd.build_temp = str(work / "tmp")
            cmd.parallel = os.cpu_count() or 1
            cmd.ensure_finalized()
            cmd.run()
        finally:
            os.chdir(cwd)
        for package, folder in folders.items():
            built = work / "lib" / Path(*package.split("."))
            _install(sorted(built.glob("*.so")) + sorted(built.glob("*.pyd")), folder, digest)
    if not quiet:
        print(
            f"native: compiled {len(NATIVE_MODULES)} modules in {time.monotonic() - started:.0f} s"
        )
    return True


def _install(files: list[Path], folder: Path, digest: str) -> None:
    """`files` become `folder`'s content, the digest written last: a half-copied folder is
    never current, and the swap leaves at most a moment with no folder (interpreted)."""
    if not files:
        raise RuntimeError(f"the build produced nothing for {folder}")
    fresh = folder.with_name(f"{NATIVE_DIR}.new-{os.getpid()}")
    old = folder.with_name(f"{NATIVE_DIR}.old-{os.getpid()}")
    shutil.rmtree(fresh, ignore_errors=True)
    fresh.mkdir()
    for f in files:
        shutil.copy2(f, fresh / f.name)
    (fresh / DIGEST_FILE).write_text(digest + "\n")
    if folder.exists():
        folder.rename(old)
    fresh.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m arbiter.server.native", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="compile the hot modules unless current")
    b.add_argument("--force", action="store_true", help="compile even if current")
    b.add_argument(
        "--optional",
        action="store_true",
        help="if compiling fails (no C compiler), say so and exit 0: the server runs interpreted",
    )
    sub.add_parser("status", help="which form of the calculation this interpreter would run")
    args = parser.parse_args(argv)
    if args.command == "status":
        print(describe())
        return 0
    try:
        build(force=args.force)
    except Exception as exc:  # any failure of the toolchain
        if not args.optional:
            raise
        print(f"native: not compiled ({type(exc).__name__}: {exc}); serving interpreted")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
