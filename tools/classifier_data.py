# ruff: noqa: E501  (prompt templates read best one per line)
"""Builds the classifier's labelled set: data/classifier/labelled.jsonl.

Rows come from two places:
- real prompts from data/ (GSM8K and BIG-bench tasks), labelled by the task they
  come from, all PUBLIC;
- templated prompts for the task types and data classes that set lacks (chat, extraction,
  summarisation, translation, code, creative; personal, financial, health and secret data),
  filled by Faker in seven locales.

Every template has a split: even-numbered templates train, odd-numbered ones are held out, so
the held-out score measures phrasings the heads never saw, not memorised ones. Real prompts
split by a hash of their text. Deterministic: the same seed writes the same file.

    python -m tools.classifier_data [--shared data] [--out data/classifier/labelled.jsonl]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import random
from collections.abc import Callable
from pathlib import Path

from faker import Faker

LOCALES = ["en_US", "en_GB", "de_DE", "fr_FR", "nl_NL", "es_ES", "it_IT"]
PER_TEMPLATE = 24

# BIG-bench task file -> task type
TASK_FILES = {
    "arithmetic": "MATH",
    "elementary_math_qa": "MATH",
    "object_counting": "MATH",
    "date_understanding": "REASONING",
    "logical_deduction": "REASONING",
    "tracking_shuffled_objects": "REASONING",
    "navigate": "REASONING",
    "causal_judgment": "REASONING",
    "strategyqa": "REASONING",
    "intent_recognition": "CLASSIFICATION",
    "sports_understanding": "CLASSIFICATION",
}

Fill = Callable[[Faker, random.Random], str]


def _para(f: Faker, r: random.Random) -> str:
    return " ".join(f.paragraph(nb_sentences=r.randint(3, 6)) for _ in range(r.randint(1, 2)))


def _lang(r: random.Random) -> str:
    return r.choice(["French", "German", "Spanish", "Italian", "Dutch", "Japanese", "Portuguese", "Polish"])


TOPICS = [
    "the sea",
    "autumn",
    "a lighthouse",
    "our new office",
    "coffee",
    "a lost cat",
    "the city at night",
    "a product launch",
    "friendship",
    "mountains",
    "a robot learning to paint",
    "winter mornings",
]
FUNCS = [
    "reverses a linked list",
    "parses an ISO 8601 date",
    "merges two sorted arrays",
    "debounces a callback",
    "counts word frequencies in a file",
    "validates an email address",
    "retries an HTTP call with backoff",
    "computes a moving average",
    "flattens a nested dictionary",
    "finds duplicate rows in a table",
]
LANGS = ["Python", "Go", "TypeScript", "Rust", "Java", "SQL", "Bash", "C++"]

# task type -> templates. Each template fills in a prompt with Faker.
TASK_TEMPLATES: dict[str, list[Fill]] = {
    "CHAT": [
        lambda f, r: f"Hi! Can you recommend a good book about {f.word()}?",
        lambda f, r: f"What do you think about {r.choice(TOPICS)}?",
        lambda f, r: f"Hey, how are you today? I'm planning a trip to {f.city()}.",
        lambda f, r: f"Who was the first person to {f.word()} {f.word()}? Just curious.",
        lambda f, r: f"Thanks for the help earlier. Any tips for staying focused while working from {f.city()}?",
        lambda f, r: f"Tell me something interesting about {f.country()}.",
        lambda f, r: f"What's a good name for a {f.color_name().lower()} puppy?",
        lambda f, r: f"Can you explain what a {f.job().lower()} does all day?",
    ],
    "EXTRACTION": [
        lambda f, r: (
            f"Extract every company name and date from this text as JSON:\n{f.company()} signed with {f.company()} on {f.date()}. {_para(f, r)}"
        ),
        lambda f, r: (
            f"Pull out the invoice number, total and due date from: Invoice {f.bothify('INV-#####')} total {f.pricetag()} due {f.date()}."
        ),
        lambda f, r: f"From the email below, list the action items and their owners.\n\n{_para(f, r)}",
        lambda f, r: f"Return the city, street and postcode in this address as fields: {f.address()}",
        lambda f, r: (
            f"Find all the product names and prices mentioned here and give me a table: {f.catch_phrase()} costs {f.pricetag()}, {f.catch_phrase()} costs {f.pricetag()}."
        ),
        lambda f, r: f"Identify the key entities (people, organisations, places) in: {_para(f, r)}",
        lambda f, r: f"Parse this log line into timestamp, level and message: {f.iso8601()} ERROR {f.sentence()}",
        lambda f, r: (
            f"Get the meeting time and location out of this message: let's meet {f.day_of_week()} at {f.time()} in {f.city()}."
        ),
    ],
    "CLASSIFICATION": [
        lambda f, r: f'Classify the sentiment of this review as positive, negative or neutral: "{f.sentence()}"',
        lambda f, r: (
            f"Which category does this support ticket belong to (billing, bug, feature request)? {f.sentence()}"
        ),
        lambda f, r: f"Is this email spam or not spam? Subject: {f.catch_phrase()}. {f.sentence()}",
        lambda f, r: f"Label the topic of this headline: {f.catch_phrase()}",
        lambda f, r: f'Tag this customer message with one of: complaint, question, praise. "{f.sentence()}"',
        lambda f, r: f"Decide whether the following statement is toxic: {f.sentence()}",
        lambda f, r: f"Assign a priority (P1-P4) to this incident: {f.sentence()}",
        lambda f, r: f"What language family does the word '{f.word()}' belong to? Answer with one label.",
    ],
    "SUMMARISATION": [
        lambda f, r: f"Summarise the following in two sentences:\n\n{_para(f, r)}",
        lambda f, r: f"TL;DR this for me: {_para(f, r)}",
        lambda f, r: f"Give me the key points of this meeting transcript as bullets.\n{_para(f, r)}",
        lambda f, r: f"Condense this article into a short abstract: {_para(f, r)}",
        lambda f, r: f"Write an executive summary of the report below.\n{_para(f, r)}",
        lambda f, r: f"What are the main takeaways of this text? {_para(f, r)}",
        lambda f, r: f"Shorten this to one paragraph without losing the facts: {_para(f, r)}",
        lambda f, r: f"Recap this thread in three lines: {_para(f, r)}",
    ],
    "TRANSLATION": [
        lambda f, r: f"Translate into {_lang(r)}: {f.sentence()}",
        lambda f, r: f'How do you say "{f.sentence()}" in {_lang(r)}?',
        lambda f, r: f"Please render this paragraph in {_lang(r)}:\n{_para(f, r)}",
        lambda f, r: (
            f"Translate this product description to {_lang(r)}, keep the tone: {f.catch_phrase()}. {f.sentence()}"
        ),
        lambda f, r: f"{f.sentence()} -- what is that in {_lang(r)}?",
        lambda f, r: f"Can you convert this English text to {_lang(r)}? {f.sentence()}",
        lambda f, r: f"I need a {_lang(r)} version of this email: {_para(f, r)}",
        lambda f, r: f'Localise the following UI string for {_lang(r)} speakers: "{f.catch_phrase()}"',
    ],
    "CODE": [
        lambda f, r: f"Write a {r.choice(LANGS)} function that {r.choice(FUNCS)}.",
        lambda f, r: f"Why does this code fail?\n```\ndef {f.word()}(x):\n    return x.{f.word()}()\n```",
        lambda f, r: (
            f"Refactor this {r.choice(LANGS)} snippet for readability: for i in range(len(items)): print(items[i])"
        ),
        lambda f, r: f"Implement a class in {r.choice(LANGS)} that {r.choice(FUNCS)}, with unit tests.",
        lambda f, r: f"Write a SQL query that returns the top 10 {f.word()}s by revenue from the orders table.",
        lambda f, r: (
            f"Fix the bug: my {r.choice(LANGS)} program {r.choice(FUNCS)} but throws a null pointer exception."
        ),
        lambda f, r: (
            f"Review this pull request diff and suggest improvements:\n+ const {f.word()} = await fetch(url)\n+ return {f.word()}.json()"
        ),
        lambda f, r: f"Generate a regex that matches {f.word()} identifiers and explain it.",
    ],
    "CREATIVE": [
        lambda f, r: f"Write a short poem about {r.choice(TOPICS)}.",
        lambda f, r: f"Tell me a bedtime story about a {f.color_name().lower()} dragon named {f.first_name()}.",
        lambda f, r: f"Come up with five slogans for {f.company()}.",
        lambda f, r: f"Write a haiku about {r.choice(TOPICS)}.",
        lambda f, r: f"Draft a funny toast for my friend's wedding in {f.city()}.",
        lambda f, r: f"Invent a myth explaining {r.choice(TOPICS)}.",
        lambda f, r: f"Write song lyrics in the style of a sea shanty about {r.choice(TOPICS)}.",
        lambda f, r: f"Create a short sci-fi scene set on a ship called the {f.last_name()}.",
    ],
    "MATH": [
        lambda f, r: f"What is {r.randint(10, 999)} * {r.randint(10, 999)}?",
        lambda f, r: f"Solve for x: {r.randint(2, 9)}x + {r.randint(1, 50)} = {r.randint(51, 200)}",
        lambda f, r: (
            f"A shop sells {r.randint(2, 20)} apples for {f.pricetag()}. How much do {r.randint(21, 90)} apples cost?"
        ),
        lambda f, r: f"Compute the derivative of x^{r.randint(2, 6)} + {r.randint(1, 9)}x.",
    ],
    "REASONING": [
        lambda f, r: (
            f"If all {f.word()}s are {f.word()}s and some {f.word()}s are red, must some {f.word()}s be red? Explain step by step."
        ),
        lambda f, r: (
            f"{f.first_name()} is taller than {f.first_name()}, who is taller than {f.first_name()}. Who is the shortest? Think it through."
        ),
        lambda f, r: (
            f"Should our team move from {f.company()}'s cloud to our own servers? Weigh the trade-offs step by step."
        ),
        lambda f, r: (
            f"Plan a migration of a {r.randint(2, 90)} TB database with no downtime, reasoning about each risk."
        ),
    ],
}

PUBLIC_FILLERS: list[Fill] = [fill for fills in TASK_TEMPLATES.values() for fill in fills]


def _health(f: Faker, r: random.Random) -> str:
    return r.choice(
        [
            "type 2 diabetes",
            "HIV",
            "major depressive disorder",
            "breast cancer",
            "epilepsy",
            "hypertension",
            "bipolar disorder",
            "asthma",
            "hepatitis C",
            "multiple sclerosis",
        ]
    )


# data class -> templates that put that kind of data into a prompt (any task type)
DATA_TEMPLATES: dict[str, list[Fill]] = {
    "REGULATED": [
        lambda f, r: f"Refund the order paid with card {f.credit_card_number()} exp {f.credit_card_expire()}.",
        lambda f, r: (
            f"Summarise this case: {f.name()} was diagnosed with {_health(f, r)} on {f.date()} and prescribed {f.word()}."
        ),
        lambda f, r: f"Please set up a transfer of {f.pricetag()} to IBAN {f.iban()} for {f.name()}.",
        lambda f, r: (
            f"Patient {f.name()}, born {f.date_of_birth()}, medical record {f.bothify('MRN-#######')}: draft a discharge letter."
        ),
        lambda f, r: f"Check the customer's details: {f.name()}, {f.address()}, card number {f.credit_card_number()}.",
        lambda f, r: f"Translate my doctor's note: I have {_health(f, r)} and take medication every morning.",
        lambda f, r: f"Write to the bank: my account {f.iban()} was charged twice by {f.company()}.",
        lambda f, r: f"Is my card {f.credit_card_number()} still valid? The CVV is {f.credit_card_security_code()}.",
        lambda f, r: f"My social security number is {Faker('en_US').ssn()}, can you fill in the form for {f.name()}?",
        lambda f, r: f"Employee {f.name()} (SSN {Faker('en_US').ssn()}) needs a payroll correction of {f.pricetag()}.",
        lambda f, r: f"The psychiatric assessment of {f.name()} says: {f.sentence()} Rewrite it in plain language.",
        lambda f, r: (
            f"Classify these transactions from account {f.iban()}: {f.company()} {f.pricetag()}, {f.company()} {f.pricetag()}."
        ),
    ],
    "CONFIDENTIAL": [
        lambda f, r: f"Reply to {f.name()} at {f.email()} about the delayed delivery.",
        lambda f, r: f"Call {f.name()} on {f.phone_number()} and confirm the appointment; write the script.",
        lambda f, r: (
            f"Here is our AWS key AKIA{f.bothify('????????????????', letters='ABCDEFGHIJKLMNOPQRSTUVWXYZ234567')}, why is the upload failing?"
        ),
        lambda f, r: (
            f"Use this token sk-{f.password(length=40, special_chars=False)} to call the API and debug the error."
        ),
        lambda f, r: f"Draft a contract renewal for {f.name()}, {f.address()}, contact {f.email()}.",
        lambda f, r: f"Summarise the customer complaint from {f.email()}: {f.sentence()}",
        lambda f, r: (
            f"Our database password is {f.password(length=16)} and the host is {f.ipv4_private()}; why can't I connect?"
        ),
        lambda f, r: f"Send the quarterly numbers to {f.name()} ({f.email()}, {f.phone_number()}).",
    ],
    "INTERNAL": [
        lambda f, r: f"INTERNAL ONLY - do not distribute. Summarise the {f.company()} reorg plan: {_para(f, r)}",
        lambda f, r: (
            f"Here are notes from our internal strategy offsite, for staff eyes only: {_para(f, r)} What are the risks?"
        ),
        lambda f, r: f"Proofread this internal memo to all employees: {_para(f, r)}",
        lambda f, r: f"From our company wiki (internal): {_para(f, r)} Turn this into an onboarding checklist.",
        lambda f, r: f"Draft the internal announcement of Project {f.last_name()} to the engineering org.",
        lambda f, r: f"Rewrite this confidential-to-staff roadmap slide: {f.catch_phrase()}, {f.catch_phrase()}.",
    ],
}


def _split_of_template(index: int) -> str:
    return "train" if index % 2 == 0 else "test"


def _split_of_text(text: str) -> str:
    return "train" if int(hashlib.sha256(text.encode()).hexdigest(), 16) % 10 < 7 else "test"


def _real_rows(shared: Path, per_file: int, rng: random.Random) -> list[dict[str, str]]:
    rows = []
    for path in sorted((shared / "tasks").glob("*.jsonl")):
        task = next(t for prefix, t in TASK_FILES.items() if path.stem.startswith(prefix))
        lines = path.read_text().splitlines()
        for line in rng.sample(lines, min(per_file, len(lines))):
            text = json.loads(line)["input"]
            rows.append(
                {
                    "text": text,
                    "task_type": task,
                    "data_class": "PUBLIC",
                    "source": path.stem,
                    "split": _split_of_text(text),
                }
            )
    with (shared / "routing" / "gsm8k_outcomes.csv").open() as f:
        gsm = [r["prompt"] for r in csv.DictReader(f)]
    for text in rng.sample(gsm, min(per_file * 3, len(gsm))):
        rows.append(
            {
                "text": text,
                "task_type": "MATH",
                "data_class": "PUBLIC",
                "source": "gsm8k",
                "split": _split_of_text(text),
            }
        )
    return rows


def _templated_rows(seed: int) -> list[dict[str, str]]:
    rows = []
    rng = random.Random(seed)
    fakers = {loc: Faker(loc) for loc in LOCALES}
    for i, loc in enumerate(LOCALES):
        fakers[loc].seed_instance(seed + i)
    for task, fills in TASK_TEMPLATES.items():
        for index, fill in enumerate(fills):
            for _ in range(PER_TEMPLATE):
                f = fakers[rng.choice(LOCALES)]
                rows.append(
                    {
                        "text": fill(f, rng),
                        "task_type": task,
                        "data_class": "PUBLIC",
                        "source": f"template:{task}:{index}",
                        "split": _split_of_template(index),
                    }
                )
    for data_class, fills in DATA_TEMPLATES.items():
        for index, fill in enumerate(fills):
            for _ in range(PER_TEMPLATE * 2):
                f = fakers[rng.choice(LOCALES)]
                rows.append(
                    {
                        "text": fill(f, rng),
                        "task_type": "",
                        "data_class": data_class,
                        "source": f"template:{data_class}:{index}",
                        "split": _split_of_template(index),
                    }
                )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=Path("data"))
    parser.add_argument("--out", type=Path, default=Path("data/classifier/labelled.jsonl"))
    parser.add_argument("--seed", type=int, default=20261126)
    parser.add_argument("--per-file", type=int, default=60, help="real prompts taken from each task file")
    args = parser.parse_args()
    rows = _real_rows(args.shared, args.per_file, random.Random(args.seed)) + _templated_rows(args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} rows to {args.out}")


if __name__ == "__main__":
    main()
