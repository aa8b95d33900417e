"""The classifier's pattern work against prompt length (`BENCH=detectors make bench` ->
detectors.json): the data-class detectors, the prompt's form (the routing head's features) and
the search for addresses that decides whether spaCy reads a prompt.

Five kinds of text at 4K, 32K and 128K characters: prose with an identifier now and then (the
common case), text that is nothing but digit groups (the most candidate numbers per character),
one unbroken run of word characters, one run of digits and one of blank lines (each made an
old backtracking pattern quadratic), the words that name an account or a document over and
over, and look-alike digits ("1O ") over and over (each made a positioned search quadratic).
Linear work shows as a time per 1,000 characters that stays flat as the text grows.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from tierlift.classifier import detect_sensitive_data
from tierlift.classifier._ner import near_addresses
from tierlift.classifier._prompt_form import prompt_form

SIZES = (4_000, 32_000, 128_000)
PROSE = (
    "The quarterly review covered shipping delays, a new supplier in Rotterdam and the 2026 budget. "
    "Order 4111 1111 1111 1112 shipped on 2024-03-05; call +44 20 7946 0958 with questions. "
)


def _texts(size: int) -> dict[str, str]:
    rng = random.Random(size)
    digits = " ".join(str(rng.randint(0, 9999)) for _ in range(size // 3))[:size]
    return {"prose": (PROSE * (size // len(PROSE) + 1))[:size], "digit_groups": digits, "one_word": "a1_" * (size // 3),
            "digit_run": "7" * size, "blank_lines": "\n" * size, "context_words": ("acct passport " * size)[:size],
            "lookalike_digits": ("1O " * size)[:size]}  # fmt: skip


def _best_ms(work: Callable[[], object], rounds: int) -> float:
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        work()
        timings.append((time.perf_counter() - started) * 1000)
    return min(timings)


def bench_detectors(rounds: int = 5) -> dict[str, object]:
    detect_sensitive_data("warm-up: SSN 078-05-1120, héllo")
    results: dict[str, dict[str, float]] = {}
    for size in SIZES:
        for kind, text in _texts(size).items():
            parts = {
                "detectors_ms": _best_ms(lambda: detect_sensitive_data(text), rounds),  # noqa: B023
                "prompt_form_ms": _best_ms(lambda: prompt_form(text), rounds),  # noqa: B023
                "addresses_ms": _best_ms(lambda: near_addresses(text, {}), rounds),  # noqa: B023
            }
            total = sum(parts.values())
            results[f"{kind}@{size}"] = {**{k: round(v, 2) for k, v in parts.items()},
                                         "ms_per_1k_chars": round(total / size * 1000, 3)}  # fmt: skip
    return {"rounds": rounds, "best_of_rounds": results}
