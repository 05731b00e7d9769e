"""Settings every Wayline service shares; each service subclasses `ServiceSettings` with its own prefix.

A service's settings class is the only code that reads the environment. Every field carries a description,
which `wayline settings` prints as the reference of all `WAYLINE_*` variables and their defaults. Reading
settings touches no disk: what start-up must create (the shared internal token) is made by
`wayline.common.internal_token.with_internal_token`, which the server's `main` calls once.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal, Self

import grpc
from google.protobuf import descriptor
from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from wayline.common.clients import internal_channel
from wayline.common.cpu_affinity import allowed_cpus, cpu_list_text, parse_cpu_list
from wayline.common.grpc_runtime import GRPC_EXPERIMENTS
from wayline.common.tls import ChannelTls, channel_tls, tls_problems

__all__ = ["ServiceSettings"]


class ServiceSettings(BaseSettings):
    """Fields shared by every service. Subclasses set `env_prefix="WAYLINE_<SVC>_"` and `service_name`."""

    model_config = SettingsConfigDict(
        env_prefix="WAYLINE_", extra="ignore", frozen=True, populate_by_name=True
    )

    service_name: ClassVar[str] = "service"

    data_dir: Path = Field(
        default=Path(".wayline"),
        validation_alias="WAYLINE_DATA_DIR",
        description="Directory that holds all of the suite's local state (one subfolder per service).",
    )
    internal_token: SecretStr | None = Field(
        default=None,
        validation_alias="WAYLINE_INTERNAL_TOKEN",
        description=(
            "Shared secret that internal services require from their callers before they trust tenant "
            "metadata. Unset: read from (or created at) <WAYLINE_DATA_DIR>/internal-token, which suits "
            "one machine; set it from a Secret in Kubernetes."
        ),
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", validation_alias="WAYLINE_LOG_LEVEL", description="Lowest log level written."
    )
    log_format: Literal["json", "console"] = Field(
        default="json",
        validation_alias="WAYLINE_LOG_FORMAT",
        description="json: one JSON object a line (production); console: coloured lines for people.",
    )
    otlp_endpoint: str | None = Field(
        default=None,
        validation_alias="OTEL_EXPORTER_OTLP_ENDPOINT",
        description="OTLP/gRPC collector for traces and metrics; unset: no export (Prometheus still works).",
    )
    grpc_experiments: str = Field(
        default=GRPC_EXPERIMENTS,
        validation_alias="GRPC_EXPERIMENTS",
        description="gRPC's own experiments switch, read by gRPC when the process starts (so only from the "
        "environment): the default turns EventEngine off, about a third less CPU per call on each side "
        "(ADR 68). Set it empty for gRPC's own defaults.",
    )
    host: str = Field(default="[::]", description="Address the gRPC server binds to.")
    port: int = Field(default=0, ge=0, le=65535, description="gRPC port; 0 picks a free one (tests).")
    metrics_port: int = Field(
        default=0, ge=0, le=65535, description="Prometheus scrape port on the same host; 0 turns it off."
    )
    max_workers: int = Field(default=32, ge=1, description="Threads that serve RPCs concurrently.")
    gc_freeze_at_start: bool = Field(
        default=True,
        description="Once the service has started, collect and freeze every object alive out of the "
        "garbage collector's later scans: a full collection then skips the 70-120k objects start built, "
        "which held the process 50-260 ms several times a minute (ADR 69). Set false to diagnose a leak of "
        "reference cycles built at start.",
    )
    cpu_affinity: str = Field(
        default="",
        description="CPUs this service's process (and any process it starts, like the gateway's nginx) "
        "runs on, in the kernel's cpuset list syntax (`1`, `0-1`, `0,2-3`); empty: wherever the OS schedules "
        "it. A service is one Python process whose threads take turns at one interpreter lock: kept on one "
        "core, the turns stay on that core and its caches (on 2 cores the decision service served 33-52 % "
        "more decisions a second at 16 callers through the nginx data plane, and kept up with a paced 500/s "
        "it fell behind otherwise, ADR 108); a lone call is no faster. For a latency-critical service on a "
        "host that has no exclusive cores to give it (Kubernetes' static CPU manager gives a Guaranteed pod "
        "its own); not for journeys, whose embedded ClickHouse runs a query on several cores. Every CPU "
        "named must be one the process may use at start.",
    )
    shutdown_grace_seconds: float = Field(
        default=10.0,
        ge=0,
        description="On SIGTERM: how long in-flight RPCs may finish after health turns NOT_SERVING.",
    )
    connection_max_age_seconds: float = Field(
        default=300.0,
        gt=0,
        description="How long a client connection lives before the server asks the client to reconnect, so "
        "that long-lived clients spread over new replicas.",
    )
    connection_age_grace_seconds: float = Field(
        default=90.0,
        ge=0,
        description="How long calls already running on an aged connection may go on before they are cut "
        "(UNAVAILABLE). Keep it above the longest call clients make: a StreamEvents stream lives up to the "
        "gateway's maximum deadline (WAYLINE_GATEWAY_MAX_DEADLINE_SECONDS, 60 s by default).",
    )
    max_message_bytes: int = Field(
        default=16 * 1024 * 1024, ge=1024, description="Largest gRPC message the server receives or sends."
    )
    health_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        validation_alias="WAYLINE_HEALTH_PORT",
        description="Plaintext port that serves only grpc.health.v1, for probes that cannot speak TLS "
        "(Kubernetes' native gRPC probes); 0 turns it off. One name for every service: each pod has its "
        "own network, so one number serves them all.",
    )
    # TLS (docs/tls.md). All unset by default: the suite on one machine speaks plaintext.
    tls_cert_file: Path | None = Field(
        default=None,
        validation_alias="WAYLINE_TLS_CERT_FILE",
        description="PEM certificate chain (leaf first) the gRPC port presents. Set with "
        "WAYLINE_TLS_KEY_FILE, the port serves TLS only; unset: plaintext. Reread when the files change.",
    )
    tls_key_file: Path | None = Field(
        default=None,
        validation_alias="WAYLINE_TLS_KEY_FILE",
        description="Unencrypted PEM private key of WAYLINE_TLS_CERT_FILE.",
    )
    tls_client_ca_file: Path | None = Field(
        default=None,
        validation_alias="WAYLINE_TLS_CLIENT_CA_FILE",
        description="PEM CA certificates that callers' certificates must be signed by: set, the port "
        "refuses callers without one (mutual TLS). For internal services; leave it unset on the gateway's "
        "public port.",
    )
    tls_ca_file: Path | None = Field(
        default=None,
        validation_alias="WAYLINE_TLS_CA_FILE",
        description="PEM CA certificates that the other Wayline services' certificates are checked "
        "against. Set: this service calls them over TLS; unset: plaintext.",
    )
    tls_client_cert_file: Path | None = Field(
        default=None,
        validation_alias="WAYLINE_TLS_CLIENT_CERT_FILE",
        description="PEM certificate chain this service presents when it calls the others (mutual TLS); "
        "with WAYLINE_TLS_CLIENT_KEY_FILE and WAYLINE_TLS_CA_FILE. Read at start.",
    )
    tls_client_key_file: Path | None = Field(
        default=None,
        validation_alias="WAYLINE_TLS_CLIENT_KEY_FILE",
        description="Unencrypted PEM private key of WAYLINE_TLS_CLIENT_CERT_FILE.",
    )
    tls_server_name: str | None = Field(
        default=None,
        validation_alias="WAYLINE_TLS_SERVER_NAME",
        description="Name the other services' certificates must carry, instead of the host of their "
        "address (when addresses are IPs); unset: the host of each address.",
    )

    @field_validator(
        "tls_cert_file",
        "tls_key_file",
        "tls_client_ca_file",
        "tls_ca_file",
        "tls_client_cert_file",
        "tls_client_key_file",
        "tls_server_name",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # An empty variable unsets a file that a shared ConfigMap sets (env wins over envFrom).
        return None if value == "" else value

    @field_validator("cpu_affinity")
    @classmethod
    def _cpus_exist(cls, value: str) -> str:
        cpus = parse_cpu_list(value)  # its ValueError names what is wrong
        if not cpus:  # no affinity: nothing to check against the CPUs the process may use
            return ""
        allowed = allowed_cpus()
        if not cpus <= allowed:
            missing = cpu_list_text(cpus - allowed)
            allowed_text = cpu_list_text(allowed)
            raise ValueError(f"names CPU {missing}, but this process may run only on {allowed_text}")
        return cpu_list_text(cpus)

    @property
    def cpus(self) -> frozenset[int]:
        """The CPUs of `cpu_affinity`; empty: no affinity is set."""
        return parse_cpu_list(self.cpu_affinity)

    @model_validator(mode="after")
    def _tls_can_work(self) -> Self:
        problems = tls_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @classmethod
    def environment_variables(cls) -> dict[str, tuple[str, ...]]:
        """Field name → the environment variables it is read from, the documented name first."""
        prefix = str(cls.model_config.get("env_prefix", ""))
        names: dict[str, tuple[str, ...]] = {}
        for name, field in cls.model_fields.items():
            alias = field.validation_alias
            if isinstance(alias, str):
                names[name] = (alias,)
            elif isinstance(alias, AliasChoices):
                names[name] = tuple(str(choice) for choice in alias.choices)
            else:
                names[name] = (f"{prefix}{name.upper()}",)
        return names

    def peer_address(self, service: str) -> str:
        """host:port of another service, from this service's `<service>_address` setting."""
        address = getattr(self, f"{service}_address", None)
        if not isinstance(address, str):
            raise KeyError(f"{type(self).__name__} has no {service}_address setting")
        return address

    @property
    def service_dir(self) -> Path:
        """This service's own folder under the data dir; each store creates what it writes there."""
        return self.data_dir / self.service_name

    def channel_tls(self) -> ChannelTls | None:
        """TLS for this service's calls to the others (`internal_channel(..., tls=...)`); None: plaintext."""
        return channel_tls(self)

    def peer_channel(self, address: str, service: descriptor.ServiceDescriptor) -> grpc.Channel | None:
        """A channel to the peer at `address` serving `service` (with its retry policy), with this service's
        internal token, message limit and TLS; None when the address is empty (the peer is off)."""
        if not address:
            return None
        return internal_channel(
            address,
            internal_token=self.require_internal_token(),
            services=[service],
            max_message_bytes=self.max_message_bytes,
            tls=self.channel_tls(),
        )

    def require_internal_token(self) -> str:
        """The internal token; at start-up `with_internal_token` fills it in from the data dir when the
        environment sets none."""
        if self.internal_token is None or not self.internal_token.get_secret_value():
            raise RuntimeError(
                "no internal token: set WAYLINE_INTERNAL_TOKEN, or start the service through "
                "wayline.common.server.main, which shares one through the data dir"
            )
        return self.internal_token.get_secret_value()
