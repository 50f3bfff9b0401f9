"""Generate the demo gold sets in data/ (deterministic: the same files, byte for byte, every run).

    python data/make_demo_sets.py           # rewrite the four files next to this script
    python data/make_demo_sets.py --check   # exit 1 if the committed files differ from the output

Why the sets look the way they do: the demo trains a tiny GPT from scratch on a 2-core CPU for
a few minutes and must then answer held-out questions exactly. Such a model learns lookups over
small fact tables and fixed replies well, and fails at copying arbitrary text or arithmetic on
unseen numbers. So every chat family is a lookup over a fixed table (or a fixed reply), every
answer follows one short template per family, and each fact is taught in training under several
phrasings while the held-out file asks the same facts with phrasings (templates) that training
never uses. Arithmetic lives in the tool set, where a calculator tool does the computing and the
model only has to route the expression and state the result.

Files (MyPT gold schema, one episode a line):
    demo_chat.jsonl / demo_chat_heldout.jsonl    lookups, small talk, multi-turn follow-ups
    demo_tool.jsonl / demo_tool_heldout.jsonl    calculator tool calls, and questions needing none
"""

from __future__ import annotations

import argparse
import ast
import json
import operator
import random
import re
import sys
from dataclasses import dataclass
from pathlib import Path

SEED = 1234
DATA_DIR = Path(__file__).resolve().parent
CHAT_FILE, CHAT_HELDOUT_FILE = "demo_chat.jsonl", "demo_chat_heldout.jsonl"
TOOL_FILE, TOOL_HELDOUT_FILE = "demo_tool.jsonl", "demo_tool_heldout.jsonl"

# A few short system prompts, drawn at random per episode in both splits, so the model learns
# that the instruction block does not change the answer (and chat works with any of them).
CHAT_SYSTEMS = (
    "You are MyPT, a helpful assistant.",
    "You are a helpful assistant. Answer briefly.",
    "Answer the user's question in one sentence.",
)
TOOL_SYSTEMS = (
    "You are MyPT. Use the calculator tool for arithmetic.",
    "You are a helpful assistant with a calculator tool.",
)

# -- fact tables ---------------------------------------------------------------------------------

CAPITALS = (
    ("France", "Paris"), ("Germany", "Berlin"), ("Italy", "Rome"), ("Spain", "Madrid"),
    ("Portugal", "Lisbon"), ("Japan", "Tokyo"), ("China", "Beijing"), ("India", "New Delhi"),
    ("Russia", "Moscow"), ("Egypt", "Cairo"), ("Kenya", "Nairobi"), ("Canada", "Ottawa"),
    ("Mexico", "Mexico City"), ("Brazil", "Brasilia"), ("Argentina", "Buenos Aires"),
    ("Peru", "Lima"), ("Chile", "Santiago"), ("Australia", "Canberra"), ("Greece", "Athens"),
    ("Turkey", "Ankara"), ("Poland", "Warsaw"), ("Norway", "Oslo"), ("Sweden", "Stockholm"),
    ("Finland", "Helsinki"), ("Denmark", "Copenhagen"), ("Ireland", "Dublin"),
    ("Austria", "Vienna"), ("Hungary", "Budapest"), ("Belgium", "Brussels"),
    ("Switzerland", "Bern"), ("Thailand", "Bangkok"), ("Vietnam", "Hanoi"),
    ("Indonesia", "Jakarta"), ("Iran", "Tehran"), ("Iraq", "Baghdad"), ("Cuba", "Havana"),
    ("Colombia", "Bogota"), ("Nigeria", "Abuja"), ("Ghana", "Accra"), ("Morocco", "Rabat"),
    ("Ethiopia", "Addis Ababa"), ("Romania", "Bucharest"), ("Ukraine", "Kyiv"),
    ("Iceland", "Reykjavik"), ("Pakistan", "Islamabad"),
)
COLOURS = (  # (thing as written mid-sentence, colour)
    ("the sky", "blue"), ("grass", "green"), ("snow", "white"), ("coal", "black"),
    ("a banana", "yellow"), ("a lemon", "yellow"), ("a tomato", "red"), ("a strawberry", "red"),
    ("a carrot", "orange"), ("a pumpkin", "orange"), ("milk", "white"), ("chocolate", "brown"),
    ("a frog", "green"), ("a crow", "black"), ("a plum", "purple"), ("an eggplant", "purple"),
    ("a flamingo", "pink"), ("the sun", "yellow"), ("a lime", "green"), ("an elephant", "grey"),
    ("a polar bear", "white"), ("blood", "red"), ("the sea", "blue"), ("a cherry", "red"),
)
FLIES = (  # (animal, can it fly): yes/no questions whose answer depends on the animal alone
    ("sparrow", True), ("eagle", True), ("owl", True), ("parrot", True), ("pigeon", True),
    ("bat", True), ("bee", True), ("butterfly", True), ("crow", True), ("swan", True),
    ("penguin", False), ("ostrich", False), ("dog", False), ("cat", False), ("fish", False),
    ("elephant", False), ("horse", False), ("snake", False), ("cow", False), ("kangaroo", False),
)
OPPOSITE_PAIRS = (
    ("hot", "cold"), ("up", "down"), ("fast", "slow"), ("happy", "sad"), ("open", "closed"),
    ("early", "late"), ("full", "empty"), ("wet", "dry"), ("hard", "soft"), ("day", "night"),
    ("push", "pull"), ("loud", "quiet"), ("rich", "poor"), ("win", "lose"), ("strong", "weak"),
    ("thick", "thin"), ("inside", "outside"), ("north", "south"), ("east", "west"),
    ("true", "false"), ("always", "never"), ("buy", "sell"), ("clean", "dirty"),
    ("cheap", "expensive"),
)
PLURALS = (
    ("mouse", "mice"), ("child", "children"), ("man", "men"), ("woman", "women"),
    ("tooth", "teeth"), ("foot", "feet"), ("goose", "geese"), ("person", "people"),
    ("sheep", "sheep"), ("fish", "fish"), ("ox", "oxen"), ("leaf", "leaves"), ("knife", "knives"),
    ("wolf", "wolves"), ("box", "boxes"), ("baby", "babies"), ("city", "cities"), ("bus", "buses"),
    ("potato", "potatoes"), ("cactus", "cacti"), ("life", "lives"), ("cat", "cats"),
    ("dog", "dogs"), ("book", "books"),
)
SOUNDS = (
    ("dog", "woof"), ("cat", "meow"), ("cow", "moo"), ("sheep", "baa"), ("duck", "quack"),
    ("pig", "oink"), ("horse", "neigh"), ("owl", "hoot"), ("lion", "roar"), ("snake", "hiss"),
    ("frog", "ribbit"), ("mouse", "squeak"), ("bee", "buzz"), ("crow", "caw"),
    ("donkey", "hee-haw"), ("rooster", "cock-a-doodle-doo"),
)
YOUNG = (
    ("cat", "kitten"), ("dog", "puppy"), ("cow", "calf"), ("sheep", "lamb"), ("horse", "foal"),
    ("goat", "kid"), ("pig", "piglet"), ("duck", "duckling"), ("frog", "tadpole"),
    ("kangaroo", "joey"), ("bear", "cub"), ("deer", "fawn"), ("goose", "gosling"),
    ("swan", "cygnet"), ("owl", "owlet"), ("eagle", "eaglet"),
)
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
UNITS = (  # (unit, container, how many)
    ("seconds", "a minute", 60), ("minutes", "an hour", 60), ("hours", "a day", 24),
    ("days", "a week", 7), ("months", "a year", 12), ("weeks", "a year", 52),
    ("days", "a year", 365), ("days", "a leap year", 366), ("years", "a decade", 10),
    ("years", "a century", 100), ("centimetres", "a metre", 100), ("metres", "a kilometre", 1000),
    ("grams", "a kilogram", 1000), ("millimetres", "a centimetre", 10),
)

# Small talk: intent -> (fixed reply, training phrasings, held-out phrasings).
SMALLTALK = {
    "identity": ("I am MyPT, a small chat assistant.", (
        "Who are you?", "What are you?", "Tell me about yourself.", "Introduce yourself.",
        "Who am I talking to?", "Are you a bot?", "What kind of assistant are you?",
        "Who are you exactly?", "Tell me who I am talking to.", "Are you a human?", "What is MyPT?",
        "Say who you are."), (
        "Can you introduce yourself?", "Who am I chatting with?", "Tell me who you are.",
        "What exactly are you?")),
    "name": ("My name is MyPT.", (
        "What is your name?", "What's your name?", "Do you have a name?", "What should I call you?",
        "Tell me your name.", "What are you called?", "Your name?", "What do people call you?",
        "What name do you go by?", "Tell me your name, please.", "What is your name, assistant?",
        "Have you got a name?"), (
        "What is your name, please?", "May I know your name?", "Tell me what your name is.",
        "What name do you have?")),
    "abilities": ("I can answer short questions about facts and words.", (
        "What can you do?", "How can you help me?", "What are you able to do?",
        "What do you know about?", "What are you good at?", "What can I ask you?",
        "What can you help with?", "What kind of questions can you answer?", "What are you for?",
        "How can you be useful?", "What do you do?", "What help can you give?"), (
        "What are you able to help with?", "What can you help me with?",
        "What things can you do?", "What questions can you answer?")),
    "greeting": ("Hello! How can I help you?", (
        "Hello!", "Hi!", "Hi there!", "Hey!", "Hello, MyPT!", "Good morning!", "Hey there!",
        "Hello there!", "Hi, MyPT!", "Greetings!", "Hey MyPT!", "Good afternoon!", "Hello again!",
        "Good day!"), (
        "Hello hello!", "Hi again!", "Good morning, MyPT!", "Hey, good morning!")),
    "how_are_you": ("I am doing well, thank you.", (
        "How are you?", "How are you doing?", "How is it going?", "How are you today?",
        "How's it going?", "Are you doing well?", "How do you feel?", "How have you been?",
        "How is your day?", "How are things?", "Are you okay?", "How do you do?"), (
        "How are you doing today?", "How is your day going?", "How are you feeling?",
        "Are you well?")),
    "thanks": ("You are welcome!", (
        "Thanks!", "Thank you!", "Thank you very much!", "Thanks a lot!", "Many thanks!",
        "Thanks for your help!", "Thank you so much!", "Thanks, MyPT!", "Thank you, that helps!",
        "Thanks a bunch!", "Great, thanks!", "Thank you kindly!"), (
        "Thanks a lot, MyPT!", "Thank you for the help!", "Thanks so much!", "Thank you, MyPT!")),
    "goodbye": ("Goodbye! Have a nice day.", (
        "Goodbye!", "Bye!", "Bye bye!", "See you later!", "See you!", "I have to go now. Bye!",
        "Goodbye, MyPT!", "Talk to you later!", "Bye now!", "See you tomorrow!", "Good night!",
        "Catch you later!"), (
        "Bye, MyPT!", "See you soon!", "Goodbye for now!", "Bye for now!")),
}

# -- families: facts, phrasings, answer templates -----------------------------------------------


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


def _families() -> tuple[Family, ...]:
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


# -- chat episodes ------------------------------------------------------------------------------

TRAIN_PHRASINGS_PER_FACT = 7  # of a family's 8-10 training templates
SMALLTALK_TRAIN_REPEATS = 2  # each small-talk phrasing, with different system prompts
MULTI_TURN_TRAIN = 520
MULTI_TURN_HELDOUT = 60


def chat_sets(rng: random.Random) -> tuple[list[dict], list[dict]]:
    fams = _families()
    train_qas: list[QA] = []
    heldout_qas: list[QA] = []
    by_family: dict[str, list[Fact]] = {}
    heldout_templates: dict[Fact, list[str]] = {}
    train_templates: dict[Fact, tuple[str, ...]] = {}
    for fam in fams:
        by_family.setdefault(fam.name, []).extend(fam.facts)
        order = list(fam.facts)
        rng.shuffle(order)
        for i, f in enumerate(order):
            train_templates[f] = fam.train
            for t in rng.sample(fam.train, TRAIN_PHRASINGS_PER_FACT):
                train_qas.append(QA(augment(ask(t, f).question, rng), f.answer, f.family))
            # held-out: templates rotate so each is used about equally; the fact's first one
            # goes to a single-turn episode, the rest are spares for multi-turn episodes
            k = len(fam.heldout)
            heldout_templates[f] = [fam.heldout[(i + j) % k] for j in range(k)]
            heldout_qas.append(ask(heldout_templates[f][0], f))

    for intent, (reply, train_q, held_q) in SMALLTALK.items():
        family = "identity" if intent in ("identity", "name", "abilities") else "smalltalk"
        for q in train_q:
            for _ in range(SMALLTALK_TRAIN_REPEATS):
                train_qas.append(QA(augment(q, rng), reply, family))
        heldout_qas.extend(QA(q, reply, family) for q in held_q)

    train = [[qa] for qa in train_qas]
    train += [_multi_turn(rng, by_family, train_templates, None) for _ in range(MULTI_TURN_TRAIN)]
    heldout = [[qa] for qa in heldout_qas]
    heldout += [_multi_turn(rng, by_family, None, heldout_templates) for _ in range(MULTI_TURN_HELDOUT)]
    return (_episodes(train, "chat", "train", CHAT_SYSTEMS, rng),
            _episodes(heldout, "chat-heldout", "heldout", CHAT_SYSTEMS, rng))


def _multi_turn(rng: random.Random, by_family: dict[str, list[Fact]],
                train_t: dict[Fact, tuple[str, ...]] | None,
                held_t: dict[Fact, list[str]] | None) -> list[QA]:
    """2-3 turns, each answerable alone or from the turn before: an optional greeting, a lookup,
    then a follow-up about another fact of the same family ("And Spain?") or a new lookup."""
    heldout = held_t is not None

    def phrase(f: Fact) -> QA:
        if heldout:
            return ask(rng.choice(held_t[f][1:]), f)  # not the template of its single-turn episode
        return QA(augment(ask(rng.choice(train_t[f]), f).question, rng), f.answer, f.family)

    def smalltalk(intent: str) -> QA:
        reply, train_q, held_q = SMALLTALK[intent]
        return QA(rng.choice(held_q if heldout else train_q), reply, "smalltalk")

    fam = rng.choice(FOLLOW_FAMILIES + ("units",))
    first = rng.choice(by_family[fam])
    turns = []
    if rng.random() < 0.25:
        turns.append(smalltalk("greeting"))
    turns.append(phrase(first))
    if fam != "units" and rng.random() < 0.6:
        # a follow-up names another fact of the same family (and, for the calendar, the same
        # unit and direction), so it is answerable only from the turn before
        same = [f for f in by_family[fam] if f is not first and f.follow is not None
                and f.slots_key() == first.slots_key()]
        second = rng.choice(same)
        tmpl = rng.choice(FOLLOW_HELDOUT if heldout else FOLLOW_TRAIN)
        turns.append(QA(tmpl.format(x=second.follow), second.answer, second.family))
    else:
        other = rng.choice([f for f in FOLLOW_FAMILIES + ("units",) if f != fam])
        turns.append(phrase(rng.choice(by_family[other])))
    if len(turns) < 3 and rng.random() < 0.3:
        turns.append(smalltalk("thanks"))
    return turns


def _episodes(convs: list[list[QA]], prefix: str, split: str, systems: tuple[str, ...],
              rng: random.Random) -> list[dict]:
    rng.shuffle(convs)
    out = []
    for n, turns in enumerate(convs, 1):
        messages = []
        for qa in turns:
            messages += [{"role": "user", "content": qa.question}, {"role": "assistant", "content": qa.answer}]
        meta: dict = {"family": turns[0].family if len(turns) == 1 else "multi_turn", "split": split}
        if len(turns) > 1:
            meta["turn_families"] = [qa.family for qa in turns]
        out.append({"episode_id": f"{prefix}-{n:06d}", "system": rng.choice(systems),
                    "messages": messages, "meta": meta})
    return out


# -- tool episodes ------------------------------------------------------------------------------

OP_WORDS = {"+": "plus", "-": "minus", "*": "times", "/": "divided by"}
CALC_TRAIN = ("What is {e}?", "Calculate {e}.", "Compute {e}.", "What is {w}?", "How much is {w}?",
              "Please calculate {e}.", "What does {e} equal?", "Use the calculator: {e}",
              "How much is {e}?", "Calculate {w}.")
CALC_HELDOUT = ("Work out {e} for me.", "Can you calculate {w}?", "What do you get for {e}?",
                "What is the result of {e}?")
TOOL_TRAIN = 1200
TOOL_HELDOUT = 200


def evaluate(expression: str) -> int | float:
    """The calculator's answer for + - * / and parentheses on numbers (no names, no calls)."""
    bin_ops = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
               ast.Div: operator.truediv}

    def ev(node: ast.AST) -> int | float:
        if isinstance(node, ast.BinOp) and type(node.op) in bin_ops:
            return bin_ops[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -ev(node.operand)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return node.value
        raise ValueError(f"not an arithmetic expression: {expression!r}")

    value = ev(ast.parse(expression, mode="eval").body)
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _expression(rng: random.Random) -> tuple[str, str]:
    """An expression for the tool ("37 * 12") and how a user might say it ("37 times 12")."""
    r = rng.random()
    if r < 0.15:  # (a + b) * c
        a, b, c = rng.randint(2, 60), rng.randint(2, 60), rng.randint(2, 12)
        op1 = rng.choice("+-")
        e = f"({a} {op1} {b}) * {c}"
        return e, e
    op = rng.choice("+-*/")
    if op == "/":
        b, q = rng.randint(2, 12), rng.randint(2, 99)
        a = b * q
    elif op == "*":
        a, b = rng.randint(2, 99), rng.randint(2, 99)
    else:
        a, b = rng.randint(10, 999), rng.randint(10, 999)
    return f"{a} {op} {b}", f"{a} {OP_WORDS[op]} {b}"


def _calc_turn(rng: random.Random, templates: tuple[str, ...], seen: set[str]) -> list[dict]:
    while True:
        e, words = _expression(rng)
        q = rng.choice(templates).format(e=e, w=words)
        if q not in seen:
            seen.add(q)
            break
    result = evaluate(e)
    return [
        {"role": "user", "content": q},
        {"role": "assistant_toolcall", "name": "calculator", "arguments": {"expression": e}},
        {"role": "toolresult", "name": "calculator", "content": json.dumps({"result": result})},
        {"role": "assistant", "content": f"The answer is {result}."},
    ]


def tool_sets(rng: random.Random) -> tuple[list[dict], list[dict]]:
    """Calculator episodes (about 70%), two-question ones, and direct answers with no tool."""
    fams = _families()
    all_facts = [f for fam in fams for f in fam.facts]
    train_t = {f: fam.train for fam in fams for f in fam.facts}
    held_t = {f: fam.heldout for fam in fams for f in fam.facts}
    seen_train: set[str] = set()
    seen_held: set[str] = set()
    taught: list[Fact] = []  # held-out no-tool questions ask only facts the tool set teaches

    def build(n: int, templates: tuple[str, ...], fact_t: dict, smalltalk_i: int,
              seen: set[str], prefix: str, split: str) -> list[dict]:
        facts = list(taught) if split == "heldout" else all_facts
        eps = []
        for k in range(1, n + 1):
            r = rng.random()
            if r < 0.62:
                messages, family = _calc_turn(rng, templates, seen), "calculator"
            elif r < 0.75:
                messages = _calc_turn(rng, templates, seen) + _calc_turn(rng, templates, seen)
                family = "calculator_multi_turn"
            elif r < 0.92:
                f = rng.choice(facts)
                if split == "train" and f not in taught:
                    taught.append(f)
                qa = ask(rng.choice(fact_t[f]), f)
                messages, family = [{"role": "user", "content": qa.question},
                                    {"role": "assistant", "content": qa.answer}], "no_tool"
            else:
                intent = rng.choice(sorted(SMALLTALK))
                reply, phrasings = SMALLTALK[intent][0], SMALLTALK[intent][smalltalk_i]
                messages, family = [{"role": "user", "content": rng.choice(phrasings)},
                                    {"role": "assistant", "content": reply}], "no_tool"
            eps.append({"episode_id": f"{prefix}-{k:06d}", "system": rng.choice(TOOL_SYSTEMS),
                        "messages": messages, "meta": {"family": family, "split": split}})
        return eps

    return (build(TOOL_TRAIN, CALC_TRAIN, train_t, 1, seen_train, "tool", "train"),
            build(TOOL_HELDOUT, CALC_HELDOUT, held_t, 2, seen_held, "tool-heldout", "heldout"))


# -- checks and output --------------------------------------------------------------------------

def user_texts(episodes: list[dict]) -> list[str]:
    return [m["content"] for ep in episodes for m in ep["messages"] if m["role"] == "user"]


def wording(text: str) -> str:
    """A message's words alone: case and punctuation do not make a question new."""
    return " ".join(re.sub(r"[^a-z0-9' ]", " ", text.lower()).split())


def leaks(train: list[dict], heldout: list[dict]) -> list[str]:
    """Held-out user messages that occur verbatim in (or inside) any training message, or that
    have the same words as a training question."""
    texts = "\x00".join(m["content"] for ep in train for m in ep["messages"] if isinstance(m.get("content"), str))
    words = {wording(q) for q in user_texts(train)}
    return sorted({q for q in user_texts(heldout) if q in texts or wording(q) in words})


def untaught(train: list[dict], heldout: list[dict]) -> list[str]:
    """Held-out answers whose exact string never appears as an answer in training."""
    taught = {m["content"] for ep in train for m in ep["messages"] if m["role"] == "assistant"}
    return sorted({m["content"] for ep in heldout for m in ep["messages"]
                   if m["role"] == "assistant" and m["content"] not in taught
                   and ep["meta"]["family"] not in ("calculator", "calculator_multi_turn")})


def jsonl(episodes: list[dict]) -> str:
    return "".join(json.dumps(ep, ensure_ascii=False) + "\n" for ep in episodes)


def build() -> dict[str, str]:
    """File name -> file text of all four demo sets. Raises ValueError if a set breaks a rule."""
    rng = random.Random(SEED)
    chat, chat_held = chat_sets(rng)
    tool, tool_held = tool_sets(rng)
    for name, tr, he in (("chat", chat, chat_held), ("tool", tool, tool_held)):
        if bad := leaks(tr, he):
            raise ValueError(f"{name}: held-out questions seen in training: {bad[:5]}")
    # tool held-out arithmetic answers are computed, not taught; the no-tool ones must be taught
    for name, tr, he in (("chat", chat, chat_held), ("tool", tool, tool_held)):
        if bad := untaught(tr, he):
            raise ValueError(f"{name}: held-out answers never taught in training: {bad[:5]}")
    return {CHAT_FILE: jsonl(chat), CHAT_HELDOUT_FILE: jsonl(chat_held),
            TOOL_FILE: jsonl(tool), TOOL_HELDOUT_FILE: jsonl(tool_held)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--check", action="store_true", help="exit 1 if the files in data/ differ from the output")
    p.add_argument("--out", type=Path, default=DATA_DIR, help="folder to write (default: data/)")
    args = p.parse_args(argv)
    files = build()
    if args.check:
        stale = [n for n, text in files.items()
                 if not (args.out / n).is_file() or (args.out / n).read_bytes() != text.encode()]
        for n in stale:
            print(f"{args.out / n}: differs from the generator's output "
                  f"(run: python data/make_demo_sets.py)", file=sys.stderr)
        return 1 if stale else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for n, text in files.items():
        tmp = args.out / f".{n}.tmp"
        tmp.write_bytes(text.encode())
        tmp.replace(args.out / n)
        print(f"{args.out / n}: {text.count(chr(10))} episodes, {len(text.encode()):,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
