"""The classifier with its real models (static embeddings distilled from MiniLM, spaCy, the
trained heads)."""

import asyncio
import threading
from pathlib import Path

import pytest

from tierlift.classifier import load_classifier
from tierlift.classifier._ner import near_addresses
from tierlift.v1 import classifier_pb2, common_pb2

T = common_pb2


def classify(text: str, declared: int = T.DATA_CLASS_UNSPECIFIED) -> classifier_pb2.Classification:
    request = classifier_pb2.ClassifyRequest(
        messages=[T.Message(role="user", content=text)],
        declared_data_class=declared,  # type: ignore[arg-type]
    )
    return load_classifier().classify(request)


@pytest.mark.parametrize(
    ("text", "task"),
    [
        ("Write a Rust function that parses a CSV line into fields, with tests.", T.TASK_TYPE_CODE),
        pytest.param(
            "Translate into German: the meeting moved to Thursday.",
            T.TASK_TYPE_TRANSLATION,
            # a mean of token vectors weighs "Translate into" like any two words of the text: 63 of
            # 96 held-out translation prompts (MiniLM: 96). Strict: passing means the README is stale.
            marks=pytest.mark.xfail(strict=True, reason="static embeddings: translation recall 0.66"),
        ),
        ("Write a limerick about a sleepy cat.", T.TASK_TYPE_CREATIVE),
        ("What is 348 times 27?", T.TASK_TYPE_MATH),
    ],
)
def test_clear_task_types(text: str, task: int) -> None:
    assert classify(text).task_type == task


def test_a_named_person_with_an_address_is_personal_data() -> None:
    result = classify("Send the renewal to Maria Keller, 14 Hauptstrasse, Berlin.")
    assert "personal_record" in result.data_findings
    assert result.data_class >= T.DATA_CLASS_CONFIDENTIAL


@pytest.mark.parametrize(
    "text",
    [
        "Ship it to John Smith, 5 Elm Court, Leeds.",
        "Jane Doe lives at 12 Oak Crescent, Dublin.",
        "Post to Liam O'Brien, Apartment 4, 22 Harbour View, Cork.",
        "Robert Brown, 742 Evergreen Terrace, Springfield",
        "James Lee, 55 Maple Ct, Austin TX 78701",
        "Send the form to Mark Twain, Toronto ON M5V 3L9.",
        "Write to Ian Wright at SW1A 1AA.",
        "Lucia Rossi, Via Roma 10, Milano",
        "Maria Keller, 10115 Berlin, Invalidenstraße 5",
    ],
)
def test_a_named_person_with_an_address_in_any_common_form_is_personal_data(text: str) -> None:
    result = classify(text)
    assert result.data_class == T.DATA_CLASS_CONFIDENTIAL and "personal_record" in result.data_findings


@pytest.mark.parametrize(
    "text",
    [
        "Ada Lovelace wrote 3 notes on the Analytical Engine in 1843.",
        "As Sally walked to school, she held 25 red balloons and 7 green balloons.",
        "Mr Boarden needs 24 tiles for every square foot of his 36 sq ft floor.",
        "John Smith works at the Golden Gate Bridge toll office.",
        "Charlie agreed to pay Nancy $10,000 if the court approved the sale.",
        "Three 25.00 mL samples of 0.10 M phenol, C6H5OH, went to Dr. Ames.",
    ],
)
def test_a_name_beside_numbers_or_places_that_are_no_address_stays_public(text: str) -> None:
    assert classify(text).data_class == T.DATA_CLASS_PUBLIC


def test_entities_are_looked_for_only_where_a_name_could_change_the_class(monkeypatch: pytest.MonkeyPatch) -> None:
    classifier = load_classifier()
    read: list[str] = []
    pipe = classifier.entities._nlp.pipe

    def reading(texts: list[str], **kwargs: object) -> object:
        read.extend(texts)
        return pipe(texts, **kwargs)

    monkeypatch.setattr(classifier.entities._nlp, "pipe", reading)
    with_address = "Post the contract to Jonas Weber, 7 Lindenweg, Hamburg."
    results = classifier.classify_many(
        [
            classifier_pb2.ClassifyRequest(messages=[T.Message(role="user", content=text)])
            for text in (
                "Who was Ada Lovelace? Tell me about her work with Charles Babbage.",  # no address
                with_address,
                "Jonas Weber, 7 Lindenweg, Hamburg, jonas.weber@example.de",  # the email decides already
                "The meeting is at 7 Lindenweg.",  # an address, no person: read, nothing found
            )
        ]
    )
    assert read == [with_address, "The meeting is at 7 Lindenweg."]
    assert [r.data_class for r in results] == [
        T.DATA_CLASS_PUBLIC,
        T.DATA_CLASS_CONFIDENTIAL,
        T.DATA_CLASS_CONFIDENTIAL,
        T.DATA_CLASS_PUBLIC,
    ]
    assert "personal_record" in results[1].data_findings and "email" in results[2].data_findings


@pytest.mark.parametrize(
    "text",
    [
        "Platz lustig acht Straße Leben.",  # German prose: "street", no house number
        "Dich schlafen Weg auf Fußball fahren.",  # "way"
        "Deksel weg even naald.",  # Dutch "away"
        "Genre rue vent rencontre inquiétude.",  # French prose
        "Ci vediamo via email domani.",
    ],
)
def test_a_street_word_in_prose_is_no_address(text: str) -> None:
    assert near_addresses(text, {}) == ""


@pytest.mark.parametrize(
    "text",
    [
        "Marijnweg 37\n1222DC Sprang-Capelle",
        "Post it to 7 Lindenweg, Hamburg.",
        "Ibrahim-Junken-Straße 7\n23870 Saarlouis",
        "Invalidenstraße, 5",
        "2, rue Dupuy\n71737 Bourg",
        "Calle Adrián Urrutia 76 Puerta 9",
        "Via Roma 10, Milano",
    ],
)
def test_a_street_word_with_a_house_number_is_an_address(text: str) -> None:
    assert near_addresses(text, {}) == text


async def test_prompts_without_an_address_are_answered_before_the_recogniser_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tierlift.classifier import ClassifierServicer

    classifier = load_classifier()
    reading, release = threading.Event(), threading.Event()
    findings_many = classifier.entities.findings_many

    def slow(parts: list[str]) -> list[dict[str, int]]:
        reading.set()
        release.wait(timeout=30)
        return findings_many(parts)  # type: ignore[return-value]

    monkeypatch.setattr(classifier.entities, "findings_many", slow)
    classifier._cache.clear()
    servicer = ClassifierServicer(classifier)

    def classify(text: str) -> asyncio.Task[classifier_pb2.Classification]:
        request = classifier_pb2.ClassifyRequest(messages=[T.Message(role="user", content=text)])
        return asyncio.create_task(servicer.Classify(request, None))  # type: ignore[arg-type]

    # queued together: one pass
    with_address = classify("Send the renewal to Maria Keller, 14 Hauptstrasse, Berlin.")
    plain = classify("What is the capital of Peru?")
    try:
        assert (await asyncio.wait_for(plain, 10)).data_class == T.DATA_CLASS_PUBLIC
        assert await asyncio.to_thread(reading.wait, 10) and not with_address.done()
    finally:
        release.set()
    assert "personal_record" in (await with_address).data_findings


def test_a_public_figure_alone_stays_public() -> None:
    result = classify("Who was Ada Lovelace?")
    assert result.data_class == T.DATA_CLASS_PUBLIC


def test_the_stricter_of_declared_and_detected_wins() -> None:
    assert classify("Hello there", T.DATA_CLASS_INTERNAL).data_class == T.DATA_CLASS_INTERNAL
    card = classify("Refund card 4111 1111 1111 1111", T.DATA_CLASS_INTERNAL)
    assert card.data_class == T.DATA_CLASS_REGULATED
    assert card.detected_data_class == T.DATA_CLASS_REGULATED


def test_prior_and_complexity_are_complementary_probabilities() -> None:
    result = classify("Which of the following is the capital of Italy?\nA. Rome\nB. Milan\nC. Naples\nD. Turin")
    assert 0 < result.small_model_ok < 1
    assert result.complexity == pytest.approx(1 - result.small_model_ok, abs=1e-3)


def test_no_prior_for_a_prompt_unlike_the_routing_heads_training_prompts() -> None:
    # the routing head knows exam questions (MMLU, GSM8K): a chat question gets no estimate
    result = classify("What's the capital of Italy?")
    assert (result.small_model_ok, result.complexity) == (0, 0)


def batch_sizes(monkeypatch: pytest.MonkeyPatch, method: str) -> list[int]:
    """Wraps a batch method of the shared classifier; the list fills with each call's batch size."""
    classifier = load_classifier()
    sizes: list[int] = []
    original = getattr(classifier, method)

    def counted(requests: list[classifier_pb2.ClassifyRequest]) -> list[classifier_pb2.Classification]:
        sizes.append(len(requests))
        return original(requests)  # type: ignore[no-any-return]

    monkeypatch.setattr(classifier, method, counted)
    return sizes


def test_repeated_requests_get_the_same_answer_from_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    computed = batch_sizes(monkeypatch, "draft_many")
    first = classify("A fresh prompt about tide tables in Brittany")
    assert classify("A fresh prompt about tide tables in Brittany") == first
    assert computed == [1]  # the second answer came from the cache


def test_the_cache_is_partitioned_by_tenant(monkeypatch: pytest.MonkeyPatch) -> None:
    """A hit answers in ~1 ms, a miss in ~30: one tenant must not learn from that what another asked."""
    computed = batch_sizes(monkeypatch, "draft_many")
    asked = [
        classifier_pb2.ClassifyRequest(messages=[T.Message(role="user", content="Who bought Globex?")], tenant=t)
        for t in ("acme", "initech", "acme")
    ]
    answers = [load_classifier().classify(r) for r in asked]
    assert computed == [1, 1]  # each tenant's first ask computed; acme's second from the cache
    assert answers[0] == answers[1] == answers[2]  # the tenant is no input to the labels


@pytest.mark.parametrize(
    ("text", "language"),
    [("What is the capital of France?", "en"), ("Wie spät ist es in Berlin?", "de"), ("12 + 30", "und")],
)
def test_language(text: str, language: str) -> None:
    assert classify(text).language == language


async def test_concurrent_calls_share_model_passes_and_get_the_same_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tierlift.classifier import ClassifierServicer

    classifier = load_classifier()
    passes = batch_sizes(monkeypatch, "draft_many")
    servicer = ClassifierServicer(classifier)
    texts = [f"Summarise the minutes of meeting number {i} for the board." for i in range(24)]
    requests = [classifier_pb2.ClassifyRequest(messages=[T.Message(role="user", content=t)]) for t in texts]
    batched = await asyncio.gather(*(servicer.Classify(r, None) for r in requests))  # type: ignore[arg-type]
    assert sum(passes) == 24 and max(passes) > 1  # every call answered, several per pass

    monkeypatch.undo()
    classifier._cache.clear()
    assert list(batched) == [classifier.classify(r) for r in requests]


def test_identifiers_in_the_system_prompt_and_earlier_turns_count() -> None:
    request = classifier_pb2.ClassifyRequest(
        messages=[
            T.Message(role="system", content="Customer record: SSN 078 05 1120."),
            T.Message(role="assistant", content="How can I help?"),
            T.Message(role="user", content="Summarise the customer's situation."),
        ]
    )
    result = load_classifier().classify(request)
    assert result.data_class == T.DATA_CLASS_REGULATED and "national_id" in result.data_findings


def test_a_missing_embedding_model_says_how_to_make_it(tmp_path: Path) -> None:
    from tierlift.classifier._embedder import StaticEmbedder

    with pytest.raises(FileNotFoundError, match=r"python -m tierlift\.classifier\.distil"):
        StaticEmbedder(tmp_path / "static-minilm")


def test_the_embedding_is_model2vecs_own() -> None:
    import numpy as np
    from model2vec import StaticModel

    from tierlift.classifier._embedder import STATIC_MAX_TOKENS, STATIC_MODEL

    texts = ["What is the capital of Peru?", "Grüße aus Köln", "", "1 2 3", "long " * 2000]
    ours = load_classifier().embedder.embed_many(texts)
    theirs = StaticModel.from_pretrained(str(STATIC_MODEL)).encode(texts, max_length=STATIC_MAX_TOKENS)
    assert np.allclose(ours, theirs, atol=1e-3)  # theirs rounds its sums to float16


def test_findings_say_where_they_are_and_never_what() -> None:
    """A stop string or a content part holding an identifier makes the request REGULATED, and
    the classification names the kind and the field, not the value."""
    request = classifier_pb2.ClassifyRequest(
        messages=[common_pb2.Message(role="user", content="Summarise our policy.")],
        parts=[classifier_pb2.Part(field="params.stop[0]", text="SSN 219-09-9999"),
               classifier_pb2.Part(field="params.tools[0].description", text="Looks up the weather.")],
    )  # fmt: skip
    labels = load_classifier().classify(request)
    assert labels.data_class == common_pb2.DATA_CLASS_REGULATED
    assert list(labels.data_finding_fields) == ["national_id at params.stop[0] offset 4"]  # the number itself
    assert "219-09-9999" not in str(labels)
    long = "Please summarise the attached notes for the team. " * 12 + "Her SSN is 219-09-9999 by the way."
    placed = load_classifier().classify(
        classifier_pb2.ClassifyRequest(messages=[common_pb2.Message(role="user", content=long)])
    )
    (where,) = placed.data_finding_fields
    offset = int(where.rsplit(" ", 1)[1])
    assert where.startswith("national_id at messages[0].content offset ")
    assert long.index("SSN") - 16 <= offset <= long.index("219-09"), (where, long.index("SSN"))
    plain = load_classifier().classify(classifier_pb2.ClassifyRequest(messages=request.messages))
    assert not plain.data_finding_fields


@pytest.mark.parametrize(
    "text",
    [
        "Cite as ISBN 979-0-651-53496-2",
        "Running build 27.13.27.51146 in production",
        "Budget: $969,492,473.91",
        "Logged at 2023-08-17T02:36:00Z",
        "See trace e5193c6e-6921-ff75-1bf0-47c5a8bf7b85",
        "Parcel 003401234567890128 left the depot this morning.",
        "Is diabetes common in older adults?",
    ],
)
def test_the_learned_head_never_makes_public_numbers_or_words_regulated(text: str) -> None:
    # the head said REGULATED for most of these; only the detectors' rules may
    result = classify(text)
    assert result.data_class != T.DATA_CLASS_REGULATED, list(result.data_findings)
    assert not any(f == "learned_regulated" for f in result.data_findings)


@pytest.mark.parametrize(
    "text",
    [
        "陈伟每天服用胰岛素。",  # a Chinese name with no honorific, a drug
        "Clara's mammogram came back abnormal.",  # a given name alone
        "Fernanda Lima (4471-2290-18) — retorno na quinta",  # a number labelled by the person's name
    ],
)
def test_the_whole_classifier_keeps_health_and_ids_about_a_person_regulated(text: str) -> None:
    assert classify(text).data_class == T.DATA_CLASS_REGULATED, list(classify(text).data_findings)
