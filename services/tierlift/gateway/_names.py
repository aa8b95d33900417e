"""A field as the caller of the HTTP edge named it, in an error the router raised. The router
names a field as its own request holds it (`params.temperature`, `messages[0].parts[1]`,
`inputs[2]`, `cohort_key`, `constraints.max_cost_usd`); a caller sent `temperature`,
`messages[0].content[1]`, `input[2]`, `user` or the header `x-tierlift-max-cost-usd`. Messages
are renamed on the chat route only, where each message the caller sent is one message of the
router's; elsewhere (a system prompt or a tool result becomes a message of its own) the router's
index would not be the caller's, and the name is left as the router's."""

from __future__ import annotations

import re

_HEADERS = [  # constraints and the tenant, from the x-tierlift-* headers (or the body's metadata)
    (re.compile(r"^constraints\.(\w+)"), lambda m: "x-tierlift-" + m[1].replace("_", "-")),
    (re.compile(r"^(tenant|workload)$"), lambda m: f"x-tierlift-{m[1]}"),
]
_PARAMS = [(re.compile(r"^params\.(.+)"), lambda m: m[1])]

RULES = {
    "/v1/chat/completions": [
        (re.compile(r"^params\.json_schema"), lambda m: "response_format.json_schema"),
        *_PARAMS,
        (re.compile(r"^messages\[(\d+)\]\.parts\[(\d+)\]"), lambda m: f"messages[{m[1]}].content[{m[2]}]"),
        (re.compile(r"^cohort_key$"), lambda m: "user"),
        *_HEADERS,
    ],
    "/v1/messages": [
        (re.compile(r"^params\.stop"), lambda m: "stop_sequences"),
        *_PARAMS,
        (re.compile(r"^cohort_key$"), lambda m: "metadata.user_id"),
        *_HEADERS,
    ],
    "/v1/responses": [
        (re.compile(r"^params\.max_tokens"), lambda m: "max_output_tokens"),
        (re.compile(r"^params\.json_schema"), lambda m: "text.format"),
        *_PARAMS,
        (re.compile(r"^cohort_key$"), lambda m: "user"),
        *_HEADERS,
    ],
    "/v1/embeddings": [(re.compile(r"^inputs"), lambda m: "input"), *_HEADERS],
}


def callers_terms(path: str, details: str) -> str:
    """`details` ("<field>: <what is wrong>") with its field as the caller of `path` named it."""
    field, colon, rest = details.partition(":")
    if not colon or " " in field:
        return details
    for pattern, name in RULES.get(path, ()):
        if match := pattern.match(field):
            return name(match) + field[match.end() :] + colon + rest
    return details
