import pytest

from switchyard.classifier import detect_sensitive_data
from switchyard.v1 import common_pb2

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
    ],
)
def test_sensitive_data_is_found(text: str, kind: str, data_class: int) -> None:
    assert detect_sensitive_data(text).get(kind) == data_class


def test_numbers_failing_their_checksum_are_not_cards_or_ibans() -> None:
    found = detect_sensitive_data("order 4111 1111 1111 1112, ref DE00 3704 0044 0532 0130 00")
    assert "payment_card" not in found
    assert "iban" not in found


def test_plain_question_has_no_findings() -> None:
    assert detect_sensitive_data("What is the capital of France?") == {}
