"""Finds sensitive data in text and says which data class it implies.

Identifiers with a checksum (payment cards: Luhn; IBANs: ISO 7064 mod 97) are validated so
that order numbers and the like are not taken for them. Only the kinds found are reported,
never the values.
"""

from __future__ import annotations

import re

from switchyard.v1 import common_pb2

_CARD = re.compile(r"\b(?:\d[ -]?){13,19}\b")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}\b")
_US_SSN = re.compile(r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b")
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b")
_PHONE = re.compile(r"(?<!\w)\+?\d{1,3}[ .-]?\(?\d{2,4}\)?[ .-]?\d{3,4}[ .-]?\d{3,4}(?!\w)")
_SECRET = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----|\b(?:sk|pk|rk)-[A-Za-z0-9_-]{20,}\b|\bAKIA[0-9A-Z]{16}\b"
    r"|\bgh[pousr]_[A-Za-z0-9]{36}\b|\bxox[abpr]-[A-Za-z0-9-]{10,}\b"
)
_HEALTH = re.compile(
    r"\b(?:diagnos(?:is|ed)|prescri(?:bed|ption)|patient|medical record|ICD-?10|HIV|oncolog\w*|"
    r"chemotherapy|psychiatric)\b",
    re.IGNORECASE,
)

# finding kind -> data class it implies
REGULATED = common_pb2.DATA_CLASS_REGULATED
CONFIDENTIAL = common_pb2.DATA_CLASS_CONFIDENTIAL


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
    for match in _CARD.finditer(text):
        digits = re.sub(r"[ -]", "", match.group())
        if 13 <= len(digits) <= 19 and _luhn_ok(digits):
            return True
    return False


def detect_sensitive_data(text: str) -> dict[str, common_pb2.DataClass]:
    """Return {finding kind: data class} for everything found in `text`."""
    found: dict[str, common_pb2.DataClass] = {}
    if _has_card(text):
        found["payment_card"] = REGULATED
    if any(_iban_ok(m.group()) for m in _IBAN.finditer(text)):
        found["iban"] = REGULATED
    if _US_SSN.search(text):
        found["national_id"] = REGULATED
    if _HEALTH.search(text):
        found["health"] = REGULATED
    if _SECRET.search(text):
        found["secret"] = CONFIDENTIAL
    if _EMAIL.search(text):
        found["email"] = CONFIDENTIAL
    if _PHONE.search(text):
        found["phone"] = CONFIDENTIAL
    return found
