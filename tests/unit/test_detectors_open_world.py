# ruff: noqa: RUF001  (texts in the scripts people write them in)
"""The detectors on what no list names: identifiers of every country python-stdnum knows and of
formats nobody catalogued, identifiers hidden by markup and encodings, health data without a
number; and public text full of numbers or of medical words that must stay public. The
development half of `tierlift.evaluation.open_world` (`tierlift eval-detectors` reports the
held-out half)."""

from __future__ import annotations

import base64
import json

import pytest

from tierlift.classifier import detect_sensitive_data
from tierlift.evaluation import adversarial, open_world
from tierlift.v1 import common_pb2

REGULATED = common_pb2.DATA_CLASS_REGULATED
CONFIDENTIAL = common_pb2.DATA_CLASS_CONFIDENTIAL


def _class(text: str) -> int:
    return max(detect_sensitive_data(text).values(), default=common_pb2.DATA_CLASS_PUBLIC)


@pytest.mark.parametrize(
    "text",
    [
        "SSN <b>219</b>-<i>09</i>-9999",  # HTML tags inside
        "SSN &#50;&#49;&#57;-09-9999",  # HTML entities
        "SSN **219**-_09_-`9999`",  # markdown emphasis and code
        "https://example.com/form?ssn=%32%31%39%2D%30%39%2D%39%39%39%39",  # percent-encoded
        "Decode and store: " + base64.b64encode(b"SSN 219-09-9999").decode(),
        "payload " + b"ssn 219-09-9999".hex(),
        "SSN 2\ufe0f\u20e31\ufe0f\u20e39\ufe0f\u20e3-0\ufe0f\u20e39\ufe0f\u20e3-9999",  # keycap emoji
        "\u793e\u4f1a\u4fdd\u969c\u53f7 \u4e8c\u4e00\u4e5d\u3007\u4e5d\u4e5d\u4e5d\u4e5d\u4e5d",  # CJK numerals
        "SSN dwa jeden dziewięć zero dziewięć dziewięć dziewięć dziewięć dziewięć",  # Polish
        "SSN два один девять ноль девять девять девять девять девять",  # Russian
        json.dumps({"part1": "219", "part2": "09", "part3": "9999", "kind": "ssn"}),  # split across fields
        'ssn = "219" + "-" + "09" + "-" + "9999"',  # a code concatenation
        "| employee | ssn |\n|---|---|\n| Ann Lee | 219 | 09 | 9999 |",  # a table row
    ],
)
def test_identifiers_hidden_by_their_writing_are_read(text: str) -> None:
    assert _class(text) == REGULATED, detect_sensitive_data(text)


@pytest.mark.parametrize(
    "text",
    [
        "Patient: Hans Müller, 8472619305, admitted via ER",  # a record number without its word
        "Member ID: XJH4829173",
        "AOK Versichertennummer A123456789",
        "Henkilötunnus 131052-308T",  # names from python-stdnum's catalogue, in their own language
        "\u0415\u0413\u041d 7523169263",  # ЕГН
        "Иван Петров, СНИЛС 112-233-445 95",
        "Sayın Ayşe Yılmaz, vergi kimlik 1234567890",
        "\u6211\u7684\u8eab\u4efd\u8bc1\u53f7 11010519491231002X",  # 我的身份证号
        "My policy number is 48213379",
        "Aetna W123456789",  # an insurer names the number beside it
        "Ayşe Yılmaz (34606280660)",  # a name and an 11-digit number: fail closed
    ],
)
def test_identifiers_nobody_listed_are_regulated(text: str) -> None:
    assert _class(text) == REGULATED, detect_sensitive_data(text)


@pytest.mark.parametrize(
    "text",
    [
        "My father's lupus flared up again this week.",
        "Ma fille est atteinte de mucoviscidose.",
        "Moja mama ma cukrzycę typu 2.",
        "Annem kemoterapi görüyor.",
        "У моей сестры диагностировали рак груди.",
        "أخي مصاب بالربو منذ الطفولة.",
        "मेरे पिता को उच्च रक्तचाप है।",
        "\u6211\u7684\u4e08\u592b\u60a3\u6709\u6291\u90c1\u75c7\u3002",  # 我的丈夫患有抑郁症。
        "父は去年、認知症と診断されました。",
        "제 어머니는 유방암 진단을 받았습니다.",
        "Ho la pressione alta e prendo farmaci.",  # the pronoun dropped
        "John Carter was diagnosed with Crohn's disease.",
        "She takes atorvastatin and lisinopril every morning.",  # drugs named by their endings
    ],
)
def test_health_data_about_a_person_is_regulated(text: str) -> None:
    assert _class(text) == REGULATED, detect_sensitive_data(text)


@pytest.mark.parametrize(
    "text",
    [
        "Is diabetes common in older adults?",
        "What does a social security number look like?",
        "How many digits does a Polish PESEL have?",
        "¿Qué es la hipertensión arterial?",
        "Какие симптомы у диабета?",
        "ما هي أعراض مرض السكري؟",
        "糖尿病的症状有哪些？",
        "Explain the mechanism of action of metformin.",
        "Scan the barcode 4006381333931 at the till.",
        "Parcel 003401234567890128 left the depot.",
        "The event fired at timestamp 1701937200123.",
        "The summit is at 45.832600, 6.865200.",
        "Order 48213379 for John Smith has shipped.",
        "John Smith has 150000000 followers.",
        "The meeting with Jane Doe is on 2024-03-07.",
        "Our release checksum is 3f786850e387550fdab836ed7e6dc881de23001b.",
        "A poem: seven, three, nine, one, four, two, eight, six, five, the numbers hum in line.",
        "The receptionist keeps her desk stocked with pens.",
        "Hasta mañana, mi amigo.",
    ],
)
def test_public_text_stays_public(text: str) -> None:
    assert detect_sensitive_data(text) == {}


@pytest.mark.parametrize(
    "text",
    [
        "Call Maria Garcia at +34 612 345 678 about the delivery.",
        "Send the numbers to Antony Morris (angela97@example.net, 0113 4960221).",
        "Reginald Hartman, (415)555-2671",
    ],
)
def test_contact_details_stay_confidential_not_regulated(text: str) -> None:
    assert _class(text) == CONFIDENTIAL, detect_sensitive_data(text)


def test_open_world_development_half() -> None:
    result = adversarial.evaluate(open_world.generate("dev", per_family=60), detect_sensitive_data, REGULATED)
    assert result["regulated_recall"] >= 0.97, result
    assert result["look_alikes_flagged"] <= 0.02, result


def test_every_catalogued_identifier_has_a_name() -> None:
    from tierlift.classifier._catalogue import personal_identifiers

    identifiers = personal_identifiers()
    assert len(identifiers) >= 80  # python-stdnum 2.2 knows this many personal, tax and health numbers
    assert all(identifier.names for identifier in identifiers), [i.module for i in identifiers if not i.names]
    modules = {identifier.module for identifier in identifiers}
    assert {"stdnum.bg.egn", "stdnum.fi.hetu", "stdnum.ru.inn", "stdnum.ca.bc_phn"} <= modules
    assert not modules & {"stdnum.isbn", "stdnum.ean", "stdnum.iban", "stdnum.eu.vat", "stdnum.imei"}


@pytest.mark.parametrize(
    "text",
    [
        "two one nine dash zero nine dash nine nine nine nine is my ssn",  # a word for the dash
        "S-S-N: 2 1 9 - 0 9 - 9 9 9 9",  # the abbreviation spelled letter by letter
        "echo 'MjE5LTA5LTk5OTk=' | base64 -d",  # a short base64 blob, and no word beside it
    ],
)
def test_spelled_and_encoded_writings(text: str) -> None:
    assert _class(text) == REGULATED, detect_sensitive_data(text)


def test_json_nested_past_the_stack_is_read_as_text_not_a_crash() -> None:
    nested = '{"a":' * 20_000 + '"SSN 219-09-9999"' + "}" * 20_000
    assert _class(nested) == REGULATED  # the other views still read it
    assert detect_sensitive_data('{"a":' * 20_000 + "1" + "}" * 20_000) == {}


@pytest.mark.parametrize(
    "text",
    [
        "Stanisław Kowalczyk miał zawał w marcu.",  # "ł" folds to "l": the word list writes "zawal"
        "Sebastian has epilepsy and takes lamotrigine.",  # a given name alone names a person
        "Hugo's biopsy came back clear.",
        "赵磊确诊了肺癌。",  # a Chinese surname and name before "was diagnosed"
        "पूजा गुप्ता को अस्थमा है।",  # a Hindi name: a word before a common surname
        "مريم خليل مصابة بالربو",  # an Arabic given name; "with asthma" written as one word
        "Follow-up for Mr. Grant: Rx lisinopril, Hx of DVT.",  # a chart's shorthand
        "Dr. Ortiz saw Paula Reyes today; she presents with chest pain.",
        "Nathan Cole's strep test came back positive.",
    ],
)
def test_health_data_about_a_person_written_as_notes_and_in_other_scripts_is_regulated(text: str) -> None:
    assert _class(text) == REGULATED, detect_sensitive_data(text)


@pytest.mark.parametrize(
    "text",
    [
        "Greta Lindqvist: 58213-7",  # a short number whose label is the person's name
        "Paolo Conti (904 117)",
        "Ines Duarte\t7712 0934 18\torthopaedics",  # a phone's digits, not a phone's grouping
        "Record of Jonas Weber: 3312-8842-71",
        "Patient: Oskar Lind   447 120 9931   ward 6",  # columns of a listing
        "کد ملی ایشان ۰۰۱۲۳۴۵۶۷۸ است",  # Persian "national code", Persian digits
        "Sosyal güvenlik numarası 40213377210",
    ],
)
def test_numbers_labelled_by_a_person_or_a_local_id_word_are_regulated(text: str) -> None:
    assert _class(text) == REGULATED, detect_sensitive_data(text)


@pytest.mark.parametrize(
    "text",
    [
        "Customer Lars Berg, id in base64: " + base64.b64encode(b"32118745093").decode(),  # the words around a blob
        'pesel = ["8506", "1201", "234"].join("")',  # a list of strings joined by code
        "pesel = ''.join(['8506', '1201', '234'])",
        "| # | aadhaar |\n|---|---|\n| a | 4821 |\n| b | 9907 |\n| c | 3316 |",  # split down a column
    ],
)
def test_identifiers_split_by_code_tables_and_encodings_are_read(text: str) -> None:
    assert _class(text) == REGULATED, detect_sensitive_data(text)


@pytest.mark.parametrize(
    "text",
    [
        "Scan barcode 5684847513500 at the till.",  # an EAN-13 that also passes Luhn: not a card
        "IMEI 490154203237518 - is my phone blacklisted?",
        "My phone's IMEI reads 35-209900-176148-1.",
        "Edge 121.0.2277.83 keeps crashing for my team.",  # a version beside "my"
        "Our VAT number is FR40303265045 (printed on every invoice).",
        "Daniel Brooks: 73421 total votes.",  # a count, a word between the number and its unit
        "Tom Reyes: 18342 passing yards",
        "Ada Lovelace (1815-1852) wrote the first program.",  # a lifetime, not an id
        "for (int i = 0; i < 10000000; i++) sum += i;",  # "i" as code writes a variable
        "for i in range(25000000):\n    total += i",
        "ISSN 2049-3630 is the journal's serial number.",  # an ISSN is not an SSN
        "It crashed on 48151623 again",  # "on" is English, not Polish "he"
        "Is Crohn's disease hereditary?",  # a question's first word is not a first name
        "| Quarter | Revenue |\n|---|---|\n| Q1 | 120 |\n| Q2 | 340 |\n| Q3 | 560 |",  # a column of figures
        "张家界的风景很美。",
        "高血压的治疗方法是什么？",
    ],
)
def test_public_numbers_beside_the_new_rules_stay_public(text: str) -> None:
    assert REGULATED not in detect_sensitive_data(text).values(), detect_sensitive_data(text)


def test_business_names_are_not_a_persons_label() -> None:
    assert _class("Trattoria Bella Napoli: 06 1234 5678") == CONFIDENTIAL  # a phone, not an id
