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


def provenance(command: str) -> dict[str, Any]:
    commit = _git("rev-parse", "--short", "HEAD")
    return {
        "command": command,
        "commit": commit + ("-dirty" if commit and _git("status", "--porcelain") else ""),
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()},
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_result(path: Path, command: str, result: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(provenance(command) | result, indent=2) + "\n")
    print(f"wrote {path}")
