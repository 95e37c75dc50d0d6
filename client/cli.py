"""The `arbiter` command: `serve` runs the server; every other command is a client of it.

The client commands speak only the contract (arbiter.v1 over grpc): importing this module loads
no server module, and `serve` imports the server only when it runs (tests/client pin both).
Exit codes: 0 done; 1 the server said no, is not serving, or cannot be reached; 2 bad usage or
a bad input file (nothing was sent). Every client command takes `--target HOST:PORT`, `--key`
(else ARBITER_API_KEY) and `--json`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2

import arbiter
from arbiter.client import _commands as commands
from arbiter.client._client import DEFAULT_TARGET, ArbiterClient
from arbiter.client._files import FileProblem, read_order
from arbiter.client._output import Output

__all__ = ["main"]

# Exit codes: 0 ok; 1 the server said no (or is not serving); 2 bad usage or settings.
_EXIT_OK = 0
_EXIT_FAILED = 1
_EXIT_USAGE = 2
_EXIT_INTERRUPTED = 130

_DETAILS_KEY = "grpc-status-details-bin"
_DISTRIBUTION = "arbiter-loyalty"
_API_KEY_VARIABLE = "ARBITER_API_KEY"


def _version() -> str:
    """The installed distribution's version (the package's own when run from a checkout)."""
    try:
        return metadata.version(_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return arbiter.__version__


def _client_options() -> argparse.ArgumentParser:
    """--target, --key and --json: the options of every client command."""
    options = argparse.ArgumentParser(add_help=False)
    group = options.add_argument_group("connection and output")
    group.add_argument(
        "--target", default=DEFAULT_TARGET, metavar="HOST:PORT", help=f"default {DEFAULT_TARGET}"
    )
    group.add_argument(
        "--key",
        metavar="KEY",
        help=f"the API key to call with (default: ${_API_KEY_VARIABLE}; a flag shows in `ps`)",
    )
    group.add_argument(
        "--json", action="store_true", help="print the server's answers as protobuf JSON"
    )
    return options


def _program_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--program", help="the program id (default: the server's only program)")


def _subcommands(parser: argparse.ArgumentParser, title: str) -> Any:
    return parser.add_subparsers(dest=title, required=True, metavar="COMMAND")


def _parser(serving: bool) -> argparse.ArgumentParser:
    """The whole command line; `serve`'s options (the server's settings) only when `serving`,
    so that a client command does not import the server."""
    parser = argparse.ArgumentParser(
        prog="arbiter", description="Arbiter: a loyalty and promotion calculation server"
    )
    parser.add_argument("--version", action="version", version=f"arbiter {_version()}")
    top = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    client = _client_options()

    serve = top.add_parser("serve", help="run the gRPC server")
    if serving:
        from arbiter.server.app.settings import add_serve_arguments

        add_serve_arguments(serve)
        serve.add_argument(
            "--log-level",
            default="INFO",
            type=str.upper,
            choices=["DEBUG", "INFO", "WARNING", "ERROR"],
            help="default INFO",
        )

    calculate = top.add_parser(
        "calculate",
        parents=[client],
        help="send a CalculateOrderRequest (protobuf JSON) and print the response (JSON)",
    )
    calculate.add_argument("--program", help="the program id (overrides the file's `program`)")
    calculate.add_argument("file", type=Path, metavar="FILE.json", help="'-' reads stdin")
    calculate.set_defaults(run=_calculate)

    health = top.add_parser("health", parents=[client], help="ask the standard health service")
    health.add_argument("--service", default="", help="a service name; default: the server")
    health.set_defaults(run=_health)

    _program_commands(top, client)

    test = top.add_parser(
        "test",
        parents=[client],
        help="try an order in test mode: the result as tables and the decision trace as a tree",
    )
    test.add_argument(
        "file",
        type=Path,
        metavar="ORDER.json",
        help="a CalculateOrderRequest (protobuf JSON); '-' reads stdin",
    )
    test.add_argument("--draft", action="store_true", help="on the draft (default: applied)")
    test.add_argument("--member", metavar="ID", help="as this enrolled member (overrides the file)")
    _program_option(test)
    test.set_defaults(run=commands.test_order)

    confirm = top.add_parser(
        "confirm",
        parents=[client],
        help="confirm an order (ConfirmOrder): the points are redeemed and accrued",
    )
    confirm.add_argument(
        "file", type=Path, metavar="ORDER.json", help="the form `calculate` reads; '-' is stdin"
    )
    confirm.add_argument("--order-id", metavar="ID", help="overrides the file's order.id")
    confirm.add_argument(
        "--member",
        metavar="ID",
        help="as this enrolled member ('' for a guest); overrides the file",
    )
    _program_option(confirm)
    confirm.set_defaults(run=commands.confirm_order)

    _member_commands(top, client)

    trig = top.add_parser(
        "trigger", parents=[client], help="apply a trigger promotion to a member (ApplyTrigger)"
    )
    trig.add_argument("trigger_promotion", metavar="TRIGGER_PROMOTION")
    trig.add_argument("member_id", metavar="MEMBER")
    trig.add_argument(
        "points", type=int, metavar="POINTS", help="the rule's fixed value or in its range"
    )
    trig.add_argument("--point-type", required=True)
    trig.add_argument(
        "--operation", choices=sorted(commands.OPERATIONS), default="accrue", help="default accrue"
    )
    trig.add_argument("--external-id", help="makes a retry safe: the same id posts once")
    trig.add_argument("--comment")
    _program_option(trig)
    trig.set_defaults(run=commands.trigger)

    trans = top.add_parser(
        "transaction",
        parents=[client],
        help="accrue or deduct points by hand (CreateTransaction)",
    )
    trans.add_argument("operation", choices=sorted(commands.OPERATIONS))
    trans.add_argument("member_id", metavar="MEMBER")
    trans.add_argument("points", type=int, metavar="POINTS")
    trans.add_argument("--point-type", required=True)
    trans.add_argument("--external-id", help="makes a retry safe: the same id posts once")
    trans.add_argument("--comment")
    _program_option(trans)
    trans.set_defaults(run=commands.transaction)

    keys = top.add_parser("keys", help="API keys (CreateApiKey, RevokeApiKey)")
    key_commands = _subcommands(keys, "keys_command")
    create = key_commands.add_parser("create", parents=[client], help="make a key; prints it")
    create.add_argument("role", choices=["pos", "app", "admin"])
    create.add_argument("name", help="who or what holds it (shown in the audit journal)")
    create.set_defaults(run=commands.keys_create)
    revoke = key_commands.add_parser("revoke", parents=[client], help="revoke a key")
    revoke.add_argument("api_key", metavar="KEY")
    revoke.set_defaults(run=commands.keys_revoke)

    _report_commands(top, client)
    return parser


def _program_commands(top: Any, client: argparse.ArgumentParser) -> None:
    program = top.add_parser("program", help="programs: drafts, versions, the arbitration tree")
    sub = _subcommands(program, "program_command")

    listing = sub.add_parser("list", parents=[client], help="every program and its version")
    listing.set_defaults(run=commands.program_list)

    def with_id(name: str, help_text: str, run: Any, draft: bool = False) -> Any:
        command = sub.add_parser(name, parents=[client], help=help_text)
        command.add_argument("program_id", metavar="PROGRAM")
        if draft:
            command.add_argument(
                "--draft", action="store_true", help="the draft (default: the applied version)"
            )
        command.set_defaults(run=run)
        return command

    with_id("get", "a program's version, draft state and objects", commands.program_get, True)
    export = with_id("export", "a program as a program file (JSON)", commands.program_export, True)
    export.add_argument("-o", "--output", type=Path, metavar="FILE", help="default: stdout")
    imported = sub.add_parser(
        "import", parents=[client], help="make a program file the draft of its program"
    )
    imported.add_argument("file", type=Path, metavar="PROGRAM.json", help="'-' reads stdin")
    imported.set_defaults(run=commands.program_import)
    with_id("diff", "what the draft changes against the applied version", commands.program_diff)
    with_id("apply", "publish the draft as the next version", commands.program_apply)
    with_id("revert", "make the draft the applied version again", commands.program_revert)
    with_id(
        "tree",
        "the arbitration tree: modes, limits, each promotion's status",
        commands.program_tree,
        True,
    )


def _member_commands(top: Any, client: argparse.ArgumentParser) -> None:
    member = top.add_parser("member", help="members, balances and their points")
    sub = _subcommands(member, "member_command")

    def command(name: str, help_text: str, run: Any, member_id: bool = True) -> Any:
        parser = sub.add_parser(name, parents=[client], help=help_text)
        if member_id:
            parser.add_argument("member_id", metavar="MEMBER")
        _program_option(parser)
        parser.set_defaults(run=run)
        return parser

    enroll = command(
        "enroll",
        "enroll a member, or every row of a CSV file",
        commands.member_enroll,
        member_id=False,
    )
    enroll.add_argument("member_id", metavar="MEMBER", nargs="?")
    enroll.add_argument("--registered-at", metavar="TIME", help="ISO 8601 with an offset")
    enroll.add_argument(
        "--file",
        type=Path,
        metavar="MEMBERS.csv",
        help="a header row with member_id (and registered_at), one member a row; streamed "
        "through EnrollMembers with a progress bar",
    )
    get = command("get", "a member's balances and tiers", commands.member_get)
    get.add_argument(
        "--within-days", type=int, default=0, help="what counts as expiring soon (default 30)"
    )
    transactions = command(
        "transactions", "a member's transactions, oldest first", commands.member_transactions
    )
    transactions.add_argument("--point-type")
    transactions.add_argument("--limit", type=int, default=0, help="at most this many")
    expiring = command("expiring", "a member's points that expire soon", commands.member_expiring)
    expiring.add_argument("--point-type")
    expiring.add_argument("--within-days", type=int, default=0, help="default 30")
    command("remove", "remove a member and its points", commands.member_remove)
    export = command(
        "export",
        "every member as CSV (or JSON lines with --json)",
        commands.member_export,
        member_id=False,
    )
    export.add_argument("-o", "--output", type=Path, metavar="FILE", help="default: stdout")


def _window_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--from",
        dest="since",
        metavar="WHEN",
        help="a date (midnight in the program's time zone) or an ISO 8601 time",
    )
    parser.add_argument(
        "--to",
        dest="until",
        metavar="WHEN",
        help="a date (that day included) or an ISO 8601 time (excluded)",
    )


def _report_commands(top: Any, client: argparse.ArgumentParser) -> None:
    """`report` and `backtest` (client/_report.py)."""
    from arbiter.client import _report

    report = top.add_parser(
        "report", parents=[client], help="a program's figures: members, orders, points, promotions"
    )
    _window_options(report)
    report.add_argument(
        "--chart",
        type=Path,
        metavar="REPORT.png",
        help="also draw orders and discount, points accrued and redeemed per day, and the top "
        "promotions by cost, as a PNG",
    )
    _program_option(report)
    report.set_defaults(run=_report.report)

    backtest = top.add_parser(
        "backtest",
        parents=[client],
        help="recalculate past confirmed orders under the draft; writes nothing",
    )
    _window_options(backtest)
    backtest.add_argument(
        "--limit", type=int, default=0, help="at most this many orders (default: the server's)"
    )
    _program_option(backtest)
    backtest.set_defaults(run=_report.backtest)


def _serve(args: argparse.Namespace) -> int:
    # Imported here: a client command loads no server module (numpy, engine, settings).
    from arbiter.server.app.embedded_pg import EmbeddedPostgresError
    from arbiter.server.app.logs import configure_logging
    from arbiter.server.app.runtime import run, tune_allocator
    from arbiter.server.app.settings import SettingsError, settings_from_args
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


async def _calculate(ctx: commands.Context, args: argparse.Namespace) -> int:
    request = read_order(args.file)
    if args.program:
        request.program = args.program
    response = await ctx.client.calculate(request)
    # Always JSON: the answer a checkout gets, as its JSON.
    ctx.out.message(response)
    return _EXIT_OK


async def _health(ctx: commands.Context, args: argparse.Namespace) -> int:
    try:
        status = await ctx.client.health_status(args.service)
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND and not exc.details():
            # A server that does not say more (its health service is the standard one).
            _error(
                args,
                f"NOT_FOUND: service {args.service!r} is not known to the server",
            )
            return _EXIT_FAILED
        raise
    if args.json:
        ctx.out.write(f'{{"status": "{status}"}}\n')
    else:
        ctx.out.write(status + "\n")
    return _EXIT_OK if status == "SERVING" else _EXIT_FAILED


def _command_name(args: argparse.Namespace) -> str:
    parts = [args.command]
    for attribute in ("program_command", "member_command", "keys_command"):
        value = getattr(args, attribute, None)
        if value:
            parts.append(value)
    return " ".join(parts)


def _error(args: argparse.Namespace, text: str) -> None:
    print(f"arbiter {_command_name(args)}: {text}", file=sys.stderr)


def _print_rpc_error(args: argparse.Namespace, exc: grpc.aio.AioRpcError) -> None:
    code = exc.code()
    if code == grpc.StatusCode.UNAVAILABLE:
        _error(args, f"UNAVAILABLE: cannot reach the server at {args.target} ({exc.details()})")
        return
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        _error(args, f"DEADLINE_EXCEEDED: the server at {args.target} did not answer in time")
        return
    _error(args, f"{code.name}: {exc.details()}")
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


async def _run_client(args: argparse.Namespace) -> int:
    key = args.key or os.environ.get(_API_KEY_VARIABLE) or None
    out = Output(json_mode=args.json)
    async with ArbiterClient(args.target, api_key=key) as client:
        ctx = commands.Context(client=client, out=out)
        try:
            code: int = await args.run(ctx, args)
            return code
        except grpc.aio.AioRpcError as exc:
            _print_rpc_error(args, exc)
            return _EXIT_FAILED
        except (FileProblem, commands.UsageError) as exc:
            _error(args, str(exc))
            return _EXIT_USAGE


def _serving(argv: Sequence[str]) -> bool:
    """Whether the command is `serve` (its first word that is not an option)."""
    for word in argv:
        if not word.startswith("-"):
            return word == "serve"
    return False


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `arbiter` command; returns the exit code."""
    words = list(sys.argv[1:] if argv is None else argv)
    args = _parser(_serving(words)).parse_args(words)
    if args.command == "serve":
        return _serve(args)
    try:
        return asyncio.run(_run_client(args))
    except KeyboardInterrupt:
        _error(args, "interrupted")
        return _EXIT_INTERRUPTED
    except BrokenPipeError:
        # A reader that stopped early (`| head`): not an error of the command.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return _EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
