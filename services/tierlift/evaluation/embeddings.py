"""MiniLM embeddings of many prompts, cached on disk by the prompt's fingerprint, for evaluating
the learned router by embedding (`tierlift eval-routing --grouped`: embedding ~11,000 routing
prompts takes minutes on two cores; a second run takes seconds). The classifier's own static
embeddings need no cache."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from tierlift.evaluation.data import fingerprint

CACHE = Path(".tierlift/cache/embeddings.npz")


class CachedEmbedder:
    def __init__(self, cache: Path = CACHE) -> None:
        from tierlift.classifier._embedder import MiniLM

        self._new_embedder = MiniLM
        self._embedder: MiniLM | None = None
        self.cache = cache
        self._vectors: dict[int, NDArray[np.float32]] = {}
        if cache.exists():
            with np.load(cache) as data:
                self._vectors = dict(zip(data["keys"].tolist(), data["vectors"], strict=True))

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        keys = [fingerprint(t) for t in texts]
        missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in self._vectors}.items())
        if missing:
            self._embedder = self._embedder or self._new_embedder()
            started = time.monotonic()
            vectors = self._embedder.embed_many([t for _, t in missing])
            print(f"  embedded {len(missing)} prompts in {time.monotonic() - started:.0f} s")
            self._vectors.update(zip([k for k, _ in missing], vectors, strict=True))
            self.cache.parent.mkdir(parents=True, exist_ok=True)
            keys_array = np.array(list(self._vectors), dtype=np.uint64)
            np.savez(self.cache, keys=keys_array, vectors=np.stack(list(self._vectors.values())))
        return np.stack([self._vectors[k] for k in keys])
