"""Checkpoints as the Chat screen lists them: each run's newest first, then every checkpoint."""

from __future__ import annotations

from pathlib import Path

from engine.layout import STEP_PREFIX


def checkpoint_options(infos: list, extra: list[str] = ()) -> list[tuple[str, str]]:
    """Select options: each run's newest checkpoint first (it moves on while the run trains),
    then every checkpoint; values are paths."""
    options: list[tuple[str, str]] = []
    newest: dict[str, object] = {}
    for info in infos:
        if info.run is not None and info.name.split("/")[-1].startswith(STEP_PREFIX):
            best = newest.get(info.run)
            if best is None or (info.step or -1) > (best.step or -1):
                newest[info.run] = info
    for run, info in sorted(newest.items()):
        options.append((f"{run} (newest)", str(Path(info.path).parent)))
    for info in infos:
        step = f"  step {info.step}" if info.step is not None else ""
        options.append((f"{info.name}{step}", str(info.path)))
    seen = {value for _, value in options}
    for path in extra:
        if path not in seen:
            options.append((path, path))
    return options


def pane_title(session, root: str | Path) -> str:  # noqa: ANN001 - engine.chat.ChatSession
    """The pane title: which checkpoint (relative to the checkpoints root), its size and context."""
    cfg = session.model.config
    ckpt = session.checkpoint
    path = Path(ckpt.path) if ckpt is not None else None
    name = "?"
    if path is not None:
        try:
            name = path.resolve().relative_to(Path(root).resolve()).as_posix()
        except ValueError:
            name = path.name
    return f"{name} · {cfg.n_layer}x{cfg.n_embd} · context {cfg.block_size} · {session.tok.kind}"
