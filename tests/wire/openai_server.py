"""A local HTTP server that speaks OpenAI's chat-completions wire format (JSON and SSE
streaming, usage, logprobs, error bodies), with scriptable faults: 5xx, 429 with Retry-After,
400, slow answers and dropped connections. Tests drive it through the official `openai` SDK.
Every request is logged, so a test can prove a request never reached this provider.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ANSWER_TOKENS = ["The", " answer", " is", " 42", "."]
TOKEN_LOGPROB = -0.05


@dataclass
class Recorded:
    path: str
    body: dict[str, Any]
    authorization: str


@dataclass
class OpenAIWireServer:
    """Faults are consumed one per request from `script` ("ok", "500", "429:<seconds>", "400",
    "slow:<seconds>", "drop"); with the script empty every request answers "ok"."""

    script: deque[str] = field(default_factory=deque)
    log: list[Recorded] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> str:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def next_behaviour(self, recorded: Recorded) -> str:
        with self._lock:
            self.log.append(recorded)
            return self.script.popleft() if self.script else "ok"


def completion(body: dict[str, Any]) -> dict[str, Any]:
    choice: dict[str, Any] = {
        "index": 0,
        "message": {"role": "assistant", "content": "".join(ANSWER_TOKENS)},
        "finish_reason": "stop",
        "logprobs": None,
    }
    if body.get("logprobs"):
        choice["logprobs"] = {"content": [_token_logprob(t) for t in ANSWER_TOKENS]}
    return {
        "id": "chatcmpl-wire",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body["model"],
        "choices": [choice],
        "usage": _usage(body),
    }


def _token_logprob(token: str) -> dict[str, Any]:
    return {"token": token, "logprob": TOKEN_LOGPROB, "bytes": list(token.encode()), "top_logprobs": []}


def _usage(body: dict[str, Any]) -> dict[str, int]:
    prompt = sum(len(m["content"].split()) for m in body["messages"])
    return {"prompt_tokens": prompt, "completion_tokens": len(ANSWER_TOKENS), "total_tokens": prompt + 5}


def stream_chunks(body: dict[str, Any]) -> list[dict[str, Any]]:
    base = {
        "id": "chatcmpl-wire",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body["model"],
    }
    chunks = []
    for i, token in enumerate(ANSWER_TOKENS):
        delta = {"role": "assistant", "content": token} if i == 0 else {"content": token}
        choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": None}
        if body.get("logprobs"):
            choice["logprobs"] = {"content": [_token_logprob(token)]}
        chunks.append({**base, "choices": [choice]})
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    if (body.get("stream_options") or {}).get("include_usage"):
        chunks.append({**base, "choices": [], "usage": _usage(body)})
    return chunks


def _handler(server: OpenAIWireServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            return

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
            behaviour = server.next_behaviour(Recorded(self.path, body, self.headers.get("Authorization", "")))
            if self.path != "/v1/chat/completions":
                return self._error(404, "not_found_error", f"no route {self.path}")
            kind, _, arg = behaviour.partition(":")
            if kind == "drop":
                self.close_connection = True
                self.connection.close()
                return None
            if kind == "slow":
                time.sleep(float(arg))
            if kind == "500":
                return self._error(500, "server_error", "The server had an error while processing your request.")
            if kind == "429":
                return self._error(429, "rate_limit_exceeded", "Rate limit reached.", {"Retry-After": arg or "1"})
            if kind == "400":
                return self._error(400, "invalid_request_error", "This model's maximum context length is exceeded.")
            if body.get("stream"):
                return self._sse(stream_chunks(body))
            return self._json(200, completion(body))

        def _json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> None:
            self._json(status, {"error": {"message": message, "type": kind, "param": None, "code": kind}}, headers)

        def _sse(self, chunks: list[dict[str, Any]]) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.close_connection = True
            self.end_headers()
            for chunk in chunks:
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()

    return Handler
