"""A local HTTP server that speaks a provider's wire format (OpenAI chat completions, Azure
OpenAI, Anthropic messages, Gemini on the Gemini API and Vertex AI, Bedrock Converse: JSON,
SSE or AWS event-stream streaming, usage, logprobs, error bodies), with scriptable
faults: 5xx, 429 with Retry-After, 400, slow answers and dropped connections. Tests drive it
through the official SDKs. Every request is logged, so a test can prove a request never
reached this provider.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from tests.wire import anthropic_format, azure_format, bedrock_format, gemini_format, openai_format
from tests.wire.openai_format import ANSWER_TOKENS, KINDS, TOKEN_LOGPROB

__all__ = ["ANSWER_TOKENS", "TOKEN_LOGPROB", "WireServer"]


class WireFormat(Protocol):
    """What every format module gives. Optional hooks, for the providers that need them:
    `is_stream(groups, body)` (the path says so, not the body), `encode_event(name, data)` and
    `STREAM_CONTENT_TYPE` (a stream that is not SSE), `error_headers(status)`, `retry_info(body,
    seconds)` (a 429's delay in the body), `key_rejected(protocol, message)` (a provider's own
    refusal of a key), `refusal(body)` (the provider's validation of a request)."""

    PATH: str

    def completion(self, body: dict[str, Any]) -> dict[str, Any]: ...

    def stream_events(self, body: dict[str, Any]) -> list[tuple[str | None, dict[str, Any]]]: ...

    def error_body(self, status: int, message: str) -> dict[str, Any]: ...

    def models_body(self, ids: list[str]) -> dict[str, Any]: ...

    def sent(self, body: dict[str, Any]) -> dict[str, Any]: ...

    STREAM_END: bytes


FORMATS: dict[str, Any] = {
    "openai": openai_format,
    "anthropic": anthropic_format,
    "azure": azure_format,
    "gemini": gemini_format,
    "vertex": gemini_format,
    "bedrock": bedrock_format,
}
# Vertex AI's callers get their Bearer token from Google's OAuth endpoint (a service account's
# `token_uri`): this server answers POST /token with this one.
VERTEX_TOKEN = "ya29.wire-access-token"
_SIGV4_SCOPE = re.compile(r"Credential=(?P<key>[^/]+)/\d{8}/(?P<region>[^/]+)/bedrock/aws4_request")


class _Server(ThreadingHTTPServer):
    # A provider accepts a burst of new connections. socketserver's listen backlog of 5 made the
    # kernel drop connection attempts when an adapter opened dozens at once; each came back only
    # after TCP's retransmission timeouts (1, 3, 7, 15 s): the multi-second tails that
    # `BENCH=overhead` showed at 128 clients (TcpExtListenOverflows counted them).
    request_queue_size = 1024


@dataclass
class Recorded:
    path: str
    body: dict[str, Any]
    authorization: str
    at: float = field(default_factory=time.monotonic)  # when it arrived

    @property
    def region(self) -> str:
        """The AWS region a SigV4-signed request was signed for ("" if not signed)."""
        matched = _SIGV4_SCOPE.search(self.authorization)
        return matched.group("region") if matched else ""


@dataclass
class WireServer:
    """Faults are consumed one per request from `script` ("ok", "500", "429:<seconds>", "400",
    "slow:<seconds>", "drop", "echo": a 400 whose message quotes the last message sent, as
    providers' validation errors do); with the script empty every request answers "ok"."""

    protocol: str = "openai"
    script: deque[str] = field(default_factory=deque)
    endpoint: str = ""
    # with the script empty: answer 500 with this probability, and after this delay
    fail_rate: float = 0.0
    delay_s: float = 0.0
    seed: int = 7
    # vLLM's OpenAI server also answers GET /health and GET /metrics (Prometheus text)
    healthy: bool = True
    metrics_text: str = ""
    # GET /v1/models lists these; with `key` set, any other credential gets 401, as a provider answers
    served_models: list[str] = field(default_factory=lambda: ["wire-model"])
    key: str = ""
    log: list[Recorded] = field(default_factory=list)
    # non-streamed OpenAI answers: the text for a request body (a test's scripted model), else the
    # fixed one; a (text, logprob) pair also sets every token's logprob
    answer: Callable[[dict[str, Any]], str | tuple[str, float]] | None = None
    # OpenAI tool calls: the arguments a scripted model writes for a request body (else from the schema)
    tool_arguments: Callable[[dict[str, Any]], str] | None = None
    # The provider's prompt cache: a prompt (model, system, messages, tools) seen before is read
    # from it, whole, and the usage says so as the provider does; a new one is written to it where
    # the provider reports writes (Anthropic, Bedrock: as if the caller had marked it for caching,
    # to live `cache_ttl`). Off: no usage reports a cache.
    prompt_cache: bool = False
    cache_ttl: str = "5m"
    # the scripted model thinks this many tokens before answering, reported as the provider does
    reasoning_tokens: int = 0
    # a stream's usage comes this long after its text (a provider slow to count, or a caller who
    # leaves before the end): the event that carries usage at its top level waits this long
    usage_delay_s: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _cached_prompts: set[str] = field(default_factory=set)

    def start(self, port: int = 0) -> str:
        """Serve in a background thread; return the base URL the provider's SDK takes."""
        self._httpd = _Server(("127.0.0.1", port), _handler(self, FORMATS[self.protocol]))
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        root = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self.endpoint = f"{root}/v1" if self.protocol == "openai" else root
        return self.endpoint

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def sent(self, index: int = 0) -> dict[str, Any]:
        """Request `index` in the terms every format shares: model, max_tokens, system, logprobs,
        seed, json."""
        return FORMATS[self.protocol].sent(self.log[index].body)

    def next_behaviour(self, recorded: Recorded) -> str:
        with self._lock:
            self.log.append(recorded)
            if self.script:
                return self.script.popleft()
            if self.fail_rate and self._random.random() < self.fail_rate:
                return "500"
            return f"slow:{self.delay_s}" if self.delay_s else "ok"

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def usage_kinds(self, body: dict[str, Any]) -> dict[str, Any]:
        """What the prompt cache and the scripted model make of this answered request (see
        openai_format.KINDS); a prompt is cached once it is answered."""
        kinds: dict[str, Any] = {"reasoning": self.reasoning_tokens}
        if self.prompt_cache:
            prompt = json.dumps([body.get(k) for k in _PROMPT_FIELDS], sort_keys=True)
            with self._lock:
                kinds |= {"cache_hit": prompt in self._cached_prompts, "cache_ttl": self.cache_ttl}
                self._cached_prompts.add(prompt)
        return kinds


# what makes a prompt the same prompt, in every provider's request body
_PROMPT_FIELDS = ("model", "system", "messages", "systemInstruction", "contents", "tools", "toolConfig")


def _handler(server: WireServer, wire: WireFormat) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # else headers and body wait on delayed ACKs (~40 ms)

        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            return

        def _key_rejected(self) -> bool:
            if not server.key:
                return False
            authorization = self.headers.get("Authorization", "")
            signed = _SIGV4_SCOPE.search(authorization)  # Bedrock: the access key id of the signature
            given = (
                self.headers.get("x-api-key")
                or self.headers.get("api-key")  # Azure OpenAI
                or self.headers.get("x-goog-api-key")  # the Gemini API
                or (signed.group("key") if signed else authorization.removeprefix("Bearer "))
            )
            if given == server.key:
                return False
            message = f"Incorrect API key provided: {given}. You can find your API key at the dashboard."
            if hasattr(wire, "key_rejected"):  # each provider refuses a key its own way
                status, body = wire.key_rejected(server.protocol, message)
                self._json(status, body, wire.error_headers(status) if hasattr(wire, "error_headers") else None)
            else:
                self._error(401, message)
            return True

        def do_GET(self) -> None:
            if self.path.split("?")[0] in ("/v1/models", getattr(wire, "MODELS_PATH", "/v1/models")):
                if not self._key_rejected():
                    self._json(200, wire.models_body(server.served_models))
                return None
            if self.path == "/":  # Ollama's health check: "Ollama is running"
                return self._plain(200 if server.healthy else 503, "Ollama is running")
            if self.path == "/health":
                return self._plain(200 if server.healthy else 503, "")
            if self.path == "/metrics":
                return self._plain(200, server.metrics_text)
            return self._error(404, f"no route {self.path}")

        def _plain(self, status: int, text: str) -> None:
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.path == "/token":  # Google's OAuth endpoint, for a service account's signed JWT
                assertion = urllib.parse.parse_qs(raw.decode()).get("assertion", [""])[0]
                if assertion.count(".") != 2:
                    return self._json(400, {"error": "invalid_grant"})
                return self._json(200, {"access_token": VERTEX_TOKEN, "expires_in": 3600, "token_type": "Bearer"})
            body = json.loads(raw or b"{}")
            behaviour = server.next_behaviour(Recorded(self.path, body, self.headers.get("Authorization", "")))
            if self._key_rejected():
                return None
            route, _, query = self.path.partition("?")
            if route == "/v1/embeddings" and hasattr(wire, "embeddings"):  # OpenAI's embeddings endpoint
                return self._json(200, wire.embeddings(body))
            matched = re.fullmatch(wire.PATH, route)
            if matched is None:
                return self._error(404, f"no route {self.path}")
            groups = {k: urllib.parse.unquote(v) for k, v in matched.groupdict().items() if v}
            if hasattr(wire, "embedding") and (embedded := wire.embedding(groups, body)) is not None:
                return self._json(200, embedded)
            if server.protocol == "azure" and "api-version=" not in query:  # required by Azure
                return self._error(404, "Resource not found")
            if "model" in groups or "deployment" in groups:  # Azure, Gemini, Bedrock: the model is in the path
                model = groups.get("model") or groups["deployment"]
                if groups.get("publisher", "google") != "google":  # Vertex: another publisher's model
                    model = f"{groups['publisher']}/{model}"
                body.setdefault("model", model)
            refused = wire.refusal(body) if hasattr(wire, "refusal") else ""  # the provider's own validation
            if refused:
                return self._error(400, refused)
            kind, _, arg = behaviour.partition(":")
            if kind == "drop":
                self.close_connection = True
                self.connection.close()
                return None
            if kind == "slow":
                time.sleep(float(arg))
            if kind == "500":
                return self._error(500, "The server had an error while processing your request.")
            if kind == "429":
                return self._error(429, "Rate limit reached.", {"Retry-After": arg or "1"}, retry_after=arg or "1")
            if kind == "400":
                return self._error(400, "The prompt is longer than the model's context window.")
            if kind == "echo":
                messages = body.get("messages") or [{}]
                return self._error(400, f"Invalid value for 'messages[-1].content': {messages[-1].get('content')!r}")
            body = {**body, KINDS: server.usage_kinds(body)}  # the logged body stays as sent
            streamed = wire.is_stream(groups, body) if hasattr(wire, "is_stream") else body.get("stream")
            if streamed:
                return self._sse(wire.stream_events(body))
            payload = wire.completion(body)
            calls = payload.get("choices", [{}])[0].get("message", {}).get("tool_calls") or []
            if server.tool_arguments is not None and calls:
                calls[0]["function"]["arguments"] = server.tool_arguments(body)
            elif server.answer is not None and server.protocol in ("openai", "azure"):
                answered = server.answer(body)
                text, logprob = answered if isinstance(answered, tuple) else (answered, None)
                choice = payload["choices"][0]
                choice["message"]["content"] = text
                if logprob is not None and choice.get("logprobs"):  # a scripted model's certainty
                    tokens = [{"token": t, "logprob": logprob, "bytes": list(t.encode()), "top_logprobs": []}
                              for t in text.split()]  # fmt: skip
                    choice["logprobs"] = {"content": tokens}
            return self._json(200, payload)

        def _json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _error(
            self, status: int, message: str, headers: dict[str, str] | None = None, retry_after: str = ""
        ) -> None:
            body = wire.error_body(status, message)
            if retry_after and hasattr(wire, "retry_info"):  # Gemini: the delay rides in the body
                body = wire.retry_info(body, retry_after)
            if hasattr(wire, "error_headers"):  # Bedrock: the error's type rides in a header
                headers = {**(headers or {}), **wire.error_headers(status)}
            self._json(status, body, headers)

        def _sse(self, events: list[tuple[str | None, dict[str, Any]]]) -> None:
            """Server-sent events, or AWS's binary event stream where the format encodes its own."""
            self.send_response(200)
            self.send_header("Content-Type", getattr(wire, "STREAM_CONTENT_TYPE", "text/event-stream"))
            self.send_header("Cache-Control", "no-cache")
            self.close_connection = True
            self.end_headers()
            for name, data in events:
                if server.usage_delay_s and "usage" in data:
                    time.sleep(server.usage_delay_s)
                if hasattr(wire, "encode_event"):
                    self.wfile.write(wire.encode_event(name, data))
                else:
                    prefix = f"event: {name}\n" if name else ""
                    self.wfile.write(f"{prefix}data: {json.dumps(data)}\n\n".encode())
                self.wfile.flush()
            self.wfile.write(wire.STREAM_END)
            self.wfile.flush()

    return Handler


def main() -> None:
    """`python -m tests.wire.server`: serve OpenAI's wire format on a port, for trying `tierlift up`
    with OPENAI_BASE_URL when no local model server is at hand."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--model", default="wire-model", help="the model name GET /v1/models lists")
    args = parser.parse_args()
    server = WireServer(served_models=[args.model])
    print(f"OpenAI wire format at {server.start(args.port)} (model {args.model}); Ctrl-C stops", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
