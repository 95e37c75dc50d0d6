"""The `arbiter` command: `serve`, `calculate` and `health`."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

import grpc
from google.protobuf import json_format
from google.rpc import error_details_pb2, status_pb2

import arbiter
from arbiter.client._client import DEFAULT_TARGET, ArbiterClient
from arbiter.server.app.settings import SettingsError, add_serve_arguments, settings_from_args
from arbiter.v1 import checkout_pb2

__all__ = ["main"]

# Exit codes: 0 ok; 1 the server said no (or is not serving); 2 bad usage or settings.
_EXIT_OK = 0
_EXIT_FAILED = 1
_EXIT_USAGE = 2

_DETAILS_KEY = "grpc-status-details-bin"
_DISTRIBUTION = "arbiter-loyalty"


def _version() -> str:
    """The installed distribution's version (the package's own when run from a checkout)."""
    try:
        return metadata.version(_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return arbiter.__version__


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="arbiter", description="Arbiter: a loyalty and promotion calculation server"
    )
    parser.add_argument("--version", action="version", version=f"arbiter {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the gRPC server")
    add_serve_arguments(serve)
    serve.add_argument(
        "--log-level",
        default="INFO",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="default INFO",
    )

    calculate = commands.add_parser(
        "calculate", help="send a CalculateOrderRequest (protobuf JSON) and print the response"
    )
    calculate.add_argument("--target", default=DEFAULT_TARGET, metavar="HOST:PORT")
    calculate.add_argument("--program", help="the program id (overrides the file's `program`)")
    calculate.add_argument("file", type=Path, metavar="FILE.json", help="'-' reads stdin")

    health = commands.add_parser("health", help="ask the standard health service")
    health.add_argument("--target", default=DEFAULT_TARGET, metavar="HOST:PORT")
    health.add_argument("--service", default="", help="a service name; default: the server")
    return parser


def _serve(args: argparse.Namespace) -> int:
    # Imported here so that `arbiter calculate` / `health` do not load the server (numpy, engine).
    from arbiter.server.app.embedded_pg import EmbeddedPostgresError
    from arbiter.server.app.logs import configure_logging
    from arbiter.server.app.runtime import run, tune_allocator
    from arbiter.server.app.wiring import App, ProgramFileError, issue_text
    from arbiter.server.engine import ConfigError
    from arbiter.server.ledger import StorageUnavailable

    tune_allocator()
    try:
        settings = settings_from_args(args)
        settings.check()
        configure_logging(settings.log_format, args.log_level)
        run(App(settings).serve_until_signal(), settings.event_loop)
    except SettingsError as exc:
        print(f"arbiter serve: {exc}", file=sys.stderr)
        return _EXIT_USAGE
    except ProgramFileError as exc:
        texts = [issue_text(issue, exc.path) for issue in exc.issues]
        if len(texts) == 1:
            print(f"arbiter serve: {exc.path}: {texts[0]}", file=sys.stderr)
        else:
            print(f"arbiter serve: {exc.path}: {len(texts)} issues:", file=sys.stderr)
            for text in texts:
                print(f"  {text}", file=sys.stderr)
        return _EXIT_FAILED
    except ConfigError as exc:
        print("arbiter serve: a program cannot be applied:", file=sys.stderr)
        for issue in exc.issues:
            print(f"  {issue_text(issue)}", file=sys.stderr)
        return _EXIT_FAILED
    except (OSError, EmbeddedPostgresError, StorageUnavailable) as exc:
        print(f"arbiter serve: {exc}", file=sys.stderr)
        return _EXIT_FAILED
    return _EXIT_OK


def _read_request(args: argparse.Namespace) -> checkout_pb2.CalculateOrderRequest:
    text = sys.stdin.read() if str(args.file) == "-" else args.file.read_text(encoding="utf-8")
    request = json_format.Parse(text, checkout_pb2.CalculateOrderRequest())
    if args.program:
        request.program = args.program
    return request


async def _calculate(args: argparse.Namespace) -> int:
    try:
        request = _read_request(args)
    except (OSError, json_format.ParseError) as exc:
        print(f"arbiter calculate: {args.file}: {exc}", file=sys.stderr)
        return _EXIT_USAGE
    # ARBITER_API_KEY: the key to call a server with auth on (environment only, like the admin
    # key: a flag would show in `ps`).
    async with ArbiterClient(args.target, api_key=os.environ.get("ARBITER_API_KEY")) as client:
        try:
            response = await client.calculate(request)
        except grpc.aio.AioRpcError as exc:
            _print_rpc_error("calculate", exc)
            return _EXIT_FAILED
    _write_utf8(
        json_format.MessageToJson(
            response,
            preserving_proto_field_name=True,
            always_print_fields_with_no_presence=True,
            ensure_ascii=False,
        )
        + "\n"
    )
    return _EXIT_OK


def _write_utf8(text: str) -> None:
    """Write `text` to stdout as UTF-8 (texts hold emoji and Cyrillic), whatever the locale."""
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:  # a replaced stdout (a test's capture): it takes text
        sys.stdout.write(text)
        return
    sys.stdout.flush()
    buffer.write(text.encode("utf-8"))
    buffer.flush()


async def _health(args: argparse.Namespace) -> int:
    async with ArbiterClient(args.target) as client:
        try:
            status = await client.health_status(args.service)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND and not exc.details():
                # A server that does not say more (its health service is the standard one).
                print(
                    f"arbiter health: NOT_FOUND: service {args.service!r} is not known to the "
                    "server",
                    file=sys.stderr,
                )
            else:
                _print_rpc_error("health", exc)
            return _EXIT_FAILED
    print(status)
    return _EXIT_OK if status == "SERVING" else _EXIT_FAILED


def _print_rpc_error(command: str, exc: grpc.aio.AioRpcError) -> None:
    print(f"arbiter {command}: {exc.code().name}: {exc.details()}", file=sys.stderr)
    # The BadRequest field violations, when the server sent them.
    for key, value in exc.trailing_metadata() or ():
        if key != _DETAILS_KEY:
            continue
        status = status_pb2.Status.FromString(value)
        for detail in status.details:
            bad_request = error_details_pb2.BadRequest()
            if detail.Unpack(bad_request):
                for violation in bad_request.field_violations:
                    print(f"  {violation.field}: {violation.description}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `arbiter` command; returns the exit code."""
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "calculate":
        return asyncio.run(_calculate(args))
    return asyncio.run(_health(args))


if __name__ == "__main__":
    sys.exit(main())
