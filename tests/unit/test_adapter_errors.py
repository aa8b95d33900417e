from tierlift.adapters._backend import MAX_ERROR_MESSAGE, sanitised


def test_key_shaped_strings_are_removed_and_the_message_bounded() -> None:
    body = (
        "Incorrect API key provided: sk-proj-abcdef0123456789. Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload "
        "AKIAABCDEFGHIJKLMNOP " + "the context window is smaller than the prompt " * 100
    )
    cleaned = sanitised(body)
    assert "abcdef0123456789" not in cleaned and "eyJhbGci" not in cleaned and "AKIAABCD" not in cleaned
    assert len(cleaned) <= MAX_ERROR_MESSAGE and cleaned.endswith("...")


def test_an_ordinary_message_is_kept() -> None:
    assert sanitised("The prompt is longer than the model's context window.") == (
        "The prompt is longer than the model's context window."
    )
