"""Generate the demo gold sets in data/ (deterministic: the same files, byte for byte, every run).

    python data/make_demo_sets.py           # rewrite the files next to this script
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
The continuation demo (pretraining, then chat SFT on top; see demo_continuation.py):
    demo_continuation_corpus.txt                 the pretraining prose, one document a paragraph
    demo_continuation_sft.jsonl                  chat SFT: questions about the first half of the people
    demo_continuation_heldout.jsonl              questions about the other half, told only in the prose
"""

from __future__ import annotations

import argparse
import ast
import json
import operator
import random
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # demo_families.py, demo_tables.py, ... lie beside it
import demo_continuation  # noqa: E402
from demo_families import (  # noqa: E402
    FOLLOW_FAMILIES,
    FOLLOW_HELDOUT,
    FOLLOW_TRAIN,
    QA,
    Fact,
    ask,
    augment,
    families,
)
from demo_tables import CHAT_SYSTEMS, SMALLTALK, TOOL_SYSTEMS  # noqa: E402

SEED = 1234
DATA_DIR = Path(__file__).resolve().parent
CHAT_FILE, CHAT_HELDOUT_FILE = "demo_chat.jsonl", "demo_chat_heldout.jsonl"
TOOL_FILE, TOOL_HELDOUT_FILE = "demo_tool.jsonl", "demo_tool_heldout.jsonl"
CONT_CORPUS_FILE, CONT_SFT_FILE = "demo_continuation_corpus.txt", "demo_continuation_sft.jsonl"
CONT_HELDOUT_FILE = "demo_continuation_heldout.jsonl"


# -- chat episodes ------------------------------------------------------------------------------

TRAIN_PHRASINGS_PER_FACT = 7  # of a family's 8-10 training templates
SMALLTALK_TRAIN_REPEATS = 2  # each small-talk phrasing, with different system prompts
MULTI_TURN_TRAIN = 520
MULTI_TURN_HELDOUT = 60


def chat_sets(rng: random.Random) -> tuple[list[dict], list[dict]]:
    fams = families()
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
    fams = families()
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


def continuation_sets() -> tuple[list[str], list[dict], list[dict]]:
    """(prose documents, SFT episodes, held-out episodes); raises ValueError if a held-out person
    is named in SFT or a held-out answer is not told, word for word, in the prose."""
    rng = random.Random(SEED)  # its own generator: the other sets do not shift it
    folk = demo_continuation.people(rng)
    docs = demo_continuation.corpus(rng, folk)
    sft, heldout = demo_continuation.qa_sets(folk)
    sft_text = "\x00".join(m["content"] for ep in sft for m in ep["messages"])
    if named := sorted({p["name"] for p in folk[len(folk) // 2:] if p["name"] in sft_text}):
        raise ValueError(f"continuation: held-out people named in SFT: {named[:5]}")
    prose = "\n".join(docs)
    if untold := [ep["messages"][1]["content"] for ep in heldout if ep["messages"][1]["content"] not in prose]:
        raise ValueError(f"continuation: held-out answers not told in the prose: {untold[:5]}")
    return docs, sft, heldout


def jsonl(episodes: list[dict]) -> str:
    return "".join(json.dumps(ep, ensure_ascii=False) + "\n" for ep in episodes)


def build() -> dict[str, str]:
    """File name -> file text of every demo set. Raises ValueError if a set breaks a rule."""
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
    docs, cont_sft, cont_held = continuation_sets()
    return {CHAT_FILE: jsonl(chat), CHAT_HELDOUT_FILE: jsonl(chat_held),
            TOOL_FILE: jsonl(tool), TOOL_HELDOUT_FILE: jsonl(tool_held),
            CONT_CORPUS_FILE: "".join(d + "\n\n" for d in docs),  # a paragraph is a document
            CONT_SFT_FILE: jsonl(cont_sft), CONT_HELDOUT_FILE: jsonl(cont_held)}


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
        print(f"{args.out / n}: {text.count(chr(10))} lines, {len(text.encode()):,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
