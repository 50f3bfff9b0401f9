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
        named_by_step = info.name.split("/")[-1].startswith(STEP_PREFIX)  # run/step_000500 says its step
        step = f"  step {info.step}" if info.step is not None and not named_by_step else ""
        options.append((f"{info.name}{step}", str(info.path)))
    seen = {value for _, value in options}
    for path in extra:
        if path not in seen:
            options.append((path, path))
    return options


def newest_choice(infos: list) -> str | None:
    """The option to preselect: the most recently saved checkpoint (its run's "newest" entry when
    it belongs to a run with step checkpoints)."""
    if not infos:
        return None
    newest = max(infos, key=lambda info: info.modified)
    runs = {info.run for info in infos if info.run is not None and info.name.split("/")[-1].startswith(STEP_PREFIX)}
    return str(Path(newest.path).parent) if newest.run in runs else str(newest.path)


def pane_title(session, root: str | Path) -> tuple[str, list[str]]:  # noqa: ANN001 - engine.chat.ChatSession
    """The pane title's parts: which checkpoint (relative to the checkpoints root), then its size,
    context and tokenizer (`fit_parts` drops those first when the pane is narrow)."""
    cfg = session.model.config
    ckpt = session.checkpoint
    path = Path(ckpt.path) if ckpt is not None else None
    name = "?"
    if path is not None:
        try:
            name = path.resolve().relative_to(Path(root).resolve()).as_posix()
        except ValueError:
            name = path.name
    return name, [f"{cfg.n_layer}x{cfg.n_embd}", f"context {cfg.block_size}", session.tok.kind,
                  *(["base: raw text"] if session.raw else [])]


def raw_note(session) -> str | None:  # noqa: ANN001 - engine.chat.ChatSession
    """What the pane says about a base model's session: its messages are continued, not answered."""
    if not session.raw:
        return None
    return ("a base model (pretrained, never fine-tuned on chat): each message is continued as plain text, "
            "on its own (no chat format, no history, no system prompt). Type the start of a sentence.")
