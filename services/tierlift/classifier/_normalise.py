# ruff: noqa: RUF003  (words and names in the scripts people write them in)
"""Text as the detectors read it: written the way people and systems really write it, but
with the tricks that hide an identifier from a pattern undone.

`normalise` applies NFKC (full-width, circled and mathematical digits become ASCII), deletes
format characters (zero-width spaces and joiners, soft hyphens, bidi marks) and the marks that
dress a digit up as an emoji (a keycap "1\ufe0f\u20e3" is "1"), folds every kind of space to " "
and every kind of dash to "-", and maps every digit of any script to ASCII: decimal digits, and
the other digits Unicode knows (dingbat and negative circled ones, "\u278a" is "1").
`fold` then lowercases and strips accents and strokes ("ł" is "l") one character for one, so
that vocabulary matches ("diagnostiqué", "Ärztin", "zawał") and positions stay aligned with the
normalised text.
"""

from __future__ import annotations

import functools
import sys
import unicodedata
from collections.abc import Iterable

import re2


def _build_table() -> dict[int, str | None]:
    table: dict[int, str | None] = {}
    for code in range(sys.maxunicode + 1):
        category = unicodedata.category(chr(code))
        if category == "Cf" or code in _EMOJI_MARKS or 0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF:
            table[code] = None  # invisible: zero-width space, word joiner, soft hyphen, bidi marks, variation selectors
        elif category in ("Zs", "Zl", "Zp") or chr(code) in "\t\r\n\v\f":
            table[code] = "\n" if category in ("Zl", "Zp") or chr(code) in "\r\n\v\f" else " "
        elif category == "Pd" or code == 0x2212:  # dashes, and the minus sign
            table[code] = "-"
        elif category in ("Nd", "No") and code > 0x7F and unicodedata.digit(chr(code), None) is not None:
            table[code] = str(unicodedata.digit(chr(code)))
    return table


_EMOJI_MARKS = {0x20E3}  # the combining keycap


@functools.cache
def _table() -> dict[int, str | None]:
    return _build_table()


def normalise(text: str) -> str:
    if text.isascii():
        # NFKC and the table change nothing in ASCII but tabs and other control spacing
        return text.translate(_ASCII_SPACES)
    return unicodedata.normalize("NFKC", text).translate(_table())


_ASCII_SPACES = {ord("\t"): " ", ord("\v"): "\n", ord("\f"): "\n", ord("\r"): "\n"}


# Latin letters with a stroke, which Unicode does not decompose into a letter and an accent:
# Polish "zawał" reads as "zawal", Croatian "đ" as "d", Danish "ø" as "o"
_STROKED = {"ł": "l", "Ł": "l", "đ": "d", "Đ": "d", "ø": "o", "Ø": "o", "ħ": "h", "Ħ": "h", "ŧ": "t", "Ŧ": "t"}


def _fold_char(ch: str) -> str:
    if ch in "ıİ":  # Turkish dotless and dotted i: "hastalığı" reads as "hastaligi"
        return "i"
    if ch in _STROKED:
        return _STROKED[ch]
    base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c)).lower()
    if len(base) > 1:  # a Hangul syllable comes apart into its letters: its first alone is another word
        return ch.lower()[:1] or ch
    return base[:1] if base else ch.lower()[:1] or ch


class _FoldTable(dict[int, str]):
    """`str.translate`'s table for `fold`, filled as characters first appear: translating in C
    is ~10x a Python call per character. Bounded, so text of every script cannot grow it far."""

    LIMIT = 65_536

    def __missing__(self, code: int) -> str:
        folded = _fold_char(chr(code))
        if len(self) < self.LIMIT:
            self[code] = folded
        return folded


_FOLD = _FoldTable()


def fold(normalised: str) -> str:
    """Lowercase, accents stripped, exactly one character for each character of the input."""
    if normalised.isascii():
        return normalised.lower()
    return normalised.translate(_FOLD)


def alternation(words: Iterable[str]) -> str:
    """An RE2 group matching any of `words`, the longest first (so "SSN number" wins over "SSN")."""
    return "(?:" + "|".join(re2.escape(w) for w in sorted(set(words), key=len, reverse=True)) + ")"
