"""Accuracy of the classifier's task type and data class on labelled rows, with confusion
matrices, and the recall of REGULATED (a missed regulated prompt is a data leak)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tierlift.classifier import Classifier
from tierlift.evaluation.data import files, held_out
from tierlift.v1 import classifier_pb2, common_pb2


def load_labelled(path: Path) -> list[dict[str, str]]:
    rows = []
    for file in files(path, ".jsonl"):
        for n, line in enumerate(file.read_text().splitlines(), start=1):
            row = json.loads(line)
            if "text" not in row or "data_class" not in row:
                raise ValueError(f"{file}:{n}: needs text and data_class (task_type optional)")
            rows.append(row)
    return rows


def _confusion(pairs: Sequence[tuple[str, str]]) -> dict[str, dict[str, int]]:
    counts = Counter(pairs)
    labels = sorted({label for pair in pairs for label in pair})
    return {truth: {pred: counts[(truth, pred)] for pred in labels} for truth in labels}


def evaluate_classifier(classifier: Classifier, rows: Sequence[dict[str, str]]) -> dict[str, Any]:
    kept = [row for row, fresh in zip(rows, held_out(r["text"] for r in rows), strict=True) if fresh]
    task_pairs, data_pairs, missed_regulated = [], [], []
    results = classifier.classify_many(
        [classifier_pb2.ClassifyRequest(messages=[common_pb2.Message(role="user", content=r["text"])]) for r in kept]
    )
    for row, result in zip(kept, results, strict=True):
        data = common_pb2.DataClass.Name(result.detected_data_class).removeprefix("DATA_CLASS_")
        data_pairs.append((row["data_class"], data))
        if row["data_class"] == "REGULATED" and data != "REGULATED":
            missed_regulated.append({"source": row.get("source", ""), "predicted": data})
        if row.get("task_type"):
            task = common_pb2.TaskType.Name(result.task_type).removeprefix("TASK_TYPE_")
            task_pairs.append((row["task_type"], task))
    regulated = sum(1 for truth, _ in data_pairs if truth == "REGULATED")
    public = [pred for truth, pred in data_pairs if truth == "PUBLIC"]
    return {
        "rows": len(rows),
        "rows_skipped_as_trained_on": len(rows) - len(kept),
        "task_type": {
            "rows": len(task_pairs),
            "accuracy": round(sum(t == p for t, p in task_pairs) / max(1, len(task_pairs)), 4),
            "confusion (truth -> predicted)": _confusion(task_pairs),
        },
        "data_class": {
            "rows": len(data_pairs),
            "accuracy": round(sum(t == p for t, p in data_pairs) / max(1, len(data_pairs)), 4),
            "regulated_recall": round(1 - len(missed_regulated) / regulated, 4) if regulated else None,
            "public_flagged_sensitive": round(sum(p != "PUBLIC" for p in public) / max(1, len(public)), 4),
            "confusion (truth -> predicted)": _confusion(data_pairs),
            "missed_regulated": missed_regulated,
        },
    }
