"""The learned part of the classifier: linear heads.

- task head: softmax over the nine task types;
- data head: softmax over the four data classes, a second opinion beside the detectors for
  sensitive data that has no fixed format ("my chemo starts Monday");
- routing head: P(a small model's answer is as good as a strong model's), trained on
  per-prompt outcomes of a weak and a strong model (data/routing), over the prompt's
  form (classifier/_prompt_form.py), not its embedding: it must hold on subjects it never saw.
  This is the prior that places a request on the ladder; complexity = 1 - that probability.
  It abstains (no estimate: small_model_ok 0, the router's neutral start) on a prompt whose
  static embedding is farther from every centroid of its training prompts than the threshold
  in `model/routing_support.npz` (`RoutingSupport`; the threshold chosen by nested grouped
  cross-validation, `tierlift eval-routing --nested`).

The task and data heads read MiniLM sentence embeddings (plus length and digits).

The heads are plain arrays in `model/heads.npz`, written by `tools/train_classifier.py`, so
serving needs numpy and the embedding model, not the training library.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

HEADS_PATH = Path(__file__).parent / "model" / "heads.npz"
SUPPORT_PATH = Path(__file__).parent / "model" / "routing_support.npz"
HEADS = ("task", "data", "routing")
_DIGIT = re.compile(r"\d")


def extra_features(text: str) -> NDArray[np.float32]:
    """Cheap features the embedding loses: length (embeddings see only 128 tokens) and digits."""
    length = len(text)
    digits = len(_DIGIT.findall(text))
    return np.array([math.log1p(length) / 10, digits / max(1, length)], dtype=np.float32)


def features(text: str, embedding: NDArray[np.float32]) -> NDArray[np.float32]:
    return np.concatenate([embedding, extra_features(text)])


@dataclass(frozen=True)
class LinearHead:
    labels: tuple[str, ...]
    weights: NDArray[np.float64]  # (features, classes), or (features, 1) for a binary head
    bias: NDArray[np.float64]

    def probabilities(self, x: NDArray[np.float32]) -> NDArray[np.float64]:
        """Rows of class probabilities, in the order of `labels`."""
        logits = np.atleast_2d(x) @ self.weights + self.bias
        if logits.shape[1] == 1:  # binary: labels[1] is the positive class
            p = 1 / (1 + np.exp(-logits[:, 0]))
            return np.stack([1 - p, p], axis=1)
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)


def save_heads(heads: dict[str, LinearHead], path: Path = HEADS_PATH) -> None:
    arrays: dict[str, NDArray[np.generic]] = {}
    for name, head in heads.items():
        arrays[f"{name}_labels"] = np.array(head.labels)
        arrays[f"{name}_weights"] = head.weights
        arrays[f"{name}_bias"] = head.bias
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)  # type: ignore[arg-type]  # numpy stubs type **kwds wrongly


def load_heads(path: Path = HEADS_PATH) -> dict[str, LinearHead]:
    if not path.exists():
        raise FileNotFoundError(f"{path}: classifier heads missing; run `python -m tools.train_classifier`")
    with np.load(path, allow_pickle=False) as data:
        return {
            name: LinearHead(
                labels=tuple(str(v) for v in data[f"{name}_labels"]),
                weights=data[f"{name}_weights"],
                bias=data[f"{name}_bias"],
            )
            for name in HEADS
        }


@dataclass(frozen=True)
class RoutingSupport:
    """Where the routing head was trained: k-means centroids of its training prompts' unit static
    embeddings, and the cosine distance to the nearest centroid beyond which it abstains. About
    200 x 384 multiply-adds per prompt."""

    centroids: NDArray[np.float32]  # (k, dimensions), unit rows
    max_distance: float
    chosen: str = ""  # how the threshold was chosen, for the model card

    def distances(self, embeddings: NDArray[np.float32]) -> NDArray[np.float32]:
        """1 - the cosine similarity to the nearest centroid, per row (1 for a zero embedding)."""
        if not len(embeddings):
            return np.zeros(0, dtype=np.float32)
        return np.asarray(1 - (np.atleast_2d(embeddings) @ self.centroids.T).max(axis=1), dtype=np.float32)

    def abstains(self, embeddings: NDArray[np.float32]) -> NDArray[np.bool_]:
        return self.distances(embeddings) > self.max_distance


def save_support(support: RoutingSupport, path: Path = SUPPORT_PATH) -> None:
    np.savez_compressed(
        path,
        centroids=support.centroids.astype(np.float32),
        max_distance=np.array(support.max_distance),
        chosen=np.array(support.chosen),
    )


def load_support(path: Path = SUPPORT_PATH) -> RoutingSupport | None:
    """None when the file is missing: the routing head then never abstains."""
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as data:
        return RoutingSupport(
            centroids=np.asarray(data["centroids"], dtype=np.float32),
            max_distance=float(data["max_distance"]),
            chosen=str(data["chosen"]),
        )
