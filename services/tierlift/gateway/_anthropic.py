"""Anthropic's Messages API (`POST /v1/messages`), mapped onto the same Router calls as the
OpenAI edge, so apps written against the `anthropic` SDK switch by base URL: the request's
system prompt, text and tool-use blocks, tools and tool choice to a `CompleteRequest`; answers to
a `message` with text and `tool_use` blocks, plain or as the SDK's streamed events; errors in
Anthropic's schema. `model` is one of the OpenAI edge's virtual models or a catalog model.

A field the router cannot honour is refused with a 400 naming it, never dropped."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any

from tierlift.core import pricing
from tierlift.core.limits import MAX_OUTPUT_TOKENS, check_tools
from tierlift.gateway import _openai as oai
from tierlift.v1 import common_pb2, router_pb2

_KNOWN = {"model", "max_tokens", "messages", "system", "stop_sequences", "temperature", "top_p", "stream",
          "tools", "tool_choice", "metadata"}  # fmt: skip
_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}
# gRPC status -> Anthropic's error type (the HTTP status is the OpenAI edge's)
_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 409: "invalid_request_error", 413: "request_too_large",
                422: "invalid_request_error", 429: "rate_limit_error", 503: "overloaded_error",
                504: "api_error"}  # fmt: skip


class AnthropicError(Exception):
    def __init__(self, status: int, message: str, retry_after: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.retry_after = status, message, retry_after

    def body(self) -> dict[str, Any]:
        return {"type": "error", "error": {"type": _ERROR_TYPES.get(self.status, "api_error"), "message": self.message}}


def invalid(field: str, problem: str) -> AnthropicError:
    return AnthropicError(400, f"{field}: {problem}")


def from_openai(error: oai.OpenAIError) -> AnthropicError:
    return AnthropicError(error.status, error.message, error.retry_after)


def _blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list) or not all(isinstance(b, dict) for b in content):
        raise invalid(where, "must be a string or a list of content blocks")
    return content


def _messages(raw: Any) -> list[common_pb2.Message]:
    """Anthropic's turns to Tierlift's messages: a user turn's tool_result blocks become tool
    messages (one per result, before the turn's text); an assistant turn's tool_use blocks its
    tool calls."""
    if not isinstance(raw, list) or not raw:
        raise invalid("messages", "must be a non-empty list")
    out: list[common_pb2.Message] = []
    for i, turn in enumerate(raw):
        if not isinstance(turn, dict) or turn.get("role") not in ("user", "assistant"):
            raise invalid(f"messages.{i}.role", "must be user or assistant")
        message = common_pb2.Message(role=turn["role"])
        for j, block in enumerate(_blocks(turn.get("content"), f"messages.{i}.content")):
            where, kind = f"messages.{i}.content.{j}", block.get("type")
            if kind == "text":
                message.parts.add(type="text", text=_text(block, where))
            elif kind == "tool_use" and turn["role"] == "assistant":
                if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
                    raise invalid(where, "a tool_use block has a string id and name")
                message.tool_calls.add(id=block["id"], name=block["name"], arguments=_input(block, where))
            elif kind == "tool_result" and turn["role"] == "user":
                texts = _texts(block.get("content", ""), f"{where}.content")
                if not isinstance(block.get("tool_use_id"), str):
                    raise invalid(f"{where}.tool_use_id", "must be a string")
                out.append(common_pb2.Message(role="tool", tool_call_id=block["tool_use_id"], content="\n".join(texts)))
            else:
                raise invalid(f"{where}.type", "must be text, tool_use (assistant) or tool_result (user)")
        if len(message.parts) == 1:  # one text block: plain content, as the OpenAI edge sends it
            message.content = message.parts[0].text
            del message.parts[:]
        if message.parts or message.content or message.tool_calls:
            out.append(message)
    return out


def _text(block: Mapping[str, Any], where: str) -> str:
    if not isinstance(block.get("text"), str):
        raise invalid(f"{where}.text", "must be a string")
    return str(block["text"])


def _texts(content: Any, where: str) -> list[str]:
    """A system prompt's or a tool result's texts: text blocks only (Tierlift passes both on as
    text), so another block, an image in a tool result, is refused rather than dropped."""
    texts = []
    for k, block in enumerate(_blocks(content, where)):
        if block.get("type") != "text":
            raise invalid(f"{where}.{k}.type", "must be text")
        texts.append(_text(block, f"{where}.{k}"))
    return texts


def _input(block: Mapping[str, Any], where: str) -> str:
    """A tool_use block's `input`, an object, as the call's JSON arguments (NaN is no JSON)."""
    arguments = block.get("input")
    if arguments is not None and not isinstance(arguments, dict):
        raise invalid(f"{where}.input", "must be an object")
    return oai.json_text(arguments or {}, f"{where}.input")


def _system(system: Any) -> list[common_pb2.Message]:
    if system is None:
        return []
    texts = _texts(system, "system")
    return [common_pb2.Message(role="system", content="\n\n".join(texts))] if any(texts) else []


def _tools(body: Mapping[str, Any], params: common_pb2.GenerationParams) -> None:
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise invalid("tools", "must be a list of tools")
    for i, tool in enumerate(tools or []):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise invalid(f"tools.{i}", "must be {'name': ..., 'description': ..., 'input_schema': {...}}")
        if tool.get("type") not in (None, "custom"):  # a server tool (bash, web_search) is no function to call
            raise invalid(f"tools.{i}.type", "must be custom: Tierlift passes on client tools only")
        schema, description = tool.get("input_schema"), tool.get("description")
        if schema is not None and not isinstance(schema, dict):
            raise invalid(f"tools.{i}.input_schema", "must be a JSON Schema object")
        if description is not None and not isinstance(description, str):
            raise invalid(f"tools.{i}.description", "must be a string")
        params.tools.add(name=tool["name"], description=description or "",
                         parameters=oai.json_text(schema, f"tools.{i}.input_schema") if schema else "")  # fmt: skip
    choice = body.get("tool_choice")
    if choice is not None:
        kind = choice.get("type") if isinstance(choice, dict) else None
        if kind not in ("auto", "any", "tool", "none") or (kind == "tool" and not isinstance(choice.get("name"), str)):
            raise invalid("tool_choice", "must be {'type': 'auto' | 'any' | 'none'} or {'type': 'tool', 'name': ...}")
        params.tool_choice = str(choice["name"] if kind == "tool" else {"any": "required"}.get(str(kind), kind))
        if oai.flag(choice.get("disable_parallel_tool_use"), "tool_choice.disable_parallel_tool_use"):
            params.parallel_tool_calls = False
    if problem := check_tools(params):
        raise invalid(problem[0].removeprefix("params."), problem[1])


def _cohort(metadata: Any) -> str:
    """`metadata.user_id`, the one key of Anthropic's metadata: one user stays in one arm of a
    rollout (as the OpenAI edge's `user`). Another key is refused, never dropped."""
    if metadata is None:
        return ""
    if not isinstance(metadata, dict):
        raise invalid("metadata", "must be an object: {'user_id': ...}")
    for key, value in metadata.items():
        if key != "user_id" and value is not None:
            raise invalid(f"metadata.{key}", "is not supported by Tierlift: user_id is")
    user = metadata.get("user_id")
    if user is not None and (not isinstance(user, str) or len(user) > oai.MAX_COHORT):
        raise invalid("metadata.user_id", f"must be a string of at most {oai.MAX_COHORT} characters")
    return user or ""


def to_request(
    body: Any, headers: Mapping[str, str], catalog_models: Collection[str] = ()
) -> tuple[router_pb2.CompleteRequest, bool]:
    """(the request, stream?). The checks shared with the OpenAI edge raise its error, which goes
    back in Anthropic's schema (the handler answers AnthropicError only)."""
    try:
        return _request(oai.checked_body(body, _KNOWN), headers, catalog_models)
    except oai.OpenAIError as exc:
        raise from_openai(exc) from None


def _request(
    body: Mapping[str, Any], headers: Mapping[str, str], catalog_models: Collection[str]
) -> tuple[router_pb2.CompleteRequest, bool]:
    model = oai.known_model(body.get("model"), catalog_models)
    limit = body.get("max_tokens")
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_OUTPUT_TOKENS:
        raise invalid("max_tokens", f"must be an integer from 1 to {MAX_OUTPUT_TOKENS}")
    params = common_pb2.GenerationParams(max_tokens=limit)
    for name in ("temperature", "top_p"):
        if (value := oai.number(body.get(name), name)) is not None:
            setattr(params, name, value)
    stops = body.get("stop_sequences")
    if stops is not None and (not isinstance(stops, list) or not all(isinstance(s, str) for s in stops)):
        raise invalid("stop_sequences", "must be a list of strings")
    params.stop.extend(stops or [])
    _tools(body, params)
    request = router_pb2.CompleteRequest(
        tenant=headers.get("x-tierlift-tenant", ""),
        workload=headers.get("x-tierlift-workload") or "default",
        messages=[*_system(body.get("system")), *_messages(body.get("messages"))],
        params=params,
        idempotency_key=headers.get("idempotency-key", ""),
        cohort_key=_cohort(body.get("metadata")),
    )
    oai.constraints(request.constraints, {}, headers, model)
    return request, oai.flag(body.get("stream"), "stream")


def _content(reply: router_pb2.CompleteResponse) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [{"type": "text", "text": reply.text}] if reply.text or not reply.tool_calls else []
    for call in reply.tool_calls:
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": json.loads(call.arguments)})
    return blocks


def _usage(reply: router_pb2.CompleteResponse) -> dict[str, Any]:
    """Anthropic's usage: its input_tokens leaves the cache reads and writes out, which ours counts."""
    kinds = pricing.split(reply.usage)
    written = kinds.cache_write_5m + kinds.cache_write_1h
    return {"input_tokens": reply.usage.input_tokens - kinds.cache_read - written,
            "output_tokens": reply.usage.output_tokens, "cache_read_input_tokens": kinds.cache_read,
            "cache_creation_input_tokens": written,
            "cache_creation": {"ephemeral_5m_input_tokens": kinds.cache_write_5m,
                               "ephemeral_1h_input_tokens": kinds.cache_write_1h}}  # fmt: skip


def message(reply: router_pb2.CompleteResponse) -> dict[str, Any]:
    return {"id": f"msg_{reply.request_id}", "type": "message", "role": "assistant", "model": reply.model,
            "content": _content(reply), "stop_reason": _STOP_REASONS.get(oai.finish_reason(reply), "end_turn"),
            "stop_sequence": None, "usage": _usage(reply)}  # fmt: skip


def message_start(request_id: str, model: str) -> dict[str, Any]:
    return {"type": "message_start", "message": {"id": f"msg_{request_id}", "type": "message", "role": "assistant",
                                                  "model": model, "content": [], "stop_reason": None,
                                                  "stop_sequence": None,
                                                  "usage": {"input_tokens": 0, "output_tokens": 0}}}  # fmt: skip


def closing_events(reply: router_pb2.CompleteResponse, text_open: bool) -> list[tuple[str, dict[str, Any]]]:
    """The events after the last text delta: the text block's end, each tool_use block (its input
    as one JSON delta), the stop reason with the usage, and the message's end."""
    events: list[tuple[str, dict[str, Any]]] = []
    index = 0
    if text_open:
        events.append(("content_block_stop", {"type": "content_block_stop", "index": 0}))
        index = 1
    for call in reply.tool_calls:
        start = {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
        delta = {"type": "input_json_delta", "partial_json": call.arguments}
        events += [("content_block_start", {"type": "content_block_start", "index": index, "content_block": start}),
                   ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}),
                   ("content_block_stop", {"type": "content_block_stop", "index": index})]  # fmt: skip
        index += 1
    stop = _STOP_REASONS.get(oai.finish_reason(reply), "end_turn")
    events.append(("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                                     "usage": _usage(reply)}))  # fmt: skip
    events.append(("message_stop", {"type": "message_stop"}))
    return events
