"""A MyPT run's AdamW state carried over to ours, where its layout allows.

MyPT's optimizer state numbers parameters by position: its `configure_optimizer` puts the trainable
parameters, in named_parameters() order, into two groups (decay: the matrices; no decay: vectors,
embeddings and the `ln` norms) and counts across both. The order of MyPT's parameters was recorded
when its checkpoint was read (`meta["myPT_params"]`), so each state entry is matched to its parameter,
renamed to ours and handed to our optimizer. When the counts or the shapes do not fit (a run with
freeze_layers, another architecture), nothing is carried and the reason is given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..model import GPT
from .myPT import MYPT_FORMAT, our_key
from .native import CheckpointError, _safe_torch_load


def carry_optimizer(meta: dict[str, Any], model: GPT, optimizer: torch.optim.Optimizer) -> str | None:
    """Load a MyPT checkpoint's AdamW moments into `optimizer`; the note the pre-flight report shows.
    None for a checkpoint that is not MyPT's (ours start fresh when continued)."""
    if meta.get("format") != MYPT_FORMAT:
        return None
    src = meta.get("myPT_optimizer")
    if not src:
        return "optimizer: fresh AdamW (the MyPT checkpoint has no optimizer state, e.g. a deployment copy)"
    try:
        state = _safe_torch_load(Path(src["file"]))
    except CheckpointError as e:
        return f"optimizer: fresh AdamW ({e})"
    if "key" in src:
        state = state.get(src["key"]) if isinstance(state, dict) else None
    by_name, why = myPT_states(state, meta.get("myPT_params") or [])
    if by_name is None:
        return f"optimizer: fresh AdamW, MyPT's {src['file']} does not fit: {why}"
    names = {id(p): n for n, p in model.named_parameters()}
    ours = optimizer.state_dict()
    carried, k = {}, 0
    for group in optimizer.param_groups:
        for p in group["params"]:
            st = by_name.get(names[id(p)])
            if st is not None and st["exp_avg"].shape == p.shape:
                carried[k] = st
            k += 1
    ours["state"] = carried
    optimizer.load_state_dict(ours)
    steps = {int(st["step"]) for st in carried.values() if "step" in st}
    return (f"optimizer: AdamW state carried over from {src['file']} for {len(carried)} of {k} trainable "
            f"parameters" + (f" (MyPT step {max(steps)})" if steps else ""))


def myPT_states(state: Any, params: list) -> tuple[dict[str, dict] | None, str]:
    """Our parameter name -> its AdamW state, from MyPT's optimizer state dict; or None and why not."""
    if not isinstance(state, dict) or not isinstance(state.get("state"), dict) \
            or not isinstance(state.get("param_groups"), list):
        return None, "it is not an optimizer state dict"
    groups = [g.get("params") for g in state["param_groups"] if isinstance(g, dict)]
    shapes = {name: tuple(shape) for name, shape in params}
    order = [name for name, _ in params]
    if len(groups) == 2:  # MyPT's decay / no-decay groups
        no_decay = [n for n in order if len(shapes[n]) == 1 or "embedding" in n.lower() or "ln" in n.lower()]
        layout = [[n for n in order if n not in set(no_decay)], no_decay]
    else:  # an older MyPT: one group of every parameter
        layout = [order]
    counts = [len(g) if isinstance(g, list) else -1 for g in groups]
    if counts != [len(g) for g in layout]:
        return None, (f"its groups hold {counts} parameters, the checkpoint's model has {[len(g) for g in layout]} "
                      "(it trained with freeze_layers or freeze_embeddings, or with another layout)")
    out: dict[str, dict] = {}
    for ids, names in zip(groups, layout):
        for idx, name in zip(ids, names):
            st = state["state"].get(idx)
            if st is None:
                continue  # never stepped
            if not isinstance(st, dict) or not isinstance(st.get("exp_avg"), torch.Tensor) \
                    or tuple(st["exp_avg"].shape) != shapes[name]:
                return None, f"the state of parameter {idx} does not have the shape of {name} {list(shapes[name])}"
            out[our_key(name) or name] = st
    return out, ""

