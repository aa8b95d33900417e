"""The detectors against how identifiers are really written, on the development half of the
adversarial generator (`tierlift eval-detectors` reports the held-out half)."""

from __future__ import annotations

import pytest

from tierlift.classifier import detect_sensitive_data
from tierlift.evaluation import adversarial
from tierlift.v1 import common_pb2

REGULATED = common_pb2.DATA_CLASS_REGULATED


@pytest.mark.parametrize(
    "text",
    [
        "A US SSN written 078 05 1120",
        "ssn 078051120",
        "SSN 078\u200b-05-1120",  # a zero-width space inside
        "card 4111/1111/1111/1111",
        "card 4111_1111_1111_1111",
        "card 4111\u00a01111\u00a01111\u00a01111",
        "4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1",
        "card \uff14\uff11\uff11\uff11 1111 1111 1111",  # full-width digits
        "IBAN DE89\u00a03704\u00a00044\u00a00532\u00a00130\u00a000",
        "My SIN is 130 692 544",
        "NHS number 943 476 5919",
        "John Smith, passport X1234567",
        "Hans Müller, Führerschein B072RRE2I55",
        "card 4111 1111\n1111 1111",  # wrapped onto the next line
        "4111 1111 1111\r\n1111",
        "Card number:\n5500 0000\n0000 0004\nexp 12/29",
        "\uc8fc\ubbfc\ub4f1\ub85d\ubc88\ud638 850101-1234568",  # 주민등록번호, issued since 2020: no check digit
        "RRN 850101-3234568",
        "\u30de\u30a4\u30ca\u30f3\u30d0\u30fc: 123456789018",  # マイナンバー, in one run: needs its word
        "\u500b\u4eba\u756a\u53f7\uff1a123456789018",  # 個人番号 and a full-width colon
        "TC Kimlik No 10000000146",  # ids of more countries, beside their words
        "CNP 1800101221144",
        "RUT 12.345.678-5",
        "CUIT 20-26756539-3",
        "rodn\u00e9 \u010d\u00edslo 710319/2745",
        "\u0415\u0413\u041d 7523169263",  # ЕГН
        "teudat zehut 000000018",
        "IRD number 49-091-850",
        "acct. no. 123456789",  # a bank account without an IBAN: its word makes it one
        "My account number is 483920117",
        "sort code 20-00-00, account number 31926819",
        "Kontonummer: 1234567890",
        "conto corrente n. 000012345678",
        "card 4111*1111*1111*1111",  # joined by characters no number is written with
        "4111|1111|1111|1111",
        "4111~1111~1111~1111",
        "card no: 4111, 1111, 1111, 1111",  # as a list: beside its word
        '{"customer_ssn": "078051120"}',  # a key names what it holds
        "ssn_078_05_1120",
        "customerSsn=078051120",
        "S.S.N. 078051120",
        "My NRIC is S1234567D",  # Singapore
        "HKID A123456(3)",  # Hong Kong, and its bracketed check digit alone:
        "ref A123456(3)",
        "\u8eab\u5206\u8b49\u5b57\u865f A123456789",  # 身分證字號 (Taiwan)
        "Taiwan ID A123456789",
        "Medicare number 1EG4-TE5-MK73",  # a US Medicare Beneficiary Identifier
        "Medicare card 2123 45670 1",  # Australia
        "MyKad 770305-02-1234",  # Malaysia, and its shape alone:
        "770305-02-1234",
        "34201-0891231-8",  # Pakistan's CNIC shape
        "1-2345-45678-78-1",  # Thailand's, and beside its word:
        "\u0e40\u0e25\u0e02\u0e1b\u0e23\u0e30\u0e08\u0e33\u0e15\u0e31\u0e27\u0e1b\u0e23\u0e30\u0e0a\u0e32\u0e0a\u0e19"
        " 3100600445635",
        "SA ID 7503305044089",
        "NIK 3171011708450001",
        "AMKA 01013099997",
        "isikukood 36805280109",
        "asmens kodas 33309240064",
        "OIB 33392005961",
        "EM\u0160O 0101006500006",
        "SVNR 1237 010180",
        "my ssn is zero seven eight, zero five, one one two zero",  # spelled out, as dictated
        "SSN O78-O5-112O",  # letters for digits
        "card 4lll 1111 1111 1111",
        "IBAN DE89/3704/0044/0532/0130/00",
        "iban: de89.3704.0044.0532.0130.00",
        "card four one one one one one one one one one one one one one one one",
        "meine Steuer-ID ist sechs f\u00fcnf neun zwei neun neun sieben null vier acht neun",
        "El paciente fue diagnosticado con diabetes",
        "La patiente souffre d'un cancer du sein",
        "Bei ihm wurde Brustkrebs festgestellt",
        "Ella sufre de ansiedad",
    ],
)
def test_identifiers_and_health_data_as_people_write_them_are_regulated(text: str) -> None:
    assert REGULATED in detect_sensitive_data(text).values(), detect_sensitive_data(text)


@pytest.mark.parametrize(
    "text",
    [
        "ISBN 978-3-16-148410-0",
        "Upgrade to version 10.4.2.1234",
        "Revenue was $1,234,567.89",
        "Order 4111 1111 1111 1112 has shipped",  # card-shaped, fails Luhn
        "Order ORD-2021-605277 has shipped",
        "Logged at 20161012 027306",
        "Request f514334e-1321-8720-5356-f58372cfe30b",
        "zip 90210-1234",
        "Model number 5500-0000-0000-0004X",
        "Years:\n2019\n2020\n2021\n2022",
        "codes\n4111\n1111\n1111\n1111\n2024\n3120",  # a column, not one number over lines
        "Totals 4111 1111\n1111 1111 2222 units",  # the second line's number runs on
        "850101-1234568",  # a birth date and seven digits, no check digit and no word naming it
        "I ran 10000000146 steps and 1800101221144 metres",  # checksummed numbers with no word naming them
        "Our Twitter account 12345678 followers strong",  # "account" alone names no bank account
        "account balance 123456 USD",
        "The bank account number format is 8 digits",
        "|6709|8783|5941|5596|",  # a table's row, and lists and sums of card-length groups
        "| 4111 | 1111 | 1111 | 1111 |",
        "4111, 1111, 1111, 1111",
        "4111+1111+1111+1111",
        "fe80:4111:1111:1111:1111::1",
        "Medicare covers 556478025 people",
        "order_id_123456789",
        "one two three four five six seven eight nine ten",  # counting, not a number
        "Hello world, 10lbs of O2 and I0",
        "I have one, two, three, four, five, six, seven, eight, nine apples",
    ],
)
def test_look_alikes_stay_public(text: str) -> None:
    assert detect_sensitive_data(text) == {}


def test_development_variants_meet_the_targets() -> None:
    examples = adversarial.generate("dev", per_family=100)
    result = adversarial.evaluate(examples, detect_sensitive_data, REGULATED)
    assert result["regulated_recall"] >= 0.99, result
    assert result["look_alikes_flagged"] <= 0.05, result


def test_the_two_halves_share_no_template() -> None:
    dev = {e.text for e in adversarial.generate("dev", 50)}
    held_out = {e.text for e in adversarial.generate("held-out", 50)}
    assert not dev & held_out
