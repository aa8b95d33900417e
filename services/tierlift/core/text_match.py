"""Comparing answers without caring about their surface: the normal form the assessor's
"normalised" judge compares, and the digests that let it judge exact and normalised agreement
where the policy keeps no text (REGULATED data). The router and the assessor must normalise
alike, hence one function here."""

from __future__ import annotations

import hashlib
import re
import unicodedata

_SPACE = re.compile(r"\s+")
_EDGE_PUNCTUATION = re.compile(r"^[\s\"'`*_.,;:!?()\[\]{}]+|[\s\"'`*_.,;:!?()\[\]{}]+$")
_NUMBER = re.compile(r"(?<![\w.])[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?(?!\w|\.\d)")
_TRAILING_ZEROS = re.compile(r"(?<![\w.])(\d+\.\d*?)0+(?!\w|\.\d)")


def normalise(text: str) -> str:
    """Case, Unicode width, whitespace, surrounding punctuation and number formatting removed:
    "  The answer is 1,000.50. " and "the answer is 1000.5" compare equal."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _NUMBER.sub(lambda m: m.group(0).replace(",", ""), text)
    text = _TRAILING_ZEROS.sub(lambda m: m.group(1).rstrip("."), text)
    text = _SPACE.sub(" ", text)
    return _EDGE_PUNCTUATION.sub("", text)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def prompt_digest(workload: str, messages: list[tuple[str, str]]) -> str:
    """Identifies "the same prompt again" (a regeneration) across requests of a workload. It is
    computed for every request, on its path, so only case and whitespace are evened out (C-speed
    str methods: ~1 ms at 128K characters, where `normalise` takes ~40 ms)."""
    joined = "\x1e".join(f"{role}\x1f{' '.join(content.split()).casefold()}" for role, content in messages)
    return sha256(f"{workload}\x1d{joined}")
