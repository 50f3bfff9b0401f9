"""The Pre-training demo's prose: reproducible from its generator, and it states the demo chat
set's facts as plain sentences (no questions, no chat tags) that `mypt prepare pretrain` reads
as paragraphs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from engine.corpus import read_documents

DATA = Path(__file__).resolve().parents[2] / "data"


def test_committed_file_equals_generator_output():
    r = subprocess.run([sys.executable, str(DATA / "make_demo_base.py"), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_prose_states_facts_in_paragraphs_without_questions_or_tags():
    text = (DATA / "demo_base.txt").read_text(encoding="utf-8")
    docs = list(read_documents(DATA / "demo_base.txt", "text", lambda line: None))
    assert len(docs) == text.count("\n\n") + 1 > 100
    lines = [line for d in docs for line in d.text.split("\n")]
    assert "The capital of Canada is Ottawa." in lines and "A penguin cannot fly." in lines
    assert not any("?" in line or "<myPT_" in line or line.startswith(("Yes,", "No,")) for line in lines)
    assert lines.count("The capital of Canada is Ottawa.") == 6  # every fact REPEATS times
