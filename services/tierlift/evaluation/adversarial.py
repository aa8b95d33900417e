"""Adversarial variants for the data-class detectors: identifiers written the way people and
systems really write them (any separator, Unicode tricks, other countries, other languages),
and harmless look-alikes (ISBNs, versions, amounts, order numbers, dates, addresses) that must
stay PUBLIC.

Every family has several templates; the even-numbered ones are for development (the unit
tests), the odd-numbered ones are held out and only measured (`tierlift eval-detectors`), with
values drawn from a different seed. Identifiers carry valid checksums (computed with
python-stdnum or drawn until valid), so a miss is the detector's fault, not the data's.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from stdnum import iban, luhn, verhoeff
from stdnum.be import nn as be_nn
from stdnum.br import cpf
from stdnum.de import idnr
from stdnum.es import dni
from stdnum.gb import nhs
from stdnum.it import codicefiscale
from stdnum.nl import bsn
from stdnum.pl import pesel

NAMES = [
    "John Smith", "Maria Garcia", "Hans Müller", "Sophie Martin", "Jan de Vries", "Giulia Rossi", "Aisha Khan",
    "Wei Zhang", "Olga Nowak", "Lucas Silva", "Priya Sharma", "Emma Dubois", "Pieter Jansen", "Sofía López",
]  # fmt: skip


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


def _until(rng: random.Random, make: Callable[[], str], valid: Callable[[str], bool]) -> str:
    while True:
        value = make()
        if valid(value):
            return value


def card(rng: random.Random) -> str:
    prefix, length = rng.choice([("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("34", 15), ("37", 15),
                                 ("6011", 16), ("35", 16), ("4", 13), ("62", 19)])  # fmt: skip
    body = prefix + _digits(rng, length - len(prefix) - 1)
    return body + luhn.calc_check_digit(body)


def ssn(rng: random.Random) -> str:
    area = rng.choice([rng.randint(1, 665), rng.randint(667, 899)])
    return f"{area:03d}{rng.randint(1, 99):02d}{rng.randint(1, 9999):04d}"


def ca_sin(rng: random.Random) -> str:
    body = rng.choice("1234567") + _digits(rng, 7)
    return body + luhn.calc_check_digit(body)


def uk_nhs(rng: random.Random) -> str:
    return _until(rng, lambda: rng.choice("3456789") + _digits(rng, 9), nhs.is_valid)


def an_iban(rng: random.Random) -> str:
    """Drawn until valid: some countries (BE, ES, FR, IT) check the account number too."""

    def draw() -> str:
        country, bban = rng.choice([
            ("DE", _digits(rng, 18)), ("NL", "".join(rng.choice("ABNRIGS") for _ in range(4)) + _digits(rng, 10)),
            ("ES", _digits(rng, 20)), ("FR", _digits(rng, 23)), ("GB", "NWBK" + _digits(rng, 14)),
            ("IT", "X" + _digits(rng, 22)), ("BE", _digits(rng, 12)),
        ])  # fmt: skip
        return country + iban.calc_check_digits(country + "00" + bban) + bban

    return _until(rng, draw, iban.is_valid)


def _birth(rng: random.Random) -> date:
    return date(1940, 1, 1) + timedelta(days=rng.randint(0, 365 * 60))


def eu_or_world_id(rng: random.Random) -> tuple[str, str]:
    """(the id's name as people write it, the id)."""
    kind = rng.choice(["idnr", "nir", "dni", "cf", "bsn", "pesel", "nn", "cpf", "aadhaar"])
    if kind == "idnr":
        return "Steuer-ID", _until(rng, lambda: rng.choice("123456789") + _digits(rng, 10), idnr.is_valid)
    if kind == "nir":
        born = _birth(rng)
        body = f"{rng.choice('12')}{born:%y%m}{rng.randint(1, 95):02d}{_digits(rng, 6)}"
        return "numéro de sécurité sociale", f"{body}{97 - int(body) % 97:02d}"
    if kind == "dni":
        number = _digits(rng, 8)
        return "DNI", number + dni.calc_check_digit(number)
    if kind == "cf":
        born = _birth(rng)
        body = "".join(rng.choice(string.ascii_uppercase) for _ in range(6)) + f"{born:%y}"
        body += "ABCDEHLMPRST"[born.month - 1] + f"{born.day:02d}" + rng.choice("ABCDEFGHILM") + _digits(rng, 3)
        return "codice fiscale", body + codicefiscale.calc_check_digit(body)
    if kind == "bsn":
        return "BSN", _until(rng, lambda: rng.choice("123456789") + _digits(rng, 8), bsn.is_valid)
    if kind == "pesel":
        born = _birth(rng)
        body = f"{born:%y%m%d}{_digits(rng, 4)}"
        return "PESEL", body + pesel.calc_check_digit(body)
    if kind == "nn":
        born = _birth(rng)
        return "numéro national", _until(rng, lambda: f"{born:%y%m%d}{_digits(rng, 5)}", be_nn.is_valid)
    if kind == "cpf":
        return "CPF", _until(rng, lambda: _digits(rng, 11), cpf.is_valid)
    body = rng.choice("23456789") + _digits(rng, 10)
    return "Aadhaar", body + verhoeff.calc_check_digit(body)


# How a number is written: separators between groups, or between every digit.
SEPARATORS = [" ", "-", "/", "_", ".", "\u00a0", "\u202f", "\u2009", " - ", ""]
DASHES = ["\u2010", "\u2011", "\u2012", "\u2013", "\u2014", "\u2212", "\ufe63", "\uff0d"]
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"]


def grouped(digits: str, sizes: list[int], sep: str) -> str:
    parts, i = [], 0
    for size in sizes:
        parts.append(digits[i : i + size])
        i += size
    if i < len(digits):
        parts.append(digits[i:])
    return sep.join(p for p in parts if p)


def written(rng: random.Random, digits: str, sizes: list[int]) -> str:
    style = rng.randrange(4)
    if style == 0:
        return grouped(digits, sizes, rng.choice(SEPARATORS))
    if style == 1:
        return " ".join(digits)  # a space between every digit
    if style == 2:
        return grouped(digits, sizes, rng.choice(DASHES))
    return digits


def disguised(rng: random.Random, text: str) -> str:
    """Unicode tricks: invisible characters inside, full-width or Arabic-Indic digits."""
    trick = rng.randrange(3)
    if trick == 0:
        chars = list(text)
        for _ in range(rng.randint(1, 3)):
            chars.insert(rng.randint(1, len(chars) - 1), rng.choice(INVISIBLE))
        return "".join(chars)
    base = 0xFF10 if trick == 1 else rng.choice([0x0660, 0x0966, 0x09E6])  # full-width; Arabic-Indic, Devanagari...
    return "".join(chr(base + int(ch)) if ch.isdigit() else ch for ch in text)


@dataclass(frozen=True)
class Family:
    sensitive: bool  # True: must be REGULATED; False: a look-alike that must have no finding
    templates: list[str]
    value: Callable[[random.Random], dict[str, str]]


def _card_values(rng: random.Random) -> dict[str, str]:
    number = card(rng)
    sizes = [4, 6, 5] if len(number) == 15 else [4, 4, 4, 4, 3]
    return {"value": written(rng, number, sizes), "name": rng.choice(NAMES)}


FAMILIES: dict[str, Family] = {
    "card_separators": Family(
        True,
        [
            "Please refund card {value} for {name}.",
            "Kreditkarte: {value}",
            "Charge {value}, exp 09/28",
            "Tarjeta {value} a nombre de {name}",
            "{name} paid with {value} yesterday",
            "carte bancaire n° {value}",
            "Card on file {value}",
            "Use the Visa {value} for the booking",
        ],
        _card_values,
    ),
    "card_unicode": Family(
        True,
        [
            "Refund card {value} today",
            "card: {value}",
            "Karte {value} bitte belasten",
            "pay with {value}",
            "la carta {value} è scaduta",
            "My card number {value}",
        ],
        lambda rng: {"value": disguised(rng, grouped(card(rng), [4, 4, 4, 4], rng.choice([" ", "-", ""])))},
    ),
    "ssn_variants": Family(
        True,
        [
            "My SSN is {value}",
            "ssn {value}",
            "Social Security number: {value}",
            "SSN# {value} for {name}",
            "{name}, social security no. {value}",
            "employee ssn={value}",
            "Her SSN {value} is on the W-2",
            "tax form: SSN {value}",
        ],
        lambda rng: {"value": _ssn_written(rng), "name": rng.choice(NAMES)},
    ),
    "iban_variants": Family(
        True,
        [
            "Wire it to {value}",
            "IBAN: {value}",
            "Überweisung an {value}",
            "virement sur le compte {value}",
            "Rekening {value} t.n.v. {name}",
            "send the refund to iban {value} please",
        ],
        lambda rng: {"value": _iban_written(rng), "name": rng.choice(NAMES)},
    ),
    "ca_sin": Family(
        True,
        [
            "My SIN is {value}",
            "Social insurance number {value}",
            "NAS : {value}",
            "{name} - SIN {value}",
            "numéro d'assurance sociale {value}",
            "SIN: {value} (Canada)",
        ],
        lambda rng: {"value": written(rng, ca_sin(rng), [3, 3, 3]), "name": rng.choice(NAMES)},
    ),
    "uk_nhs": Family(
        True,
        [
            "NHS number {value}",
            "Patient {name}, NHS no. {value}",
            "nhs {value}",
            "NHS No: {value} - please update",
            "{name} (NHS number {value})",
            "Her NHS number is {value}",
        ],
        lambda rng: {"value": written(rng, uk_nhs(rng), [3, 3, 4]), "name": rng.choice(NAMES)},
    ),
    "documents": Family(
        True,
        [
            "{name}, passport {value}",
            "Passport number: {value} ({name})",
            "{name} - driving licence {value}",
            "Reisepass Nr. {value}, {name}",
            "passeport n° {value} de {name}",
            "driver's license {value} for {name}",
            "Führerschein {value} ({name})",
            "pasaporte {value}, titular {name}",
        ],
        lambda rng: {"value": _document(rng), "name": rng.choice(NAMES)},
    ),
    "national_ids": Family(
        True,
        [
            "{name}: {kind} {value}",
            "{kind} {value}",
            "my {kind} is {value}",
            "{kind}: {value} ({name})",
            "Bitte {kind} {value} eintragen",
            "{kind} n. {value}",
        ],
        lambda rng: dict(zip(("kind", "value"), eu_or_world_id(rng), strict=True)) | {"name": rng.choice(NAMES)},
    ),
    "health_languages": Family(
        True,
        [
            "El paciente {name} fue diagnosticado con diabetes tipo 2.",
            "{name} a été hospitalisée pour une dépression.",
            "Bei {name} wurde Brustkrebs festgestellt.",
            "{name} è in cura per l'epilessia.",
            "{name} is opgenomen in het ziekenhuis met longontsteking.",
            "A paciente {name} está grávida de 20 semanas.",
            "Mi médico me recetó insulina.",
            "Je suis sous chimiothérapie depuis mars.",
            "Meine Ärztin hat mich wegen Depressionen krankgeschrieben.",
            "Ho la pressione alta e prendo farmaci.",
        ],
        lambda rng: {"name": rng.choice(NAMES)},
    ),
    # look-alikes: must stay PUBLIC
    "isbn": Family(
        False,
        [
            "ISBN {value}",
            "See the book ({value}) for details.",
            "Order the 2nd edition, ISBN-13 {value}.",
            "Cite as ISBN {value}",
            "Buch {value} bestellen",
        ],
        lambda rng: {"value": _isbn(rng)},
    ),
    "versions": Family(
        False,
        [
            "Upgrade to version {value}.",
            "Running build {value} in production",
            "pip install pkg=={value}",
            "Firmware {value} fixes the bug",
            "release v{value}",
        ],
        lambda rng: {"value": _version(rng)},
    ),
    "amounts": Family(
        False,
        [
            "Revenue was {value} last year.",
            "Budget: {value}",
            "The invoice totals {value}.",
            "Umsatz {value}",
            "We raised {value} in the round.",
            "Total {value} incl. VAT",
        ],
        lambda rng: {"value": _amount(rng)},
    ),
    "order_numbers": Family(
        False,
        [
            "Order {value} has shipped.",
            "Ticket {value}",
            "Reference: {value}",
            "Invoice no. {value}",
            "Tracking {value}",
            "Case {value} was closed",
        ],
        lambda rng: {"value": _order_number(rng)},
    ),
    "dates_times": Family(
        False,
        [
            "The meeting is on {value}.",
            "Logged at {value}",
            "Deadline: {value}",
            "Zeitstempel {value}",
            "Run started {value}",
            "Due {value}",
        ],
        lambda rng: {"value": _date_like(rng)},
    ),
    "technical": Family(
        False,
        [
            "Connect to {value}",
            "Commit {value} broke the build",
            "Request id {value}",
            "Host {value} is down",
            "Checksum {value}",
            "See trace {value}",
        ],
        lambda rng: {"value": _technical(rng)},
    ),
}


def _ssn_written(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return written(rng, ssn(rng), [3, 2, 4])
    return disguised(rng, grouped(ssn(rng), [3, 2, 4], "-"))


def _version(rng: random.Random) -> str:
    parts = ".".join(str(rng.randint(0, 40)) for _ in range(rng.randint(3, 4)))
    return parts + rng.choice(["", f".{rng.randint(1000, 99999)}"])


def _amount(rng: random.Random) -> str:
    cents = rng.choice(["", f".{rng.randint(0, 99):02d}", " EUR"])
    return rng.choice(["$", "€", "", "USD "]) + f"{rng.randint(1000, 999_999_999):,}" + cents


def _iban_written(rng: random.Random) -> str:
    value = an_iban(rng)
    style = rng.randrange(4)
    if style == 0:
        return grouped(value, [4] * 8, rng.choice([" ", "\u00a0", "\u202f"]))
    if style == 1:
        return value.lower()
    if style == 2:
        return disguised(rng, grouped(value, [4] * 8, " "))
    return value


def _document(rng: random.Random) -> str:
    return rng.choice([
        rng.choice(string.ascii_uppercase) + _digits(rng, 8), _digits(rng, 9),
        "".join(rng.choice(string.ascii_uppercase) for _ in range(2)) + _digits(rng, 7),
        "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(10)) + _digits(rng, 2),
    ])  # fmt: skip


def _isbn(rng: random.Random) -> str:
    body = rng.choice(["978", "979"]) + _digits(rng, 9)
    check = str((10 - sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body)) % 10) % 10)
    number = body + check
    return rng.choice([number, f"{number[:3]}-{number[3]}-{number[4:7]}-{number[7:12]}-{number[12]}"])


def _order_number(rng: random.Random) -> str:
    style = rng.randrange(4)
    if style == 0:  # card-shaped but failing Luhn
        number = _until(rng, lambda: rng.choice("3456") + _digits(rng, 15), lambda n: not luhn.is_valid(n))
        return grouped(number, [4, 4, 4, 4], rng.choice([" ", "-"]))
    if style == 1:
        return f"ORD-{rng.randint(2015, 2026)}-{_digits(rng, 6)}"
    if style == 2:
        return "1Z" + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(16))
    return "#" + _digits(rng, rng.randint(5, 8))


def _date_like(rng: random.Random) -> str:
    d = date(2000, 1, 1) + timedelta(days=rng.randint(0, 9000))
    return rng.choice([f"{d:%Y-%m-%d}", f"{d:%d.%m.%Y}", f"{d:%m/%d/%Y}", f"{d:%Y%m%d} {rng.randint(0, 235959):06d}",
                       f"{d:%Y-%m-%d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00Z"])  # fmt: skip


def _technical(rng: random.Random) -> str:
    return rng.choice([
        ".".join(str(rng.randint(1, 254)) for _ in range(4)) + rng.choice(["", f":{rng.randint(1024, 65535)}"]),
        "".join(rng.choice("0123456789abcdef") for _ in range(40)),
        "-".join("".join(rng.choice("0123456789abcdef") for _ in range(n)) for n in (8, 4, 4, 4, 12)),
    ])  # fmt: skip


@dataclass(frozen=True)
class Example:
    family: str
    text: str
    sensitive: bool


def generate(split: str, per_family: int, seed: int | None = None) -> list[Example]:
    """`split` is "dev" (even-numbered templates) or "held-out" (odd-numbered, another seed)."""
    return generate_from(FAMILIES, split, per_family, seed if seed is not None else (11 if split == "dev" else 29))


def generate_from(families: Mapping[str, Any], split: str, per_family: int, seed: int) -> list[Example]:
    """Rows of `families` (each with `sensitive`, `templates` and `value(rng)`): the split's half
    of each family's templates, filled from `seed`."""
    if split not in ("dev", "held-out"):
        raise ValueError(f"split: {split!r} is not 'dev' or 'held-out'")
    parity = 0 if split == "dev" else 1
    rng = random.Random(seed)
    examples = []
    for name, family in families.items():
        templates = family.templates[parity::2]
        for i in range(per_family):
            text = templates[i % len(templates)].format(**family.value(rng))
            examples.append(Example(name, text, family.sensitive))
    return examples


def evaluate(examples: list[Example], detect: Callable[[str], Mapping[str, int]], regulated: int) -> dict[str, object]:
    """Per family: for identifier families the share found REGULATED (recall), for look-alikes
    the share with any finding at all (flagged sensitive), with a few misses to look at."""
    families: dict[str, dict[str, object]] = {}
    totals = {True: [0, 0], False: [0, 0]}  # sensitive -> [hits, rows]
    for name in dict.fromkeys(e.family for e in examples):
        rows = [e for e in examples if e.family == name]
        wrong = []
        for e in rows:
            found = detect(e.text)
            hit = regulated in found.values() if e.sensitive else bool(found)
            totals[e.sensitive][0] += hit
            totals[e.sensitive][1] += 1
            if hit != e.sensitive:
                wrong.append({"text": e.text, "found": sorted(found)})
        share = 1 - len(wrong) / len(rows) if rows[0].sensitive else len(wrong) / len(rows)
        metric = "regulated_recall" if rows[0].sensitive else "flagged_sensitive"
        families[name] = {metric: round(share, 4), "rows": len(rows), "wrong": wrong[:5]}
    return {
        "regulated_recall": round(totals[True][0] / max(1, totals[True][1]), 4),
        "look_alikes_flagged": round(totals[False][0] / max(1, totals[False][1]), 4),
        "families": families,
    }
