"""Azure OpenAI: the OpenAI chat-completions payloads at deployment-style paths,
/openai/deployments/<deployment>/chat/completions?api-version=..., keyed by an `api-key` header."""

from __future__ import annotations

from tests.wire.openai_format import STREAM_END, completion, error_body, models_body, sent, stream_events

__all__ = ["PATH", "STREAM_END", "completion", "error_body", "models_body", "sent", "stream_events"]

PATH = r"/openai/deployments/(?P<deployment>[^/]+)/chat/completions"
MODELS_PATH = "/openai/models"
