"""Settings of `arbiter serve`: flags first, then ARBITER_* variables, then defaults."""

from __future__ import annotations

import argparse
import ipaddress
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from arbiter.server.app import embedded_pg
from arbiter.server.app.runtime import EVENT_LOOPS, event_loop_factory

__all__ = [
    "DEFAULT_JOBS_INTERVAL_S",
    "DEFAULT_LISTEN",
    "LOG_FORMATS",
    "Settings",
    "SettingsError",
    "add_serve_arguments",
    "default_data_dir",
    "is_loopback",
    "settings_from_args",
    "split_listen",
]

DEFAULT_LISTEN: Final = "127.0.0.1:50051"
LOG_FORMATS: Final = ("text", "json")
# A request (an order of at most 1000 lines with their custom fields) fits well under 4 MiB;
# one above is INVALID_ARGUMENT naming its largest field (server/api/calls.py). The transport
# reads up to 4 times as much, so that the error can say which field; beyond, gRPC refuses the
# message unread (RESOURCE_EXHAUSTED). A response (rows per benefit and line) may be larger, so
# sending is allowed more.
DEFAULT_MAX_REQUEST_BYTES: Final = 4 * 1024 * 1024
DEFAULT_MAX_RECEIVE_MESSAGE_BYTES: Final = 4 * DEFAULT_MAX_REQUEST_BYTES
DEFAULT_MAX_SEND_MESSAGE_BYTES: Final = 16 * 1024 * 1024
# Calls being served beyond this get RESOURCE_EXHAUSTED at once (server/api/admission.py).
DEFAULT_MAX_CONCURRENT_RPCS: Final = 10_000
# Calls received but not yet picked up that gRPC's core may queue; it drops calls beyond this.
DEFAULT_MAX_PENDING_RPCS: Final = 10_000
DEFAULT_SHUTDOWN_GRACE_S: Final = 10.0
# How often the periodic jobs (expiry, tier periods, outbox relay) run.
DEFAULT_JOBS_INTERVAL_S: Final = 60.0


class SettingsError(ValueError):
    """A setting that cannot be served with; the message says which and what to do."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything `serve` needs to know before it starts."""

    listen: str = DEFAULT_LISTEN
    programs: tuple[Path, ...] = ()
    postgres_url: str | None = None
    postgres_bin: Path | None = None
    # True: with no postgres_url, start the embedded cluster in data_dir (what `serve` does).
    # False with no postgres_url: no storage at all, quotes only (tests of the calculation).
    embedded_postgres: bool = False
    redis_url: str | None = None
    data_dir: Path | None = None
    # Never printed: repr would put it in logs.
    admin_key: str | None = field(default=None, repr=False)
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    max_receive_message_bytes: int = DEFAULT_MAX_RECEIVE_MESSAGE_BYTES
    max_send_message_bytes: int = DEFAULT_MAX_SEND_MESSAGE_BYTES
    max_concurrent_rpcs: int = DEFAULT_MAX_CONCURRENT_RPCS
    max_pending_rpcs: int = DEFAULT_MAX_PENDING_RPCS
    shutdown_grace_s: float = DEFAULT_SHUTDOWN_GRACE_S
    # 0 turns the periodic jobs off (tests run them by hand).
    jobs_interval_s: float = DEFAULT_JOBS_INTERVAL_S
    # Replicas (docs/replicas.md): how often the applied versions are compared with PostgreSQL,
    # and how often the outbox is relayed to Redis (with a Redis); 0 turns either off.
    config_poll_s: float = 5.0
    relay_interval_s: float = 0.2
    # One of runtime.EVENT_LOOPS: `auto` is uvloop when installed.
    event_loop: str = "auto"
    # One of LOG_FORMATS.
    log_format: str = "text"
    # HOST:PORT of the Prometheus endpoint; None: no metrics.
    metrics_listen: str | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None

    def check(self) -> None:
        """Refuse what must not be served: raises SettingsError saying what to fix.

        docs/contract.md, Running it: serving a non-loopback address without an admin key would
        expose every RPC to the network without auth, so it refuses to start.
        """
        if not is_loopback(self.listen) and not self.admin_key:
            raise SettingsError(
                f"refusing to serve {self.listen!r} (not a loopback address) without an admin "
                "key: set ARBITER_ADMIN_KEY, or listen on 127.0.0.1, [::1] or localhost"
            )
        if not 0 < self.max_request_bytes <= self.max_receive_message_bytes:
            raise SettingsError("max_request_bytes must be positive, at most the receive limit")
        if self.max_receive_message_bytes <= 0 or self.max_send_message_bytes <= 0:
            raise SettingsError("message size limits must be positive")
        if self.max_concurrent_rpcs <= 0:
            raise SettingsError("the limit of calls in flight must be positive")
        if self.max_pending_rpcs <= 0:
            raise SettingsError("max_pending_rpcs must be positive")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise SettingsError(
                "TLS needs both a certificate and its key: set --tls-cert and --tls-key"
                " (ARBITER_TLS_CERT, ARBITER_TLS_KEY)"
            )
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise SettingsError(
                "--tls-client-ca (ARBITER_TLS_CLIENT_CA) needs TLS: set --tls-cert and --tls-key"
            )
        if self.log_format not in LOG_FORMATS:
            raise SettingsError(
                f"log format {self.log_format!r}: choose one of {', '.join(LOG_FORMATS)}"
            )
        if self.metrics_listen is not None:
            split_listen(self.metrics_listen)
        if self.jobs_interval_s < 0:
            raise SettingsError("the jobs interval must not be negative (0 turns jobs off)")
        if self.config_poll_s < 0 or self.relay_interval_s < 0:
            raise SettingsError("the replica intervals must not be negative (0 turns them off)")


_UNIX_PREFIXES: Final = ("unix:", "unix-abstract:")


def split_listen(listen: str) -> tuple[str, int]:
    """`HOST:PORT` (or `[V6]:PORT`) -> (host, port); raises SettingsError when malformed.

    A Unix socket address (`unix:PATH`) is (the address, 0).
    """
    if listen.startswith(_UNIX_PREFIXES):
        return listen, 0
    host, sep, port_text = listen.rpartition(":")
    if not sep or not port_text.isdigit() or int(port_text) > 65_535:
        raise SettingsError(f"listen address {listen!r} is not HOST:PORT (port 0-65535)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port_text)


def is_loopback(listen: str) -> bool:
    """True when `listen` accepts connections from this machine only.

    Unix sockets count as local; a host name other than `localhost` does not (it may resolve to
    anything), nor does an empty host or a wildcard (`0.0.0.0`, `[::]`).
    """
    if listen.startswith(_UNIX_PREFIXES):
        return True
    host, _ = split_listen(listen)
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def default_data_dir(env: Mapping[str, str] | None = None) -> Path:
    """The per-user data folder (the embedded PostgreSQL's rule: /var/lib/arbiter for root)."""
    return embedded_pg.default_data_dir(env)


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `arbiter serve`; each unset flag falls back to its ARBITER_* variable."""
    parser.add_argument(
        "--program",
        dest="programs",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="a program file (protobuf JSON of arbiter.v1.Program); may be repeated; SIGHUP"
        " reads them again and applies those that changed",
    )
    parser.add_argument(
        "--listen", metavar="HOST:PORT", help=f"env ARBITER_LISTEN, default {DEFAULT_LISTEN}"
    )
    parser.add_argument(
        "--postgres",
        metavar="DSN",
        help="env ARBITER_POSTGRES_URL; default: an embedded cluster in the data dir",
    )
    parser.add_argument(
        "--postgres-bin",
        type=Path,
        metavar="DIR",
        help="env ARBITER_POSTGRES_BIN: PostgreSQL server binaries for the embedded cluster",
    )
    parser.add_argument(
        "--redis",
        metavar="URL",
        help="env ARBITER_REDIS_URL: the Redis (redis://HOST:PORT/DB) the ledger's events"
        " (member.enrolled, order.confirmed, points.accrued, ...) are published to, as the streams"
        " arbiter:events:PROGRAM; default: none, the events are only logged (DEBUG) and dropped",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="env ARBITER_DATA_DIR: the embedded PostgreSQL's folder (unused with --postgres);"
        " default $XDG_DATA_HOME/arbiter when XDG_DATA_HOME is set, else /var/lib/arbiter for"
        " root and ~/.local/share/arbiter for other users",
    )
    parser.add_argument(
        "--jobs-interval",
        type=float,
        metavar="SECONDS",
        help=f"env ARBITER_JOBS_INTERVAL: expiry, tier periods, outbox relay every SECONDS"
        f" (default {DEFAULT_JOBS_INTERVAL_S:g}; 0 turns them off)",
    )
    parser.add_argument(
        "--max-concurrent-rpcs",
        type=int,
        metavar="N",
        help="env ARBITER_MAX_CONCURRENT_RPCS: calls served at once; more are RESOURCE_EXHAUSTED"
        f" (default {DEFAULT_MAX_CONCURRENT_RPCS})",
    )
    parser.add_argument(
        "--event-loop",
        metavar="NAME",
        help=f"env ARBITER_EVENT_LOOP: {', '.join(EVENT_LOOPS)} (default auto: uvloop when"
        " installed)",
    )
    parser.add_argument(
        "--log-format",
        metavar="FORMAT",
        help="env ARBITER_LOG_FORMAT: text (the default) or json (one object a line)",
    )
    parser.add_argument(
        "--metrics",
        metavar="HOST:PORT",
        help="env ARBITER_METRICS_LISTEN: serve Prometheus text at http://HOST:PORT/metrics",
    )
    parser.add_argument(
        "--tls-cert", type=Path, metavar="FILE", help="env ARBITER_TLS_CERT: PEM certificate chain"
    )
    parser.add_argument(
        "--tls-key", type=Path, metavar="FILE", help="env ARBITER_TLS_KEY: PEM private key"
    )
    parser.add_argument(
        "--tls-client-ca",
        type=Path,
        metavar="FILE",
        help="env ARBITER_TLS_CLIENT_CA: PEM CA; clients must present a certificate it signed",
    )


def settings_from_args(
    args: argparse.Namespace | None = None,
    env: Mapping[str, str] | None = None,
    argv: Sequence[str] | None = None,
) -> Settings:
    """Settings from parsed flags (or `argv`) and the environment; flags win."""
    env = os.environ if env is None else env
    if args is None:
        parser = argparse.ArgumentParser()
        add_serve_arguments(parser)
        args = parser.parse_args(argv)

    def pick(flag: object, name: str) -> str | None:
        if flag is not None:
            return str(flag)
        return env.get(name) or None

    listen = pick(args.listen, "ARBITER_LISTEN") or DEFAULT_LISTEN
    split_listen(listen)  # malformed addresses fail here, before anything starts
    postgres_bin = pick(args.postgres_bin, "ARBITER_POSTGRES_BIN")
    data_dir = pick(args.data_dir, "ARBITER_DATA_DIR")
    postgres_url = pick(args.postgres, "ARBITER_POSTGRES_URL")
    jobs_text = pick(getattr(args, "jobs_interval", None), "ARBITER_JOBS_INTERVAL")
    try:
        jobs_interval_s = float(jobs_text) if jobs_text else DEFAULT_JOBS_INTERVAL_S
    except ValueError:
        raise SettingsError(f"jobs interval {jobs_text!r} is not a number of seconds") from None
    limit_text = pick(getattr(args, "max_concurrent_rpcs", None), "ARBITER_MAX_CONCURRENT_RPCS")
    try:
        max_concurrent_rpcs = int(limit_text) if limit_text else DEFAULT_MAX_CONCURRENT_RPCS
    except ValueError:
        raise SettingsError(f"max concurrent RPCs {limit_text!r} is not a whole number") from None
    event_loop = pick(getattr(args, "event_loop", None), "ARBITER_EVENT_LOOP") or "auto"
    try:
        event_loop_factory(event_loop)
    except ValueError as exc:
        raise SettingsError(f"event loop: {exc}") from None
    metrics_listen = pick(getattr(args, "metrics", None), "ARBITER_METRICS_LISTEN")
    if metrics_listen is not None:
        split_listen(metrics_listen)

    def path(flag: str, name: str) -> Path | None:
        text = pick(getattr(args, flag, None), name)
        return Path(text) if text else None

    return Settings(
        listen=listen,
        programs=tuple(args.programs),
        postgres_url=postgres_url,
        postgres_bin=Path(postgres_bin) if postgres_bin else None,
        embedded_postgres=postgres_url is None,
        redis_url=pick(args.redis, "ARBITER_REDIS_URL"),
        data_dir=Path(data_dir) if data_dir else default_data_dir(env),
        admin_key=env.get("ARBITER_ADMIN_KEY") or None,
        jobs_interval_s=jobs_interval_s,
        max_concurrent_rpcs=max_concurrent_rpcs,
        event_loop=event_loop,
        log_format=pick(getattr(args, "log_format", None), "ARBITER_LOG_FORMAT") or "text",
        metrics_listen=metrics_listen,
        tls_cert=path("tls_cert", "ARBITER_TLS_CERT"),
        tls_key=path("tls_key", "ARBITER_TLS_KEY"),
        tls_client_ca=path("tls_client_ca", "ARBITER_TLS_CLIENT_CA"),
    )
