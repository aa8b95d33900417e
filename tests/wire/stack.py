"""A real stack whose adapters reach wire servers instead of the local model."""

from __future__ import annotations

from pathlib import Path

import yaml

from tierlift.devstack import Stack


def wire_model(
    model_id: str, tier: str, endpoint: str, price: str, adapter: str = "openai-wire", **extra: object
) -> dict[str, object]:
    """A catalog entry served by a wire server; `extra` adds or replaces fields (cloud_region, regions)."""
    return {
        "id": model_id,
        "tier": tier,
        "provider": "wire",
        "adapter": adapter,
        "endpoint": endpoint,
        "licence": {"name": "test"},
        "context_window": 8192,
        "capabilities": {"streaming": True, "logprobs": True},
        "price": {"api": {"input_per_million": price, "output_per_million": price}},
        "api_key_env": "WIRE_API_KEY",
    } | extra


def aws_env(state: Path, access_key_id: str = "AKIAWIRETEST") -> dict[str, str]:
    """AWS credentials for Bedrock adapters talking to a wire server, and nothing from this
    machine's own AWS configuration (no profile, no metadata server)."""
    return {
        "AWS_ACCESS_KEY_ID": access_key_id,
        "AWS_SECRET_ACCESS_KEY": "wire-secret-access-key",
        "AWS_CONFIG_FILE": str(state / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(state / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def start_provider_stack(
    state: Path,
    models: list[dict[str, object]],
    adapters: dict[str, str] | None = None,
    topology: str | None = None,
    database_url: str = "",
    metrics: bool = False,
    **env: str,
) -> Stack:
    """A started stack serving `models`; by default one `openai`-family adapter, `openai-wire`.
    The provider key (`WIRE_API_KEY`, "sk-wire" unless `env` gives one) goes to the adapters only.
    `database_url`: the ledger's database (default: SQLite in `state`); `metrics`: every process
    serves /metrics (Stack.metrics_addrs)."""
    catalog = state / "catalog.yaml"
    catalog.write_text(yaml.safe_dump({"version": "wire-test-1", "models": models}))
    adapters = adapters or {"openai-wire": "openai"}
    key = {"WIRE_API_KEY": env.pop("WIRE_API_KEY", "sk-wire")}
    stack = Stack(
        state,
        adapters=adapters,
        extra_env={"TIERLIFT_CATALOG": str(catalog), **env},
        service_extra_env={f"adapter-{name}": dict(key) for name in adapters},
        ledger_database_url=database_url,
        metrics=metrics,
    )
    stack.topology = topology or stack.topology  # else the stacks' default (TIERLIFT_TOPOLOGY)
    stack.start()
    return stack
