"""Model adapter entry point: `python -m tierlift.adapters.main`.

One process serves one adapter name from the catalog (e.g. `llamacpp-local`) with one
backend family; the catalog says which models that adapter serves.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError

from tierlift.adapters._backend import Backend
from tierlift.adapters._servicer import AdapterServicer
from tierlift.core.catalog import Catalog, load_catalog
from tierlift.core.config import DEFAULT_CATALOG, ConfigError, ServiceSettings, load_settings
from tierlift.core.entry import StartupError, run_service
from tierlift.core.grpc_server import GrpcServer
from tierlift.core.identity import routers_only
from tierlift.core.logging import configure_logging
from tierlift.core.telemetry import configure_telemetry
from tierlift.v1 import adapter_pb2, adapter_pb2_grpc


class AdapterSettings(ServiceSettings):
    adapter_name: str = "llamacpp-local"
    adapter_backend: Literal[
        "llamacpp", "openai", "azure", "anthropic", "gemini", "vertex", "bedrock", "vllm", "sglang", "tgi", "ollama"
    ] = "llamacpp"
    catalog: Path = DEFAULT_CATALOG
    # llama.cpp: a GGUF file; empty = the packaged Gemma 3 270M
    llamacpp_gguf: str = ""
    llamacpp_threads: int = Field(default=2, ge=1)
    llamacpp_context: int = Field(default=2048, ge=256)  # tokens per request slot
    llamacpp_parallel: int = Field(default=2, ge=1)  # concurrent request slots
    # openai: per-call timeout and the SDK's bounded retries (backoff with jitter, Retry-After)
    upstream_timeout_s: float = Field(default=30.0, gt=0)
    upstream_max_retries: int = Field(default=2, ge=0, le=10)
    # openai: send every request to this upstream model instead of the catalog's name (a local
    # OpenAI-compatible server standing in for a provider; attempts are still priced as the catalog model)
    upstream_model: str = ""
    # vllm: refuse (so the router moves on) when a pod is this loaded
    # self-hosted servers (vLLM, SGLang, TGI): refuse at once past this queue depth or KV-cache use
    vllm_max_waiting: int = Field(default=16, ge=0)
    vllm_max_kv_cache: float = Field(default=0.98, gt=0, le=1)


# What one adapter may set apart from the others in its process (`combined` hosts several in one
# environment): TIERLIFT_ADAPTER_<NAME>__<SETTING>, e.g. TIERLIFT_ADAPTER_OPENAI__UPSTREAM_TIMEOUT_S
# for adapter `openai`; a name's characters other than letters and digits are written "_".
OWN_SETTINGS = (
    "upstream_timeout_s", "upstream_max_retries", "upstream_model", "llamacpp_gguf", "llamacpp_threads",
    "llamacpp_context", "llamacpp_parallel", "vllm_max_waiting", "vllm_max_kv_cache",
)  # fmt: skip


def own_prefix(adapter_name: str) -> str:
    return f"TIERLIFT_ADAPTER_{re.sub(r'[^A-Za-z0-9]', '_', adapter_name).upper()}__"


def adapter_settings(name: str = "", backend: str = "", env: Mapping[str, str] | None = None) -> AdapterSettings:
    """One adapter's settings: the process's TIERLIFT_* variables, its name and backend (from
    TIERLIFT_ADAPTER_NAME/_BACKEND unless given), and its own TIERLIFT_ADAPTER_<NAME>__<SETTING>
    over them. The same in both topologies; an own variable for a setting that cannot differ
    between adapters in one process (the log level, the listener, TLS) is refused by name."""
    env = os.environ if env is None else env
    base = load_settings(AdapterSettings)
    name = name or base.adapter_name
    prefix = own_prefix(name)
    own: dict[str, str] = {}
    for variable, value in env.items():
        if variable.startswith(prefix):
            setting = variable.removeprefix(prefix).lower()
            if setting not in OWN_SETTINGS:
                raise ConfigError(
                    f"{variable}: not a setting one adapter may have apart (one of: "
                    f"{', '.join(s.upper() for s in OWN_SETTINGS)})"
                )
            own[setting] = value
    given = {"adapter_name": name} | ({"adapter_backend": backend} if backend else {})
    try:
        return AdapterSettings(**(base.model_dump() | given | own))
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"])
            variable = f"{prefix}{field.upper()}" if field in own else f"TIERLIFT_{field.upper()}"
            problems.append(f"{variable}: {err['msg']}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None


def build_backend(settings: AdapterSettings, catalog: Catalog) -> Backend:
    models = [m for m in catalog.models if m.adapter == settings.adapter_name]
    if not models:
        raise StartupError(
            f"TIERLIFT_ADAPTER_NAME: no model in catalog {settings.catalog} uses adapter {settings.adapter_name!r}"
        )
    if settings.adapter_backend == "openai":
        from tierlift.adapters.openai_compat import OpenAICompatBackend

        return OpenAICompatBackend(
            settings.adapter_name,
            models,
            settings.upstream_timeout_s,
            settings.upstream_max_retries,
            settings.upstream_model,
        )
    if settings.adapter_backend in ("vllm", "sglang", "tgi", "ollama"):
        from tierlift.adapters.self_hosted import SelfHostedBackend

        return SelfHostedBackend(
            settings.adapter_name,
            models,
            settings.upstream_timeout_s,
            settings.upstream_max_retries,
            settings.vllm_max_waiting,
            settings.vllm_max_kv_cache,
            family=settings.adapter_backend,
        )
    if settings.adapter_backend == "azure":
        from tierlift.adapters.openai_compat import AzureOpenAIBackend

        return AzureOpenAIBackend(
            settings.adapter_name, models, settings.upstream_timeout_s, settings.upstream_max_retries
        )
    if settings.adapter_backend in ("gemini", "vertex"):
        from tierlift.adapters.gemini import GeminiBackend

        return GeminiBackend(
            settings.adapter_name,
            models,
            settings.upstream_timeout_s,
            settings.upstream_max_retries,
            vertex=settings.adapter_backend == "vertex",
        )
    if settings.adapter_backend == "bedrock":
        from tierlift.adapters.bedrock import BedrockBackend

        return BedrockBackend(settings.adapter_name, models, settings.upstream_timeout_s, settings.upstream_max_retries)
    if settings.adapter_backend == "anthropic":
        from tierlift.adapters.anthropic_messages import AnthropicBackend

        return AnthropicBackend(
            settings.adapter_name, models, settings.upstream_timeout_s, settings.upstream_max_retries
        )
    # Imported here: only llama.cpp pods need the native library loaded.
    from tierlift.adapters.llamacpp import LlamaCppBackend, default_model_path

    gguf = Path(settings.llamacpp_gguf) if settings.llamacpp_gguf else default_model_path()
    if not gguf.is_file():
        raise StartupError(f"TIERLIFT_LLAMACPP_GGUF: no such file {gguf}")
    return LlamaCppBackend(
        settings.adapter_name,
        [m.id for m in models if not m.capabilities.embeddings],
        gguf,
        settings.llamacpp_threads,
        settings.llamacpp_context,
        settings.llamacpp_parallel,
        native_logs=settings.log_level == "debug",
        embedding_ids=[m.id for m in models if m.capabilities.embeddings],
    )


async def run() -> None:
    settings = adapter_settings()
    configure_logging(f"adapter-{settings.adapter_name}", settings.log_level)
    telemetry = configure_telemetry(f"adapter-{settings.adapter_name}", settings.otlp_endpoint, settings.metrics_listen)
    catalog = load_catalog(settings.catalog)
    backend = build_backend(settings, catalog)

    server = GrpcServer.for_settings(
        "adapter", settings, routers_only(settings.trusted_router_hashes(), settings.tls_identities)
    )
    adapter_pb2_grpc.add_ModelAdapterServicer_to_server(AdapterServicer(backend), server.server)
    server.add_service(adapter_pb2.DESCRIPTOR.services_by_name["ModelAdapter"].full_name)

    await server.start()
    server.stop_on_signals()
    await server.serve_until_stopped(cleanups=[backend.close, telemetry.shutdown])


if __name__ == "__main__":
    run_service(run)
