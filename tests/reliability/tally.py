"""Count what the reliability suite tried and what came of it, for bench/RESULTS.md.

    python tests/reliability/tally.py            # the fast cases
    python tests/reliability/tally.py --slow     # the slow ones too (prepare killed, ctrl+c, ...)

Runs the suite once and counts, from each case's outcome: cases tried, handled (passed), files lost
(a FilesLost failure: something that had to stay as it was changed), code run (a CodeRan failure:
a pickle's payload ran), forgeries caught (audit forgery cases that passed), and the strict xfails
that wait on the trainer's audit anchors. Per module: fast and slow cases.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ANCHOR_REASON = "trainer writes anchors next"


class Tally:
    """A pytest plugin that keeps each case's outcome, module and markers."""

    def __init__(self) -> None:
        self.slow: set[str] = set()
        self.outcomes: dict[str, str] = {}
        self.failures: dict[str, str] = {}

    def pytest_collection_modifyitems(self, items) -> None:  # noqa: ANN001 - pytest's hook signature
        self.slow = {item.nodeid for item in items if item.get_closest_marker("slow")}

    def pytest_runtest_logreport(self, report) -> None:  # noqa: ANN001
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            if hasattr(report, "wasxfail"):
                outcome = "xfailed" if report.skipped else "xpassed"
            else:
                outcome = report.outcome
            self.outcomes[report.nodeid] = outcome
            if report.failed:
                self.failures[report.nodeid] = str(report.longrepr)


def summarize(t: Tally) -> list[str]:
    ran = {k: v for k, v in t.outcomes.items() if v != "skipped"}
    count = Counter(ran.values())
    lost = sum("FilesLost" in text for text in t.failures.values())
    code = sum("CodeRan" in text for text in t.failures.values())
    forged = [k for k, v in ran.items() if "test_audit_forgery" in k and v == "passed" and "honest" not in k
              and "never_crash" not in k]
    lines = [f"cases tried {len(ran)}, handled {count['passed']}, failed {count['failed']}, "
             f"skipped {len(t.outcomes) - len(ran)}",
             f"files lost {lost}, code run {code}, forgeries caught {len(forged)}, "
             f"xfails waiting on anchors {count['xfailed']} (xpassed {count['xpassed']})", "per module (fast / slow):"]
    modules = sorted({k.split("::")[0] for k in t.outcomes})
    for m in modules:
        ids = [k for k in ran if k.startswith(m + "::")]
        slow = sum(k in t.slow for k in ids)
        lines.append(f"  {Path(m).name}: {len(ids) - slow} / {slow}")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slow", action="store_true", help="run the slow cases too")
    args = ap.parse_args(argv)
    root = HERE.parents[1]
    os.chdir(root)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))
    sys.path[:0] = [str(root)]
    tally = Tally()
    marks = "slow or not slow" if args.slow else "not slow"
    rc = pytest.main([str(HERE), "-q", "-m", marks, "-p", "no:cacheprovider"], plugins=[tally])
    print("\n".join(summarize(tally)))
    return int(rc)


if __name__ == "__main__":
    sys.exit(main())
