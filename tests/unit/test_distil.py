"""`python -m tierlift.classifier.distil` redoes the static model exactly when what it was made
with changed (an upgrade of model2vec, transformers, torch or the MiniLM wheel)."""

import json
import sys
from pathlib import Path

import pytest

from tierlift.classifier import distil


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
