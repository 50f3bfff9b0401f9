"""Train and val loss against step, readable late in a run.

A chat fine-tune's loss falls from about 11 to a few hundredths: on a linear axis everything
after the first fifty steps is a flat line at zero, so the y axis is logarithmic by default
(`toggle_scale`), and `cycle_zoom` shows only the last N steps. Train loss is noisy from step to
step: it is drawn faint as it is, with a smoothed curve over it. Val loss is measured every
`eval_interval` steps: it is drawn as markers (a line between evals would hide the train curve).

Redrawing costs about 10 ms at 1k points and over half a second at 100k, so the widget keeps
every point but plots about twice its width per series (means of equal buckets), new points at
most once a second (`redraw_if_due`, called by the screen's own update so that both share one
repaint), and a repaint with nothing new reuses the last build.
"""

from __future__ import annotations

import math
import time

import numpy as np
from textual.app import RenderResult
from textual_plotext import PlotextPlot

POINTS_PER_COLUMN = 2
REDRAW_INTERVAL = 1.0  # seconds: the curve needs no more; the numbers beside it update faster
WINDOWS = (5000, 1000, 200, 50)  # "last N steps" zooms, offered when shorter than the run
RAW_COLOR = (128, 128, 128)  # the unsmoothed train loss: faint on dark and light themes
Series = tuple[list[int], list[float]]


def downsample(xs: list[float], ys: list[float], n: int) -> tuple[list[float], list[float]]:
    """At most n points: the means of n equal consecutive buckets (the input when it is short)."""
    if len(xs) <= n or n <= 0:
        return list(xs), list(ys)
    edges = np.linspace(0, len(xs), n + 1).astype(np.int64)
    x, y = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
    counts = np.diff(edges)
    bx = np.add.reduceat(x, edges[:-1]) / counts
    by = np.add.reduceat(y, edges[:-1]) / counts
    return bx.tolist(), by.tolist()


def smooth(ys: list[float], span: int) -> list[float]:
    """Exponential moving average over about `span` points, debiased at the start (as TensorBoard)."""
    alpha = 2.0 / (max(span, 1) + 1)
    out, mean, weight = [], 0.0, 0.0
    for y in ys:
        mean = (1 - alpha) * mean + alpha * y
        weight = (1 - alpha) * weight + alpha
        out.append(mean / weight)
    return out


def last_steps(series: Series, window: int | None, last: int) -> Series:
    """The points of the last `window` steps up to step `last` (all of them for None)."""
    xs, ys = series
    if window is None:
        return xs, ys
    start = next((i for i, x in enumerate(xs) if x > last - window), len(xs))
    return xs[start:], ys[start:]


class LossPlot(PlotextPlot):
    """Loss curves of one run. Add points, then `redraw_if_due()` (or `redraw()`, at once)."""

    DEFAULT_CSS = """
    LossPlot { min-height: 6; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id, classes=classes)
        self.train: Series = ([], [])
        self.val: Series = ([], [])
        self.log_y = True
        self.window: int | None = None  # show only the last N steps
        self._dirty = True
        self._version = 0  # bumped by each redraw: the cached render is of this version
        self._rendered: tuple[tuple, RenderResult] | None = None
        self._drawn_at = -math.inf  # time.monotonic() of the last redraw

    def render(self) -> RenderResult:
        key = (self.size, self._version, self.app.theme, self.theme)
        if self._rendered is None or self._rendered[0] != key:
            self._plot_series()  # afresh for every build: plotext keeps a log axis's data transformed after one
            self._rendered = (key, super().render())
        return self._rendered[1]

    @property
    def points(self) -> tuple[int, int]:
        """(train points, val points) held."""
        return len(self.train[0]), len(self.val[0])

    @property
    def view(self) -> str:
        """What the plot shows, for its pane's title."""
        steps = "all" if self.window is None else f"last {self.window}"
        return f"{'log' if self.log_y else 'linear'}, {steps}"

    def add_train(self, step: int, loss: float) -> None:
        if math.isfinite(loss):
            self.train[0].append(step)
            self.train[1].append(loss)
            self._dirty = True

    def add_val(self, step: int, loss: float | None) -> None:
        if loss is not None and math.isfinite(loss):
            self.val[0].append(step)
            self.val[1].append(loss)
            self._dirty = True

    def truncate_after(self, step: int) -> None:
        """Drop points after `step` (a resumed run trains those steps again)."""
        for xs, ys in (self.train, self.val):
            while xs and xs[-1] > step:
                xs.pop()
                ys.pop()
        self._dirty = True

    def clear_points(self) -> None:
        for xs, ys in (self.train, self.val):
            xs.clear()
            ys.clear()
        self._dirty = True

    def toggle_scale(self) -> None:
        self.log_y = not self.log_y
        self._dirty = True
        self.redraw()

    def cycle_zoom(self) -> None:
        """All steps, then the last 5000, 1000, 200, 50 (those shorter than the run), then all again."""
        span = (self.train[0][-1] - self.train[0][0]) if self.train[0] else 0
        choices = [None, *(n for n in WINDOWS if n < span)]
        at = choices.index(self.window) if self.window in choices else 0
        self.window = choices[(at + 1) % len(choices)]
        self._dirty = True
        self.redraw()

    def redraw_if_due(self) -> None:
        """Draw new points if the last draw is REDRAW_INTERVAL old (a build costs a repaint's worth)."""
        if self._dirty and time.monotonic() - self._drawn_at >= REDRAW_INTERVAL:
            self.redraw()

    def redraw(self) -> None:
        """Draw the held points if anything changed since last time."""
        if not self._dirty:
            return
        self._dirty = False
        self._drawn_at = time.monotonic()
        self._version += 1
        self.refresh()

    def _plot_series(self) -> None:
        """Hand plotext the series, downsampled to the width."""
        budget = max((self.size.width or 80) * POINTS_PER_COLUMN, 20)
        last = max(self.train[0][-1:] + self.val[0][-1:], default=0)
        smoothed = (self.train[0], smooth(self.train[1], min(max(len(self.train[0]) // 30, 1), 50)))
        train, trend, val = (last_steps(s, self.window, last) for s in (self.train, smoothed, self.val))
        if self.log_y:  # a log axis has no place for 0 (nor a negative loss, which a bug could give)
            train, trend, val = (_positive(s) for s in (train, trend, val))
        plt = self.plt
        plt.clear_data()
        plt.yscale("log" if self.log_y and (train[0] or val[0]) else "linear")  # (plotext fails on an empty log axis)
        plt.xlabel("step")
        plt.ylabel("loss")
        if train[0]:
            plt.plot(*downsample(*train, budget), marker="braille", color=RAW_COLOR)
            plt.plot(*downsample(*trend, budget), marker="braille", color="cyan", label="train (smoothed)")
        if val[0]:
            plt.scatter(*downsample(*val, budget), marker="●", color="orange", label="val")
        xs = train[0] + val[0]
        if xs:  # whole steps on the axis (plotext would label 0.0, 100.8, ...)
            lo, hi = min(xs), max(xs)
            ticks = sorted({int(round(t)) for t in np.linspace(lo, hi, 5)}) if hi > lo else [lo]
            plt.xticks(ticks, [str(t) for t in ticks])



def _positive(series: Series) -> Series:
    keep = [i for i, y in enumerate(series[1]) if y > 0]
    return [series[0][i] for i in keep], [series[1][i] for i in keep]
