import pytest

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


def test_the_openai_compatible_retry_follows_what_the_provider_says() -> None:
    from tierlift.adapters._openai_http import MalformedAnswer, ProviderHTTPError
    from tierlift.adapters.openai_compat import _retry_in

    def answer(status: int, **headers: str) -> ProviderHTTPError:
        return ProviderHTTPError(status, {k.replace("_", "-"): v for k, v in headers.items()}, b"{}")

    assert _retry_in(answer(429, retry_after_ms="250"), 0) == 0.25  # milliseconds win
    assert _retry_in(answer(503, **{"Retry-After": "3"}), 0) == 3.0  # any header case
    assert _retry_in(answer(400), 0) is None  # the caller's error: trying again changes nothing
    assert _retry_in(answer(500, x_should_retry="false"), 0) is None  # the provider's own hint wins
    assert _retry_in(answer(400, x_should_retry="true"), 0) is not None
    for waited, most in [
        (_retry_in(answer(429, retry_after="Wed, 21 Oct 2026 07:28:00 GMT"), 1), 0.5),  # a date: our backoff
        (_retry_in(answer(502, retry_after="nan"), 2), 1.0),
        (_retry_in(TimeoutError(), 0), 0.25),  # timeouts and dropped connections: our backoff
    ]:
        assert waited is not None and 0 <= waited <= most
    assert _retry_in(MalformedAnswer("not JSON"), 0) is None  # it came, and may be billed: not asked again


def test_a_provider_body_python_will_not_read_is_a_malformed_answer_not_an_exception() -> None:
    from tierlift.adapters._openai_http import MalformedAnswer, ProviderHTTPError, _json_object

    deep = b"[" * 100_000 + b"]" * 100_000  # past Python's recursion limit: RecursionError escaped
    for body in (deep, b'{"id": ' + b"9" * 5_000 + b"}", b"{"):
        with pytest.raises(MalformedAnswer):
            _json_object(body, "answer")
        assert ProviderHTTPError(502, {}, body).status == 502  # its message is the body itself
