"""Loading labelled files, and the train/held-out split they share.

A prompt is in the training part when a hash of its text says so (70%), so the split is the
same on every machine and for every tool. The training script also records a fingerprint of
every prompt it trained on; evaluation skips those, so a score is never measured on rows a
head has seen, whichever files it is given.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TRAINED_FINGERPRINTS = Path(__file__).parent.parent / "classifier" / "model" / "trained_prompts.npy"


def fingerprint(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def in_training_part(text: str) -> bool:
    return fingerprint(text) % 10 < 7


def trained_fingerprints() -> set[int]:
    if not TRAINED_FINGERPRINTS.exists():
        return set()
    return {int(v) for v in np.load(TRAINED_FINGERPRINTS)}


def save_trained_fingerprints(texts: Iterable[str]) -> None:
    values = np.array(sorted({fingerprint(t) for t in texts}), dtype=np.uint64)
    np.save(TRAINED_FINGERPRINTS, values)


def files(path: Path, suffix: str) -> list[Path]:
    """`path` itself, or every `*suffix` file under it."""
    if path.is_dir():
        found = sorted(path.rglob(f"*{suffix}"))
        if not found:
            raise FileNotFoundError(f"{path}: no {suffix} files")
        return found
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    return [path]


@dataclass(frozen=True)
class Outcome:
    """One prompt answered by a weak and a strong model."""

    prompt: str
    weak_correct: bool
    strong_correct: bool
    source: str
    group: str = ""  # the subject where the file names one (MMLU), else the source: for grouped evaluation


def _bool(value: str, where: str) -> bool:
    if value.strip().lower() in ("true", "1"):
        return True
    if value.strip().lower() in ("false", "0"):
        return False
    raise ValueError(f"{where}: expected True or False, got {value!r}")


def load_outcomes(path: Path) -> list[Outcome]:
    """Rows of every routing CSV at `path` (columns prompt, weak_correct, strong_correct)."""
    rows = []
    for file in files(path, ".csv"):
        with file.open(newline="") as f:
            reader = csv.DictReader(f)
            missing = {"prompt", "weak_correct", "strong_correct"} - set(reader.fieldnames or ())
            if missing:
                raise ValueError(f"{file}: missing columns {sorted(missing)}")
            for n, row in enumerate(reader, start=2):
                where = f"{file}:{n}"
                weak, strong = _bool(row["weak_correct"], where), _bool(row["strong_correct"], where)
                rows.append(Outcome(row["prompt"], weak, strong, file.stem, row.get("subject") or file.stem))
    return rows


@dataclass(frozen=True)
class Task:
    """One question with its ground truth: exact answers, or options scored 1 (right) / 0."""

    input: str
    targets: tuple[str, ...]
    options: dict[str, float]
    source: str


def load_tasks(path: Path) -> list[Task]:
    tasks = []
    for file in files(path, ".jsonl"):
        for n, line in enumerate(file.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            row = json.loads(line)
            target = row.get("target", [])
            targets = tuple(str(t) for t in (target if isinstance(target, list) else [target]))
            options = {str(k): float(v) for k, v in (row.get("target_scores") or {}).items()}
            if "input" not in row or not (targets or options):
                raise ValueError(f"{file}:{n}: needs input and target or target_scores")
            tasks.append(Task(row["input"], targets, options, file.stem))
    return tasks


def held_out(items: Iterable[str]) -> Iterator[bool]:
    """For each prompt: True when no head was trained on it."""
    seen = trained_fingerprints()
    for text in items:
        yield fingerprint(text) not in seen
