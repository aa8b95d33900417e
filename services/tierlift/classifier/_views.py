"""Other readings of a text, in which an identifier that its writing hides is written plainly.

The detectors read the normalised text and each of these views; a view exists only when its
trigger is in the text (a '<', a '%', a blob of base64...), so plain prose costs nothing more.

- **unmarked**: HTML entities decoded and tags removed (a block tag, a table cell or a line
  break becomes a space, an inline tag nothing: "<b>219</b>-09" is "219-09"), markdown emphasis
  and code marks removed, URL percent-encoding decoded, string concatenations in code joined
  (`"219" + "09"`, `'219' . '09'`, `'219' || '09'`) and lists of digit strings joined by code
  (`['219', '09'].join('')`), the cells of a table row or a CSV line that hold only digits joined
  by "-" ("| 219 | 09 | 9999 |" is "219-09-9999"), and, where the text names an identifier, a
  number split down a table's column (its last cells over two to five rows).
- **fields**: every JSON object in the text read as one line, its keys then its values, digit
  values joined by "-": a number split across `{"a": "219", "b": "09", "c": "9999"}` is whole.
- **decoded**: base64 and hex blobs that decode to text, each decoded text read as well (two
  levels deep: base64 of base64), with the words written around its blob.
- **numerals**: digits written as words of any of thirty-odd languages, or as CJK or Korean
  numerals, in runs of eight or more, rewritten as ASCII digits.

Each view is built in linear time (RE2 or bounded scans), and the total text read is bounded by
a small multiple of the input, so detection stays linear in the prompt's length.
"""

from __future__ import annotations

import base64
import binascii
import html
import itertools
import json
import urllib.parse

import re2

from tierlift.classifier._normalise import alternation, fold, normalise
from tierlift.classifier._personal import names_an_identifier

_MAX_BLOBS = 16  # decoded blobs read per text (each view is read whole)
_MAX_BLOB_CHARS = 8192
_MAX_JSON_OBJECTS = 32
_MAX_JSON_DEPTH = 32
_CONTEXT = 100  # characters either side of a blob kept with its decoded text

_BLOCK_TAG = re2.compile(r"(?i)<\s*/?\s*(?:br|p|div|td|th|tr|li|ul|ol|table|tbody|thead|h[1-6]|hr)\b[^<>]{0,200}>")
_TAG = re2.compile(r"<\s*/?\s*[A-Za-z][A-Za-z0-9-]{0,20}(?:\s[^<>]{0,200})?\s*/?>")
_MARKDOWN = re2.compile(r"\*{1,3}|_{2,3}|`{1,3}|~~|\|\|")
_DIGIT_EMPHASIS = re2.compile(r"_(\d+)_")  # _16_: emphasis (a lone "_" between digits is a separator)
_PERCENT = re2.compile(r"%[0-9A-Fa-f]{2}")
# "219" + "09", '219' . '09', '219' || '09', "219" & "09", and Python's adjacent literals
_CONCATENATION = re2.compile(r"[\"'`]\s{0,3}(?:\+|\.|\|\||&|\.\.)?\s{0,3}[\"'`]")
# cells of digits in a table row: "219 | 09", "219\t09" (a row of numbers alone is a row of numbers:
# joined only where the row also has a label)
_DIGIT_CELLS = re2.compile(r"(\d)[ ]{0,3}[|\t][ ]{0,3}(\d)")
# an abbreviation spelled out letter by letter: "S-S-N", "S.S.N.", "N I N O"
_SPACED_LETTERS = re2.compile(r"\b[A-Za-z](?:[-. ][A-Za-z]\b){2,4}\.?")
_LABELLED_ROW = re2.compile(r"(?m)^.*[|\t].*$")
# A list of quoted digit strings joined into one by code: ['6075', '1229'].join(''), "".join(["60", "75"])
_QUOTED_DIGITS = r"\s{0,3}[\"'`]\d{1,12}[\"'`]\s{0,3}"
_JOINED_LIST = re2.compile(
    rf"\[((?:{_QUOTED_DIGITS},){{1,8}}{_QUOTED_DIGITS})\]\s{{0,3}}\.join\(\s{{0,3}}(?:[\"'`]{{2}})?\s{{0,3}}\)"
    rf"|[\"'`]{{2}}\.join\(\s{{0,3}}\[((?:{_QUOTED_DIGITS},){{1,8}}{_QUOTED_DIGITS})\]\s{{0,3}}\)"
    rf"|(?:implode|concat)\(\s{{0,3}}(?:[\"'`]{{2}}\s{{0,3}},\s{{0,3}})?\[?((?:{_QUOTED_DIGITS},){{1,8}}{_QUOTED_DIGITS})\]?\s{{0,3}}\)"
)
# A number split down a table's column: two to five rows whose last cell holds a few digits
# ("| 1 | 2877 |" over three rows), read as one number after the rows, where the text names an
# identifier (a table of figures is not one number)
_DIGIT_COLUMN = re2.compile(r"(?m)(?:^[^\n|]{0,40}\|[^\n]{0,80}?\|[ ]{0,3}\d{1,6}[ ]{0,3}\|?[ ]{0,3}(?:\n|\z)){2,5}")
_LAST_CELL = re2.compile(r"\|[ ]{0,3}(\d{1,6})[ ]{0,3}\|?[ ]{0,3}$")
_BASE64 = re2.compile(r"[A-Za-z0-9+/_-]{12,}={0,2}")
_HEX = re2.compile(r"\b(?:[0-9A-Fa-f]{2}[ :]?){8,}\b")
# CJK numerals (plain and the financial forms that cheques use) and Sino-Korean ones, by digit
_NUMERALS = [
    "〇零영공",
    "一壹일",
    "二贰貳两兩이",
    "三叁參参삼",
    "四肆사",
    "五伍오",
    "六陆陸육륙",
    "七柒칠",
    "八捌팔",
    "九玖구",
]
_NUMERAL_TABLE = {ord(ch): str(digit) for digit, chars in enumerate(_NUMERALS) for ch in chars}
_NUMERAL_RUN = re2.compile("[" + "".join(_NUMERALS) + "]{6,}")

# Digits as words, ten a language (alternatives joined by "/"), matched folded (lowercase, no
# accents). Languages share spellings ("nove", "sei"); where two give different digits the first
# listed wins, which a run of eight or more digit words makes harmless.
_DIGIT_WORDS_BY_LANGUAGE = [
    "zero/oh one two three four five six seven eight nine",  # English
    "null eins zwei drei vier funf sechs sieben acht neun",  # German
    "zero un/une deux trois quatre cinq six sept huit neuf",  # French
    "nul een twee drie vier vijf zes zeven acht negen",  # Dutch
    "cero uno dos tres cuatro cinco seis siete ocho nueve",  # Spanish
    "zero uno due tre quattro cinque sei sette otto nove",  # Italian
    "zero um/uma dois/duas tres quatro cinco seis sete oito nove",  # Portuguese
    "zero jeden dwa trzy cztery piec szesc siedem osiem dziewiec",  # Polish
    "sifir bir iki uc dort bes alti yedi sekiz dokuz",  # Turkish
    "ноль/нуль один/одна два/две три четыре пять шесть семь восемь девять",  # Russian
    "нуль один/одна два/дві три чотири п'ять шість сім вісім дев'ять",  # Ukrainian
    "noll ett/en tva tre fyra fem sex sju atta nio",  # Swedish
    "nul/null en/et to tre fire fem seks syv/sju otte/atte ni",  # Danish, Norwegian
    "nolla yksi kaksi kolme nelja viisi kuusi seitseman kahdeksan yhdeksan",  # Finnish
    "nula jedna dva tri ctyri pet sest sedm osm devet",  # Czech, Slovak
    "nula jedan dva tri cetiri pet sest sedam osam devet",  # Croatian, Serbian, Bosnian
    "zero unu doi trei patru cinci sase sapte opt noua",  # Romanian
    "nulla egy ketto harom negy ot hat het nyolc kilenc",  # Hungarian
    "μηδεν ενα δυο τρια τεσσερα πεντε εξι επτα οκτω εννεα",  # Greek
    "nol/kosong satu dua tiga empat lima enam tujuh delapan sembilan",  # Indonesian, Malay
    "khong mot hai ba bon nam sau bay tam chin",  # Vietnamese
    "sifuri moja mbili tatu nne tano sita saba nane tisa",  # Swahili
    "صفر واحد اثنان/اثنين ثلاثة اربعة خمسة ستة سبعة ثمانية تسعة",  # Arabic
    "शून्य एक दो तीन चार पांच/पाँच छह सात आठ नौ",  # Hindi
    "אפס אחת/אחד שתיים/שניים שלוש ארבע חמש שש שבע שמונה תשע",  # Hebrew
    "zero/rei ichi ni san yon/shi go roku nana/shichi hachi kyu/ku",  # Japanese, romanised
    "ling yi er san si wu liu qi ba jiu",  # Chinese, pinyin
    "gong/yeong il i sam sa o yuk chil pal gu",  # Korean, romanised
]
_DIGIT_WORDS: dict[str, str] = {}
for _language in _DIGIT_WORDS_BY_LANGUAGE:
    for _digit, _spellings in enumerate(_language.split()):
        for _word in _spellings.split("/"):
            _DIGIT_WORDS.setdefault(fold(normalise(_word)), str(_digit))
_SPELLED_MIN = 8
_DASH_WORDS = frozenset(
    fold(normalise(w))
    for w in [
        "dash",
        "hyphen",
        "minus",
        "tiret",
        "trait",
        "guion",
        "guión",
        "trattino",
        "streepje",
        "bindestrich",
        "strich",
        "traço",
        "myślnik",
        "kreska",
        "tire",
        "тире",
        "дефис",
    ]
)
_WORD = re2.compile(r"[\pL\pM']+")
_BETWEEN_DIGIT_WORDS = frozenset(" ,.;/-\n")


# A run of eight digit words (a dash word may stand between two), found by RE2 in one pass: prose
# has digit words ("one", "un", "i") but almost never eight in a row, and the word-by-word walk
# of `_numerals` costs ~0.5 ms on a 200-token prompt, so it runs only where this matches.
_DIGIT_WORD = alternation(_DIGIT_WORDS)
_DIGIT_WORD_GAP = rf"(?:[ ,.;/\n-]+|[ ,.;/\n-]+{alternation(_DASH_WORDS)}[ ,.;/\n-]+)"
_DIGIT_WORD_RUN = re2.compile(
    rf"(?:^|[^\pL\pN\pM']){_DIGIT_WORD}(?:{_DIGIT_WORD_GAP}{_DIGIT_WORD}){{{_SPELLED_MIN - 1},}}(?:[^\pL\pN\pM']|$)"
)


def views(normalised: str) -> list[str]:
    """The other readings of `normalised` (already through `normalise`), each to be read by
    every detector. Empty for plain text."""
    found: list[str] = []
    unmarked = _unmarked(normalised)
    if unmarked != normalised:
        found.append(unmarked)
    if "{" in normalised and (fields := _json_fields(unmarked)):
        found.append(fields)
    for text in (normalised, *found):
        if spelled := _numerals(text):
            found.append(spelled)
    decoded = _decoded(unmarked, depth=2)
    found.extend(decoded)
    return found


def _unmarked(text: str) -> str:
    if "&" in text:
        text = html.unescape(text)
    if "<" in text:
        text = _TAG.sub("", _BLOCK_TAG.sub(" ", text))
    if "%" in text and _PERCENT.search(text):
        text = urllib.parse.unquote(text)
    if any(mark in text for mark in "*_`~|"):
        text = _DIGIT_EMPHASIS.sub(r"\1", _MARKDOWN.sub("", text))
    if any(quote in text for quote in "\"'`"):
        text = _JOINED_LIST.sub(_join_list, text)
        text = _CONCATENATION.sub("", text)
    if "|" in text or "\t" in text:
        if _DIGIT_COLUMN.search(text) and names_an_identifier(fold(text)):  # not a column of figures
            text = _DIGIT_COLUMN.sub(_join_column, text)
        text = _LABELLED_ROW.sub(_join_cells, text)
    if _SPACED_LETTERS.search(text):
        text = _SPACED_LETTERS.sub(lambda m: m.group().replace("-", "").replace(".", "").replace(" ", ""), text)
    return normalise(text)


def _join_list(m: re2._Match) -> str:
    parts = next(g for g in m.groups() if g)
    return '"' + "".join(ch for ch in parts if ch.isdigit()) + '"'


def _join_column(m: re2._Match) -> str:
    rows = m.group().rstrip("\n").split("\n")
    cells = [c.group(1) for row in rows if (c := _LAST_CELL.search(row)) is not None]
    return m.group().rstrip("\n") + "\n" + "-".join(cells) + "\n"


def _join_cells(row: re2._Match) -> str:
    line = row.group()
    if not any(ch.isalpha() for ch in line):
        return line
    # twice: "1 | 2 | 3" joins its second pair only after the first (matches cannot overlap)
    return _DIGIT_CELLS.sub(r"\1-\2", _DIGIT_CELLS.sub(r"\1-\2", line))


def _json_fields(text: str) -> str:
    """Each JSON object in `text` as one line: "key key ...: value-value ... value value"."""
    decoder = json.JSONDecoder()
    lines: list[str] = []
    start = text.find("{")
    while start != -1 and len(lines) < _MAX_JSON_OBJECTS:
        try:
            value, end = decoder.raw_decode(text, start)
        except (ValueError, RecursionError):  # not JSON, or nested deeper than Python's stack
            start = text.find("{", start + 1)
            continue
        _flatten(value, lines)
        start = text.find("{", end)
    return "\n".join(lines)


def _flatten(value: object, lines: list[str], depth: int = 0) -> None:
    if depth > _MAX_JSON_DEPTH:
        return  # what lies deeper is still read as text by the other views
    if isinstance(value, list):
        for item in value[:_MAX_JSON_OBJECTS]:
            _flatten(item, lines, depth + 1)
        return
    if not isinstance(value, dict):
        return
    keys, scalars, digit_values = [], [], []
    for key, item in value.items():
        if isinstance(item, dict | list):
            _flatten(item, lines, depth + 1)
            continue
        keys.append(str(key))
        scalars.append(str(item))
        if str(item).replace(" ", "").replace("-", "").isdigit():
            digit_values.append(str(item))
    lines.append(" ".join(keys) + ": " + "-".join(digit_values) + " " + " ".join(scalars))


def _numerals(text: str) -> str:
    """The text with runs of digit words (any language above) and of CJK or Korean numerals
    written as ASCII digits, or "" when it has none."""
    changed = False
    if _NUMERAL_RUN.search(text):
        text = _NUMERAL_RUN.sub(lambda m: m.group().translate(_NUMERAL_TABLE), text)
        changed = True
    folded = fold(text)
    if _DIGIT_WORD_RUN.search(folded) is None:
        return text if changed else ""
    out: list[str] = []
    run: list[tuple[int, int, str, bool]] = []  # (start, end, digit, after a dash word) in a row
    last = 0
    gap_from = 0  # where the gap before the next digit word starts (after a digit or dash word)
    dash = False

    def close() -> None:
        nonlocal last, changed
        if len(run) >= _SPELLED_MIN:
            out.append(text[last : run[0][0]])
            out.append(_as_digits(folded, run))
            last = run[-1][1]
            changed = True
        run.clear()

    for m in _WORD.finditer(folded):
        word = m.group()
        if run and word in _DASH_WORDS and set(folded[gap_from : m.start()]) <= _BETWEEN_DIGIT_WORDS:
            gap_from, dash = m.end(), True  # "two one nine dash zero nine"
            continue
        digit = _DIGIT_WORDS.get(word)
        if digit is None:
            close()
            dash = False
            continue
        if run and not set(folded[gap_from : m.start()]) <= _BETWEEN_DIGIT_WORDS:
            close()
            dash = False
        run.append((m.start(), m.end(), digit, dash))
        gap_from, dash = m.end(), False
    close()
    if not changed:
        return ""
    out.append(text[last:])
    return "".join(out)


def _as_digits(folded: str, run: list[tuple[int, int, str, bool]]) -> str:
    """Digit words as digits: words apart by spaces make one group ("two one nine" is "219");
    a comma, a dash or a dot between groups of two or more digits is a dash ("219-09-9999"), between
    single ones a list's comma that stays ("1, 2, 3"); a word for a dash is a dash."""
    groups = [[run[0][2]]]
    joints: list[str] = []
    for (_, end, _, _), (start, _, digit, after_dash) in itertools.pairwise(run):
        gap = folded[end:start]
        if after_dash:
            groups.append([digit])
            joints.append("-")
        elif gap.strip(" "):
            groups.append([digit])
            joints.append(gap)
        else:
            groups[-1].append(digit)
    out = "".join(groups[0])
    for joint, group in zip(joints, groups[1:], strict=True):
        out += ("-" if len(group) > 1 and len(groups[0]) > 1 else joint) + "".join(group)
    return out


def _decoded(text: str, depth: int) -> list[str]:
    """Texts that base64 or hex blobs in `text` decode to (blobs that decode to bytes that are
    not text, a hash or a key, are skipped)."""
    if depth == 0:
        return []
    found: list[str] = []
    for n, m in enumerate(_BASE64.finditer(text)):
        if n == _MAX_BLOBS:
            break
        blob = m.group()[:_MAX_BLOB_CHARS]
        if blob.isdigit() or blob.isalpha():
            continue  # a number or a word, not an encoding
        if (decoded := _as_text(_b64(blob))) is not None:
            found.append(_in_place(text, m.start(), m.end(), decoded))
            found.extend(_decoded(decoded, depth - 1))
    for n, m in enumerate(_HEX.finditer(text)):
        if n == _MAX_BLOBS:
            break
        try:
            raw = bytes.fromhex(m.group()[:_MAX_BLOB_CHARS].replace(" ", "").replace(":", ""))
        except ValueError:
            continue
        if (decoded := _as_text(raw)) is not None:
            found.append(_in_place(text, m.start(), m.end(), decoded))
    return found


def _in_place(text: str, start: int, end: int, decoded: str) -> str:
    """The decoded text where its blob stood, with the words written around the blob (a bounded
    window: "the customer's id, base64: MTQx..." says whose number it decodes to)."""
    return f"{text[max(0, start - _CONTEXT) : start]} {decoded} {text[end : end + _CONTEXT]}"


def _b64(blob: str) -> bytes:
    padded = blob + "=" * (-len(blob) % 4)
    try:
        if "-" in blob or "_" in blob:
            return base64.urlsafe_b64decode(padded)
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return b""


def _as_text(raw: bytes) -> str | None:
    """`raw` as text when it is mostly printable UTF-8, else None."""
    if len(raw) < 6:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    printable = sum(ch.isprintable() or ch in "\n\t" for ch in text)
    return normalise(text) if printable >= 0.9 * len(text) else None
