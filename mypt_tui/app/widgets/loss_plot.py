"""Train and val loss against step, kept smooth on long runs by plotting a bucketed series.

Redrawing a plotext plot costs about 10 ms at 1k points and over half a second at 100k, so the
widget keeps every point but plots about twice its width: consecutive points are averaged in
equal buckets (a mean keeps the curve's level; every Nth point would keep its noise). Even at
that size a plot costs tens of milliseconds on a busy CPU, so new points are drawn at most once
a second, and a repaint with nothing new (a screen switch, a resize back) reuses the last build.
"""

from __future__ import annotations

import math

import numpy as np
from textual.app import RenderResult
from textual_plotext import PlotextPlot

POINTS_PER_COLUMN = 2
REDRAW_INTERVAL = 1.0  # seconds: the curve needs no more; the numbers beside it update faster


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


class LossPlot(PlotextPlot):
    """Loss curves of one run. Add points; a timer draws them (`redraw()` draws at once)."""

    DEFAULT_CSS = """
    LossPlot { min-height: 6; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id, classes=classes)
        self.train: tuple[list[int], list[float]] = ([], [])
        self.val: tuple[list[int], list[float]] = ([], [])
        self._dirty = True
        self._version = 0  # bumped by each redraw: the cached render is of this version
        self._rendered: tuple[tuple, RenderResult] | None = None

    def on_mount(self) -> None:
        super().on_mount()
        self.set_interval(REDRAW_INTERVAL, self.redraw)

    def render(self) -> RenderResult:
        key = (self.size, self._version, self.app.theme, self.theme)
        if self._rendered is None or self._rendered[0] != key:
            self._rendered = (key, super().render())
        return self._rendered[1]

    @property
    def points(self) -> tuple[int, int]:
        """(train points, val points) held."""
        return len(self.train[0]), len(self.val[0])

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

    def redraw(self) -> None:
        """Plot the held points (downsampled to the width) if anything changed since last time."""
        if not self._dirty:
            return
        self._dirty = False
        width = self.size.width or 80
        budget = max(width * POINTS_PER_COLUMN, 20)
        plt = self.plt
        plt.clear_data()
        plt.xlabel("step")
        if self.train[0]:
            plt.plot(*downsample(*self.train, budget), label="train", marker="braille", color="cyan")
        if self.val[0]:
            plt.plot(*downsample(*self.val, budget), label="val", marker="braille", color="orange")
        xs = self.train[0] + self.val[0]
        if xs:  # whole steps on the axis (plotext would label 0.0, 100.8, ...)
            lo, hi = min(xs), max(xs)
            ticks = sorted({int(round(t)) for t in np.linspace(lo, hi, 5)}) if hi > lo else [lo]
            plt.xticks(ticks, [str(t) for t in ticks])
        self._version += 1
        self.refresh()

    def on_resize(self) -> None:
        self._dirty = True
        self.redraw()
