"""The self-hosted adapters (vLLM, SGLang, TGI, Ollama) against a server speaking their OpenAI API,
health and metrics endpoints: answers while the server is fine, refuses at once when it is down or
saturated, each family by the signals it exports."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from tests.wire.server import WireServer
from tierlift.adapters import BackendError
from tierlift.adapters.self_hosted import SelfHostedBackend, parse_metrics
from tierlift.core.catalog import Model
from tierlift.v1 import adapter_pb2, common_pb2

# As vLLM v1 writes them (label sets abridged).
BUSY_METRICS = """\
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 40.0
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 0.62
"""
IDLE_METRICS = BUSY_METRICS.replace("} 40.0", "} 0.0")


def vllm_model(endpoint: str) -> Model:
    return Model.model_validate(
        {
            "id": "llama-8b-vllm",
            "tier": "LOCAL",
            "provider": "self-hosted",
            "adapter": "vllm-local",
            "upstream_model": "meta-llama/Llama-3.1-8B-Instruct",
            "endpoint": endpoint,
            "licence": {"name": "llama3.1-community"},
            "context_window": 8192,
            "capabilities": {"streaming": True, "logprobs": True},
            "price": {
                "self_hosted": {"hourly_usd": "0.80", "input_tokens_per_s": "6000", "output_tokens_per_s": "900"}
            },
        }
    )


@pytest.fixture
async def pod() -> AsyncIterator[tuple[WireServer, SelfHostedBackend]]:
    server = WireServer(metrics_text=IDLE_METRICS)
    server.start()
    backend = SelfHostedBackend("vllm-local", [vllm_model(server.endpoint)], 2.0, 0, max_waiting=16, max_kv_cache=0.95)
    try:
        yield server, backend
    finally:
        await backend.close()
        server.stop()


def request() -> adapter_pb2.GenerateRequest:
    return adapter_pb2.GenerateRequest(
        model="llama-8b-vllm",
        messages=[common_pb2.Message(role="user", content="Hi?")],
        params=common_pb2.GenerationParams(max_tokens=8),
    )


def test_metrics_parse_queue_depth_and_kv_cache_of_either_vllm_generation() -> None:
    load = parse_metrics(BUSY_METRICS)
    assert (load.waiting, load.kv_cache) == (40.0, 0.62)
    old = parse_metrics("# TYPE vllm:gpu_cache_usage_perc gauge\nvllm:gpu_cache_usage_perc 0.99\n")
    assert old.kv_cache == 0.99


async def test_idle_pod_answers_with_logprobs(pod: tuple[WireServer, SelfHostedBackend]) -> None:
    _server, backend = pod
    await backend.poll_once()
    reply = await backend.generate(request())
    assert reply.text and reply.confidence.has_logprobs


async def test_saturated_pod_is_refused_without_a_call(pod: tuple[WireServer, SelfHostedBackend]) -> None:
    server, backend = pod
    server.metrics_text = BUSY_METRICS
    await backend.poll_once()
    with pytest.raises(BackendError) as err:
        await backend.generate(request())
    assert err.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "40 requests waiting" in err.value.message
    assert not [r for r in server.log if r.path.endswith("/chat/completions")]


async def test_unhealthy_pod_is_unavailable(pod: tuple[WireServer, SelfHostedBackend]) -> None:
    server, backend = pod
    server.healthy = False
    await backend.poll_once()
    with pytest.raises(BackendError) as err:
        await backend.generate(request())
    assert err.value.code == grpc.StatusCode.UNAVAILABLE


SGLANG_BUSY = """# TYPE sglang:num_queue_reqs gauge
sglang:num_queue_reqs{model_name="meta-llama/Llama-3.1-8B-Instruct"} 3.0
# TYPE sglang:token_usage gauge
sglang:token_usage{model_name="meta-llama/Llama-3.1-8B-Instruct"} 0.97
"""
TGI_BUSY = "# TYPE tgi_queue_size gauge\ntgi_queue_size 25\n"


@pytest.mark.parametrize(
    ("family", "busy", "why"),
    [
        ("sglang", SGLANG_BUSY, "KV cache 97%"),  # a full KV cache, short queue
        ("tgi", TGI_BUSY, "25 requests waiting"),  # TGI exports its queue, not its KV cache
        ("ollama", "", ""),  # health only (GET /): no load signal to act on
    ],
)
async def test_each_server_family_reads_its_own_health_and_load_signals(family: str, busy: str, why: str) -> None:
    server = WireServer(metrics_text="")
    server.start()
    backend = SelfHostedBackend(f"{family}-local", [vllm_model(server.endpoint)], 2.0, 0, max_waiting=16,
                                max_kv_cache=0.95, family=family)  # fmt: skip
    try:
        await backend.poll_once()
        assert (await backend.generate(request())).text  # idle (or no metrics): served
        server.metrics_text = busy
        await backend.poll_once()
        if why:
            with pytest.raises(BackendError) as err:
                await backend.generate(request())
            assert err.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED and why in err.value.message
        else:
            assert (await backend.generate(request())).text
        server.healthy = False
        await backend.poll_once()
        with pytest.raises(BackendError) as down:
            await backend.generate(request())
        assert down.value.code == grpc.StatusCode.UNAVAILABLE and f"{family} server" in down.value.message
    finally:
        await backend.close()
        server.stop()
