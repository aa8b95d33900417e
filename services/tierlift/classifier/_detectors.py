"""Finds sensitive data in text and says which data class it implies.

The text is normalised first (`_normalise`: NFKC, invisible characters removed, every space
and dash folded, digits of any script made ASCII), so a zero-width space or a no-break space
cannot hide a number; then every detector reads it and each of its other readings (`_views`:
markup removed, JSON fields and table cells joined, base64 and hex decoded, spelled digits and
CJK numerals as digits). Identifiers are found by `_identifiers` (checksums from python-stdnum,
context words) and, for what no checksum knows, by the fail-closed rule of `_personal`; health
data by `_vocabulary`, about a person. Every pattern is RE2, so detection time is linear in the
text's length. Only the kinds found are reported, never the values.

A REGULATED finding is one a breach would have to be reported for: financial identifiers,
government, tax, health-insurance and other personal ids, health data about a person.
CONFIDENTIAL: secrets and personal contact data.
"""

from __future__ import annotations

import itertools

import phonenumbers
import re2

from tierlift.classifier import _identifiers as ids
from tierlift.classifier._normalise import fold, normalise
from tierlift.classifier._personal import near, person_positions, unexplained_identifier
from tierlift.classifier._views import views
from tierlift.classifier._vocabulary import health_positions
from tierlift.v1 import common_pb2

REGULATED = common_pb2.DATA_CLASS_REGULATED
CONFIDENTIAL = common_pb2.DATA_CLASS_CONFIDENTIAL

# Health words this close to a person are about that person.
_HEALTH_BEFORE, _HEALTH_AFTER = 160, 160
_SEPARATED = re2.compile(r"\d[ ().-]+\d")
_DOTTED = re2.compile(r"[\d.]+")
_ZIP_PLUS_4 = re2.compile(r"\d{5}-\d{4}")
_NANP_DOTTED = re2.compile(r"\d{3}\.\d{3}\.\d{4}")
_EMAIL = re2.compile(
    r"[\w.+-]{1,64}@[\w-]{1,63}\.[\w.-]{1,63}"
    # written to dodge a pattern: jane [at] example [dot] com, jane(at)example.com
    r"|(?i:[\w.+-]{1,64} ?[\[({<] ?at ?[\])}>] ?[\w-]{1,63} ?(?:[\[({<] ?dot ?[\])}>]|\.) ?[a-z]{2,24}\b)"
)
_PHONE = re2.compile(r"(?:\+|00)?\(?\d[\d ().-]{7,18}\d(?:x\d{1,6})?")
_SECRET = re2.compile(
    r"-----BEGIN [A-Z ]{0,40}PRIVATE KEY-----|\b(?:sk|pk|rk)-[A-Za-z0-9_-]{20}|\bAKIA[0-9A-Z]{16}\b"
    r"|\bgh[pousr]_[A-Za-z0-9]{36}\b|\bxox[abpr]-[A-Za-z0-9-]{10}"
    r"|(?i:\b(?:password|passwd|pwd|passphrase|api[ _-]?key|secret|token|passwort|mot de passe|contrasena"
    r"|wachtwoord)\s{0,3}(?:is|:|=|ist|est|es)\s{0,3}\S{6})"
    # a setting named for the secret it holds, as code and config files write it (aws_secret_access_key)
    r"|(?i:\b[a-z0-9_]{0,40}(?:secret|passw(?:or)?d|api_?key|access_key|private_key)\s{0,3}[:=]\s{0,3}"
    r"[\"']?[^\s\"']{6})"
    r"|\b(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{16}"  # Stripe's keys
    r"|\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8}"  # a JSON web token
    r"|(?i:\bbearer\s{1,3}[A-Za-z0-9._~+/=-]{20})"  # an HTTP bearer credential
    r"|\b[A-Za-z][A-Za-z0-9+.-]{1,15}://[^\s:/@]{1,64}:[^\s/@]{3,128}@"  # a password inside a URL
)
_BIRTH = re2.compile(
    r"\b(?:date of birth|d\.o\.b\.?|dob|geburtsdatum|geboren am|date de naissance|ne le|nee le"
    r"|fecha de nacimiento|nacid[oa] el|data di nascita|nat[oa] il|geboortedatum|geboren op|data de nascimento)\b"
    r"|\bborn(?: on)? (?:\d|(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]{0,6}\b)"
)


# Where a number written without its country code is tried: national numbers with a trunk
# prefix 0 in the templates' European locales (and a few large others), the rest as NANP or
# Spanish and Italian numbers, which have none. libphonenumber knows each country's number
# ranges, so an ISBN, an order number or a timestamp is not taken for a phone.
_TRUNK_ZERO_REGIONS = ("GB", "DE", "FR", "NL", "IT", "AU", "BR", "IN")
_NO_TRUNK_REGIONS = ("US", "CA", "ES", "IT")
_MAX_PHONE_CANDIDATES = 64  # bounds the work on a text full of numbers


def _is_phone_number(candidate: str) -> bool:
    national = candidate.lstrip("(")
    if candidate.startswith("+"):
        regions: tuple[str | None, ...] = (None,)
    else:
        regions = _TRUNK_ZERO_REGIONS if national.startswith("0") else _NO_TRUNK_REGIONS
    for region in regions:
        try:
            number = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        # written with its country code, a number of a possible length is a phone; without, it
        # must be in a range the country has issued
        if phonenumbers.is_possible_number(number) if region is None else phonenumbers.is_valid_number(number):
            return True
    return False


def _phone_spans(text: str) -> list[tuple[int, int]]:
    """Where phone numbers are written, as phone numbers are written."""
    spans = []
    for n, match in enumerate(_PHONE.finditer(text)):
        if n == _MAX_PHONE_CANDIDATES:
            break
        before = text[match.start() - 1] if match.start() else " "
        after = text[match.end()] if match.end() < len(text) else " "
        if before.isalnum() or before in "+.-/_#" or after.isalnum() or after in "-/_":
            continue  # part of a longer token: a version, a hash, an id
        candidate = match.group()
        digits = sum(ch.isdigit() for ch in candidate)
        separated = candidate.startswith(("+", "00", "(")) or bool(_SEPARATED.search(candidate))
        dotted = _DOTTED.fullmatch(candidate) and not _NANP_DOTTED.fullmatch(candidate)  # versions, not 415.555.2671
        plausible = 9 <= digits <= 15 and separated and not dotted and not _ZIP_PLUS_4.fullmatch(candidate)
        if plausible and _is_phone_number("+" + candidate[2:] if candidate.startswith("00") else candidate):
            spans.append((match.start(), match.end()))
    return spans


def _identifier_findings(text: str, folded: str) -> dict[str, common_pb2.DataClass]:
    found: dict[str, common_pb2.DataClass] = {}
    folded = folded.replace("_", " ")  # keys name what they hold: customer_ssn, card_number, id_no
    context = ids.Context(folded)
    for span in itertools.chain(ids.digit_spans(ids.with_lookalike_digits(text)), ids.spelled_spans(folded)):
        if "payment_card" not in found and ids.is_card(span, context):
            found["payment_card"] = REGULATED
        if "national_id" not in found and ids.numeric_id(span, context):
            found["national_id"] = REGULATED
        if len(found) == 2:
            break
    upper = ids.ascii_upper(folded)
    if "national_id" not in found and (ids.alnum_id(upper, context) or ids.document_number(folded)):
        found["national_id"] = REGULATED
    if ids.has_iban(upper):
        found["iban"] = REGULATED
    elif ids.bank_account(folded):
        found["bank_account"] = REGULATED
    return found


def detect_sensitive_data(text: str) -> dict[str, common_pb2.DataClass]:
    """Return {finding kind: data class} for everything found in `text` or any of its views."""
    normalised = normalise(text)
    found = _findings(normalised)
    for view in views(normalised):
        for kind, data_class in _findings(view).items():
            found.setdefault(kind, data_class)
    return found


def _findings(normalised: str) -> dict[str, common_pb2.DataClass]:
    folded = fold(normalised)
    found = _identifier_findings(normalised, folded)
    persons = person_positions(normalised, folded)
    if any(near(persons, at, at, _HEALTH_BEFORE, _HEALTH_AFTER) for at in health_positions(folded)):
        found["health"] = REGULATED
    phones = _phone_spans(normalised)
    if REGULATED not in found.values() and unexplained_identifier(normalised, folded, persons, phones):
        found["personal_id"] = REGULATED
    if _SECRET.search(normalised):
        found["secret"] = CONFIDENTIAL
    if _EMAIL.search(normalised):
        found["email"] = CONFIDENTIAL
    if phones:
        found["phone"] = CONFIDENTIAL
    if _BIRTH.search(folded):
        found["date_of_birth"] = CONFIDENTIAL
    return found
