"""`make bench-peers`: Tierlift beside LiteLLM and Portkey in ../shared/tools/gwbench, over its
OpenAI-compatible edge, all on one instant upstream. This module is gwbench's `project` system:

    python -m tests.benchmarks.peers prepare STATE   # migrate, make the keys; prints the app key
    python -m tests.benchmarks.peers serve STATE     # the whole stack, gateway on 127.0.0.1:18084,
                                                     # its one model the harness's $GWBENCH_UPSTREAM

`tools/bench_peers.sh` runs both around gwbench and writes gwbench's JSON, with the command, commit
and machine, to tests/benchmarks/results/peers.json."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import yaml

from tierlift.core import migrations
from tierlift.devstack import Stack, bootstrap_keys

GATEWAY_PORT = 18084
MODEL = "bench-model"  # what gwbench's load generator asks for, and its upstream answers


def _stack(state: Path) -> Stack:
    upstream = os.environ.get("GWBENCH_UPSTREAM", "http://127.0.0.1:18080/v1")
    catalog = {"version": "gwbench-1", "models": [{
        "id": MODEL, "tier": "CLOSED", "provider": "gwbench", "adapter": "openai-bench", "endpoint": upstream,
        "licence": {"name": "test"}, "context_window": 8192, "capabilities": {"streaming": True, "logprobs": False},
        "price": {"api": {"input_per_million": "1.00", "output_per_million": "1.00"}}, "api_key_env": "BENCH_API_KEY",
    }]}  # fmt: skip
    (state / "catalog.yaml").write_text(yaml.safe_dump(catalog))
    env = {
        "TIERLIFT_CATALOG": str(state / "catalog.yaml"),
        "BENCH_API_KEY": "sk-bench",
        "TIERLIFT_LOG_LEVEL": "warning",
    }
    return Stack(state, adapters={"openai-bench": "openai"}, extra_env=env, gateway_port=GATEWAY_PORT)


def prepare(state: Path) -> None:
    state.mkdir(parents=True, exist_ok=True)
    stack = _stack(state)
    migrations.upgrade(stack.database_url)
    print(bootstrap_keys(state, stack.database_url)["app"])


def serve(state: Path) -> None:
    stack = _stack(state)
    stack.start()
    try:
        stack.serve_until_signalled()
    finally:
        stack.stop()


if __name__ == "__main__":
    command, state_dir = sys.argv[1], Path(sys.argv[2])
    {"prepare": prepare, "serve": serve}[command](state_dir)
