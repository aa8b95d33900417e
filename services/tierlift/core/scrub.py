"""Provider error texts made safe to log, store and return: providers echo what they were sent
("Invalid value for 'content': 'my SSN is ...'") and what they were sent with ("Incorrect API
key provided: sk-proj-..."). An error text leaves an adapter only through `scrub`, so neither a
prompt nor a credential reaches a log line, a span, an event or the ledger's database.

Three passes, each by construction rather than by example: words that the request's own
messages contain (pairs of words, and any single word distinctive enough to identify: six
letters or more, or with a digit) become "[prompt]"; long digit runs (an identifier of any
country) become "[number]"; anything credential-shaped, and the literal value of every
credential in this process's environment, becomes "[redacted]"."""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterable, Mapping

import re2

_WORD = re.compile(r"\w+")
_DIGITS = re.compile(r"\d(?:[\d\s./-]{4,}\d)")  # six or more digits, grouped any way
KEY_SHAPED = re2.compile(
    r"(?i)\b(?:sk|pk|rk|sess|key)[-_][A-Za-z0-9_*.-]{6,}|\bAKIA[0-9A-Z]{12,}|\bbearer\s+\S+|\bgh[pousr]_\w{10,}"
    r"|\bxox[abpr]-[\w-]{6,}|\b[A-Za-z0-9_+/=-]{32,}"
)
# environment variables that hold credentials: their values are removed wherever they appear
_SECRET_NAME = re.compile(r"(?i)(API_KEY|_TOKEN|SECRET|PASSWORD|_SEED|_KEY|_CREDENTIALS)$|^TIERLIFT_.*KEY")
_CLOUD_PREFIXES = ("AWS_", "GOOGLE_", "AZURE_")


def _distinctive(word: str) -> bool:
    return len(word) >= 6 or any(c.isdigit() for c in word)


def secret_variable(name: str) -> bool:
    """Whether an environment variable holds a credential: a provider or API key, a token, a
    password, a NATS seed, a cloud's credentials (AWS_*, GOOGLE_*, AZURE_*)."""
    return bool(_SECRET_NAME.search(name)) or name.startswith(_CLOUD_PREFIXES)


def environment_secrets(env: Mapping[str, str] | None = None) -> list[str]:
    """The values of this process's credential variables (8 characters or more), longest first."""
    env = os.environ if env is None else env
    values = {v for k, v in env.items() if _SECRET_NAME.search(k) and len(v) >= 8}
    return sorted(values, key=len, reverse=True)


def without_prompt(text: str, prompt: Iterable[str]) -> str:
    """`text` with every run of words taken from `prompt` replaced by "[prompt]"."""
    words: set[str] = set()
    pairs: set[tuple[str, str]] = set()
    for part in prompt:
        tokens = [w.lower() for w in _WORD.findall(part)]
        words.update(tokens)
        pairs.update(itertools.pairwise(tokens))
    if not words:
        return text
    found = list(_WORD.finditer(text))
    lowered = [m.group().lower() for m in found]
    echoed = [w in words and _distinctive(w) for w in lowered]
    for i in range(len(found) - 1):
        if (lowered[i], lowered[i + 1]) in pairs:
            echoed[i] = echoed[i + 1] = True
    out, end = [], 0
    i = 0
    while i < len(found):
        if not echoed[i]:
            i += 1
            continue
        j = i
        while j + 1 < len(found) and echoed[j + 1]:
            j += 1
        out.append(text[end : found[i].start()] + "[prompt]")
        end = found[j].end()
        i = j + 1
    return "".join(out) + text[end:]


def scrub(text: str, prompt: Iterable[str] = (), secrets: Iterable[str] | None = None) -> str:
    """`text` without prompt words, long numbers or credentials (see the module's doc)."""
    for value in environment_secrets() if secrets is None else secrets:
        text = text.replace(value, "[redacted]")
    text = KEY_SHAPED.sub("[redacted]", text)
    text = without_prompt(text, prompt)
    return _DIGITS.sub("[number]", text)
