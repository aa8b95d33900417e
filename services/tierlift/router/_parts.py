"""Every string of a request that can reach a provider, for the classifier to read.

The data-class limit holds only if nothing reaches a provider unread. So the parts are not
listed by hand: the request's messages and generation parameters are walked field by field (by
protobuf reflection), and every string found is a part, wherever it is (content parts, names,
stop strings, tools, tool calls, and any field added to these protos later). Texts that are JSON
for the provider (a JSON Schema, a tool's parameters, a tool call's arguments) are decoded and
each key and value read apart, as the provider will see them: an escape such as \\u0030 or a
number split across keys hides nothing. The messages' own `content` travels as the messages."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message as ProtoMessage

from tierlift.v1 import classifier_pb2, router_pb2

# fields whose text the provider parses as JSON
JSON_FIELDS = frozenset({"json_schema", "parameters", "arguments"})
# a data URL's payload is an image, not text: its media type is read, its bytes are not
_DATA_URL = "data:"


def provider_bound_parts(request: router_pb2.CompleteRequest) -> list[classifier_pb2.Part]:
    parts = [p for i, m in enumerate(request.messages) for p in _walk(m, f"messages[{i}]") if not _is_content(p.field)]
    parts += _walk(request.params, "params")
    return parts


def _is_content(field: str) -> bool:
    return field.endswith("].content") and field.count(".") == 1  # messages[i].content, not a part's


def _walk(message: ProtoMessage, path: str) -> Iterator[classifier_pb2.Part]:
    for field, value in message.ListFields():
        where = f"{path}.{field.name}"
        values = list(value) if field.is_repeated else [value]
        for i, item in enumerate(values):
            at = f"{where}[{i}]" if field.is_repeated else where
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                yield from _walk(item, at)
            elif field.type == FieldDescriptor.TYPE_STRING and item:
                yield from _strings(field.name, at, item)


def _strings(name: str, at: str, text: str) -> Iterator[classifier_pb2.Part]:
    if name == "image_url" and text.startswith(_DATA_URL):
        yield classifier_pb2.Part(field=at, text=text.split(",", 1)[0])
        return
    if name in JSON_FIELDS:
        try:
            decoded = json.loads(text)
        except ValueError:  # not JSON: read as it is (validation refuses it where JSON is required)
            pass
        else:
            for leaf_at, leaf in _json_leaves(decoded, at):
                yield classifier_pb2.Part(field=leaf_at, text=leaf)
            return
    yield classifier_pb2.Part(field=at, text=text)


def _json_leaves(value: Any, at: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield f"{at}.{key}", str(key)
            yield from _json_leaves(item, f"{at}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _json_leaves(item, f"{at}[{i}]")
    elif value is not None and not isinstance(value, bool):
        yield at, str(value)
