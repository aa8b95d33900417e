"""`python -m tierlift.classifier.distil` redoes the static model exactly when what it was made
with changed (an upgrade of model2vec, transformers, torch or the MiniLM wheel), and the model
shipped in the repository is what it makes. These need the `minilm` extra (`make test` installs it)."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from tierlift.classifier import distil
from tierlift.classifier._embedder import STATIC_MODEL, MiniLM
from tierlift.core.extras import MissingExtra


@pytest.fixture
def made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    calls: list[Path] = []
    monkeypatch.setattr(distil, "STATIC_MODEL", tmp_path / "static-minilm")
    monkeypatch.setattr(distil, "distil", lambda path=None: calls.append(distil.STATIC_MODEL))
    monkeypatch.setattr(sys, "argv", ["distil"])
    return calls


def test_a_missing_model_is_made(made: list[Path]) -> None:
    distil.main()
    assert len(made) == 1


def test_a_model_made_with_these_versions_is_kept(made: list[Path]) -> None:
    distil.STATIC_MODEL.mkdir()
    (distil.STATIC_MODEL / distil.SOURCE).write_text(json.dumps(distil._source()))
    distil.main()
    assert made == []


def test_a_model_made_with_other_versions_is_made_again(made: list[Path]) -> None:
    distil.STATIC_MODEL.mkdir()
    (distil.STATIC_MODEL / distil.SOURCE).write_text(json.dumps(distil._source() | {"transformers": "4.0.0"}))
    distil.main()
    assert len(made) == 1


def test_the_shipped_model_is_what_these_versions_distil(tmp_path: Path) -> None:
    """The trained heads fit the shipped vectors exactly; an upgrade that changes them fails here
    (then: `python -m tierlift.classifier.distil --force` and retrain the heads)."""
    from safetensors.numpy import load_file

    made = tmp_path / "static-minilm"
    distil.distil(made)
    # the same vectors to float16's step at 1.0: how a value near a rounding edge comes out of
    # the float32 kernels depends on the CPU (0.7% of the values move by up to 2^-10 between an AMD
    # and an Intel machine), where a new version of the model or the libraries moves them far more
    made_vectors = load_file(made / "model.safetensors")["embeddings"].astype(np.float32)
    shipped_vectors = load_file(STATIC_MODEL / "model.safetensors")["embeddings"].astype(np.float32)
    np.testing.assert_allclose(made_vectors, shipped_vectors, rtol=0, atol=2**-10)
    assert np.mean(made_vectors != shipped_vectors) < 0.01
    for name in ("tokenizer.json", "config.json", distil.SOURCE):
        assert (made / name).read_text() == (STATIC_MODEL / name).read_text(), name


def test_minilm_without_its_extra_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # as under `make run`'s install
    with pytest.raises(MissingExtra, match=r"pip install 'tierlift\[minilm\]'"):
        MiniLM()
