"""Edits to a YAML file a person wrote (a policy), its comments and layout kept: ruamel.yaml's
round trip, and a `put` that keeps each comment where it was written. Round-tripped YAML hangs a
comment on the end of the entry above it, so an entry replaced or added at the end of a block
would otherwise carry off (or slip under) the comment written above the next key."""

from __future__ import annotations

import io
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

_ROUND_TRIP = YAML()
_ROUND_TRIP.width = 4096  # long strings stay on one line, as written


def load(text: str) -> Any:
    return _ROUND_TRIP.load(text)


def dumped(document: Any) -> str:
    out = io.StringIO()
    _ROUND_TRIP.dump(document, out)
    return out.getvalue()


def put(mapping: Any, key: str, value: Any) -> None:
    """mapping[key] = value (a dict as a block). The comment at the end of the entry replaced, or
    of the last entry when `key` is added after it, moves to the end of the new entry."""
    anchor = key if key in mapping else (list(mapping)[-1] if mapping else None)
    trailing = _take_trailing(mapping, anchor) if anchor is not None else None
    mapping[key] = CommentedMap(value) if isinstance(value, dict) else value
    if trailing is not None:
        _slots(*_end_of(mapping, key))[2] = trailing


def block_map(mapping: Any, key: str) -> Any:
    """mapping[key], a mapping written as a block: a missing or empty one (`workloads: {}`) is
    made a block of its own, so what is added reads like the rest of the file."""
    value = mapping.get(key)
    if not isinstance(value, CommentedMap) or not value:
        put(mapping, key, {})
        value = mapping[key]
    return value


def _end_of(mapping: Any, key: str) -> tuple[Any, str]:
    """The (mapping, key) whose comment slot ends the entry at `key`: nested blocks end with their
    last entry."""
    value = mapping[key]
    while isinstance(value, CommentedMap) and value:
        mapping, key = value, list(value)[-1]
        value = mapping[key]
    return mapping, key


def _slots(mapping: Any, key: str) -> list[Any]:
    slots = mapping.ca.items.setdefault(key, [None, None, None, None])
    while len(slots) < 4:
        slots.append(None)
    return slots


def _take_trailing(mapping: Any, key: str) -> Any:
    owner, last = _end_of(mapping, key)
    slots = owner.ca.items.get(last)
    if not slots or len(slots) < 3 or slots[2] is None:
        return None
    token, slots[2] = slots[2], None
    return token
