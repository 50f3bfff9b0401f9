"""Generate data/demo_base.txt, the plain prose the app's Pre-training demo trains a base model on
(deterministic: the same file, byte for byte, every run).

    python data/make_demo_base.py           # rewrite demo_base.txt next to this script
    python data/make_demo_base.py --check   # exit 1 if the committed file differs from the output

The prose states the facts of the demo chat set (demo_families.py) as plain sentences, one a
line, in paragraphs of a few facts drawn in a seeded order; a blank line ends a paragraph (one
document for `mypt prepare pretrain`). Every fact is stated REPEATS times, in different company.
A base model trained on it completes "The capital of Canada is" but has never seen a question
or a chat tag: Chat SFT on top of it (`mypt train --model BASE`) teaches the format, which is
what the guide's "compare base vs SFT" shows.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # demo_families.py lies beside it
from demo_families import families  # noqa: E402

OUTPUT = Path(__file__).resolve().parent / "demo_base.txt"
SEED = 4242
REPEATS = 6  # times each fact is stated
PARAGRAPH = (4, 9)  # facts per paragraph, at least and at most


def statement(answer: str) -> str:
    """A chat answer as a plain statement: the yes/no family's "No, a cat cannot fly." -> "A cat cannot fly."."""
    for lead in ("Yes, ", "No, "):
        if answer.startswith(lead):
            rest = answer[len(lead):]
            return rest[:1].upper() + rest[1:]
    return answer


def build() -> str:
    rng = random.Random(SEED)
    facts = [statement(f.answer) for fam in families() for f in fam.facts]
    pool = [s for _ in range(REPEATS) for s in facts]
    rng.shuffle(pool)
    paragraphs = []
    while pool:
        n = rng.randint(*PARAGRAPH)
        paragraphs.append("\n".join(pool[:n]))
        pool = pool[n:]
    return "\n\n".join(paragraphs) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed file differs")
    args = parser.parse_args()
    text = build()
    if args.check:
        if not OUTPUT.is_file() or OUTPUT.read_text(encoding="utf-8") != text:
            print(f"{OUTPUT.name} differs from the generator's output: run python data/make_demo_base.py",
                  file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT} ({len(text):,} characters)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
