"""Amazon Bedrock Runtime's Converse API: POST /model/<modelId>/converse (JSON) and
/model/<modelId>/converse-stream, whose answer is AWS's binary event-stream framing
(application/vnd.amazon.eventstream: prelude, CRCs, typed headers); errors typed by the
`x-amzn-ErrorType` header. Requests are signed with SigV4: the server reads the access key and
the region from the credential scope."""

from __future__ import annotations

import binascii
import itertools
import json
import struct
from typing import Any

from tests.wire.openai_format import (
    ANSWER_TOKENS,
    EMBEDDING_DIMENSIONS,
    KINDS,
    cache_counts,
    example,
    reasoning_tokens,
    vector,
)

PATH = r"/model/(?P<model>[^/]+)/(?P<method>converse|converse-stream|invoke)"
STREAM_END = b""
STREAM_CONTENT_TYPE = "application/vnd.amazon.eventstream"
_ERROR_TYPES = {
    400: "ValidationException",
    403: "UnrecognizedClientException",
    404: "ResourceNotFoundException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}


def is_stream(groups: dict[str, str], body: dict[str, Any]) -> bool:
    return groups["method"] == "converse-stream"


def refusal(body: dict[str, Any]) -> str:
    """Converse's own checks on a conversation ("" when it passes), with AWS's messages."""
    roles = [m.get("role") for m in body.get("messages", [])]
    if not roles or roles[0] != "user":
        return "A conversation must start with a user message."
    if any(a == b for a, b in itertools.pairwise(roles)):
        return "A conversation must alternate between user and assistant roles."
    return ""


def _prompt_tokens(body: dict[str, Any]) -> int:
    blocks = [*body.get("system", []), *(b for m in body.get("messages", []) for b in m.get("content", []))]
    return sum(len(str(block.get("text", "")).split()) for block in blocks)


def _usage(body: dict[str, Any]) -> dict[str, Any]:
    """Converse's usage: inputTokens leaves cache reads and writes out (totalTokens adds them);
    cacheDetails gives the writes' TTL. Thinking is in outputTokens, not reported apart."""
    prompt = _prompt_tokens(body)
    read, written = cache_counts(body, prompt, writes=True)
    output = len(ANSWER_TOKENS) + reasoning_tokens(body)
    usage: dict[str, Any] = {
        "inputTokens": prompt - read - written,
        "outputTokens": output,
        "totalTokens": prompt + output,
    }
    if read or written:
        usage |= {"cacheReadInputTokens": read, "cacheWriteInputTokens": written}
    if written:
        usage["cacheDetails"] = [{"ttl": (body.get(KINDS) or {}).get("cache_ttl", "5m"), "inputTokens": written}]
    return usage


def tool_use(body: dict[str, Any]) -> dict[str, Any] | None:
    """A model calling a tool through Converse: the chosen tool (or the first) with input from its
    schema, unless no tools are given or the last turn carries a tool's result."""
    config = body.get("toolConfig") or {}
    specs = [t["toolSpec"] for t in config.get("tools") or []]
    last = body["messages"][-1]["content"]
    if not specs or any("toolResult" in block for block in last):
        return None
    named = (config.get("toolChoice") or {}).get("tool", {}).get("name")
    spec = next((s for s in specs if s["name"] == named), specs[0])
    return {"toolUseId": f"tooluse_wire{len(body['messages'])}", "name": spec["name"],
            "input": example(spec["inputSchema"]["json"])}  # fmt: skip


def _answer(body: dict[str, Any]) -> str:
    results = [b["toolResult"] for b in body["messages"][-1]["content"] if "toolResult" in b]
    return f"The tool said: {results[0]['content'][0]['text']}" if results else "".join(ANSWER_TOKENS)


def completion(body: dict[str, Any]) -> dict[str, Any]:
    use = tool_use(body)
    content = [{"toolUse": use}] if use else [{"text": _answer(body)}]
    message = {"role": "assistant", "content": content}
    usage, metrics = _usage(body), {"latencyMs": 3}
    stop = "tool_use" if use else "end_turn"
    return {"output": {"message": message}, "stopReason": stop, "usage": usage, "metrics": metrics}


def stream_events(body: dict[str, Any]) -> list[tuple[str | None, dict[str, Any]]]:
    events: list[tuple[str | None, dict[str, Any]]] = [("messageStart", {"role": "assistant"})]
    if (use := tool_use(body)) is not None:  # the block's start, then its input as JSON in pieces
        text = json.dumps(use["input"])
        start = {"toolUse": {"toolUseId": use["toolUseId"], "name": use["name"]}}
        events.append(("contentBlockStart", {"contentBlockIndex": 0, "start": start}))
        events += [("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"toolUse": {"input": text[i : i + 8]}}})
                   for i in range(0, len(text), 8)]  # fmt: skip
        return [*events, ("contentBlockStop", {"contentBlockIndex": 0}), ("messageStop", {"stopReason": "tool_use"}),
                ("metadata", {"usage": _usage(body), "metrics": {"latencyMs": 3}})]  # fmt: skip
    if (answer := _answer(body)) != "".join(ANSWER_TOKENS):
        events.append(("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": answer}}))
        return [*events, ("contentBlockStop", {"contentBlockIndex": 0}), ("messageStop", {"stopReason": "end_turn"}),
                ("metadata", {"usage": _usage(body), "metrics": {"latencyMs": 3}})]  # fmt: skip
    for token in ANSWER_TOKENS:
        events.append(("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": token}}))
    events += [
        ("contentBlockStop", {"contentBlockIndex": 0}),
        ("messageStop", {"stopReason": "end_turn"}),
        ("metadata", {"usage": _usage(body), "metrics": {"latencyMs": 3}}),
    ]
    return events


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return struct.pack("B", len(raw_name)) + raw_name + b"\x07" + struct.pack(">H", len(raw_value)) + raw_value


def encode_event(name: str | None, data: dict[str, Any]) -> bytes:
    """One event-stream message: total length, headers length, prelude CRC, headers, payload, CRC."""
    headers = _header(":event-type", name or "") + _header(":content-type", "application/json")
    headers += _header(":message-type", "event")
    payload = json.dumps(data).encode()
    total = 12 + len(headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(headers))
    prelude += struct.pack(">I", binascii.crc32(prelude) & 0xFFFFFFFF)
    message = prelude + headers + payload
    return message + struct.pack(">I", binascii.crc32(message) & 0xFFFFFFFF)


def embedding(groups: dict[str, str], body: dict[str, Any]) -> dict[str, Any] | None:
    """InvokeModel of Amazon Titan Text Embeddings (None: a Converse call)."""
    if groups["method"] != "invoke":
        return None
    size = body.get("dimensions") or EMBEDDING_DIMENSIONS
    return {"embedding": vector(body["inputText"], size), "inputTextTokenCount": len(body["inputText"].split())}


def error_body(status: int, message: str) -> dict[str, Any]:
    return {"message": message}


def error_headers(status: int) -> dict[str, str]:
    kind = _ERROR_TYPES.get(status, "InternalServerException")
    return {"x-amzn-ErrorType": f"{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"}


def models_body(ids: list[str]) -> dict[str, Any]:
    return {"modelSummaries": [{"modelId": i} for i in ids]}


def sent(body: dict[str, Any]) -> dict[str, Any]:
    """The request in the terms the contract tests compare."""
    config = body.get("inferenceConfig") or {}
    return {
        "model": body["model"],
        "max_tokens": config.get("maxTokens"),
        "system": "".join(block.get("text", "") for block in body.get("system", [])),
        "logprobs": None,
        "seed": None,
        "json": False,
        "schema": None,
    }


def key_rejected(protocol: str, message: str) -> tuple[int, dict[str, Any]]:
    """An unknown access key: 403 UnrecognizedClientException, as AWS answers."""
    return 403, {"message": f"The security token included in the request is invalid. {message}"}
