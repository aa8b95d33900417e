"""The manual and the README are checked as code: the manual builds with no warning (mkdocs
--strict: every page in the nav, every link to a page and to an anchor resolves), every relative
link in the README names a file in the repository, and every `tierlift ...` example names a
command, a subcommand and flags that the CLI's parsers accept."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tierlift.cli import _parser

ROOT = Path(__file__).resolve().parents[2]
# docs/cli.md is generated from the parsers themselves (tools/gen_cli_reference.py)
PAGES = [ROOT / "README.md", *sorted(p for p in (ROOT / "docs").rglob("*.md") if p.name != "cli.md")]
# `tierlift <command> [<subcommand>] [arguments]` where a line of a block or an inline code span
# starts with it (after a prompt, `.venv/bin/` or variables set for it); not the release name in
# `helm upgrade --install tierlift ...`, nor `tierlift up`'s own banner ("tierlift is up in ...")
EXAMPLE = re.compile(r"^(?:\$ )?(?:[A-Z_]+=\S* )*(?:\.venv/bin/)?tierlift((?: (?!is up)[^\s`|;&)]+)+)")


def _choices(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _flags(parser: argparse.ArgumentParser) -> set[str]:
    return {option for action in parser._actions for option in action.option_strings}


def _examples() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        text = page.read_text()
        for block in re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S) + re.findall(r"`([^`\n]+)`", text):
            for line in block.splitlines():
                if match := EXAMPLE.match(line.strip()):
                    found.append((str(page.relative_to(ROOT)), "tierlift" + match.group(1)))
    return found


def _problem(example: str) -> str:
    """Why `example` is not a command line the CLI accepts ("" when it is)."""
    words = example.split()[1:]
    parser = _parser()
    commands = _choices(parser)
    if not words or words[0] not in commands:
        return f"no command {words[0] if words else ''!r}"
    command = commands[words[0]]
    rest = words[1:]
    if (subcommands := _choices(command)) and rest and not rest[0].startswith("-"):
        if rest[0] not in subcommands and not rest[0].isupper() and "|" not in rest[0]:
            return f"no subcommand {words[0]} {rest[0]!r}"
        command = subcommands.get(rest[0], command)
    known = _flags(command)
    unknown = [w.split("=")[0] for w in rest if w.startswith("--") and w.split("=")[0] not in known]
    return f"no flag {', '.join(unknown)} on `tierlift {words[0]}`" if unknown else ""


def test_the_examples_are_found() -> None:
    examples = [e for _, e in _examples()]
    assert len(examples) > 50 and "tierlift up" in examples  # the scan itself reads the pages


def test_every_cli_example_names_a_command_and_flags_that_exist() -> None:
    problems = [f"{page}: `{example}`: {why}" for page, example in _examples() if (why := _problem(example))]
    assert problems == []


def test_every_relative_link_in_the_readme_resolves() -> None:
    links = re.findall(r"\]\(([^)\s]+)\)", (ROOT / "README.md").read_text())
    local = [link.split("#")[0] for link in links if not re.match(r"[a-z]+:", link) and not link.startswith("#")]
    assert local and [link for link in local if not (ROOT / link).exists()] == []


def test_the_manual_builds_with_no_warning(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs", reason="the `docs` extra (make test installs it)")
    built = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
                           cwd=ROOT, capture_output=True, text=True)  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]


@pytest.mark.parametrize(
    ("example", "problem"),
    [
        ("tierlift nosuch", "no command 'nosuch'"),
        ("tierlift rollout launch --workload faq", "no subcommand rollout 'launch'"),
        ("tierlift calibrate --workload faq --from-the-ledger", "no flag --from-the-ledger"),
        ("tierlift rollout start --workload faq --stages 5,100", ""),
    ],
)
def test_the_example_check_names_what_does_not_exist(example: str, problem: str) -> None:
    assert _problem(example).startswith(problem) if problem else _problem(example) == ""
