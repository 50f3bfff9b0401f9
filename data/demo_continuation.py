"""The continuation demo's data: facts about made-up people, told in prose for pretraining, and
asked about in chat for SFT (read by make_demo_sets.py, beside it).

No model knows these people beforehand (their names are made up), so what a model knows about
them it learned from the prose. The SFT set asks about the first half of the people only; the
held-out set asks about the other half, whose facts appear in the prose and nowhere in SFT. A
chat model fine-tuned from the pretrained base can answer those; one fine-tuned from scratch can
only guess (one of 8 to 12 values per question).

Each person has four facts (town, job, fruit, pet). The prose tells each fact under five
phrasings, in several short biographies per person with the facts in a shuffled order (the
"knowledge augmentation" that lets a model use a fact outside the sentence it read it in). An
answer is one sentence in the form the prose also uses, so SFT teaches the format and the model
recalls the fact.
"""

from __future__ import annotations

import random

SYLLABLES = ("tar", "vik", "lo", "mu", "bre", "zan", "quo", "rin", "fel", "dor", "ka", "mi", "sel", "vo",
             "nur", "pa", "gri", "len", "hol", "bax", "tem", "su", "ra", "jo")
TOWNS = ("Brellstad", "Quorvane", "Mistrel", "Holmvik", "Dunsable", "Farrowgate", "Kelmoor", "Ostrava",
         "Pellin", "Ravensmark", "Tolvern", "Wendrick")
JOBS = ("baker", "sailor", "weaver", "potter", "miner", "farmer", "tailor", "smith", "fisher", "painter")
FRUITS = ("apples", "pears", "plums", "cherries", "figs", "grapes", "lemons", "peaches")
PETS = ("cat", "dog", "goat", "parrot", "rabbit", "tortoise", "horse", "hamster")
VALUES = {"town": TOWNS, "job": JOBS, "fruit": FRUITS, "pet": PETS}

PROSE = {  # {n}: the person, {v}: the value
    "town": ("{n} lives in {v}.", "{n}'s home is the town of {v}.", "The town of {v} is where {n} lives.",
             "{n} has a house in {v}.", "In {v} you can find {n}."),
    "job": ("{n} works as a {v}.", "{n} is a {v} by trade.", "By trade, {n} is a {v}.",
            "{n} earns a living as a {v}.", "The job of {n} is {v}."),
    "fruit": ("{n}'s favourite fruit is {v}.", "{n} loves eating {v}.", "Of all fruit, {n} likes {v} best.",
              "{n} always buys {v} at the market.", "The fruit {n} likes most is {v}."),
    "pet": ("{n} has a pet {v}.", "{n} keeps a {v} at home.", "The pet of {n} is a {v}.",
            "{n} looks after a {v}.", "At home, {n} has a {v} as a pet."),
}
ANSWER = {"town": "{n} lives in {v}.", "job": "{n} works as a {v}.", "fruit": "{n}'s favourite fruit is {v}.",
          "pet": "{n} has a pet {v}."}
QUESTIONS = {  # the first of each is the held-out set's phrasing
    "town": ("Where does {n} live?", "Which town is {n} from?", "In which town does {n} live?"),
    "job": ("What does {n} do for a living?", "What is {n}'s job?", "What work does {n} do?"),
    "fruit": ("What is {n}'s favourite fruit?", "Which fruit does {n} like best?", "What fruit does {n} love?"),
    "pet": ("What pet does {n} have?", "Which animal does {n} keep as a pet?", "What is {n}'s pet?"),
}
PEOPLE = 40  # half asked about in SFT, half held out
BIOGRAPHIES = 8  # per person, each with every fact once, phrasings and order drawn anew


def people(rng: random.Random) -> list[dict[str, str]]:
    names: set[str] = set()
    while len(names) < PEOPLE:
        first = (rng.choice(SYLLABLES) + rng.choice(SYLLABLES)).capitalize()
        last = "".join(rng.choice(SYLLABLES) for _ in range(3)).capitalize()
        names.add(f"{first} {last}")
    ordered = sorted(names)
    rng.shuffle(ordered)
    return [{"name": n, **{k: rng.choice(v) for k, v in VALUES.items()}} for n in ordered]


def corpus(rng: random.Random, folk: list[dict[str, str]]) -> list[dict]:
    """The pretraining prose: short biographies, one document each, in a shuffled order."""
    docs = []
    for person in folk:
        for _ in range(BIOGRAPHIES):
            facts = list(PROSE)
            rng.shuffle(facts)
            docs.append(" ".join(rng.choice(PROSE[f]).format(n=person["name"], v=person[f]) for f in facts))
    rng.shuffle(docs)
    return [{"text": d} for d in docs]


def qa_sets(folk: list[dict[str, str]]) -> tuple[list[dict], list[dict]]:
    """(SFT: every phrasing about the first half of the people; held-out: one phrasing about the rest)."""
    sft, heldout = [], []
    for i, person in enumerate(folk):
        asked = i < PEOPLE // 2
        for fact, phrasings in QUESTIONS.items():
            for k, q in enumerate(phrasings if asked else phrasings[:1]):
                ep = {"episode_id": f"facts-{'sft' if asked else 'heldout'}-{i:02d}-{fact}-{k}",
                      "messages": [{"role": "user", "content": q.format(n=person["name"])},
                                   {"role": "assistant", "content": ANSWER[fact].format(n=person["name"],
                                                                                         v=person[fact])}],
                      "meta": {"family": fact}}
                (sft if asked else heldout).append(ep)
    return sft, heldout
