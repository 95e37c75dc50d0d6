"""TLS for the gRPC port: `--tls-cert`/`--tls-key`, and `--tls-client-ca` for mutual TLS."""

from __future__ import annotations

from pathlib import Path

import grpc

from arbiter.server.app.settings import Settings, SettingsError

__all__ = ["server_credentials"]


def _read(path: Path, what: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SettingsError(f"cannot read the TLS {what} {str(path)!r}: {exc.strerror}") from exc
    if b"-----BEGIN" not in data:
        raise SettingsError(f"the TLS {what} {str(path)!r} is not PEM")
    return data


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """None for plain text; else the certificate chain and key, and the client CA when set
    (then a client without a certificate signed by it cannot connect)."""
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    chain = _read(settings.tls_cert, "certificate")
    key = _read(settings.tls_key, "key")
    client_ca = (
        _read(settings.tls_client_ca, "client CA") if settings.tls_client_ca is not None else None
    )
    return grpc.ssl_server_credentials(
        [(key, chain)], root_certificates=client_ca, require_client_auth=client_ca is not None
    )
