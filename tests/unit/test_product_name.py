"""The product was renamed before its first release; the old name must not creep back in.

The old name is assembled here so that this file does not itself mention it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OLD_NAME = "switch" + "yard"
# The one place allowed to say what the product used to be called.
ALLOWED = {"CHANGELOG.md"}


def _tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True).stdout
    return [name for name in out.decode().split("\0") if name]


def test_old_product_name_appears_nowhere_but_the_changelog() -> None:
    offenders = []
    for name in _tracked_files():
        path = ROOT / name
        if name in ALLOWED or not path.is_file():
            continue
        if OLD_NAME in name.lower() or OLD_NAME.encode() in path.read_bytes().lower():
            offenders.append(name)
    assert offenders == [], f"the old product name is back in: {offenders}"


def test_changelog_mentions_the_old_name_on_one_line_only() -> None:
    lines = (ROOT / "CHANGELOG.md").read_text().lower().splitlines()
    assert sum(OLD_NAME in line for line in lines) == 1
