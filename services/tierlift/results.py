"""Measurement results as JSON files that say how they were made: the command, the commit
(marked -dirty when the tree had changes), the machine and the time. Used by `make bench`,
`make test-vllm` and the `tierlift eval*` commands."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:  # no git: the result still says everything else
        return ""


def _cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor()
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "")


def python_loop_ms(iterations: int = 1_000_000) -> float:
    """The best of three runs of a fixed pure-Python loop, in ms. Machines of one kind here have
    differed ~3x in speed from one session to the next (same CPU model name): numbers written on
    different days compare only through this, or better not at all."""
    best = float("inf")
    for _ in range(3):
        started, total = time.perf_counter(), 0
        for i in range(iterations):
            total += i
        best = min(best, time.perf_counter() - started)
    return round(best * 1000, 1)


def provenance(command: str) -> dict[str, Any]:
    commit = _git("rev-parse", "--short", "HEAD")
    return {
        "command": command,
        "commit": commit + ("-dirty" if commit and _git("status", "--porcelain") else ""),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "cpu": _cpu_model(),
            "python_loop_ms": python_loop_ms(),  # measured as the result is written
        },
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_result(path: Path, command: str, result: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(provenance(command) | result, indent=2) + "\n")
    print(f"wrote {path}")
