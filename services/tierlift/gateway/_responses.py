"""OpenAI's Responses API (`POST /v1/responses`), stateless, mapped onto the same Router calls as
chat completions: `instructions` and `input` (text, or message, function-call and function-call
output items) to messages, function tools, `tool_choice`, `max_output_tokens`, `text.format`;
answers as a `response` with `message` and `function_call` output items, plain or as the typed
stream events the SDKs read. Tierlift keeps no conversation state: `store: true`,
`previous_response_id` and `conversation` are refused by name, and an input that needs them
cannot be given. As on the chat path, a field Tierlift cannot honour is refused by name, never
dropped: `truncation` other than "disabled", `text.verbosity` other than "medium", an `include`
other than the encrypted reasoning stateless clients ask for (Tierlift returns no reasoning items).

Errors are OpenAI's schema, as on the chat-completions path."""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Iterator, Mapping
from typing import Any

from tierlift.core.limits import MAX_OUTPUT_TOKENS
from tierlift.gateway import _openai as oai
from tierlift.v1 import common_pb2, router_pb2

_KNOWN = {"model", "input", "instructions", "max_output_tokens", "temperature", "top_p", "tools", "tool_choice",
          "parallel_tool_calls", "stream", "store", "metadata", "user", "text", "previous_response_id",
          "conversation", "include", "truncation"}  # fmt: skip
_STATEFUL = ("previous_response_id", "conversation")
# what `include` may ask for: the encrypted reasoning of reasoning items, which Tierlift never
# returns (clients that keep their own state, `store: false`, ask for it on every call)
_INCLUDE = {"reasoning.encrypted_content"}
# the fields of each `text.format` type
_FORMAT_KEYS = {"text": {"type"}, "json_object": {"type"},
                "json_schema": {"type", "name", "schema", "strict", "description"}}  # fmt: skip
_ROLES = {"user": "user", "system": "system", "developer": "system", "assistant": "assistant"}
invalid = oai.invalid


def _content(content: Any, where: str, message: common_pb2.Message) -> None:
    if isinstance(content, str):
        message.content = content
        return
    if not isinstance(content, list):
        raise invalid(where, "must be a string or a list of content parts")
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text") and isinstance(part.get("text"), str):
            message.parts.add(type="text", text=part["text"])
        elif kind == "input_image" and isinstance(part.get("image_url"), str):
            detail = part.get("detail") or ""
            if not isinstance(detail, str):
                raise invalid(f"{where}[{i}].detail", "must be auto, low or high")
            message.parts.add(type="image_url", image_url=part["image_url"], detail=detail)
        else:
            raise invalid(f"{where}[{i}]", "must be an input_text, output_text or input_image part")
    if len(message.parts) == 1 and message.parts[0].type == "text":
        message.content = message.parts[0].text
        del message.parts[:]


def _input(raw: Any) -> list[common_pb2.Message]:
    if isinstance(raw, str):
        return [common_pb2.Message(role="user", content=raw)]
    if not isinstance(raw, list) or not raw:
        raise invalid("input", "must be text or a non-empty list of items")
    out: list[common_pb2.Message] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise invalid(f"input[{i}]", "must be an object")
        kind, role = item.get("type", "message"), item.get("role")
        if kind == "message":
            if not isinstance(role, str) or role not in _ROLES:  # a list is no role (nor a dict key)
                raise invalid(f"input[{i}].role", f"must be one of {sorted(_ROLES)}")
            message = common_pb2.Message(role=_ROLES[role])
            _content(item.get("content"), f"input[{i}].content", message)
            out.append(message)
        elif kind == "function_call":
            if not all(isinstance(item.get(k), str) for k in ("call_id", "name", "arguments")):
                raise invalid(f"input[{i}]", "a function_call has string call_id, name and arguments")
            call = common_pb2.ToolCall(id=item["call_id"], name=item["name"], arguments=item["arguments"])
            if out and out[-1].role == "assistant" and not out[-1].content and not out[-1].parts:
                out[-1].tool_calls.append(call)  # parallel calls: one assistant turn
            else:
                out.append(common_pb2.Message(role="assistant", tool_calls=[call]))
        elif kind == "function_call_output":
            output = item.get("output")
            if not isinstance(item.get("call_id"), str) or not isinstance(output, str):
                raise invalid(f"input[{i}]", "a function_call_output has a string call_id and output")
            out.append(common_pb2.Message(role="tool", tool_call_id=item["call_id"], content=output))
        else:
            raise invalid(f"input[{i}].type", "must be message, function_call or function_call_output")
    return out


def _tools(body: Mapping[str, Any], params: common_pb2.GenerationParams) -> None:
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise invalid("tools", "must be a list of function tools")
    for i, tool in enumerate(tools or []):
        if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(tool.get("name"), str):
            raise invalid(
                f"tools[{i}]", "must be a function tool: {'type': 'function', 'name': ..., 'parameters': ...}"
            )
        parameters, description = tool.get("parameters"), tool.get("description")
        if parameters is not None and not isinstance(parameters, dict):
            raise invalid(f"tools[{i}].parameters", "must be a JSON Schema object")
        if description is not None and not isinstance(description, str):
            raise invalid(f"tools[{i}].description", "must be a string")
        params.tools.add(name=tool["name"], description=description or "",
                         parameters=oai.json_text(parameters, f"tools[{i}].parameters") if parameters else "",
                         strict=oai.flag(tool.get("strict"), f"tools[{i}].strict"))  # fmt: skip
    choice = body.get("tool_choice")
    if isinstance(choice, str):
        params.tool_choice = choice
    elif isinstance(choice, dict) and choice.get("type") == "function" and isinstance(choice.get("name"), str):
        params.tool_choice = choice["name"]
    elif choice is not None:
        raise invalid("tool_choice", "must be auto, none, required or {'type': 'function', 'name': ...}")
    oai.parallel_then_check(body, params)


def _text(text: Any, params: common_pb2.GenerationParams) -> None:
    """`text`: its `format`, and `verbosity` at its default (Tierlift cannot ask a model to say
    more or less); another key is refused, never dropped."""
    if text is None:
        return
    if not isinstance(text, dict):
        raise invalid("text", "must be an object: {'format': {...}}")
    for key, value in text.items():
        if key not in ("format", "verbosity") and value is not None:
            raise invalid(f"text.{key}", "is not supported by Tierlift")
    if text.get("verbosity") not in (None, "medium"):
        raise invalid("text.verbosity", "only 'medium' is supported")
    if text.get("format") is not None:
        _format(text["format"], params)


def _format(fmt: Any, params: common_pb2.GenerationParams) -> None:
    """`text.format`: text, json_object, or json_schema (name, schema, strict, description)."""
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if not isinstance(kind, str) or kind not in _FORMAT_KEYS:
        raise invalid("text.format", "must be {'type': 'text' | 'json_object' | 'json_schema', ...}")
    if unknown := sorted(set(fmt) - _FORMAT_KEYS[kind]):
        raise invalid(f"text.format.{unknown[0]}", f"is not a field of a {kind} format")
    if kind != "json_schema":
        params.response_format = kind
        return
    oai.json_schema_format({k: v for k, v in fmt.items() if k != "type"}, params, "text.format")


def _options(body: Mapping[str, Any]) -> bool:
    """What a stateless Tierlift can honour of `store`, `include` and `truncation`; then `stream`."""
    if oai.flag(body.get("store"), "store"):
        raise invalid("store", "Tierlift keeps no conversation state: send the whole input each time")
    include = body.get("include")
    if include is not None and not isinstance(include, list):
        raise invalid("include", "must be a list")
    for i, wanted in enumerate(include or []):
        if not isinstance(wanted, str) or wanted not in _INCLUDE:
            raise invalid(f"include[{i}]", f"Tierlift can include only {sorted(_INCLUDE)}")
    if body.get("truncation") not in (None, "disabled"):
        raise invalid("truncation", "only 'disabled' is supported: Tierlift does not drop input to fit")
    return oai.flag(body.get("stream"), "stream")


def to_request(
    body: Any, headers: Mapping[str, str], catalog_models: Collection[str] = ()
) -> tuple[router_pb2.CompleteRequest, bool]:
    """(the request, stream?)"""
    body = oai.checked_body(body, _KNOWN)
    for name in _STATEFUL:
        if body.get(name) is not None:
            raise invalid(name, "Tierlift keeps no conversation state: send the whole input each time")
    stream = _options(body)
    model = oai.known_model(body.get("model"), catalog_models)
    params = common_pb2.GenerationParams()
    limit = body.get("max_output_tokens")
    if limit is not None:
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_OUTPUT_TOKENS:
            raise invalid("max_output_tokens", f"must be an integer from 1 to {MAX_OUTPUT_TOKENS}")
        params.max_tokens = limit
    for name in ("temperature", "top_p"):
        if (value := oai.number(body.get(name), name)) is not None:
            setattr(params, name, value)
    _text(body.get("text"), params)
    _tools(body, params)
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise invalid("instructions", "must be a string")
    system = [common_pb2.Message(role="system", content=instructions)] if instructions else []
    meta = oai.metadata(body.get("metadata"))
    request = router_pb2.CompleteRequest(
        tenant=oai.header_or(meta, headers, "tenant"),
        workload=oai.header_or(meta, headers, "workload") or "default",
        messages=[*system, *_input(body.get("input"))],
        params=params,
        idempotency_key=headers.get("idempotency-key") or oai.header_or(meta, headers, "idempotency-key"),
        cohort_key=oai.cohort(body.get("user"), oai.header_or(meta, headers, "cohort")),
    )
    oai.constraints(request.constraints, meta, headers, model)
    return request, stream


def _items(reply: router_pb2.CompleteResponse) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    if reply.text or not reply.tool_calls:
        text = {"type": "output_text", "text": reply.text, "annotations": [], "logprobs": []}
        items.append({"type": "message", "id": f"msg_{reply.request_id}", "status": "completed",
                      "role": "assistant", "content": [text]})  # fmt: skip
    for call in reply.tool_calls:
        items.append({"type": "function_call", "id": f"fc_{call.id}", "call_id": call.id, "name": call.name,
                      "arguments": call.arguments, "status": "completed"})  # fmt: skip
    return items


def response(reply: router_pb2.CompleteResponse, request: router_pb2.CompleteRequest,
             status: str = "completed") -> dict[str, Any]:  # fmt: skip
    usage = reply.usage
    tools = [{"type": "function", "name": t.name, "description": t.description, "strict": t.strict,
              "parameters": json.loads(t.parameters) if t.parameters else None}
             for t in request.params.tools]  # fmt: skip
    return {
        "id": f"resp_{reply.request_id}", "object": "response", "created_at": int(time.time()), "status": status,
        "model": reply.model, "output": _items(reply) if status == "completed" else [],
        "parallel_tool_calls": not request.params.HasField("parallel_tool_calls") or request.params.parallel_tool_calls,
        "tool_choice": request.params.tool_choice or "auto", "tools": tools, "error": None,
        "incomplete_details": None, "instructions": None, "metadata": {}, "store": False,
        "temperature": request.params.temperature, "top_p": request.params.top_p or 1.0,
        "usage": {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
                  "total_tokens": usage.input_tokens + usage.output_tokens,
                  "input_tokens_details": {"cached_tokens": usage.cache_read_input_tokens},
                  "output_tokens_details": {"reasoning_tokens": usage.reasoning_output_tokens}},
    }  # fmt: skip


class StreamEvents:
    """The typed events of a streamed response, numbered in order: created, then the text item's
    deltas as they come, then each function call, then completed."""

    def __init__(self, request: router_pb2.CompleteRequest) -> None:
        self.request = request
        self.sequence = 0
        self.text_open = False
        self.item_id = ""

    def _event(self, kind: str, **fields: Any) -> tuple[str, dict[str, Any]]:
        event = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return kind, event

    def started(self, request_id: str, model: str) -> Iterator[tuple[str, dict[str, Any]]]:
        shell = router_pb2.CompleteResponse(request_id=request_id, model=model)
        yield self._event("response.created", response=response(shell, self.request, "in_progress"))
        yield self._event("response.in_progress", response=response(shell, self.request, "in_progress"))

    def text(self, request_id: str, delta: str) -> Iterator[tuple[str, dict[str, Any]]]:
        if not self.text_open:
            self.text_open, self.item_id = True, f"msg_{request_id}"
            item = {"type": "message", "id": self.item_id, "status": "in_progress", "role": "assistant", "content": []}
            yield self._event("response.output_item.added", output_index=0, item=item)
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            yield self._event("response.content_part.added", item_id=self.item_id, output_index=0, content_index=0,
                              part=part)  # fmt: skip
        yield self._event("response.output_text.delta", item_id=self.item_id, output_index=0, content_index=0,
                          delta=delta, logprobs=[])  # fmt: skip

    def finished(self, reply: router_pb2.CompleteResponse) -> Iterator[tuple[str, dict[str, Any]]]:
        items = _items(reply)
        index = 0
        if self.text_open:
            done = {"type": "output_text", "text": reply.text, "annotations": [], "logprobs": []}
            yield self._event("response.output_text.done", item_id=self.item_id, output_index=0, content_index=0,
                              text=reply.text, logprobs=[])  # fmt: skip
            yield self._event("response.content_part.done", item_id=self.item_id, output_index=0, content_index=0,
                              part=done)  # fmt: skip
            yield self._event("response.output_item.done", output_index=0, item=items[0])
            index = 1
        for item in items[index:]:
            if item["type"] != "function_call":
                continue
            started = {**item, "arguments": "", "status": "in_progress"}
            yield self._event("response.output_item.added", output_index=index, item=started)
            yield self._event("response.function_call_arguments.delta", item_id=item["id"], output_index=index,
                              delta=item["arguments"])  # fmt: skip
            yield self._event("response.function_call_arguments.done", item_id=item["id"], output_index=index,
                              name=item["name"], arguments=item["arguments"])  # fmt: skip
            yield self._event("response.output_item.done", output_index=index, item=item)
            index += 1
        yield self._event("response.completed", response=response(reply, self.request))
