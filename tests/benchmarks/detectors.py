"""Detection time against prompt length (`BENCH=detectors make bench` -> detectors.json).

Three kinds of text at 4K, 32K and 128K characters: prose with an identifier now and then (the
common case), text that is nothing but digit groups (the most candidate numbers per character)
and one unbroken run of word characters (what made the old backtracking patterns quadratic).
Linear detection shows as a time per 1,000 characters that stays flat as the text grows.
"""

from __future__ import annotations

import random
import time

from tierlift.classifier import detect_sensitive_data

SIZES = (4_000, 32_000, 128_000)
PROSE = (
    "The quarterly review covered shipping delays, a new supplier in Rotterdam and the 2026 budget. "
    "Order 4111 1111 1111 1112 shipped on 2024-03-05; call +44 20 7946 0958 with questions. "
)


def _texts(size: int) -> dict[str, str]:
    rng = random.Random(size)
    digits = " ".join(str(rng.randint(0, 9999)) for _ in range(size // 3))[:size]
    return {"prose": (PROSE * (size // len(PROSE) + 1))[:size], "digit_groups": digits, "one_word": "a1_" * (size // 3)}


def bench_detectors(rounds: int = 5) -> dict[str, object]:
    detect_sensitive_data("warm-up: SSN 078-05-1120, héllo")
    results: dict[str, dict[str, float]] = {}
    for size in SIZES:
        for kind, text in _texts(size).items():
            timings = []
            for _ in range(rounds):
                started = time.perf_counter()
                detect_sensitive_data(text)
                timings.append((time.perf_counter() - started) * 1000)
            best = min(timings)
            results[f"{kind}@{size}"] = {"ms": round(best, 2), "ms_per_1k_chars": round(best / size * 1000, 3)}
    return {"rounds": rounds, "best_of_rounds": results}
