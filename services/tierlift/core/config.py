"""Typed settings from TIERLIFT_* environment variables, validated at start.

Each service declares a subclass of `ServiceSettings`; `load_settings` turns pydantic's
validation error into a `ConfigError` that names the environment variable at fault.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TypeVar

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tierlift.core.bus import EventBus
from tierlift.core.entry import StartupError
from tierlift.core.nats_access import ProducerCheck, TrustedProducer, trusted_keys
from tierlift.core.tls import TlsFiles, tls_files

ENV_PREFIX = "TIERLIFT_"
SECRETS_DIR = "TIERLIFT_SECRETS_DIR"
DEFAULT_CATALOG = Path(__file__).resolve().parent.parent / "catalog" / "dev.yaml"


class ConfigError(StartupError):
    """A missing or malformed TIERLIFT_* variable; the message names it."""


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    log_level: str = Field(default="info", pattern="^(debug|info|warning|error)$")
    # OTLP/gRPC collector address, e.g. "http://otel-collector:4317"; empty = no export.
    otlp_endpoint: str = ""
    # Prometheus /metrics on this host:port (core/telemetry.py), e.g. "0.0.0.0:9464"; empty = none
    metrics_listen: str = ""
    # gRPC listen address of this service.
    listen: str = "127.0.0.1:0"
    # Seconds to finish in-flight calls after SIGTERM.
    shutdown_grace_s: float = Field(default=10.0, gt=0)
    # SHA-256 (hex, comma-separated) of the router service keys this service accepts (classifier, adapters)
    trusted_router_keys: str = ""
    # TLS on this service's listener and its clients (core/tls.py): all three paths, or none
    tls_cert_file: str = ""
    tls_key_file: str = ""
    tls_ca_file: str = ""
    # mutual TLS: ask callers for a certificate signed by the CA ("require" refuses calls without)
    tls_client_certs: str = Field(default="none", pattern="^(none|request|require)$")
    # callers known by a name in their certificate (CN or DNS/URI SAN) instead of an API key:
    # "router.tierlift.svc=router,spiffe://corp/billing=app:billing" (role, and an app's tenant)
    tls_identities: str = ""
    # with TLS on: gRPC health in the clear on this address, for kubelet probes
    health_listen: str = ""

    def tls(self) -> TlsFiles | None:
        return tls_files(self.tls_cert_file, self.tls_key_file, self.tls_ca_file, self.tls_client_certs)

    def trusted_router_hashes(self) -> list[str]:
        """From TIERLIFT_TRUSTED_ROUTER_KEYS, and the hash of TIERLIFT_ROUTER_KEY(_FILE) when the
        router key itself is mounted (as the chart does)."""
        hashes = [h.strip().lower() for h in self.trusted_router_keys.split(",") if h.strip()]
        if key := secret("TIERLIFT_ROUTER_KEY"):
            hashes.append(hashlib.sha256(key.encode()).hexdigest())
        return hashes

    # SHA-256 (hex, comma-separated) of the assessor service keys allowed to call as the assessor
    # (the router: LLM judges and golden sets; the ledger: rollout evidence)
    trusted_assessor_keys: str = ""

    def trusted_assessor_hashes(self) -> list[str]:
        hashes = [h.strip().lower() for h in self.trusted_assessor_keys.split(",") if h.strip()]
        if key := secret("TIERLIFT_ASSESSOR_KEY"):  # the chart mounts the key itself
            hashes.append(hashlib.sha256(key.encode()).hexdigest())
        return hashes


class BusSettings(ServiceSettings):
    nats_url: str = Field(default="nats://127.0.0.1:4222", pattern=r"^(nats|tls)://")
    stream_replicas: int = Field(default=1, ge=1, le=5)
    # the producers whose events this service takes, each bound to its role's subjects:
    # "router=U...,assessor=U..." (a key rotated out: "router=U...@2026-12-07T10:00:00Z");
    # empty = every event is taken (a bus without NATS users: tests, a single trusted host)
    trusted_producers: str = ""

    @field_validator("trusted_producers")
    @classmethod
    def _public_nkeys(cls, value: str) -> str:
        trusted_keys(value)
        return value

    def assessor_nkey(self) -> str:
        """The assessor's current public nkey, among the trusted producers ("" when none is)."""
        current = [p.key for p in trusted_keys(self.trusted_producers) if p.role == "assessor" and p.retired_at is None]
        return current[-1] if current else ""

    def nats_seed(self) -> str:
        """This service's NATS user seed (TIERLIFT_NATS_SEED, or its _FILE / Secret file)."""
        return secret("TIERLIFT_NATS_SEED")

    async def connect_bus(self, role: str) -> EventBus:
        """This service on the bus as NATS role `role` (router, ledger, assessor); it trusts its
        own events besides those of TIERLIFT_TRUSTED_PRODUCERS."""
        seed = self.nats_seed()
        bus = await EventBus.connect(self.nats_url, f"tierlift-{role}", seed=seed, tls=self.tls(), role=role)
        if trusted := trusted_keys(self.trusted_producers):
            own = [TrustedProducer(role, bus.signer.public_key)] if bus.signer is not None else []
            bus.trust(ProducerCheck([*trusted, *own]))
        return bus


Settings = TypeVar("Settings", bound=BaseSettings)


def load_settings(cls: type[Settings]) -> Settings:
    """Read `cls` from the environment, failing fast with the variable's name."""
    try:
        return cls()
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"])
            problems.append(f"{ENV_PREFIX}{field.upper()}: {err['msg']}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None


def secret(name: str, env: Mapping[str, str] | None = None) -> str:
    """A secret's value: the variable `name`, else the file `name`_FILE names, else the file
    `name` in TIERLIFT_SECRETS_DIR (a mounted Kubernetes Secret, one file per key). Files keep
    secrets out of `kubectl describe` and crash dumps; "" when none is given."""
    env = os.environ if env is None else env
    if env.get(name):
        return env[name]
    path = env.get(f"{name}_FILE") or (str(Path(env[SECRETS_DIR]) / name) if env.get(SECRETS_DIR) else "")
    if not path:
        return ""
    try:
        return Path(path).read_text().strip()
    except FileNotFoundError:
        return ""
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read {path}: {exc.strerror}") from None
