"""TLS for the gRPC port and for calls between services, from PEM files named in the settings.

Server side: with a certificate and key the port serves TLS only; with a client CA as well it asks every
caller for a certificate signed by that CA (mutual TLS). The files are read at start, and again whenever
they change on disk, for the connections opened after the change (gRPC asks before every handshake): a
certificate renewed in place (cert-manager, a Kubernetes Secret volume) needs no restart. Connections are
recycled every `connection_max_age_seconds`, so every client meets the new certificate within that time.

Client side: `channel_tls(settings)` reads the CA (and the client certificate for mutual TLS) once; a
renewed client certificate takes effect when the service restarts.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import structlog

if TYPE_CHECKING:
    from wayline.common.settings import ServiceSettings

__all__ = ["ChannelTls", "ReloadingServerCertificates", "channel_tls", "server_credentials", "tls_problems"]

log = structlog.get_logger("wayline.tls")

# Field → the variable operators set, for messages that name what to fix.
_VARIABLES = {
    "tls_cert_file": "WAYLINE_TLS_CERT_FILE",
    "tls_key_file": "WAYLINE_TLS_KEY_FILE",
    "tls_client_ca_file": "WAYLINE_TLS_CLIENT_CA_FILE",
    "tls_ca_file": "WAYLINE_TLS_CA_FILE",
    "tls_client_cert_file": "WAYLINE_TLS_CLIENT_CERT_FILE",
    "tls_client_key_file": "WAYLINE_TLS_CLIENT_KEY_FILE",
    "tls_server_name": "WAYLINE_TLS_SERVER_NAME",
}


def _no_password() -> str:
    raise ssl.SSLError("the key is encrypted; give gRPC an unencrypted PEM key (keep it in a Secret)")


def _pair_problem(cert: Path, key: Path) -> str | None:
    """Why `cert` and `key` cannot serve TLS (unparsable, or a key that is not the certificate's)."""
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(cert, key, password=_no_password)
    except (ssl.SSLError, OSError) as error:
        return f"{cert} and {key} are not a PEM certificate chain and its private key ({error})"
    return None


def tls_problems(settings: ServiceSettings) -> list[str]:
    """Every way the TLS settings cannot work, each naming the variables to fix; empty when they can.

    Run when the settings load, so a half-configured or unreadable TLS setup stops the service at start
    with a message, instead of a plaintext port or a handshake failure on the first call.
    """
    problems = []
    for server, client in (
        ("tls_cert_file", "tls_key_file"),
        ("tls_client_cert_file", "tls_client_key_file"),
    ):
        if (getattr(settings, server) is None) != (getattr(settings, client) is None):
            problems.append(f"{_VARIABLES[server]} and {_VARIABLES[client]} go together: set both or neither")
    if settings.tls_client_ca_file is not None and settings.tls_cert_file is None:
        problems.append(
            "WAYLINE_TLS_CLIENT_CA_FILE needs WAYLINE_TLS_CERT_FILE and WAYLINE_TLS_KEY_FILE: only a TLS "
            "port can ask callers for certificates"
        )
    for dependent in ("tls_client_cert_file", "tls_server_name"):
        if getattr(settings, dependent) is not None and settings.tls_ca_file is None:
            problems.append(
                f"{_VARIABLES[dependent]} needs WAYLINE_TLS_CA_FILE: calls to other services use TLS only "
                "when it names the CA that signed their certificates"
            )
    for name, variable in _VARIABLES.items():
        path = getattr(settings, name)
        if isinstance(path, Path) and not os.access(path, os.R_OK):
            problems.append(f"{variable}: cannot read {path}")
    if problems:
        return problems
    for cert, key in (
        (settings.tls_cert_file, settings.tls_key_file),
        (settings.tls_client_cert_file, settings.tls_client_key_file),
    ):
        if cert is not None and key is not None and (problem := _pair_problem(cert, key)):
            problems.append(problem)
    return problems


@dataclass(frozen=True)
class ChannelTls:
    """What a channel to another service needs for TLS: the CA to trust, and for mutual TLS the client
    certificate chain and key (PEM bytes). `server_name` replaces the address's host when checking the
    peer's certificate (tests on 127.0.0.1, addresses that are IPs)."""

    root_certificates: bytes
    certificate_chain: bytes | None = None
    private_key: bytes | None = None
    server_name: str | None = None

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.root_certificates,
            private_key=self.private_key,
            certificate_chain=self.certificate_chain,
        )

    def options(self) -> list[tuple[str, Any]]:
        if self.server_name is None:
            return []
        return [
            ("grpc.ssl_target_name_override", self.server_name),
            ("grpc.default_authority", self.server_name),
        ]


def _read(path: Path | None) -> bytes | None:
    return None if path is None else path.read_bytes()


def channel_tls(settings: ServiceSettings) -> ChannelTls | None:
    """The TLS of this service's calls to the others, from its settings; None: plaintext."""
    if settings.tls_ca_file is None:
        return None
    return ChannelTls(
        root_certificates=settings.tls_ca_file.read_bytes(),
        certificate_chain=_read(settings.tls_client_cert_file),
        private_key=_read(settings.tls_client_key_file),
        server_name=settings.tls_server_name,
    )


class ReloadingServerCertificates:
    """The server's certificate, key and client CA, read again when one of the files changes.

    A file's identity is its (inode, size, mtime): a Kubernetes Secret volume swaps a symlink, which
    changes the inode; an editor or `cp` changes size or mtime. A change that does not load (a key written
    before its certificate) is logged and the current certificate kept; the next handshake tries again.
    """

    def __init__(self, cert: Path, key: Path, client_ca: Path | None) -> None:
        self._paths = (cert, key) if client_ca is None else (cert, key, client_ca)
        self._seen = self._identity()
        self.initial = self._load()

    def _identity(self) -> tuple[tuple[int, int, int], ...]:
        stats = [path.stat() for path in self._paths]
        return tuple((stat.st_ino, stat.st_size, stat.st_mtime_ns) for stat in stats)

    def _load(self) -> grpc.ServerCertificateConfiguration:
        cert, key, *client_ca = self._paths
        if problem := _pair_problem(cert, key):
            raise ValueError(problem)
        return grpc.ssl_server_certificate_configuration(
            [(key.read_bytes(), cert.read_bytes())],
            root_certificates=client_ca[0].read_bytes() if client_ca else None,
        )

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """gRPC's fetcher: a new configuration when the files changed, None to keep the current one."""
        try:
            seen = self._identity()
            if seen == self._seen:
                return None
            configuration = self._load()
        except (OSError, ValueError) as error:
            log.warning("tls.reload_failed", error=str(error))
            return None
        self._seen = seen
        log.info("tls.reloaded", files=[str(path) for path in self._paths])
        return configuration


def server_credentials(settings: ServiceSettings) -> grpc.ServerCredentials | None:
    """TLS credentials for the gRPC port (mutual TLS when a client CA is set); None: plaintext."""
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return None
    certificates = ReloadingServerCertificates(
        settings.tls_cert_file, settings.tls_key_file, settings.tls_client_ca_file
    )
    return grpc.dynamic_ssl_server_credentials(
        certificates.initial,
        # gRPC documents None as "keep the current certificate"; grpc-stubs leaves it out of the type.
        certificates.fetch,  # type: ignore[arg-type]
        require_client_authentication=settings.tls_client_ca_file is not None,
    )
