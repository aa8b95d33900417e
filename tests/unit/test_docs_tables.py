"""The README's figures beside the peers are generated from the benchmark results they cite
(tools/gen_bench_tables.py, `make docs`): a rerun of `make bench-peers` without `make docs`
fails here instead of leaving the README's numbers stale."""

from __future__ import annotations

from pathlib import Path

from tools.gen_bench_tables import README_BEGIN, README_END, readme_peers

ROOT = Path(__file__).parents[2]


def test_the_readme_peers_table_is_the_one_the_results_give() -> None:
    readme = (ROOT / "README.md").read_text()
    block = readme[readme.index(README_BEGIN) : readme.index(README_END) + len(README_END)]
    assert block == readme_peers(ROOT / "tests" / "benchmarks" / "results"), "run `make docs`"
