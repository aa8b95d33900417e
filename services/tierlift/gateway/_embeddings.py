"""OpenAI's `POST /v1/embeddings` on Router.Embed: the request as the router takes it, checked
field by field as a chat completion's (gateway/_openai.py), and the vectors as OpenAI's list
(float, or base64 of little-endian float32 as the SDKs read it)."""

from __future__ import annotations

import base64
import struct
from collections.abc import Collection, Mapping
from typing import Any

from tierlift.core.limits import MAX_EMBED_DIMENSIONS
from tierlift.gateway._openai import checked_body, cohort, constraints, header_or, invalid, known_model, metadata
from tierlift.v1 import router_pb2

_EMBED_KNOWN = {"model", "input", "encoding_format", "dimensions", "user", "metadata"}


def to_request(
    body: Any, headers: Mapping[str, str], catalog_models: Collection[str] = ()
) -> tuple[router_pb2.EmbedRequest, str]:
    """`POST /v1/embeddings` as Router.Embed: (the request, the encoding asked for)."""
    body = checked_body(body, _EMBED_KNOWN)
    model = known_model(body.get("model"), catalog_models)
    texts = body.get("input")
    texts = [texts] if isinstance(texts, str) else texts
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise invalid("input", "must be a string or a non-empty list of strings (token arrays are not taken)")
    encoding = body.get("encoding_format")
    encoding = "float" if encoding is None else encoding
    if encoding not in ("float", "base64"):
        raise invalid("encoding_format", "must be float or base64")
    dimensions = body.get("dimensions")  # 2^32 and more overflowed the proto's uint32: a 500
    if dimensions is not None and (
        not isinstance(dimensions, int) or isinstance(dimensions, bool) or not 1 <= dimensions <= MAX_EMBED_DIMENSIONS
    ):
        raise invalid("dimensions", f"must be an integer from 1 to {MAX_EMBED_DIMENSIONS}")
    cohort(body.get("user"), "")  # checked as chat's; an embedding has no rollout arm to keep the user in
    meta = metadata(body.get("metadata"))
    request = router_pb2.EmbedRequest(
        tenant=header_or(meta, headers, "tenant"),
        workload=header_or(meta, headers, "workload") or "default",
        inputs=texts,
        dimensions=dimensions or 0,
    )
    constraints(request.constraints, meta, headers, model)
    return request, encoding


def embeddings(reply: router_pb2.EmbedResponse, encoding: str) -> dict[str, Any]:
    """OpenAI's embeddings list; base64 is the vector's little-endian float32 bytes, as the SDKs read it."""

    def vector(values: Any) -> Any:
        if encoding == "base64":
            return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
        return list(values)

    data = [{"object": "embedding", "index": i, "embedding": vector(v.values)} for i, v in enumerate(reply.vectors)]
    tokens = reply.usage.input_tokens
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return {"object": "list", "data": data, "model": reply.model, "usage": usage}
