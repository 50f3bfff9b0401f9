"""The training session: the one run the app drives, in this process or detached.

Screens and the app talk to the session (start, stop, state, events), never to each other. An
in-app run trains in a worker thread that calls `TrainingSession.train`; its events go to an
EventBuffer the UI drains on a timer. A detached run is a background `mypt train --no-ui`
whose events.jsonl the same timer follows. The session holds no widgets and imports no textual.
"""

from __future__ import annotations

import enum
import threading
import time
from pathlib import Path
from typing import Callable

from engine.events import Event
from engine.train.job import TrainError, TrainRequest, TrainResult, run_dir_of
from mypt_tui.services.demo import Demo, ensure_prepared, is_prepared
from mypt_tui.services.events import EventBuffer, EventSource, follower
from mypt_tui.services.processes import Detached, interrupt, start_detached

Status = Callable[[str], None]


class SessionState(str, enum.Enum):
    IDLE = "idle"
    TRAINING = "training"  # in this app's worker thread
    STOPPING = "stopping"  # in this app, asked to stop after the step
    DETACHED = "detached"  # in a background process this app started


class TrainingSession:
    """What trains, where its events come from, and how to stop it."""

    def __init__(self) -> None:
        self.state = SessionState.IDLE
        self.run_dir: Path | None = None
        self.detached: Detached | None = None
        self.source: EventSource | None = None
        self._stop = threading.Event()
        self._ended = threading.Event()  # the in-app run's thread has returned (or none ran)
        self._ended.set()

    @property
    def training(self) -> bool:
        """A run trains inside this app (quitting must stop it first)."""
        return self.state in (SessionState.TRAINING, SessionState.STOPPING)

    @property
    def busy(self) -> bool:
        return self.state != SessionState.IDLE

    # -- in this app -----------------------------------------------------------------------------

    def begin_in_app(self, request: TrainRequest) -> None:
        """Claim the session for an in-app run (TrainError when the request names no run folder);
        the worker thread then calls `train`."""
        if self.busy:
            raise TrainError("a run is already going: stop it first")
        self.run_dir = run_dir_of(request)
        self._stop.clear()
        self.source = EventBuffer()
        self.detached = None
        self._ended.clear()
        self.state = SessionState.TRAINING

    def train(self, request: TrainRequest, demo: Demo | None, cancelled: Callable[[], bool],
              status: Status) -> TrainResult:
        """The worker thread's work: prepare the demo set if needed, then the engine's run."""
        from engine.events import read_events
        from engine.layout import EVENTS_FILE
        from engine.train.job import build_job
        from engine.train.loop import run_training

        def should_stop() -> bool:  # once a step: the Stop button, or the app closing (which cancels workers)
            time.sleep(0)  # let the GIL go once a step: UI work waiting for it gets in
            return self._stop.is_set() or cancelled()

        try:
            if demo is not None and not is_prepared(demo):
                status(f"preparing {demo.dataset} first ...")
                ensure_prepared(demo, should_stop=should_stop)
                status("")
            job = build_job(request)
            buffer = self.source
            assert isinstance(buffer, EventBuffer)
            if job.resume and (Path(job.output) / EVENTS_FILE).exists():
                buffer.extend(list(read_events(Path(job.output) / EVENTS_FILE)))  # the curve so far
            return run_training(job, sinks=[buffer], should_stop=should_stop)
        finally:
            self._ended.set()

    def wait_ended(self, timeout: float) -> bool:
        """Block until an in-app run's thread has returned (its final checkpoint saved); False on timeout."""
        return self._ended.wait(timeout)

    # -- detached ---------------------------------------------------------------------------------

    def start_detached(self, request: TrainRequest) -> Detached:
        """Start the request as a background process and follow its events (TrainError, OSError)."""
        if self.busy:
            raise TrainError("a run is already going: stop it first")
        self.detached = start_detached(request)
        self.run_dir = self.detached.run_dir
        self.source = follower(self.run_dir)
        self.state = SessionState.DETACHED
        return self.detached

    def detached_exit(self) -> int | None:
        """The detached run's exit code once it ended (None while it runs, or when none)."""
        if self.state != SessionState.DETACHED or self.detached is None:
            return None
        return self.detached.exit_code()

    # -- either ------------------------------------------------------------------------------------

    def poll(self) -> list[Event]:
        return self.source.poll() if self.source is not None else []

    def stop(self) -> str | None:
        """Ask the run to stop after this step (a final checkpoint is saved). None, or why not."""
        if self.state == SessionState.TRAINING:
            self._stop.set()
            self.state = SessionState.STOPPING
            return None
        if self.state == SessionState.DETACHED and self.detached is not None:
            return interrupt(self.detached.pid)
        return "nothing trains in this app"

    def request_stop(self) -> None:
        """Stop an in-app run, if any (quitting, a hang-up, the app closing)."""
        self._stop.set()
        if self.state == SessionState.TRAINING:
            self.state = SessionState.STOPPING

    def finish(self) -> None:
        """The run ended (its worker returned, or its process exited): back to idle."""
        self.state = SessionState.IDLE
        self.source = None
