"""TLS and mutual TLS, with certificates made here, over real connections."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc

from arbiter.server.app.settings import Settings, SettingsError, settings_from_args
from arbiter.server.app.wiring import App

NOW = dt.datetime.now(dt.UTC)


@dataclass
class Issued:
    cert: bytes
    key: bytes


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def make_ca(common: str) -> tuple[Issued, ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common))
        .issuer_name(_name(common))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return Issued(cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)), key, cert


def issue(
    ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate, common: str, *, server: bool
) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    cert = builder.sign(ca_key, hashes.SHA256())
    return Issued(cert.public_bytes(serialization.Encoding.PEM), _pem_key(key))


@dataclass
class Pki:
    ca: Issued
    server: Issued
    client: Issued
    stranger: Issued  # a client certificate from another CA
    folder: Path

    def write(self, name: str, data: bytes) -> Path:
        path = self.folder / name
        path.write_bytes(data)
        return path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    ca, ca_key, ca_cert = make_ca("Arbiter test CA")
    _, other_key, other_cert = make_ca("Someone else's CA")
    return Pki(
        ca,
        issue(ca_key, ca_cert, "localhost", server=True),
        issue(ca_key, ca_cert, "till-1", server=False),
        issue(other_key, other_cert, "intruder", server=False),
        tmp_path_factory.mktemp("pki"),
    )


async def _serve(settings: Settings) -> App:
    app = App(settings)
    await app.open()
    await app.ready()
    return app


@pytest.fixture
async def tls_app(pki: Pki) -> AsyncIterator[App]:
    app = await _serve(
        Settings(
            listen="127.0.0.1:0",
            shutdown_grace_s=0,
            tls_cert=pki.write("server.pem", pki.server.cert),
            tls_key=pki.write("server.key", pki.server.key),
        )
    )
    try:
        yield app
    finally:
        await app.stop(0)


@pytest.fixture
async def mtls_app(pki: Pki) -> AsyncIterator[App]:
    app = await _serve(
        Settings(
            listen="127.0.0.1:0",
            shutdown_grace_s=0,
            tls_cert=pki.write("server.pem", pki.server.cert),
            tls_key=pki.write("server.key", pki.server.key),
            tls_client_ca=pki.write("ca.pem", pki.ca.cert),
        )
    )
    try:
        yield app
    finally:
        await app.stop(0)


async def _check(channel: grpc.aio.Channel) -> grpc.StatusCode:
    try:
        await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def _secure(port: int, credentials: grpc.ChannelCredentials) -> grpc.aio.Channel:
    return grpc.aio.secure_channel(f"localhost:{port}", credentials)


async def test_tls_serves_encrypted_and_refuses_plain_text(tls_app: App, pki: Pki) -> None:
    trusted = grpc.ssl_channel_credentials(root_certificates=pki.ca.cert)
    async with _secure(tls_app.port, trusted) as channel:
        assert await _check(channel) == grpc.StatusCode.OK
    async with grpc.aio.insecure_channel(f"127.0.0.1:{tls_app.port}") as channel:
        assert await _check(channel) == grpc.StatusCode.UNAVAILABLE
    # A client that does not trust the server's CA does not connect either.
    untrusted = grpc.ssl_channel_credentials(root_certificates=pki.stranger.cert)
    async with _secure(tls_app.port, untrusted) as channel:
        assert await _check(channel) == grpc.StatusCode.UNAVAILABLE


async def test_mutual_tls_needs_a_client_certificate_from_the_ca(mtls_app: App, pki: Pki) -> None:
    with_client = grpc.ssl_channel_credentials(
        root_certificates=pki.ca.cert,
        private_key=pki.client.key,
        certificate_chain=pki.client.cert,
    )
    async with _secure(mtls_app.port, with_client) as channel:
        assert await _check(channel) == grpc.StatusCode.OK
    without = grpc.ssl_channel_credentials(root_certificates=pki.ca.cert)
    async with _secure(mtls_app.port, without) as channel:
        assert await _check(channel) == grpc.StatusCode.UNAVAILABLE
    stranger = grpc.ssl_channel_credentials(
        root_certificates=pki.ca.cert,
        private_key=pki.stranger.key,
        certificate_chain=pki.stranger.cert,
    )
    async with _secure(mtls_app.port, stranger) as channel:
        assert await _check(channel) == grpc.StatusCode.UNAVAILABLE


def test_tls_settings_from_flags_and_environment(tmp_path: Path) -> None:
    env = {
        "ARBITER_TLS_CERT": "/etc/arbiter/cert.pem",
        "ARBITER_TLS_KEY": "/etc/arbiter/key.pem",
        "ARBITER_TLS_CLIENT_CA": "/etc/arbiter/ca.pem",
    }
    settings = settings_from_args(argv=[], env=env)
    assert (settings.tls_cert, settings.tls_key, settings.tls_client_ca) == (
        Path("/etc/arbiter/cert.pem"),
        Path("/etc/arbiter/key.pem"),
        Path("/etc/arbiter/ca.pem"),
    )
    flags = ["--tls-cert", "a.pem", "--tls-key", "b.pem"]
    settings = settings_from_args(argv=flags, env=env)
    assert (settings.tls_cert, settings.tls_key) == (Path("a.pem"), Path("b.pem"))
    with pytest.raises(SettingsError, match="--tls-key"):
        Settings(tls_cert=Path("a.pem")).check()
    with pytest.raises(SettingsError, match="needs TLS"):
        Settings(tls_client_ca=Path("ca.pem")).check()


async def test_unreadable_or_wrong_files_refuse_to_start(tmp_path: Path, pki: Pki) -> None:
    missing = Settings(
        listen="127.0.0.1:0", tls_cert=tmp_path / "nope.pem", tls_key=tmp_path / "nope.key"
    )
    with pytest.raises(SettingsError, match="cannot read the TLS certificate"):
        await App(missing).open()
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    with pytest.raises(SettingsError, match="not PEM"):
        await App(
            Settings(
                listen="127.0.0.1:0", tls_cert=junk, tls_key=pki.write("k.key", pki.server.key)
            )
        ).open()
