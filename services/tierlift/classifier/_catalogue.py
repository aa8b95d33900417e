# ruff: noqa: E501  (words and names in the scripts people write them in)
"""python-stdnum's whole catalogue of personal, national, tax and health identifiers, read from
the library itself rather than listed here: every module that validates a number and whose
description names a person's number (not a company's, a product's or a bank's).

What the detectors take from it are the identifiers' **names in their own languages**: each
module's description gives the abbreviation and the local name ("CNP (Cod Numeric Personal,
Romanian Numerical Personal Code)", "EGN (ЕГН, Единен граждански номер, ...)"), so a number
written beside "Henkilötunnus", "ЕГН" or "Número de Registre Tributari" is read as the
identifier it is, for every country the library knows, including those added by its next
release. The adversarial generator takes the validators, to draw fresh valid numbers.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import stdnum

from tierlift.classifier._normalise import fold, normalise

# A description naming any of these is a person's number ...
_PERSONAL = re.compile(
    r"personal|person\b|individual|national|citizen|identity|identification|social (?:security|insurance)"
    r"|health|patient|birth number|resident|foreigner|voter|pupil|student|tax|taxpayer|insurance|\bID\b",
    re.I,
)
# ... unless it names a company's, a product's, a bank's or a place's.
_NOT_PERSONAL = re.compile(
    r"VAT|company|business|enterprise|\bentit(?:y|ies)\b|organi[sz]ation|corporat|legal|trade|commercial|register of economic"
    r"|bank|securit(?:y|ies) identif|financial|postal|post ?code|article|book|serial|music|recording|audiovisual"
    r"|library|container|maritime|chemical|drug|meter|receipt|invoice|excise|activity|establishment|creditor"
    r"|banknote|school|real estate|association|mobile|equipment|algorithm|address|employer|preparer|routing"
    r"|librar|name identifier|energy|social credit|persona jur",
    re.I,
)
# Abbreviations that are everyday words too: the number beside them still has to look like one,
# but the word alone would put every text that says "pin" or "bis" beside an identifier word.
_TOO_COMMON = frozenset(fold(w) for w in (
    "id", "no", "nr", "ni", "nn", "cc", "ci", "cf", "cr", "cn", "in", "ik", "pin", "bis", "tin", "sin", "pan",
    "vid", "upn", "mf", "rc", "rut", "cui", "nit", "nif", "ssn", "eid", "rrn", "ird", "dni", "cpf", "egn",
    "ice", "mst", "coe", "epic", "lithuanian", "sometimes n.i.f", "v-number",
    "number", "identity number", "id number", "tax number", "personal number", "personal numbers",
))  # fmt: skip


@dataclass(frozen=True)
class Identifier:
    module: str  # "stdnum.ro.cnp"
    description: str
    names: tuple[str, ...]  # folded: how people write its name
    is_valid: Callable[[str], bool]
    compact: Callable[[str], str]


def _names(description: str) -> tuple[str, ...]:
    """The abbreviations before the bracket and the local name first inside it: "CNP (Cod
    Numeric Personal, Romanian Numerical Personal Code)." gives ("cnp", "cod numeric personal")."""
    head, _, rest = description.partition("(")
    inside = rest.rsplit(")", 1)[0]
    candidates = [*head.split(","), *inside.split(",")[:2]]
    names = []
    for candidate in candidates:
        name = fold(normalise(candidate.strip(" .\"'")))
        name = re.sub(r"\s+", " ", name)
        # an English description ("Romanian Numerical Personal Code") is not how anyone writes it
        if len(name) >= 3 and name not in _TOO_COMMON and not re.search(r"\b(?:number|code|of|the)\b.*\b\w+n\b$", name):
            names.append(name)
    return tuple(dict.fromkeys(names))


@functools.cache
def personal_identifiers() -> tuple[Identifier, ...]:
    found = []
    for info in pkgutil.walk_packages(stdnum.__path__, "stdnum."):
        if info.ispkg:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # renamed modules say so on import
                module = importlib.import_module(info.name)
        except ImportError:
            continue
        if not hasattr(module, "is_valid") or not hasattr(module, "compact"):
            continue
        description = (module.__doc__ or "").strip().split("\n")[0]
        if not _PERSONAL.search(description) or _NOT_PERSONAL.search(description):
            continue
        found.append(Identifier(info.name, description, _names(description), module.is_valid, module.compact))
    return tuple(found)


@functools.cache
def identifier_names() -> tuple[str, ...]:
    """Every catalogued identifier's names, folded, longest first."""
    names = {name for identifier in personal_identifiers() for name in identifier.names}
    return tuple(sorted(names, key=lambda n: (-len(n), n)))
