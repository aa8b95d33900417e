"""Features of a prompt's form rather than its topic: length, numbers, formatting, code, how the
question is asked. A routing head trained on these transfers to subjects and sources it never
saw; one trained on sentence embeddings learns which topics were hard in its training data, and
on a new topic is no better than a coin (`tierlift eval-routing --grouped` measures both)."""

from __future__ import annotations

import math
import re
from collections import Counter

import numpy as np
import re2
from numpy.typing import NDArray

_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
# [ \t]*, not \s*: a run of blank lines would be rescanned from each of its line starts (quadratic)
_OPTION = re.compile(r"^[ \t]*\(?[A-D][.)]\s", re.MULTILINE)
_ROMAN_LIST = re.compile(r"\b(?:I{1,3}|IV)\.\s", re.MULTILINE)
_OPERATOR = re.compile(r"[=+\-*/^\u00d7\u00f7%$]")
# RE2: Python's `re` tries this alternation at every character of a text with no code (0.11 vs
# 0.01 ms at 230 tokens; the same answer on the 15,665 labelled and routing prompts)
_CODE = re2.compile(r"(?m)```|\bdef |\breturn\b|[{};]\s*$|\bfunction\b|#include|\bSELECT\b")
# The words counted, in one pass over the text (five passes cost ~0.3 ms at 230 tokens). An
# alternation matches once at a place: "false" is found as a negation and "which of the
# following" as a judgement, and `prompt_form` counts each for "true_false" and "which" too.
_NEGATION = ("not", "except", "false", "incorrect", "least", "never")
_QUANTITY = ("how many", "how much", "calculate", "compute", "total", "each", "per", "remaining", "left")
_JUDGEMENT = ("best", "most likely", "primarily", "which of the following", "according to")
_KIND = {
    **dict.fromkeys(_NEGATION, "negations"),
    **dict.fromkeys(_QUANTITY, "quantity_words"),
    **dict.fromkeys(_JUDGEMENT, "judgement_words"),
    "which": "which",
    "true": "true_false",
}
_COUNTED = re.compile(r"\b(?:" + "|".join(map(re.escape, _KIND)) + r")\b", re.IGNORECASE)
_WORD = re.compile(r"\w+")
_DIGIT = re.compile(r"\d")
_UPPER = re.compile(r"[A-Z]")
SCANNED = 16_384
_SENTENCE_END = re.compile(r"[.!?](?:\s|$)")
_DECIMAL = re.compile(r"\d\.\d")  # presence only: "\d+\.\d+" would retry every digit of a long run (quadratic)

NAMES = (
    "log_chars", "log_words", "log_lines", "digit_share", "log_numbers", "options", "roman_list", "operators",
    "code", "negations", "quantity_words", "judgement_words", "question_marks", "mean_word_length",
    "long_word_share", "upper_share", "log_option_chars", "log_stem_chars", "statements", "log_sentences",
    "log_largest_number", "decimals", "which", "true_false",
)  # fmt: skip


def _counted_word(match: str) -> str:
    """The word of `_KIND` that `match` is: lower() but for the few letters that IGNORECASE also
    takes for an ASCII one (the long s for s, the Kelvin sign for k)."""
    word = match.lower()
    if word in _KIND:
        return word
    return next(key for key in _KIND if re.fullmatch(re.escape(key), match, re.IGNORECASE))


def prompt_form(full_text: str) -> NDArray[np.float32]:
    """One vector of `NAMES`, each roughly on a unit scale. Lengths count the whole prompt; the
    rest reads its first `SCANNED` characters, so the cost on the request path stays bounded."""
    text = full_text[:SCANNED]
    words = _WORD.findall(text)
    n_words = max(1, len(words))
    chars = max(1, len(text))
    options = _OPTION.findall(text)
    first_option = _OPTION.search(text)
    stem = text[: first_option.start()] if first_option else text
    numbers = [float(n.replace(",", "")) for n in _NUMBER.findall(text)[:50] if len(n) < 15]
    found = Counter(map(_counted_word, _COUNTED.findall(text)))
    counted: Counter[str] = Counter()  # a kind not found counts 0
    for word, n in found.items():
        counted[_KIND[word]] += n
    return np.array(
        [
            math.log1p(len(full_text)) / 8,
            math.log1p(len(words) * len(full_text) / chars) / 6,
            math.log1p(text.count("\n")) / 3,
            len(_DIGIT.findall(text)) / chars * 10,
            math.log1p(len(_NUMBER.findall(text))) / 3,
            min(len(options), 6) / 4,
            min(len(_ROMAN_LIST.findall(text)), 6) / 4,
            math.log1p(len(_OPERATOR.findall(text))) / 3,
            float(bool(_CODE.search(text))),
            math.log1p(counted["negations"]),
            math.log1p(counted["quantity_words"]),
            math.log1p(counted["judgement_words"]),
            math.log1p(text.count("?")),
            min(sum(len(w) for w in words) / n_words, 40) / 8,
            sum(len(w) >= 9 for w in words) / n_words * 4,
            len(_UPPER.findall(text)) / chars * 10,
            math.log1p(len(text) - len(stem)) / 8,
            math.log1p(len(stem)) / 8,
            float("Statement 1" in text),
            math.log1p(len(_SENTENCE_END.findall(text))),
            math.log1p(max(numbers, default=0.0)) / 5,
            float(bool(_DECIMAL.search(text))),
            float(bool(counted["which"] or found["which of the following"])),
            float(bool(counted["true_false"] or found["false"])),
        ],
        dtype=np.float32,
    )


def prompt_forms(texts: list[str]) -> NDArray[np.float32]:
    return np.stack([prompt_form(t) for t in texts]) if texts else np.zeros((0, len(NAMES)), dtype=np.float32)
