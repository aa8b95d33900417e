"""BENCH=shadow: does shadowing a workload slow its live traffic? Two workloads on one stack
and one instant upstream: `plain` (no shadow) and `shadowed` (5% of requests run again on a
reference model after the answer). Rounds alternate between them at 16 concurrent clients, so
both see the same machine; p50/p95 and throughput are reported per workload."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import yaml

from tests.benchmarks.run import _overhead_level
from tests.wire.server import WireServer
from tests.wire.stack import start_provider_stack, wire_model

POLICY = Path(__file__).resolve().parents[2] / "services" / "tierlift" / "policy" / "dev.yaml"


def bench_shadow(rounds: int = 4, per_round: int = 400) -> dict[str, object]:
    upstream = WireServer(served_models=["wire-open", "wire-reference"])
    upstream.start()
    with tempfile.TemporaryDirectory() as state:
        policy = yaml.safe_load(POLICY.read_text())
        shadow = {"sample": 0.05, "models": ["wire-reference"], "max_usd_per_day": "1000"}
        policy["workloads"] = {"shadowed": {"shadow": shadow}}
        (Path(state) / "policy.yaml").write_text(yaml.safe_dump(policy))
        stack = start_provider_stack(
            Path(state),
            [
                wire_model("wire-open", "HOSTED_OPEN", upstream.endpoint, "0.50"),
                wire_model("wire-reference", "FRONTIER", upstream.endpoint, "5.00"),
            ],
            TIERLIFT_LOG_LEVEL="warning",
            TIERLIFT_POLICY=str(Path(state) / "policy.yaml"),
        )
        try:
            asyncio.run(_overhead_level(stack, 4, 100, fresh_prompts=False, workload="plain"))  # warm-up
            runs: dict[str, list[dict[str, object]]] = {"plain": [], "shadowed": []}
            for _ in range(rounds):
                for workload in runs:
                    level = asyncio.run(_overhead_level(stack, 16, per_round, fresh_prompts=False, workload=workload))
                    runs[workload].append(level)
            shadow_calls = sum(1 for r in upstream.log if r.body.get("model") == "wire-reference")
        finally:
            stack.stop()
            upstream.stop()
    return {
        "what": "Router.Complete at 16 concurrent clients, repeated prompts, instant upstream; rounds alternate "
        "between a workload without shadows and one shadowing 5% of requests to a reference model (off the "
        "caller's path). Client, services, nats-server and upstream share this machine's cores.",
        "shadow_calls": shadow_calls,
        "rounds": runs,
        "median_of_rounds": {
            workload: {
                key: sorted(float(r[key]) for r in levels)[len(levels) // 2]  # type: ignore[arg-type]
                for key in ("p50_ms", "p95_ms", "answered_per_s")
            }
            for workload, levels in runs.items()
        },
    }
