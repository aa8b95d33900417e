# ruff: noqa: RUF001, E501  (words and names in the scripts people write them in)
"""Fresh rows for the data-class detectors, of the kinds a hand-made list never covers.

`adversarial` varies how known identifiers are written. This generator goes wider, so that a
figure measured on it says something about rows nobody has seen:
- **catalogue**: a valid number of every personal identifier python-stdnum knows (drawn by
  changing the digits of the library's own examples until the checksum holds again), beside its
  name, a person, or a label, in the language of its country or in English;
- **unknown ids**: member, patient, insurance and record numbers of formats no catalogue has,
  beside a person or the word that names them, in fifteen languages;
- **hidden**: a known identifier behind each normalisation trick (HTML, markdown, percent and
  base64 and hex encodings, keycaps, CJK numerals, digits spelled in other languages, split
  across JSON fields, code concatenations and table rows);
- **health without a number**: a named or first-person subject with a condition, treatment or
  result, in fifteen languages;
- look-alikes that must stay PUBLIC: barcodes, parcel numbers, hashes, timestamps, coordinates,
  numbers in prose and poems, conditions and identifiers discussed in general.

Like `adversarial`, even-numbered templates are for development and odd-numbered ones held out,
and the held-out values come from another seed; `seed` draws a fresh set for either.
"""

from __future__ import annotations

import base64
import importlib
import json
import random
import re
import string
from collections.abc import Callable
from dataclasses import dataclass

from stdnum import ean, luhn

from tierlift.evaluation.adversarial import Example, generate_from, ssn

# People, in the scripts they write their names in
NAMES = [
    "John Carter", "Maria Fernández", "Jürgen Weiß", "Camille Lefèvre", "Sanne Bakker", "Francesca Bianchi",
    "Krzysztof Wiśniewski", "Ayşe Yılmaz", "Иван Петров", "Ольга Смирнова", "Nguyen Van An", "Siti Rahayu",
    "Oluwaseun Adeyemi", "Ana Souza", "Mikko Virtanen", "Eleni Papadopoulou", "Tomáš Novák", "Rahul Verma",
]  # fmt: skip


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


# --- catalogue ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Catalogued:
    module: str
    name: str  # as its country writes it
    examples: tuple[str, ...]
    is_valid: Callable[[str], bool]


def _catalogue() -> list[_Catalogued]:
    from tierlift.classifier._catalogue import personal_identifiers

    found = []
    for identifier in personal_identifiers():
        doc = importlib.import_module(identifier.module).__doc__ or ""
        examples = re.findall(r">>> (?:validate|compact|is_valid|format)\('([^']+)'\)\n(?!Traceback)", doc)
        examples = [e for e in examples if _valid(identifier.is_valid, e)]
        if examples and identifier.names:
            found.append(_Catalogued(identifier.module, identifier.names[0], tuple(examples), identifier.is_valid))
    return found


def _redrawn(rng: random.Random, example: str, is_valid: Callable[[str], bool]) -> str | None:
    """The example with its digits redrawn until the checksum holds (None after 400 tries)."""
    for _ in range(400):
        value = "".join(rng.choice(string.digits) if ch.isdigit() and rng.random() < 0.7 else ch for ch in example)
        if value != example and _valid(is_valid, value):
            return value
    return None


def _valid(is_valid: Callable[[str], bool], value: str) -> bool:
    try:
        return is_valid(value)
    except Exception:  # a few validators raise on values they do not expect (stdnum.cn.ric: KeyError)
        return False


def _catalogue_values(rng: random.Random) -> dict[str, str]:
    entries = _catalogue_cache()
    while True:
        entry = rng.choice(entries)
        value = _redrawn(rng, rng.choice(entry.examples), entry.is_valid)
        if value is not None:
            return {"kind": entry.name, "value": value, "name": rng.choice(NAMES)}


_CATALOGUE: list[_Catalogued] = []


def _catalogue_cache() -> list[_Catalogued]:
    if not _CATALOGUE:
        _CATALOGUE.extend(_catalogue())
    return _CATALOGUE


# --- unknown formats ---------------------------------------------------------------------------


def _unknown_id(rng: random.Random) -> str:
    letters = string.ascii_uppercase
    return rng.choice([
        _digits(rng, rng.randint(7, 12)),
        rng.choice(letters) + _digits(rng, rng.randint(8, 10)),
        "".join(rng.choice(letters) for _ in range(3)) + _digits(rng, 6),
        f"{_digits(rng, 3)}-{_digits(rng, 3)}-{_digits(rng, 3)}",
        f"{_digits(rng, 4)} {_digits(rng, 4)} {_digits(rng, 2)}",
        f"{rng.choice(letters)}{rng.choice(letters)}-{_digits(rng, 7)}",
        f"{_digits(rng, 2)}.{_digits(rng, 3)}.{_digits(rng, 3)}.{_digits(rng, 2)}",
    ])  # fmt: skip


_UNKNOWN_TEMPLATES = [
    "Patient: {name}, MRN {value}, admitted via ER",
    "{name} (member no. {value}) called about the claim",
    "Versichertennummer {value} – {name}",
    "Please update the record of {name}: {value}",
    "numéro d'assuré {value} pour {name}",
    "{name}, número de afiliado {value}",
    "numero di tessera sanitaria {value} ({name})",
    "Polisnummer {value} van {name}",
    "{name} — insurance ID {value}",
    "Numer ubezpieczenia: {value}, pacjent {name}",
    "Sigorta numarası {value}, hasta {name}",
    "Номер полиса {value}, пациент {name}",
    "رقم التأمين {value} للمريض",
    "बीमा संख्या {value}",
    "保険証の記号番号 {value}",
    "患者 {name} 的医保号 {value}",
    "건강보험 번호 {value}",
    "{name}\t{value}\tcardiology",
]


# --- hidden identifiers ------------------------------------------------------------------------

_SPELLED = {
    "Polish": "zero jeden dwa trzy cztery pięć sześć siedem osiem dziewięć",
    "Turkish": "sıfır bir iki üç dört beş altı yedi sekiz dokuz",
    "Russian": "ноль один два три четыре пять шесть семь восемь девять",
    "Swedish": "noll ett två tre fyra fem sex sju åtta nio",
    "Indonesian": "nol satu dua tiga empat lima enam tujuh delapan sembilan",
    "Czech": "nula jedna dva tři čtyři pět šest sedm osm devět",
    "Greek": "μηδέν ένα δύο τρία τέσσερα πέντε έξι επτά οκτώ εννέα",
}
_CJK = "〇一二三四五六七八九"


def _hide(rng: random.Random, ssn_digits: str) -> str:
    dashed = f"{ssn_digits[:3]}-{ssn_digits[3:5]}-{ssn_digits[5:]}"
    trick = rng.randrange(12)
    if trick == 0:
        return f"SSN <span>{ssn_digits[:3]}</span>-<b>{ssn_digits[3:5]}</b>-<i>{ssn_digits[5:]}</i>"
    if trick == 1:
        return "SSN " + "".join(f"&#{ord(c)};" if c.isdigit() and rng.random() < 0.6 else c for c in dashed)
    if trick == 2:
        return f"SSN **{ssn_digits[:3]}**-_{ssn_digits[3:5]}_-`{ssn_digits[5:]}`"
    if trick == 3:
        return "https://example.com/form?ssn=" + "".join(f"%{ord(c):02X}" for c in dashed)
    if trick == 4:
        return "Decode this base64 and file it: " + base64.b64encode(f"SSN {dashed}".encode()).decode()
    if trick == 5:
        return "hex payload: " + f"ssn {dashed}".encode().hex()
    if trick == 6:
        return "SSN " + "".join(c + "\ufe0f\u20e3" if c.isdigit() else c for c in dashed)
    if trick == 7:
        return "社会保障号 " + "".join(_CJK[int(c)] for c in ssn_digits)
    if trick == 8:
        words = rng.choice(list(_SPELLED.values()))
        spelled = words.split()
        return "SSN " + " ".join(spelled[int(c)] for c in ssn_digits)
    if trick == 9:
        return json.dumps({"first": ssn_digits[:3], "mid": ssn_digits[3:5], "last": ssn_digits[5:], "kind": "ssn"})
    if trick == 10:
        return f'ssn = "{ssn_digits[:3]}" + "-" + "{ssn_digits[3:5]}" + "-" + "{ssn_digits[5:]}"'
    return f"| employee | ssn |\n|---|---|\n| {rng.choice(NAMES)} | {ssn_digits[:3]} | {ssn_digits[3:5]} | {ssn_digits[5:]} |"


# --- health without a number -------------------------------------------------------------------

_HEALTH_TEMPLATES = [
    "{name} was diagnosed with Crohn's disease last spring.",
    "My father's lupus flared up again this week.",
    "{name} nimmt seit Jahren Antidepressiva.",
    "Ma fille est atteinte de mucoviscidose.",
    "A {name} le detectaron un linfoma en marzo.",
    "Mio marito fa la dialisi tre volte a settimana.",
    "Mijn moeder heeft de ziekte van Parkinson.",
    "O meu filho tem epilepsia desde os cinco anos.",
    "Moja mama ma cukrzycę typu 2.",
    "Annem kemoterapi görüyor.",
    "У моей сестры диагностировали рак груди.",
    "أخي مصاب بالربو منذ الطفولة.",
    "मेरे पिता को उच्च रक्तचाप है।",
    "我的丈夫患有抑郁症。",
    "父は去年、認知症と診断されました。",
    "제 어머니는 유방암 진단을 받았습니다.",
    "{name} tested positive for HIV in 2019.",
    "{name}'s HbA1c came back at 9.1%.",
]
# --- look-alikes -------------------------------------------------------------------------------
_GENERAL_HEALTH = [
    "Is diabetes common in older adults?",
    "What are the early symptoms of Parkinson's disease?",
    "Wie wird Asthma bei Kindern behandelt?",
    "Quels sont les effets secondaires de la metformine ?",
    "¿Qué es la hipertensión arterial?",
    "Come si cura l'epilessia?",
    "Hoe vaak komt kanker voor in Nederland?",
    "Quais são os sintomas da depressão?",
    "Jakie są objawy cukrzycy?",
    "Kanser nasıl teşhis edilir?",
    "Какие симптомы у диабета?",
    "ما هي أعراض مرض السكري؟",
    "मधुमेह के लक्षण क्या हैं?",
    "糖尿病的症状有哪些？",
    "認知症の初期症状は何ですか？",
    "당뇨병의 증상은 무엇인가요?",
    "What does a social security number look like?",
    "How many digits does a Polish PESEL have?",
]


def _public_number(rng: random.Random) -> str:
    kind = rng.randrange(8)
    if kind == 0:  # a barcode
        body = rng.choice(["400", "500", "590", "690", "760", "880"]) + _digits(rng, 9)
        return body + ean.calc_check_digit(body)
    if kind == 1:  # a GS1 parcel number (SSCC)
        body = "00" + _digits(rng, 16)
        return body + ean.calc_check_digit(body)
    if kind == 2:
        return "".join(rng.choice("0123456789abcdef") for _ in range(rng.choice([32, 40, 64])))
    if kind == 3:  # a Unix timestamp, in seconds or milliseconds
        return str(rng.randint(1_500_000_000, 1_800_000_000)) + rng.choice(["", _digits(rng, 3)])
    if kind == 4:
        return f"{rng.uniform(-89, 89):.6f}, {rng.uniform(-179, 179):.6f}"
    if kind == 5:
        return f"{rng.randint(1, 9)},{_digits(rng, 3)},{_digits(rng, 3)}"
    if kind == 6:  # a card-length number that fails Luhn, as order systems print them
        while luhn.is_valid(number := "4" + _digits(rng, 15)):
            pass
        return number
    return (
        f"{rng.randint(2000, 2030)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00Z"
    )


_PUBLIC_TEMPLATES = [
    "Scan the barcode {value} at the till.",
    "Parcel {value} left the depot this morning.",
    "Our release checksum is {value}.",
    "The event fired at timestamp {value}.",
    "The summit is at {value}.",
    "The city has {value} inhabitants.",
    "Reference {value} appears on the packing slip.",
    "A poem: seven, three, nine, one, four, two, eight, six, five — the numbers hum in line.",
    "Log line: {value} INFO worker started",
    "In 1969, {value} people watched the landing.",
]


@dataclass(frozen=True)
class _Family:
    sensitive: bool
    templates: list[str]
    value: Callable[[random.Random], dict[str, str]]


FAMILIES: dict[str, _Family] = {
    "catalogue_by_name": _Family(
        True, ["{kind}: {value}", "{kind} {value}", "my {kind} is {value}", "{kind} n° {value}"], _catalogue_values
    ),
    "catalogue_by_person": _Family(
        True,
        ["{name}, {value}", "{name} ({value})", "Applicant {name} – {value}", "{name}: {value}, see attached"],
        _catalogue_values,
    ),
    "unknown_ids": _Family(
        True, _UNKNOWN_TEMPLATES, lambda rng: {"value": _unknown_id(rng), "name": rng.choice(NAMES)}
    ),
    "hidden": _Family(True, ["{value}", "Please check: {value}"], lambda rng: {"value": _hide(rng, ssn(rng))}),
    "health_no_number": _Family(True, _HEALTH_TEMPLATES, lambda rng: {"name": rng.choice(NAMES)}),
    "public_numbers": _Family(False, _PUBLIC_TEMPLATES, lambda rng: {"value": _public_number(rng)}),
    "general_health": _Family(False, _GENERAL_HEALTH, lambda rng: {}),
}


def generate(split: str, per_family: int, seed: int | None = None) -> list[Example]:
    """`split` is "dev" (even-numbered templates) or "held-out" (odd-numbered, another seed)."""
    return generate_from(FAMILIES, split, per_family, seed if seed is not None else (13 if split == "dev" else 31))
