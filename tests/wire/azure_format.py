"""Azure OpenAI: the OpenAI chat-completions and embeddings payloads at deployment-style paths,
/openai/deployments/<deployment>/chat/completions?api-version=... (and .../embeddings), keyed by
an `api-key` header."""

from __future__ import annotations

from typing import Any

from tests.wire.openai_format import STREAM_END, completion, embeddings, error_body, models_body, sent, stream_events

__all__ = ["PATH", "STREAM_END", "completion", "embedding", "error_body", "models_body", "sent", "stream_events"]

PATH = r"/openai/deployments/(?P<deployment>[^/]+)/(?P<method>chat/completions|embeddings)"
MODELS_PATH = "/openai/models"


def embedding(groups: dict[str, str], body: dict[str, Any]) -> dict[str, Any] | None:
    """The deployment's embeddings (None: a chat completion)."""
    return embeddings(body) if groups["method"] == "embeddings" else None
