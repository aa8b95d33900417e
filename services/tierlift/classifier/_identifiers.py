"""Payment cards, bank accounts and government ids in normalised text (see `_normalise`).

Numbers are found as they are written: digit groups joined by any one to three separators
(space, '-', '.', '/', '_'), so "4111/1111_1111 1111", "078 05 1120" and a card with a space
between every digit are all seen; every run of whole groups of a plausible length is a
candidate. A card number wrapped onto the next line counts too, when it stands alone in a
card's grouping or beside a card word (a column of numbers is not one number); so does one
whose groups are joined by a character no number is written with ("4111*1111|1111~1111"), read
only as a card and only in a card's grouping (through ',', ';', ':' or '+', or with spaces, as
lists, sums and tables are written, beside a card word). Digits spelled out as words ("zero
seven eight, zero five, ...") are read the same way, eight or more in a run. A candidate
counts only if its format's checksum holds (python-stdnum: Luhn, mod 11, mod 97, Verhoeff,
check letters, embedded dates), so ISBNs, amounts and order numbers stay public. A format
whose check is weak (one check digit in ten) or that has none counts only next to a word that
names it, in the languages the templates cover; a distinctive written shape (an SSN as 3-2-4
digits, a SIN as 3-3-3, an Aadhaar as 4-4-4) stands on its own.

Every pattern is RE2 (linear time, no backtracking) and the candidate walk is bounded by the
longest identifier, so detection time grows linearly with the text.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import re2
from stdnum import ean, luhn
from stdnum import iban as std_iban
from stdnum.ar import cuit
from stdnum.at import vnr
from stdnum.au import tfn
from stdnum.be import nn as be_nn
from stdnum.bg import egn
from stdnum.br import cpf
from stdnum.ca import sin
from stdnum.ch import ssn as ch_ssn
from stdnum.cl import rut
from stdnum.cn import ric
from stdnum.cz import rc
from stdnum.de import idnr
from stdnum.dk import cpr
from stdnum.ee import ik
from stdnum.es import dni, nie
from stdnum.exceptions import ValidationError
from stdnum.fi import hetu
from stdnum.fr import nir
from stdnum.gb import nhs
from stdnum.gr import amka
from stdnum.hr import oib
from stdnum.id import nik
from stdnum.ie import pps
from stdnum.il import idnr as il_idnr
from stdnum.in_ import aadhaar, pan
from stdnum.it import codicefiscale
from stdnum.jp import in_ as my_number
from stdnum.kr import rrn
from stdnum.lt import asmens
from stdnum.mx import curp
from stdnum.my import nric as my_nric
from stdnum.nl import bsn
from stdnum.no import fodselsnummer
from stdnum.nz import ird
from stdnum.pk import cnic
from stdnum.pl import pesel
from stdnum.ro import cnp
from stdnum.se import personnummer
from stdnum.si import emso
from stdnum.th import pin as th_pin
from stdnum.tr import tckimlik
from stdnum.us import itin
from stdnum.za import idnr as za_idnr

from tierlift.classifier._normalise import fold, normalise

MAX_DIGITS = 19  # the longest number checked (a payment card)
_MIN_CARD_DIGITS = 12  # the shortest card number (some Maestro cards)
_MAX_SEPARATOR = 3
_SEPARATORS = frozenset(" -./_")
# Joining characters of a card written to dodge a pattern; ',', ';', ':' and '+' also write
# lists, times and sums, so through them (or with spaces around any of them, as tables are
# written) only a card word will do.
_ODD_SEPARATORS = frozenset("*|~#\\+,;:")
_LISTING = frozenset("+,;: ")
_BEFORE, _AFTER = 64, 40  # how far a context word may be from the number it names

_DIGIT_GROUP = re2.compile(r"\d+")


def _words(*alternatives: str, unspaced: tuple[str, ...] = ()) -> Any:
    """A case-insensitive word pattern over folded text (lowercase, no accents). `unspaced` are
    words of scripts written without spaces between words (plain text, folded here as the text
    is), matched anywhere: RE2's \\b knows only ASCII word characters, never beside them."""
    pattern = r"\b(?:" + "|".join(alternatives) + r")\b"
    return re2.compile(pattern + "".join(f"|{re2.escape(fold(normalise(word)))}" for word in unspaced))


# Words that name an identifier, in English, German, French, Dutch, Spanish, Italian, Portuguese.
ID_CONTEXT = _words(
    r"ssn", r"ssn#", r"social security", r"soc\.? sec\.?", r"itin", r"tax ?id", r"taxpayer id\w{0,12}", r"tin",
    r"sin", r"social insurance", r"nas", r"assurance sociale", r"nhs", r"nhs (?:no|number|nr)", r"national health",
    r"national insurance", r"nino", r"bsn", r"burgerservicenummer", r"sofinummer", r"pesel", r"cpf", r"aadhaar",
    r"uidai", r"tfn", r"tax file number", r"steuer-?id", r"steuer-?idnr", r"steueridentifikationsnummer",
    r"identifikationsnummer", r"sozialversicherungsnummer", r"rentenversicherungsnummer", r"personnummer",
    r"fodselsnummer", r"f\x{f8}dselsnummer", r"cpr", r"cpr-nr", r"rrn", r"resident registration", r"my number",
    r"individual number", r"id (?:no|number|nr)", r"id-nr", r"identity (?:no|number|card)", r"national id\w{0,8}",
    r"identification number", r"personalausweis\w{0,8}", r"ausweis\w{0,8}", r"carte d'identite", r"numero d'identite",
    r"numero de securite sociale", r"securite sociale", r"insee", r"documento de identidad", r"dni", r"nie", r"nif",
    r"numero de identificacion", r"seguridad social", r"seguro social", r"carta d'identita", r"codice fiscale",
    r"tessera sanitaria", r"identiteitskaart", r"identiteitsnummer", r"rijksregister\w{0,8}", r"registre national",
    r"numero national", r"national number", r"cartao de cidadao", r"numero de contribuinte", r"pps", r"curp", r"pan",
    r"personal number", r"citizen number", r"citizen service number", r"patient (?:no|number|id)",
    r"tc kimlik(?: no| numarasi)?", r"kimlik (?:no|numarasi)", r"tckn", r"cuit", r"cuil", r"cnp",
    r"cod numeric personal", r"egn", r"rodne cislo", r"rodne c\.?", r"teudat zehut", r"mispar zehut", r"ird",
    # "[a-z]{2,}ssn": customer_ssn written as one word, never an ISSN
    r"rut", r"rol unico tributario", r"s\.s\.n", r"[a-z]{2,24}ssn", r"nric", r"fin (?:no|number)",
    r"i/?c (?:no|number)", r"mykad", r"kad pengenalan", r"hkid", r"cnic", r"nadra", r"nik", r"ktp",
    r"nomor induk kependudukan", r"amka", r"isikukood", r"asmens kodas", r"oib", r"emso",
    r"svnr", r"sv-?nummer", r"versicherungsnummer", r"medicare (?:card|no|number|id)", r"mbi",
    r"medicare beneficiary identifier", r"beneficiary id\w{0,10}", r"hicn",
    # "Taiwan ID", "Thai ID card no": a country's id, named by the country
    r"(?:taiwan(?:ese)?|roc|hong kong|singapore(?:an)?|malaysian?|thai|pakistani?|indonesian?|south african?|sa"
    r"|philippine|korean?|japanese|chinese|indian|israeli|turkish|greek|estonian|lithuanian|croatian|slovenian"
    r"|austrian|romanian|bulgarian|czech|chilean|argentinian?|argentine|brazilian|mexican|us|u\.s\.) (?:national )?"
    r"id(?: card)?(?: no| number)?",
    unspaced=(
        "\u500b\u4eba\u756a\u53f7", "\u4e2a\u4eba\u756a\u53f7",  # 個人番号 (Japanese), 个人番号
        "\u30de\u30a4\u30ca\u30f3\u30d0\u30fc",  # マイナンバー
        "\uc8fc\ubbfc\ub4f1\ub85d\ubc88\ud638", "\uc8fc\ubbfc\ubc88\ud638",  # 주민등록번호, 주민번호
        "\u8eab\u4efd\u8bc1", "\u8eab\u4efd\u8b49", "\u8eab\u5206\u8b49",  # 身份证, 身份證 (Hong Kong), 身分證 (Taiwan)
        # เลขประจำตัวประชาชน (Thai)
        "\u0e40\u0e25\u0e02\u0e1b\u0e23\u0e30\u0e08\u0e33\u0e15\u0e31\u0e27"
        "\u0e1b\u0e23\u0e30\u0e0a\u0e32\u0e0a\u0e19",
        "\u0e1a\u0e31\u0e15\u0e23\u0e1b\u0e23\u0e30\u0e0a\u0e32\u0e0a\u0e19",  # บัตรประชาชน
        "\u0435\u0433\u043d",  # ЕГН (Bulgarian, folded to lower case): \b is ASCII-only
    ),
)  # fmt: skip
CARD_CONTEXT = _words(
    r"card", r"credit", r"debit", r"visa", r"mastercard", r"maestro", r"amex", r"cvv", r"cvc", r"exp\w{0,8}",
    r"karte", r"kreditkarte", r"kartennummer", r"carte", r"carte bancaire", r"tarjeta", r"carta", r"creditcard",
    r"pinpas", r"kaart", r"cartao", r"pan",
)  # fmt: skip
DOCUMENT_CONTEXT = _words(
    r"passport", r"passport (?:no|number|nr)", r"reisepass\w{0,8}", r"pass-?nr", r"passnummer", r"passeport",
    r"pasaporte", r"passaporto", r"paspoort\w{0,8}", r"passaporte", r"driving licen[cs]e", r"driver'?s licen[cs]e",
    r"drivers licen[cs]e", r"driver licen[cs]e", r"licen[cs]e (?:no|number|nr)", r"dl (?:no|number|#)",
    r"fuhrerschein\w{0,8}", r"permis de conduire", r"carnet de conducir", r"permiso de conducir", r"patente di guida",
    r"rijbewijs\w{0,8}", r"carta de conducao", r"carteira de motorista", r"personalausweis\w{0,8}",
    r"ausweis\w{0,8}", r"carte d'identite", r"identity card", r"id card", r"id-card", r"carta d'identita",
    r"identiteitskaart", r"documento de identidad", r"cartao de cidadao",
)  # fmt: skip
# Words that name a bank account (or the code of its branch) in the seven languages, after which
# a number of 6 to 17 digits is the account: such numbers have no check of their own (outside an
# IBAN), so the word is what makes them one. "Account" alone is not such a word (a social media
# account, a customer account).
ACCOUNT_CONTEXT = _words(
    r"account (?:no|nr|number)", r"(?:bank|checking|savings|current) account", r"acct",
    r"a/c", r"routing (?:no|number)", r"sort code", r"bsb", r"kontonummer", r"konto-?nr", r"numero de compte",
    r"compte bancaire", r"numero de cuenta", r"cuenta bancaria", r"rekeningnummer", r"numero di conto",
    r"conto corrente", r"numero da conta", r"conta bancaria",
    unspaced=("account #", "account#"),  # \b never matches after '#' ("acct #" is "acct" and a prefix)
)  # fmt: skip
_ACCOUNT_NUMBER = re2.compile(
    r"[\s:#.=()\x{b0}-]{0,4}(?:(?:n|no|nr|num|number|numero|nummer|is|ist|est|es)[\s:#.=\x{b0}-]{1,4}){0,2}"
    r"(\d(?:[ -]?\d){5,16})\b"
)
# A document number after its word: 6 to 12 letters and digits, at least two digits.
_DOCUMENT_NUMBER = re2.compile(
    r"[\s:#.,()\x{b0}-]{0,4}(?:(?:no|nr|n|num|number|numero|nummer|nro)[\s:#.\x{b0}-]{0,4})?([a-z0-9]{6,12})\b"
)


@dataclass(frozen=True)
class Span:
    """A run of whole digit groups: its digits, the group lengths as written, its place."""

    digits: str
    groups: tuple[int, ...]
    start: int
    end: int
    whole: bool  # no group joined before or after it: the number as written, not a part of one
    dotted: bool = False  # groups joined by dots, as versions and IP addresses are
    glued: bool = False  # a letter right before or after: part of a code ("5500-0000-0000-0004X")
    wrapped: bool = False  # runs on over a line break ("4111 1111\n1111 1111")
    odd: str = ""  # the joints that are no number's separators ("*", " | "): read only as a card


def digit_spans(text: str) -> Iterator[Span]:
    """Every run of consecutive digit groups joined by separators, up to MAX_DIGITS digits, and
    card-length runs made of whole runs on consecutive lines: O(len(text) x MAX_DIGITS), whatever
    the text."""
    groups = [(m.start(), m.end()) for m in _DIGIT_GROUP.finditer(text)]
    plain = [i > 0 and _joined(text, groups[i - 1][1], start) for i, (start, _) in enumerate(groups)]
    odd = [
        _odd_joint(text, groups[i - 1][1], start) if i > 0 and not plain[i] else ""
        for i, (start, _) in enumerate(groups)
    ]
    joined = [p or bool(o) for p, o in zip(plain, odd, strict=True)]
    joined.append(False)  # nothing after the last group
    wraps = [i > 0 and not joined[i] and _wraps(text, groups[i - 1][1], start) for i, (start, _) in enumerate(groups)]
    wraps.append(False)
    for i, (start, _) in enumerate(groups):
        lengths: tuple[int, ...] = ()
        digits, dotted, wrapped, joints = "", False, False, ""
        for j in range(i, len(groups)):
            g_start, g_end = groups[j]
            if j > i and not joined[j] and (not wraps[j] or joined[i]):
                break  # the run ends; or it would go on over a line break from the middle of a run
            dotted = dotted or (j > i and "." in text[groups[j - 1][1] : g_start])
            wrapped = wrapped or (j > i and wraps[j])
            joints += odd[j] if j > i else ""
            digits += text[g_start:g_end]
            lengths = (*lengths, g_end - g_start)
            if len(digits) > MAX_DIGITS:
                break
            if len(digits) < _MIN_ID_DIGITS:
                continue  # shorter than any identifier checked
            if wrapped and (len(digits) < _MIN_CARD_DIGITS or joined[j + 1]):
                continue  # over a line break only a card is read, made of whole runs of its lines
            glued = _letter_next_to(text, start, g_end)
            # a span over a line break is whole only with nothing joined to it on either line
            before, after = joined[i] or (wrapped and wraps[i]), joined[j + 1] or (wrapped and wraps[j + 1])
            whole = not before and not after and not glued and not _glued(text, start, g_end)
            whole = whole and not (joints and _listed(text, start, g_end, joints))
            yield Span(digits, lengths, start, g_end, whole, dotted, glued, wrapped, joints)


# Digits spelled out, as people dictate a number or write it to pass a filter ("zero seven eight,
# zero five, one one two zero"), in the seven languages, folded. Many are words of their own
# ("un", "due", "sept"); only a run of eight or more is read as a number.
_DIGIT_WORDS = {
    word: digit
    for digit, words in enumerate((
        "zero oh null nul cero", "one un une eins een uno um uma", "two zwei deux twee dos due dois duas",
        "three drei trois drie tres tre", "four vier quatre cuatro quattro quatro", "five funf cinq vijf cinco cinque",
        "six sechs zes seis sei", "seven sieben sept zeven siete sette sete", "eight acht huit ocho otto oito",
        "nine neun neuf negen nueve nove",
    ))
    for word in words.split()
}  # fmt: skip
_SPELLED_MIN = 8
_DIGIT_WORD = "(?:" + "|".join(sorted(_DIGIT_WORDS, key=len, reverse=True)) + ")"
_SPELLED_RUN = re2.compile(rf"\b{_DIGIT_WORD}(?:[ ,.;/-]{{1,3}}{_DIGIT_WORD}){{{_SPELLED_MIN - 1},}}\b")
_SPELLED_PART = re2.compile(rf"({_DIGIT_WORD})|([ ,.;/-]+)")


def spelled_spans(folded: str) -> Iterator[Span]:
    """Runs of digits spelled as words, each run of whole groups up to MAX_DIGITS digits (a
    group ends where a comma, dash, dot or slash stands between two words)."""
    for run in _SPELLED_RUN.finditer(folded):
        groups: list[tuple[str, int, int]] = []  # (digits, start, end)
        new_group = True
        for part in _SPELLED_PART.finditer(run.group()):
            if part.group(2) is not None:
                new_group = new_group or part.group(2).strip(" ") != ""
                continue
            digit, at = str(_DIGIT_WORDS[part.group(1)]), run.start() + part.start()
            if new_group or not groups:
                groups.append((digit, at, at + len(part.group(1))))
            else:
                digits, start, _ = groups[-1]
                groups[-1] = (digits + digit, start, at + len(part.group(1)))
            new_group = False
        for i in range(len(groups)):
            lengths: tuple[int, ...] = ()
            digits = ""
            for j in range(i, len(groups)):
                digits += groups[j][0]
                lengths = (*lengths, len(groups[j][0]))
                if len(digits) > MAX_DIGITS:
                    break
                if len(digits) < _MIN_ID_DIGITS:
                    continue
                whole = i == 0 and j == len(groups) - 1
                yield Span(digits, lengths, groups[i][1], groups[j][2], whole)


# Letters written for digits to get past a pattern ("O78-O5-112O", "4lll 1111 1111 1111"): in a
# run of digits, O and o read as 0, I and l as 1, where no other letter touches the run. One
# character for one, so positions hold; the checksums still decide.
# Python's re, not RE2: two fixed-length alternatives cannot backtrack, and google-re2 encodes the
# whole text again on every search from a position (quadratic over many runs)
_LOOKALIKE = re.compile(r"[0-9][OoIl]|[OoIl][0-9]")
_DIGITISH = frozenset("0123456789OoIl")
_AS_DIGITS = str.maketrans("OoIl", "0011")


def with_lookalike_digits(text: str) -> str:
    """Linear: one search per run that holds a look-alike, each character read at most twice
    (matching every digit group instead cost 27 ms on 14K characters of numbers)."""
    chars: list[str] | None = None
    end = 0
    while (m := _LOOKALIKE.search(text, end)) is not None:
        start, end = m.start(), m.end()
        while start > 0 and text[start - 1] in _DIGITISH:
            start -= 1
        while end < len(text) and text[end] in _DIGITISH:
            end += 1
        if not _letter_next_to(text, start, end):
            chars = chars if chars is not None else list(text)
            chars[start:end] = text[start:end].translate(_AS_DIGITS)
    return "".join(chars) if chars is not None else text


def _letter_next_to(text: str, start: int, end: int) -> bool:
    return (start > 0 and text[start - 1].isalpha()) or (end < len(text) and text[end].isalpha())


_TOKEN_JOINTS = frozenset("-./_*|~+#\\")


def _glued(text: str, start: int, end: int) -> bool:
    """Part of a longer token: a letter right before or after, or one behind a hyphen, dot or
    slash ("f514334e-1321-8720-5356-f58372cfe30b", "v10.4.2")."""
    before, after = text[max(0, start - 2) : start], text[end : end + 2]
    return (
        (len(before) > 0 and before[-1].isalnum())
        or (len(after) > 0 and after[0].isalnum())
        or (len(before) == 2 and before[-1] in _TOKEN_JOINTS and before[0].isalnum())
        or (len(after) == 2 and after[0] in _TOKEN_JOINTS and after[1].isalnum())
    )


def _joined(text: str, end: int, next_start: int) -> bool:
    gap = text[end:next_start]
    return 0 < len(gap) <= _MAX_SEPARATOR and all(ch in _SEPARATORS for ch in gap) and len(set(gap) - {" "}) <= 1


def _odd_joint(text: str, end: int, next_start: int) -> str:
    """The gap, when one character of `_ODD_SEPARATORS` (and spaces) joins two groups; else ""."""
    gap = text[end:next_start]
    if not 0 < len(gap) <= _MAX_SEPARATOR or gap.count(" ") != len(gap) - 1:
        return ""
    return gap if gap.strip(" ") in _ODD_SEPARATORS else ""


def _listed(text: str, start: int, end: int, joints: str) -> bool:
    """One of its joints before or after it too: a row of a table ("|4111|1111|1111|1111|")."""
    before, after = text[max(0, start - _MAX_SEPARATOR) : start].strip(" "), text[end : end + _MAX_SEPARATOR].strip(" ")
    marks = set(joints) - {" "}
    return before[-1:] in marks or after[:1] in marks


def _wraps(text: str, end: int, next_start: int) -> bool:
    """A line break between two groups, with a separator's spaces around it at most ("\r\n"
    arrives normalised as two line breaks)."""
    return next_start - end <= 2 * _MAX_SEPARATOR and text[end:next_start].strip(" ") in ("\n", "\n\n")


class Context:
    """Where the words naming identifiers, cards and documents are in the folded text."""

    def __init__(self, folded: str) -> None:
        self.ids = [m.start() for m in ID_CONTEXT.finditer(folded)]
        self.cards = [m.start() for m in CARD_CONTEXT.finditer(folded)]

    @staticmethod
    def near(positions: list[int], start: int, end: int) -> bool:
        i = bisect.bisect_left(positions, start - _BEFORE)
        return i < len(positions) and positions[i] <= end + _AFTER


# Issuer prefixes of the card networks (Mir 2, Mastercard 2 and 5, Amex, Diners and JCB 3,
# Visa 4, Maestro 5 and 6, Discover and UnionPay 6): a number that passes Luhn but starts
# where no network issues (an ISBN's 978, a barcode's 0) is not a card.
def _card_prefix(digits: str) -> bool:
    return digits[0] in "3456" or "22" <= digits[:2] <= "27"  # a string test: an RE2 call costs ~8 us


_CARD_SHAPES = {(4, 4, 4, 4), (4, 6, 5), (4, 6, 4), (4, 4, 4, 4, 3), (4, 4, 4, 4, 2), (4, 4, 4, 1)}


def is_card(span: Span, context: Context) -> bool:
    n = len(span.digits)
    if not 12 <= n <= 19 or not _card_prefix(span.digits) or span.glued or not luhn.is_valid(span.digits):
        return False
    if span.wrapped and not (
        (span.whole and span.groups in _CARD_SHAPES) or Context.near(context.cards, span.start, span.end)
    ):
        return False  # over a line break: standing alone in a card's grouping, or beside a card word
    if span.odd and not (
        span.whole
        and span.groups in _CARD_SHAPES
        and (_LISTING.isdisjoint(span.odd) or Context.near(context.cards, span.start, span.end))
    ):
        return False  # odd joints: a card's grouping, and a card word where lists are written so
    # 12 digits (some Maestro cards): one number in ten passes Luhn, so only next to a card word;
    # dotted groups are versions far more often than cards, unless grouped as cards are; 13 digits
    # that are a valid EAN-13 are a barcode (13-digit cards are long retired), and 15 digits are an
    # American Express card (34, 37) or, as often, a phone's IMEI: other networks issue none that long
    if (
        n == 12
        or (span.dotted and span.groups not in _CARD_SHAPES)
        or (n == 13 and ean.is_valid(span.digits))
        or (n == 15 and span.digits[:2] not in ("34", "37"))
    ):
        return Context.near(context.cards, span.start, span.end)
    return True


def _ssn_shape(d: str) -> bool:
    return d[:3] not in ("000", "666") and d[0] != "9" and d[3:5] != "00" and d[5:] != "0000"


def _rrn_birth_date(d: str) -> bool:
    try:
        rrn.get_birth_date(d)
    except ValidationError:
        return False
    return True


def _au_medicare(d: str) -> bool:
    """An Australian Medicare card number (python-stdnum has none): its first digit 2-6 and a
    weighted check digit ninth; a tenth digit is the issue number, an eleventh the person's."""
    weighted = sum(int(c) * w for c, w in zip(d[:8], (1, 3, 7, 9, 1, 3, 7, 9), strict=True))
    return d[0] in "23456" and weighted % 10 == int(d[8])


# (lengths, check, written shape that needs no context word or None). stdnum's own SSN check
# refuses a few numbers known to be published (078-05-1120): still an SSN as far as data goes.
_Check = tuple[tuple[int, ...], Callable[[str], bool], tuple[int, ...] | None]
_NUMERIC_IDS: dict[str, _Check] = {
    "us_ssn": ((9,), _ssn_shape, (3, 2, 4)),
    "us_itin": ((9,), itin.is_valid, (3, 2, 4)),
    "ca_sin": ((9,), lambda d: d[0] not in "08" and sin.is_valid(d), (3, 3, 3)),
    "nl_bsn": ((9,), bsn.is_valid, None),
    "au_tfn": ((8, 9), tfn.is_valid, None),
    "gb_nhs": ((10,), nhs.is_valid, None),
    "dk_cpr": ((10,), cpr.is_valid, None),
    "se_personnummer": ((10, 12), personnummer.is_valid, None),
    "de_idnr": ((11,), idnr.is_valid, None),
    "pl_pesel": ((11,), pesel.is_valid, None),
    "no_fodselsnummer": ((11,), fodselsnummer.is_valid, None),
    "be_nn": ((11,), be_nn.is_valid, (2, 2, 2, 3, 2)),
    "br_cpf": ((11,), cpf.is_valid, (3, 3, 3, 2)),
    "in_aadhaar": ((12,), aadhaar.is_valid, (4, 4, 4)),
    "jp_my_number": ((12,), my_number.is_valid, (4, 4, 4)),
    "kr_rrn": ((13,), rrn.is_valid, (6, 7)),
    # numbers issued since October 2020 end in random digits, not a check digit: a birth date
    # and a century digit, beside the word that names the number
    "kr_rrn_since_2020": ((13,), _rrn_birth_date, None),
    "ch_ahv": ((13,), lambda d: d.startswith("756") and ch_ssn.is_valid(d), (3, 4, 4, 2)),
    "fr_nir": ((15,), nir.is_valid, None),
    "cn_ric": ((18,), ric.is_valid, None),
    # beside their words only: each check passes one number in ten or eleven by chance
    "tr_tckimlik": ((11,), tckimlik.is_valid, None),
    "ar_cuit": ((11,), cuit.is_valid, None),
    "ro_cnp": ((13,), cnp.is_valid, None),
    "bg_egn": ((10,), egn.is_valid, None),
    "cz_rodne_cislo": ((9, 10), rc.is_valid, None),
    "il_teudat_zehut": ((9,), il_idnr.is_valid, None),
    "nz_ird": ((8, 9), ird.is_valid, None),
    "my_nric": ((12,), my_nric.is_valid, (6, 2, 4)),  # a birth date and a birthplace code, no check digit
    "pk_cnic": ((13,), cnic.is_valid, (5, 7, 1)),
    "th_pin": ((13,), th_pin.is_valid, (1, 4, 5, 2, 1)),
    "za_idnr": ((13,), za_idnr.is_valid, None),
    "si_emso": ((13,), emso.is_valid, None),
    "id_nik": ((16,), nik.is_valid, None),
    "gr_amka": ((11,), amka.is_valid, None),
    "ee_isikukood": ((11,), ik.is_valid, None),
    "lt_asmens_kodas": ((11,), asmens.is_valid, None),
    "hr_oib": ((11,), oib.is_valid, None),
    "at_svnr": ((10,), vnr.is_valid, None),
    "au_medicare": ((10, 11), _au_medicare, None),
}
# The formats of each length, so a span meets only the checks of its length
_IDS_OF_LENGTH: dict[int, list[tuple[str, Callable[[str], bool], tuple[int, ...] | None]]] = {}
for _kind, (_lengths, _check, _shape) in _NUMERIC_IDS.items():
    for _n in _lengths:
        _IDS_OF_LENGTH.setdefault(_n, []).append((_kind, _check, _shape))
_MIN_ID_DIGITS = min(_IDS_OF_LENGTH)  # 8: no identifier checked is shorter (a card has 12 or more)
# Checks strong enough to need neither a word nor a shape (two check digits, or a checksum
# and a date inside, and a length few other numbers have).
_STANDS_ALONE = {"fr_nir", "ch_ahv", "cn_ric"}


def numeric_id(span: Span, context: Context) -> str | None:
    if span.wrapped or span.odd:  # ids are not written over two lines, nor as lists; a column is not one id
        return None
    for kind, check, shape in _IDS_OF_LENGTH.get(len(span.digits), ()):
        alone = span.whole and (kind in _STANDS_ALONE or span.groups == shape)
        if (alone or Context.near(context.ids, span.start, span.end)) and check(span.digits):
            return kind
    return None


# Check-digit rules python-stdnum does not have, as the issuing authorities publish them.
def _sg_nric(value: str) -> bool:
    """Singapore NRIC/FIN: weights 2765432 over the digits, an offset by series, a letter."""
    total = sum(int(c) * w for c, w in zip(value[1:8], (2, 7, 6, 5, 4, 3, 2), strict=True))
    total += {"T": 4, "G": 4, "M": 3}.get(value[0], 0)
    letters = {"S": "JZIHGFEDCBA", "T": "JZIHGFEDCBA", "F": "XWUTRQPNMLK", "G": "XWUTRQPNMLK", "M": "XWUTRQPNJLK"}
    return letters[value[0]][total % 11] == value[-1]


def _hkid(value: str) -> bool:
    """Hong Kong identity card: letters as 10-35 (a missing second letter as 36), weights 9 to
    2, and the check (A for 10) makes the sum a multiple of 11."""
    compact = value.replace("(", "").replace(")", "")
    letters, rest = compact[:-7], compact[-7:]
    values = [36] * (2 - len(letters)) + [ord(c) - 55 for c in letters] + [int(c) for c in rest[:6]]
    check = 10 if rest[6] == "A" else int(rest[6])
    return (sum(v * w for v, w in zip(values, range(9, 1, -1), strict=True)) + check) % 11 == 0


_TW_AREA = "ABCDEFGHJKLMNPQRSTUVXYWZIO"  # the letters in the order of their values 10 to 35


def _tw_id(value: str) -> bool:
    """Taiwan national id (and the resident certificate since 2021): the letter's value's two
    digits, then the nine digits, weighted 1 9 8 7 6 5 4 3 2 1 1, sum to a multiple of 10."""
    area = _TW_AREA.index(value[0]) + 10
    digits = [area // 10, area % 10, *(int(c) for c in value[1:])]
    return sum(d * w for d, w in zip(digits, (1, 9, 8, 7, 6, 5, 4, 3, 2, 1, 1), strict=True)) % 10 == 0


# Identifiers with letters, matched on the normalised text in upper case.
_ALNUM_IDS: list[tuple[str, Any, Callable[[str], bool], bool]] = [
    # (kind, pattern, check, needs a context word)
    ("it_codice_fiscale", re2.compile(r"\b[A-Z]{6}(?:[0-9LMNPQRSTUV]{2}[A-Z]){2}[0-9LMNPQRSTUV]{2}[A-Z]\b"),
     codicefiscale.is_valid, False),
    ("es_dni", re2.compile(r"\b\d{8}-?[A-Z]\b"), dni.is_valid, False),
    ("es_dni", re2.compile(r"\b\d{8} [A-Z]\b"), dni.is_valid, True),  # "... 12500000 a year": needs its word
    ("es_nie", re2.compile(r"\b[XYZ][ -]?\d{7}[ -]?[A-Z]\b"), nie.is_valid, False),
    ("mx_curp", re2.compile(r"\b[A-Z]{4}\d{6}[HMX][A-Z]{5}[0-9A-Z]\d\b"), curp.is_valid, False),
    ("fi_hetu", re2.compile(r"\b\d{6}[-+A-FU-Y]\d{3}[0-9A-Y]\b"), hetu.is_valid, False),
    ("fr_nir", re2.compile(r"\b[12] ?\d{2} ?\d{2} ?(?:\d{2}|2A|2B) ?\d{3} ?\d{3} ?\d{2}\b"), nir.is_valid, False),
    ("cn_ric", re2.compile(r"\b\d{17}X\b"), ric.is_valid, False),
    ("gb_nino", re2.compile(r"\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b"), bool, False),
    ("in_pan", re2.compile(r"\b[A-Z]{3}[ABCFGHJLPT][A-Z]\d{4}[A-Z]\b"), pan.is_valid, True),
    ("ie_pps", re2.compile(r"\b\d{7}[A-W][A-IW]?\b"), pps.is_valid, True),
    ("cl_rut", re2.compile(r"\b\d{1,2}\.?\d{3}\.?\d{3}-?[0-9K]\b"), lambda v: rut.is_valid(v.replace(".", "")), True),
    ("sg_nric", re2.compile(r"\b[STFGM]\d{7}[A-Z]\b"), _sg_nric, True),
    # a Hong Kong identity card's check digit in brackets is a shape of its own
    ("hk_hkid", re2.compile(r"\b[A-Z]{1,2}\d{6} ?\([0-9A]\)"), _hkid, False),
    ("hk_hkid", re2.compile(r"\b[A-Z]{1,2}\d{6}[0-9A]\b"), _hkid, True),
    ("tw_national_id", re2.compile(r"\b[A-Z][1289]\d{8}\b"), _tw_id, True),
    # a Medicare Beneficiary Identifier has no check; its letters and digits alternate by rule
    ("us_mbi", re2.compile(r"\b[1-9][AC-HJKMNP-RT-Y][AC-HJKMNP-RT-Y0-9]\d-?[AC-HJKMNP-RT-Y][AC-HJKMNP-RT-Y0-9]\d-?"
                          r"[AC-HJKMNP-RT-Y]{2}\d{2}\b"), bool, True),
]  # fmt: skip


def ascii_upper(folded: str) -> str:
    """Upper case, one character for one (a non-ASCII character becomes "?"): the ids with
    letters are all ASCII."""
    return (folded if folded.isascii() else folded.encode("ascii", "replace").decode()).upper()


def alnum_id(upper: str, context: Context) -> str | None:
    for kind, pattern, check, needs_word in _ALNUM_IDS:
        for m in pattern.finditer(upper):
            if needs_word and not Context.near(context.ids, m.start(), m.end()):
                continue
            if check(m.group().replace(" ", "").replace("-", "")):
                return kind
    return None


_IBAN = re2.compile(r"\b[A-Z]{2}\d{2}(?:[ ./-]{0,2}[A-Z0-9]){11,34}")


def has_iban(upper: str) -> bool:
    """The pattern may take in a word after the number ("... 00 PLEASE"): try each length."""
    for m in _IBAN.finditer(upper):
        compact = "".join(ch for ch in m.group() if ch.isalnum())
        if any(std_iban.is_valid(compact[:n]) for n in range(min(len(compact), 34), 14, -1)):
            return True
    return False


def bank_account(folded: str) -> bool:
    """An account number (or a branch code) right after the word that names it."""
    for m in ACCOUNT_CONTEXT.finditer(folded):
        # a slice, not match(text, pos): google-re2 encodes the whole text on every call, which made
        # a prompt of 15,000 "acct"s cost 4 s (quadratic)
        if _ACCOUNT_NUMBER.match(folded[m.end() : m.end() + _AFTER]) is not None:
            return True
    return False


def document_number(folded: str) -> bool:
    """A passport or driving-licence number after the word that names it."""
    for m in DOCUMENT_CONTEXT.finditer(folded):
        after = _DOCUMENT_NUMBER.match(folded[m.end() : m.end() + _AFTER])  # a slice: see bank_account
        if after is not None and sum(ch.isdigit() for ch in after.group(1)) >= 2:
            return True
    return False
