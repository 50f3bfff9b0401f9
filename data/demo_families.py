"""The demo chat families: facts from the word tables, the phrasings that ask them, and how
follow-up questions are worded (read by make_demo_sets.py, beside it)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from demo_tables import (
    CAPITALS,
    COLOURS,
    DAYS,
    FLIES,
    MONTHS,
    OPPOSITE_PAIRS,
    PLURALS,
    SOUNDS,
    UNITS,
    YOUNG,
)


@dataclass(frozen=True)
class Fact:
    """One thing a question can ask. `slots` fill the question templates; `follow` is how a
    follow-up question ("And Spain?") names it, or None where follow-ups make no sense."""

    family: str
    key: str
    slots: tuple[tuple[str, str], ...]
    answer: str
    follow: str | None = None

    def slots_key(self) -> tuple:
        """What a follow-up keeps from the turn before: the family, and for the calendar its
        unit and direction ("And Friday?" after "What day comes after Monday?")."""
        d = dict(self.slots)
        return (self.family, d.get("u"), d.get("way"))


@dataclass(frozen=True)
class Family:
    name: str
    facts: tuple[Fact, ...]
    train: tuple[str, ...]  # question templates used in training
    heldout: tuple[str, ...]  # question templates used only in the held-out file


def cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def article(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def fact(family: str, key: str, answer: str, follow: str | None = None, **slots: str) -> Fact:
    return Fact(family, key, tuple(sorted(slots.items())), answer, follow)


def families() -> tuple[Family, ...]:
    fams = [
        Family("capitals", tuple(fact("capitals", c, f"The capital of {c} is {k}.", c, x=c)
                                 for c, k in CAPITALS), (
            "What is the capital of {x}?", "What's the capital of {x}?", "Name the capital of {x}.",
            "Tell me the capital city of {x}.", "What is the capital city of {x}?",
            "Do you know the capital of {x}?", "Capital of {x}?", "Please tell me the capital of {x}.",
            "What city is the capital of {x}?", "What is {x}'s capital?"), (
            "Which city is the capital of {x}?", "Could you tell me the capital of {x}?",
            "Name the capital city of {x}.", "What is the main city and capital of {x}?")),
        Family("colours", tuple(fact("colours", t, f"{cap(t)} is {c}.", t, x=t) for t, c in COLOURS), (
            "What colour is {x}?", "What color is {x}?", "Which colour is {x}?",
            "What is the colour of {x}?", "Tell me the colour of {x}.", "What color is {x} usually?",
            "Name the colour of {x}.", "Do you know what colour {x} is?"), (
            "What is the color of {x}?", "Which color is {x}?", "Tell me what colour {x} is.",
            "Can you name the colour of {x}?")),
        Family("opposites", tuple(
            fact("opposites", w, f"The opposite of {w} is {o}.", w, x=w)
            for a, b in OPPOSITE_PAIRS for w, o in ((a, b), (b, a))), (
            "What is the opposite of {x}?", "What's the opposite of {x}?", "Opposite of {x}?",
            "Tell me the opposite of {x}.", "Name the opposite of {x}.", "Give me the opposite of {x}.",
            "What word is the opposite of {x}?", "What is an antonym of {x}?"), (
            "Which word is the opposite of {x}?", "Can you give me the opposite of {x}?",
            "What would be the opposite of {x}?", "Give me an antonym of {x}.")),
        Family("plurals", tuple(fact("plurals", w, f"The plural of {w} is {p}.", w, x=w) for w, p in PLURALS), (
            "What is the plural of {x}?", "What's the plural of {x}?", "Plural of {x}?",
            "Tell me the plural of {x}.", "Give me the plural of {x}.", "What is the plural form of {x}?",
            "Name the plural of {x}.", "How do you write more than one {x}?"), (
            "Which word is the plural of {x}?", "Can you tell me the plural of {x}?",
            "What would the plural of {x} be?", "Give me the plural form of {x}.")),
        Family("animal_sounds", tuple(
            fact("animal_sounds", a, f"{cap(article(a))} says {s}.", article(a), x=article(a))
            for a, s in SOUNDS), (
            "What sound does {x} make?", "What noise does {x} make?", "What does {x} say?",
            "Which sound does {x} make?", "Tell me the sound {x} makes.", "How does {x} sound?",
            "What sound do you hear from {x}?", "Name the sound of {x}."), (
            "What noise does {x} usually make?", "Which noise does {x} make?",
            "What sound does {x} usually make?", "What kind of sound does {x} make?")),
        Family("animal_young", tuple(
            fact("animal_young", a, f"A baby {a} is called {article(y)}.", article(a), x=a)
            for a, y in YOUNG), (
            "What is a baby {x} called?", "What do you call a baby {x}?",
            "What is the name for a baby {x}?", "A baby {x} is called what?",
            "What is a young {x} called?", "Tell me the word for a baby {x}.",
            "What's a baby {x} called?", "What do we call a young {x}?"), (
            "What is the word for a baby {x}?", "Which word means a baby {x}?",
            "What do you call a young {x}?", "What name is given to a baby {x}?")),
        Family("units", tuple(
            fact("units", f"{u} in {c}", f"There are {n} {u} in {c}.", None, u=u, c=c, C=cap(c))
            for u, c, n in UNITS), (
            "How many {u} are in {c}?", "How many {u} are there in {c}?", "How many {u} make {c}?",
            "How many {u} does {c} have?", "Tell me how many {u} are in {c}.", "{C} has how many {u}?",
            "Number of {u} in {c}?", "Do you know how many {u} are in {c}?"), (
            "How many {u} make up {c}?", "Can you tell me how many {u} are in {c}?",
            "How many {u} are contained in {c}?", "How many {u} is {c}?")),
        # Yes/no: the verdict depends on the animal alone. (A first design asked "Is snow
        # green?" about the colour table; there the verdict depends on thing and colour jointly,
        # and a tiny model trained for minutes answered every such question the same way.)
        Family("yes_no", tuple(
            fact("yes_no", a, f"Yes, {article(a)} can fly." if flies else f"No, {article(a)} cannot fly.",
                 article(a), x=article(a))
            for a, flies in FLIES), (
            "Can {x} fly?", "Is {x} able to fly?", "Does {x} fly?", "Can {x} fly or not?",
            "True or false: {x} can fly.", "Do you think {x} can fly?", "Tell me if {x} can fly.",
            "Is {x} able to fly or not?"), (
            "Is it true that {x} can fly?", "Am I right that {x} can fly?", "Can {x} really fly?",
            "Tell me whether {x} can fly.")),
    ]
    fams += _calendar()
    return tuple(fams)


def _calendar() -> list[Family]:
    """Day and month successors and predecessors (one family: 'calendar')."""
    facts = []
    for unit, names in (("day", DAYS), ("month", MONTHS)):
        n = len(names)
        for i, x in enumerate(names):
            facts.append(fact("calendar", f"{unit} after {x}", f"The {unit} after {x} is {names[(i + 1) % n]}.",
                              x, x=x, u=unit, way="after"))
            facts.append(fact("calendar", f"{unit} before {x}", f"The {unit} before {x} is {names[i - 1]}.",
                              x, x=x, u=unit, way="before"))
    after = tuple(f for f in facts if dict(f.slots)["way"] == "after")
    before = tuple(f for f in facts if dict(f.slots)["way"] == "before")
    return [
        Family("calendar", after, (
            "What {u} comes after {x}?", "What {u} is after {x}?", "Which {u} follows {x}?",
            "What is the {u} after {x}?", "Tell me the {u} after {x}.", "Name the {u} after {x}.",
            "What {u} follows {x}?", "What is the next {u} after {x}?"), (
            "Which {u} comes after {x}?", "Which {u} is after {x}?", "Tell me which {u} follows {x}.",
            "What {u} comes right after {x}?")),
        Family("calendar", before, (
            "What {u} comes before {x}?", "What {u} is before {x}?", "Which {u} precedes {x}?",
            "What is the {u} before {x}?", "Tell me the {u} before {x}.", "Name the {u} before {x}.",
            "What {u} precedes {x}?", "What is the {u} just before {x}?"), (
            "Which {u} comes before {x}?", "Which {u} is before {x}?", "Tell me which {u} precedes {x}.",
            "What {u} comes right before {x}?")),
    ]


FOLLOW_TRAIN = ("And {x}?", "How about {x}?", "And what about {x}?", "And for {x}?", "Now do {x}.",
                "Same question for {x}.")
FOLLOW_HELDOUT = ("What about {x}?", "OK, and {x}?", "And how about {x}?")
FOLLOW_FAMILIES = ("capitals", "colours", "opposites", "plurals", "animal_sounds", "animal_young",
                   "calendar", "yes_no")


@dataclass(frozen=True)
class QA:
    question: str
    answer: str
    family: str


def ask(template: str, f: Fact) -> QA:
    return QA(template.format(**dict(f.slots)), f.answer, f.family)


def augment(q: str, rng: random.Random) -> str:
    """Training-only surface noise (lower-case start, no final mark) so phrasing matters less."""
    r = rng.random()
    if r < 0.08:
        return q[:1].lower() + q[1:]
    if r < 0.16 and q[-1] in "?.!":
        return q[:-1]
    return q
