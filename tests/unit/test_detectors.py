import pytest

from tierlift.classifier import detect_sensitive_data
from tierlift.v1 import common_pb2

REGULATED = common_pb2.DATA_CLASS_REGULATED
CONFIDENTIAL = common_pb2.DATA_CLASS_CONFIDENTIAL


@pytest.mark.parametrize(
    ("text", "kind", "data_class"),
    [
        ("card 4111 1111 1111 1111 exp 12/29", "payment_card", REGULATED),
        ("pay to DE89 3704 0044 0532 0130 00 please", "iban", REGULATED),
        ("my SSN is 123-45-6789", "national_id", REGULATED),
        ("the patient was diagnosed with diabetes", "health", REGULATED),
        ("mail jane.doe@example.com about it", "email", CONFIDENTIAL),
        ("key sk-abcdefghijklmnopqrstuvwxyz123456", "secret", CONFIDENTIAL),
        ("mail jane.doe [at] example [dot] com", "email", CONFIDENTIAL),  # written to dodge a pattern
        ("jane(at)example.com", "email", CONFIDENTIAL),
        ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "secret", CONFIDENTIAL),
        ("DB_PASSWORD=Sup3rS3cret!", "secret", CONFIDENTIAL),
        ("Stripe key sk_live_4eC39HqLyjWDarjtT1zdp7dc", "secret", CONFIDENTIAL),
        (
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "secret",
            CONFIDENTIAL,
        ),  # a JSON web token
        ("curl -H 'Authorization: Bearer abcdefghijklmnopqrstuvwxyz123456'", "secret", CONFIDENTIAL),
        ("postgres://admin:S3cretPass@db.internal:5432/prod", "secret", CONFIDENTIAL),
    ],
)
def test_sensitive_data_is_found(text: str, kind: str, data_class: int) -> None:
    assert detect_sensitive_data(text).get(kind) == data_class


@pytest.mark.parametrize(
    "text",
    [
        "max_tokens=100000",
        "password_policy: strong",
        "api_key_rotation_days = 90",
        "look at this dot com bubble",
        "The bearer bond was issued in 1920",
        "see http://example.com:8080/path",
    ],
)
def test_settings_and_words_that_only_look_like_secrets_are_not_findings(text: str) -> None:
    assert detect_sensitive_data(text) == {}


def test_numbers_failing_their_checksum_are_not_cards_or_ibans() -> None:
    found = detect_sensitive_data("order 4111 1111 1111 1112, ref DE00 3704 0044 0532 0130 00")
    assert "payment_card" not in found
    assert "iban" not in found


def test_plain_question_has_no_findings() -> None:
    assert detect_sensitive_data("What is the capital of France?") == {}


@pytest.mark.parametrize(
    "text",
    [
        "my NI number is AB 12 34 56 C",  # UK National Insurance number
        "codice fiscale RSSMRA85T10A562S",  # Italian fiscal code
        "NIR 1 85 05 78 006 084 91",  # French social security number, key 91
        "DNI 12345678Z",  # Spanish DNI, letter checked
        "BSN: 111222333",  # Dutch citizen service number, 11-test
        "Maestro card 676238573791 please refund",  # 12-digit Maestro next to 'card'
    ],
)
def test_european_identifiers_are_regulated(text: str) -> None:
    assert max(detect_sensitive_data(text).values()) == REGULATED


def test_twelve_digit_numbers_without_a_card_word_are_not_cards() -> None:
    assert "payment_card" not in detect_sensitive_data("order 676238573791 shipped")


def test_passwords_are_secrets() -> None:
    assert detect_sensitive_data("the database password is hunter2hunter2")["secret"] == CONFIDENTIAL
