"""The continuation demo's data: facts about made-up people, told in prose for pretraining, and
asked about in chat for SFT (read by make_demo_sets.py, beside it).

No model knows these people beforehand (their names are made up), so what a model knows about
them it learned from the prose. The SFT set asks about the first half of the people only; the
held-out set asks about the other half, whose facts appear in the prose and nowhere in SFT. A
chat model fine-tuned from the pretrained base can answer those; one fine-tuned from scratch can
only guess (one of 8 to 12 values per question).

Each person has four facts (town, job, fruit, pet). The prose tells each fact under five
phrasings, in several short biographies per person with the facts in a shuffled order (the
"knowledge augmentation" that lets a model use a fact outside the sentence it read it in). The
prose also holds the SFT people's questions, each followed by its answer ("mixed training": the
pretraining sees what a question asks for, about the SFT half only). An answer is one sentence in
a form the prose uses, so SFT teaches the format and the model recalls the fact.
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
    """PEOPLE made-up one-word names (three syllables, none the start of another) and their facts."""
    names: set[str] = set()
    while len(names) < PEOPLE:
        name = "".join(rng.choice(SYLLABLES) for _ in range(3)).capitalize()
        if not any(n.startswith(name) or name.startswith(n) for n in names):
            names.add(name)
    ordered = sorted(names)
    rng.shuffle(ordered)
    return [{"name": n, **{k: rng.choice(v) for k, v in VALUES.items()}} for n in ordered]


def corpus(rng: random.Random, folk: list[dict[str, str]]) -> list[str]:
    """The pretraining documents, shuffled: BIOGRAPHIES short biographies per person (each fact
    once, in a shuffled order, under every phrasing in turn), and for the SFT people only, their
    questions each followed by its answer (mixed training: what a question asks, seen in prose)."""
    docs = []
    for person in folk:
        turns = {f: rng.sample(PROSE[f], len(PROSE[f])) for f in PROSE}  # every phrasing once per 5 bios
        for b in range(BIOGRAPHIES):
            facts = list(PROSE)
            rng.shuffle(facts)
            docs.append(" ".join(turns[f][b % len(turns[f])].format(n=person["name"], v=person[f])
                                 for f in facts))
    sft, _ = qa_sets(folk)
    docs += [f"{ep['messages'][0]['content']} {ep['messages'][1]['content']}" for ep in sft]
    rng.shuffle(docs)
    return docs


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
