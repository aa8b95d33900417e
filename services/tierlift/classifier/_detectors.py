"""Finds sensitive data in text and says which data class it implies.

Identifiers with a checksum are validated so that order numbers and the like are not taken
for them: payment cards (Luhn), IBANs (ISO 7064 mod 97), French NIR (mod 97 key), Spanish
DNI (mod 23 letter), Dutch BSN (11-test, and only next to its name). Formats without a
checksum (US SSN, UK National Insurance number, Italian codice fiscale) are matched by their
exact shape. Only the kinds found are reported, never the values.

A REGULATED finding is one a breach would have to be reported for: financial identifiers,
government ids, health data. CONFIDENTIAL: secrets and personal contact data.
"""

from __future__ import annotations

import re

from tierlift.v1 import common_pb2

REGULATED = common_pb2.DATA_CLASS_REGULATED
CONFIDENTIAL = common_pb2.DATA_CLASS_CONFIDENTIAL

_DIGIT_RUN = re.compile(r"(?<![\w.])(?:\d[ -]?){11,19}(?![\w])")
_CARD_WORDS = re.compile(r"\b(?:card|visa|mastercard|maestro|amex|cvv|cvc|expir\w*|exp)\b", re.I)
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}\b")
_US_SSN = re.compile(r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b")
_UK_NINO = re.compile(r"\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b")
_IT_FISCAL = re.compile(r"\b[A-Z]{6}\d{2}[ABCDEHLMPRST]\d{2}[A-Z]\d{3}[A-Z]\b")
_FR_NIR = re.compile(r"\b([12] ?\d{2} ?\d{2} ?(?:\d{2}|2A|2B) ?\d{3} ?\d{3}) ?(\d{2})\b")
_ES_DNI = re.compile(r"\b(\d{8})-?([A-Z])\b")
_NL_BSN = re.compile(r"\b(?:BSN|burgerservicenummer|citizen service number)\D{0,20}(\d{9})\b", re.I)
_ID_WORDS = re.compile(
    r"\b(?:passport (?:no|number)|social security|national insurance|tax id|steuer-?id|driver'?s licen[cs]e)\b", re.I
)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b")
_PHONE = re.compile(r"(?<![\w+])(?:\+|00)?\(?\d[\d ().-]{7,18}\d(?:x\d{1,6})?(?!\w)")
_SECRET = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----|\b(?:sk|pk|rk)-[A-Za-z0-9_-]{20,}\b|\bAKIA[0-9A-Z]{16}\b"
    r"|\bgh[pousr]_[A-Za-z0-9]{36}\b|\bxox[abpr]-[A-Za-z0-9-]{10,}\b"
    r"|\b(?:password|passwd|pwd|passphrase|api[ _-]?key|secret|token)\s*(?:is|:|=)\s*\S{6,}",
    re.I,
)
_BIRTH = re.compile(
    r"\b(?:date of birth|d\.o\.b\.?|DOB)\b"
    r"|\bborn(?: on)? (?:\d|(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\b)",
    re.I,
)
# Health data: care words and conditions. Broad on purpose: a false REGULATED keeps a prompt on
# our own pods (costs quality), a missed one sends health data to a third party (a breach).
_HEALTH = re.compile(
    r"\b(?:diagnos\w*|prescri\w*|patient|medical|medication|medicine|clinic\w*|hospital\w*|symptom\w*|therap\w*"
    r"|treatment|surgery|ICD-?10|MRN|doctor'?s note|blood (?:test|pressure|sugar)|biopsy|chemo\w*|radiotherapy"
    r"|oncolog\w*|psychiatr\w*|psycholog\w*|mental health|HIV|AIDS|hepatitis|cancer|tumou?r|diabet\w*|insulin"
    r"|asthma|epilep\w*|seizure\w*|depress\w*|anxiety disorder|bipolar|schizophren\w*|dementia|alzheimer\w*"
    r"|parkinson\w*|sclerosis|hypertension|stroke|cardiac|arrhythmia|pregnan\w*|miscarriage|STD|STI"
    r"|disabilit\w*|rehab\w*|addiction|overdose|allerg\w*)\b",
    re.I,
)


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _iban_ok(candidate: str) -> bool:
    iban = candidate.replace(" ", "")
    if not 15 <= len(iban) <= 34:
        return False
    rearranged = iban[4:] + iban[:4]
    numeric = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(numeric) % 97 == 1


def _has_card(text: str) -> bool:
    """13-19 digits passing Luhn; 12 (Maestro) only next to a card word, since 1 in 10 passes."""
    near_card_word = bool(_CARD_WORDS.search(text))
    for match in _DIGIT_RUN.finditer(text):
        digits = re.sub(r"[ -]", "", match.group())
        if (13 <= len(digits) <= 19 or (len(digits) == 12 and near_card_word)) and _luhn_ok(digits):
            return True
    return False


def _nir_ok(match: re.Match[str]) -> bool:
    body = match.group(1).replace(" ", "").replace("2A", "19").replace("2B", "18")
    return 97 - int(body) % 97 == int(match.group(2))


def _dni_ok(match: re.Match[str]) -> bool:
    return "TRWAGMYFPDXBNJZSQVHLCKE"[int(match.group(1)) % 23] == match.group(2)


def _bsn_ok(number: str) -> bool:
    weights = [9, 8, 7, 6, 5, 4, 3, 2, -1]
    return sum(int(d) * w for d, w in zip(number, weights, strict=True)) % 11 == 0


def _has_national_id(text: str) -> bool:
    return bool(
        _US_SSN.search(text)
        or _UK_NINO.search(text)
        or _IT_FISCAL.search(text)
        or _ID_WORDS.search(text)
        or any(_nir_ok(m) for m in _FR_NIR.finditer(text))
        or any(_dni_ok(m) for m in _ES_DNI.finditer(text))
        or any(_bsn_ok(m.group(1)) for m in _NL_BSN.finditer(text))
    )


def _has_phone(text: str) -> bool:
    for match in _PHONE.finditer(text):
        candidate = match.group()
        digits = sum(ch.isdigit() for ch in candidate)
        separated = candidate.startswith(("+", "00", "(")) or bool(re.search(r"\d[ ().-]+\d", candidate))
        if 9 <= digits <= 21 and separated and not re.fullmatch(r"[\d.]+", candidate):
            return True
    return False


def detect_sensitive_data(text: str) -> dict[str, common_pb2.DataClass]:
    """Return {finding kind: data class} for everything found in `text`."""
    found: dict[str, common_pb2.DataClass] = {}
    if _has_card(text):
        found["payment_card"] = REGULATED
    if any(_iban_ok(m.group()) for m in _IBAN.finditer(text)):
        found["iban"] = REGULATED
    if _has_national_id(text):
        found["national_id"] = REGULATED
    if _HEALTH.search(text):
        found["health"] = REGULATED
    if _SECRET.search(text):
        found["secret"] = CONFIDENTIAL
    if _EMAIL.search(text):
        found["email"] = CONFIDENTIAL
    if _has_phone(text):
        found["phone"] = CONFIDENTIAL
    if _BIRTH.search(text):
        found["date_of_birth"] = CONFIDENTIAL
    return found
