"""A prepared dataset's statistics, as `mypt inspect` prints them and the Data screen shows them:
counts, nearest-rank length percentiles, mask ratio, skipped episodes and skill families."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from engine.layout import DATASET_FORMAT

SHOW_FAMILIES = 12  # the most common families listed per split
COLUMNS = ("split", "episodes", "tokens", "supervised", "mask", "p50", "p90", "p99", "max")


@dataclass(frozen=True)
class SplitStats:
    name: str
    episodes: int
    tokens: int
    supervised: int
    p50: int
    p90: int
    p99: int
    longest: int
    families: tuple[tuple[str, int], ...]  # most common first; () when the set has none

    @property
    def mask_ratio(self) -> float:
        return self.supervised / self.tokens if self.tokens else 0.0

    def cells(self) -> list[str]:
        """One row of the table, in COLUMNS order."""
        return [self.name, f"{self.episodes:,}", f"{self.tokens:,}", f"{self.supervised:,}", f"{self.mask_ratio:.1%}",
                str(self.p50), str(self.p90), str(self.p99), str(self.longest)]


def split_stats(split) -> SplitStats:  # noqa: ANN001 - engine.dataset.Split
    """Counts and nearest-rank length percentiles of a split."""
    sup = int(split.supervised.sum())
    p50, p90, p99 = (int(v) for v in np.percentile(split.lengths, [50, 90, 99], method="inverted_cdf"))
    fams: tuple[tuple[str, int], ...] = ()
    if split.has_sidecar:
        counts = Counter(split.families)
        if set(counts) != {"all"}:
            fams = tuple(counts.most_common())
    return SplitStats(split.name, len(split), len(split.tokens), sup, p50, p90, p99, int(split.lengths.max()), fams)


def dataset_stats(ds) -> list[SplitStats]:  # noqa: ANN001 - engine.dataset.Dataset
    """The stats of each split that has episodes (train, then val)."""
    return [split_stats(s) for s in (ds.split("train"), ds.split("val")) if s is not None]


def title(ds) -> str:  # noqa: ANN001
    """The dataset's folder, format, tokenization and kind."""
    meta = ds.metadata
    kind = f", {meta['kind']}" if "kind" in meta else ""
    return f"{ds.root} ({meta.get('format', meta.get('schema', DATASET_FORMAT))}, {ds.tokenizer().kind}{kind})"


def notes(ds, stats: list[SplitStats]) -> list[str]:  # noqa: ANN001
    """The lines under the table: episodes skipped when prepared, and skill families."""
    lines = []
    skipped = ds.metadata.get("skipped") or {}
    if skipped.get("total"):
        reasons = ", ".join(f"{k} {v}" for k, v in skipped.get("by_reason", {}).items())
        lines.append(f"skipped when prepared: {skipped['total']} ({reasons})")
    else:
        lines.append("skipped when prepared: none")
    for s in stats:
        if s.families:
            top = s.families[:SHOW_FAMILIES]
            more = f", ... {len(s.families) - len(top)} more" if len(s.families) > len(top) else ""
            lines.append(f"families ({s.name}): {', '.join(f'{f} {n}' for f, n in top)}{more}")
    return lines


def prepare_report_lines(report) -> list[str]:  # noqa: ANN001 - engine.prepare.PrepareReport
    """A PrepareReport in a few lines: what was written, skipped and worth a warning."""
    lines = [f"Prepared {report.output} in {report.seconds:.1f} s ({report.kind}, {report.tokenization})",
             (f"train: {report.train_episodes:,} episodes, {report.train_tokens:,} tokens, "
              f"{report.train_mask_ratio:.1%} trained"),
             (f"val:   {report.val_episodes:,} episodes, {report.val_tokens:,} tokens, "
              f"{report.val_mask_ratio:.1%} trained")]
    if report.skipped_total:
        lines.append(f"skipped {report.skipped_total}: " + ", ".join(
            f"{k} {v}" for k, v in report.skipped_by_reason.items()))
        lines += [f"  {s}" for s in report.skipped[:5]]
        if report.skipped_total > 5:
            lines.append(f"  ... {report.skipped_total - 5} more (all listed in the dataset's metadata)")
    if report.overlap:
        examples = ", ".join(report.overlap_examples[:3])
        lines.append(f"{report.overlap} val episodes also occur in train (e.g. {examples})")
    lines += [f"warning: {w}" for w in report.warnings]
    return lines
