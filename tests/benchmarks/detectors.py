"""The classifier's pattern work against prompt length (`BENCH=detectors make bench` ->
detectors.json): the data-class detectors, the prompt's form (the routing head's features) and
the search for addresses that decides whether spaCy reads a prompt.

Five kinds of text at 4K, 32K and 128K characters: prose with an identifier now and then (the
common case), text that is nothing but digit groups (the most candidate numbers per character),
one unbroken run of word characters, one run of digits and one of blank lines (each made an
old backtracking pattern quadratic), the words that name an account or a document over and
over, and look-alike digits ("1O ") over and over (each made a positioned search quadratic).
Linear work shows as a time per 1,000 characters that stays flat as the text grows. Three more
kinds read the detectors' other views: markup (HTML and markdown around numbers), encoded blobs
(base64 and hex) and JSON records with names and numbers; and `budget` gives the two figures
the data-class guarantee is held to: the median for a 200-token prompt, and what a 100 KB prompt
costs against a 500-byte one (linear: at most 200 times).
"""

from __future__ import annotations

import base64
import json
import random
import statistics
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


MARKUP = "<p>Dear <b>Ann</b>, your order **4821** ships on <i>2024-03-05</i>; see `v1.2.3` &amp; more.</p>\n"
ENCODED = f"attachment {base64.b64encode(b'quarterly figures, nothing personal ' * 2).decode()} hex 48656c6c6f20776f\n"
RECORDS = json.dumps({"name": "Maria Garcia", "order": "48213379", "city": "Madrid", "qty": "12"}) + "\n"
# about 200 tokens: names, dates, an order number, prose
PROMPT_200_TOKENS = (
    "Hi team, Maria Garcia from the Madrid office asked for a summary of the Q3 supplier review. "
    "Order 48213379 shipped on 2024-03-05 and the invoice totals EUR 12,400. John Smith owns hiring, "
    "and the pricing review with Acme Corp is on 14 March. Please list the three main risks, who owns "
    "each, and what we should ask the supplier before the contract renewal in May. Keep it short and "
    "friendly, with bullet points, and mention the delayed pallets from Rotterdam and the new customs "
    "rules that start next quarter. Also add a paragraph on what changed since the last review: the "
    "warehouse in Valencia closed on 30 June, two trucks were replaced, and the new carrier promised "
    "delivery within 48 hours for orders above 500 units. Finish with a question for Maria about the "
    "budget for 2026 and whether the team in Lyon can take over the returns. Thanks!"
)


def budget(runs: int = 300) -> dict[str, float]:
    """The median for a 200-token prompt, and the cost of 100 KB against 500 bytes."""
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        detect_sensitive_data(PROMPT_200_TOKENS)
        timings.append((time.perf_counter() - started) * 1000)
    small, large = PROMPT_200_TOKENS[:500], (PROMPT_200_TOKENS * 200)[:100_000]
    small_ms = statistics.median(_timed(lambda: detect_sensitive_data(small)) for _ in range(runs))
    large_ms = statistics.median(_timed(lambda: detect_sensitive_data(large)) for _ in range(5))
    return {
        "p50_200_token_prompt_ms": round(statistics.median(timings), 3),
        "p50_500_bytes_ms": round(small_ms, 3),
        "p50_100_kb_ms": round(large_ms, 2),
        "100_kb_over_500_bytes": round(large_ms / small_ms, 1),
    }


def _timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return (time.perf_counter() - started) * 1000


def _texts(size: int) -> dict[str, str]:
    rng = random.Random(size)
    digits = " ".join(str(rng.randint(0, 9999)) for _ in range(size // 3))[:size]
    return {"prose": (PROSE * (size // len(PROSE) + 1))[:size], "digit_groups": digits, "one_word": "a1_" * (size // 3),
            "digit_run": "7" * size, "blank_lines": "\n" * size, "context_words": ("acct passport " * size)[:size],
            "lookalike_digits": ("1O " * size)[:size], "markup": (MARKUP * (size // len(MARKUP) + 1))[:size],
            "encoded": (ENCODED * (size // len(ENCODED) + 1))[:size],
            "json_records": (RECORDS * (size // len(RECORDS) + 1))[:size]}  # fmt: skip


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
    return {"rounds": rounds, "budget": budget(), "best_of_rounds": results}
